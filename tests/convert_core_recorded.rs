//! The pure conversion core against requests recorded from real Codex 0.169 sessions by
//! tests/codex_agent.rs (`tests/fixtures/codex-0.169/recorded-*.json`), so that their shape
//! keeps being checked without running Codex:
//!
//! - `recorded-default-tools.json`: Codex's default tool set (namespace `multi_agent_v1`,
//!   goals, `web_search`);
//! - `recorded-view-image-output.json`: a `view_image` round trip, whose
//!   `function_call_output.output` is an array with an `input_image` part;
//! - `recorded-parallel-outputs.json`: turn 3 of a DeepSeek-profile task: two reasoning
//!   items carrying the proxy's token, one call, then two parallel calls, three outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use codex_convert_proxy::convert::request::{
    convert_request, parse_request, Converted, RequestOptions,
};
use codex_convert_proxy::convert::streaming::{Framing, StreamConverter};
use codex_convert_proxy::providers::{self, Quirks};
use serde_json::{json, Value};

fn raw(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/codex-0.169/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn recorded(name: &str) -> Value {
    serde_json::from_slice(&raw(name)).unwrap()
}

fn convert_with(name: &str, quirks: &Quirks) -> (Value, Converted) {
    let req = parse_request(&raw(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let opts = RequestOptions {
        quirks,
        model_override: None,
        id_seed: Some(7),
        chain_resolved: false,
    };
    let c = convert_request(req, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    (serde_json::to_value(&c.chat).unwrap(), c)
}

fn all_profiles() -> Vec<Quirks> {
    providers::PROFILES
        .iter()
        .map(|p| providers::quirks_for(p).unwrap())
        .collect()
}

/// Keys of a Responses request that must never reach a Chat provider.
const RESPONSES_ONLY: &[&str] = &[
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

/// Facts every converted Codex request shares, whatever the profile.
fn assert_chat_basics(chat: &Value, q: &Quirks) {
    let obj = chat.as_object().unwrap();
    for k in RESPONSES_ONLY {
        assert!(!obj.contains_key(*k), "{}: `{k}` went upstream", q.profile);
    }
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system", "{}", q.profile);
    assert_eq!(
        msgs.iter().filter(|m| m["role"] == "system").count(),
        1,
        "{}: one system message (Codex's developer messages merged)",
        q.profile
    );
    assert!(msgs[0]["content"]
        .as_str()
        .unwrap()
        .starts_with("You are a coding agent running in the Codex CLI"));
    assert!(msgs.iter().all(|m| m["role"] != "developer"));
    if q.flatten_content {
        assert!(
            msgs.iter()
                .all(|m| m["content"].is_string() || m["content"].is_null()),
            "{}: content must be strings",
            q.profile
        );
    }
    // Every assistant tool call is answered right after it, every tool message answers one.
    let mut i = 0;
    while i < msgs.len() {
        assert_ne!(
            msgs[i]["role"], "tool",
            "{}: orphan tool message",
            q.profile
        );
        if let Some(calls) = msgs[i]["tool_calls"].as_array() {
            let mut open: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
            let mut j = i + 1;
            while j < msgs.len() && msgs[j]["role"] == "tool" {
                let id = msgs[j]["tool_call_id"].as_str().unwrap();
                let pos = open.iter().position(|o| *o == id).unwrap();
                open.remove(pos);
                j += 1;
            }
            assert!(open.is_empty(), "{}: unanswered calls {open:?}", q.profile);
            i = j;
        } else {
            i += 1;
        }
    }
}

// ------------------------------------------------------------------------------------------
// Codex's default tool set.

#[test]
fn recorded_default_tools_namespaces_flattened_web_search_left_out() {
    let body = recorded("recorded-default-tools.json");
    let tools = body["tools"].as_array().unwrap();
    // What Codex 0.169 sends by default: the facts this test relies on.
    assert!(tools.iter().any(|t| t["type"] == "namespace"));
    assert!(tools.iter().any(|t| t["type"] == "web_search"));
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["parallel_tool_calls"], true);

    for q in all_profiles() {
        let (chat, conv) = convert_with("recorded-default-tools.json", &q);
        assert_chat_basics(&chat, &q);
        let up = chat["tools"].as_array().unwrap();
        let names: Vec<&str> = up
            .iter()
            .map(|t| {
                assert_eq!(t["type"], "function");
                t["function"]["name"].as_str().unwrap()
            })
            .collect();
        for n in &names {
            assert!(
                n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{}: unsafe name {n}",
                q.profile
            );
        }
        assert_eq!(
            names.iter().collect::<BTreeSet<_>>().len(),
            names.len(),
            "{}: duplicate names {names:?}",
            q.profile
        );
        assert!(
            !chat.to_string().contains("\"web_search\""),
            "{}: web_search went upstream",
            q.profile
        );
        assert!(
            conv.skipped.iter().any(|s| s == "web_search"),
            "{}: skipped = {:?}",
            q.profile,
            conv.skipped
        );

        let mut expected = 0;
        for t in tools {
            match t["type"].as_str().unwrap() {
                "function" => {
                    expected += 1;
                    let name = t["name"].as_str().unwrap();
                    let f = up
                        .iter()
                        .find(|u| u["function"]["name"] == name)
                        .unwrap_or_else(|| panic!("{}: {name} missing", q.profile))
                        .clone();
                    assert_eq!(f["function"]["parameters"], t["parameters"]);
                    assert_eq!(f["function"]["description"], t["description"]);
                    if q.strip_strict {
                        assert!(f["function"].get("strict").is_none());
                    }
                }
                "namespace" => {
                    let ns = t["name"].as_str().unwrap();
                    for inner in t["tools"].as_array().unwrap() {
                        expected += 1;
                        let name = inner["name"].as_str().unwrap();
                        let flat = format!("{ns}__{name}");
                        let f = up
                            .iter()
                            .find(|u| u["function"]["name"] == flat.as_str())
                            .unwrap_or_else(|| panic!("{}: {flat} missing", q.profile));
                        assert_eq!(f["function"]["parameters"], inner["parameters"]);
                        let desc = f["function"]["description"].as_str().unwrap();
                        assert!(desc.contains(inner["description"].as_str().unwrap()));
                        // Back from the model: the inner name plus its namespace.
                        let item = stream_call(&conv, &flat, "{}");
                        assert_eq!(item["type"], "function_call");
                        assert_eq!(item["name"], name);
                        assert_eq!(item["namespace"], ns);
                    }
                }
                "web_search" => {}
                other => panic!("Codex sent a new tool type {other}: update this test"),
            }
        }
        assert_eq!(names.len(), expected, "{}", q.profile);
        if q.tool_choice_auto_only {
            assert_eq!(chat["tool_choice"], "auto");
            assert!(chat.get("parallel_tool_calls").is_none());
        } else {
            assert_eq!(chat["tool_choice"], "auto");
            assert_eq!(chat["parallel_tool_calls"], true);
        }
    }
}

/// Streams one call of `chat_name` back through the converter of this request and returns
/// the `output_item.done` item.
fn stream_call(conv: &Converted, chat_name: &str, args: &str) -> Value {
    let mut c = StreamConverter::new(conv.ctx.clone(), Framing::Sse);
    let chunk = json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0,
            "id": "call_1", "type": "function", "function": {"name": chat_name, "arguments": args}}]},
            "finish_reason": "tool_calls"}]});
    c.push_bytes(format!("data: {chunk}\n\ndata: [DONE]\n\n").as_bytes());
    c.finish();
    let resp = c.final_response().unwrap();
    assert_eq!(resp["status"], "completed");
    resp["output"][0].clone()
}

