//! One table of scenarios — text, streamed text, tool round trip, reasoning round trip,
//! upstream error — run against every provider profile (glm, kimi, deepseek, minimax,
//! openai) through the real proxy process, each backend pointing at that provider's strict
//! mock (tests/common/providers.rs). The `provider_matrix!` table at the end holds what
//! differs between the providers and makes one test per profile and scenario
//! (`glm::tool_round_trip`, ...), so a failing profile hides no other and names itself. Every scenario asserts exactly what the client sees
//! (events, output items, usage with cached tokens) and that the mock accepted every request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::providers::{self, expected_usage, Profile, ProviderMock, Reply};
use common::*;
use serde_json::{json, Value};

const SYSTEM: &str = "You are a coding agent.";
const PROMPT: &str = "Create hello.txt";
const ARGS: &str = r#"{"cmd":"echo hi > hello.txt"}"#;
const TOOL_OUTPUT: &str = "created";
const LATE_DEVELOPER: &str = "Approvals changed: never ask.";

/// One proxy in front of a provider's mock: backend `<profile>` under the prefix
/// `/<profile>`.
struct Rig {
    proxy: ProxyProcess,
    mocks: Vec<ProviderMock>,
}

impl Rig {
    async fn start(p: Profile) -> Self {
        let mocks = vec![ProviderMock::start(p, &format!("sk-{}-key", p.name())).await];
        let backends: Vec<Value> = mocks
            .iter()
            .map(|m| {
                let name = m.profile().name();
                let mut b = m.backend(name, json!({"path_prefix": format!("/{name}")}));
                // One attempt: an upstream error is the answer, not retried (the turns on
                // the proxy's own connections would retry a 429/5xx: tests/failover.rs).
                b["retries"] = json!(0);
                b
            })
            .collect();
        let proxy = ProxyProcess::start_with_backends(Value::Array(backends)).await;
        Rig { proxy, mocks }
    }

    fn mock(&self, p: Profile) -> &ProviderMock {
        self.mocks.iter().find(|m| m.profile() == p).unwrap()
    }

    async fn post(&self, p: Profile, body: &Value) -> FullResponse {
        post_responses(
            &self.proxy.url(&format!("/{}/v1/responses", p.name())),
            body,
        )
        .await
    }

    fn context(&self, p: Profile) -> String {
        self.proxy.context(format!(
            "profile {}\nmock requests: {:#?}",
            p.name(),
            self.mock(p)
                .requests()
                .iter()
                .map(|r| (r.path.clone(), r.rejection.clone(), r.body_raw.clone()))
                .collect::<Vec<_>>()
        ))
    }
}

/// What differs between the providers, as the scenarios expect it: one row of the
/// `provider_matrix!` table.
struct Caps {
    profile: Profile,
    /// The role a developer message after the first one becomes.
    late_developer_role: &'static str,
    /// With tools: `strict` kept in the function, `parallel_tool_calls` and `tool_stream` sent.
    strict: bool,
    parallel: bool,
    tool_stream: bool,
    /// Reasoning comes in `<think>` tags in the content (and goes back that way).
    think_tags: bool,
    /// An assistant tool call needs `reasoning_content` (if empty) while thinking.
    reasoning_content_required: bool,
    /// The provider's typical error.
    error: UpstreamError,
}

/// How a provider reports its typical error, and what the client sees.
enum UpstreamError {
    /// An HTTP error: the proxy answers `status` with an OpenAI error body.
    Http {
        status: u16,
        code: &'static str,
        kind: &'static str,
        says: &'static str,
    },
    /// In a 200 body (MiniMax's `base_resp`): the stream fails.
    InStream {
        code: &'static str,
        says: &'static str,
    },
}

fn message(role: &str, text: &str) -> Value {
    let kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}]})
}

