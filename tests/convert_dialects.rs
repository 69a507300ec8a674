//! The dialects clients speak today, through the pure core: Codex's responses lite and code
//! mode (tools in an `additional_tools` item, a freeform `exec` inside a namespace,
//! `configuration_update` items), the rarer item and tool types Codex's protocol knows, the
//! dialect guard's report of what is not converted, and the required `model`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codex_convert_proxy::convert::request::{convert_request, parse_request, RequestOptions};
use codex_convert_proxy::convert::streaming::{Framing, StreamConverter};
use codex_convert_proxy::convert::{Unconverted, UnconvertedKind};
use codex_convert_proxy::providers::{self, Quirks};
use serde_json::{json, Value};

#[path = "common/core.rs"]
mod core_helpers;
use core_helpers::{all_profiles, convert_body, options};

/// A recorded request's body (`{method, path, headers, body}`).
fn recorded_body(name: &str) -> Vec<u8> {
    let v: Value = serde_json::from_slice(&core_helpers::fixture_bytes(&format!(
        "codex-0.171/http-responses-lite-code-mode/{name}"
    )))
    .unwrap();
    serde_json::to_vec(&v["body"]).unwrap()
}

fn tool_names(chat: &Value) -> Vec<String> {
    chat["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn tool<'a>(chat: &'a Value, name: &str) -> &'a Value {
    chat["tools"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["function"]["name"] == name))
        .unwrap_or_else(|| panic!("no tool {name} in {:?}", tool_names(chat)))
}

fn convert_value(body: &Value, quirks: &Quirks) -> (Value, Vec<Unconverted>) {
    let raw = serde_json::to_vec(body).unwrap();
    let (chat, c) = convert_body(&raw, quirks, 1);
    (chat, c.unconverted)
}

fn deepseek() -> Quirks {
    providers::quirks_for("deepseek").unwrap()
}

#[test]
fn responses_lite_tools_come_from_the_additional_tools_item() {
    let body = recorded_body("001-POST-responses.json");
    for quirks in all_profiles() {
        if quirks.drop_tools {
            continue;
        }
        let (chat, c) = convert_body(&body, &quirks, 1);
        let names = tool_names(&chat);
        for want in [
            "functions__exec",
            "functions__wait",
            "functions__request_user_input",
            "clock__sleep",
            "collaboration__spawn_agent",
            "collaboration__wait_agent",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        // Code mode's freeform `exec` is a function with one string parameter, its grammar
        // and its (long) description with the nested tools' declarations kept.
        let exec = &tool(&chat, "functions__exec")["function"];
        assert_eq!(exec["parameters"]["required"], json!(["input"]));
        assert_eq!(exec["parameters"]["properties"]["input"]["type"], "string");
        let grammar = exec["parameters"]["properties"]["input"]["description"]
            .as_str()
            .unwrap();
        assert!(grammar.contains("lark") && grammar.contains("PRAGMA_LINE"));
        assert!(exec["description"]
            .as_str()
            .unwrap()
            .contains("tools.exec_command"));
        // Nothing Codex sent is left unconverted, and the item itself is no message.
        assert_eq!(c.unconverted, vec![], "{quirks:?}");
        let text = serde_json::to_string(&chat["messages"]).unwrap();
        assert!(!text.contains("additional_tools"));
        assert_eq!(chat["tool_choice"], "auto");
    }
}

#[test]
fn code_mode_call_in_history_is_a_tool_call_and_a_tool_message() {
    let body = recorded_body("002-POST-responses.json");
    for quirks in all_profiles() {
        let (chat, c) = convert_body(&body, &quirks, 1);
        assert_eq!(c.unconverted, vec![]);
        let msgs = chat["messages"].as_array().unwrap();
        let (i, call) = msgs
            .iter()
            .enumerate()
            .find(|(_, m)| m["tool_calls"].is_array())
            .expect("an assistant tool call");
        let f = &call["tool_calls"][0]["function"];
        assert_eq!(f["name"], "functions__exec");
        let args: Value = serde_json::from_str(f["arguments"].as_str().unwrap()).unwrap();
        assert!(args["input"]
            .as_str()
            .unwrap()
            .starts_with("const r = await tools.exec_command"));
        let out = &msgs[i + 1];
        assert_eq!(out["role"], "tool");
        assert_eq!(out["tool_call_id"], "call_cm1");
        let text = out["content"].as_str().unwrap();
        assert!(text.contains("Script completed") && text.contains("codemode-ok"));
    }
}

/// The model's call of the flattened `functions__exec` goes back to Codex as the
/// `custom_tool_call` it ran in the recording: name `exec`, namespace `functions`, the raw
/// script as `input`.
#[test]
fn flattened_exec_call_returns_as_a_namespaced_custom_tool_call() {
    let body = recorded_body("001-POST-responses.json");
    let quirks = Quirks::openai();
    let (_, c) = convert_body(&body, &quirks, 1);
    let script = "const r = await tools.exec_command({cmd: \"echo hi\"});\ntext(r.output);";
    let args = json!({ "input": script }).to_string();
    let chunks = [
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_x", "type": "function", "function": {"name": "functions__exec", "arguments": ""}}]}}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": args}}]}}]}),
        json!({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ];
    let mut conv = StreamConverter::new(c.ctx, Framing::Sse);
    conv.start();
    for ch in &chunks {
        conv.push_bytes(format!("data: {ch}\n\n").as_bytes());
    }
    conv.push_bytes(b"data: [DONE]\n\n");
    conv.finish();
    let done = conv.final_response().unwrap();
    let item = &done["output"][0];
    assert_eq!(item["type"], "custom_tool_call", "{item}");
    assert_eq!(item["name"], "exec");
    assert_eq!(item["namespace"], "functions");
    assert_eq!(item["input"], script);
    assert_eq!(item["call_id"], "call_x");
}