// ------------------------------------------------------------------------------------------
// view_image: an array output with an input_image part.

fn view_image_call(body: &Value) -> (String, String) {
    let input = body["input"].as_array().unwrap();
    let call = input
        .iter()
        .find(|i| i["type"] == "function_call" && i["name"] == "view_image")
        .expect("a view_image call");
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let out = input
        .iter()
        .find(|i| i["type"] == "function_call_output" && i["call_id"] == call_id.as_str())
        .expect("its output");
    let parts = out["output"].as_array().expect("an array output");
    let url = parts
        .iter()
        .find(|p| p["type"] == "input_image")
        .and_then(|p| p["image_url"].as_str())
        .expect("an input_image part")
        .to_owned();
    assert!(url.starts_with("data:image/png;base64,"));
    (call_id, url)
}

#[test]
fn recorded_view_image_output_is_an_image_part_or_a_note() {
    let body = recorded("recorded-view-image-output.json");
    let (call_id, url) = view_image_call(&body);

    for q in all_profiles() {
        let (chat, _) = convert_with("recorded-view-image-output.json", &q);
        assert_chat_basics(&chat, &q);
        let msgs = chat["messages"].as_array().unwrap();
        let pos_call = msgs
            .iter()
            .position(|m| m["tool_calls"].is_array())
            .unwrap();
        let call = &msgs[pos_call]["tool_calls"][0];
        assert_eq!(call["id"], call_id.as_str());
        assert_eq!(call["function"]["name"], "view_image");
        let tool = &msgs[pos_call + 1];
        assert_eq!(tool["role"], "tool");
        assert_eq!(tool["tool_call_id"], call_id.as_str());
        let tool_text = tool["content"].as_str().unwrap();
        // The image's base64 never lands in a text.
        assert!(!tool_text.contains("base64"), "{}: {tool_text}", q.profile);

        // Image parts go to providers that take images and array content.
        if q.images && !q.flatten_content {
            // The image follows the tool message as a user message with an image part.
            let next = &msgs[pos_call + 2];
            assert_eq!(next["role"], "user", "{}", q.profile);
            let parts = next["content"].as_array().unwrap();
            let img = parts.iter().find(|p| p["type"] == "image_url").unwrap();
            assert_eq!(img["image_url"]["url"], url.as_str());
            // Codex's `detail: high` is a valid Chat detail and is kept.
            assert_eq!(img["image_url"]["detail"], "high");
            assert!(parts
                .iter()
                .any(|p| p["type"] == "text"
                    && p["text"].as_str().unwrap().contains(call_id.as_str())));
            assert_eq!(msgs.len(), pos_call + 3, "{}", q.profile);
        } else {
            // No image part anywhere, and the model is told the image was left out.
            assert!(!chat.to_string().contains("image_url"), "{}", q.profile);
            assert!(
                tool_text.contains("image omitted"),
                "{}: the tool message should say the image was left out: {tool_text:?}",
                q.profile
            );
            assert_eq!(msgs.len(), pos_call + 2, "{}", q.profile);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Turn 3 of the DeepSeek-profile task: reasoning passback and parallel outputs.

/// (reasoning text of the proxy's token, call ids) of each assistant turn in the recording.
fn recorded_turns(body: &Value) -> Vec<(String, Vec<String>)> {
    let mut turns: Vec<(String, Vec<String>)> = Vec::new();
    for item in body["input"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "reasoning" => {
                let summary = item["summary"][0]["text"].as_str().unwrap().to_owned();
                assert!(item["encrypted_content"]
                    .as_str()
                    .unwrap()
                    .starts_with("ccp1."));
                turns.push((summary, Vec::new()));
            }
            "function_call" => turns
                .last_mut()
                .expect("a call after a reasoning item")
                .1
                .push(item["call_id"].as_str().unwrap().to_owned()),
            _ => {}
        }
    }
    turns
}

#[test]
fn recorded_parallel_outputs_keep_reasoning_and_pairing() {
    let body = recorded("recorded-parallel-outputs.json");
    let turns = recorded_turns(&body);
    assert_eq!(turns.len(), 2, "{turns:?}");
    assert_eq!(turns[0].1.len(), 1);
    assert_eq!(
        turns[1].1.len(),
        2,
        "the second turn made two parallel calls"
    );
    let input = body["input"].as_array().unwrap();
    let output_of = |id: &str| -> String {
        input
            .iter()
            .find(|i| i["type"] == "function_call_output" && i["call_id"] == id)
            .and_then(|i| i["output"].as_str())
            .unwrap()
            .to_owned()
    };
    let args_of = |id: &str| -> String {
        input
            .iter()
            .find(|i| i["type"] == "function_call" && i["call_id"] == id)
            .and_then(|i| i["arguments"].as_str())
            .unwrap()
            .to_owned()
    };

    for q in all_profiles() {
        let (chat, _) = convert_with("recorded-parallel-outputs.json", &q);
        assert_chat_basics(&chat, &q);
        let msgs = chat["messages"].as_array().unwrap();
        let asst: Vec<usize> = msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m["role"] == "assistant")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            asst.len(),
            2,
            "{}: one assistant message per turn",
            q.profile
        );
        for (k, (reasoning, ids)) in turns.iter().enumerate() {
            let m = &msgs[asst[k]];
            let got: Vec<&str> = m["tool_calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap())
                .collect();
            assert_eq!(got, *ids, "{}", q.profile);
            for (j, id) in ids.iter().enumerate() {
                let call = &m["tool_calls"][j];
                assert_eq!(call["function"]["name"], "exec_command");
                assert_eq!(call["function"]["arguments"], args_of(id).as_str());
                // The outputs follow in order, verbatim.
                let tool = &msgs[asst[k] + 1 + j];
                assert_eq!(tool["role"], "tool");
                assert_eq!(tool["tool_call_id"], id.as_str());
                assert_eq!(tool["content"], output_of(id).as_str());
            }
            match q.passback {
                providers::Passback::ReasoningContent => {
                    assert_eq!(m["reasoning_content"], reasoning.as_str(), "{}", q.profile)
                }
                providers::Passback::ThinkTags => {
                    let content = m["content"].as_str().unwrap();
                    assert!(
                        content.starts_with(&format!("<think>\n{reasoning}\n</think>")),
                        "{}: {content:?}",
                        q.profile
                    );
                    assert!(m.get("reasoning_content").is_none());
                }
                providers::Passback::None => assert!(m.get("reasoning_content").is_none()),
            }
        }
        // DeepSeek and Kimi reject tool turns without the reasoning: it must be there.
        if matches!(q.profile, "deepseek" | "kimi") {
            for i in &asst {
                assert!(msgs[*i]["reasoning_content"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty()));
            }
        }
    }
}
