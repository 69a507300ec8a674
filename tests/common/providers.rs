//! Strict mock providers, one per profile: each accepts only what the real provider accepts
//! (with the provider's own error body), and streams the way the provider streams.
//!
//! What each mock rejects and how it streams, with the source of each rule (provider doc, or
//! a second-hand report in an issue thread; rules marked "mock" are this mock's way of
//! checking a documented requirement the provider states but does not necessarily enforce):
//!
//! | | path after base | rejects | streams |
//! |---|---|---|---|
//! | GLM | `/api/paas/v4` + `/chat/completions` only (404 otherwise) | `tool_choice` other than `auto` (BigModel API reference); `strict` in a function (second-hand); roles other than system/user/assistant/tool | `reasoning_content` deltas; tool arguments streamed only with `tool_stream: true` (else the whole call in one delta); usage in the last chunk, next to `finish_reason` |
//! | Kimi | `/v1` + `/chat/completions` | while thinking (default): `tool_choice` required / named, a `temperature` other than 1, a `top_p` other than 0.95 (Kimi docs, issue reports); an assistant tool-call message without `reasoning_content`, or with a different one than was produced (second-hand) | `reasoning_content` deltas; ids `functions.<name>:<n>`; usage inside `choices[0]` of the finish chunk, cached tokens at `usage.cached_tokens` |
//! | DeepSeek | bare host or `/v1`, + `/chat/completions` | while thinking (default): an assistant tool-call message without `reasoning_content`, or with a different one (DeepSeek thinking-mode docs; empty-string case second-hand); `json_schema` response format; image parts | `reasoning_content` deltas, `usage: null` in every chunk, usage in a trailing chunk with empty `choices` (only with `include_usage`) carrying `prompt_cache_hit_tokens` |
//! | MiniMax | `/v1` + `/chat/completions` | role `developer`; a second `system` or one not first; content arrays; a function without `parameters`; tool-call arguments that are not JSON; a tool result for an unknown call (issue reports, code 2013); temperature / top_p outside (0, 1] (MiniMax docs); an assistant message that lost its `<think>` block (mock: MiniMax docs require it back unchanged) | `<think>…</think>` inside `content`; placeholder usage in every chunk; a finish chunk without `delta`; then a full `chat.completion` frame with the whole message and the real usage, and no `[DONE]` |
//! | OpenAI | `/v1` + `/chat/completions` | the generic checks | vLLM's `reasoning` deltas; usage in a trailing chunk (only with `include_usage`) |
//!
//! All of them also reject: a missing or wrong `Authorization`, Responses-only keys, unknown
//! roles, a `tool` message that answers no call of the assistant message before it, and an
//! assistant message with `tool_calls` not followed by one `tool` message per call.
//!
//! Replies come from a script ([`Reply`]) and, when it is empty, from a conversation: a
//! request whose last message is a tool result gets reasoning + a final text; one with tools
//! gets reasoning + a call of the configured tool; anything else reasoning + a text.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use super::mock_upstream::{
    frame, json_response, split_pieces, RecordedRequest, RESPONSES_ONLY_KEYS,
};

/// Usage every mock reports (in its own shape); [`expected_usage`] is what the client sees.
pub const PROMPT_TOKENS: u64 = 120;
pub const COMPLETION_TOKENS: u64 = 30;
pub const CACHED_TOKENS: u64 = 64;
pub const REASONING_TOKENS: u64 = 12;

/// The automatic conversation's texts.
pub const AUTO_REASONING_CALL: &str = "The user wants a file: run one command.";
pub const AUTO_REASONING_FINAL: &str = "The command succeeded; report it.";
pub const AUTO_FINAL_TEXT: &str = "Done: the file is created.";
pub const AUTO_TEXT: &str = "Hello from the provider mock.";

/// The mocks' own web search (GLM's `web_search` tool, Kimi's `$web_search`): the page
/// their answers cite.
pub const SEARCH_URL: &str = "https://search.example.test/rust-2027-edition";
pub const SEARCH_TITLE: &str = "The Rust 2027 edition";
/// GLM's answer, citing its first result by its `refer` marker.
pub const GLM_SEARCH_TEXT: &str = "The 2027 edition is planned [ref_1].";
/// Kimi's answer after its search (Kimi gives no sources: the answer names the page).
pub const KIMI_SEARCH_TEXT: &str =
    "The 2027 edition is planned (https://search.example.test/rust-2027-edition).";
/// Kimi's search receipt: the `$web_search` call's arguments, to be sent back unchanged.
pub const KIMI_SEARCH_ARGS: &str =
    r#"{"search_result":{"search_id":"mock-search-0001"},"usage":{"total_tokens":840}}"#;
/// The search tool name Kimi's model calls.
pub const KIMI_WEB_SEARCH: &str = "$web_search";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Glm,
    Kimi,
    DeepSeek,
    MiniMax,
    OpenAi,
}

