//! The real Codex CLI (0.169.0, offline) finishes a two-turn tool task — `exec_command`
//! creating a file, then a final answer — through each profile's strict mock provider
//! (tests/common/providers.rs): glm, kimi, deepseek, minimax and the generic openai.
//! And Codex 0.171 in code mode (the built-in provider with no model: Codex's default model
//! speaks the Responses-lite dialect, its tools in an `additional_tools` item) finishes the
//! same task through each profile by calling `functions__exec` with a JavaScript script.
//!
//! One Codex run per profile, each bounded by [`CODEX_TIMEOUT`] (killed after it); the runs
//! are serialized so that they do not compete for the CPU. The Codex binary comes from
//! `$CODEX_BIN` or `.codex-cli/node_modules/.bin/codex` (`make codex`); a missing binary fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::codex::{run_codex, CodexOptions, CodexProvider, CODEX_CLIENT_KEY};
use common::providers::{Profile, ProviderMock, Reply};
use common::*;
use serde_json::{json, Value};

const CODEX_TIMEOUT: Duration = Duration::from_secs(120);
const PROMPT: &str = "Create out.txt containing the profile name, using the shell";

/// One Codex run at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How Codex is used in a run: a custom provider with a model (the classic dialect, Codex
/// 0.169: `exec_command` called directly), or the built-in provider with no model (Codex 0.171
/// in code mode: `functions__exec` called with a script that runs `exec_command`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Classic,
    CodeMode,
}

/// The two-turn task through profile `p`: the provider calls the tool, Codex runs it and the
/// file appears, the provider answers; both requests accepted by the strict mock, the call
/// and its reasoning passed back in the profile's shape, nothing left unconverted.
async fn task(p: Profile, mode: Mode) {
    let _serial = SERIAL.lock().await;
    let key = format!("sk-{}-provider-key", p.name());
    let mock = ProviderMock::start(p, &key).await;
    let mark = format!("hello-{}", p.name());
    let (tool, args, file) = match mode {
        Mode::Classic => (
            "exec_command",
            json!({"cmd": format!("echo {mark} > out.txt")}),
            "out.txt",
        ),
        Mode::CodeMode => (
            "functions__exec",
            json!({"input": format!(
                "const r = await tools.exec_command({{cmd: \"printf '%s' {mark} > cm.txt && cat cm.txt\"}});\ntext(r.output);"
            )}),
            "cm.txt",
        ),
    };
    let r1 = format!("{}: one tool call creates the file.", p.name());
    let final_text = format!("Created {file} through {}.", p.name());
    mock.push(Reply::tool(Some(&r1), tool, &args.to_string()));
    mock.push(Reply::text(Some("The command ran; answer."), &final_text));
    let mut backend = mock.backend(p.name(), json!({"default": true}));
    let opts = match mode {
        Mode::Classic => CodexOptions {
            model: p.model().to_owned(),
            timeout: CODEX_TIMEOUT,
            ..CodexOptions::default()
        },
        Mode::CodeMode => {
            // Codex sends its own default model's name: the backend's goes upstream.
            backend["model"] = json!(p.model());
            CodexOptions {
                v0171: true,
                provider: CodexProvider::BuiltIn,
                no_model: true,
                timeout: CODEX_TIMEOUT,
                ..CodexOptions::default()
            }
        }
    };
    let proxy = ProxyProcess::start_with_backends(json!([backend])).await;
    let workdir = tempfile::tempdir().unwrap();
    let run = run_codex(&proxy.url("/v1"), workdir.path(), PROMPT, &opts).await;
    let context = proxy.context(format!(
        "profile {} ({})\n{}\n--- mock requests ---\n{:#?}",
        p.name(),
        if mode == Mode::Classic {
            "classic"
        } else {
            "code mode"
        },
        run.describe(),
        mock.requests()
            .iter()
            .map(|r| (r.path.clone(), r.rejection.clone()))
            .collect::<Vec<_>>()
    ));
    run.assert_success(&context);
    // The dialect guard: nothing Codex sent was left unconverted.
    assert_no_unconverted(&proxy.base_url()).await;

    // The tool really ran, and Codex printed the final answer.
    let out = std::fs::read_to_string(workdir.path().join(file))
        .unwrap_or_else(|e| panic!("{file} was not created ({e})\n{context}"));
    assert_eq!(out.trim(), mark, "{context}");
    let execs = run.completed_items("command_execution");
    assert!(
        execs.iter().any(|i| i["exit_code"] == 0),
        "no successful command_execution\n{context}"
    );
    assert_eq!(
        run.agent_messages().last().map(String::as_str),
        Some(final_text.as_str()),
        "{context}"
    );

    // The provider accepted both requests, each offering the tool, with the reasoning back
    // in its shape.
    mock.assert_all_accepted();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "{context}");
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {key}").as_str())
        );
        assert!(r.headers.iter().all(|(_, v)| !v.contains(CODEX_CLIENT_KEY)));
        assert_eq!(r.json()["model"], p.model(), "{context}");
        let tools = r.json()["tools"].as_array().cloned().unwrap_or_default();
        let offered = tools
            .iter()
            .find(|t| t["function"]["name"] == tool)
            .unwrap_or_else(|| panic!("request #{n} lacks {tool}: {tools:#?}\n{context}"));
        if mode == Mode::CodeMode {
            assert_eq!(
                offered["function"]["parameters"]["properties"]["input"]["type"], "string",
                "{offered:#}"
            );
        }
    }
    let calls = mock.emitted_calls();
    let call_id = calls.keys().next().unwrap().clone();
    let msgs = reqs[1].messages();
    let systems = msgs.iter().filter(|m| m["role"] == "system").count();
    assert_eq!(msgs[0]["role"], "system", "{context}");
    if p == Profile::MiniMax {
        assert_eq!(
            systems, 1,
            "MiniMax takes one leading system message\n{context}"
        );
    }
    let asst = msgs
        .iter()
        .find(|m| {
            m["tool_calls"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["id"] == call_id.as_str()))
        })
        .unwrap_or_else(|| panic!("no assistant message with the call\n{context}"));
    let call = &asst["tool_calls"][0];
    assert_eq!(call["function"]["name"], tool, "{context}");
    let sent: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(sent, args, "{context}");
    match p {
        Profile::MiniMax => assert!(
            asst["content"]
                .as_str()
                .unwrap()
                .starts_with(&format!("<think>\n{r1}\n</think>")),
            "{context}"
        ),
        _ => assert_eq!(asst["reasoning_content"], r1.as_str(), "{context}"),
    }
    let output = msgs
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id.as_str())
        .unwrap_or_else(|| panic!("no tool message for {call_id}\n{context}"));
    if mode == Mode::CodeMode {
        assert!(
            common::mock_upstream::message_text(output).contains(&mark),
            "{output:#}\n{context}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_through_glm() {
    task(Profile::Glm, Mode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_through_kimi() {
    task(Profile::Kimi, Mode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_through_deepseek() {
    task(Profile::DeepSeek, Mode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_through_minimax() {
    task(Profile::MiniMax, Mode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_through_openai_compatible() {
    task(Profile::OpenAi, Mode::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_code_mode_through_glm() {
    task(Profile::Glm, Mode::CodeMode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_code_mode_through_kimi() {
    task(Profile::Kimi, Mode::CodeMode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_code_mode_through_deepseek() {
    task(Profile::DeepSeek, Mode::CodeMode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_code_mode_through_minimax() {
    task(Profile::MiniMax, Mode::CodeMode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_code_mode_through_openai_compatible() {
    task(Profile::OpenAi, Mode::CodeMode).await;
}
