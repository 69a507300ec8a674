//! The real Codex CLI 0.171 (offline) over the proxy's WebSocket transport, against the
//! strict mock provider:
//!
//! - `builtin_provider_compacts_remotely_mid_task_and_carries_on`: Codex's built-in OpenAI
//!   provider pointed at the proxy with `openai_base_url` (WebSocket first, remote
//!   compaction v2). A low `model_auto_compact_token_limit` makes Codex compact in the middle
//!   of a tool task; the task then finishes with a fact only the compacted part held.
//! - `custom_provider_with_websockets_runs_a_deepseek_agent_task_over_one_socket`: a custom
//!   provider with `supports_websockets = true`, the DeepSeek profile, reasoning passback
//!   and parallel calls, every turn sent as only its new items — and the provider (strict:
//!   it rejects a missing `reasoning_content` or an unanswered call) receiving the whole
//!   conversation each time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::codex::{run_codex, CodexOptions, CodexProvider, CodexRun, CODEX_CLIENT_KEY};
use common::mock_upstream::reasoning_frames;
use common::mock_upstream::{
    chunk, delta_chunk, done_frame, frame, message_text, sse_text, sse_tool_calls, MockReply,
    MockUpstream, RecordedRequest, Strictness,
};
use common::*;
use serde_json::{json, Value};

/// Frames of `chunks` with the usage chunk replaced by one reporting `prompt_tokens`.
fn with_usage(chunks: Vec<String>, prompt_tokens: u64) -> Vec<String> {
    let mut usage = chunk(json!([]));
    usage["usage"] = json!({"prompt_tokens": prompt_tokens, "completion_tokens": 20,
        "total_tokens": prompt_tokens + 20});
    chunks
        .into_iter()
        .map(|c| {
            if c.contains("\"usage\"") {
                frame(&usage)
            } else {
                c
            }
        })
        .collect()
}

fn is_summarisation(req: &RecordedRequest) -> bool {
    req.messages()
        .last()
        .is_some_and(|m| message_text(m).contains("about to be compacted"))
}

fn tool_texts(req: &RecordedRequest) -> Vec<String> {
    req.messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(message_text)
        .collect()
}

fn proxy_access_lines(proxy: &ProxyProcess) -> Vec<String> {
    proxy
        .logs()
        .lines()
        .filter(|l| l.contains("access") && l.contains("request"))
        .map(str::to_owned)
        .collect()
}

fn assert_no_reconnects(run: &CodexRun) {
    for needle in ["Reconnecting", "Falling back", "falling back"] {
        assert!(
            !run.stdout.contains(needle) && !run.stderr.contains(needle),
            "Codex printed {needle:?}\n{}",
            run.describe()
        );
    }
}

/// The mock "model" of the compaction task: run a command whose output only the tool
/// knows; when asked to summarise, summarise what the tools printed; then answer from what
/// it has — the summary, after compaction.
fn compaction_brain(req: &RecordedRequest) -> MockReply {
    if is_summarisation(req) {
        let outputs = tool_texts(req).join(" | ");
        return MockReply::text(&format!(
            "Summary: the user wants the code printed by the command. The command ran; its output was: {outputs}"
        ));
    }
    let all: Vec<String> = req.messages().iter().map(message_text).collect();
    if let Some(summary) = all
        .iter()
        .find(|t| t.contains("Summary of the conversation so far"))
    {
        let code = summary
            .split_whitespace()
            .find(|w| w.contains("zebra-"))
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-'))
            .unwrap_or("unknown");
        return MockReply::text(&format!("The code is {code}."));
    }
    if tool_texts(req).is_empty() {
        // A big prompt: Codex's auto-compaction limit is crossed after this turn.
        return MockReply::sse(with_usage(
            sse_tool_calls(&[(
                "call_code_1",
                "exec_command",
                r#"{"cmd": "printf 'zebra-%s' $((40+2))"}"#,
            )]),
            50_000,
        ));
    }
    // The tool ran but no compaction came: answer anyway (the test then fails on the
    // missing compaction request, with this visible).
    MockReply::text("No compaction happened.")
}

#[tokio::test]
async fn builtin_provider_compacts_remotely_mid_task_and_carries_on() {
    let mock = MockUpstream::scripted(compaction_brain).await;
    let proxy = ProxyProcess::start(&mock).await;
    let work = tempfile::tempdir().unwrap();
    let opts = CodexOptions {
        v0171: true,
        provider: CodexProvider::BuiltIn,
        config: vec!["model_auto_compact_token_limit=20000".to_owned()],
        ..CodexOptions::default()
    };
    let run = run_codex(
        &proxy.url("/v1"),
        work.path(),
        "Run the command that prints the code, then tell me the code.",
        &opts,
    )
    .await;
    let context = context_of(&run, &proxy);
    run.assert_success(&context);
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
    assert_no_reconnects(&run);
    let answer = run.agent_messages().join("\n");
    assert!(
        answer.contains("zebra-42"),
        "the answer lost what came before the compaction: {answer:?}\n{context}"
    );
    mock.assert_no_rejections();
    let reqs = mock.requests();
    let sums: Vec<&RecordedRequest> = reqs.iter().filter(|r| is_summarisation(r)).collect();
    assert_eq!(sums.len(), 1, "{context}");
    assert!(sums[0].json().get("tools").is_none());
    assert!(tool_texts(sums[0]).iter().any(|t| t.contains("zebra-42")));
    // The request after the compaction: the summary in place of the calls.
    let after = reqs.last().unwrap();
    assert!(tool_texts(after).is_empty(), "{:#?}", after.messages());
    assert!(after
        .messages()
        .iter()
        .any(|m| message_text(m).contains("Summary of the conversation so far")));
    // Every turn went over the WebSocket, none over HTTP.
    let lines = proxy_access_lines(&proxy);
    assert!(
        lines.iter().any(|l| l.contains("method=WS")),
        "no WebSocket turn in the access log: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("POST")),
        "a turn fell back to HTTP: {lines:#?}"
    );
    assert!(!proxy.logs().contains(CODEX_CLIENT_KEY));
}