#[test]
fn configuration_update_sets_the_effort_from_its_place_on() {
    let update =
        |effort: &str| json!({"type": "configuration_update", "reasoning": {"effort": effort}});
    let user = |t: &str| json!({"type": "message", "role": "user", "content": t});
    for (profile, before, after) in [
        (
            "openai",
            json!({"reasoning_effort": "high"}),
            json!({"reasoning_effort": "low"}),
        ),
        (
            "deepseek",
            json!({"reasoning_effort": "high"}),
            json!({"thinking": {"type": "disabled"}}),
        ),
        (
            "glm",
            json!({"thinking": {"type": "enabled"}}),
            json!({"thinking": {"type": "disabled"}}),
        ),
    ] {
        let quirks = providers::quirks_for(profile).unwrap();
        let later = if profile == "openai" { "low" } else { "none" };
        let first = json!({"model": "m", "reasoning": {"effort": "high"}, "input": [user("a")]});
        let (chat, _) = convert_value(&first, &quirks);
        for (k, v) in before.as_object().unwrap() {
            assert_eq!(&chat[k], v, "{profile} before");
        }
        let second = json!({"model": "m", "reasoning": {"effort": "high"}, "input": [
            user("a"), {"type": "message", "role": "assistant", "content": "ok"},
            update(later), user("b")]});
        let (chat, unconverted) = convert_value(&second, &quirks);
        assert_eq!(unconverted, vec![]);
        for (k, v) in after.as_object().unwrap() {
            assert_eq!(&chat[k], v, "{profile} after");
        }
        // The update is no message.
        assert_eq!(chat["messages"].as_array().unwrap().len(), 3, "{profile}");
    }
    // What it cannot map is left out; the effort still applies.
    let body = json!({"model": "m", "input": [
        {"type": "configuration_update", "reasoning": {"effort": "low", "summary": "auto"}, "verbosity": "low"},
        user("x")]});
    let (chat, unconverted) = convert_value(&body, &Quirks::openai());
    assert_eq!(chat["reasoning_effort"], "low");
    assert_eq!(unconverted, vec![]);
}

#[test]
fn codex_top_level_members_are_never_forwarded_raw() {
    let body = recorded_body("001-POST-responses.json");
    for quirks in all_profiles() {
        let (chat, _) = convert_body(&body, &quirks, 1);
        for k in [
            "reasoning",
            "text",
            "client_metadata",
            "verbosity",
            "include",
            "store",
        ] {
            assert!(chat.get(k).is_none(), "{k} forwarded");
        }
    }
}