pub const ALL: [Profile; 5] = [
    Profile::Glm,
    Profile::Kimi,
    Profile::DeepSeek,
    Profile::MiniMax,
    Profile::OpenAi,
];

impl Profile {
    /// The proxy's name of the profile (`provider` in the config).
    pub fn name(self) -> &'static str {
        match self {
            Profile::Glm => "glm",
            Profile::Kimi => "kimi",
            Profile::DeepSeek => "deepseek",
            Profile::MiniMax => "minimax",
            Profile::OpenAi => "openai",
        }
    }

    /// A model name of this provider.
    pub fn model(self) -> &'static str {
        match self {
            Profile::Glm => "glm-4.6",
            Profile::Kimi => "kimi-k2.6",
            Profile::DeepSeek => "deepseek-v4-pro",
            Profile::MiniMax => "MiniMax-M2.7",
            Profile::OpenAi => "qwen3-coder",
        }
    }

    /// The base URL path the provider documents (the proxy appends `/chat/completions`).
    pub fn base_path(self) -> &'static str {
        match self {
            Profile::Glm => "/api/paas/v4",
            Profile::DeepSeek => "",
            _ => "/v1",
        }
    }

    fn accepts_path(self, path: &str) -> bool {
        match self {
            Profile::DeepSeek => path == "/chat/completions" || path == "/v1/chat/completions",
            p => path == format!("{}/chat/completions", p.base_path()),
        }
    }

    fn roles(self) -> &'static [&'static str] {
        match self {
            Profile::OpenAi => &["system", "developer", "user", "assistant", "tool"],
            _ => &["system", "user", "assistant", "tool"],
        }
    }

    /// Reasoning streamed as a separate field (not `<think>` in the content).
    fn reasoning_field(self) -> Option<&'static str> {
        match self {
            Profile::MiniMax => None,
            Profile::OpenAi => Some("reasoning"),
            _ => Some("reasoning_content"),
        }
    }
}

/// The Responses usage the client must see for a reply of this mock.
pub fn expected_usage(profile: Profile) -> Value {
    let reasoning = match profile {
        Profile::DeepSeek | Profile::MiniMax | Profile::OpenAi => REASONING_TOKENS,
        Profile::Glm | Profile::Kimi => 0,
    };
    json!({
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": CACHED_TOKENS, "cache_write_tokens": 0},
        "output_tokens": COMPLETION_TOKENS,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    })
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    Text {
        reasoning: Option<String>,
        text: String,
    },
    /// One tool call; the call id is made up the provider's way.
    Tool {
        reasoning: Option<String>,
        name: String,
        arguments: String,
    },
    /// The provider's typical error (see [`error_reply`]).
    Error,
    /// GLM: a text answer after its own web search, the results in the top-level
    /// `web_search` array.
    Searched {
        reasoning: Option<String>,
        text: String,
    },
}

impl Reply {
    pub fn text(reasoning: Option<&str>, text: &str) -> Self {
        Reply::Text {
            reasoning: reasoning.map(str::to_owned),
            text: text.to_owned(),
        }
    }

    pub fn tool(reasoning: Option<&str>, name: &str, arguments: &str) -> Self {
        Reply::Tool {
            reasoning: reasoning.map(str::to_owned),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        }
    }
}

/// What a mock produced for a tool call (to check what comes back).
#[derive(Debug, Clone)]
pub struct EmittedCall {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
    pub reasoning: String,
}

struct MockState {
    profile: Profile,
    key: String,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    calls: Mutex<HashMap<String, EmittedCall>>,
    /// (tool name, arguments) of the automatic conversation's call.
    auto_call: Mutex<(String, String)>,
    counter: Mutex<u64>,
}

/// A running strict mock provider. Dropping it stops the server.
pub struct ProviderMock {
    addr: SocketAddr,
    state: Arc<MockState>,
    task: tokio::task::JoinHandle<()>,
}

