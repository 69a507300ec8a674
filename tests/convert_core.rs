//! The pure conversion core against recorded Codex requests and provider-shaped streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codex_convert_proxy::convert::request::{convert_request, parse_request, RequestOptions};
use codex_convert_proxy::convert::streaming::convert_completion;
use codex_convert_proxy::convert::streaming::{Framing, StreamConverter};
use codex_convert_proxy::convert::ResponseContext;
use codex_convert_proxy::providers::{self, Quirks};
use codex_convert_proxy::types::chat::ChatCompletion;
use proptest::prelude::*;

/// A completion read from `v`'s text (it borrows from it: kept for the test's run).
fn completion_of(v: Value) -> ChatCompletion<'static> {
    serde_json::from_str(Box::leak(v.to_string().into_boxed_str())).unwrap()
}
use serde_json::{json, Value};

#[path = "common/core.rs"]
mod core_helpers;
use core_helpers::{check_converter_events, fixed, options, parse_converter_sse};

fn fixture(name: &str) -> Vec<u8> {
    core_helpers::fixture_bytes(name)
}

fn convert(body: &[u8], quirks: &Quirks) -> (Value, ResponseContext) {
    let (chat, c) = core_helpers::convert_body(body, quirks, 42);
    (chat, c.ctx)
}

fn run_stream(ctx: ResponseContext, chunks: &[&[u8]]) -> Vec<u8> {
    core_helpers::run_stream(ctx, chunks)
}

/// Parse our SSE output into (event, json) and check the lifecycle invariants.
fn events(out: &[u8]) -> Vec<(String, Value)> {
    let evs = parse_converter_sse(out);
    check_converter_events(&evs);
    evs.into_iter().map(|e| (e.event, e.data)).collect()
}

fn terminal(evs: &[(String, Value)]) -> &Value {
    &evs.last().unwrap().1["response"]
}

// ------------------------------------------------------------------------------------------
// Requests

#[test]
fn codex_turn1_text_request() {
    let (chat, ctx) = convert(&fixture("codex-0.169/turn1-text.json"), &Quirks::openai());
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    let sys = msgs[0]["content"].as_str().unwrap();
    assert!(sys.starts_with("You are a coding agent running in the Codex CLI"));
    assert!(
        sys.contains("<skills_instructions>"),
        "both leading developer messages merged"
    );
    assert_eq!(msgs.iter().filter(|m| m["role"] == "system").count(), 1);
    assert_eq!(msgs.last().unwrap()["role"], "user");
    assert_eq!(msgs.last().unwrap()["content"], "Say hi");
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    for k in [
        "input",
        "store",
        "include",
        "prompt_cache_key",
        "client_metadata",
        "reasoning",
        "instructions",
    ] {
        assert!(chat.get(k).is_none(), "{k} must not be forwarded");
    }
    let names: Vec<&str> = chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"exec_command"));
    assert!(names.contains(&"multi_agent_v1__spawn_agent"), "{names:?}");
    assert!(names.iter().all(|n| n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')));
    assert!(
        !names.iter().any(|n| n.contains("web_search")),
        "hosted tool left out"
    );
    assert_eq!(chat["tool_choice"], "auto");
    assert_eq!(chat["parallel_tool_calls"], true);
    assert!(ctx.stream);
    assert_eq!(ctx.model, "stub-model");
}

#[test]
fn codex_turn2_tool_history_pairs_calls_and_outputs() {
    let (chat, _) = convert(
        &fixture("codex-0.169/turn2-after-exec-command.json"),
        &Quirks::openai(),
    );
    let msgs = chat["messages"].as_array().unwrap();
    let n = msgs.len();
    let asst = &msgs[n - 2];
    let tool = &msgs[n - 1];
    assert_eq!(asst["role"], "assistant");
    assert_eq!(asst["tool_calls"][0]["id"], "call_b04d3a13433b48fb8a8131c0");
    assert_eq!(asst["tool_calls"][0]["function"]["name"], "exec_command");
    assert_eq!(
        asst["tool_calls"][0]["function"]["arguments"],
        "{\"cmd\": \"echo hello-from-tool\"}"
    );
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], "call_b04d3a13433b48fb8a8131c0");
    assert!(tool["content"]
        .as_str()
        .unwrap()
        .contains("hello-from-tool"));
}