#[test]
fn tools_from_every_source_are_offered_once() {
    let f = |name: &str| json!({"type": "function", "name": name, "description": "d", "parameters": {"type": "object"}, "strict": false});
    let body = json!({"model": "m", "tools": [f("shell"), {"type": "namespace", "name": "ns", "tools": [f("a")]}],
        "input": [
            {"type": "additional_tools", "role": "developer", "tools": [f("shell"), {"type": "namespace", "name": "ns", "tools": [f("a"), f("b")]}]},
            {"type": "message", "role": "user", "content": "go"}]});
    let (chat, _) = convert_value(&body, &Quirks::openai());
    assert_eq!(tool_names(&chat), vec!["shell", "ns__a", "ns__b"]);
    // A later `additional_tools` item replaces the set from its place on.
    let body = json!({"model": "m", "input": [
        {"type": "additional_tools", "tools": [f("old")]},
        {"type": "message", "role": "user", "content": "go"},
        {"type": "additional_tools", "tools": [f("new")]},
        {"type": "message", "role": "user", "content": "again"}]});
    let (chat, _) = convert_value(&body, &Quirks::openai());
    assert_eq!(tool_names(&chat), vec!["new"]);
}

#[test]
fn client_tool_search_is_offered_and_loads_deferred_tools() {
    let deferred = json!({"type": "function", "name": "calendar_create", "description": "make an event",
        "parameters": {"type": "object"}, "strict": false, "defer_loading": true});
    let tools = json!([{"type": "tool_search", "execution": "client", "description": "find tools"}, deferred]);
    let first = json!({"model": "m", "tools": tools, "input": "add an event"});
    let (chat, unconverted) = convert_value(&first, &Quirks::openai());
    assert_eq!(
        tool_names(&chat),
        vec!["tool_search"],
        "deferred until found"
    );
    assert_eq!(unconverted, vec![]);
    // The model's call returns as a client `tool_search_call`.
    let raw = serde_json::to_vec(&first).unwrap();
    let req = parse_request(&raw).unwrap();
    let c = convert_request(req, &options(&Quirks::openai(), 1)).unwrap();
    let mut conv = StreamConverter::new(c.ctx, Framing::Sse);
    conv.start();
    let chunk = json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
        {"index": 0, "id": "call_s", "type": "function", "function": {"name": "tool_search", "arguments": "{\"query\":\"calendar\"}"}}]},
        "finish_reason": "tool_calls"}]});
    conv.push_bytes(format!("data: {chunk}\n\ndata: [DONE]\n\n").as_bytes());
    conv.finish();
    let item = conv.final_response().unwrap()["output"][0].clone();
    assert_eq!(item["type"], "tool_search_call", "{item}");
    assert_eq!(item["execution"], "client");
    assert_eq!(item["call_id"], "call_s");
    assert_eq!(item["arguments"], json!({"query": "calendar"}));
    // Its output loads the tool: offered from then on, the pair kept as call and answer.
    let second = json!({"model": "m", "tools": tools, "input": [
        {"type": "message", "role": "user", "content": "add an event"},
        item,
        {"type": "tool_search_output", "call_id": "call_s", "execution": "client", "status": "completed",
         "tools": [{"type": "function", "name": "calendar_create", "description": "make an event",
                    "parameters": {"type": "object"}, "strict": false, "defer_loading": true}]}]});
    let (chat, unconverted) = convert_value(&second, &Quirks::openai());
    assert_eq!(unconverted, vec![]);
    assert_eq!(tool_names(&chat), vec!["tool_search", "calendar_create"]);
    let msgs = chat["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["tool_calls"][0]["function"]["name"], "tool_search");
    assert_eq!(msgs[2]["role"], "tool");
    assert!(msgs[2]["content"]
        .as_str()
        .unwrap()
        .contains("calendar_create"));
    // Without a client search, deferred tools are offered at once.
    let body = json!({"model": "m", "tools": [deferred], "input": "x"});
    let (chat, _) = convert_value(&body, &Quirks::openai());
    assert_eq!(tool_names(&chat), vec!["calendar_create"]);
}

