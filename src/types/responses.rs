//! The OpenAI Responses API request, as Codex and the SDKs send it.

use std::borrow::Cow;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::de::{
    deserialize_tagged, rest_as, scalars_to, skip_rest, ImageUrlField, LooseStr, LooseString,
    Present, Tagged,
};
pub use super::text::Text;

/// `POST /v1/responses` body.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ResponsesRequest<'a> {
    pub model: Option<String>,
    pub input: Option<Input<'a>>,
    /// Sent upstream as the client wrote it (see [`Text`]).
    pub instructions: Option<Text<'a>>,
    pub stream: Option<bool>,
    pub tools: Option<Tools<'a>>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<ReasoningParam>,
    pub text: Option<TextParam>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub store: Option<bool>,
    pub metadata: Option<Value>,
    pub previous_response_id: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub service_tier: Option<String>,
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    pub truncation: Option<String>,
    pub top_logprobs: Option<u32>,
    pub max_tool_calls: Option<u64>,
    pub background: Option<bool>,
    /// `include` (`reasoning.encrypted_content`, `reasoning.text`, ...).
    pub include: Option<Value>,
    /// Top-level members this proxy neither converts nor knows to be safe to leave out
    /// (the dialect guard counts them).
    #[serde(skip)]
    pub unknown_members: Vec<String>,
}

/// Top-level members read past on purpose: they mean nothing to a Chat provider and
/// nothing is lost without them (Codex's `client_metadata`; the WebSocket envelope's `type`
/// and `generate`, which the session reads itself).
const IGNORED_MEMBERS: [&str; 5] = [
    "client_metadata",
    "stream_options",
    "prompt_cache_retention",
    "type",
    "generate",
];

/// Reads the members one by one (as a derive would) and keeps the names of the unknown
/// ones. No `#[serde(flatten)]` map: that makes serde buffer the whole body (a long
/// history included) before parsing it a second time.
macro_rules! request_members {
    ($($field:ident),* $(,)?) => {
        impl<'de: 'a, 'a> Deserialize<'de> for ResponsesRequest<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = ResponsesRequest<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a Responses request object")
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut req = ResponsesRequest::default();
                        while let Some(key) = map.next_key::<LooseStr<'de>>()? {
                            let key = key.0.unwrap_or_default();
                            match key.as_ref() {
                                $(stringify!($field) => {
                                    req.$field = map.next_value().map_err(|e: A::Error| {
                                        A::Error::custom(format!(
                                            "invalid `{}`: {e}",
                                            stringify!($field)
                                        ))
                                    })?
                                })*
                                other => {
                                    map.next_value::<IgnoredAny>()?;
                                    if !IGNORED_MEMBERS.contains(&other) {
                                        req.unknown_members.push(other.to_owned());
                                    }
                                }
                            }
                        }
                        Ok(req)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

request_members!(
    model,
    input,
    instructions,
    stream,
    tools,
    tool_choice,
    parallel_tool_calls,
    reasoning,
    text,
    max_output_tokens,
    temperature,
    top_p,
    store,
    metadata,
    previous_response_id,
    prompt_cache_key,
    service_tier,
    user,
    safety_identifier,
    truncation,
    top_logprobs,
    max_tool_calls,
    background,
    include,
);

/// `tools`: the exact JSON the client sent (borrowed from the body). Every Response object
/// echoes it as is, and the list is read from it only when the provider's tools are not
/// already converted for this JSON (`convert::tools::ToolsCache`: Codex sends the same
/// ~20 KB on every request).
#[derive(Debug, Clone)]
pub struct Tools<'a> {
    pub raw: &'a RawValue,
}

impl Tools<'_> {
    /// The list, and the echo when a function tool lacks members (`None`: `raw` as is).
    pub fn parse(&self) -> Result<(Vec<Tool>, Option<Box<RawValue>>), serde_json::Error> {
        let list: Vec<Tool> = serde_json::from_str(self.raw.get())?;
        let incomplete = list
            .iter()
            .any(|t| matches!(t, Tool::Function(f) if f.members_missing));
        let echo = if incomplete {
            completed_echo(self.raw)
        } else {
            None
        };
        Ok((list, echo))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Tools<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Ok(Tools { raw })
    }
}

