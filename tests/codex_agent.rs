//! Agent turns end to end: the real Codex CLI (0.169.0, offline) → (a recording tap) → the
//! proxy → a scripted, strict mock Chat Completions provider. Codex really runs the tools
//! in a temp work dir.
//!
//! - `deepseek_multi_step_task_with_reasoning_and_parallel_calls`: reasoning + a call that
//!   creates a file; two parallel calls (one reads it back); a final answer quoting the file.
//!   The backend uses the `deepseek` profile and the mock rejects, like DeepSeek, an assistant
//!   tool-call message without its `reasoning_content`.
//! - `freeform_apply_patch_edits_a_file`: `apply_patch` as a `custom` tool (model catalog).
//! - `default_tool_set_is_converted`: Codex's default tools (namespaces, web_search).
//! - `view_image_output_becomes_an_image_part`: a `view_image` round trip (array output).
//!
//! The Responses requests Codex sent are the fixtures
//! `tests/fixtures/codex-0.169/recorded-*.json`; rewrite them with `CODEX_RECORD_FIXTURES=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use base64::Engine as _;
use common::codex::{
    record_fixture, run_codex, write_model_catalog, CodexOptions, ResponsesTap, CODEX_CLIENT_KEY,
};
use common::mock_upstream::reasoning_frames;
use common::mock_upstream::{
    self, delta_chunk, done_frame, frame, split_pieces, usage_chunk, MockReply, MockUpstream,
    RecordedRequest, Strictness,
};
use common::*;
use serde_json::{json, Value};

const DS_KEY: &str = "sk-test-deepseek";
const DS_MODEL: &str = "deepseek-reasoner";

/// A config with one default backend using the `deepseek` profile.
fn deepseek_config(listen_port: u16, log_dir: &Path, mock_port: u16) -> Value {
    test_config(
        listen_port,
        log_dir,
        json!([{
            "name": "reasoner",
            "provider": "deepseek",
            "url": format!("http://127.0.0.1:{mock_port}/v1"),
            "api_key": DS_KEY,
            "model": DS_MODEL,
            "match_rules": { "default": true },
        }]),
    )
}

// ------------------------------------------------------------------------------------------
// Stream builders (DeepSeek-shaped: reasoning_content deltas, tool calls keyed by index).

/// The first delta of a call: index, id, type, name and the first argument bytes.
fn call_head(index: u32, id: &str, name: &str, first_args: &str) -> String {
    frame(&delta_chunk(
        json!({ "tool_calls": [{
            "index": index, "id": id, "type": "function",
            "function": { "name": name, "arguments": first_args },
        }]}),
        None,
    ))
}

/// One chunk with argument pieces of one or more calls (no id, no name).
fn call_args(pieces: &[(u32, &str)]) -> String {
    let calls: Vec<Value> = pieces
        .iter()
        .map(|(i, p)| json!({ "index": i, "function": { "arguments": p } }))
        .collect();
    frame(&delta_chunk(json!({ "tool_calls": calls }), None))
}

/// `finish_reason: tool_calls`, usage, `[DONE]`.
fn finish_tool_calls() -> Vec<String> {
    vec![
        frame(&delta_chunk(json!({}), Some("tool_calls"))),
        frame(&usage_chunk()),
        done_frame(),
    ]
}

/// Reasoning, then calls streamed one after the other (arguments in pieces of 5).
fn reasoning_then_calls(reasoning: &str, calls: &[(&str, &str, &str)]) -> Vec<String> {
    let mut out = reasoning_frames(reasoning);
    for (i, (id, name, args)) in calls.iter().enumerate() {
        out.push(call_head(i as u32, id, name, ""));
        for p in split_pieces(args, 5) {
            out.push(call_args(&[(i as u32, &p)]));
        }
    }
    out.extend(finish_tool_calls());
    out
}

/// Reasoning, then two parallel calls: both heads first (ids and names only there), then
/// their arguments interleaved, some chunks carrying pieces of both calls.
fn reasoning_then_parallel_calls(
    reasoning: &str,
    a: (&str, &str, &str),
    b: (&str, &str, &str),
) -> Vec<String> {
    let mut out = reasoning_frames(reasoning);
    let pa = split_pieces(a.2, 4);
    let pb = split_pieces(b.2, 3);
    out.push(call_head(0, a.0, a.1, &pa[0]));
    out.push(call_head(1, b.0, b.1, ""));
    let n = pa.len().max(pb.len());
    for k in 0..n {
        let mut pieces: Vec<(u32, &str)> = Vec::new();
        if k > 0 {
            if let Some(p) = pa.get(k) {
                pieces.push((0, p));
            }
        }
        if let Some(p) = pb.get(k) {
            pieces.push((1, p));
        }
        if k % 2 == 0 {
            // One chunk with both calls' pieces.
            if !pieces.is_empty() {
                out.push(call_args(&pieces));
            }
        } else {
            for p in pieces {
                out.push(call_args(&[p]));
            }
        }
    }
    out.extend(finish_tool_calls());
    out
}

