//! The OpenAI Responses API request, as Codex and the SDKs send it.

use std::borrow::Cow;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// `POST /v1/responses` body.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ResponsesRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input: Option<Input>,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub tools: Option<Tools>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub reasoning: Option<ReasoningParam>,
    #[serde(default)]
    pub text: Option<TextParam>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
    #[serde(default)]
    pub service_tier: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub safety_identifier: Option<String>,
    #[serde(default)]
    pub truncation: Option<String>,
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    #[serde(default)]
    pub max_tool_calls: Option<u64>,
    #[serde(default)]
    pub background: Option<bool>,
    /// `include` (`reasoning.encrypted_content`, `reasoning.text`, ...). Every other key
    /// (`client_metadata`, ...) is read past and not forwarded: no `#[serde(flatten)]` map
    /// here, as that makes serde buffer the whole body (a long history included) before
    /// parsing it a second time.
    #[serde(default)]
    pub include: Option<Value>,
}

/// `tools`: the parsed list, and the exact JSON the client sent, which every Response
/// object echoes (copied as is rather than rebuilt from ~20 KB of schemas per event).
#[derive(Debug, Clone, Default)]
pub struct Tools {
    pub list: Vec<Tool>,
    pub raw: Option<Box<RawValue>>,
}

impl Tools {
    pub fn new(list: Vec<Tool>) -> Self {
        Tools { list, raw: None }
    }
}

impl<'de> Deserialize<'de> for Tools {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let list: Vec<Tool> = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        Ok(Tools {
            list,
            raw: Some(raw),
        })
    }
}

impl Serialize for Tools {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.raw {
            Some(raw) => raw.serialize(s),
            None => self.list.serialize(s),
        }
    }
}

/// The `type` of a JSON object given as text, and whether it has a `role` member, read
/// without building anything: a look at the first member first (Codex and the SDKs write
/// `type` first), else a parse that skips every other member. `None` for a non-object.
fn peek_type(raw: &str) -> Option<(Option<Cow<'_, str>>, bool)> {
    let t = raw.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    if let Some(ty) = first_member_type(t) {
        return Some((Some(Cow::Borrowed(ty)), false));
    }
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", default, borrow)]
        ty: Option<LooseStr<'a>>,
        #[serde(default)]
        role: Option<IgnoredAny>,
    }
    let p: Peek = serde_json::from_str(raw).ok()?;
    Some((p.ty.and_then(|l| l.0), p.role.is_some()))
}

/// `{"type":"NAME"` at the very start (whitespace allowed), NAME without escapes.
fn first_member_type(t: &str) -> Option<&str> {
    let rest = t.strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix("\"type\"")?.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes().get(end) == Some(&b'"')).then(|| &rest[..end])
}