/// The tools as the Response object echoes them when a function tool lacks `description`,
/// `parameters` or `strict`: those added as `null` (Open Responses requires them there).
/// Only then is the echo rebuilt; a complete list (Codex's) is echoed byte for byte.
fn completed_echo(raw: &RawValue) -> Option<Box<RawValue>> {
    let mut tools: Vec<Value> = serde_json::from_str(raw.get()).ok()?;
    for t in &mut tools {
        if let Some(o) = t.as_object_mut() {
            if o.get("type").and_then(Value::as_str) == Some("function") {
                for k in ["description", "parameters", "strict"] {
                    o.entry(k).or_insert(Value::Null);
                }
            }
        }
    }
    serde_json::value::to_raw_value(&tools).ok()
}

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

/// `input`: a plain string or a list of items.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Input<'a> {
    Text(Cow<'a, str>),
    Items(Vec<InputItem<'a>>),
}

// Hand-written rather than `#[serde(untagged)]`: an untagged enum first copies the whole
// value into serde's private buffer and then deserializes it again, which doubled the cost
// of parsing a long Codex history (see benches/convert.rs).
impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Input<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of input items")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Input<'de>, E> {
                Ok(Input::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Input<'de>, E> {
                Ok(Input::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Input<'de>, E> {
                Ok(Input::Text(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input<'de>, A::Error> {
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

/// One item of `input`. Its strings borrow from the request body; the text that goes
/// upstream unchanged (message text, arguments, tool outputs) is a [`Text`].
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum InputItem<'a> {
    Message(MessageItem<'a>),
    FunctionCall(FunctionCallItem<'a>),
    FunctionCallOutput(ToolOutputItem<'a>),
    CustomToolCall(CustomToolCallItem<'a>),
    CustomToolCallOutput(ToolOutputItem<'a>),
    Reasoning(ReasoningItem<'a>),
    /// A compaction item (remote compaction): its token carries the summary.
    Compaction(CompactionItem<'a>),
    /// `{"type": "compaction_trigger"}`, last in the input of a remote compaction request.
    CompactionTrigger,
    /// `{"type": "item_reference", "id"}`: an earlier output item by its id, resolved by the
    /// turn layer (the response store, a WebSocket chain) before conversion; one that is
    /// still unresolved there is a 400.
    ItemReference(ItemReferenceItem<'a>),
    /// `{"type": "additional_tools", "tools": [...]}` (Codex's responses lite): tools offered
    /// from this point of the conversation on, as the top-level `tools` are.
    AdditionalTools(Tools<'a>),
    /// `{"type": "configuration_update", "reasoning": {"effort"}, ...}`: settings that apply
    /// from this point of the conversation on.
    ConfigurationUpdate(ConfigurationUpdateItem),
    /// A rarer item with a Chat meaning (`web_search_call`, `local_shell_call`,
    /// `tool_search_call`, ...), read as a small JSON object.
    Extra(ExtraItem),
    /// An item type this proxy does not convert (`web_search_call`, `agent_message`, ...).
    Other(Value),
}

impl InputItem<'_> {
    pub fn type_name(&self) -> &str {
        match self {
            InputItem::Message(_) => "message",
            InputItem::FunctionCall(_) => "function_call",
            InputItem::FunctionCallOutput(_) => "function_call_output",
            InputItem::CustomToolCall(_) => "custom_tool_call",
            InputItem::CustomToolCallOutput(_) => "custom_tool_call_output",
            InputItem::Reasoning(_) => "reasoning",
            InputItem::Compaction(_) => "compaction",
            InputItem::CompactionTrigger => "compaction_trigger",
            InputItem::ItemReference(_) => "item_reference",
            InputItem::AdditionalTools(_) => "additional_tools",
            InputItem::ConfigurationUpdate(_) => "configuration_update",
            InputItem::Extra(e) => e.kind.type_name(),
            InputItem::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        }
    }
}

// One pass per item (see [`Tagged`]): no `Value` tree is built for the items of a history.
impl<'de: 'a, 'a> Deserialize<'de> for InputItem<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged::<InputItem<'de>, D>(d)
    }
}

impl<'de> Tagged<'de> for InputItem<'de> {
    fn typed<A: MapAccess<'de>>(ty: Option<&str>, rest: A) -> Result<Self, A::Error> {
        let Some(ty) = ty else {
            skip_rest(rest)?;
            return Ok(InputItem::Other(Value::Object(Map::new())));
        };
        let parsed = match ty {
            "message" => rest_as(rest).map(InputItem::Message),
            "function_call" => rest_as(rest).map(InputItem::FunctionCall),
            "function_call_output" => rest_as(rest).map(InputItem::FunctionCallOutput),
            "custom_tool_call" => rest_as(rest).map(InputItem::CustomToolCall),
            "custom_tool_call_output" => rest_as(rest).map(InputItem::CustomToolCallOutput),
            "reasoning" => rest_as(rest).map(InputItem::Reasoning),
            "compaction" => rest_as(rest).map(InputItem::Compaction),
            "item_reference" => rest_as(rest).map(InputItem::ItemReference),
            "additional_tools" => {
                #[derive(Deserialize)]
                struct Additional<'a> {
                    #[serde(default, borrow)]
                    tools: Option<Tools<'a>>,
                }
                return match rest_as::<Additional<'de>, A>(rest) {
                    Ok(Additional { tools: Some(t) }) => Ok(InputItem::AdditionalTools(t)),
                    Ok(Additional { tools: None }) => Err(A::Error::custom(
                        "invalid `additional_tools` item: missing field `tools`",
                    )),
                    Err(e) => Err(A::Error::custom(format!(
                        "invalid `additional_tools` item: {e}"
                    ))),
                };
            }
            "configuration_update" => rest_as(rest).map(InputItem::ConfigurationUpdate),
            "compaction_trigger" => {
                skip_rest(rest)?;
                return Ok(InputItem::CompactionTrigger);
            }
            other => match ExtraKind::of(other) {
                Some(kind) => rest_as::<Map<String, Value>, A>(rest)
                    .map(|members| InputItem::Extra(ExtraItem { kind, members })),
                // Not converted: only its type is kept, for the dialect guard.
                None => {
                    skip_rest(rest)?;
                    return Ok(InputItem::Other(serde_json::json!({ "type": ty })));
                }
            },
        };
        parsed.map_err(|e: A::Error| A::Error::custom(format!("invalid `{ty}` item: {e}")))
    }

    /// An item without `type` but with a `role` is an "easy input message".
    fn implied(members: &[(String, &'de RawValue)]) -> Option<&'static str> {
        members
            .iter()
            .any(|(k, _)| k == "role")
            .then_some("message")
    }

    fn other(value: Value) -> Self {
        InputItem::Other(value)
    }
}

/// `{"type": "compaction", "id", "encrypted_content"}`: what a remote compaction returned,
/// sent back byte for byte.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompactionItem<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub encrypted_content: Cow<'a, str>,
}

/// `configuration_update`: what the proxy maps (the reasoning effort) and the names of the
/// members it cannot.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConfigurationUpdateItem {
    pub effort: Option<String>,
    /// Members other than `id`, `type` and `reasoning.effort` (ignored, logged at debug).
    pub ignored: Vec<String>,
}

impl<'de> Deserialize<'de> for ConfigurationUpdateItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let members = Map::<String, Value>::deserialize(d)?;
        let mut out = ConfigurationUpdateItem::default();
        for (k, v) in members {
            match (k.as_str(), v) {
                ("id" | "internal_chat_message_metadata_passthrough", _) => {}
                ("reasoning", Value::Object(r)) => {
                    for (rk, rv) in r {
                        match (rk.as_str(), rv) {
                            ("effort", Value::String(e)) => out.effort = Some(e),
                            _ => out.ignored.push(format!("reasoning.{rk}")),
                        }
                    }
                }
                _ => out.ignored.push(k),
            }
        }
        Ok(out)
    }
}

/// The item types read as [`ExtraItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExtraKind {
    WebSearchCall,
    ImageGenerationCall,
    LocalShellCall,
    LocalShellCallOutput,
    ToolSearchCall,
    ToolSearchOutput,
    AgentMessage,
    ContextCompaction,
}

impl ExtraKind {
    const ALL: [ExtraKind; 8] = [
        ExtraKind::WebSearchCall,
        ExtraKind::ImageGenerationCall,
        ExtraKind::LocalShellCall,
        ExtraKind::LocalShellCallOutput,
        ExtraKind::ToolSearchCall,
        ExtraKind::ToolSearchOutput,
        ExtraKind::AgentMessage,
        ExtraKind::ContextCompaction,
    ];

    pub fn of(ty: &str) -> Option<ExtraKind> {
        Self::ALL.into_iter().find(|k| k.type_name() == ty)
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ExtraKind::WebSearchCall => "web_search_call",
            ExtraKind::ImageGenerationCall => "image_generation_call",
            ExtraKind::LocalShellCall => "local_shell_call",
            ExtraKind::LocalShellCallOutput => "local_shell_call_output",
            ExtraKind::ToolSearchCall => "tool_search_call",
            ExtraKind::ToolSearchOutput => "tool_search_output",
            ExtraKind::AgentMessage => "agent_message",
            ExtraKind::ContextCompaction => "context_compaction",
        }
    }
}

/// One of the [`ExtraKind`] items: its members (without `type`).
#[derive(Debug, Clone, Serialize)]
pub struct ExtraItem {
    pub kind: ExtraKind,
    pub members: Map<String, Value>,
}

impl ExtraItem {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.members.get(key).and_then(Value::as_str)
    }
}

/// `{"type": "item_reference", "id": "msg_…"}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ItemReferenceItem<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessageItem<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub role: Cow<'a, str>,
    #[serde(borrow)]
    pub content: MessageContent<'a>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum MessageContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

/// Not `#[serde(untagged)]`, for the same reason as [`Input`].
impl<'de: 'a, 'a> Deserialize<'de> for MessageContent<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageContent<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
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
pub enum ContentPart<'a> {
    /// `input_text`, `output_text`, `text`, `summary_text`, `reasoning_text`, `refusal`.
    Text {
        kind: &'static str,
        text: Text<'a>,
    },
    /// `input_image` with a URL (data URL or https) and an optional detail.
    Image {
        image_url: String,
        detail: Option<String>,
    },
    Other(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for ContentPart<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_tagged::<ContentPart<'de>, D>(d)
    }
}

const TEXT_KINDS: [&str; 5] = [
    "input_text",
    "output_text",
    "text",
    "summary_text",
    "reasoning_text",
];

impl<'de> Tagged<'de> for ContentPart<'de> {
    fn typed<A: MapAccess<'de>>(ty: Option<&str>, rest: A) -> Result<Self, A::Error> {
        #[derive(Deserialize)]
        struct TextPart<'a> {
            #[serde(default, borrow)]
            text: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct RefusalPart<'a> {
            #[serde(default, borrow)]
            refusal: Option<&'a RawValue>,
        }
        #[derive(Deserialize)]
        struct ImagePart {
            #[serde(default)]
            image_url: Option<ImageUrlField>,
            #[serde(default)]
            detail: Option<LooseString>,
        }
        let ty = ty.unwrap_or("");
        if let Some(kind) = TEXT_KINDS.iter().copied().find(|k| *k == ty) {
            let p: TextPart<'de> = rest_as(rest)?;
            return match p.text.and_then(Text::from_json) {
                Some(text) => Ok(ContentPart::Text { kind, text }),
                None => Err(A::Error::custom(format!(
                    "content part `{ty}` needs a string `text`"
                ))),
            };
        }
        match ty {
            "refusal" => {
                let p: RefusalPart<'de> = rest_as(rest)?;
                Ok(ContentPart::Text {
                    kind: "refusal",
                    text: p.refusal.and_then(Text::from_json).unwrap_or_default(),
                })
            }
            "input_image" | "image_url" => {
                let p: ImagePart = rest_as(rest)?;
                Ok(match p.image_url.and_then(|u| u.0) {
                    Some(image_url) => ContentPart::Image {
                        image_url,
                        detail: p.detail.and_then(|l| l.0),
                    },
                    // `file_id` images cannot be fetched by a Chat provider.
                    None => ContentPart::Other(serde_json::json!({ "type": ty })),
                })
            }
            _ => {
                skip_rest(rest)?;
                Ok(ContentPart::Other(serde_json::json!({ "type": ty })))
            }
        }
    }

    fn implied(_: &[(String, &'de RawValue)]) -> Option<&'static str> {
        None
    }

    fn other(value: Value) -> Self {
        ContentPart::Other(value)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionCallItem<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub call_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Text<'a>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CustomToolCallItem<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub call_id: Cow<'a, str>,
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub input: Text<'a>,
}

/// `function_call_output` / `custom_tool_call_output`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolOutputItem<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub call_id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub output: ToolOutput<'a>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ToolOutput<'a> {
    Text(Text<'a>),
    Parts(Vec<ContentPart<'a>>),
    Other(Value),
}

impl Default for ToolOutput<'_> {
    fn default() -> Self {
        ToolOutput::Text(Text::default())
    }
}

/// A string (the common case: Codex's command output, sent on as the client wrote it);
/// anything else as before: an array of content parts when every element is one, else the
/// value as is.
impl<'de: 'a, 'a> Deserialize<'de> for ToolOutput<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        if let Some(text) = Text::from_json(raw) {
            return Ok(ToolOutput::Text(text));
        }
        let value = || serde_json::from_str::<Value>(raw.get()).map_err(D::Error::custom);
        if !raw.get().starts_with('[') {
            return value().map(ToolOutput::Other);
        }
        // (Rare and short: image outputs, MCP results.)
        let elements: Vec<&'de RawValue> =
            serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        let parts: Result<Vec<ContentPart<'de>>, serde_json::Error> =
            elements.into_iter().map(ContentPart::deserialize).collect();
        match parts {
            Ok(parts) => Ok(ToolOutput::Parts(parts)),
            Err(_) => value().map(ToolOutput::Other),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ReasoningItem<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub summary: Vec<ContentPart<'a>>,
    #[serde(default, borrow)]
    pub content: Option<Vec<ContentPart<'a>>>,
    #[serde(default, borrow)]
    pub encrypted_content: Option<Cow<'a, str>>,
}

/// One entry of `tools`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Tool {
    Function(FunctionTool),
    Namespace(NamespaceTool),
    Custom(CustomTool),
    /// `{"type": "tool_search", "execution": "client"}`: a search the client runs over its
    /// deferred tools (`defer_loading: true`); its results come back as a
    /// `tool_search_output` item whose tools are offered from then on.
    ToolSearch(ToolSearchTool),
    /// The hosted `web_search` (and its dated and `_preview` names): the provider's own
    /// search where it has one.
    WebSearch(WebSearchTool),
    /// Hosted tools (`web_search`, `image_generation`, a server `tool_search`, ...) and
    /// future types: only the type is kept.
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
            description: Present<LooseString>,
            #[serde(default)]
            parameters: Present<Option<Box<RawValue>>>,
            #[serde(default)]
            strict: Present<Option<Value>>,
            #[serde(default, borrow)]
            tools: Option<&'a RawValue>,
            #[serde(default)]
            format: Option<Value>,
            #[serde(default)]
            defer_loading: Option<Value>,
            #[serde(default)]
            execution: Option<LooseString>,
            #[serde(default)]
            filters: Option<Value>,
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
            scalars_to!(Self::Value, |_v| Ok(None));
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
        // A function tool in a Response object has all three (null when not given).
        let members_missing =
            f.description.0.is_none() || f.parameters.0.is_none() || f.strict.0.is_none();
        let description = f.description.0.and_then(|d| d.0);
        let defer_loading = f.defer_loading.as_ref().and_then(Value::as_bool) == Some(true);
        match ty.as_ref() {
            "function" => Ok(Tool::Function(FunctionTool {
                name: name.ok_or_else(missing_name)?,
                description,
                parameters: f.parameters.0.flatten(),
                strict: f.strict.0.flatten().as_ref().and_then(Value::as_bool),
                members_missing,
                defer_loading,
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
                defer_loading,
            })),
            "tool_search" if f.execution.and_then(|e| e.0).as_deref() == Some("client") => {
                Ok(Tool::ToolSearch(ToolSearchTool {
                    description,
                    parameters: f.parameters.0.flatten(),
                }))
            }
            "web_search"
            | "web_search_preview"
            | "web_search_2025_08_26"
            | "web_search_preview_2025_03_11" => Ok(Tool::WebSearch(WebSearchTool {
                allowed_domains: f
                    .filters
                    .as_ref()
                    .and_then(|v| v.get("allowed_domains"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })),
            // Hosted tools are not offered upstream; the Response echoes them from the raw
            // request, so only the type is kept.
            _ => Ok(Tool::Other(serde_json::json!({ "type": ty }))),
        }
    }
}

/// The hosted `web_search` tool, as far as a provider's search can honour it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebSearchTool {
    /// `filters.allowed_domains`.
    pub allowed_domains: Vec<String>,
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
    /// The client left out `description`, `parameters` or `strict` (the echo adds them).
    #[serde(skip)]
    pub members_missing: bool,
    /// `defer_loading: true`: offered once a `tool_search` found it.
    #[serde(skip)]
    pub defer_loading: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolSearchTool {
    pub description: Option<String>,
    /// The search's arguments schema (`None`: a query string).
    pub parameters: Option<Box<RawValue>>,
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
    #[serde(skip)]
    pub defer_loading: bool,
}
