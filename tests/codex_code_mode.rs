//! Codex's Responses-lite dialect and code mode, end to end, and the dialect guard.
//!
//! When a user keeps Codex's built-in provider and sets only `openai_base_url` (no model),
//! Codex uses its default model, whose bundled catalog entry says `use_responses_lite: true`:
//! no top-level `tools`, the tools in a first `additional_tools` input item (namespaces
//! `functions`, `clock`, `collaboration`), and code mode: the custom tool `functions.exec`
//! takes JavaScript that Codex runs, calling `await tools.exec_command({cmd})`.
//!
//! - `code_mode_task_over_websocket_with_the_builtin_provider_and_no_model`: the real Codex
//!   0.171 (offline), built-in provider, no model, over WebSocket (its default), through a
//!   recording WebSocket tap, against a strict scripted provider that calls a tool only when
//!   the request offers it: the exec script writes a file and reads it back; the final answer
//!   quotes it. Every provider request carries the tools, also the follow-up for which Codex
//!   sent only the tool output.
//! - `v0169_*`, `v0171_*`: the same task with Codex 0.169 and 0.171 through a
//!   custom provider (HTTP), a custom provider with `supports_websockets = true`, the built-in
//!   provider with a model (classic dialect: top-level tools, `exec_command`) and the
//!   built-in provider with no model (code mode). Two set-ups are covered elsewhere and not
//!   repeated: 0.169 through a custom provider over HTTP (tests/codex_e2e.rs,
//!   codex_agent.rs, providers_codex.rs) and 0.171 through a custom provider with
//!   `supports_websockets` (tests/codex_ws.rs).
//! - `recorded_code_mode_requests_are_converted`: no Codex binary: the recorded 001/002
//!   requests of `tests/fixtures/codex-0.171/http-responses-lite-code-mode/` through the
//!   proxy to the strict mock.
//! - The guard itself (`common::assert_no_unconverted`): its parser, and that the proxy does
//!   count an input it cannot convert (so the guard in the Codex suites can fail).
//! - `the_scripted_provider_calls_only_an_offered_tool`: the mock's own rules.
//!
//! Seen on the wire (0.171, built-in provider, no model, WebSocket): the lite flag is not an
//! upgrade header but `client_metadata.ws_request_header_x_openai_internal_codex_responses_lite`
//! in every create; the warm-up (`generate: false`) has an empty `input`; turn 1 chains on it
//! with `additional_tools` + six messages; the follow-up is only the
//! `custom_tool_call_output`. 0.169's default model is `gpt-6.1-sol`, also lite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::codex::{run_codex, CodexOptions, CodexProvider, CodexRun, WsTap, CODEX_CLIENT_KEY};
use common::mock_upstream::{message_text, MockReply, MockUpstream, RecordedRequest, Strictness};
use common::*;
use serde_json::{json, Value};

/// What the file holds after the task.
const MARK: &str = "codemode-ok";
/// The shell command of the task: write the file, read it back.
const CMD: &str = "printf '%s' codemode-ok > cm.txt && cat cm.txt";
/// The code-mode script (the JS API of `exec`'s description: `tools.exec_command({cmd})`
/// resolves to `{output, exit_code?, ...}`; `text()` appends to the tool's output).
const SCRIPT: &str = "const r = await tools.exec_command({cmd: \"printf '%s' codemode-ok > cm.txt && cat cm.txt\"});\ntext(r.output);";
const PROMPT: &str = "Write codemode-ok into cm.txt, read it back and tell me what it says.";
const CALL_ID: &str = "call_cm_1";

// ------------------------------------------------------------------------------------------
// The strict scripted provider.

/// The tool the provider may call, found in the request's `tools`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Offered {
    /// Code mode: a function named `functions__exec` (or ending in `exec`) whose only way
    /// in is a string `input`.
    Exec(String),
    /// The classic dialect: `exec_command` with a string `cmd`.
    ExecCommand,
}

fn request_tools(req: &RecordedRequest) -> Vec<Value> {
    req.json()["tools"].as_array().cloned().unwrap_or_default()
}

