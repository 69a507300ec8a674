//! Incremental conversion (what a WebSocket chain uses): a conversation converted turn by
//! turn on top of the previous turns' `ChatPrefix` gives, byte for byte, the Chat body that
//! converting the whole conversation at once gives — for every recorded Codex request, every
//! profile, and every place the conversation can be split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codex_convert_proxy::convert::ids::encode_reasoning_token;
use codex_convert_proxy::convert::request::{
    chat_body, convert_request, convert_turn, parse_request, ChatPrefix,
};
use codex_convert_proxy::types::responses::{Input, InputItem};
use serde_json::{json, Value};

#[path = "common/core.rs"]
mod core_helpers;
use core_helpers::{all_profiles, options};

fn fixture(path: &str) -> Value {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    // The 0.171 recordings wrap the body with the request line and headers.
    match v.get("body") {
        Some(b) if v.get("method").is_some() => b.clone(),
        _ => v,
    }
}

/// A history with everything that merges or pairs across items: developer messages first
/// and in the middle, reasoning before text and calls, parallel calls, outputs, an image
/// output, an interrupted call, a compaction item of ours.
fn synthetic() -> Value {
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": "base prompt"}),
        json!({"type": "message", "role": "user", "content": "start"}),
    ];
    for t in 0..6 {
        input.push(
            json!({"type": "reasoning", "id": format!("rs_{t}"), "summary": [],
            "encrypted_content": encode_reasoning_token(&format!("think {t}"))}),
        );
        input.push(json!({"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": format!("step {t}")}]}));
        input.push(json!({"type": "function_call", "call_id": format!("c{t}a"),
            "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}"}));
        input.push(json!({"type": "function_call", "call_id": format!("c{t}b"),
            "name": "exec_command", "arguments": ""}));
        input.push(
            json!({"type": "function_call_output", "call_id": format!("c{t}a"),
            "output": format!("out {t}")}),
        );
        if t % 3 != 2 {
            input.push(
                json!({"type": "function_call_output", "call_id": format!("c{t}b"),
                "output": [{"type": "input_text", "text": "img"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}),
            );
        }
        if t == 3 {
            input.push(json!({"type": "message", "role": "developer", "content": "mid note"}));
        }
        input.push(json!({"type": "message", "role": "user", "content": format!("next {t}")}));
    }
    json!({"model": "m", "stream": true, "instructions": "be brief",
        "tools": [{"type": "function", "name": "exec_command", "description": "run",
            "parameters": {"type": "object"}, "strict": false}],
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "input": input})
}

fn with_input(body: &Value, items: &[Value]) -> Vec<u8> {
    let mut b = body.clone();
    b["input"] = Value::Array(items.to_vec());
    serde_json::to_vec(&b).unwrap()
}

/// A request body holding `v` as its input (for [`items_of`]).
fn items_body(v: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": "m", "input": v})).unwrap()
}

fn items_of(body: &[u8]) -> Vec<InputItem<'_>> {
    let req = parse_request(body).unwrap();
    match req.input {
        Some(Input::Items(i)) => i,
        _ => Vec::new(),
    }
}

fn check(name: &str, body: &Value) {
    let items: Vec<Value> = body["input"].as_array().unwrap().clone();
    let n = items.len();
    for quirks in all_profiles() {
        let profile = quirks.profile;
        let opts = options(&quirks, 1);
        let whole = with_input(body, &items);
        let full = chat_body(
            &convert_request(parse_request(&whole).unwrap(), &opts)
                .unwrap()
                .chat,
            whole.len(),
        )
        .unwrap();
        let full = String::from_utf8(full).unwrap();
        // No prefix: the whole conversation.
        let t = convert_turn(parse_request(&whole).unwrap(), None, 7, &opts).unwrap();
        assert_eq!(String::from_utf8(t.body).unwrap(), full, "{name}/{profile}");
        let step = (n / 12).max(1);
        // `compaction_trigger` counts only as the last item of a request: keep it in the
        // last part.
        let ends_with_trigger = items
            .last()
            .is_some_and(|i| i["type"] == "compaction_trigger");
        let last_split = if ends_with_trigger { n - 1 } else { n };
        for k in (0..=last_split).step_by(step) {
            let first = convert_turn(
                parse_request(&with_input(body, &items[..k])).unwrap(),
                None,
                7,
                &opts,
            )
            .unwrap();
            // The rest on top of the first part.
            let rest = convert_turn(
                parse_request(&with_input(body, &items[k..])).unwrap(),
                Some(&first.next),
                7,
                &opts,
            )
            .unwrap();
            assert_eq!(
                String::from_utf8(rest.body).unwrap(),
                full,
                "{name}/{profile}: split at {k}"
            );
            // Part of the rest absorbed as a response's output, then the remainder.
            let m = (k + (n - k) / 2).min(last_split);
            let absorbed_body = items_body(&items[k..m]);
            let absorbed: ChatPrefix = first
                .next
                .absorb(items_of(&absorbed_body), &quirks, &first.ctx.catalog)
                .unwrap();
            let last = convert_turn(
                parse_request(&with_input(body, &items[m..])).unwrap(),
                Some(&absorbed),
                7,
                &opts,
            )
            .unwrap();
            assert_eq!(
                String::from_utf8(last.body).unwrap(),
                full,
                "{name}/{profile}: split at {k}, absorbed to {m}"
            );
            // A prefix made under another key is not used: `req` must then be whole.
            let other =
                convert_turn(parse_request(&whole).unwrap(), Some(&first.next), 8, &opts).unwrap();
            assert_eq!(String::from_utf8(other.body).unwrap(), full);
        }
    }
}

#[test]
fn turn_by_turn_equals_whole_for_codex_recordings_and_every_profile() {
    for f in [
        "codex-0.169/turn1-text.json",
        "codex-0.169/turn2-after-exec-command.json",
        "codex-0.169/recorded-parallel-outputs.json",
        "codex-0.169/recorded-view-image-output.json",
        "codex-0.169/recorded-default-tools.json",
        "codex-0.171/http-tool/002-POST-responses.json",
        "codex-0.171/http-remote-compaction/002-POST-responses.json",
        "codex-0.171/http-remote-compaction/003-POST-responses-COMPACT.json",
        "codex-0.171/http-remote-compaction/004-POST-responses.json",
    ] {
        check(f, &fixture(f));
    }
}

#[test]
fn turn_by_turn_equals_whole_for_merges_pairs_and_repairs() {
    check("synthetic", &synthetic());
}