fn tools() -> Value {
    json!([{"type": "function", "name": "exec_command", "description": "Runs a shell command.",
        "strict": false, "parameters": {"type": "object",
            "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}])
}

fn request(p: Profile, input: Vec<Value>, stream: bool, with_tools: bool) -> Value {
    let mut body = json!({"model": p.model(), "stream": stream, "input": input,
        "store": false, "include": ["reasoning.encrypted_content"],
        "reasoning": {"summary": "auto"}, "prompt_cache_key": "thread-1"});
    if with_tools {
        body["tools"] = tools();
        body["tool_choice"] = json!("auto");
        body["parallel_tool_calls"] = json!(true);
    }
    body
}

fn first_turn() -> Vec<Value> {
    vec![message("developer", SYSTEM), message("user", PROMPT)]
}

/// The stream of a 200 SSE reply, its lifecycle checked; returns it with the terminal event.
fn stream_of(resp: &FullResponse, ctx: &str) -> (SseStream, Value) {
    assert_eq!(resp.status, 200, "body: {}\n{ctx}", resp.body);
    assert!(
        resp.header("content-type")
            .unwrap_or_default()
            .starts_with("text/event-stream"),
        "{ctx}"
    );
    resp.assert_body_complete();
    let stream = parse_sse(&resp.body);
    let terminal = check_lifecycle(&stream);
    (stream, terminal)
}

/// Event types with runs of the same delta event collapsed.
fn event_types(stream: &SseStream) -> Vec<String> {
    let mut t = stream.types();
    t.dedup_by(|a, b| a == b && a.ends_with(".delta"));
    t
}

const REASONING_EVENTS: [&str; 6] = [
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
];
const TEXT_EVENTS: [&str; 6] = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
];
const TOOL_EVENTS: [&str; 4] = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
];

fn expected_events(parts: &[&[&str]]) -> Vec<String> {
    let mut v = vec!["response.created", "response.in_progress"];
    for p in parts {
        v.extend_from_slice(p);
    }
    v.push("response.completed");
    v.into_iter().map(str::to_owned).collect()
}

/// Output items without their generated `id` (checked to be a non-empty string) and with
/// `encrypted_content` checked to be a non-empty string, then removed.
fn normalized(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            let obj = item.as_object_mut().unwrap();
            let id = obj.remove("id").unwrap_or(Value::Null);
            assert!(id.as_str().is_some_and(|s| !s.is_empty()), "{item:?}");
            if obj.get("type") == Some(&json!("reasoning")) {
                let enc = obj.remove("encrypted_content").unwrap_or(Value::Null);
                assert!(enc.as_str().is_some_and(|s| !s.is_empty()));
            }
            item
        })
        .collect()
}

fn reasoning_item(text: &str) -> Value {
    json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
}