#[test]
fn codex_apply_patch_freeform_becomes_function_with_input() {
    let glm = providers::glm::quirks();
    let (chat, ctx) = convert(
        &fixture("codex-0.169/turn1-with-apply-patch-freeform.json"),
        &glm,
    );
    let ap = chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "apply_patch")
        .unwrap();
    let params = &ap["function"]["parameters"];
    assert_eq!(params["required"], json!(["input"]));
    assert!(params["properties"]["input"]["description"]
        .as_str()
        .unwrap()
        .contains("begin_patch"));
    assert!(ctx.catalog.is_custom("apply_patch"));
    // GLM: only tool_choice auto, no strict, thinking from reasoning.effort, content strings
    assert_eq!(chat["tool_choice"], "auto");
    assert!(chat["tools"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["function"].get("strict").is_none()));
    assert_eq!(chat["thinking"], json!({"type": "enabled"}));
    assert!(chat.get("parallel_tool_calls").is_none());
    assert!(chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["content"].is_string()));
}

#[test]
fn history_items_round_trip_with_reasoning_namespace_custom_and_images() {
    let mut rctx = fixed(ResponseContext::for_tests("m", true));
    // Produce a reasoning item with our token through the stream converter first.
    rctx.quirks = providers::deepseek::quirks();
    let out = run_stream(rctx, &[&fixture("upstream/deepseek-reasoning-tool.sse")]);
    let evs = events(&out);
    let items = terminal(&evs)["output"].as_array().unwrap().clone();
    assert_eq!(items[0]["type"], "reasoning");
    assert_eq!(items[1]["type"], "function_call");
    let body = json!({
        "model": "deepseek-chat",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "base"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
            items[0], items[1],
            {"type": "function_call_output", "call_id": items[1]["call_id"], "output": [
                {"type": "input_text", "text": "seen"},
                {"type": "input_image", "image_url": "data:image/png;base64,BBBB", "detail": "high"}]},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "permissions changed"}]},
            {"type": "function_call", "call_id": "c2", "name": "spawn_agent", "namespace": "multi_agent_v1", "arguments": "{}"},
            {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
            {"type": "function_call_output", "call_id": "c2", "output": "ok"},
            {"type": "custom_tool_call_output", "call_id": "c3", "output": "done"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"type": "compaction", "encrypted_content": "xyz"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "All done."}]},
            {"type": "message", "role": "user", "content": "thanks"}
        ]
    });
    let oai = Quirks::openai();
    let (chat, _) = convert(body.to_string().as_bytes(), &oai);
    let msgs = chat["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        [
            "system",
            "user",
            "assistant",
            "tool",
            "user",
            "system",
            "assistant",
            "tool",
            "tool",
            "assistant",
            "user"
        ]
    );
    // reasoning restored from the token onto the assistant tool-call message
    assert_eq!(
        msgs[2]["reasoning_content"],
        "The user wants a file. I will run échó — 思考."
    );
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["name"], "exec_command");
    // user image kept as parts
    assert_eq!(msgs[1]["content"][1]["type"], "image_url");
    // tool output array: text in the tool message, the image in a following user message
    assert_eq!(msgs[3]["content"], "seen\n[image]");
    assert_eq!(
        msgs[4]["content"][1]["image_url"]["url"],
        "data:image/png;base64,BBBB"
    );
    // namespaced and custom calls merged into one assistant message
    assert_eq!(
        msgs[6]["tool_calls"][0]["function"]["name"],
        "multi_agent_v1__spawn_agent"
    );
    assert_eq!(
        msgs[6]["tool_calls"][1]["function"]["arguments"],
        json!({"input": "*** Begin Patch\n*** End Patch"}).to_string()
    );
    assert_eq!(msgs[7]["tool_call_id"], "c2");
    assert_eq!(msgs[8]["tool_call_id"], "c3");

    // DeepSeek takes no images: notes instead of parts.
    let (chat, _) = convert(body.to_string().as_bytes(), &providers::deepseek::quirks());
    let msgs = chat["messages"].as_array().unwrap();
    assert!(msgs[1]["content"]
        .as_str()
        .unwrap()
        .contains("[image omitted"));
    assert!(msgs.iter().all(|m| !m["content"].is_array()));
    // MiniMax: reasoning back inside <think>, single system message, developer → user later
    let (chat, _) = convert(body.to_string().as_bytes(), &providers::minimax::quirks());
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs.iter().filter(|m| m["role"] == "system").count(), 1);
    assert_eq!(msgs[0]["role"], "system");
    assert!(msgs.iter().all(|m| m["role"] != "developer"));
    let think = msgs.iter().find(|m| m["role"] == "assistant").unwrap();
    assert!(think["content"]
        .as_str()
        .unwrap()
        .starts_with("<think>\nThe user wants a file."));
}