fn tool_names(req: &RecordedRequest) -> Vec<String> {
    request_tools(req)
        .iter()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn offered(req: &RecordedRequest) -> Option<Offered> {
    let tools = request_tools(req);
    let string_prop =
        |t: &Value, p: &str| t["function"]["parameters"]["properties"][p]["type"] == "string";
    let exec = tools.iter().find(|t| {
        let name = t["function"]["name"].as_str().unwrap_or("");
        (name == "functions__exec" || name.ends_with("exec")) && string_prop(t, "input")
    });
    if let Some(t) = exec {
        return Some(Offered::Exec(
            t["function"]["name"].as_str().unwrap().to_owned(),
        ));
    }
    tools
        .iter()
        .any(|t| t["function"]["name"] == "exec_command" && string_prop(t, "cmd"))
        .then_some(Offered::ExecCommand)
}

fn tool_messages(req: &RecordedRequest) -> Vec<Value> {
    req.messages()
        .into_iter()
        .filter(|m| m["role"] == "tool")
        .collect()
}

/// What a tool output says after Codex's "Output:" header.
fn after_output_header(text: &str) -> String {
    match text.split_once("Output:\n") {
        Some((_, out)) => out.trim().to_owned(),
        None => text.trim().to_owned(),
    }
}

/// The provider's "model": with a tool result in the request, a final answer quoting it
/// (but a tool result in a request without tools is an error, as strict providers have it);
/// otherwise a call of the tool the request offers, or prose when it offers none.
fn brain(req: &RecordedRequest) -> MockReply {
    let outputs = tool_messages(req);
    if let Some(last) = outputs.last() {
        if offered(req).is_none() {
            return MockReply::error(
                400,
                "messages carry tool calls and tool results, but the request has no tools",
                "invalid_request_error",
                None,
            );
        }
        let said = after_output_header(&message_text(last));
        return MockReply::text(&format!("cm.txt says: {said}"));
    }
    match offered(req) {
        Some(Offered::Exec(name)) => {
            MockReply::tool_call(CALL_ID, &name, &json!({ "input": SCRIPT }).to_string())
        }
        Some(Offered::ExecCommand) => {
            MockReply::tool_call(CALL_ID, "exec_command", &json!({ "cmd": CMD }).to_string())
        }
        None => MockReply::text(&format!(
            "I was offered no tool to run a command with (tools: {:?}).",
            tool_names(req)
        )),
    }
}

async fn strict_mock() -> MockUpstream {
    MockUpstream::scripted(brain).await
}

fn access_lines(proxy: &ProxyProcess) -> Vec<String> {
    proxy
        .logs()
        .lines()
        .filter(|l| l.contains("access") && l.contains("request"))
        .map(str::to_owned)
        .collect()
}

fn context_of(run: &CodexRun, proxy: &ProxyProcess, mock: &MockUpstream) -> String {
    format!(
        "{}\n--- provider requests (tools, rejection) ---\n{:#?}\n--- proxy stderr ---\n{}",
        run.describe(),
        mock.requests()
            .iter()
            .map(|r| (tool_names(r), r.rejection.clone()))
            .collect::<Vec<_>>(),
        proxy.stderr()
    )
}

/// The file, the final answer, the provider requests: what every set-up must show.
fn assert_task_done(
    run: &CodexRun,
    workdir: &std::path::Path,
    mock: &MockUpstream,
    context: &str,
) -> Vec<RecordedRequest> {
    run.assert_success(context);
    let file = workdir.join("cm.txt");
    let content = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{} was not written ({e})\n{context}", file.display()));
    assert_eq!(content, MARK, "{context}");
    // Codex ran the command (in code mode, the script's nested exec_command shows as one
    // command_execution too) and printed the answer quoting it. Codex runs commands in a
    // login shell: the machine's profile may print lines of its own first (pyenv's rehash,
    // racing another test's), so the command's output is the last line.
    let commands = run.completed_items("command_execution");
    assert!(
        commands.iter().any(|c| c["exit_code"] == 0
            && c["command"].as_str().is_some_and(|c| c.contains("cm.txt"))
            && c["aggregated_output"]
                .as_str()
                .is_some_and(|o| o.lines().last() == Some(MARK))),
        "no successful command_execution of the task: {commands:#?}\n{context}"
    );
    let answer = run.agent_messages().join("\n");
    let answer = answer.trim();
    assert!(
        answer.starts_with("cm.txt says: ") && answer.ends_with(MARK),
        "{answer}\n{context}"
    );
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "a call, then the answer\n{context}");
    for r in &reqs {
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains(CODEX_CLIENT_KEY)),
            "Codex's key reached the provider"
        );
    }
    reqs
}