fn message_item(text: &str) -> Value {
    json!({"type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

fn call_item(call_id: &str) -> Value {
    json!({"type": "function_call", "status": "completed", "call_id": call_id,
        "name": "exec_command", "arguments": ARGS})
}

/// The reasoning text the client sees for reasoning `r` from this provider: MiniMax's
/// `<think>\n…\n</think>` keeps the newlines inside the tags.
fn seen_reasoning(c: &Caps, r: &str) -> String {
    if c.think_tags {
        format!("\n{r}\n")
    } else {
        r.to_owned()
    }
}

/// The Chat messages every first turn becomes: one system message, then the user.
fn first_turn_messages() -> Vec<Value> {
    vec![
        json!({"role": "system", "content": SYSTEM}),
        json!({"role": "user", "content": PROMPT}),
    ]
}

/// The request keys each profile sends with tools.
fn assert_tool_request_shape(c: &Caps, body: &Value, ctx: &str) {
    let p = c.profile;
    assert_eq!(body["model"], p.model(), "{ctx}");
    assert_eq!(body["stream"], true, "{ctx}");
    assert_eq!(
        body["stream_options"],
        json!({"include_usage": true}),
        "{ctx}"
    );
    assert_eq!(body["tool_choice"], "auto", "{ctx}");
    let mut function = json!({"name": "exec_command", "description": "Runs a shell command.",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
            "required": ["cmd"]}});
    let (strict, parallel, tool_stream) = (c.strict, c.parallel, c.tool_stream);
    if strict {
        function["strict"] = json!(false);
    }
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": function}]),
        "{ctx}"
    );
    assert_eq!(
        body.get("parallel_tool_calls"),
        parallel.then_some(&json!(true)),
        "{ctx}"
    );
    assert_eq!(
        body.get("tool_stream"),
        tool_stream.then_some(&json!(true)),
        "{ctx}"
    );
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// A non-streamed text turn: one Response object.
async fn scenario_text(rig: &Rig, c: &Caps) {
    let p = c.profile;
    let mock = rig.mock(p);
    let text = format!("Plain answer from {}.", p.name());
    mock.push(Reply::text(None, &text));
    let resp = rig.post(p, &request(p, first_turn(), false, false)).await;
    let ctx = rig.context(p);
    assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
    assert!(resp
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    let body = resp.json();
    assert_eq!(body["object"], "response", "{ctx}");
    assert_eq!(body["status"], "completed", "{ctx}");
    assert_eq!(body["model"], p.model(), "{ctx}");
    assert_eq!(body["error"], Value::Null, "{ctx}");
    assert_eq!(
        normalized(body["output"].as_array().unwrap()),
        vec![message_item(&text)],
        "{ctx}"
    );
    assert_eq!(body["usage"], expected_usage(p), "{ctx}");

    mock.assert_all_accepted();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "{ctx}");
    let up = reqs[0].json();
    assert!(
        up.get("stream").is_none() && up.get("stream_options").is_none(),
        "{ctx}"
    );
    assert_eq!(up["messages"], json!(first_turn_messages()), "{ctx}");
    assert!(
        up.get("tools").is_none() && up.get("tool_choice").is_none(),
        "{ctx}"
    );
}

/// A streamed turn with reasoning, then text.
async fn scenario_streamed_text(rig: &Rig, c: &Caps) {
    let p = c.profile;
    let mock = rig.mock(p);
    let reasoning = "Greet briefly.";
    let text = format!("Streamed hello from {} — ünïcødé ✓.", p.name());
    mock.push(Reply::text(Some(reasoning), &text));
    let resp = rig.post(p, &request(p, first_turn(), true, false)).await;
    let ctx = rig.context(p);
    let (stream, terminal) = stream_of(&resp, &ctx);
    assert_eq!(
        event_types(&stream),
        expected_events(&[&REASONING_EVENTS, &TEXT_EVENTS]),
        "{ctx}"
    );
    assert_eq!(streamed_text(&stream), text, "{ctx}");
    let summary: String = stream
        .of_type("response.reasoning_summary_text.delta")
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(summary, seen_reasoning(c, reasoning), "{ctx}");
    let response = &terminal["response"];
    assert_eq!(response["status"], "completed", "{ctx}");
    let expected = vec![
        reasoning_item(&seen_reasoning(c, reasoning)),
        message_item(&text),
    ];
    assert_eq!(normalized(&done_items(&stream)), expected, "{ctx}");
    assert_eq!(
        normalized(response["output"].as_array().unwrap()),
        expected,
        "{ctx}"
    );
    assert_eq!(response["usage"], expected_usage(p), "{ctx}");

    mock.assert_all_accepted();
    let up = mock.requests()[0].json().clone();
    assert_eq!(up["stream"], true, "{ctx}");
    assert_eq!(
        up["stream_options"],
        json!({"include_usage": true}),
        "{ctx}"
    );
    assert_eq!(up["messages"], json!(first_turn_messages()), "{ctx}");
    assert!(up.get("tool_stream").is_none(), "{ctx}");
}

/// Turn 1: a tool call (no reasoning); turn 2 carries the call and its output (and a later
/// developer message) and gets the final text.
async fn scenario_tool_round_trip(rig: &Rig, c: &Caps) {
    let p = c.profile;
    let mock = rig.mock(p);
    mock.push(Reply::tool(None, "exec_command", ARGS));
    let resp = rig.post(p, &request(p, first_turn(), true, true)).await;
    let ctx = rig.context(p);
    let (stream, terminal) = stream_of(&resp, &ctx);
    assert_eq!(
        event_types(&stream),
        expected_events(&[&TOOL_EVENTS]),
        "{ctx}"
    );
    let emitted = mock.emitted_calls();
    assert_eq!(emitted.len(), 1, "{ctx}");
    let call_id = emitted.keys().next().unwrap().clone();
    let args: String = stream
        .of_type("response.function_call_arguments.delta")
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(args, ARGS, "{ctx}");
    let items = done_items(&stream);
    assert_eq!(normalized(&items), vec![call_item(&call_id)], "{ctx}");
    assert_eq!(terminal["response"]["usage"], expected_usage(p), "{ctx}");
    assert_tool_request_shape(c, mock.requests()[0].json(), &ctx);
    assert_eq!(
        mock.requests()[0].json()["messages"],
        json!(first_turn_messages()),
        "{ctx}"
    );

    // Turn 2: the call as Codex sends it back, its output, a permission change.
    let final_text = format!("{} wrote hello.txt.", p.name());
    mock.push(Reply::text(None, &final_text));
    let mut input = first_turn();
    input.push(items[0].clone());
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": TOOL_OUTPUT}));
    input.push(message("developer", LATE_DEVELOPER));
    let resp = rig.post(p, &request(p, input, true, true)).await;
    let ctx = rig.context(p);
    let (stream, terminal) = stream_of(&resp, &ctx);
    assert_eq!(
        event_types(&stream),
        expected_events(&[&TEXT_EVENTS]),
        "{ctx}"
    );
    assert_eq!(
        normalized(terminal["response"]["output"].as_array().unwrap()),
        vec![message_item(&final_text)],
        "{ctx}"
    );
    assert_eq!(terminal["response"]["usage"], expected_usage(p), "{ctx}");

    mock.assert_all_accepted();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "{ctx}");
    let mut assistant = json!({"role": "assistant", "content": "",
        "tool_calls": [{"id": call_id, "type": "function",
            "function": {"name": "exec_command", "arguments": ARGS}}]});
    if c.reasoning_content_required {
        // No reasoning in this turn, but the field must be there while thinking.
        assistant["reasoning_content"] = json!("");
    }
    let mut expected = first_turn_messages();
    expected.push(assistant);
    expected.push(json!({"role": "tool", "tool_call_id": call_id, "content": TOOL_OUTPUT}));
    expected.push(json!({"role": c.late_developer_role, "content": LATE_DEVELOPER}));
    assert_eq!(reqs[1].json()["messages"], json!(expected), "{ctx}");
    assert_tool_request_shape(c, reqs[1].json(), &ctx);
}

/// Turn 1: reasoning + a tool call; the reasoning item goes back with turn 2 and must reach
/// the provider in the shape it requires.
async fn scenario_reasoning_round_trip(rig: &Rig, c: &Caps) {
    let p = c.profile;
    let mock = rig.mock(p);
    let r1 = format!("{} must run one command first.", p.name());
    let r2 = "The output says created.";
    let final_text = "All done.";
    mock.push(Reply::tool(Some(&r1), "exec_command", ARGS));
    let resp = rig.post(p, &request(p, first_turn(), true, true)).await;
    let ctx = rig.context(p);
    let (stream, terminal) = stream_of(&resp, &ctx);
    assert_eq!(
        event_types(&stream),
        expected_events(&[&REASONING_EVENTS, &TOOL_EVENTS]),
        "{ctx}"
    );
    let call_id = mock.emitted_calls().keys().next().unwrap().clone();
    let items = done_items(&stream);
    assert_eq!(
        normalized(&items),
        vec![reasoning_item(&seen_reasoning(c, &r1)), call_item(&call_id)],
        "{ctx}"
    );
    assert_eq!(terminal["response"]["usage"], expected_usage(p), "{ctx}");

    // Turn 2: everything back, as Codex does (reasoning item verbatim, with its token).
    mock.push(Reply::text(Some(r2), final_text));
    let mut input = first_turn();
    input.extend(items.iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": TOOL_OUTPUT}));
    let resp = rig.post(p, &request(p, input, true, true)).await;
    let ctx = rig.context(p);
    let (stream, terminal) = stream_of(&resp, &ctx);
    assert_eq!(
        event_types(&stream),
        expected_events(&[&REASONING_EVENTS, &TEXT_EVENTS]),
        "{ctx}"
    );
    assert_eq!(
        normalized(terminal["response"]["output"].as_array().unwrap()),
        vec![
            reasoning_item(&seen_reasoning(c, r2)),
            message_item(final_text)
        ],
        "{ctx}"
    );

    // The strict mocks of Kimi, DeepSeek and MiniMax reject a lost reasoning outright.
    mock.assert_all_accepted();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "{ctx}");
    let msgs = reqs[1].messages();
    assert_eq!(msgs.len(), 4, "{ctx}");
    let assistant = &msgs[2];
    assert_eq!(assistant["role"], "assistant", "{ctx}");
    assert_eq!(assistant["tool_calls"][0]["id"], call_id.as_str(), "{ctx}");
    match c.think_tags {
        true => {
            // Back inside the content, byte for byte as MiniMax wrote it.
            assert_eq!(
                assistant["content"],
                format!("<think>\n{r1}\n</think>\n\n"),
                "{ctx}"
            );
            assert!(assistant.get("reasoning_content").is_none(), "{ctx}");
        }
        false => {
            assert_eq!(assistant["reasoning_content"], r1.as_str(), "{ctx}");
            assert_eq!(assistant["content"], "", "{ctx}");
        }
    }
    assert_eq!(msgs[3]["role"], "tool", "{ctx}");
}

/// The provider's typical error, as the client sees it.
async fn scenario_upstream_error(rig: &Rig, c: &Caps) {
    let p = c.profile;
    let mock = rig.mock(p);
    mock.push(Reply::Error);
    let resp = rig.post(p, &request(p, first_turn(), true, true)).await;
    let ctx = rig.context(p);
    mock.assert_all_accepted();
    let (status, code, kind, says) = match c.error {
        UpstreamError::InStream { code, says } => {
            // MiniMax reports it in `base_resp` of a 200 body: the stream fails.
            let (stream, terminal) = stream_of(&resp, &ctx);
            assert_eq!(
                stream.types(),
                vec![
                    "response.created",
                    "response.in_progress",
                    "response.failed"
                ],
                "{ctx}"
            );
            let r = &terminal["response"];
            assert_eq!(r["status"], "failed", "{ctx}");
            assert_eq!(r["error"]["code"], code, "{ctx}");
            assert!(
                r["error"]["message"].as_str().unwrap().contains(says),
                "{ctx}"
            );
            assert_eq!(r["output"], json!([]), "{ctx}");
            return;
        }
        UpstreamError::Http {
            status,
            code,
            kind,
            says,
        } => (status, code, kind, says),
    };
    assert_eq!(resp.status, status, "{}\n{ctx}", resp.body);
    let err = assert_openai_error_shape(&resp.json());
    assert_eq!(err["code"], code, "{ctx}");
    assert_eq!(err["type"], kind, "{ctx}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}\n{ctx}");
    assert!(message.contains(p.name()), "names the backend: {message}");
}

// ---------------------------------------------------------------------------
// The matrix: one row per profile; one test per profile and scenario, each on its own proxy.
// ---------------------------------------------------------------------------

macro_rules! provider_matrix {
    ($($module:ident: $caps:expr;)*) => {
        $(
            mod $module {
                use super::*;

                pub(super) const CAPS: Caps = $caps;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn text() {
                    scenario_text(&Rig::start(CAPS.profile).await, &CAPS).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn streamed_text() {
                    scenario_streamed_text(&Rig::start(CAPS.profile).await, &CAPS).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn tool_round_trip() {
                    scenario_tool_round_trip(&Rig::start(CAPS.profile).await, &CAPS).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn reasoning_round_trip() {
                    scenario_reasoning_round_trip(&Rig::start(CAPS.profile).await, &CAPS).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn upstream_error() {
                    scenario_upstream_error(&Rig::start(CAPS.profile).await, &CAPS).await;
                }
            }
        )*

        /// The table has one row per profile, under the profile's name.
        #[test]
        fn matrix_covers_every_profile() {
            let rows: &[(&str, &Caps)] = &[$((stringify!($module), &$module::CAPS)),*];
            assert_eq!(rows.len(), providers::ALL.len());
            for p in providers::ALL {
                let row = rows.iter().find(|(_, c)| c.profile == p);
                assert_eq!(row.map(|(m, _)| *m), Some(p.name()), "{}", p.name());
            }
        }
    };
}

provider_matrix! {
    glm: Caps {
        profile: Profile::Glm,
        late_developer_role: "user",
        strict: false,
        parallel: false,
        tool_stream: true,
        think_tags: false,
        reasoning_content_required: false,
        error: UpstreamError::Http {
            status: 429,
            code: "rate_limit_exceeded",
            kind: "rate_limit_error",
            says: "并发数过高",
        },
    };
    kimi: Caps {
        profile: Profile::Kimi,
        late_developer_role: "system",
        strict: true,
        parallel: true,
        tool_stream: false,
        think_tags: false,
        reasoning_content_required: true,
        error: UpstreamError::Http {
            status: 429,
            code: "insufficient_quota",
            kind: "insufficient_quota",
            says: "is suspended",
        },
    };
    deepseek: Caps {
        profile: Profile::DeepSeek,
        late_developer_role: "system",
        strict: true,
        parallel: true,
        tool_stream: false,
        think_tags: false,
        reasoning_content_required: true,
        error: UpstreamError::Http {
            status: 429,
            code: "insufficient_quota",
            kind: "insufficient_quota",
            says: "Insufficient Balance",
        },
    };
    minimax: Caps {
        profile: Profile::MiniMax,
        late_developer_role: "user",
        strict: false,
        parallel: false,
        tool_stream: false,
        think_tags: true,
        reasoning_content_required: false,
        error: UpstreamError::InStream {
            code: "rate_limit_exceeded",
            says: "rate limit exceeded(RPM)",
        },
    };
    openai: Caps {
        profile: Profile::OpenAi,
        late_developer_role: "system",
        strict: true,
        parallel: true,
        tool_stream: false,
        think_tags: false,
        reasoning_content_required: false,
        error: UpstreamError::Http {
            status: 503,
            code: "server_is_overloaded",
            kind: "server_error",
            says: "currently overloaded",
        },
    };
}

/// The mocks are as strict as claimed: each rejects what its provider rejects (the same
/// checks that accepted the proxy's requests above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mocks_reject_what_providers_reject() {
    let base = |msgs: Value| json!({"model": "m", "messages": msgs});
    let user = json!({"role": "user", "content": "hi"});
    let call = json!({"role": "assistant", "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let tool = json!({"role": "tool", "tool_call_id": "c1", "content": "ok"});
    let mut cases: Vec<(Vec<Profile>, &str, Value)> = vec![
        (
            providers::ALL.to_vec(),
            "unknown role",
            base(json!([{"role": "robot", "content": "x"}])),
        ),
        (
            providers::ALL.to_vec(),
            "orphan tool message",
            base(json!([user, tool])),
        ),
        (
            providers::ALL.to_vec(),
            "tool call without its tool message",
            base(json!([user, call, user])),
        ),
        (
            providers::ALL.to_vec(),
            "a Responses key",
            json!({"model": "m", "messages": [user], "input": "x"}),
        ),
        (
            vec![
                Profile::Glm,
                Profile::Kimi,
                Profile::DeepSeek,
                Profile::MiniMax,
            ],
            "role developer",
            base(json!([{"role": "developer", "content": "x"}, user])),
        ),
        (
            vec![Profile::MiniMax],
            "a second system message",
            base(
                json!([{"role": "system", "content": "a"}, {"role": "system", "content": "b"}, user]),
            ),
        ),
        (
            vec![Profile::MiniMax],
            "a system message after the first",
            base(json!([user, {"role": "system", "content": "a"}])),
        ),
        (
            vec![Profile::MiniMax],
            "content array",
            base(json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])),
        ),
        (
            vec![Profile::Glm, Profile::Kimi, Profile::MiniMax],
            "temperature 0",
            json!({"model": "m", "messages": [user], "temperature": 0.0}),
        ),
        (
            vec![Profile::Kimi, Profile::DeepSeek],
            "tool call without reasoning_content while thinking",
            base(json!([user, call, tool])),
        ),
        (
            vec![Profile::Glm, Profile::Kimi],
            "tool_choice required",
            json!({"model": "m", "messages": [user], "tool_choice": "required",
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
        ),
        (
            vec![Profile::Glm],
            "strict in a function",
            json!({"model": "m", "messages": [user],
                "tools": [{"type": "function", "function": {"name": "f", "strict": false,
                    "parameters": {"type": "object"}}}]}),
        ),
        (
            vec![Profile::MiniMax],
            "a function without parameters",
            json!({"model": "m", "messages": [user],
                "tools": [{"type": "function", "function": {"name": "f"}}]}),
        ),
        (
            vec![Profile::Kimi],
            "a temperature other than 1",
            json!({"model": "m", "messages": [user], "temperature": 0.3}),
        ),
        (
            vec![Profile::DeepSeek],
            "json_schema",
            json!({"model": "m", "messages": [user],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
        ),
    ];
    // Without thinking, Kimi and DeepSeek take a tool call without reasoning.
    let mut no_thinking = base(json!([user, call, tool]));
    no_thinking["thinking"] = json!({"type": "disabled"});
    cases.push((
        vec![],
        "tool call without reasoning, thinking off",
        no_thinking,
    ));
    for p in providers::ALL {
        let mock = ProviderMock::start(p, "k").await;
        assert!(
            mock.check(&base(
                json!([user, call, {"role": "tool", "tool_call_id": "c1",
                "content": "ok"}])
            ))
            .is_ok()
                || matches!(p, Profile::Kimi | Profile::DeepSeek),
            "{}",
            p.name()
        );
        for (rejecting, what, body) in &cases {
            let verdict = mock.check(body);
            assert_eq!(
                verdict.is_err(),
                rejecting.contains(&p),
                "{}: {what}: {verdict:?}",
                p.name()
            );
        }
    }

    // GLM: a path other than /chat/completions after its base is a 404; so is a wrong key.
    let glm = ProviderMock::start(Profile::Glm, "k").await;
    let url = glm.base_url();
    let ok = json!({"model": "glm-4.6", "messages": [user], "stream": false});
    for (path, key, status) in [
        ("/v1/chat/completions", "k", 404),
        ("/chat/completions", "wrong", 401),
        ("/chat/completions", "k", 200),
    ] {
        let resp = client()
            .post(format!("{url}{path}"))
            .bearer_auth(key)
            .json(&ok)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path} {key}");
    }
    let reqs = glm.requests();
    assert_eq!(
        reqs.iter().filter(|r| r.is_rejected()).count(),
        2,
        "{reqs:#?}"
    );
}