#[test]
fn broken_histories_are_repaired_not_rejected() {
    let body = json!({"model": "m", "input": [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "lost", "name": "exec_command", "arguments": ""},
        {"type": "message", "role": "user", "content": "interrupted, go on"},
        {"type": "function_call_output", "call_id": "orphan", "output": "stale"}
    ]});
    let (chat, _) = convert(body.to_string().as_bytes(), &Quirks::openai());
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["tool_calls"][0]["function"]["arguments"], "{}");
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], "lost");
    assert_eq!(msgs[3]["role"], "user");
    assert_eq!(msgs[4]["role"], "user");
    assert!(msgs[4]["content"].as_str().unwrap().contains("orphan"));
}

#[test]
fn parameters_are_mapped_per_provider() {
    let body = json!({"model": "m", "input": "hi", "stream": false, "max_output_tokens": 100,
        "temperature": 0.5, "top_p": 0.9, "reasoning": {"effort": "high"},
        "text": {"format": {"type": "json_schema", "name": "out", "strict": true,
            "schema": {"type": "object"}}, "verbosity": "low"},
        "tool_choice": {"type": "function", "name": "f"},
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]});
    let (chat, ctx) = convert(body.to_string().as_bytes(), &Quirks::openai());
    assert_eq!(chat["max_tokens"], 100);
    assert_eq!(chat["temperature"], 0.5);
    assert_eq!(chat["top_p"], 0.9);
    assert_eq!(chat["reasoning_effort"], "high");
    assert_eq!(chat["response_format"]["type"], "json_schema");
    assert_eq!(chat["response_format"]["json_schema"]["name"], "out");
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert!(chat.get("stream").is_none() && chat.get("stream_options").is_none());
    assert!(!ctx.stream);
    assert!(chat.get("verbosity").is_none());
    let (chat, _) = convert(body.to_string().as_bytes(), &providers::minimax::quirks());
    assert_eq!(chat["max_completion_tokens"], 100);
    assert!(chat.get("reasoning_effort").is_none());
    let (chat, _) = convert(body.to_string().as_bytes(), &providers::deepseek::quirks());
    assert_eq!(chat["response_format"], json!({"type": "json_object"}));
    assert!(chat["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("JSON schema"));
    assert_eq!(chat["reasoning_effort"], "high");
}

#[test]
fn bad_requests_are_invalid_request_errors() {
    let q = Quirks::openai();
    let opts = options(&q, 1);
    assert!(parse_request(b"").is_err());
    assert!(parse_request(b"{not json").is_err());
    assert!(parse_request(&[0xff, 0xfe]).is_err());
    let e = parse_request(br#"{"model": 5, "input": "x"}"#).unwrap_err();
    assert!(e.message.contains("parse"), "{e}");
    let e = convert_request(parse_request(br#"{"input": "x"}"#).unwrap(), &opts).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("model"));
    let e = convert_request(parse_request(br#"{"model": "m"}"#).unwrap(), &opts).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input"));
    let e = convert_request(
        parse_request(br#"{"model": "m", "input": [{"role": "wizard", "content": "x"}]}"#).unwrap(),
        &opts,
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("input[0].role"));
    // A backend model replaces the client's, but a request without one is still a 400, as
    // OpenAI and Open Responses have it.
    let opts2 = RequestOptions {
        model_override: Some("forced"),
        ..options(&q, 1)
    };
    let e = convert_request(parse_request(br#"{"input": "x"}"#).unwrap(), &opts2).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("model"));
    let c = convert_request(
        parse_request(br#"{"model": "m", "input": "x"}"#).unwrap(),
        &opts2,
    )
    .unwrap();
    assert_eq!(c.chat.model, "forced");
}

// ------------------------------------------------------------------------------------------
// Streams

#[test]
fn deepseek_reasoning_then_tool_call() {
    let mut ctx = fixed(ResponseContext::for_tests("deepseek-reasoner", true));
    ctx.quirks = providers::deepseek::quirks();
    let out = run_stream(ctx, &[&fixture("upstream/deepseek-reasoning-tool.sse")]);
    let evs = events(&out);
    let names: Vec<&str> = evs.iter().map(|(e, _)| e.as_str()).collect();
    assert!(names.contains(&"response.reasoning_summary_part.added"));
    assert!(names.contains(&"response.reasoning_summary_text.delta"));
    assert!(names.contains(&"response.function_call_arguments.delta"));
    assert!(names.contains(&"response.function_call_arguments.done"));
    let resp = terminal(&evs);
    assert_eq!(resp["status"], "completed");
    let out = resp["output"].as_array().unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0]["summary"][0]["text"],
        "The user wants a file. I will run échó — 思考."
    );
    assert!(out[0]["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with("ccp1."));
    assert_eq!(out[1]["call_id"], "call_00_Xa9");
    assert_eq!(out[1]["name"], "exec_command");
    assert_eq!(out[1]["arguments"], "{\"cmd\": \"echo hi > out.txt\"}");
    assert_eq!(resp["usage"]["input_tokens"], 1200);
    assert_eq!(resp["usage"]["input_tokens_details"]["cached_tokens"], 1024);
    assert_eq!(
        resp["usage"]["output_tokens_details"]["reasoning_tokens"],
        22
    );
    assert_eq!(resp["usage"]["total_tokens"], 1240);
}

#[test]
fn kimi_text_then_parallel_calls_with_usage_in_choice() {
    let body = json!({"model": "kimi-k2", "stream": true, "input": "x", "tools": [
        {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
        {"type": "namespace", "name": "multi_agent_v1", "tools": [
            {"type": "function", "name": "list_agents", "parameters": {"type": "object"}}]}]});
    let (_, ctx) = convert(body.to_string().as_bytes(), &providers::kimi::quirks());
    let out = run_stream(
        fixed(ctx),
        &[&fixture("upstream/kimi-text-parallel-tools.sse")],
    );
    let evs = events(&out);
    let resp = terminal(&evs);
    let items = resp["output"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["reasoning", "message", "function_call", "function_call"]
    );
    assert_eq!(items[1]["content"][0]["text"], "Let me check both files.");
    assert_eq!(items[2]["call_id"], "functions.exec_command:0");
    assert_eq!(items[2]["arguments"], "{\"cmd\":\"cat a.txt\"}");
    assert_eq!(items[3]["name"], "list_agents");
    assert_eq!(items[3]["namespace"], "multi_agent_v1");
    assert_eq!(resp["usage"]["input_tokens"], 500);
    assert_eq!(resp["usage"]["input_tokens_details"]["cached_tokens"], 256);
    // the heads of both calls came first, the first call's arguments after: nothing is lost
    let pos = |pred: &dyn Fn(&(String, Value)) -> bool| evs.iter().position(pred).unwrap();
    let added3 = pos(&|(e, v)| e == "response.output_item.added" && v["output_index"] == 3);
    let late_args = pos(&|(e, v)| {
        e == "response.function_call_arguments.delta"
            && v["output_index"] == 2
            && v["delta"] == "{\"cmd\":\"cat a.txt\"}"
    });
    let done2 = pos(&|(e, v)| e == "response.output_item.done" && v["output_index"] == 2);
    assert!(added3 < late_args && late_args < done2);
}

#[test]
fn minimax_think_tags_become_reasoning() {
    let mut ctx = fixed(ResponseContext::for_tests("MiniMax-M2", true));
    ctx.quirks = providers::minimax::quirks();
    let out = run_stream(ctx, &[&fixture("upstream/minimax-think-text.sse")]);
    let evs = events(&out);
    let items = terminal(&evs)["output"].as_array().unwrap().clone();
    assert_eq!(items[0]["type"], "reasoning");
    assert_eq!(items[0]["summary"][0]["text"], "\nShort plan.");
    assert_eq!(items[1]["content"][0]["text"], "Hello from MiniMax 👋");
    assert_eq!(
        terminal(&evs)["status"],
        "completed",
        "ends without [DONE] and still completes"
    );
}

#[test]
fn length_finish_is_incomplete() {
    let mut ctx = fixed(ResponseContext::for_tests("glm-4.6", true));
    ctx.quirks = providers::glm::quirks();
    let out = run_stream(ctx, &[&fixture("upstream/glm-text-length.sse")]);
    let evs = events(&out);
    assert_eq!(evs.last().unwrap().0, "response.incomplete");
    let resp = terminal(&evs);
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(
        resp["output"][1]["content"][0]["text"],
        "A long answer that stops"
    );
}

#[test]
fn custom_tool_call_restored_from_function_call() {
    let body = json!({"model": "m", "stream": true, "input": "x", "tools": [
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}]});
    let (_, ctx) = convert(body.to_string().as_bytes(), &Quirks::openai());
    let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
    let args = json!({"input": patch}).to_string();
    let (a1, a2) = args.split_at(10);
    let stream = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "apply_patch", "arguments": a1}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": a2}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    );
    let out = run_stream(fixed(ctx), &[stream.as_bytes()]);
    let evs = events(&out);
    let item = &terminal(&evs)["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["name"], "apply_patch");
    assert_eq!(item["input"], patch);
    assert!(evs
        .iter()
        .any(|(e, _)| e == "response.custom_tool_call_input.delta"));
    assert!(!evs
        .iter()
        .any(|(e, _)| e.starts_with("response.function_call_arguments")));
}

#[test]
fn upstream_error_in_stream_and_garbage_fail_cleanly() {
    let ctx = fixed(ResponseContext::for_tests("m", true));
    let s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\ndata: {\"error\":{\"message\":\"This model's maximum context length is 8192 tokens\",\"code\":\"context_length_exceeded\"}}\n\n";
    let evs = events(&run_stream(ctx.clone(), &[s.as_bytes()]));
    let resp = terminal(&evs);
    assert_eq!(resp["status"], "failed");
    assert_eq!(resp["error"]["code"], "context_length_exceeded");
    let evs = events(&run_stream(
        ctx.clone(),
        &[b"data: {\"choices\": [oops\n\n"],
    ));
    assert_eq!(terminal(&evs)["error"]["code"], "server_error");
    // an empty upstream body still completes with one terminal event
    let evs = events(&run_stream(ctx.clone(), &[]));
    assert_eq!(terminal(&evs)["status"], "completed");
    // a cut-off stream
    let mut conv = StreamConverter::new(ctx, Framing::Sse);
    conv.push_bytes(
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half\"}}]}\n\ndata: {\"cho",
    );
    conv.fail("server_error", "cut");
    let evs = events(&conv.take_output());
    assert_eq!(terminal(&evs)["status"], "failed");
    // the partial message is not finished (no client keeps the fragment)
    assert_eq!(
        evs.iter()
            .filter(|(e, _)| e == "response.output_item.added")
            .count(),
        1
    );
    assert_eq!(
        evs.iter()
            .filter(|(e, _)| e == "response.output_item.done")
            .count(),
        0
    );
    assert_eq!(terminal(&evs)["output"], json!([]));
}

#[test]
fn non_stream_completion_to_response_object() {
    let body = json!({"model": "m", "input": "x", "tools": [
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}]});
    let (_, ctx) = convert(body.to_string().as_bytes(), &Quirks::openai());
    let completion: ChatCompletion = completion_of(json!({
        "id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Calling.", "reasoning_content": "why",
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "ns__f", "arguments": "{\"a\":1}"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}));
    let resp = convert_completion(&ctx, &completion);
    for k in [
        "id",
        "object",
        "created_at",
        "completed_at",
        "status",
        "incomplete_details",
        "model",
        "previous_response_id",
        "instructions",
        "output",
        "error",
        "tools",
        "tool_choice",
        "truncation",
        "parallel_tool_calls",
        "text",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
        "temperature",
        "reasoning",
        "usage",
        "max_output_tokens",
        "max_tool_calls",
        "store",
        "background",
        "service_tier",
        "metadata",
        "safety_identifier",
        "prompt_cache_key",
    ] {
        assert!(resp.get(k).is_some(), "missing {k}");
    }
    assert_eq!(resp["object"], "response");
    assert_eq!(resp["status"], "completed");
    let out = resp["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[1]["content"][0]["text"], "Calling.");
    assert_eq!(out[2]["namespace"], "ns");
    assert_eq!(out[2]["name"], "f");
    assert_eq!(resp["usage"]["total_tokens"], 7);
}

// ------------------------------------------------------------------------------------------
// Property: any split of a recorded stream gives byte-identical output.

fn recorded() -> Vec<(Vec<u8>, Quirks)> {
    vec![
        (
            fixture("upstream/deepseek-reasoning-tool.sse"),
            providers::deepseek::quirks(),
        ),
        (
            fixture("upstream/kimi-text-parallel-tools.sse"),
            providers::kimi::quirks(),
        ),
        (
            fixture("upstream/minimax-think-text.sse"),
            providers::minimax::quirks(),
        ),
        (
            fixture("upstream/glm-text-length.sse"),
            providers::glm::quirks(),
        ),
    ]
}

fn ctx_for(q: &Quirks) -> ResponseContext {
    let mut ctx = fixed(ResponseContext::for_tests("m", true));
    ctx.quirks = q.clone();
    ctx
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_split_gives_identical_output(which in 0usize..4, cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40)) {
        let streams = recorded();
        let (bytes, q) = &streams[which];
        let whole = run_stream(ctx_for(q), &[bytes]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(&bytes[last..p]);
            last = p;
        }
        pieces.push(&bytes[last..]);
        let split = run_stream(ctx_for(q), &pieces);
        prop_assert_eq!(whole, split);
    }
}

#[test]
fn every_single_byte_split_is_identical() {
    for (bytes, q) in recorded() {
        let whole = run_stream(ctx_for(&q), &[&bytes]);
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(whole, run_stream(ctx_for(&q), &singles));
        events(&whole);
    }
}

/// The Response objects echo `tools` exactly as the client wrote them (key order, unknown
/// keys, number spelling), in every event that carries the Response and in the JSON reply.
/// Open Responses requires `description`, `parameters` and `strict` (each may be null) on
/// every function tool of a Response object: a client that leaves them out gets them back
/// as null, the rest of each tool as sent.
#[test]
fn function_tools_echo_missing_members_as_null() {
    let body = br#"{"model":"m","stream":false,"input":"hi","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}},{"type":"web_search"}]}"#;
    let req = parse_request(body).unwrap();
    let quirks = Quirks::openai();
    let opts = options(&quirks, 1);
    let c = convert_request(req, &opts).unwrap();
    let (json, _) = codex_convert_proxy::convert::streaming::convert_completion_json(
        fixed(c.ctx),
        &serde_json::from_str(
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}"#,
        )
        .unwrap(),
    );
    let v: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v["tools"],
        json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"},
            "description": null, "strict": null}, {"type": "web_search"}])
    );
}

#[test]
fn tools_are_echoed_byte_for_byte() {
    let tools = r#"[{"type":"function","name":"exec_command","description":null,"x_vendor":{"b":1,"a":2},"parameters":{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]},"strict":false},{"type":"web_search","external_web_access":true},{"type":"custom","name":"apply_patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}}]"#;
    let body = format!(
        r#"{{"model":"m","stream":true,"instructions":"Be \"brief\".\n","tools":{tools},"input":"hi","client_metadata":{{"k":"v"}},"unknown_top":[1,{{"z":null}}]}}"#
    );
    let req = parse_request(body.as_bytes()).unwrap();
    let quirks = Quirks::openai();
    let opts = options(&quirks, 1);
    let c = convert_request(req, &opts).unwrap();
    // The chat tools carry the schema as sent too.
    let chat = serde_json::to_string(&c.chat).unwrap();
    assert!(
        chat.contains(r#""parameters":{"type":"object","properties":{"cmd":{"type":"string"}},"required":["cmd"]}"#),
        "{chat}"
    );
    let ctx = fixed(c.ctx);
    let out = run_stream(
        ctx.clone(),
        &[b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n"],
    );
    let text = std::str::from_utf8(&out).unwrap();
    let needle = format!(r#""tools":{tools}"#);
    let with_response = text.matches("\"response\":").count();
    assert_eq!(with_response, 3, "created, in_progress, completed: {text}");
    assert_eq!(text.matches(needle.as_str()).count(), 3, "{text}");
    assert!(text.contains(r#""instructions":"Be \"brief\".\n""#));
    let evs = events(&out);
    let done = terminal(&evs);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "ok");
    assert_eq!(done["tool_choice"], "auto");
    assert_eq!(done["metadata"], json!({}));

    let completion: ChatCompletion = completion_of(json!({"choices": [{"index": 0,
        "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}));
    let (json_reply, failed) =
        codex_convert_proxy::convert::streaming::convert_completion_json(ctx, &completion);
    assert!(failed.is_none());
    let reply = std::str::from_utf8(&json_reply).unwrap();
    assert!(reply.contains(needle.as_str()), "{reply}");
    let v: Value = serde_json::from_str(reply).unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["tools"].as_array().unwrap().len(), 3);
}

/// Items and parts parse in one pass whatever their shape: `type` not first, `type` not a
/// string, no `type` but a `role`, not an object at all, `image_url` as a string or an
/// object, a tool output array that is not all content parts.
#[test]
fn odd_item_shapes_parse_or_are_skipped_never_rejected() {
    let body = json!({"model": "m", "input": [
        {"role": "user", "content": [{"text": "type last", "type": "input_text"}]},
        {"role": "user", "content": "no type, a role"},
        {"type": 7, "content": "numeric type"},
        "a bare string",
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"content": [{"image_url": {"url": "data:image/png;base64,AAAA"}, "type": "input_image", "detail": "low"},
                     {"type": "input_image", "image_url": "https://example.com/a.png"},
                     {"type": "input_image", "file_id": "file_1"}],
         "role": "user", "type": "message"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "part"}, 42]},
        {"type" : "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"call_id": "c2", "output": [{"type": "input_text", "text": "all parts"}], "type": "function_call_output"}
    ]});
    let (chat, _) = convert(body.to_string().as_bytes(), &Quirks::openai());
    let msgs = chat["messages"].as_array().unwrap();
    let text = serde_json::to_string(msgs).unwrap();
    assert!(text.contains("type last"), "{text}");
    assert!(text.contains("no type, a role"), "{text}");
    assert!(
        !text.contains("numeric type") && !text.contains("a bare string"),
        "{text}"
    );
    assert!(
        text.contains("data:image/png;base64,AAAA") && text.contains("\"low\""),
        "{text}"
    );
    assert!(text.contains("https://example.com/a.png"), "{text}");
    let tool_msgs: Vec<&Value> = msgs.iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_msgs.len(), 2, "{text}");
    // The text parts of an output array are kept (a bare number is not a part).
    assert_eq!(tool_msgs[0]["content"], "part");
    assert_eq!(tool_msgs[1]["content"], "all parts");

    // A malformed known item is still a clear 400 naming the item type.
    let bad = json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]});
    let err = parse_request(bad.to_string().as_bytes()).unwrap_err();
    assert!(
        err.message.contains("invalid `function_call` item"),
        "{}",
        err.message
    );
    // So is a malformed tool, when the request is converted (the tools are read then, once
    // per distinct `tools` JSON).
    let bad = json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}).to_string();
    let quirks = Quirks::openai();
    let opts = core_helpers::options(&quirks, 1);
    let err = convert_request(parse_request(bad.as_bytes()).unwrap(), &opts).unwrap_err();
    assert!(
        err.message.contains("invalid `function` tool"),
        "{}",
        err.message
    );
    assert_eq!(err.param.as_deref(), Some("tools"));
    assert_eq!(err.code, Some("invalid_json"));
}
