//! The Response object (for `response.created`/`completed`/... events and for non-streamed
//! replies) and the conversion of a non-streamed chat completion.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::ResponseContext;
use crate::types::chat::ChatUsage;
use crate::types::responses::ResponsesRequest;

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

/// The full Response object with every field OpenAI's and Open Responses' schemas require,
/// written as JSON into `out`. `output` holds the items ([`super::events::OutputItem`]). The fields that change during a turn are serialised here;
/// the request fields it echoes (instructions, tools, ...) were rendered once per request
/// ([`echo_members`]) and are copied in.
pub fn write_response<T: Serialize>(
    out: &mut Vec<u8>,
    ctx: &ResponseContext,
    status: Status,
    output: &[T],
    usage: Option<&Value>,
    error: Option<&Value>,
    incomplete_reason: Option<&str>,
) {
    #[derive(Serialize)]
    struct Reason<'a> {
        reason: &'a str,
    }
    #[derive(Serialize)]
    struct Head<'a, T> {
        id: &'a str,
        object: &'static str,
        created_at: u64,
        completed_at: Option<u64>,
        status: &'static str,
        error: Option<&'a Value>,
        incomplete_details: Option<Reason<'a>>,
        model: &'a str,
        output: &'a [T],
        previous_response_id: Option<&'a str>,
        presence_penalty: f64,
        frequency_penalty: f64,
        usage: Option<&'a Value>,
    }
    let head = Head {
        id: &ctx.response_id,
        object: "response",
        created_at: ctx.created_at,
        completed_at: (status == Status::Completed).then(|| ctx.now()),
        status: status.as_str(),
        error,
        incomplete_details: incomplete_reason.map(|reason| Reason { reason }),
        model: &ctx.model,
        output,
        previous_response_id: ctx.previous_response_id.as_deref(),
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        usage,
    };
    let start = out.len();
    if serde_json::to_writer(&mut *out, &head).is_err() {
        // Only a failing Serialize impl gets here (writing to memory cannot fail).
        out.truncate(start);
        out.extend_from_slice(b"{}");
        return;
    }
    // `{...}` → `{...,ECHO}`
    out.pop();
    out.push(b',');
    out.extend_from_slice(ctx.echo.as_bytes());
    out.push(b'}');
}

/// The Response object as a `Value` (tests and callers that inspect it).
pub fn response_object(
    ctx: &ResponseContext,
    status: Status,
    output: &[Value],
    usage: Option<&Value>,
    error: Option<Value>,
    incomplete_reason: Option<&str>,
) -> Value {
    let mut out = Vec::with_capacity(1024 + ctx.echo.len());
    write_response(
        &mut out,
        ctx,
        status,
        output,
        usage,
        error.as_ref(),
        incomplete_reason,
    );
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

/// The request fields a Response object echoes, with the API's defaults for the missing
/// ones, rendered once as JSON object members (`"instructions":...,"tools":[...],...`,
/// without braces). `tools` is copied from the request as the client wrote it.
/// `tools_echo`: the echoed tools when they are not the client's JSON as is.
pub fn echo_members(req: &ResponsesRequest<'_>, tools_echo: Option<&RawValue>) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(
        256 + req
            .instructions
            .as_ref()
            .map_or(0, |s| s.source_len() + s.source_len() / 8)
            + req.tools.as_ref().map_or(0, |t| t.raw.get().len()),
    );
    fn member<T: Serialize + ?Sized>(out: &mut Vec<u8>, key: &str, value: &T) {
        if !out.is_empty() {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        let start = out.len();
        if serde_json::to_writer(&mut *out, value).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"null");
        }
    }
    fn or<'a>(v: Option<&'a Value>, default: &'a Value) -> &'a Value {
        v.unwrap_or(default)
    }
    member(&mut out, "background", &req.background.unwrap_or(false));
    member(&mut out, "instructions", &req.instructions);
    member(&mut out, "max_output_tokens", &req.max_output_tokens);
    member(&mut out, "max_tool_calls", &req.max_tool_calls);
    member(
        &mut out,
        "parallel_tool_calls",
        &req.parallel_tool_calls.unwrap_or(true),
    );
    member(&mut out, "prompt_cache_key", &req.prompt_cache_key);
    match &req.reasoning {
        Some(r) => member(&mut out, "reasoning", r),
        None => member(
            &mut out,
            "reasoning",
            &json!({"effort": null, "summary": null}),
        ),
    }
    member(&mut out, "safety_identifier", &req.safety_identifier);
    member(
        &mut out,
        "service_tier",
        req.service_tier.as_deref().unwrap_or("default"),
    );
    member(&mut out, "store", &req.store.unwrap_or(false));
    member(&mut out, "temperature", &req.temperature.unwrap_or(1.0));
    match &req.text {
        Some(t) => member(&mut out, "text", t),
        None => member(&mut out, "text", &json!({"format": {"type": "text"}})),
    }
    member(
        &mut out,
        "tool_choice",
        or(req.tool_choice.as_ref(), &Value::String("auto".into())),
    );
    match (tools_echo, &req.tools) {
        (Some(echo), _) => member(&mut out, "tools", echo),
        (None, Some(t)) => member(&mut out, "tools", t),
        (None, None) => member(&mut out, "tools", &[] as &[Value]),
    }
    member(&mut out, "top_logprobs", &req.top_logprobs.unwrap_or(0));
    member(&mut out, "top_p", &req.top_p.unwrap_or(1.0));
    member(
        &mut out,
        "truncation",
        req.truncation.as_deref().unwrap_or("disabled"),
    );
    member(&mut out, "user", &req.user);
    member(&mut out, "metadata", or(req.metadata.as_ref(), &json!({})));
    // serde_json writes valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Chat usage → Responses usage.
pub fn usage_json(u: &ChatUsage) -> Value {
    let cached = u.cached();
    let reasoning = u.reasoning();
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
