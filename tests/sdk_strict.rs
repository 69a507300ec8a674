//! Strict client check: streams several kinds of turns through the real proxy (against the
//! mock provider), saves the response bodies and has the OpenAI Python SDK's typed models
//! validate every event and every Response object (tests/sdk/strict_events.py, run with the
//! venv made by scripts/sdk-venv.sh: `make test` and `.ci/run` create it first).
//!
//! The venv's Python comes from `$SDK_PYTHON`, else `.venv-sdk/bin/python`. A missing venv
//! FAILS the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mock_upstream::reasoning_frames;
use common::mock_upstream::{
    delta_chunk, done_frame, frame, split_pieces, sse_text_without_done, usage_chunk, MockReply,
    MockUpstream,
};
use common::*;
use serde_json::{json, Value};

fn exec_tool() -> Value {
    json!({"type": "function", "name": "exec_command", "description": "Run a command.",
        "strict": false, "parameters": {"type": "object",
            "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}})
}

fn namespace_tool() -> Value {
    json!({"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
        "tools": [{"type": "function", "name": "spawn_agent", "description": "Spawn one.",
            "strict": false, "parameters": {"type": "object",
                "properties": {"message": {"type": "string"}}}}]})
}

fn apply_patch_tool() -> Value {
    json!({"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
        "format": {"type": "grammar", "syntax": "lark",
            "definition": "start: begin_patch hunk+ end_patch\nbegin_patch: \"*** Begin Patch\" LF"}})
}

/// A Codex-like streamed request with these tools.
fn codex_like_request(prompt: &str, tools: Vec<Value>) -> Value {
    json!({
        "model": "glm-5",
        "stream": true,
        "input": [
            {"type": "message", "role": "developer",
                "content": [{"type": "input_text", "text": "You are a coding agent."}]},
            {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": prompt}]},
        ],
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-sdk-strict",
    })
}

fn call_frames(index: u32, id: &str, name: &str, args: &str) -> Vec<String> {
    let mut out = vec![frame(&delta_chunk(
        json!({"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]}),
        None,
    ))];
    for p in split_pieces(args, 7) {
        out.push(frame(&delta_chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": p}}]}),
            None,
        )));
    }
    out
}

fn finish(reason: &str) -> Vec<String> {
    vec![
        frame(&delta_chunk(json!({}), Some(reason))),
        frame(&usage_chunk()),
        done_frame(),
    ]
}

/// One scenario: the request, the mock's reply, and what the stream must contain.
struct Turn {
    name: &'static str,
    request: Value,
    reply: MockReply,
    /// Item types of the terminal Response's `output`, in order.
    output_types: &'static [&'static str],
    /// The terminal event.
    terminal: &'static str,
}

fn turns() -> Vec<Turn> {
    let patch = "*** Begin Patch\n*** Update File: a.txt\n@@\n-old\n+new\n*** End Patch\n";

    // Text, then two parallel calls (one of a namespace tool).
    let mut tool = vec![frame(&delta_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    for p in split_pieces("Let me check two things.", 6) {
        tool.push(frame(&delta_chunk(json!({"content": p}), None)));
    }
    tool.extend(call_frames(
        0,
        "call_a",
        "exec_command",
        r#"{"cmd":"ls -la"}"#,
    ));
    tool.extend(call_frames(
        1,
        "call_b",
        "multi_agent_v1__spawn_agent",
        r#"{"message":"look at src/"}"#,
    ));
    tool.extend(finish("tool_calls"));

    // Reasoning, then a call (DeepSeek's shape).
    let mut reasoning_tool = reasoning_frames("I should list the files first.");
    reasoning_tool.extend(call_frames(0, "call_r", "exec_command", r#"{"cmd":"ls"}"#));
    reasoning_tool.extend(finish("tool_calls"));

    // Reasoning, then text.
    let mut reasoning = reasoning_frames("Plain question; answer briefly. 思考 — done.");
    reasoning.extend(
        sse_text_without_done("Paris is the capital of France.")
            .into_iter()
            .skip(1),
    );
    reasoning.push(done_frame());

    // The custom tool, called as a function with `{"input": ...}`.
    let mut custom = vec![frame(&delta_chunk(
        json!({"role": "assistant", "content": null}),
        None,
    ))];
    custom.extend(call_frames(
        0,
        "call_p",
        "apply_patch",
        &json!({ "input": patch }).to_string(),
    ));
    custom.extend(finish("tool_calls"));

    // Cut by max tokens.
    let mut length = vec![frame(&delta_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    length.push(frame(&delta_chunk(
        json!({"content": "This answer is cu"}),
        None,
    )));
    length.extend(finish("length"));

    vec![
        Turn {
            name: "tool",
            request: codex_like_request("Check the repo", vec![exec_tool(), namespace_tool()]),
            reply: MockReply::sse(tool),
            output_types: &["message", "function_call", "function_call"],
            terminal: "response.completed",
        },
        Turn {
            name: "reasoning-tool",
            request: codex_like_request("List files", vec![exec_tool()]),
            reply: MockReply::sse(reasoning_tool),
            output_types: &["reasoning", "function_call"],
            terminal: "response.completed",
        },
        Turn {
            name: "reasoning",
            request: codex_like_request("Capital of France?", vec![exec_tool()]),
            reply: MockReply::sse(reasoning),
            output_types: &["reasoning", "message"],
            terminal: "response.completed",
        },
        Turn {
            name: "text",
            request: simple_request("glm-5", "Say hello", true),
            reply: MockReply::text("Hello from the strict check! ✓"),
            output_types: &["message"],
            terminal: "response.completed",
        },
        Turn {
            name: "custom-tool",
            request: codex_like_request("Patch a.txt", vec![exec_tool(), apply_patch_tool()]),
            reply: MockReply::sse(custom),
            output_types: &["custom_tool_call"],
            terminal: "response.completed",
        },
        Turn {
            name: "length",
            request: codex_like_request("Write a long answer", vec![]),
            reply: MockReply::sse(length),
            output_types: &["message"],
            terminal: "response.incomplete",
        },
        Turn {
            name: "cut",
            request: simple_request("glm-5", "Say something", true),
            reply: MockReply::Sse {
                chunks: common::mock_upstream::sse_text("This stream is cut off"),
                delay_ms: 0,
                cut_after: Some(3),
            },
            // the unfinished message is left out of a failed response
            output_types: &[],
            terminal: "response.failed",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_models_accept_every_event_and_response() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let bodies = tempfile::tempdir().unwrap();
    let url = proxy.url("/v1/responses");

    for (i, turn) in turns().into_iter().enumerate() {
        mock.push(turn.reply);
        let resp = post_responses(&url, &turn.request).await;
        assert_eq!(resp.status, 200, "{}: {}", turn.name, resp.body);
        let stream = parse_sse(&resp.body);
        let terminal = check_lifecycle(&stream);
        assert_eq!(
            terminal["type"], turn.terminal,
            "{}: {}",
            turn.name, resp.body
        );
        let types: Vec<&str> = terminal["response"]["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, turn.output_types, "{}: {}", turn.name, resp.body);
        std::fs::write(
            bodies.path().join(format!("{i:02}-{}.sse", turn.name)),
            &resp.body,
        )
        .unwrap();
    }

    // A non-streamed reply: one Response object.
    let mut request = codex_like_request("Say hi", vec![exec_tool()]);
    request["stream"] = json!(false);
    mock.push(MockReply::json_text("Hi, not streamed."));
    let resp = post_json(&url, &request, &[("authorization", "Bearer x")]).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["status"], "completed");
    std::fs::write(bodies.path().join("90-non-streamed.json"), &resp.body).unwrap();

    mock.assert_no_rejections();
    let dir = bodies.path().to_owned();
    tokio::task::spawn_blocking(move || run_strict_check(&dir))
        .await
        .unwrap();
}

/// The checker itself finds what it is meant to find (a missing required field deep inside
/// a response, a wrong type, an unknown event type).
#[test]
fn strict_check_rejects_broken_events() {
    let dir = tempfile::tempdir().unwrap();
    let resp = json!({"id": "resp_1", "object": "response", "created_at": 1, "model": "m",
        "output": [], "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
        "status": "completed",
        // `cache_write_tokens` and `output_tokens_details` missing.
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
            "input_tokens_details": {"cached_tokens": 0}}});
    let events = [
        json!({"type": "response.created", "sequence_number": 0, "response": resp}),
        // `logprobs` missing.
        json!({"type": "response.output_text.delta", "sequence_number": 1, "item_id": "m",
            "output_index": 0, "content_index": 0, "delta": "x"}),
        json!({"type": "response.bogus", "sequence_number": 2}),
        json!({"type": "response.completed", "sequence_number": 3, "response": resp}),
    ];
    let mut body = String::new();
    for e in &events {
        body.push_str(&format!(
            "event: {}\ndata: {e}\n\n",
            e["type"].as_str().unwrap()
        ));
    }
    body.push_str("data: [DONE]\n\n");
    std::fs::write(dir.path().join("broken.sse"), body).unwrap();
    let (status, report) = run_sdk_check(dir.path());
    assert_eq!(status.code(), Some(1), "{report}");
    for wanted in [
        "response.usage.input_tokens_details.cache_write_tokens: Field required",
        "response.usage.output_tokens_details: Field required",
        "ResponseTextDeltaEvent: logprobs: Field required",
        "event #2 (response.bogus): not a valid ResponseStreamEvent: unknown event type",
    ] {
        assert!(
            report.contains(wanted),
            "{wanted:?} not reported:\n{report}"
        );
    }
}
