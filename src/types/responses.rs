//! The OpenAI Responses API request, as Codex and the SDKs send it.

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
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
    pub tools: Option<Vec<Tool>>,
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
    /// Everything else (`include`, `client_metadata`, ...): kept, not forwarded.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let ty = value.get("type").and_then(Value::as_str);
        // An item without `type` but with a `role` is an "easy input message".
        let ty = match ty {
            Some(t) => t.to_owned(),
            None if value.get("role").is_some() => "message".to_owned(),
            None => return Ok(InputItem::Other(value)),
        };
        let parsed = match ty.as_str() {
            "message" => serde_json::from_value(value).map(InputItem::Message),
            "function_call" => serde_json::from_value(value).map(InputItem::FunctionCall),
            "function_call_output" => {
                serde_json::from_value(value).map(InputItem::FunctionCallOutput)
            }
            "custom_tool_call" => serde_json::from_value(value).map(InputItem::CustomToolCall),
            "custom_tool_call_output" => {
                serde_json::from_value(value).map(InputItem::CustomToolCallOutput)
            }
            "reasoning" => serde_json::from_value(value).map(InputItem::Reasoning),
            _ => return Ok(InputItem::Other(value)),
        };
        parsed.map_err(|e| D::Error::custom(format!("invalid `{ty}` item: {e}")))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessageItem {
    #[serde(default)]
    pub id: Option<String>,
    pub role: String,
    pub content: MessageContent,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
        let value = Value::deserialize(d)?;
        let ty = value.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => {
                match value.get("text").and_then(Value::as_str) {
                    Some(text) => Ok(ContentPart::Text {
                        kind: ty.to_owned(),
                        text: text.to_owned(),
                    }),
                    None => Err(D::Error::custom(format!(
                        "content part `{ty}` needs a string `text`"
                    ))),
                }
            }
            "refusal" => Ok(ContentPart::Text {
                kind: ty.to_owned(),
                text: value
                    .get("refusal")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }),
            "input_image" | "image_url" => {
                let url = match value.get("image_url") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Object(o)) => {
                        o.get("url").and_then(Value::as_str).map(str::to_owned)
                    }
                    _ => None,
                };
                match url {
                    Some(image_url) => Ok(ContentPart::Image {
                        image_url,
                        detail: value
                            .get("detail")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    }),
                    // `file_id` images cannot be fetched by a Chat provider.
                    None => Ok(ContentPart::Other(value)),
                }
            }
            _ => Ok(ContentPart::Other(value)),
        }
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
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CustomToolCallItem {
    #[serde(default)]
    pub id: Option<String>,
    pub call_id: String,
    pub name: String,
    #[serde(default)]
    pub input: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `function_call_output` / `custom_tool_call_output`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolOutputItem {
    #[serde(default)]
    pub id: Option<String>,
    pub call_id: String,
    #[serde(default = "empty_output")]
    pub output: ToolOutput,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ToolOutput, A::Error> {
                let value = Value::deserialize(SeqAccessDeserializer::new(seq))?;
                Ok(
                    match serde_json::from_value::<Vec<ContentPart>>(value.clone()) {
                        Ok(parts) => ToolOutput::Parts(parts),
                        Err(_) => ToolOutput::Other(value),
                    },
                )
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
    #[serde(flatten)]
    pub extra: Map<String, Value>,
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

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let ty = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let parsed = match ty.as_str() {
            "function" => serde_json::from_value(value).map(Tool::Function),
            "namespace" => serde_json::from_value(value).map(Tool::Namespace),
            "custom" => serde_json::from_value(value).map(Tool::Custom),
            _ => return Ok(Tool::Other(value)),
        };
        parsed.map_err(|e| D::Error::custom(format!("invalid `{ty}` tool: {e}")))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NamespaceTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CustomTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
