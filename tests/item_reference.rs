//! `item_reference` input items through the real proxy, in front of the strict provider mocks
//! (DeepSeek's thinking mode: an assistant tool call must come back with its
//! `reasoning_content`): the Vercel AI SDK's way of replaying a stored conversation (earlier
//! output items as references, no `previous_response_id`). A tool loop's second step
//! (DeepSeek, Kimi, GLM, MiniMax) and a replayed chat, streamed and not, over HTTP and over a
//! WebSocket; the provider receives the assistant messages and the reasoning rebuilt from the
//! stored items; a reference the proxy does not have (unknown, deleted, another token's) is a
//! 400 naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::providers::{Profile, ProviderMock, Reply};
use common::ws::{error_frame, final_response, ws_url, WsClient};
use common::*;
use serde_json::{json, Value};

const ARGS: &str = r#"{"cmd":"echo hi > hello.txt"}"#;
const PROMPT: &str = "Create hello.txt";

struct Rig {
    mock: ProviderMock,
    proxy: ProxyProcess,
}

impl Rig {
    /// A proxy (default store: the embedded file) whose default backend is DeepSeek's mock;
    /// `tokens`: the client tokens it checks.
    async fn start(tokens: Option<Value>) -> Rig {
        Rig::with(Profile::DeepSeek, tokens).await
    }

    /// The same in front of `profile`'s mock.
    async fn with(profile: Profile, tokens: Option<Value>) -> Rig {
        let mock = ProviderMock::start(profile, "sk-provider").await;
        let backend = mock.backend(profile.name(), json!({"default": true}));
        let proxy = ProxyProcess::start_with(move |port, dir| {
            let mut c = test_config(port, dir, json!([backend]));
            if let Some(t) = tokens {
                c["auth_tokens"] = t;
            }
            c
        })
        .await;
        Rig { mock, proxy }
    }

    async fn post(&self, body: &Value, token: &str) -> FullResponse {
        let auth = format!("Bearer {token}");
        post_json(
            &self.proxy.url("/v1/responses"),
            body,
            &[("authorization", &auth)],
        )
        .await
    }

    /// A create that must succeed: its Response object (the terminal event's when streamed).
    async fn create(&self, body: &Value, token: &str) -> Value {
        let r = self.post(body, token).await;
        assert_eq!(r.status, 200, "{}\n{}", r.body, self.context());
        if body["stream"] == true {
            let stream = parse_sse(&r.body);
            let terminal = check_lifecycle(&stream);
            assert_eq!(terminal["type"], "response.completed", "{}", r.body);
            terminal["response"].clone()
        } else {
            r.json()
        }
    }

    fn context(&self) -> String {
        self.proxy.context(format!(
            "mock requests: {:#?}",
            self.mock
                .requests()
                .iter()
                .map(|r| (r.rejection.clone(), r.body_raw.clone()))
                .collect::<Vec<_>>()
        ))
    }

    /// The last request the provider accepted.
    fn last_upstream(&self) -> Value {
        self.mock.assert_all_accepted();
        self.mock.requests().last().unwrap().json().clone()
    }
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn tools() -> Value {
    json!([{"type": "function", "name": "exec_command", "description": "Runs a shell command.",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}},
            "required": ["cmd"]}}])
}

/// What the AI SDK sends for the output items of a stored response: references.
fn references(response: &Value) -> Vec<Value> {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| json!({"type": "item_reference", "id": o["id"]}))
        .collect()
}

fn kinds(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn item<'a>(response: &'a Value, kind: &str) -> &'a Value {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {response}"))
}

/// The reasoning of a tool call back in the assistant message, as `profile` takes it:
/// MiniMax inside the content (`<think>`, as it wrote it), the others in `reasoning_content`.
fn assert_reasoning_back(profile: Profile, assistant: &Value, reasoning: &str) {
    if profile == Profile::MiniMax {
        assert_eq!(
            assistant["content"],
            format!("<think>\n{reasoning}\n</think>\n\n"),
            "{assistant:#}"
        );
    } else {
        assert_eq!(assistant["reasoning_content"], reasoning, "{assistant:#}");
    }
}

/// The provider's view of a tool loop's second step: the call with its reasoning, then the
/// tool's result.
fn assert_tool_step(profile: Profile, upstream: &Value, call_id: &str, reasoning: &str) {
    let m = upstream["messages"].as_array().unwrap();
    assert_eq!(m.len(), 3, "{upstream:#}");
    assert_eq!(m[0]["role"], "user");
    assert_eq!(m[1]["role"], "assistant");
    assert_reasoning_back(profile, &m[1], reasoning);
    assert_eq!(m[1]["tool_calls"][0]["id"], call_id);
    assert_eq!(m[1]["tool_calls"][0]["function"]["arguments"], ARGS);
    assert_eq!(m[2]["role"], "tool");
    assert_eq!(m[2]["tool_call_id"], call_id);
    assert_eq!(m[2]["content"], "created");
}