// ------------------------------------------------------------------------------------------
// Assertions on the upstream requests.

/// The text of the tool message answering `call_id` (panics when absent).
fn tool_output_for(req: &RecordedRequest, call_id: &str) -> String {
    let messages = req.messages();
    let m = messages
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message for {call_id}: {messages:#?}"));
    mock_upstream::message_text(m)
}

/// What an `exec_command` output says after Codex's `Output:` header.
fn command_output(tool_text: &str) -> String {
    match tool_text.split_once("Output:\n") {
        Some((_, out)) => out.trim().to_owned(),
        None => tool_text.trim().to_owned(),
    }
}

/// Every assistant message with `tool_calls` is followed right away by exactly one tool
/// message per call id, and every tool message answers a call: in every request.
fn assert_calls_paired(reqs: &[RecordedRequest]) {
    for (n, r) in reqs.iter().enumerate() {
        let messages = r.messages();
        let mut i = 0;
        while i < messages.len() {
            let m = &messages[i];
            assert_ne!(
                m["role"], "tool",
                "request #{n}: messages[{i}] is a tool message that answers no call: {messages:#?}"
            );
            if let Some(calls) = m["tool_calls"].as_array() {
                let mut ids: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
                let mut j = i + 1;
                while j < messages.len() && messages[j]["role"] == "tool" {
                    let id = messages[j]["tool_call_id"].as_str().unwrap();
                    let pos = ids.iter().position(|x| *x == id).unwrap_or_else(|| {
                        panic!(
                            "request #{n}: tool message {id} answers no open call: {messages:#?}"
                        )
                    });
                    ids.remove(pos);
                    j += 1;
                }
                assert!(
                    ids.is_empty(),
                    "request #{n}: calls {ids:?} of messages[{i}] have no tool message: {messages:#?}"
                );
                i = j;
            } else {
                i += 1;
            }
        }
    }
}

/// Assistant messages carrying tool calls, in order.
fn assistant_tool_messages(req: &RecordedRequest) -> Vec<Value> {
    req.messages()
        .into_iter()
        .filter(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
        .collect()
}

fn call_ids(m: &Value) -> Vec<String> {
    m["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn parsed_args(call: &Value) -> Value {
    serde_json::from_str(call["function"]["arguments"].as_str().unwrap())
        .unwrap_or_else(|e| panic!("tool call arguments are not JSON ({e}): {call}"))
}

/// No rejection, the backend's key and path, streaming, Codex's key never forwarded.
fn assert_upstream_basics(mock: &MockUpstream, key: &str, context: &str) -> Vec<RecordedRequest> {
    let rejected = mock.rejections();
    assert!(
        rejected.is_empty(),
        "the mock rejected {} request(s): {:#?}\n{context}",
        rejected.len(),
        rejected
            .iter()
            .map(|r| r.rejection.clone())
            .collect::<Vec<_>>()
    );
    let reqs = mock.requests();
    for r in &reqs {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {key}").as_str())
        );
        assert!(r.headers.iter().all(|(_, v)| !v.contains(CODEX_CLIENT_KEY)));
        assert_eq!(r.json()["stream"], true);
    }
    reqs
}

// ------------------------------------------------------------------------------------------
// The strict mock itself.

#[tokio::test]
async fn strict_mock_rejects_unpaired_calls_and_missing_reasoning() {
    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: true,
    });
    // A thinking turn that calls c1 (the mock remembers it).
    let mut thinking = reasoning_frames("Let me run it.");
    thinking.push(call_head(0, "c1", "exec_command", "{}"));
    thinking.extend(finish_tool_calls());
    mock.push(MockReply::sse(thinking));
    let resp = post_json(
        &mock.url("/v1/chat/completions"),
        &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        &[("authorization", "Bearer k")],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let call = json!({"id": "c1", "type": "function",
        "function": {"name": "exec_command", "arguments": "{}"}});
    let other = json!({"id": "c2", "type": "function",
        "function": {"name": "exec_command", "arguments": "{}"}});
    let cases = [
        // The reasoning of the thinking turn is missing.
        (
            json!([{"role": "user", "content": "hi"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}]),
            "reasoning_content",
        ),
        // The call has no tool message.
        (
            json!([{"role": "user", "content": "hi"},
                {"role": "assistant", "content": "", "reasoning_content": "r", "tool_calls": [call]},
                {"role": "user", "content": "next"}]),
            "tool_call_id",
        ),
        // A tool message answering nothing.
        (
            json!([{"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "c9", "content": "ok"}]),
            "role 'tool'",
        ),
    ];
    for (messages, wanted) in cases {
        let body = json!({"model": "m", "stream": false, "messages": messages});
        let resp = post_json(
            &mock.url("/v1/chat/completions"),
            &body,
            &[("authorization", "Bearer k")],
        )
        .await;
        assert_eq!(resp.status, 400, "{messages}: {}", resp.body);
        assert!(resp.body.contains(wanted), "{wanted}: {}", resp.body);
    }
    // Well-formed tool turns pass; a call of a turn without reasoning needs none.
    for body in [
        json!({"model": "m", "stream": false, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "reasoning_content": "r", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}),
        json!({"model": "m", "stream": false, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [other]},
            {"role": "tool", "tool_call_id": "c2", "content": "ok"}]}),
    ] {
        let resp = post_json(
            &mock.url("/v1/chat/completions"),
            &body,
            &[("authorization", "Bearer k")],
        )
        .await;
        assert_eq!(resp.status, 200, "{body}: {}", resp.body);
    }
}

// ------------------------------------------------------------------------------------------
// (a) reasoning + create a file, (b) two parallel calls, (c) an answer quoting the file.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepseek_multi_step_task_with_reasoning_and_parallel_calls() {
    const CONTENT: &str = "agent-content-42";
    const R1: &str = "The user wants a notes file. I will create notes.txt with the shell first.";
    const R2: &str = "Created. Now I read it back and count its bytes, both at once.";
    let create = (
        "call_ds_create_1",
        "exec_command",
        r#"{"cmd":"echo agent-content-42 > notes.txt"}"#,
    );
    let read = (
        "call_ds_read_2",
        "exec_command",
        r#"{"cmd":"cat notes.txt"}"#,
    );
    let count = (
        "call_ds_count_3",
        "exec_command",
        r#"{"cmd":"wc -c < notes.txt"}"#,
    );

    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: true,
    });
    mock.push(MockReply::sse(reasoning_then_calls(R1, &[create])));
    mock.push(MockReply::sse(reasoning_then_parallel_calls(
        R2, read, count,
    )));
    let read_id = read.0;
    mock.push(MockReply::dynamic(move |req| {
        let quoted = command_output(&tool_output_for(req, read_id));
        MockReply::text(&format!("notes.txt says: {quoted}"))
    }));
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(|port, logs| deepseek_config(port, logs, mock_port)).await;
    let tap = ResponsesTap::start(&proxy.base_url()).await;
    let workdir = tempfile::tempdir().unwrap();
    let prompt =
        "Create notes.txt containing agent-content-42, then read it back and tell me what it says";

    let run = run_codex(
        &tap.url("/v1"),
        workdir.path(),
        prompt,
        &CodexOptions::default(),
    )
    .await;
    let context = context_of(&run, &proxy);
    run.assert_success(&context);
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;

    // The file, made by the first call.
    let file = workdir.path().join("notes.txt");
    let content = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{} was not created ({e})\n{context}", file.display()));
    assert_eq!(content, format!("{CONTENT}\n"));

    // Codex ran the three commands and printed the answer built from the read-back output.
    let commands = run.completed_items("command_execution");
    assert_eq!(commands.len(), 3, "commands: {commands:#?}\n{context}");
    assert!(
        commands.iter().all(|c| c["exit_code"] == 0),
        "{commands:#?}"
    );
    let messages = run.agent_messages();
    assert_eq!(
        messages.last().map(String::as_str),
        Some(format!("notes.txt says: {CONTENT}").as_str()),
        "final message\n{context}"
    );
    // Codex showed the reasoning (from the summary).
    let reasoning: Vec<String> = run
        .completed_items("reasoning")
        .iter()
        .filter_map(|i| i["text"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reasoning.iter().any(|r| r.contains("create notes.txt")),
        "reasoning items: {reasoning:?}\n{context}"
    );

    // Upstream: three requests, all accepted by the strict mock.
    let reqs = assert_upstream_basics(&mock, DS_KEY, &context);
    assert_eq!(reqs.len(), 3, "{context}");
    assert_eq!(mock.pending_replies(), 0);
    assert_calls_paired(&reqs);
    for r in &reqs {
        assert_eq!(r.json()["model"], DS_MODEL);
    }

    // Request 2: the first call, with R1 passed back, and its output.
    let asst = assistant_tool_messages(&reqs[1]);
    assert_eq!(asst.len(), 1, "{:#?}", reqs[1].messages());
    assert_eq!(asst[0]["reasoning_content"], R1);
    assert_eq!(call_ids(&asst[0]), vec![create.0]);
    assert_eq!(asst[0]["tool_calls"][0]["function"]["name"], "exec_command");
    assert_eq!(
        parsed_args(&asst[0]["tool_calls"][0]),
        serde_json::from_str::<Value>(create.2).unwrap()
    );
    tool_output_for(&reqs[1], create.0);

    // Request 3: both turns, each with its own reasoning; the parallel calls in one
    // assistant message with their complete arguments, both outputs after it.
    let asst = assistant_tool_messages(&reqs[2]);
    assert_eq!(asst.len(), 2, "{:#?}", reqs[2].messages());
    assert_eq!(asst[0]["reasoning_content"], R1);
    assert_eq!(asst[1]["reasoning_content"], R2);
    assert_eq!(call_ids(&asst[1]), vec![read.0, count.0]);
    assert_eq!(
        parsed_args(&asst[1]["tool_calls"][0]),
        serde_json::from_str::<Value>(read.2).unwrap()
    );
    assert_eq!(
        parsed_args(&asst[1]["tool_calls"][1]),
        serde_json::from_str::<Value>(count.2).unwrap()
    );
    assert_eq!(command_output(&tool_output_for(&reqs[2], read.0)), CONTENT);
    assert_eq!(
        command_output(&tool_output_for(&reqs[2], count.0)),
        (CONTENT.len() + 1).to_string()
    );

    // What Codex sent: reasoning items carrying the proxy's token, both calls, both outputs.
    let tapped = tap.requests();
    assert_eq!(tapped.len(), 3);
    assert!(tapped.iter().all(|t| t.status == 200));
    let input = tapped[2].body["input"].as_array().unwrap();
    let count_of = |ty: &str| input.iter().filter(|i| i["type"] == ty).count();
    assert_eq!(count_of("reasoning"), 2, "{input:#?}");
    assert_eq!(count_of("function_call"), 3);
    assert_eq!(count_of("function_call_output"), 3);
    assert!(input
        .iter()
        .filter(|i| i["type"] == "reasoning")
        .all(|i| i["encrypted_content"]
            .as_str()
            .is_some_and(|t| t.starts_with("ccp1."))));
    record_fixture("recorded-parallel-outputs.json", &tapped[2]);
}

