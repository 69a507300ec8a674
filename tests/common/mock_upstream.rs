//! A scriptable mock Chat Completions upstream (a fake provider) for the
//! integration tests.
//!
//! * Listens on `127.0.0.1:0` (axum), in the test's tokio runtime.
//! * Records every request it receives (method, path, headers, raw and parsed
//!   body) together with the mock's own verdict: a request the mock rejects
//!   (like a strict real provider would, with HTTP 400 and an OpenAI-style
//!   error body) is recorded with `rejection = Some(reason)`.
//! * Replies come from a FIFO script of [`MockReply`] values pushed by the test.
//!   When the script is empty, a default "Hello from mock" text reply is sent,
//!   streamed or as JSON depending on the request's `stream` flag. Rejected
//!   requests do not consume a scripted reply.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

/// Text of the default reply sent when the script is empty.
pub const DEFAULT_TEXT: &str = "Hello from mock";
/// Usage numbers reported by the SSE / JSON builders.
pub const PROMPT_TOKENS: u64 = 42;
pub const COMPLETION_TOKENS: u64 = 7;
pub const TOTAL_TOKENS: u64 = PROMPT_TOKENS + COMPLETION_TOKENS;
pub const CACHED_TOKENS: u64 = 10;
/// The id every built chunk carries.
pub const CHAT_ID: &str = "chatcmpl-mock-1";
/// The model every built chunk carries.
pub const MOCK_MODEL: &str = "mock-model";

/// Keys of a Responses request that no Chat Completions provider accepts.
pub const RESPONSES_ONLY_KEYS: &[&str] = &[
    "input",
    "instructions",
    "store",
    "include",
    "prompt_cache_key",
    "client_metadata",
    "text",
    "reasoning",
    "max_output_tokens",
];

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum MockReply {
    /// HTTP 200 `text/event-stream`; the chunks are written as they are (each
    /// one is normally a full `data: ...\n\n` frame, but may be any bytes),
    /// with `delay_ms` before each chunk. With `cut_after = Some(n)` the
    /// connection is aborted after `n` chunks without finishing the chunked
    /// body (like a provider dying mid-stream).
    Sse {
        chunks: Vec<String>,
        delay_ms: u64,
        cut_after: Option<usize>,
    },
    /// A JSON reply with the given status.
    Json { status: u16, body: Value },
    /// Any status, content type and raw body (e.g. an HTML 502 page).
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Another reply, sent after `delay_ms` (slow headers) with extra headers.
    Delayed {
        reply: Box<MockReply>,
        delay_ms: u64,
        headers: Vec<(String, String)>,
    },
    /// A reply built from the request it answers (e.g. a text quoting a tool output the
    /// request carries).
    Dynamic(DynamicReply),
}

/// The function behind [`MockReply::Dynamic`].
#[derive(Clone)]
pub struct DynamicReply(pub Arc<dyn Fn(&RecordedRequest) -> MockReply + Send + Sync>);

impl std::fmt::Debug for DynamicReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DynamicReply(..)")
    }
}

impl MockReply {
    /// A streamed text reply (see [`sse_text`]).
    pub fn text(text: &str) -> Self {
        Self::sse(sse_text(text))
    }

    /// A streamed reply made of these frames, no delay, no cut.
    pub fn sse(chunks: Vec<String>) -> Self {
        MockReply::Sse {
            chunks,
            delay_ms: 0,
            cut_after: None,
        }
    }

    /// A streamed tool-call reply (see [`sse_tool_calls`]).
    pub fn tool_call(call_id: &str, name: &str, arguments: &str) -> Self {
        Self::sse(sse_tool_calls(&[(call_id, name, arguments)]))
    }

    /// A streamed reasoning-then-text reply (see [`sse_reasoning`]).
    pub fn reasoning(reasoning: &str, text: &str) -> Self {
        Self::sse(sse_reasoning(reasoning, text))
    }

