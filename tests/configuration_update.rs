//! `configuration_update` input items (Codex's "responses lite" dialect, PROTOCOL.md
//! "Responses lite and code mode"): `{"type": "configuration_update", "reasoning":
//! {"effort": "low"}}` changes the settings from that point of the conversation on. The
//! last such item with a `reasoning.effort` in the conversation (the whole `input` over
//! HTTP, the chain's items over WebSocket) overrides the request's top-level
//! `reasoning.effort`, sent the way the profile encodes an effort (`EffortStyle`); what it
//! cannot map is ignored, and the item itself never reaches the provider.
//!
//! Every profile (glm, kimi, deepseek, minimax, openai) is run through the real proxy
//! process against its strict mock (tests/common/providers.rs: it rejects the
//! Responses-only members `reasoning`, `text`, `client_metadata`, ... as the real providers
//! do), over HTTP (whole history each time) and over WebSocket (only the new items, chained
//! with `previous_response_id`). The requests carry what Codex's responses lite requests
//! carry at the top level (`reasoning.context`, `text.verbosity`, `client_metadata`): none
//! of it may reach the provider raw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::providers::{Profile, ProviderMock, AUTO_TEXT};
use common::ws::{final_response, ws_url, WsClient};
use common::*;
use serde_json::{json, Value};

const SYSTEM: &str = "You are a coding agent.";
/// Marks the `client_metadata` value (must not reach the provider).
const INSTALLATION_ID: &str = "ccp-test-installation-7d1f";
/// Codex's responses lite header (also on the WebSocket upgrade).
const LITE_HEADER: (&str, &str) = ("x-openai-internal-codex-responses-lite", "true");

/// The proxy in front of one provider's mock: backend `<profile>` under `/<profile>`.
struct Rig {
    profile: Profile,
    proxy: ProxyProcess,
    mock: ProviderMock,
}

impl Rig {
    async fn start(p: Profile) -> Self {
        let mock = ProviderMock::start(p, &format!("sk-{}-key", p.name())).await;
        let name = p.name();
        let backend = mock.backend(name, json!({"path_prefix": format!("/{name}")}));
        let proxy = ProxyProcess::start_with_backends(json!([backend])).await;
        Rig {
            profile: p,
            proxy,
            mock,
        }
    }

    fn path(&self) -> String {
        format!("/{}/v1/responses", self.profile.name())
    }

    async fn post(&self, body: &Value) -> FullResponse {
        post_json(
            &self.proxy.url(&self.path()),
            body,
            &[
                ("authorization", "Bearer client-key-not-for-upstream"),
                ("accept", "text/event-stream"),
                LITE_HEADER,
            ],
        )
        .await
    }

    fn context(&self) -> String {
        self.proxy.context(format!(
            "profile {}\nmock requests: {:#?}",
            self.profile.name(),
            self.mock
                .requests()
                .iter()
                .map(|r| (r.path.clone(), r.rejection.clone(), r.body_raw.clone()))
                .collect::<Vec<_>>()
        ))
    }

    /// The body of the provider request number `n` (all accepted so far).
    fn upstream(&self, n: usize) -> Value {
        self.mock.assert_all_accepted();
        let reqs = self.mock.requests();
        assert_eq!(reqs.len(), n + 1, "{}", self.context());
        reqs[n].json().clone()
    }

    /// The dialect guard (`ccp_unconverted_total{kind, type}` in /metrics) is there and
    /// counted no input item of these requests (`configuration_update` included) as
    /// unconverted.
    async fn assert_update_not_unconverted(&self) {
        let metrics = metrics_text(&self.proxy).await;
        assert!(
            metrics.contains("# TYPE ccp_unconverted_total counter"),
            "{metrics}"
        );
        let lines: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("ccp_unconverted_total"))
            .filter(|l| l.contains("configuration_update") || l.contains("kind=\"item\""))
            .collect();
        assert!(lines.is_empty(), "{lines:#?}\n{}", self.context());
    }
}

fn message(role: &str, text: &str) -> Value {
    let kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    json!({"type": "message", "role": role, "content": [{"type": kind, "text": text}],
        "internal_chat_message_metadata_passthrough": {"turn": 1}})
}

fn update(effort: &str) -> Value {
    json!({"type": "configuration_update", "reasoning": {"effort": effort}})
}

/// A create body the way Codex's responses lite sends it: top-level effort `high`,
/// `reasoning.context`, `text.verbosity`, `client_metadata`.
fn request(p: Profile, input: &[Value]) -> Value {
    json!({
        "model": p.model(),
        "stream": true,
        "store": false,
        "input": input,
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "high", "summary": "auto", "context": "all_turns"},
        "text": {"verbosity": "low"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-configuration-update",
        "client_metadata": {"x-codex-installation-id": INSTALLATION_ID},
    })
}

