//! End-to-end tests: the real Codex CLI (0.169.0, offline) → the proxy → the
//! mock Chat Completions upstream.
//!
//! The Codex binary comes from `$CODEX_BIN` or
//! `$CARGO_MANIFEST_DIR/.codex-cli/node_modules/.bin/codex`; install it with
//! `make codex` (scripts/install-codex.sh). A missing binary FAILS the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::codex::{run_codex, CodexOptions, CODEX_CLIENT_KEY};
use common::mock_upstream::{self, MockReply, MockUpstream, RecordedRequest};
use common::*;
use serde_json::Value;

/// The model name Codex is told to use (CodexOptions' default).
const CODEX_MODEL: &str = "glm-5";
/// Start of the base prompt Codex sends as its first developer message.
const CODEX_PROMPT_START: &str = "You are a coding agent running in the Codex CLI";
/// Asserts that a provider request carries Codex's developer prompt (as a
/// system or user message) and the user's prompt (as a user message).
fn assert_has_prompts(up: &RecordedRequest, user_prompt: &str) {
    let messages = up.messages();
    let roles: Vec<String> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert!(
        messages.iter().any(|m| {
            (m["role"] == "system" || m["role"] == "user")
                && mock_upstream::message_text(m).contains(CODEX_PROMPT_START)
        }),
        "Codex's developer prompt is missing from the provider request (roles {roles:?})"
    );
    assert!(
        messages
            .iter()
            .any(|m| m["role"] == "user" && mock_upstream::message_text(m).contains(user_prompt)),
        "the user prompt is missing from the provider request (roles {roles:?})"
    );
}

/// Asserts the upstream side of a run: no mock rejection, right path and key.
fn assert_upstream(mock: &MockUpstream, path: &str, key: &str) -> Vec<RecordedRequest> {
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert!(!reqs.is_empty(), "the provider received no request");
    for r in &reqs {
        assert_eq!(r.path, path);
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {key}").as_str())
        );
        assert!(
            r.headers.iter().all(|(_, v)| !v.contains(CODEX_CLIENT_KEY)),
            "Codex's own key leaked to the provider"
        );
        assert_eq!(r.json()["stream"], true, "Codex always streams");
    }
    reqs
}

async fn text_turn(base_path: &str, upstream_path: &str, key: &str, model: &str) {
    let mock = MockUpstream::start().await;
    let reply = "Hello from the mock upstream, through the proxy!";
    mock.push(MockReply::text(reply));
    let proxy = ProxyProcess::start(&mock).await;
    let workdir = tempfile::tempdir().unwrap();
    let prompt = "Say hello to the e2e test";

    let run = run_codex(
        &proxy.url(base_path),
        workdir.path(),
        prompt,
        &CodexOptions::default(),
    )
    .await;
    let context = context_of(&run, &proxy);
    assert!(run.status.success(), "{context}");
    assert!(
        run.errors().is_empty(),
        "errors: {:?}\n{context}",
        run.errors()
    );
    run.assert_success("");
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
    let messages = run.agent_messages();
    assert!(
        messages.iter().any(|m| m.contains(reply)),
        "Codex did not print the mock's text; agent messages: {messages:?}\n{context}"
    );

    let reqs = assert_upstream(&mock, upstream_path, key);
    let first = &reqs[0];
    assert_eq!(first.json()["model"], model);
    assert_has_prompts(first, prompt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_text_turn_default_backend() {
    text_turn("/v1", "/v1/chat/completions", MAIN_KEY, MAIN_MODEL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_text_turn_prefixed_backend() {
    // kimi has no model override: Codex's model goes through.
    text_turn(
        "/kimi/v1",
        "/kimi-base/v1/chat/completions",
        KIMI_KEY,
        CODEX_MODEL,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_tool_round_trip() {
    let mock = MockUpstream::start().await;
    let call_id = "call_e2e_exec_1";
    let args = r#"{"cmd":"echo hello-from-tool > out.txt"}"#;
    let final_text = "I wrote hello-from-tool into out.txt.";
    mock.push(MockReply::tool_call(call_id, "exec_command", args));
    mock.push(MockReply::text(final_text));
    let proxy = ProxyProcess::start(&mock).await;
    let workdir = tempfile::tempdir().unwrap();
    let prompt = "Write hello-from-tool into out.txt using the shell";

    let run = run_codex(
        &proxy.url("/v1"),
        workdir.path(),
        prompt,
        &CodexOptions::default(),
    )
    .await;
    let context = context_of(&run, &proxy);
    assert!(run.status.success(), "{context}");
    assert!(
        run.errors().is_empty(),
        "errors: {:?}\n{context}",
        run.errors()
    );
    run.assert_success("");
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;

    // The tool really ran in the work dir.
    let out = workdir.path().join("out.txt");
    let content = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("{} was not created ({e})\n{context}", out.display()));
    assert_eq!(content.trim(), "hello-from-tool");
    assert!(
        run.events.iter().any(|e| e["type"] == "item.completed"
            && e["item"]["type"] == "command_execution"
            && e["item"]["exit_code"] == 0),
        "no successful command_execution item\n{context}"
    );
    let messages = run.agent_messages();
    assert_eq!(
        messages.last().map(String::as_str),
        Some(final_text),
        "final message\n{context}"
    );

    // The second provider request carries the call and its result.
    let reqs = assert_upstream(&mock, "/v1/chat/completions", MAIN_KEY);
    assert_eq!(reqs.len(), 2, "expected two provider requests\n{context}");
    assert_has_prompts(&reqs[0], prompt);
    let messages = reqs[1].messages();
    let pos_call = messages
        .iter()
        .position(|m| {
            m["role"] == "assistant"
                && m["tool_calls"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["id"] == call_id))
        })
        .unwrap_or_else(|| {
            panic!("no assistant message with tool_calls[{call_id}] in the second request: {messages:#?}")
        });
    let call = messages[pos_call]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == call_id)
        .unwrap()
        .clone();
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "exec_command");
    let got: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(got, serde_json::from_str::<Value>(args).unwrap());
    let pos_tool = messages
        .iter()
        .position(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message with tool_call_id {call_id}: {messages:#?}"));
    assert!(pos_call < pos_tool, "the tool result must follow the call");
    assert_eq!(mock.pending_replies(), 0);
}