// ------------------------------------------------------------------------------------------
// Freeform tool: apply_patch as a `custom` tool.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeform_apply_patch_edits_a_file() {
    const MODEL: &str = "glm-5";
    let patch =
        "*** Begin Patch\n*** Update File: hello.txt\n@@\n-old line\n+new line\n*** End Patch\n";
    let call_id = "call_patch_1";
    let args = json!({ "input": patch }).to_string();
    let final_text = "I replaced the old line of hello.txt.";

    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: false,
    });
    mock.push(MockReply::tool_call(call_id, "apply_patch", &args));
    mock.push(MockReply::text(final_text));
    let proxy = ProxyProcess::start(&mock).await;
    let tap = ResponsesTap::start(&proxy.base_url()).await;
    let workdir = tempfile::tempdir().unwrap();
    std::fs::write(workdir.path().join("hello.txt"), "old line\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let catalog = write_model_catalog(
        home.path(),
        MODEL,
        &json!({ "apply_patch_tool_type": "freeform" }),
    );
    let opts = CodexOptions {
        model: MODEL.to_owned(),
        config: vec![format!("model_catalog_json=\"{}\"", catalog.display())],
        home: Some(home.path().to_owned()),
        ..CodexOptions::default()
    };

    let run = run_codex(
        &tap.url("/v1"),
        workdir.path(),
        "Replace the old line in hello.txt",
        &opts,
    )
    .await;
    let context = context_of(&run, &proxy);
    run.assert_success(&context);
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
    assert!(
        !run.stderr.contains("Model metadata"),
        "the catalog was not used\n{context}"
    );

    assert_eq!(
        std::fs::read_to_string(workdir.path().join("hello.txt")).unwrap(),
        "new line\n",
        "the patch was not applied\n{context}"
    );
    assert_eq!(
        run.agent_messages().last().map(String::as_str),
        Some(final_text)
    );

    // Codex offered apply_patch as a custom tool; the proxy made it a function with one
    // string parameter `input`.
    let tapped = tap.requests();
    assert_eq!(tapped.len(), 2, "{context}");
    let offered = tapped[0].body["tools"].as_array().unwrap();
    assert!(
        offered
            .iter()
            .any(|t| t["type"] == "custom" && t["name"] == "apply_patch"),
        "Codex did not offer apply_patch as a custom tool: {offered:#?}"
    );
    let reqs = assert_upstream_basics(&mock, MAIN_KEY, &context);
    assert_eq!(reqs.len(), 2);
    assert_calls_paired(&reqs);
    let tools = reqs[0].json()["tools"].as_array().unwrap().clone();
    let ap = tools
        .iter()
        .find(|t| t["function"]["name"] == "apply_patch")
        .unwrap_or_else(|| panic!("no apply_patch function upstream: {tools:#?}"));
    let params = &ap["function"]["parameters"];
    assert_eq!(params["type"], "object");
    assert_eq!(params["properties"].as_object().unwrap().len(), 1);
    assert_eq!(params["properties"]["input"]["type"], "string");
    assert_eq!(params["required"], json!(["input"]));

    // Codex got a custom_tool_call (not a function_call) and sent it back with its output.
    let input = tapped[1].body["input"].as_array().unwrap();
    let ctc = input
        .iter()
        .find(|i| i["type"] == "custom_tool_call")
        .unwrap_or_else(|| panic!("no custom_tool_call in Codex's second request: {input:#?}"));
    assert_eq!(ctc["name"], "apply_patch");
    assert_eq!(ctc["call_id"], call_id);
    assert_eq!(ctc["input"], patch);
    assert!(input
        .iter()
        .any(|i| i["type"] == "custom_tool_call_output" && i["call_id"] == call_id));

    // Upstream: the call with `{"input": ...}` arguments and a tool message with its id.
    let asst = assistant_tool_messages(&reqs[1]);
    assert_eq!(asst.len(), 1, "{:#?}", reqs[1].messages());
    assert_eq!(call_ids(&asst[0]), vec![call_id]);
    assert_eq!(asst[0]["tool_calls"][0]["function"]["name"], "apply_patch");
    assert_eq!(
        parsed_args(&asst[0]["tool_calls"][0]),
        json!({ "input": patch })
    );
    let out = tool_output_for(&reqs[1], call_id);
    assert!(!out.is_empty());
}

