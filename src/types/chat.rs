//! The Chat Completions API: the request we send and the response/chunks we read.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::text::Text;

/// The texts of its messages borrow from the client's body where they go upstream unchanged.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ChatRequest<'a> {
    pub model: String,
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<Value>,
    /// The converted tools as their JSON (shared by the requests that send the same tools).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shared_raw")]
    pub tools: Option<std::sync::Arc<serde_json::value::RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Provider-specific keys (`max_tokens` or `max_completion_tokens`, `reasoning_effort`,
    /// `thinking`, `tool_stream`, `user`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn shared_raw<S: serde::Serializer>(
    v: &Option<std::sync::Arc<serde_json::value::RawValue>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(raw) => raw.serialize(s),
        None => s.serialize_none(),
    }
}

/// One entry of the Chat `tools`: a function, or a provider's own tool (its web search) as
/// the provider spells it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ChatTool {
    Function(FunctionChatTool),
    Native(Value),
}

/// `{"type": "function", "function": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionChatTool {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ChatFunction,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChatFunction {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The client's JSON schema as it was sent (not parsed into a tree and re-serialised).
    pub parameters: Box<serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ChatMessage<'a> {
    pub role: String,
    /// `None` serialises as no key; assistant tool-call messages use `Some(Text(""))`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ChatContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ChatToolCall<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ChatContent<'a> {
    Text(Text<'a>),
    Parts(Vec<ChatPart<'a>>),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatPart<'a> {
    Text { text: Text<'a> },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageUrl {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ChatMessage<'_> {
    /// The same message, owning its texts (a WebSocket chain keeps it between turns).
    pub fn into_owned(self) -> ChatMessage<'static> {
        ChatMessage {
            role: self.role,
            content: self.content.map(ChatContent::into_owned),
            reasoning_content: self.reasoning_content,
            tool_calls: self.tool_calls.map(|calls| {
                calls
                    .into_iter()
                    .map(|c| ChatToolCall {
                        id: c.id,
                        kind: c.kind,
                        function: ChatFunctionCall {
                            name: c.function.name,
                            arguments: c.function.arguments.into_owned(),
                        },
                    })
                    .collect()
            }),
            tool_call_id: self.tool_call_id,
        }
    }
}

impl ChatContent<'_> {
    pub fn into_owned(self) -> ChatContent<'static> {
        match self {
            ChatContent::Text(t) => ChatContent::Text(t.into_owned()),
            ChatContent::Parts(p) => {
                ChatContent::Parts(p.into_iter().map(ChatPart::into_owned).collect())
            }
        }
    }
}

impl ChatPart<'_> {
    pub fn into_owned(self) -> ChatPart<'static> {
        match self {
            ChatPart::Text { text } => ChatPart::Text {
                text: text.into_owned(),
            },
            ChatPart::ImageUrl { image_url } => ChatPart::ImageUrl { image_url },
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatToolCall<'a> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ChatFunctionCall<'a>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatFunctionCall<'a> {
    pub name: String,
    pub arguments: Text<'a>,
}

// ---------------------------------------------------------------------------------------------
// Upstream → proxy. Lenient: every field optional, unknown fields ignored.

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ChatUsage {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub prompt_tokens: u64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub completion_tokens: u64,
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// DeepSeek.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub prompt_cache_hit_tokens: Option<u64>,
    /// Kimi (some models) put cached tokens at the top level.
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub cached_tokens: Option<u64>,
}

impl ChatUsage {
    /// Cached input tokens, wherever the provider reports them: OpenAI's
    /// `prompt_tokens_details.cached_tokens`, else DeepSeek's `prompt_cache_hit_tokens`, else
    /// Kimi's top-level `cached_tokens`.
    pub fn cached(&self) -> u64 {
        self.prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .or(self.cached_tokens)
            .unwrap_or(0)
    }

    /// This usage and `later`'s together (the replies of one turn): tokens, cached tokens
    /// and reasoning tokens added up.
    pub fn plus(&self, later: &ChatUsage) -> ChatUsage {
        ChatUsage {
            prompt_tokens: self.prompt_tokens + later.prompt_tokens,
            completion_tokens: self.completion_tokens + later.completion_tokens,
            total_tokens: match (self.total_tokens, later.total_tokens) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            },
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(self.cached() + later.cached()),
            }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: Some(self.reasoning() + later.reasoning()),
            }),
            prompt_cache_hit_tokens: None,
            cached_tokens: None,
        }
    }

    /// Reasoning tokens of the output (0 when not reported).
    pub fn reasoning(&self) -> u64 {
        self.completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens)
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct PromptTokensDetails {
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct CompletionTokensDetails {
    #[serde(default, deserialize_with = "lenient_opt_u64")]
    pub reasoning_tokens: Option<u64>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(lenient_opt_u64(d)?.unwrap_or(0))
}

fn lenient_opt_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    })
}