#[test]
fn rarer_history_items_keep_their_meaning() {
    let body = json!({"model": "m", "input": [
        {"type": "message", "role": "user", "content": "look it up"},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "rust 2027 edition"}},
        {"type": "image_generation_call", "id": "ig_1", "status": "completed", "result": "iVBORw0KGgo=", "revised_prompt": "a crab"},
        {"type": "local_shell_call", "id": "ls_1", "call_id": "call_ls", "status": "completed",
         "action": {"type": "exec", "command": ["ls", "-la"]}},
        {"type": "local_shell_call_output", "call_id": "call_ls", "output": "total 0"},
        {"type": "agent_message", "id": "am_1", "content": [{"type": "output_text", "text": "sub-agent says hi"}]},
        {"type": "message", "role": "user", "content": "thanks"}]});
    for quirks in all_profiles() {
        let (chat, unconverted) = convert_value(&body, &quirks);
        assert_eq!(unconverted, vec![], "{quirks:?}");
        let text = serde_json::to_string(&chat["messages"]).unwrap();
        for want in [
            "rust 2027 edition",
            "a crab",
            "total 0",
            "sub-agent says hi",
            "local_shell",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(!text.contains("iVBORw0KGgo"), "no image bytes as text");
        let msgs = chat["messages"].as_array().unwrap();
        let call = msgs
            .iter()
            .position(|m| m["tool_calls"].is_array())
            .unwrap();
        assert_eq!(msgs[call + 1]["role"], "tool");
        assert_eq!(msgs[call + 1]["tool_call_id"], "call_ls");
    }
    // A compaction under its older name expands like `compaction`.
    let token = codex_convert_proxy::convert::ids::encode_compaction_token("we built the parser");
    let body = json!({"model": "m", "input": [
        {"type": "context_compaction", "encrypted_content": token},
        {"type": "message", "role": "user", "content": "go on"}]});
    let (chat, _) = convert_value(&body, &Quirks::openai());
    assert!(serde_json::to_string(&chat["messages"])
        .unwrap()
        .contains("we built the parser"));
}

#[test]
fn the_guard_reports_what_is_not_converted() {
    let body = json!({"model": "m", "invented_member": {"x": 1}, "client_metadata": {"a": "b"},
        "tools": [{"type": "invented_tool"}, {"type": "function", "name": "f", "parameters": {}}],
        "input": [
            {"type": "invented_item", "x": 1},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "see"}, {"type": "invented_part", "data": "?"}]}]});
    let (chat, unconverted) = convert_value(&body, &Quirks::openai());
    let mut got: Vec<(UnconvertedKind, String)> =
        unconverted.into_iter().map(|u| (u.kind, u.ty)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (UnconvertedKind::Item, "invented_item".to_owned()),
            (UnconvertedKind::Part, "invented_part".to_owned()),
            (UnconvertedKind::Tool, "invented_tool".to_owned()),
            (UnconvertedKind::Member, "invented_member".to_owned()),
        ]
    );
    // The rest still converts.
    assert_eq!(tool_names(&chat), vec!["f"]);
}

#[test]
fn model_is_required_even_when_the_backend_sets_one() {
    let raw = br#"{"input": "hi"}"#;
    let quirks = Quirks::openai();
    let opts = RequestOptions {
        model_override: Some("backend-model"),
        ..options(&quirks, 1)
    };
    let err = convert_request(parse_request(raw).unwrap(), &opts).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("model"));
    assert_eq!(err.code, Some("missing_required_parameter"));
    // With one, the backend's goes upstream and the client's is reported.
    let raw = br#"{"model": "client-model", "input": "hi"}"#;
    let c = convert_request(parse_request(raw).unwrap(), &opts).unwrap();
    assert_eq!(c.chat.model, "backend-model");
    assert_eq!(c.ctx.model, "client-model");
}

#[test]
fn an_unresolved_item_reference_is_a_400_naming_it() {
    let raw = br#"{"model": "m", "input": [{"type": "item_reference", "id": "msg_gone"}]}"#;
    let err = convert_request(parse_request(raw).unwrap(), &options(&deepseek(), 1)).unwrap_err();
    assert!(err.message.contains("msg_gone"), "{}", err.message);
    assert_eq!(err.param.as_deref(), Some("input[0]"));
}