/// A string, or `None` for any other JSON value (a `type` that is not a string).
struct LooseStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LooseStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LooseStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(LooseStr(Some(Cow::Owned(s))))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LooseStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LooseStr(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// `input`: a plain string or a list of items.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

// Hand-written rather than `#[serde(untagged)]`: an untagged enum first copies the whole
// value into serde's private buffer and then deserializes it again, which doubled the cost
// of parsing a long Codex history (see benches/convert.rs).
impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Input;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of input items")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Input, E> {
                Ok(Input::Text(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Input, E> {
                Ok(Input::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Input::Items(items))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ReasoningParam {
    #[serde(default)]
    pub effort: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct TextParam {
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(default)]
    pub verbosity: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One item of `input`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InputItem {
    Message(MessageItem),
    FunctionCall(FunctionCallItem),
    FunctionCallOutput(ToolOutputItem),
    CustomToolCall(CustomToolCallItem),
    CustomToolCallOutput(ToolOutputItem),
    Reasoning(ReasoningItem),
    /// An item type this proxy does not convert (`web_search_call`, `compaction`, ...).
    Other(Value),
}

impl InputItem {
    pub fn type_name(&self) -> &str {
        match self {
            InputItem::Message(_) => "message",
            InputItem::FunctionCall(_) => "function_call",
            InputItem::FunctionCallOutput(_) => "function_call_output",
            InputItem::CustomToolCall(_) => "custom_tool_call",
            InputItem::CustomToolCallOutput(_) => "custom_tool_call_output",
            InputItem::Reasoning(_) => "reasoning",
            InputItem::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }
}

// One parse per item: the item's text is taken as it is (no copy), its `type` peeked, and
// only then parsed into the struct of that type. (Going through a `Value` first built and
// dropped a tree of every item of the history.)
impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        let text = raw.get();
        let ty = match peek_type(text) {
            Some((Some(t), _)) => t,
            // An item without `type` but with a `role` is an "easy input message".
            Some((None, true)) => Cow::Borrowed("message"),
            _ => return other_value(text).map(InputItem::Other),
        };
        let parsed = match ty.as_ref() {
            "message" => serde_json::from_str(text).map(InputItem::Message),
            "function_call" => serde_json::from_str(text).map(InputItem::FunctionCall),
            "function_call_output" => serde_json::from_str(text).map(InputItem::FunctionCallOutput),
            "custom_tool_call" => serde_json::from_str(text).map(InputItem::CustomToolCall),
            "custom_tool_call_output" => {
                serde_json::from_str(text).map(InputItem::CustomToolCallOutput)
            }
            "reasoning" => serde_json::from_str(text).map(InputItem::Reasoning),
            _ => return other_value(text).map(InputItem::Other),
        };
        parsed.map_err(|e| D::Error::custom(format!("invalid `{ty}` item: {e}")))
    }
}

/// An item or part this proxy does not convert, kept as a `Value`.
fn other_value<E: serde::de::Error>(text: &str) -> Result<Value, E> {
    serde_json::from_str(text).map_err(E::custom)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessageItem {
    #[serde(default)]
    pub id: Option<String>,
    pub role: String,
    pub content: MessageContent,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// Not `#[serde(untagged)]`, for the same reason as [`Input`].
impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageContent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MessageContent, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

/// A content part of a message or of a tool output array.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ContentPart {
    /// `input_text`, `output_text`, `text`, `summary_text`, `reasoning_text`, `refusal`.
    Text {
        kind: String,
        text: String,
    },
    /// `input_image` with a URL (data URL or https) and an optional detail.
    Image {
        image_url: String,
        detail: Option<String>,
    },
    Other(Value),
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        ContentPart::from_raw(raw.get()).map_err(D::Error::custom)
    }
}

impl ContentPart {
    /// One content part from its JSON text: `type` peeked, then one typed parse.
    fn from_raw(text: &str) -> Result<ContentPart, String> {
        #[derive(Deserialize)]
        struct TextPart {
            text: String,
        }
        #[derive(Deserialize)]
        struct RefusalPart {
            #[serde(default)]
            refusal: Option<LooseString>,
        }
        #[derive(Deserialize)]
        struct ImagePart {
            #[serde(default)]
            image_url: Option<ImageUrlField>,
            #[serde(default)]
            detail: Option<LooseString>,
        }
        let ty = match peek_type(text) {
            Some((Some(t), _)) => t,
            _ => {
                return Ok(ContentPart::Other(
                    other_value::<serde_json::Error>(text).map_err(|e| e.to_string())?,
                ))
            }
        };
        match ty.as_ref() {
            "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => {
                match serde_json::from_str::<TextPart>(text) {
                    Ok(p) => Ok(ContentPart::Text {
                        kind: ty.into_owned(),
                        text: p.text,
                    }),
                    Err(_) => Err(format!("content part `{ty}` needs a string `text`")),
                }
            }
            "refusal" => {
                let p: RefusalPart = serde_json::from_str(text).map_err(|e| e.to_string())?;
                Ok(ContentPart::Text {
                    kind: ty.into_owned(),
                    text: p.refusal.and_then(|l| l.0).unwrap_or_default(),
                })
            }
            "input_image" | "image_url" => {
                let p: ImagePart = serde_json::from_str(text).map_err(|e| e.to_string())?;
                match p.image_url.and_then(|u| u.0) {
                    Some(image_url) => Ok(ContentPart::Image {
                        image_url,
                        detail: p.detail.and_then(|l| l.0),
                    }),
                    // `file_id` images cannot be fetched by a Chat provider.
                    None => other_value::<serde_json::Error>(text)
                        .map(ContentPart::Other)
                        .map_err(|e| e.to_string()),
                }
            }
            _ => other_value::<serde_json::Error>(text)
                .map(ContentPart::Other)
                .map_err(|e| e.to_string()),
        }
    }
}

/// A string, or `None` for any other value (owned).
struct LooseString(Option<String>);

impl<'de> Deserialize<'de> for LooseString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LooseStr::deserialize(d).map(|l| LooseString(l.0.map(Cow::into_owned)))
    }
}

/// `image_url`: a URL string or `{"url": ...}`; `None` for anything else.
struct ImageUrlField(Option<String>);

impl<'de> Deserialize<'de> for ImageUrlField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct UrlObject {
            #[serde(default)]
            url: Option<LooseString>,
        }
        let raw = <&'de RawValue>::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            return serde_json::from_str::<String>(text)
                .map(|s| ImageUrlField(Some(s)))
                .map_err(D::Error::custom);
        }
        if text.starts_with('{') {
            let o: UrlObject = serde_json::from_str(text).map_err(D::Error::custom)?;
            return Ok(ImageUrlField(o.url.and_then(|l| l.0)));
        }
        Ok(ImageUrlField(None))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionCallItem {
    #[serde(default)]
    pub id: Option<String>,
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CustomToolCallItem {
    #[serde(default)]
    pub id: Option<String>,
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub input: String,
}

/// `function_call_output` / `custom_tool_call_output`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolOutputItem {
    #[serde(default)]
    pub id: Option<String>,
    pub call_id: String,
    #[serde(default = "empty_output")]
    pub output: ToolOutput,
}