impl ProviderMock {
    /// Starts the mock of `profile` on 127.0.0.1, accepting only `Bearer {key}`.
    pub async fn start(profile: Profile, key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind provider mock");
        let addr = listener.local_addr().expect("provider mock addr");
        let state = Arc::new(MockState {
            profile,
            key: key.to_owned(),
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            calls: Mutex::new(HashMap::new()),
            auto_call: Mutex::new(("exec_command".to_owned(), "{}".to_owned())),
            counter: Mutex::new(0),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ProviderMock { addr, state, task }
    }

    pub fn profile(&self) -> Profile {
        self.state.profile
    }

    /// The base URL to configure (`url` of the backend), as the provider documents it.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.state.profile.base_path())
    }

    /// A backend entry for the proxy's config, with `provider` set to this profile.
    pub fn backend(&self, name: &str, match_rules: Value) -> Value {
        json!({
            "name": name,
            "url": self.base_url(),
            "api_key": self.state.key,
            "provider": self.state.profile.name(),
            "match_rules": match_rules,
        })
    }

    pub fn push(&self, reply: Reply) {
        self.state.script.lock().unwrap().push_back(reply);
    }

    /// The call the automatic conversation makes when a request has tools.
    pub fn set_auto_call(&self, name: &str, arguments: &str) {
        *self.state.auto_call.lock().unwrap() = (name.to_owned(), arguments.to_owned());
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The tool calls this mock produced, by call id.
    pub fn emitted_calls(&self) -> HashMap<String, EmittedCall> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Panics (with the reasons) when the mock rejected any request.
    pub fn assert_all_accepted(&self) {
        let rejected: Vec<(String, Option<String>)> = self
            .requests()
            .into_iter()
            .filter(RecordedRequest::is_rejected)
            .map(|r| (r.path, r.rejection))
            .collect();
        assert!(
            rejected.is_empty(),
            "the {} mock rejected {} request(s): {rejected:#?}",
            self.state.profile.name(),
            rejected.len()
        );
    }

    /// Checks one request body against this provider's rules, without sending it: the
    /// reason it would be rejected, if any.
    pub fn check(&self, body: &Value) -> Result<(), String> {
        let calls = self.state.calls.lock().unwrap().clone();
        validate_body(self.state.profile, body, &calls).map_err(|(_, m)| m)
    }
}

impl Drop for ProviderMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(state): State<Arc<MockState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_raw: String::from_utf8_lossy(&bytes).into_owned(),
        body: serde_json::from_slice(&bytes).ok(),
        rejection: None,
    };
    let profile = state.profile;
    if let Err((status, reason)) = validate_request(&state, &recorded) {
        recorded.rejection = Some(reason.clone());
        state.requests.lock().unwrap().push(recorded);
        return rejection(profile, status, &reason);
    }
    state.requests.lock().unwrap().push(recorded.clone());
    let body = recorded.body.unwrap_or(Value::Null);
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| auto_reply(&state, &body));
    render(&state, &body, reply)
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

type Rejection = (u16, String);

fn validate_request(state: &MockState, req: &RecordedRequest) -> Result<(), Rejection> {
    let profile = state.profile;
    if req.method != "POST" || !profile.accepts_path(&req.path) {
        return Err((404, format!("Not Found: {} {}", req.method, req.path)));
    }
    let want = format!("Bearer {}", state.key);
    if req.header("authorization") != Some(want.as_str()) {
        return Err((
            401,
            format!(
                "invalid authentication: {:?}",
                req.header("authorization").map(|_| "(a different key)")
            ),
        ));
    }
    let body = req
        .body
        .as_ref()
        .ok_or_else(|| (400, "the body is not JSON".to_owned()))?;
    let calls = state.calls.lock().unwrap().clone();
    validate_body(profile, body, &calls)
}

fn thinking_on(body: &Value) -> bool {
    body.pointer("/thinking/type").and_then(Value::as_str) != Some("disabled")
}

fn bad(msg: impl Into<String>) -> Rejection {
    (400, msg.into())
}