/// A tool loop whose second step replays the first as references: the provider gets the
/// call back with its reasoning (the strict DeepSeek, Kimi and MiniMax mocks reject it
/// without; GLM's is checked here).
async fn tool_loop(profile: Profile) {
    let rig = Rig::with(profile, None).await;
    let model = profile.model();
    // `sdk`: the AI SDK's own shape (ai 7, @ai-sdk/openai 4: the reasoning as a reference,
    // the call in full without its id); else every output item as a reference.
    for (stream, sdk) in [(false, true), (true, true), (false, false), (true, false)] {
        let reasoning = format!("Run one command (stream {stream}, sdk {sdk}).");
        rig.mock
            .push(Reply::tool(Some(&reasoning), "exec_command", ARGS));
        let first = rig
            .create(
                &json!({"model": model, "stream": stream, "tools": tools(),
                    "input": [user(PROMPT)]}),
                "k",
            )
            .await;
        assert_eq!(kinds(&first["output"]), ["reasoning", "function_call"]);
        let call_id = item(&first, "function_call")["call_id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Step two: the SDK replays the history, the model's items as references.
        let mut input = vec![user(PROMPT)];
        if sdk {
            let call = item(&first, "function_call");
            input.push(json!({"type": "item_reference", "id": item(&first, "reasoning")["id"]}));
            input.push(json!({"type": "function_call", "call_id": call_id,
                "name": call["name"], "arguments": call["arguments"]}));
        } else {
            input.extend(references(&first));
        }
        input
            .push(json!({"type": "function_call_output", "call_id": call_id, "output": "created"}));
        rig.mock.push(Reply::text(Some("It worked."), "Done."));
        let second = rig
            .create(
                &json!({"model": model, "stream": stream, "tools": tools(),
                    "input": input}),
                "k",
            )
            .await;
        assert_eq!(response_output_text(&second), "Done.");
        assert_tool_step(profile, &rig.last_upstream(), &call_id, &reasoning);
        // What is stored of step two is the referenced items themselves (OpenAI's
        // input_items lists them so): listed, and continued by previous_response_id.
        let id = second["id"].as_str().unwrap();
        let r = client()
            .get(
                rig.proxy
                    .url(&format!("/v1/responses/{id}/input_items?order=asc")),
            )
            .bearer_auth("k")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let page: Value = r.json().await.unwrap();
        assert_eq!(
            kinds(&page["data"]),
            [
                "message",
                "reasoning",
                "function_call",
                "function_call_output"
            ]
        );
        assert_eq!(page["data"][1], *item(&first, "reasoning"));
        if !sdk {
            assert_eq!(page["data"][2], *item(&first, "function_call"));
        }
        rig.mock.push(Reply::text(None, "Anything else?"));
        let third = rig
            .create(
                &json!({"model": model, "stream": stream, "tools": tools(),
                    "previous_response_id": id, "input": [user("Thanks.")]}),
                "k",
            )
            .await;
        assert_eq!(response_output_text(&third), "Anything else?");
        let up = rig.last_upstream();
        let roles: Vec<&str> = up["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "tool", "assistant", "user"]);
        assert_reasoning_back(profile, &up["messages"][1], &reasoning);
    }
}

#[tokio::test]
async fn a_deepseek_tool_loop_replayed_as_references_passes_the_reasoning_back() {
    tool_loop(Profile::DeepSeek).await;
}

#[tokio::test]
async fn a_kimi_tool_loop_replayed_as_references_passes_the_reasoning_back() {
    tool_loop(Profile::Kimi).await;
}

#[tokio::test]
async fn a_glm_tool_loop_replayed_as_references_passes_the_reasoning_back() {
    tool_loop(Profile::Glm).await;
}

#[tokio::test]
async fn a_minimax_tool_loop_replayed_as_references_passes_the_reasoning_back() {
    tool_loop(Profile::MiniMax).await;
}

#[tokio::test]
async fn a_chat_replayed_as_references_keeps_every_assistant_reply() {
    let rig = Rig::start(None).await;
    for stream in [false, true] {
        let mut history: Vec<Value> = Vec::new();
        for turn in 0..3 {
            history.push(user(&format!("Question {turn} (stream {stream})")));
            rig.mock.push(Reply::text(
                Some(&format!("Think {turn}.")),
                &format!("Answer {turn}."),
            ));
            let r = rig
                .create(
                    &json!({"model": "deepseek-chat", "stream": stream, "input": history}),
                    "k",
                )
                .await;
            assert_eq!(kinds(&r["output"]), ["reasoning", "message"]);
            assert_eq!(response_output_text(&r), format!("Answer {turn}."));
            let up = rig.last_upstream();
            let seen: Vec<String> = up["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| format!("{}: {}", m["role"].as_str().unwrap(), message_text_of(m)))
                .collect();
            let mut want = Vec::new();
            for t in 0..=turn {
                want.push(format!("user: Question {t} (stream {stream})"));
                if t < turn {
                    want.push(format!("assistant: Answer {t}."));
                }
            }
            assert_eq!(seen, want, "turn {turn}");
            history.extend(references(&r));
        }
    }
}

fn message_text_of(m: &Value) -> String {
    common::mock_upstream::message_text(m)
}

#[tokio::test]
async fn references_the_proxy_does_not_have_are_400s_naming_them() {
    let rig = Rig::start(Some(json!(["token-a", "token-b"]))).await;
    rig.mock.push(Reply::text(Some("Hm."), "Mine."));
    let mine = rig
        .create(
            &json!({"model": "deepseek-chat", "input": [user("hello")]}),
            "token-a",
        )
        .await;
    let msg_id = item(&mine, "message")["id"].as_str().unwrap().to_owned();
    let with = |id: &str| {
        json!({"model": "deepseek-chat", "input": [user("again"),
            {"type": "item_reference", "id": id}, user("more")]})
    };
    let expect_400 = |r: FullResponse, id: &str| {
        assert_eq!(r.status, 400, "{}", r.body);
        let e = assert_openai_error_shape(&r.json());
        assert_eq!(e["code"], "item_not_found", "{e}");
        assert_eq!(e["param"], "input[1]", "{e}");
        assert_eq!(e["message"], format!("Item with id '{id}' not found."));
    };
    // Unknown; another token's (the owner's own works).
    expect_400(
        rig.post(&with("msg_unknown"), "token-a").await,
        "msg_unknown",
    );
    expect_400(rig.post(&with(&msg_id), "token-b").await, &msg_id);
    rig.mock.push(Reply::text(None, "Again."));
    let ok = rig.post(&with(&msg_id), "token-a").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // (A create the proxy rejects aborts the upstream request it had begun: the mock sees
    // it without a body, and rejects that.)
    let reqs = rig.mock.requests();
    assert!(reqs
        .iter()
        .all(|r| !r.is_rejected() || r.body_raw.is_empty()));
    let up = reqs.iter().rev().find(|r| !r.is_rejected()).unwrap().json();
    assert_eq!(up["messages"][1]["role"], "assistant");
    assert_eq!(message_text_of(&up["messages"][1]), "Mine.");
    // A deleted response's items are gone with it.
    let id = mine["id"].as_str().unwrap();
    let del = client()
        .delete(rig.proxy.url(&format!("/v1/responses/{id}")))
        .bearer_auth("token-a")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    expect_400(rig.post(&with(&msg_id), "token-a").await, &msg_id);
}

#[tokio::test]
async fn over_a_websocket_references_resolve_from_the_connection_then_the_store() {
    let rig = Rig::start(None).await;
    let url = ws_url(rig.proxy.port, "/v1/responses");
    let mut ws = WsClient::connect(&url, &[]).await.unwrap();
    // A tool loop on the socket, store: false (only the connection has its items).
    let reasoning = "Over the socket: run it.";
    rig.mock
        .push(Reply::tool(Some(reasoning), "exec_command", ARGS));
    let frames = ws
        .create(
            &json!({"type": "response.create", "model": "deepseek-chat", "store": false,
                "tools": tools(), "input": [user(PROMPT)]}),
        )
        .await;
    let first = final_response(&frames).clone();
    let call_id = item(&first, "function_call")["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut input = vec![user(PROMPT)];
    input.extend(references(&first));
    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": "created"}));
    rig.mock.push(Reply::text(Some("Fine."), "Done."));
    let frames = ws
        .create(
            &json!({"type": "response.create", "model": "deepseek-chat", "store": false,
                "tools": tools(), "input": input}),
        )
        .await;
    assert_eq!(
        response_output_text(final_response(&frames)),
        "Done.",
        "{frames:#?}"
    );
    assert_tool_step(Profile::DeepSeek, &rig.last_upstream(), &call_id, reasoning);

    // An unknown reference: an error frame naming it, and the socket goes on.
    let frames = ws
        .create(
            &json!({"type": "response.create", "model": "deepseek-chat", "store": false,
                "input": [user("x"), {"type": "item_reference", "id": "rs_unknown"}]}),
        )
        .await;
    let e = error_frame(&frames);
    assert_eq!(e["code"], "item_not_found", "{e}");
    assert_eq!(e["param"], "input[1]");
    assert_eq!(e["message"], "Item with id 'rs_unknown' not found.");

    // A response stored over HTTP, referenced on the socket.
    rig.mock
        .push(Reply::text(Some("Stored."), "Kept over HTTP."));
    let stored = rig
        .create(
            &json!({"model": "deepseek-chat", "input": [user("Keep this.")]}),
            "dummy",
        )
        .await;
    let mut input = vec![user("Keep this.")];
    input.extend(references(&stored));
    input.push(user("And now?"));
    rig.mock.push(Reply::text(None, "Still here."));
    let frames = ws
        .create(
            &json!({"type": "response.create", "model": "deepseek-chat", "store": false,
                "input": input}),
        )
        .await;
    assert_eq!(
        response_output_text(final_response(&frames)),
        "Still here.",
        "{frames:#?}"
    );
    let up = rig.last_upstream();
    let texts: Vec<String> = up["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}: {}", m["role"].as_str().unwrap(), message_text_of(m)))
        .collect();
    assert_eq!(
        texts,
        [
            "user: Keep this.",
            "assistant: Kept over HTTP.",
            "user: And now?"
        ]
    );
}