fn empty_output() -> ToolOutput {
    ToolOutput::Text(String::new())
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ToolOutput {
    Text(String),
    Parts(Vec<ContentPart>),
    Other(Value),
}

/// A string (the common case) without serde's untagged buffering; anything else as before:
/// an array of content parts when every element is one, else the value as is.
impl<'de> Deserialize<'de> for ToolOutput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolOutput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tool output")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Text(s.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ToolOutput, A::Error> {
                // An array of content parts when every element is one, else the value as is.
                let mut raws: Vec<&'de RawValue> = Vec::new();
                while let Some(r) = seq.next_element::<&'de RawValue>()? {
                    raws.push(r);
                }
                let parts: Result<Vec<ContentPart>, String> = raws
                    .iter()
                    .map(|r| ContentPart::from_raw(r.get()))
                    .collect();
                match parts {
                    Ok(parts) => Ok(ToolOutput::Parts(parts)),
                    Err(_) => raws
                        .iter()
                        .map(|r| other_value(r.get()))
                        .collect::<Result<Vec<Value>, A::Error>>()
                        .map(|v| ToolOutput::Other(Value::Array(v))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ToolOutput, A::Error> {
                Value::deserialize(MapAccessDeserializer::new(map)).map(ToolOutput::Other)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Other(Value::Null))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Other(Value::Bool(b)))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Other(Value::from(n)))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Other(Value::from(n)))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<ToolOutput, E> {
                Ok(ToolOutput::Other(Value::from(n)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReasoningItem {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<ContentPart>,
    #[serde(default)]
    pub content: Option<Vec<ContentPart>>,
    #[serde(default)]
    pub encrypted_content: Option<String>,
}

/// One entry of `tools`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Tool {
    Function(FunctionTool),
    Namespace(NamespaceTool),
    Custom(CustomTool),
    /// Hosted tools (`web_search`, `image_generation`, `tool_search`, ...) and future types.
    Other(Value),
}

// One pass per tool: the members of every tool type are read into one struct (a schema is
// taken as raw JSON, not parsed), then the tool of its `type` is made from them. Codex sends
// ~20 KB of tools on every request.
impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields<'a> {
            #[serde(rename = "type", default, borrow)]
            ty: Option<LooseStr<'a>>,
            #[serde(default)]
            name: Option<LooseString>,
            #[serde(default)]
            description: Option<LooseString>,
            #[serde(default)]
            parameters: Option<Box<RawValue>>,
            #[serde(default)]
            strict: Option<Value>,
            #[serde(default, borrow)]
            tools: Option<&'a RawValue>,
            #[serde(default)]
            format: Option<Value>,
        }
        /// An object, or `None` for anything else (an unknown tool, skipped).
        struct ObjectOnly;
        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = Option<Fields<'de>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tool object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Fields::deserialize(MapAccessDeserializer::new(map)).map(Some)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        let f = match d.deserialize_any(ObjectOnly) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Tool::Other(serde_json::json!({ "type": "unknown" }))),
            Err(e) => return Err(D::Error::custom(format!("invalid tool: {e}"))),
        };
        let ty = f.ty.and_then(|t| t.0).unwrap_or(Cow::Borrowed(""));
        let name = f.name.and_then(|n| n.0);
        let missing_name =
            || D::Error::custom(format!("invalid `{ty}` tool: missing field `name`"));
        let description = f.description.and_then(|d| d.0);
        match ty.as_ref() {
            "function" => Ok(Tool::Function(FunctionTool {
                name: name.ok_or_else(missing_name)?,
                description,
                parameters: f.parameters,
                strict: f.strict.as_ref().and_then(Value::as_bool),
            })),
            "namespace" => Ok(Tool::Namespace(NamespaceTool {
                name: name.ok_or_else(missing_name)?,
                description,
                tools: match f.tools {
                    Some(raw) => serde_json::from_str(raw.get())
                        .map_err(|e| D::Error::custom(format!("invalid `namespace` tool: {e}")))?,
                    None => Vec::new(),
                },
            })),
            "custom" => Ok(Tool::Custom(CustomTool {
                name: name.ok_or_else(missing_name)?,
                description,
                format: f.format,
            })),
            // Hosted tools are not offered upstream; the Response echoes them from the raw
            // request, so only the type is kept.
            _ => Ok(Tool::Other(serde_json::json!({ "type": ty }))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The JSON schema, passed through as the client wrote it.
    #[serde(default)]
    pub parameters: Option<Box<RawValue>>,
    #[serde(default)]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NamespaceTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tools: Vec<Tool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CustomTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub format: Option<Value>,
}