fn validate_body(
    profile: Profile,
    body: &Value,
    calls: &HashMap<String, EmittedCall>,
) -> Result<(), Rejection> {
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the body is not a JSON object"))?;
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        _ => return Err(bad("model is required")),
    }
    for key in RESPONSES_ONLY_KEYS {
        if obj.contains_key(*key) {
            return Err(bad(format!(
                "Unrecognized request argument supplied: {key}"
            )));
        }
    }
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => return Err(bad("messages must be a non-empty array")),
    };
    check_roles_and_pairing(profile, messages)?;
    check_tools(profile, obj)?;
    check_sampling(profile, obj, thinking_on(body))?;
    match profile {
        Profile::Glm => {
            if let Some(choice) = obj.get("tool_choice") {
                if choice != "auto" {
                    return Err(bad(format!(
                        "tool_choice {choice}: only \"auto\" is supported"
                    )));
                }
            }
        }
        Profile::Kimi => {
            for (i, m) in messages.iter().enumerate() {
                let id = m["tool_call_id"].as_str().unwrap_or("");
                let Some(call) = calls.get(id).filter(|c| c.name == KIMI_WEB_SEARCH) else {
                    continue;
                };
                if m["content"].as_str() != Some(call.arguments.as_str()) {
                    return Err(bad(format!(
                        "messages[{i}]: the $web_search result must be the call's arguments unchanged"
                    )));
                }
            }
            if thinking_on(body) {
                if let Some(choice) = obj.get("tool_choice") {
                    if choice != "auto" && choice != "none" {
                        return Err(bad(
                            "tool_choice specified is incompatible with thinking enabled",
                        ));
                    }
                }
                check_reasoning_passback(profile, messages, calls, |i| {
                    format!(
                        "thinking is enabled but reasoning_content is missing in assistant tool call message at index {i}"
                    )
                })?;
            }
        }
        Profile::DeepSeek => {
            if body
                .pointer("/response_format/type")
                .and_then(Value::as_str)
                == Some("json_schema")
            {
                return Err(bad("This response_format type is unavailable now"));
            }
            for (i, m) in messages.iter().enumerate() {
                if let Some(parts) = m.get("content").and_then(Value::as_array) {
                    if parts.iter().any(|p| p["type"] != "text") {
                        return Err(bad(format!(
                            "Failed to deserialize the JSON body into the target type: messages[{i}]: unknown variant `image_url`, expected `text`"
                        )));
                    }
                }
            }
            if thinking_on(body) {
                check_reasoning_passback(profile, messages, calls, |_| {
                    "The reasoning_content in the thinking mode must be passed back to the API."
                        .to_owned()
                })?;
            }
        }
        Profile::MiniMax => {
            for (i, m) in messages.iter().enumerate() {
                if m.get("content").is_some_and(Value::is_array) {
                    return Err(bad(format!(
                        "invalid params, messages[{i}].content must be a string (2013)"
                    )));
                }
                // The whole assistant message, <think> included, must come back.
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    let id = c["id"].as_str().unwrap_or("");
                    if let Some(e) = calls.get(id).filter(|e| !e.reasoning.is_empty()) {
                        let block = format!("<think>\n{}\n</think>", e.reasoning);
                        let content = m["content"].as_str().unwrap_or("");
                        if !content.starts_with(&block) {
                            return Err(bad(format!(
                                "[mock] messages[{i}]: the assistant message of tool call {id} \
                                 lost its thinking: content {content:?} does not start with {block:?}"
                            )));
                        }
                    }
                }
            }
        }
        Profile::OpenAi => {}
    }
    Ok(())
}

fn check_roles_and_pairing(profile: Profile, messages: &[Value]) -> Result<(), Rejection> {
    let mut open: Vec<String> = Vec::new();
    let mut systems = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("<none>");
        if !profile.roles().contains(&role) {
            return Err(bad(match profile {
                Profile::MiniMax => {
                    format!("invalid params, chat content has invalid message role: {role} (2013)")
                }
                _ => format!("messages[{i}].role: invalid value {role:?}"),
            }));
        }
        if profile == Profile::MiniMax && role == "system" {
            systems += 1;
            if systems > 1 {
                return Err(bad("invalid params, invalid chat setting (2013)"));
            }
            if i > 0 {
                return Err(bad(
                    "invalid params, chat content has invalid message role: system (2013)",
                ));
            }
        }
        if role == "tool" {
            let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
            match open.iter().position(|o| o == id) {
                Some(p) => {
                    open.remove(p);
                }
                None => {
                    return Err(bad(match profile {
                        Profile::MiniMax => {
                            format!("invalid params, tool result's tool id({id}) not found (2013)")
                        }
                        _ => format!(
                            "messages[{i}]: messages with role 'tool' must be a response to a \
                             preceding message with 'tool_calls' (tool_call_id {id:?})"
                        ),
                    }));
                }
            }
            continue;
        }
        if !open.is_empty() {
            return Err(bad(format!(
                "messages[{i}]: an assistant message with 'tool_calls' must be followed by tool \
                 messages responding to each 'tool_call_id'; missing: {open:?}"
            )));
        }
        if let Some(calls) = m.get("tool_calls") {
            let calls = calls
                .as_array()
                .ok_or_else(|| bad(format!("messages[{i}].tool_calls is not an array")))?;
            for (j, c) in calls.iter().enumerate() {
                let id = c.get("id").and_then(Value::as_str);
                let name = c.pointer("/function/name").and_then(Value::as_str);
                let args = c.pointer("/function/arguments").and_then(Value::as_str);
                let (Some(id), Some(_), Some(args)) = (id, name, args) else {
                    return Err(bad(format!(
                        "messages[{i}].tool_calls[{j}] is malformed: {c}"
                    )));
                };
                let search_call = profile == Profile::Kimi
                    && c.get("type").and_then(Value::as_str) == Some("builtin_function")
                    && c.pointer("/function/name").and_then(Value::as_str) == Some(KIMI_WEB_SEARCH);
                if !search_call && c.get("type").and_then(Value::as_str) != Some("function") {
                    return Err(bad(format!(
                        "messages[{i}].tool_calls[{j}].type must be function"
                    )));
                }
                if profile == Profile::MiniMax && serde_json::from_str::<Value>(args).is_err() {
                    return Err(bad(format!(
                        "invalid params, invalid function arguments json string, tool_call_id: {id} (2013)"
                    )));
                }
                open.push(id.to_owned());
            }
        }
    }
    if !open.is_empty() {
        return Err(bad(format!(
            "an assistant message with 'tool_calls' must be followed by tool messages \
             responding to each 'tool_call_id'; missing: {open:?}"
        )));
    }
    Ok(())
}