/// The follow-up request: the assistant's call with these arguments, right before the tool
/// message answering it, whose text holds what the command printed.
fn assert_call_and_output(req: &RecordedRequest, name: &str, args: &Value, context: &str) {
    let messages = req.messages();
    let pos = messages
        .iter()
        .position(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
        .unwrap_or_else(|| panic!("no assistant tool call in the follow-up: {messages:#?}"));
    let calls = messages[pos]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{messages:#?}");
    assert_eq!(calls[0]["id"], CALL_ID);
    assert_eq!(calls[0]["function"]["name"], name, "{context}");
    let sent: Value = serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap())
        .expect("arguments are JSON");
    assert_eq!(&sent, args, "{context}");
    let tool = &messages[pos + 1];
    assert_eq!(tool["role"], "tool", "{messages:#?}");
    assert_eq!(tool["tool_call_id"], CALL_ID);
    assert!(
        message_text(tool).contains(MARK),
        "the tool message lost the output: {tool:#}"
    );
}

// ------------------------------------------------------------------------------------------
// 1. Code mode end to end: built-in provider, no model, WebSocket.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_mode_task_over_websocket_with_the_builtin_provider_and_no_model() {
    let _serial = SERIAL.lock().await;
    let mock = strict_mock().await;
    let proxy = ProxyProcess::start(&mock).await;
    let tap = WsTap::start(&format!("ws://127.0.0.1:{}", proxy.port)).await;
    let workdir = tempfile::tempdir().unwrap();
    let opts = CodexOptions {
        v0171: true,
        provider: CodexProvider::BuiltIn,
        no_model: true,
        ..CodexOptions::default()
    };
    let run = run_codex(&tap.url("/v1"), workdir.path(), PROMPT, &opts).await;
    let context = context_of(&run, &proxy, &mock);
    for needle in ["Reconnecting", "Falling back", "falling back"] {
        assert!(
            !run.stdout.contains(needle) && !run.stderr.contains(needle),
            "Codex printed {needle:?}\n{context}"
        );
    }

    // Codex spoke the lite dialect: no top-level tools, the tools as an `additional_tools`
    // item of the first real turn.
    let upgrades = tap.upgrades();
    assert!(!upgrades.is_empty(), "{context}");
    for (path, _) in &upgrades {
        assert_eq!(path, "/v1/responses");
    }
    let creates: Vec<Value> = tap
        .client_frames()
        .into_iter()
        .map(|f| f.body)
        .filter(|b| b["type"] == "response.create")
        .collect();
    let items = |c: &Value| -> Vec<Value> { c["input"].as_array().cloned().unwrap_or_default() };
    // For the record: each create's top-level members and input item types.
    for c in &creates {
        let members: Vec<&String> = c.as_object().unwrap().keys().collect();
        let kinds: Vec<String> = items(c)
            .iter()
            .map(|i| i["type"].as_str().unwrap_or("?").to_owned())
            .collect();
        eprintln!("code mode over WebSocket: Codex sent members {members:?}, items {kinds:?}");
    }
    // Over a socket the lite flag is no upgrade header: each create carries it in its
    // client_metadata (`ws_request_header_x_openai_internal_codex_responses_lite`).
    for c in &creates {
        assert_eq!(
            c["client_metadata"]["ws_request_header_x_openai_internal_codex_responses_lite"],
            "true",
            "{:#}",
            c["client_metadata"]
        );
    }
    assert!(
        creates.iter().all(|c| c.get("tools").is_none()),
        "{creates:#?}"
    );
    let generating: Vec<&Value> = creates.iter().filter(|c| c["generate"] != false).collect();
    assert_eq!(generating.len(), 2, "turn 1 and the follow-up\n{context}");
    let first_items = items(generating[0]);
    let at = first_items
        .iter()
        .find(|i| i["type"] == "additional_tools")
        .unwrap_or_else(|| panic!("no additional_tools item in turn 1: {first_items:#?}"));
    let exec = &at["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "namespace" && t["name"] == "functions")
        .unwrap()["tools"];
    assert!(
        exec.as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "custom" && t["name"] == "exec"),
        "{exec:#}"
    );
    // The follow-up carried only what is new (the tool output), chained on turn 1.
    let follow = items(generating[1]);
    assert!(
        generating[1]["previous_response_id"].is_string(),
        "{:#}",
        generating[1]
    );
    assert!(
        !follow.iter().any(|i| i["type"] == "additional_tools"),
        "Codex repeated the tools on the follow-up: {follow:#?}"
    );
    let out = follow
        .iter()
        .find(|i| i["type"] == "custom_tool_call_output")
        .unwrap_or_else(|| panic!("no custom_tool_call_output in the follow-up: {follow:#?}"));
    assert_eq!(out["call_id"], CALL_ID);
    // What the proxy sent back to Codex: the call as a custom_tool_call of `exec` in
    // namespace `functions`, the script as its raw input.
    let done_items: Vec<Value> = tap
        .frames()
        .into_iter()
        .filter(|f| !f.from_client && f.body["type"] == "response.output_item.done")
        .map(|f| f.body["item"].clone())
        .collect();
    let ctc = done_items
        .iter()
        .find(|i| i["call_id"] == CALL_ID)
        .unwrap_or_else(|| panic!("no output item for the call: {done_items:#?}"));
    assert_eq!(ctc["type"], "custom_tool_call", "{ctc:#}");
    assert_eq!(ctc["name"], "exec", "{ctc:#}");
    assert_eq!(ctc["namespace"], "functions", "{ctc:#}");
    assert_eq!(ctc["input"], SCRIPT);

    // The task.
    let reqs = assert_task_done(&run, workdir.path(), &mock, &context);
    // The provider got the tools on every request of the chain, flattened, `exec` as a
    // function with one string `input`.
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(
            offered(r),
            Some(Offered::Exec("functions__exec".to_owned())),
            "request #{n} lacks functions__exec: {:?}\n{context}",
            tool_names(r)
        );
        let names: BTreeSet<String> = tool_names(r).into_iter().collect();
        for want in ["functions__wait", "clock__sleep"] {
            assert!(
                names.contains(want),
                "request #{n}: {want} missing from {names:?}"
            );
        }
    }
    assert_eq!(
        tool_names(&reqs[0]),
        tool_names(&reqs[1]),
        "the follow-up got another tool set"
    );
    eprintln!(
        "code mode: the provider was offered {:?}",
        tool_names(&reqs[0])
    );
    assert_call_and_output(
        &reqs[1],
        "functions__exec",
        &json!({ "input": SCRIPT }),
        &context,
    );
    // Every turn over the WebSocket, and nothing Codex sent left unconverted.
    let lines = access_lines(&proxy);
    assert!(lines.iter().any(|l| l.contains("method=WS")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("POST")), "{lines:#?}");
    assert_no_unconverted(&proxy.base_url()).await;
}