    /// A non-streamed chat completion with this text.
    pub fn json_text(text: &str) -> Self {
        MockReply::Json {
            status: 200,
            body: chat_completion_json(text),
        }
    }

    /// A reply built by `f` from the request it answers.
    pub fn dynamic(f: impl Fn(&RecordedRequest) -> MockReply + Send + Sync + 'static) -> Self {
        MockReply::Dynamic(DynamicReply(Arc::new(f)))
    }

    /// An OpenAI-style error with this status.
    pub fn error(status: u16, message: &str, type_: &str, code: Option<&str>) -> Self {
        MockReply::Json {
            status,
            body: error_body(message, type_, code),
        }
    }
}

/// What the mock saw of one request.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub query: Option<String>,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body_raw: String,
    /// `None` when the body is not JSON.
    pub body: Option<Value>,
    /// `Some(reason)` when the mock rejected the request with HTTP 400.
    pub rejection: Option<String>,
}

impl RecordedRequest {
    /// First value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The parsed JSON body; panics when the body was not JSON.
    pub fn json(&self) -> &Value {
        match &self.body {
            Some(v) => v,
            None => panic!("upstream request body is not JSON: {:?}", self.body_raw),
        }
    }

    /// The `messages` array (empty when absent).
    pub fn messages(&self) -> Vec<Value> {
        self.body
            .as_ref()
            .and_then(|b| b.get("messages"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    pub fn is_rejected(&self) -> bool {
        self.rejection.is_some()
    }
}

/// The text of a Chat message's `content`, whether a string or an array of
/// `{type: "text", text}` parts (parts joined with "\n").
pub fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| {
                p.get("text")
                    .and_then(Value::as_str)
                    .or_else(|| p.as_str())
                    .map(str::to_owned)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Opt-in checks, off by default: the mock then behaves like a stricter provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Strictness {
    /// OpenAI's rule: an assistant message with `tool_calls` must be followed by one `tool`
    /// message per call id (before any other message), and a `tool` message must answer a
    /// call of the assistant message before it.
    pub tool_pairing: bool,
    /// DeepSeek's / Kimi's rule in thinking mode: an assistant message with `tool_calls` made
    /// in a thinking turn (a streamed reply of this mock that carried `reasoning_content`
    /// and these call ids) must carry its non-empty `reasoning_content` (else 400
    /// "reasoning_content ... must be passed back").
    pub reasoning_passback: bool,
}

#[derive(Default)]
struct MockState {
    strictness: Mutex<Strictness>,
    /// Ids of the tool calls this mock streamed in a reply that also streamed reasoning.
    thinking_calls: Mutex<std::collections::HashSet<String>>,
    script: Mutex<VecDeque<MockReply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Streamed replies whose body was dropped before its end (the client went away).
    abandoned: Arc<std::sync::atomic::AtomicUsize>,
}

/// A running mock upstream. Dropping it stops the server.
pub struct MockUpstream {
    addr: SocketAddr,
    state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    /// Starts the mock on 127.0.0.1 with an OS-assigned port.
    /// A mock that answers every request (up to 8) with `brain`'s reply to it, strict about
    /// tool-call pairing (the scripted Codex tasks).
    pub async fn scripted(brain: fn(&RecordedRequest) -> MockReply) -> Self {
        let mock = Self::start().await;
        mock.set_strictness(Strictness {
            tool_pairing: true,
            reasoning_passback: false,
        });
        for _ in 0..8 {
            mock.push(MockReply::dynamic(brain));
        }
        mock
    }

    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock upstream");
        let addr = listener.local_addr().expect("mock local addr");
        let state = Arc::new(MockState::default());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockUpstream { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many streamed replies were abandoned by the other side before their end.
    pub fn abandoned_streams(&self) -> usize {
        self.state
            .abandoned
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Turns the opt-in checks of [`Strictness`] on or off (all off by default).
    pub fn set_strictness(&self, strictness: Strictness) {
        *self.state.strictness.lock().unwrap() = strictness;
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: MockReply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    /// Number of scripted replies not yet used.
    pub fn pending_replies(&self) -> usize {
        self.state.script.lock().unwrap().len()
    }

    /// Every request received so far (accepted and rejected).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The requests the mock rejected.
    pub fn rejections(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_rejected)
            .collect()
    }

    /// Panics (with the reasons) when the mock rejected any request.
    pub fn assert_no_rejections(&self) {
        let rejected = self.rejections();
        assert!(
            rejected.is_empty(),
            "the mock upstream rejected {} request(s): {:#?}",
            rejected.len(),
            rejected
                .iter()
                .map(|r| (r.path.clone(), r.rejection.clone()))
                .collect::<Vec<_>>()
        );
    }

    /// The only request received; panics unless there was exactly one, and
    /// when it was rejected.
    pub fn single_request(&self) -> RecordedRequest {
        let reqs = self.requests();
        assert_eq!(
            reqs.len(),
            1,
            "expected exactly one upstream request, got {}: {:#?}",
            reqs.len(),
            reqs.iter()
                .map(|r| (r.method.clone(), r.path.clone(), r.rejection.clone()))
                .collect::<Vec<_>>()
        );
        let req = reqs.into_iter().next().unwrap();
        assert!(
            req.rejection.is_none(),
            "the mock rejected the upstream request: {:?}\nbody: {}",
            req.rejection,
            req.body_raw
        );
        req
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(state): State<Arc<MockState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let body_raw = String::from_utf8_lossy(&bytes).into_owned();
    let body_json: Option<Value> = serde_json::from_slice(&bytes).ok();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body_raw,
        body: body_json,
        rejection: None,
    };

    let strictness = *state.strictness.lock().unwrap();
    let thinking_calls = state.thinking_calls.lock().unwrap().clone();
    if let Err(reason) =
        validate(&recorded).and_then(|()| validate_strict(&recorded, strictness, &thinking_calls))
    {
        recorded.rejection = Some(reason.clone());
        state.requests.lock().unwrap().push(recorded);
        return json_response(400, &error_body(&reason, "invalid_request_error", None));
    }

    let streaming = recorded
        .body
        .as_ref()
        .and_then(|b| b.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    state.requests.lock().unwrap().push(recorded.clone());

    let reply = state.script.lock().unwrap().pop_front();
    let mut reply = reply.unwrap_or_else(|| {
        if streaming {
            MockReply::text(DEFAULT_TEXT)
        } else {
            MockReply::json_text(DEFAULT_TEXT)
        }
    });
    while let MockReply::Dynamic(f) = reply {
        reply = (f.0)(&recorded);
    }
    note_thinking_calls(&reply, &state.thinking_calls);
    render(reply, &state.abandoned).await
}

/// The checks a strict OpenAI-compatible provider makes.
fn validate(req: &RecordedRequest) -> Result<(), String> {
    if req.method != "POST" {
        return Err(format!("method {} not allowed", req.method));
    }
    if !req.path.ends_with("/chat/completions") {
        return Err(format!("unknown path {}", req.path));
    }
    match req.header("authorization") {
        Some(v) if v.starts_with("Bearer ") && v.len() > "Bearer ".len() => {}
        other => {
            return Err(format!(
                "missing or malformed Authorization header: {other:?}"
            ))
        }
    }
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| format!("body is not valid JSON: {:?}", truncate(&req.body_raw)))?;
    let obj = body
        .as_object()
        .ok_or_else(|| "body is not a JSON object".to_owned())?;
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        _ => return Err("you must provide a model parameter".to_owned()),
    }
    for key in RESPONSES_ONLY_KEYS {
        if obj.contains_key(*key) {
            return Err(format!("Unrecognized request argument supplied: {key}"));
        }
    }
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => return Err("messages must be a non-empty array".to_owned()),
    };
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("<none>");
        match role {
            "system" | "user" | "assistant" => {}
            "tool" => {
                if m.get("tool_call_id").and_then(Value::as_str).is_none() {
                    return Err(format!("messages[{i}]: tool message without tool_call_id"));
                }
            }
            other => {
                return Err(format!(
                    "messages[{i}].role: invalid value {other:?} (expected system, user, assistant or tool)"
                ))
            }
        }
        if let Some(calls) = m.get("tool_calls") {
            let calls = calls
                .as_array()
                .ok_or_else(|| format!("messages[{i}].tool_calls is not an array"))?;
            for (j, c) in calls.iter().enumerate() {
                let ok = c.get("id").and_then(Value::as_str).is_some()
                    && c.get("type").and_then(Value::as_str) == Some("function")
                    && c.pointer("/function/name")
                        .and_then(Value::as_str)
                        .is_some()
                    && c.pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .is_some();
                if !ok {
                    return Err(format!("messages[{i}].tool_calls[{j}] is malformed: {c}"));
                }
            }
        }
    }
    if let Some(tools) = obj.get("tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| "tools is not an array".to_owned())?;
        for (i, t) in tools.iter().enumerate() {
            let ok = t.get("type").and_then(Value::as_str) == Some("function")
                && t.pointer("/function/name")
                    .and_then(Value::as_str)
                    .is_some();
            if !ok {
                return Err(format!("tools[{i}] is not a valid function tool: {t}"));
            }
        }
    }
    Ok(())
}

/// Remembers the tool call ids of a streamed reply that also streams reasoning.
fn note_thinking_calls(reply: &MockReply, calls: &Mutex<std::collections::HashSet<String>>) {
    let chunks = match reply {
        MockReply::Sse { chunks, .. } => chunks,
        MockReply::Delayed { reply, .. } => return note_thinking_calls(reply, calls),
        _ => return,
    };
    let mut thinking = false;
    let mut ids = Vec::new();
    for line in chunks.iter().flat_map(|c| c.lines()) {
        let Some(v) = line
            .strip_prefix("data:")
            .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
        else {
            continue;
        };
        for choice in v["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if delta["reasoning_content"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
            {
                thinking = true;
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                if let Some(id) = call["id"].as_str().filter(|id| !id.is_empty()) {
                    ids.push(id.to_owned());
                }
            }
        }
    }
    if thinking {
        calls.lock().unwrap().extend(ids);
    }
}

/// The opt-in checks of [`Strictness`] (run after [`validate`] accepted the request).
fn validate_strict(
    req: &RecordedRequest,
    strictness: Strictness,
    thinking_calls: &std::collections::HashSet<String>,
) -> Result<(), String> {
    let messages = req.messages();
    if strictness.reasoning_passback {
        for (i, m) in messages.iter().enumerate() {
            let has_calls = m
                .get("tool_calls")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| thinking_calls.contains(id))
                    })
                });
            let has_reasoning = m
                .get("reasoning_content")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.is_empty());
            if m.get("role").and_then(Value::as_str) == Some("assistant")
                && has_calls
                && !has_reasoning
            {
                return Err(format!(
                    "messages[{i}]: The reasoning_content in the thinking mode must be passed \
                     back to the API (assistant message with tool_calls of a thinking turn \
                     without reasoning_content)"
                ));
            }
        }
    }
    if strictness.tool_pairing {
        // Call ids of the last assistant message still waiting for their tool message.
        let mut open: Vec<String> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("");
            if role == "tool" {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                match open.iter().position(|o| o == id) {
                    Some(p) => {
                        open.remove(p);
                    }
                    None => {
                        return Err(format!(
                            "messages[{i}]: messages with role 'tool' must be a response to a \
                             preceding message with 'tool_calls' (tool_call_id {id:?})"
                        ))
                    }
                }
                continue;
            }
            if !open.is_empty() {
                return Err(format!(
                    "messages[{i}]: an assistant message with 'tool_calls' must be followed by \
                     tool messages responding to each 'tool_call_id'; missing: {open:?}"
                ));
            }
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                for c in calls {
                    let id = c.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                    if open.contains(&id) {
                        return Err(format!("messages[{i}]: duplicate tool_call id {id:?}"));
                    }
                    open.push(id);
                }
            }
        }
        if !open.is_empty() {
            return Err(format!(
                "an assistant message with 'tool_calls' must be followed by tool messages \
                 responding to each 'tool_call_id'; missing: {open:?}"
            ));
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// A JSON response of the mock upstreams.
pub fn json_response(status: u16, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Counts a stream as abandoned when dropped before it finished.
struct AbandonGuard {
    counter: Arc<std::sync::atomic::AtomicUsize>,
    finished: bool,
}

impl AbandonGuard {
    fn done(&mut self) {
        self.finished = true;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.counter
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

async fn render(reply: MockReply, abandoned: &Arc<std::sync::atomic::AtomicUsize>) -> Response {
    match reply {
        MockReply::Delayed {
            reply,
            delay_ms,
            headers,
        } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let mut resp = Box::pin(render(*reply, abandoned)).await;
            for (k, v) in headers {
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(name, value);
                }
            }
            resp
        }
        MockReply::Json { status, body } => json_response(status, &body),
        // Resolved in `handle`; a nested one (inside `Delayed`) gets no request to see.
        MockReply::Dynamic(_) => json_response(
            500,
            &error_body(
                "mock upstream: a dynamic reply must not be nested",
                "server_error",
                None,
            ),
        ),
        MockReply::Raw {
            status,
            content_type,
            body,
        } => {
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        MockReply::Sse {
            chunks,
            delay_ms,
            cut_after,
        } => {
            let limit = cut_after.unwrap_or(usize::MAX);
            let cut = cut_after.is_some_and(|n| n <= chunks.len());
            // State: (remaining chunks, how many sent, whether the cut was delivered).
            let guard = AbandonGuard {
                counter: Arc::clone(abandoned),
                finished: false,
            };
            let stream = futures_util::stream::unfold(
                (chunks.into_iter(), 0usize, false, guard),
                move |(mut it, sent, finished, mut guard)| async move {
                    if finished {
                        guard.done();
                        return None;
                    }
                    if sent >= limit {
                        if cut {
                            // Pause first so hyper flushes the chunks already
                            // written (an immediate error would drop them).
                            tokio::time::sleep(Duration::from_millis(delay_ms.max(50))).await;
                            // An error from the body stream makes hyper abort the
                            // connection without the terminating zero-length chunk.
                            let err = std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "mock upstream: connection cut mid-stream",
                            );
                            guard.done();
                            return Some((Err(err), (it, sent, true, guard)));
                        }
                        guard.done();
                        return None;
                    }
                    let Some(chunk) = it.next() else {
                        guard.done();
                        return None;
                    };
                    if delay_ms > 0 {
                        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                    }
                    Some((Ok(Bytes::from(chunk)), (it, sent + 1, false, guard)))
                },
            );
            let mut resp = Response::new(Body::from_stream(stream));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
    }
}

// ---------------------------------------------------------------------------
// Builders for realistic Chat Completions payloads.
// ---------------------------------------------------------------------------

/// One `data: {json}\n\n` frame.
pub fn frame(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// The final `data: [DONE]\n\n` frame.
pub fn done_frame() -> String {
    "data: [DONE]\n\n".to_owned()
}

/// A `chat.completion.chunk` with these choices.
pub fn chunk(choices: Value) -> Value {
    json!({
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000u64,
        "model": MOCK_MODEL,
        "system_fingerprint": "fp_mock",
        "choices": choices,
    })
}

/// A chunk with one choice (index 0) carrying this delta.
pub fn delta_chunk(delta: Value, finish_reason: Option<&str>) -> Value {
    chunk(json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }]))
}

/// The usage object every builder reports.
pub fn usage_json() -> Value {
    json!({
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": TOTAL_TOKENS,
        "prompt_tokens_details": { "cached_tokens": CACHED_TOKENS },
    })
}

/// The trailing usage chunk (empty `choices`, as with `include_usage`).
pub fn usage_chunk() -> Value {
    let mut c = chunk(json!([]));
    c["usage"] = usage_json();
    c
}

/// Splits a string into pieces of at most `n` chars (on char boundaries).
pub fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(n.max(1))
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// DeepSeek-shaped reasoning frames: the role chunk (empty `reasoning_content`), then the
/// reasoning in `reasoning_content` deltas of 6 chars.
pub fn reasoning_frames(reasoning: &str) -> Vec<String> {
    let mut out = vec![frame(&delta_chunk(
        json!({ "role": "assistant", "content": null, "reasoning_content": "" }),
        None,
    ))];
    for piece in split_pieces(reasoning, 6) {
        out.push(frame(&delta_chunk(
            json!({ "content": null, "reasoning_content": piece }),
            None,
        )));
    }
    out
}

/// Content-delta frames for this text (pieces of 5 chars).
fn content_frames(text: &str) -> Vec<String> {
    split_pieces(text, 5)
        .into_iter()
        .map(|p| frame(&delta_chunk(json!({ "content": p }), None)))
        .collect()
}

/// Frames for a text reply WITHOUT the final `[DONE]`: a role chunk with
/// empty content, content deltas, a `finish_reason: "stop"` chunk, the usage
/// chunk.
pub fn sse_text_without_done(text: &str) -> Vec<String> {
    let mut out = vec![frame(&delta_chunk(
        json!({ "role": "assistant", "content": "" }),
        None,
    ))];
    out.extend(content_frames(text));
    out.push(frame(&delta_chunk(json!({}), Some("stop"))));
    out.push(frame(&usage_chunk()));
    out
}

/// Realistic Chat Completions SSE for a text reply, ending in `[DONE]`.
pub fn sse_text(text: &str) -> Vec<String> {
    let mut out = sse_text_without_done(text);
    out.push(done_frame());
    out
}

/// Realistic SSE for one or more tool calls `(call_id, name, arguments)`:
/// `tool_calls` deltas keyed by `index`, id/type/name only in each call's first
/// delta, arguments split in pieces, `finish_reason: "tool_calls"`, usage,
/// `[DONE]`.
pub fn sse_tool_calls(calls: &[(&str, &str, &str)]) -> Vec<String> {
    let mut out = vec![frame(&delta_chunk(
        json!({ "role": "assistant", "content": null }),
        None,
    ))];
    for (index, (id, name, args)) in calls.iter().enumerate() {
        out.push(frame(&delta_chunk(
            json!({ "tool_calls": [{
                "index": index,
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": "" },
            }]}),
            None,
        )));
        for piece in split_pieces(args, 7) {
            out.push(frame(&delta_chunk(
                json!({ "tool_calls": [{ "index": index, "function": { "arguments": piece } }] }),
                None,
            )));
        }
    }
    out.push(frame(&delta_chunk(json!({}), Some("tool_calls"))));
    out.push(frame(&usage_chunk()));
    out.push(done_frame());
    out
}

/// Realistic SSE with `delta.reasoning_content` pieces before the content.
pub fn sse_reasoning(reasoning: &str, text: &str) -> Vec<String> {
    let mut out = vec![frame(&delta_chunk(
        json!({ "role": "assistant", "content": "", "reasoning_content": "" }),
        None,
    ))];
    for piece in split_pieces(reasoning, 6) {
        out.push(frame(&delta_chunk(
            json!({ "content": null, "reasoning_content": piece }),
            None,
        )));
    }
    out.extend(content_frames(text));
    out.push(frame(&delta_chunk(json!({}), Some("stop"))));
    out.push(frame(&usage_chunk()));
    out.push(done_frame());
    out
}

/// A non-streamed `chat.completion` with this text.
pub fn chat_completion_json(text: &str) -> Value {
    json!({
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": 1_700_000_000u64,
        "model": MOCK_MODEL,
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage_json(),
    })
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, type_: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": type_, "param": null, "code": code } })
}