fn check_tools(profile: Profile, obj: &serde_json::Map<String, Value>) -> Result<(), Rejection> {
    let Some(tools) = obj.get("tools") else {
        return Ok(());
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| bad("tools is not an array"))?;
    for (i, t) in tools.iter().enumerate() {
        if let Some(native) = native_search_tool(profile, t) {
            native.map_err(|m| bad(format!("tools[{i}]: {m}")))?;
            continue;
        }
        if t.get("type").and_then(Value::as_str) != Some("function")
            || t.pointer("/function/name")
                .and_then(Value::as_str)
                .is_none()
        {
            return Err(bad(format!("tools[{i}] is not a valid function tool")));
        }
        if profile == Profile::Glm && t.pointer("/function/strict").is_some() {
            return Err(bad(format!("tools[{i}].function.strict is not supported")));
        }
        if profile == Profile::MiniMax
            && !t
                .pointer("/function/parameters")
                .is_some_and(Value::is_object)
        {
            return Err(bad("invalid params, function parameters is empty (2013)"));
        }
    }
    Ok(())
}

/// The provider's own search tool, checked as the provider documents it (`None`: not one).
/// GLM: `{"type": "web_search", "web_search": {"enable": true, "search_engine": ...}}` (a
/// bare one, or an unknown engine, is rejected); Kimi: `{"type": "builtin_function",
/// "function": {"name": "$web_search"}}`; DeepSeek: `{"type": "deepseek_web_search"}`.
fn native_search_tool(profile: Profile, t: &Value) -> Option<Result<(), String>> {
    let ty = t.get("type").and_then(Value::as_str)?;
    Some(match (profile, ty) {
        (Profile::Glm, "web_search") => {
            let ws = t.get("web_search");
            let engine = ws
                .and_then(|w| w.get("search_engine"))
                .and_then(Value::as_str);
            let enabled = ws.and_then(|w| w.get("enable"));
            if !matches!(
                engine,
                Some("search_std" | "search_pro" | "search_pro_sogou" | "search_pro_quark")
            ) {
                Err(format!("web_search.search_engine is required and must be a known engine, got {engine:?}"))
            } else if enabled != Some(&json!(true)) && enabled != Some(&json!("True")) {
                Err("web_search.enable must be true".to_owned())
            } else {
                Ok(())
            }
        }
        (Profile::Kimi, "builtin_function") => {
            if t.pointer("/function/name").and_then(Value::as_str) == Some(KIMI_WEB_SEARCH) {
                Ok(())
            } else {
                Err("unknown builtin_function".to_owned())
            }
        }
        (Profile::DeepSeek, "deepseek_web_search") => Ok(()),
        _ => return None,
    })
}

/// The request offers the provider's own search.
fn offers_search(profile: Profile, body: &Value) -> bool {
    body["tools"].as_array().is_some_and(|tools| {
        tools
            .iter()
            .any(|t| matches!(native_search_tool(profile, t), Some(Ok(()))))
    })
}