// ------------------------------------------------------------------------------------------
// Codex's default tool set (namespaces, goals, web_search).

/// A name every provider accepts.
fn assert_safe_name(name: &str) {
    assert!(
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
        "unsafe function name {name:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tool_set_is_converted() {
    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: false,
    });
    let reply = "Default tools seen.";
    mock.push(MockReply::text(reply));
    let proxy = ProxyProcess::start(&mock).await;
    let tap = ResponsesTap::start(&proxy.base_url()).await;
    let workdir = tempfile::tempdir().unwrap();
    let opts = CodexOptions {
        default_tools: true,
        ..CodexOptions::default()
    };

    let run = run_codex(&tap.url("/v1"), workdir.path(), "Say hi", &opts).await;
    let context = context_of(&run, &proxy);
    eprintln!("codex with its default tool set took {:?}", run.elapsed);
    run.assert_success(&context);
    // The dialect guard: the hosted web_search tool is the only thing left out (no Chat
    // provider can run it; asserted below not to go upstream), and it is counted.
    assert_unconverted_exactly(&proxy.base_url(), &[("tool", "web_search")]).await;
    assert_eq!(run.agent_messages().last().map(String::as_str), Some(reply));

    let tapped = tap.requests();
    assert!(!tapped.is_empty(), "{context}");
    let first = &tapped[0];
    assert_eq!(first.status, 200, "{context}");
    let tools = first.body["tools"].as_array().unwrap();
    let namespaces: Vec<&Value> = tools.iter().filter(|t| t["type"] == "namespace").collect();
    assert!(
        !namespaces.is_empty(),
        "Codex sent no namespace tool with its default tool set: {tools:#?}"
    );
    assert!(
        tools.iter().any(|t| t["type"] == "web_search"),
        "Codex sent no web_search tool with its default tool set"
    );
    record_fixture("recorded-default-tools.json", first);

    let reqs = assert_upstream_basics(&mock, MAIN_KEY, &context);
    let up_tools = reqs[0].json()["tools"].as_array().unwrap().clone();
    let names: Vec<String> = up_tools
        .iter()
        .map(|t| {
            assert_eq!(t["type"], "function", "{t}");
            t["function"]["name"].as_str().unwrap().to_owned()
        })
        .collect();
    for n in &names {
        assert_safe_name(n);
    }
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicate names: {names:?}");
    assert!(
        !up_tools
            .iter()
            .any(|t| t.to_string().contains("\"web_search\"")),
        "web_search went upstream"
    );
    // Every namespace tool is flattened to namespace__name; every plain function kept.
    let mut expected = 0;
    for t in tools {
        match t["type"].as_str().unwrap() {
            "function" | "custom" => {
                expected += 1;
                assert!(names.iter().any(|n| n == t["name"].as_str().unwrap()));
            }
            "namespace" => {
                let ns = t["name"].as_str().unwrap();
                for inner in t["tools"].as_array().unwrap() {
                    expected += 1;
                    let flat = format!("{ns}__{}", inner["name"].as_str().unwrap());
                    assert!(names.contains(&flat), "{flat} missing from {names:?}");
                }
            }
            _ => {}
        }
    }
    assert_eq!(names.len(), expected, "{names:?}");
}