// ------------------------------------------------------------------------------------------
// 2. The same task in every set-up, both Codex versions.

#[derive(Debug, Clone, Copy)]
struct SetUp {
    v0171: bool,
    provider: CodexProvider,
    no_model: bool,
}

impl SetUp {
    fn name(&self) -> String {
        format!(
            "codex {} {:?}{}",
            if self.v0171 { "0.171" } else { "0.169" },
            self.provider,
            if self.no_model { " (no model)" } else { "" }
        )
    }
}

async fn run_task(setup: SetUp) {
    let _serial = SERIAL.lock().await;
    let mock = strict_mock().await;
    let proxy = ProxyProcess::start(&mock).await;
    let workdir = tempfile::tempdir().unwrap();
    let opts = CodexOptions {
        v0171: setup.v0171,
        provider: setup.provider,
        no_model: setup.no_model,
        ..CodexOptions::default()
    };
    let run = run_codex(&proxy.url("/v1"), workdir.path(), PROMPT, &opts).await;
    let context = format!("{}\n{}", setup.name(), context_of(&run, &proxy, &mock));
    let reqs = assert_task_done(&run, workdir.path(), &mock, &context);
    // The dialect: code mode for Codex's own default model, the classic tools otherwise;
    // the tools on both requests either way.
    let (want, name, args) = if setup.no_model {
        (
            Offered::Exec("functions__exec".to_owned()),
            "functions__exec",
            json!({ "input": SCRIPT }),
        )
    } else {
        (Offered::ExecCommand, "exec_command", json!({ "cmd": CMD }))
    };
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(
            offered(r).as_ref(),
            Some(&want),
            "request #{n}: {:?}\n{context}",
            tool_names(r)
        );
    }
    assert_call_and_output(&reqs[1], name, &args, &context);
    // The transport: a custom provider without `supports_websockets` posts; the others
    // stay on their socket.
    let lines = access_lines(&proxy);
    let (ws, post) = (
        lines.iter().any(|l| l.contains("method=WS")),
        lines.iter().any(|l| l.contains("POST")),
    );
    match setup.provider {
        CodexProvider::Custom => assert!(post && !ws, "{lines:#?}\n{context}"),
        _ => assert!(ws && !post, "{lines:#?}\n{context}"),
    }
    assert_no_unconverted(&proxy.base_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0169_custom_provider_websocket() {
    run_task(SetUp {
        v0171: false,
        provider: CodexProvider::CustomWebSocket,
        no_model: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0169_builtin_provider_with_a_model() {
    run_task(SetUp {
        v0171: false,
        provider: CodexProvider::BuiltIn,
        no_model: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0169_builtin_provider_without_a_model() {
    run_task(SetUp {
        v0171: false,
        provider: CodexProvider::BuiltIn,
        no_model: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0171_custom_provider_http() {
    run_task(SetUp {
        v0171: true,
        provider: CodexProvider::Custom,
        no_model: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0171_builtin_provider_with_a_model() {
    run_task(SetUp {
        v0171: true,
        provider: CodexProvider::BuiltIn,
        no_model: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v0171_builtin_provider_without_a_model() {
    run_task(SetUp {
        v0171: true,
        provider: CodexProvider::BuiltIn,
        no_model: true,
    })
    .await;
}

/// One Codex run of the set-up matrix at a time (2 cores).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ------------------------------------------------------------------------------------------
// 3. The recorded code-mode requests, replayed (no Codex binary).

/// A recorded request of `tests/fixtures/codex-0.171/http-responses-lite-code-mode/`:
/// `{method, path, headers: [[name, value]...], body}`.
fn recorded(name: &str) -> Value {
    let path = repo_root()
        .join("tests/fixtures/codex-0.171/http-responses-lite-code-mode")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Sends a recorded request to the proxy as Codex did (its Codex headers, with the
/// client key in place of none) and returns the provider request it became.
async fn replay(name: &str) -> (RecordedRequest, Value) {
    let rec = recorded(name);
    let mock = MockUpstream::start().await;
    mock.set_strictness(Strictness {
        tool_pairing: true,
        reasoning_passback: false,
    });
    let proxy = ProxyProcess::start(&mock).await;
    let mut req = client()
        .post(proxy.url(rec["path"].as_str().unwrap()))
        .header("authorization", format!("Bearer {CODEX_CLIENT_KEY}"))
        .body(rec["body"].to_string());
    for h in rec["headers"].as_array().unwrap() {
        let (k, v) = (h[0].as_str().unwrap(), h[1].as_str().unwrap());
        if !matches!(k, "host" | "content-length" | "accept-encoding") {
            req = req.header(k, v);
        }
    }
    let resp = read_full(req.send().await.expect("POST the recorded request")).await;
    assert_eq!(
        resp.status,
        200,
        "{name}: {}\n{}",
        resp.body,
        proxy.stderr()
    );
    resp.assert_body_complete();
    assert!(
        resp.body.contains("response.completed"),
        "{name}: {}",
        resp.body
    );
    assert_no_unconverted(&proxy.base_url()).await;
    (mock.single_request(), rec["body"].clone())
}

/// `{namespace}__{name}` of every tool in the `additional_tools` items, with the tool.
fn flattened_additional_tools(body: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for item in body["input"].as_array().unwrap() {
        if item["type"] != "additional_tools" {
            continue;
        }
        for t in item["tools"].as_array().unwrap() {
            match t["type"].as_str().unwrap() {
                "namespace" => {
                    let ns = t["name"].as_str().unwrap();
                    for inner in t["tools"].as_array().unwrap() {
                        let name = format!("{ns}__{}", inner["name"].as_str().unwrap());
                        out.push((name, inner.clone()));
                    }
                }
                _ => out.push((t["name"].as_str().unwrap().to_owned(), t.clone())),
            }
        }
    }
    out
}

/// The provider request's tools: every recorded tool flattened, exec a one-string-input
/// function carrying its description (the nested tools' TypeScript declarations), each
/// function with its own parameters.
fn assert_flattened_tools(up: &RecordedRequest, body: &Value) {
    let want = flattened_additional_tools(body);
    let got = tool_names(up);
    let want_names: BTreeSet<String> = want.iter().map(|(n, _)| n.clone()).collect();
    let got_names: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got_names, want_names, "{got:?}");
    assert_eq!(got.len(), want.len(), "duplicates: {got:?}");
    for n in [
        "functions__exec",
        "functions__wait",
        "functions__request_user_input",
        "clock__sleep",
        "collaboration__spawn_agent",
    ] {
        assert!(got_names.contains(n), "{n} missing: {got:?}");
    }
    let tools = request_tools(up);
    let find = |n: &str| {
        tools
            .iter()
            .find(|t| t["function"]["name"] == n)
            .unwrap()
            .clone()
    };
    let exec = find("functions__exec");
    assert_eq!(exec["type"], "function");
    let params = &exec["function"]["parameters"];
    assert_eq!(params["type"], "object", "{params:#}");
    assert_eq!(
        params["properties"].as_object().unwrap().len(),
        1,
        "{params:#}"
    );
    assert_eq!(
        params["properties"]["input"]["type"], "string",
        "{params:#}"
    );
    assert_eq!(params["required"], json!(["input"]), "{params:#}");
    let desc = exec["function"]["description"].as_str().unwrap_or("");
    for needle in ["Run JavaScript code", "exec_command(args: {", "text(value"] {
        assert!(
            desc.contains(needle),
            "exec's description lost {needle:?} ({} bytes)",
            desc.len()
        );
    }
    for (name, orig) in &want {
        if orig["type"] != "function" {
            continue;
        }
        let t = find(name);
        let keys = |v: &Value| -> BTreeSet<String> {
            v["properties"]
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(
            keys(&t["function"]["parameters"]),
            keys(&orig["parameters"]),
            "{name}: {t:#}"
        );
    }
    // The tools went as tools, not as text.
    for m in up.messages() {
        let text = message_text(&m);
        assert!(
            !text.contains("\"additional_tools\"") && !text.contains("\"type\":\"namespace\""),
            "a message carries the tool JSON: {}",
            &text[..text.len().min(300)]
        );
    }
}

#[tokio::test]
async fn recorded_code_mode_requests_are_converted() {
    // Turn 1: the tools of the additional_tools item, flattened; the prompts.
    let (up, body) = replay("001-POST-responses.json").await;
    assert!(
        body.get("tools").is_none(),
        "the recording has top-level tools"
    );
    assert_flattened_tools(&up, &body);
    let messages = up.messages();
    assert_eq!(messages[0]["role"], "system", "{messages:#?}");
    assert!(message_text(&messages[0]).contains("You are Codex"));
    assert_eq!(messages.last().unwrap()["role"], "user");
    assert!(message_text(messages.last().unwrap()).contains("make the file"));
    assert!(
        !messages
            .iter()
            .any(|m| m["tool_calls"].is_array() || m["role"] == "tool"),
        "{messages:#?}"
    );

    // The follow-up: the same tools, then the call of exec as `functions__exec` with
    // `{"input": script}` and the tool message with the script's output.
    let (up, body) = replay("002-POST-responses.json").await;
    assert_flattened_tools(&up, &body);
    let input = body["input"].as_array().unwrap();
    let ctc = input
        .iter()
        .find(|i| i["type"] == "custom_tool_call")
        .unwrap();
    let messages = up.messages();
    let pos = messages
        .iter()
        .position(|m| m["tool_calls"].is_array())
        .unwrap_or_else(|| panic!("no assistant tool call: {messages:#?}"));
    assert_eq!(messages[pos]["role"], "assistant");
    let calls = messages[pos]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["id"], ctc["call_id"]);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "functions__exec");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({ "input": ctc["input"] }));
    assert_eq!(args["input"], SCRIPT);
    let tool = &messages[pos + 1];
    assert_eq!(tool["role"], "tool", "{messages:#?}");
    assert_eq!(tool["tool_call_id"], ctc["call_id"]);
    let text = message_text(tool);
    assert!(
        text.contains("Script completed") && text.contains(MARK),
        "{tool:#}"
    );
    assert_eq!(
        pos + 2,
        messages.len(),
        "nothing after the tool message: {messages:#?}"
    );
}

// ------------------------------------------------------------------------------------------
// 4. The guard itself.

#[test]
fn unconverted_samples_lists_only_counts_above_zero() {
    assert!(unconverted_samples("").is_empty());
    let other = "# HELP ccp_requests_total Requests.\n# TYPE ccp_requests_total counter\n\
                 ccp_requests_total{backend=\"main\"} 3\n";
    assert!(
        unconverted_samples(other).is_empty(),
        "no such family is zero"
    );
    let text = format!(
        "{other}# HELP ccp_unconverted_total Input the proxy did not convert.\n\
         # TYPE ccp_unconverted_total counter\n\
         ccp_unconverted_total{{kind=\"tool\",type=\"web_search\"}} 2\n\
         ccp_unconverted_total{{kind=\"item\",type=\"agent_message\"}} 1\n\
         ccp_unconverted_total{{kind=\"part\",type=\"input_audio\"}} 0\n"
    );
    assert_eq!(
        unconverted_samples(&text),
        vec![
            ("item".to_owned(), "agent_message".to_owned(), 1.0),
            ("tool".to_owned(), "web_search".to_owned(), 2.0),
        ]
    );
}

/// A request with one of each kind the proxy cannot convert: an unknown item type, content
/// part type, tool type and top-level member. The proxy must still answer (never reject
/// what Codex keeps in its history), count each under `ccp_unconverted_total`, and the
/// guard must then fail, naming them.
#[tokio::test]
async fn the_guard_fails_on_what_the_proxy_could_not_convert() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    assert_no_unconverted(&proxy.base_url()).await;
    let body = json!({
        "model": "gpt-6.2-sol",
        "stream": true,
        "future_member_ccp": {"x": 1},
        "tools": [
            {"type": "function", "name": "f", "description": "", "parameters": {"type": "object", "properties": {}}},
            {"type": "future_tool_ccp", "name": "g"},
        ],
        "input": [
            {"type": "future_item_ccp", "id": "fi_1"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "future_part_ccp", "data": "x"},
            ]},
        ],
    });
    let resp = post_responses(&proxy.url("/v1/responses"), &body).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let left = unconverted_samples(&metrics_text(&proxy).await);
    let pairs: BTreeSet<(String, String)> = left
        .iter()
        .map(|(k, t, _)| (k.clone(), t.clone()))
        .collect();
    for want in [
        ("item", "future_item_ccp"),
        ("part", "future_part_ccp"),
        ("tool", "future_tool_ccp"),
        ("member", "future_member_ccp"),
    ] {
        assert!(
            pairs.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not counted: {left:?}"
        );
    }
    use futures_util::FutureExt;
    let guard = std::panic::AssertUnwindSafe(assert_no_unconverted(&proxy.base_url()))
        .catch_unwind()
        .await;
    let msg = match guard {
        Ok(()) => panic!("the guard passed with {left:?}"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(
        msg.contains("future_item_ccp") && msg.contains("future_tool_ccp"),
        "{msg}"
    );
}

// ------------------------------------------------------------------------------------------
// 5. The scripted provider itself: it calls only what the request offers.

fn chat_request(tools: Value, messages: Value) -> RecordedRequest {
    let body = json!({"model": "m", "stream": true, "tools": tools, "messages": messages});
    RecordedRequest {
        method: "POST".to_owned(),
        path: "/v1/chat/completions".to_owned(),
        query: None,
        headers: Vec::new(),
        body_raw: body.to_string(),
        body: Some(body),
        rejection: None,
    }
}

fn function(name: &str, props: Value) -> Value {
    json!({"type": "function", "function": {"name": name, "description": "",
        "parameters": {"type": "object", "properties": props}}})
}

/// The reply as `text: ...` or `call name(arguments)` (pieces joined), or `STATUS body`.
fn said(reply: MockReply) -> String {
    let chunks = match reply {
        MockReply::Sse { chunks, .. } => chunks,
        MockReply::Json { status, body } => return format!("{status} {body}"),
        other => panic!("unexpected reply {other:?}"),
    };
    let (mut text, mut name, mut args) = (String::new(), String::new(), String::new());
    for line in chunks.iter().flat_map(|c| c.lines()) {
        let Some(v) = line
            .strip_prefix("data: ")
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        else {
            continue;
        };
        let delta = &v["choices"][0]["delta"];
        text.push_str(delta["content"].as_str().unwrap_or(""));
        for c in delta["tool_calls"].as_array().into_iter().flatten() {
            name.push_str(c["function"]["name"].as_str().unwrap_or(""));
            args.push_str(c["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    if name.is_empty() {
        format!("text: {text}")
    } else {
        format!("call {name}({args})")
    }
}

#[test]
fn the_scripted_provider_calls_only_an_offered_tool() {
    let user = json!([{"role": "user", "content": "go"}]);
    let exec = function("functions__exec", json!({"input": {"type": "string"}}));
    let shell = function("exec_command", json!({"cmd": {"type": "string"}}));
    // Code mode: the exec function, with its script.
    let r = said(brain(&chat_request(json!([exec.clone()]), user.clone())));
    assert!(
        r.contains("functions__exec") && r.contains("tools.exec_command"),
        "{r}"
    );
    // Classic: exec_command, with the command.
    let r = said(brain(&chat_request(json!([shell.clone()]), user.clone())));
    assert_eq!(r, format!("call exec_command({})", json!({ "cmd": CMD })));
    // No tool, or an `exec` without a string `input`, or `exec_command` spelt with another
    // parameter: prose, no call.
    for tools in [
        json!([]),
        json!([function(
            "functions__exec",
            json!({"code": {"type": "string"}})
        )]),
        json!([function(
            "exec_command",
            json!({"command": {"type": "string"}})
        )]),
    ] {
        let r = said(brain(&chat_request(tools.clone(), user.clone())));
        assert!(
            r.contains("offered no tool") && !r.contains("tool_calls"),
            "{tools}: {r}"
        );
    }
    // The follow-up: with the tools, an answer quoting the output; without them, a 400.
    let follow = json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": CALL_ID, "type": "function",
            "function": {"name": "functions__exec", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": CALL_ID, "content": "Script completed\nOutput:\ncodemode-ok"},
    ]);
    let r = said(brain(&chat_request(json!([exec]), follow.clone())));
    assert_eq!(r, format!("text: cm.txt says: {MARK}"));
    let r = said(brain(&chat_request(json!([]), follow)));
    assert!(r.starts_with("400 ") && r.contains("no tools"), "{r}");
}