/// MiniMax: (0, 1]; GLM: (0, 1]; Kimi K2.6: fixed (temperature 1 thinking, 0.6 not; top_p 0.95).
fn check_sampling(
    profile: Profile,
    obj: &serde_json::Map<String, Value>,
    thinking: bool,
) -> Result<(), Rejection> {
    for key in ["temperature", "top_p"] {
        let Some(v) = obj.get(key) else { continue };
        let v = v
            .as_f64()
            .ok_or_else(|| bad(format!("{key} must be a number")))?;
        match profile {
            Profile::MiniMax | Profile::Glm if v <= 0.0 || v > 1.0 => {
                return Err(bad(format!(
                    "invalid params, {key} must be in (0, 1] (2013)"
                )));
            }
            Profile::Kimi => {
                let only = match (key, thinking) {
                    ("temperature", true) => 1.0,
                    ("temperature", false) => 0.6,
                    _ => 0.95,
                };
                if v != only {
                    return Err(bad(format!(
                        "invalid {key}: only {only} is allowed for this model"
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every assistant message with tool calls carries `reasoning_content`, identical to what
/// this mock produced with those calls.
fn check_reasoning_passback(
    _profile: Profile,
    messages: &[Value],
    calls: &HashMap<String, EmittedCall>,
    missing: impl Fn(usize) -> String,
) -> Result<(), Rejection> {
    for (i, m) in messages.iter().enumerate() {
        let Some(tc) = m.get("tool_calls").and_then(Value::as_array) else {
            continue;
        };
        if tc.is_empty() || m["role"] != "assistant" {
            continue;
        }
        let Some(rc) = m.get("reasoning_content").and_then(Value::as_str) else {
            return Err(bad(missing(i)));
        };
        for c in tc {
            let id = c["id"].as_str().unwrap_or("");
            if let Some(e) = calls.get(id) {
                if !rc.contains(e.reasoning.as_str()) {
                    return Err(bad(format!(
                        "{} (messages[{i}]: {rc:?} is not the reasoning of call {id}: {:?})",
                        missing(i),
                        e.reasoning
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The provider's error body for a rejected request.
fn rejection(profile: Profile, status: u16, reason: &str) -> Response {
    let body = match (profile, status) {
        (Profile::Glm, 404) => json!({"timestamp": "2026-01-01T00:00:00.000+00:00",
            "status": 404, "error": "Not Found", "path": reason}),
        (Profile::Glm, _) => json!({"error": {"code": "1214", "message": reason}}),
        (Profile::Kimi, 401) => {
            json!({"error": {"message": reason, "type": "invalid_authentication_error"}})
        }
        (Profile::Kimi, _) => {
            json!({"error": {"message": reason, "type": "invalid_request_error"}})
        }
        (Profile::MiniMax, 401) => json!({"base_resp": {"status_code": 1004,
            "status_msg": format!("login fail: {reason}")}}),
        (Profile::MiniMax, _) => json!({"type": "error", "error": {"type": "bad_request_error",
            "message": reason, "http_code": status.to_string()}, "request_id": "mock-req"}),
        _ => json!({"error": {"message": reason, "type": "invalid_request_error",
            "param": null, "code": "invalid_request_error"}}),
    };
    json_response(status, &body)
}

/// The provider's typical error, sent for [`Reply::Error`]: (HTTP status, body).
pub fn error_reply(profile: Profile) -> (u16, Value) {
    match profile {
        // GLM: 1302 = too many concurrent requests.
        Profile::Glm => (
            429,
            json!({"error": {"code": "1302", "message": "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。"}}),
        ),
        Profile::Kimi => (
            429,
            json!({"error": {"message": "Your account org-mock<ak-mock> is suspended, please check your plan and billing details",
                "type": "exceeded_current_quota_error"}}),
        ),
        // DeepSeek: 402 Insufficient Balance.
        Profile::DeepSeek => (
            402,
            json!({"error": {"message": "Insufficient Balance", "type": "unknown_error",
                "param": null, "code": "invalid_request_error"}}),
        ),
        // MiniMax: an error inside a 200 body, in `base_resp` (1002 = rate limit).
        Profile::MiniMax => (
            200,
            json!({"id": "", "choices": null, "created": 0, "model": "", "object": "",
                "usage": null, "input_sensitive": false, "output_sensitive": false,
                "base_resp": {"status_code": 1002, "status_msg": "rate limit exceeded(RPM)"}}),
        ),
        Profile::OpenAi => (
            503,
            json!({"error": {"message": "The engine is currently overloaded, please try again later",
                "type": "server_error", "param": null, "code": "server_is_overloaded"}}),
        ),
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

fn auto_reply(state: &MockState, body: &Value) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last_is_tool = messages.last().is_some_and(|m| m["role"] == "tool");
    let has_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let profile = state.profile;
    let searching = offers_search(profile, body);
    let last_is_search_answer = messages
        .last()
        .is_some_and(|m| m["role"] == "tool" && m["name"] == KIMI_WEB_SEARCH);
    if searching && profile == Profile::Glm && !last_is_tool {
        return Reply::Searched {
            reasoning: Some(AUTO_REASONING_CALL.to_owned()),
            text: GLM_SEARCH_TEXT.to_owned(),
        };
    }
    if searching && profile == Profile::Kimi {
        if last_is_search_answer {
            return Reply::text(Some(AUTO_REASONING_FINAL), KIMI_SEARCH_TEXT);
        }
        if !last_is_tool {
            return Reply::tool(Some(AUTO_REASONING_CALL), KIMI_WEB_SEARCH, KIMI_SEARCH_ARGS);
        }
    }
    if last_is_tool {
        Reply::text(Some(AUTO_REASONING_FINAL), AUTO_FINAL_TEXT)
    } else if has_tools {
        let (name, args) = state.auto_call.lock().unwrap().clone();
        Reply::tool(Some(AUTO_REASONING_CALL), &name, &args)
    } else {
        Reply::text(Some(AUTO_REASONING_CALL), AUTO_TEXT)
    }
}

fn next(state: &MockState) -> u64 {
    let mut c = state.counter.lock().unwrap();
    *c += 1;
    *c
}

fn call_id(profile: Profile, name: &str, n: u64) -> String {
    match profile {
        Profile::Kimi => format!("functions.{name}:{n}"),
        Profile::DeepSeek => format!("call_00_mockDs{n:04}"),
        Profile::Glm => format!("call_-80630{n:05}"),
        Profile::MiniMax => format!("call_function_mock{n:04}_1"),
        Profile::OpenAi => format!("call_mockOai{n:04}"),
    }
}

/// A complete reply, as (reasoning, text, optional (id, name, arguments), finish reason,
/// GLM's search results).
struct Plan {
    reasoning: Option<String>,
    text: String,
    call: Option<(String, String, String)>,
    finish: &'static str,
    search: Option<Value>,
}

/// GLM's `web_search` results (its documented fields).
fn glm_search_results() -> Value {
    json!([{
        "title": SEARCH_TITLE,
        "link": SEARCH_URL,
        "content": "The Rust project plans a 2027 edition.",
        "media": "Rust Blog",
        "icon": "",
        "refer": "ref_1",
        "publish_date": "2026-11-30",
    }])
}

/// A tool call's `type`: Kimi's search call is a builtin function.
fn call_type(name: &str) -> &'static str {
    if name == KIMI_WEB_SEARCH {
        "builtin_function"
    } else {
        "function"
    }
}

fn render(state: &MockState, body: &Value, reply: Reply) -> Response {
    let profile = state.profile;
    let plan = match reply {
        Reply::Error => {
            let (status, body) = error_reply(profile);
            return json_response(status, &body);
        }
        Reply::Text { reasoning, text } => Plan {
            reasoning,
            text,
            call: None,
            finish: "stop",
            search: None,
        },
        Reply::Searched { reasoning, text } => Plan {
            reasoning,
            text,
            call: None,
            finish: "stop",
            search: Some(glm_search_results()),
        },
        Reply::Tool {
            reasoning,
            name,
            arguments,
        } => {
            let id = call_id(profile, &name, next(state));
            state.calls.lock().unwrap().insert(
                id.clone(),
                EmittedCall {
                    call_id: id.clone(),
                    name: name.clone(),
                    arguments: arguments.clone(),
                    reasoning: reasoning.clone().unwrap_or_default(),
                },
            );
            Plan {
                reasoning,
                text: String::new(),
                call: Some((id, name, arguments)),
                finish: "tool_calls",
                search: None,
            }
        }
    };
    let model = body["model"].as_str().unwrap_or("mock").to_owned();
    if body["stream"] == true {
        let include_usage = body.pointer("/stream_options/include_usage") == Some(&json!(true));
        let tool_stream = body["tool_stream"] == true;
        sse_response(stream_frames(
            profile,
            &model,
            &plan,
            include_usage,
            tool_stream,
        ))
    } else {
        json_response(200, &completion_json(profile, &model, &plan))
    }
}

/// The usage object in the provider's own shape.
fn usage(profile: Profile) -> Value {
    let total = PROMPT_TOKENS + COMPLETION_TOKENS;
    match profile {
        Profile::DeepSeek => json!({"prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS, "total_tokens": total,
            "prompt_cache_hit_tokens": CACHED_TOKENS,
            "prompt_cache_miss_tokens": PROMPT_TOKENS - CACHED_TOKENS,
            "completion_tokens_details": {"reasoning_tokens": REASONING_TOKENS}}),
        Profile::Kimi => json!({"prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS, "total_tokens": total,
            "cached_tokens": CACHED_TOKENS}),
        Profile::Glm => json!({"prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS, "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}}),
        Profile::MiniMax | Profile::OpenAi => json!({"prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS, "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS},
            "completion_tokens_details": {"reasoning_tokens": REASONING_TOKENS}}),
    }
}

fn minimax_content(plan: &Plan) -> String {
    match &plan.reasoning {
        Some(r) => format!("<think>\n{r}\n</think>\n\n{}", plan.text),
        None => plan.text.clone(),
    }
}

fn completion_json(profile: Profile, model: &str, plan: &Plan) -> Value {
    let mut message = json!({"role": "assistant"});
    match (profile.reasoning_field(), &plan.reasoning) {
        (Some(field), Some(r)) => {
            message[field] = json!(r);
            message["content"] = json!(plan.text);
        }
        (None, _) => message["content"] = json!(minimax_content(plan)),
        (Some(_), None) => message["content"] = json!(plan.text),
    }
    if let Some((id, name, args)) = &plan.call {
        message["tool_calls"] = json!([{"id": id, "type": call_type(name),
            "function": {"name": name, "arguments": args}}]);
    }
    let mut c = json!({
        "id": "mock-completion", "object": "chat.completion", "created": 1_760_000_000u64,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": plan.finish}],
        "usage": usage(profile),
    });
    if profile == Profile::MiniMax {
        c["base_resp"] = json!({"status_code": 0, "status_msg": ""});
    }
    if let Some(results) = &plan.search {
        c["web_search"] = results.clone();
    }
    c
}

fn chunk(profile: Profile, model: &str, choices: Value) -> Value {
    let mut c = json!({"id": "mock-stream", "object": "chat.completion.chunk",
        "created": 1_760_000_000u64, "model": model, "choices": choices});
    match profile {
        Profile::DeepSeek | Profile::OpenAi => {
            c["system_fingerprint"] = json!("fp_mock");
            c["usage"] = Value::Null;
        }
        Profile::Kimi => c["system_fingerprint"] = json!("fpv0_mock"),
        Profile::MiniMax => {
            c["usage"] = json!({"total_tokens": 0, "total_characters": 0});
            c["input_sensitive"] = json!(false);
            c["output_sensitive"] = json!(false);
        }
        Profile::Glm => {}
    }
    c
}

fn delta(profile: Profile, model: &str, d: Value) -> String {
    frame(&chunk(
        profile,
        model,
        json!([{"index": 0, "delta": d, "finish_reason": null}]),
    ))
}

fn stream_frames(
    profile: Profile,
    model: &str,
    plan: &Plan,
    include_usage: bool,
    tool_stream: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    // The first chunk: the role (GLM: and its search results).
    let role = match profile {
        Profile::DeepSeek => {
            json!({"role": "assistant", "content": null, "reasoning_content": ""})
        }
        Profile::MiniMax => json!({"role": "assistant", "content": ""}),
        _ => json!({"role": "assistant", "content": ""}),
    };
    let mut first = chunk(
        profile,
        model,
        json!([{"index": 0, "delta": role, "finish_reason": null}]),
    );
    if let Some(results) = &plan.search {
        first["web_search"] = results.clone();
    }
    out.push(frame(&first));
    // Reasoning.
    if let Some(r) = &plan.reasoning {
        match profile.reasoning_field() {
            Some(field) => {
                for piece in split_pieces(r, 7) {
                    let mut d = json!({ field: piece });
                    if profile == Profile::DeepSeek {
                        d["content"] = Value::Null;
                    }
                    out.push(delta(profile, model, d));
                }
            }
            None => {
                // MiniMax: the tags inside the content, split anywhere.
                let block = format!("<think>\n{r}\n</think>\n\n");
                for piece in split_pieces(&block, 5) {
                    out.push(delta(profile, model, json!({"content": piece})));
                }
            }
        }
    }
    // Text.
    for piece in split_pieces(&plan.text, 5) {
        let mut d = json!({"content": piece});
        if profile == Profile::DeepSeek {
            d["reasoning_content"] = Value::Null;
        }
        out.push(delta(profile, model, d));
    }
    // The tool call: id and name only in the first delta.
    if let Some((id, name, args)) = &plan.call {
        let whole = profile == Profile::Glm && !tool_stream;
        let first_args = if whole { args.as_str() } else { "" };
        out.push(delta(
            profile,
            model,
            json!({"tool_calls": [{"index": 0, "id": id, "type": call_type(name),
                "function": {"name": name, "arguments": first_args}}]}),
        ));
        if !whole {
            for piece in split_pieces(args, 6) {
                out.push(delta(
                    profile,
                    model,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                ));
            }
        }
    }
    // The finish, and the usage where this provider puts it.
    match profile {
        Profile::DeepSeek | Profile::OpenAi => {
            let d = if profile == Profile::DeepSeek {
                json!({"content": "", "reasoning_content": null})
            } else {
                json!({})
            };
            out.push(frame(&chunk(
                profile,
                model,
                json!([{"index": 0, "delta": d, "logprobs": null, "finish_reason": plan.finish}]),
            )));
            if include_usage {
                let mut u = chunk(profile, model, json!([]));
                u["usage"] = usage(profile);
                out.push(frame(&u));
            }
            out.push("data: [DONE]\n\n".to_owned());
        }
        Profile::Kimi => {
            out.push(frame(&chunk(
                profile,
                model,
                json!([{"index": 0, "delta": {}, "finish_reason": plan.finish,
                    "usage": usage(profile)}]),
            )));
            out.push("data: [DONE]\n\n".to_owned());
        }
        Profile::Glm => {
            let mut c = chunk(
                profile,
                model,
                json!([{"index": 0, "finish_reason": plan.finish,
                    "delta": {"role": "assistant", "content": ""}}]),
            );
            c["usage"] = usage(profile);
            out.push(frame(&c));
            out.push("data: [DONE]\n\n".to_owned());
        }
        Profile::MiniMax => {
            out.push(frame(&chunk(
                profile,
                model,
                json!([{"index": 0, "finish_reason": plan.finish}]),
            )));
            // The closing full `chat.completion` frame; no [DONE].
            let mut full = completion_json(profile, model, plan);
            full["input_sensitive"] = json!(false);
            full["output_sensitive"] = json!(false);
            out.push(frame(&full));
        }
    }
    out
}

fn sse_response(frames: Vec<String>) -> Response {
    let stream = futures_util::stream::iter(
        frames
            .into_iter()
            .map(|f| Ok::<Bytes, std::io::Error>(Bytes::from(f))),
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