const DS_MODEL: &str = "deepseek-flash";

/// Reasoning, then the given calls (heads first, then arguments), `finish_reason:
/// tool_calls`.
fn reasoning_and_calls(reasoning: &str, calls: &[(&str, &str, &str)]) -> MockReply {
    let mut out = reasoning_frames(reasoning);
    for (i, (id, name, _)) in calls.iter().enumerate() {
        out.push(frame(&delta_chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        )));
    }
    for (i, (_, _, args)) in calls.iter().enumerate() {
        out.push(frame(&delta_chunk(
            json!({"tool_calls": [{"index": i, "function": {"arguments": args}}]}),
            None,
        )));
    }
    out.push(frame(&delta_chunk(json!({}), Some("tool_calls"))));
    out.push(done_frame());
    MockReply::sse(out)
}

#[tokio::test]
async fn custom_provider_with_websockets_runs_a_deepseek_agent_task_over_one_socket() {
    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: true,
    });
    mock.push(reasoning_and_calls(
        "I will create the file first.",
        &[(
            "call_ds_1",
            "exec_command",
            r#"{"cmd": "printf 'alpha-7' > note.txt"}"#,
        )],
    ));
    mock.push(reasoning_and_calls(
        "Now read it back and print the date marker, in parallel.",
        &[
            ("call_ds_2", "exec_command", r#"{"cmd": "cat note.txt"}"#),
            ("call_ds_3", "exec_command", r#"{"cmd": "echo beta-9"}"#),
        ],
    ));
    mock.push(MockReply::dynamic(|req| {
        let outs = tool_texts(req).join(" ");
        let a = if outs.contains("alpha-7") {
            "alpha-7"
        } else {
            "?"
        };
        let b = if outs.contains("beta-9") {
            "beta-9"
        } else {
            "?"
        };
        MockReply::sse(sse_text(&format!(
            "The note says {a} and the marker is {b}."
        )))
    }));
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |port, dir| {
        test_config(
            port,
            dir,
            json!([{"name": "deepseek", "provider": "deepseek",
                "url": format!("http://127.0.0.1:{mock_port}/v1"), "api_key": "sk-test-ds",
                "model": DS_MODEL, "match_rules": {"default": true}}]),
        )
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let opts = CodexOptions {
        v0171: true,
        provider: CodexProvider::CustomWebSocket,
        model: DS_MODEL.to_owned(),
        ..CodexOptions::default()
    };
    let run = run_codex(
        &proxy.url("/v1"),
        work.path(),
        "Create note.txt, read it back, and tell me what it says.",
        &opts,
    )
    .await;
    let context = context_of(&run, &proxy);
    run.assert_success(&context);
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
    assert_no_reconnects(&run);
    assert_eq!(
        std::fs::read_to_string(work.path().join("note.txt")).unwrap(),
        "alpha-7"
    );
    let answer = run.agent_messages().join("\n");
    assert!(
        answer.contains("alpha-7") && answer.contains("beta-9"),
        "{answer:?}\n{context}"
    );
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3, "{context}");
    // The whole conversation each turn, though Codex sent only the new items: turn 2 has
    // the first call and its output, turn 3 all three, each call's reasoning passed back.
    let assistants = |r: &RecordedRequest| -> Vec<Value> {
        r.messages()
            .into_iter()
            .filter(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
            .collect()
    };
    assert_eq!(assistants(&reqs[1]).len(), 1);
    assert_eq!(tool_texts(&reqs[1]).len(), 1);
    let third = assistants(&reqs[2]);
    assert_eq!(third.len(), 2);
    assert_eq!(third[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(tool_texts(&reqs[2]).len(), 3);
    for a in &third {
        assert!(
            a["reasoning_content"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "reasoning not passed back: {a}"
        );
    }
    let lines = proxy_access_lines(&proxy);
    let upgrades = lines.iter().filter(|l| l.contains("status=101")).count();
    assert!(
        (1..=2).contains(&upgrades),
        "expected the session on one socket (plus at most a pre-warm), got {upgrades}: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("POST")),
        "a turn fell back to HTTP: {lines:#?}"
    );
}