/// One `data:` payload of a streamed chat completion. Its strings borrow from the payload
/// when they have no escapes (a chunk is read, converted and dropped).
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ChatChunk<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
    /// Some providers send `{"error": {...}}` inside the stream.
    #[serde(default)]
    pub error: Option<Value>,
    /// MiniMax: `{"status_code", "status_msg"}`, non-zero on errors.
    #[serde(default)]
    pub base_resp: Option<Value>,
    /// GLM: the results of its web search (`[{title, link, content, refer, ...}]`).
    #[serde(default)]
    pub web_search: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ChunkChoice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: Option<ChunkDelta<'a>>,
    /// A few providers send `message` instead of `delta` in the last chunk.
    #[serde(default, borrow)]
    pub message: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Kimi puts usage here.
    #[serde(default)]
    pub usage: Option<ChatUsage>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    pub role: Option<Cow<'a, str>>,
    /// A string, or an array of text parts (their texts joined); another value is no text.
    #[serde(default, borrow)]
    pub content: Option<DeltaText<'a>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// vLLM / OpenRouter spelling.
    #[serde(default, borrow)]
    pub reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct ToolCallDelta<'a> {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function: Option<FunctionDelta<'a>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<ArgsText<'a>>,
}

/// A delta's `content`: a string as is (borrowed when it has no escapes), an array of
/// content parts as their texts joined; any other value has no text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaText<'a>(pub Cow<'a, str>);

/// A call delta's `arguments`: a string as is; any other value (a few providers send an
/// object) as its JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgsText<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for DeltaText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseText {
            json_of_other: false,
        })
        .map(DeltaText)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ArgsText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseText {
            json_of_other: true,
        })
        .map(ArgsText)
    }
}

/// A string, borrowed when it can be; another value as `content_text` reads it, or as its
/// JSON text (`json_of_other`).
struct LooseText {
    json_of_other: bool,
}

impl LooseText {
    fn other<'de>(&self, v: Value) -> Cow<'de, str> {
        Cow::Owned(if self.json_of_other {
            v.to_string()
        } else {
            content_text(&v)
        })
    }
}

impl<'de> serde::de::Visitor<'de> for LooseText {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(self.other(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(self.other(v))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(self.other(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(self.other(Value::from(n)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(self.other(Value::from(n)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(self.other(Value::from(n)))
    }
}

impl ChatChunk<'_> {
    /// The usage wherever the provider put it: at the top level, else in the first choice
    /// (Kimi).
    pub fn usage(&self) -> Option<&ChatUsage> {
        self.usage.as_ref().or_else(|| {
            self.choices
                .iter()
                .find(|c| c.index == 0)
                .and_then(|c| c.usage.as_ref())
        })
    }
}

impl ChatCompletion<'_> {
    /// The usage wherever the provider put it: at the top level, else in the first choice
    /// (Kimi).
    pub fn usage(&self) -> Option<&ChatUsage> {
        self.usage
            .as_ref()
            .or_else(|| self.choices.first().and_then(|c| c.usage.as_ref()))
    }
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ChatCompletion<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    /// MiniMax sends `"choices": null` with an error in `base_resp`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub choices: Vec<CompletionChoice<'a>>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
    #[serde(default)]
    pub error: Option<Value>,
    /// MiniMax: `{"status_code", "status_msg"}`, non-zero on errors.
    #[serde(default)]
    pub base_resp: Option<Value>,
    /// GLM: the results of its web search.
    #[serde(default)]
    pub web_search: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct CompletionChoice<'a> {
    /// The same fields as a stream delta (tool calls without `index`).
    #[serde(default, borrow)]
    pub message: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
}

/// Text of a `content` value that may be a string, null, or an array of text parts.
pub fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}