// ------------------------------------------------------------------------------------------
// view_image: an array output with an input_image part.

/// An 8x8 RGB PNG.
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbElEQVR4nBXNQRUAUQhCUaMYhShGeVGIQhSizB+XXA7ODDtouIHBQ4YOM8suWm5h8ZKl+0CskDiBsIioHhx76LiDw0eO3oN/4FVf+J8h0PduzBqZ8x/bxNQPwgaFy192SGgelC0q13/CJaXlA8Z7WAGfV950AAAAAElFTkSuQmCC";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_image_output_becomes_an_image_part() {
    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: false,
    });
    let call_id = "call_view_1";
    let workdir = tempfile::tempdir().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .unwrap();
    let png_path = workdir.path().join("pixel.png");
    std::fs::write(&png_path, &png).unwrap();
    let args = json!({ "path": png_path.to_string_lossy() }).to_string();
    let final_text = "The image is a small gradient.";
    mock.push(MockReply::tool_call(call_id, "view_image", &args));
    mock.push(MockReply::text(final_text));
    let proxy = ProxyProcess::start(&mock).await;
    let tap = ResponsesTap::start(&proxy.base_url()).await;

    let run = run_codex(
        &tap.url("/v1"),
        workdir.path(),
        "Look at pixel.png and describe it",
        &CodexOptions::default(),
    )
    .await;
    let context = context_of(&run, &proxy);
    run.assert_success(&context);
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;
    assert_eq!(
        run.agent_messages().last().map(String::as_str),
        Some(final_text)
    );

    // Codex's second request: the output is an array with an input_image part.
    let tapped = tap.requests();
    assert_eq!(tapped.len(), 2, "{context}");
    let input = tapped[1].body["input"].as_array().unwrap();
    let out = input
        .iter()
        .find(|i| i["type"] == "function_call_output" && i["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no output for {call_id}: {input:#?}"));
    let parts = out["output"]
        .as_array()
        .unwrap_or_else(|| panic!("view_image output is not an array: {out}"));
    let image = parts
        .iter()
        .find(|p| p["type"] == "input_image")
        .unwrap_or_else(|| panic!("no input_image part: {parts:#?}"));
    let url = image["image_url"].as_str().unwrap();
    assert!(
        url.starts_with("data:image/"),
        "{}",
        &url[..40.min(url.len())]
    );
    record_fixture("recorded-view-image-output.json", &tapped[1]);

    // Upstream (generic profile): the tool message, then a user message with the image.
    let reqs = assert_upstream_basics(&mock, MAIN_KEY, &context);
    assert_eq!(reqs.len(), 2);
    assert_calls_paired(&reqs);
    let messages = reqs[1].messages();
    let pos_tool = messages
        .iter()
        .position(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message: {messages:#?}"));
    let next = &messages[pos_tool + 1];
    assert_eq!(next["role"], "user", "{messages:#?}");
    let img = next["content"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["type"] == "image_url"))
        .unwrap_or_else(|| panic!("no image_url part after the tool message: {next:#}"));
    assert_eq!(img["image_url"]["url"], url);
}
