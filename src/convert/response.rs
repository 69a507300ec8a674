//! The Response object (for `response.created`/`completed`/... events and for non-streamed
//! replies) and the conversion of a non-streamed chat completion.

use serde_json::{json, Map, Value};

use super::streaming::StreamConverter;
use super::ResponseContext;
use crate::types::chat::{ChatCompletion, ChatUsage};

/// Status of a Response object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Incomplete => "incomplete",
            Status::Failed => "failed",
        }
    }
}

/// The full Response object with every field OpenAI's and Open Responses' schemas require.
pub fn response_object(
    ctx: &ResponseContext,
    status: Status,
    output: &[Value],
    usage: Option<&Value>,
    error: Option<Value>,
    incomplete_reason: Option<&str>,
) -> Value {
    let completed_at = (status == Status::Completed).then(|| ctx.now());
    let e = &ctx.echo;
    let get = |k: &str, default: Value| e.get(k).cloned().unwrap_or(default);
    let mut m = Map::with_capacity(40);
    m.insert("id".into(), Value::String(ctx.response_id.clone()));
    m.insert("object".into(), Value::String("response".into()));
    m.insert("created_at".into(), Value::from(ctx.created_at));
    m.insert(
        "completed_at".into(),
        completed_at.map(Value::from).unwrap_or(Value::Null),
    );
    m.insert("status".into(), Value::String(status.as_str().into()));
    m.insert("background".into(), get("background", Value::Bool(false)));
    m.insert("error".into(), error.unwrap_or(Value::Null));
    m.insert(
        "incomplete_details".into(),
        incomplete_reason
            .map(|r| json!({ "reason": r }))
            .unwrap_or(Value::Null),
    );
    m.insert("instructions".into(), get("instructions", Value::Null));
    m.insert(
        "max_output_tokens".into(),
        get("max_output_tokens", Value::Null),
    );
    m.insert("max_tool_calls".into(), get("max_tool_calls", Value::Null));
    m.insert("model".into(), Value::String(ctx.model.clone()));
    m.insert("output".into(), Value::Array(output.to_vec()));
    m.insert(
        "parallel_tool_calls".into(),
        get("parallel_tool_calls", Value::Bool(true)),
    );
    m.insert("previous_response_id".into(), Value::Null);
    m.insert(
        "prompt_cache_key".into(),
        get("prompt_cache_key", Value::Null),
    );
    m.insert(
        "reasoning".into(),
        get("reasoning", json!({"effort": null, "summary": null})),
    );
    m.insert(
        "safety_identifier".into(),
        get("safety_identifier", Value::Null),
    );
    m.insert(
        "service_tier".into(),
        get("service_tier", Value::String("default".into())),
    );
    m.insert("store".into(), get("store", Value::Bool(false)));
    m.insert("temperature".into(), get("temperature", Value::from(1.0)));
    m.insert(
        "text".into(),
        get("text", json!({"format": {"type": "text"}})),
    );
    m.insert(
        "tool_choice".into(),
        get("tool_choice", Value::String("auto".into())),
    );
    m.insert("tools".into(), get("tools", Value::Array(Vec::new())));
    m.insert("top_logprobs".into(), get("top_logprobs", Value::from(0)));
    m.insert("top_p".into(), get("top_p", Value::from(1.0)));
    m.insert(
        "truncation".into(),
        get("truncation", Value::String("disabled".into())),
    );
    m.insert("presence_penalty".into(), Value::from(0.0));
    m.insert("frequency_penalty".into(), Value::from(0.0));
    m.insert("usage".into(), usage.cloned().unwrap_or(Value::Null));
    m.insert("user".into(), get("user", Value::Null));
    m.insert("metadata".into(), get("metadata", json!({})));
    Value::Object(m)
}

/// Chat usage → Responses usage.
pub fn usage_json(u: &ChatUsage) -> Value {
    let cached = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .or(u.prompt_cache_hit_tokens)
        .or(u.cached_tokens)
        .unwrap_or(0);
    let reasoning = u
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens)
        .unwrap_or(0);
    let total = u
        .total_tokens
        .unwrap_or(u.prompt_tokens + u.completion_tokens);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total,
    })
}

/// A non-streamed chat completion → the Response object (status completed, incomplete or
/// failed). The same state machine as the stream path builds the items, so both agree.
pub fn convert_completion(ctx: &ResponseContext, completion: &ChatCompletion) -> Value {
    let mut conv = StreamConverter::new(ctx.clone(), false);
    conv.push_completion(completion);
    conv.finish_quiet();
    conv.into_final_response().unwrap_or(Value::Null)
}