/// The effort the profile's test switches to (one it encodes differently from `high`,
/// where it encodes efforts at all).
fn new_effort(p: Profile) -> &'static str {
    match p {
        Profile::OpenAi | Profile::MiniMax => "low",
        Profile::DeepSeek | Profile::Glm | Profile::Kimi => "none",
    }
}

/// How the profile sends an effort (src/convert/request.rs `apply_effort`): the members it
/// sets, as one object.
fn encoding(p: Profile, effort: &str) -> Value {
    let off = matches!(effort, "none" | "minimal");
    match p {
        // ReasoningEffort: as given.
        Profile::OpenAi => json!({"reasoning_effort": effort}),
        // DeepSeek: high | max, or thinking off.
        Profile::DeepSeek if off => json!({"thinking": {"type": "disabled"}}),
        Profile::DeepSeek => json!({
            "reasoning_effort": if matches!(effort, "xhigh" | "max") { "max" } else { "high" }
        }),
        // GLM: thinking on or off.
        Profile::Glm => json!({"thinking": {"type": if off { "disabled" } else { "enabled" }}}),
        // Kimi, MiniMax: not sent.
        Profile::Kimi | Profile::MiniMax => json!({}),
    }
}

/// The effort members of a provider body.
fn effort_members(body: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["reasoning_effort", "thinking"] {
        if let Some(v) = body.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// Nothing of the client's top-level extras, and nothing of the update item, upstream.
fn assert_nothing_raw(body: &Value, ctx: &str) {
    for key in [
        "reasoning",
        "text",
        "client_metadata",
        "verbosity",
        "context",
        "summary",
    ] {
        assert!(body.get(key).is_none(), "{key} forwarded: {body}\n{ctx}");
    }
    let raw = body.to_string();
    for needle in [
        "all_turns",
        INSTALLATION_ID,
        "configuration_update",
        "internal_chat_message_metadata_passthrough",
    ] {
        assert!(!raw.contains(needle), "{needle} forwarded: {raw}\n{ctx}");
    }
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["role"].as_str().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The roles the provider sees for `turns` user turns (the update adds no message).
fn expected_roles(turns: usize) -> Vec<String> {
    let mut v = vec!["system".to_owned(), "user".to_owned()];
    for _ in 1..turns {
        v.push("assistant".to_owned());
        v.push("user".to_owned());
    }
    v
}

/// One upstream request's checks: the effort encoding, the roles, nothing raw.
fn check_upstream(rig: &Rig, n: usize, effort: &str, turns: usize, what: &str) {
    let p = rig.profile;
    let body = rig.upstream(n);
    let ctx = format!("{what} (effort {effort})\n{}", rig.context());
    assert_eq!(
        effort_members(&body),
        encoding(p, effort),
        "{what}: the effort sent for {effort}: {body}\n{ctx}"
    );
    assert_eq!(roles(&body), expected_roles(turns), "{what}\n{ctx}");
    assert_nothing_raw(&body, &ctx);
}

/// A 200 SSE reply that completed.
fn assert_completed(resp: &FullResponse, ctx: &str) {
    assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
    resp.assert_body_complete();
    let terminal = check_lifecycle(&parse_sse(&resp.body));
    assert_eq!(terminal["type"], "response.completed", "{ctx}");
}

/// Over HTTP (the whole history each time): request 1 gets the top-level `high`; request 2
/// (history + assistant + update + user) the update's effort; request 3 (an update without
/// an effort, with a member nothing maps, later in the input) still the first update's.
async fn http_case(p: Profile) {
    let rig = Rig::start(p).await;
    let new = new_effort(p);

    let mut input = vec![
        message("developer", SYSTEM),
        message("user", "First question"),
    ];
    let r = rig.post(&request(p, &input)).await;
    assert_completed(&r, &rig.context());
    check_upstream(&rig, 0, "high", 1, "HTTP request 1");

    input.push(message("assistant", AUTO_TEXT));
    input.push(update(new));
    input.push(message("user", "Second question"));
    let r = rig.post(&request(p, &input)).await;
    assert_completed(&r, &rig.context());
    check_upstream(&rig, 1, new, 2, "HTTP request 2 (after the update)");

    input.push(message("assistant", AUTO_TEXT));
    input.push(json!({"type": "configuration_update",
        "reasoning": {"summary": "detailed"}, "sandbox": {"mode": "read-only"}}));
    input.push(message("user", "Third question"));
    let r = rig.post(&request(p, &input)).await;
    assert_completed(&r, &rig.context());
    check_upstream(
        &rig,
        2,
        new,
        3,
        "HTTP request 3 (a later update without an effort)",
    );

    rig.assert_update_not_unconverted().await;
}

/// Over HTTP, two updates: the last one with an effort wins.
async fn http_last_update_wins(p: Profile) {
    let rig = Rig::start(p).await;
    let new = new_effort(p);
    let input = vec![
        message("developer", SYSTEM),
        update("high"),
        message("user", "First question"),
        message("assistant", AUTO_TEXT),
        update("medium"),
        update(new),
        message("user", "Second question"),
    ];
    let r = rig.post(&request(p, &input)).await;
    assert_completed(&r, &rig.context());
    check_upstream(&rig, 0, new, 2, "HTTP, three updates");
}

/// Over WebSocket (one socket, only the new items each turn, chained with
/// `previous_response_id`, as Codex does after its warm-up): turn 1 gets `high`; turn 2 (update + user) the update's effort;
/// turn 3 (a user message only) still the update's, remembered by the chain.
async fn websocket_case(p: Profile) {
    let rig = Rig::start(p).await;
    let new = new_effort(p);
    let mut ws = WsClient::connect(&ws_url(rig.proxy.port, &rig.path()), &[LITE_HEADER])
        .await
        .unwrap();
    let create = |input: &[Value], previous: Option<&str>| {
        let mut body = request(p, input);
        body["type"] = json!("response.create");
        if let Some(id) = previous {
            body["previous_response_id"] = json!(id);
        }
        body
    };
    let completed_id = |frames: &[Value], ctx: &str| -> String {
        let resp = final_response(frames);
        assert_eq!(resp["status"], "completed", "{frames:#?}\n{ctx}");
        resp["id"].as_str().unwrap().to_owned()
    };

    // Codex's warm-up (`generate: false`, the base developer message), then turn 1 chained
    // on it with only the user message.
    let mut warm = create(&[message("developer", SYSTEM)], None);
    warm["generate"] = json!(false);
    let t0 = ws.create(&warm).await;
    let id0 = completed_id(&t0, &rig.context());
    assert!(rig.mock.requests().is_empty(), "{}", rig.context());

    let t1 = ws
        .create(&create(&[message("user", "First question")], Some(&id0)))
        .await;
    let id1 = completed_id(&t1, &rig.context());
    check_upstream(&rig, 0, "high", 1, "WebSocket turn 1");

    let t2 = ws
        .create(&create(
            &[update(new), message("user", "Second question")],
            Some(&id1),
        ))
        .await;
    let id2 = completed_id(&t2, &rig.context());
    check_upstream(&rig, 1, new, 2, "WebSocket turn 2 (the update)");

    let t3 = ws
        .create(&create(&[message("user", "Third question")], Some(&id2)))
        .await;
    completed_id(&t3, &rig.context());
    check_upstream(
        &rig,
        2,
        new,
        3,
        "WebSocket turn 3 (chained after the update)",
    );

    rig.assert_update_not_unconverted().await;
}

macro_rules! profiles {
    ($($name:ident => $profile:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn http() {
                http_case($profile).await;
            }

            #[tokio::test]
            async fn http_last_update_wins() {
                super::http_last_update_wins($profile).await;
            }

            #[tokio::test]
            async fn websocket() {
                websocket_case($profile).await;
            }
        }
    )*};
}

profiles! {
    openai => Profile::OpenAi,
    deepseek => Profile::DeepSeek,
    glm => Profile::Glm,
    kimi => Profile::Kimi,
    minimax => Profile::MiniMax,
}

/// The encoding table of this file agrees with the proxy's converter for a top-level
/// effort (no update item), so the end-to-end cases test the update, not the table.
#[test]
fn encoding_table_matches_the_converter() {
    for q in all_profiles() {
        let p = match q.profile {
            codex_convert_proxy::providers::Profile::OpenAi => Profile::OpenAi,
            codex_convert_proxy::providers::Profile::DeepSeek => Profile::DeepSeek,
            codex_convert_proxy::providers::Profile::Glm => Profile::Glm,
            codex_convert_proxy::providers::Profile::Kimi => Profile::Kimi,
            codex_convert_proxy::providers::Profile::MiniMax => Profile::MiniMax,
        };
        for effort in ["none", "minimal", "low", "medium", "high", "xhigh"] {
            let body = json!({"model": p.model(), "input": "hi", "reasoning": {"effort": effort}});
            let bytes = body.to_string();
            let (chat, _) = convert_body(bytes.as_bytes(), &q, 1);
            assert_eq!(
                effort_members(&chat),
                encoding(p, effort),
                "{} {effort}",
                p.name()
            );
        }
    }
}
