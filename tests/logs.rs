//! Log files after a run of the real proxy binary: their names, the access line, `error.log`
//! holding only warnings and errors, the JSON format line by line, and `log_body` (request and
//! response bodies, redacted and cut).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::mock_upstream::{
    MockReply, MockUpstream, CACHED_TOKENS, COMPLETION_TOKENS, PROMPT_TOKENS,
};
use common::*;
use serde_json::{json, Value};

const REQUEST_SECRET: &str = "sk-live-REQUESTSECRET0123456789";
const BEARER_SECRET: &str = "abcdefghijklmnopqrstuvwxyz012345";
const REPLY_SECRET: &str = "sk-resp-REPLYSECRET9876543210";

/// The files of the log dir: (name, contents), sorted by name.
fn log_files(proxy: &ProxyProcess) -> Vec<(String, String)> {
    let dir = proxy.dir.path().join("logs");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Stops the proxy (SIGTERM) and waits: the log writers flush at exit.
fn stop(proxy: &mut ProxyProcess) {
    proxy.terminate();
    let status = proxy.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        proxy.context(format!("no clean exit: {status:?}"))
    );
}

fn with(mut config: Value, extra: Value) -> Value {
    let obj = config.as_object_mut().unwrap();
    for (k, v) in extra.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    config
}

async fn started(extra: Value) -> (MockUpstream, ProxyProcess) {
    let mock = MockUpstream::start().await;
    let mp = mock.port();
    let proxy = ProxyProcess::start_with(move |port, dir: &Path| {
        with(default_config(port, dir, mp), extra)
    })
    .await;
    (mock, proxy)
}

/// One good streamed turn and one upstream 500 (a warning).
async fn traffic(proxy: &ProxyProcess, mock: &MockUpstream) {
    let resp = post_responses(
        &proxy.url("/v1/responses"),
        &simple_request("gpt-x", "hi", true),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    mock.push(MockReply::error(500, "boom", "server_error", None));
    let resp = post_responses(
        &proxy.url("/v1/responses"),
        &simple_request("gpt-x", "again", false),
    )
    .await;
    assert!(resp.status >= 500, "{} {}", resp.status, resp.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_log_files_access_line_and_error_log() {
    let (mock, mut proxy) = started(json!({})).await;
    traffic(&proxy, &mock).await;
    stop(&mut proxy);

    let files = log_files(&proxy);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1], "error.log", "{names:?}");
    // rolled daily: codex-convert-proxy.log.YYYY-MM-DD
    let main_name = names[0];
    let date = main_name
        .strip_prefix("codex-convert-proxy.log.")
        .unwrap_or_else(|| panic!("{main_name}"));
    assert!(
        date.len() == 10 && date.chars().filter(|c| *c == '-').count() == 2,
        "{main_name}"
    );

    let main = &files[0].1;
    // (the start-up probe's GET /health has its access line too)
    let access: Vec<&str> = main
        .lines()
        .filter(|l| l.contains(" access: ") && l.contains("path=/v1/responses"))
        .collect();
    assert_eq!(access.len(), 2, "{main}");
    let ok = access[0];
    eprintln!("access line: {ok}");
    assert!(ok.contains(" INFO "), "{ok}");
    for field in [
        "method=POST",
        "path=/v1/responses",
        "backend=\"main\"",
        "model=\"gpt-x\"",
        "stream=true",
        "status=200",
        "upstream_status=200",
        "duration_ms=",
        "ttfb_ms=",
        "ttft_ms=",
        &format!("tokens_in={PROMPT_TOKENS}"),
        &format!("tokens_out={COMPLETION_TOKENS}"),
        &format!("tokens_cached={CACHED_TOKENS}"),
        "error_code=\"-\"",
    ] {
        assert!(ok.contains(field), "{field} missing in {ok}");
    }
    let failed = access[1];
    assert!(failed.contains("upstream_status=500"), "{failed}");
    assert!(failed.contains("stream=false"), "{failed}");
    assert!(main.contains("starting"), "the start-up line: {main}");

    // error.log: warnings and errors only, the upstream failure among them.
    let errors = &files[1].1;
    assert!(errors.contains("upstream error"), "{errors}");
    for line in errors.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains(" WARN ") || line.contains(" ERROR "),
            "not a warning or an error in error.log: {line}"
        );
    }
    // No key in any log.
    let all = proxy.logs();
    assert!(!all.contains(MAIN_KEY), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_format_parses_line_by_line() {
    let (mock, mut proxy) = started(json!({"log_format": "json"})).await;
    traffic(&proxy, &mock).await;
    stop(&mut proxy);

    let files = log_files(&proxy);
    assert_eq!(files.len(), 2, "{files:?}");
    let mut events = Vec::new();
    for (name, text) in &files {
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line}"));
            for key in ["timestamp", "level", "target"] {
                assert!(v.get(key).is_some(), "{name}: no {key} in {line}");
            }
            if name == "error.log" {
                let level = v["level"].as_str().unwrap();
                assert!(matches!(level, "WARN" | "ERROR"), "{line}");
            }
            events.push((name.clone(), v));
        }
    }
    // stderr carries the same format
    for line in proxy.stderr().lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("stderr: not JSON ({e}): {line}"));
    }
    let access: Vec<&Value> = events
        .iter()
        .filter(|(n, v)| {
            n.starts_with("codex-convert-proxy.log")
                && v["target"] == "access"
                && v["path"] == "/v1/responses"
        })
        .map(|(_, v)| v)
        .collect();
    assert_eq!(access.len(), 2, "{events:?}");
    let a = access[0];
    eprintln!("access line (json): {a}");
    assert_eq!(a["level"], "INFO");
    assert_eq!(a["message"], "request");
    assert_eq!(a["method"], "POST");
    assert_eq!(a["path"], "/v1/responses");
    assert_eq!(a["backend"], "main");
    assert_eq!(a["stream"], true);
    assert_eq!(a["status"], 200);
    assert_eq!(a["tokens_in"], PROMPT_TOKENS);
    assert_eq!(a["tokens_out"], COMPLETION_TOKENS);
    assert_eq!(a["tokens_cached"], CACHED_TOKENS);
    assert!(a["duration_ms"].is_u64() && a["ttft_ms"].is_u64(), "{a}");
    assert_eq!(access[1]["upstream_status"], 500);
    assert!(
        events
            .iter()
            .any(|(n, v)| n == "error.log" && v["level"] == "WARN"),
        "the upstream 500 is in error.log"
    );
}

/// The `body` events of a JSON log: direction → event.
fn body_events(proxy: &ProxyProcess) -> Vec<Value> {
    log_files(proxy)
        .iter()
        .filter(|(n, _)| n.starts_with("codex-convert-proxy.log"))
        .flat_map(|(_, text)| {
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|v| v["target"] == "body")
        .collect()
}

fn body_of<'a>(events: &'a [Value], direction: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|v| v["direction"] == direction)
        .collect();
    assert_eq!(found.len(), 1, "{direction}: {events:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_body_logs_both_bodies_redacted() {
    let (mock, mut proxy) = started(json!({"log_body": true, "log_format": "json"})).await;
    mock.push(MockReply::json_text(&format!(
        "the key is {REPLY_SECRET} there"
    )));
    let mut req = simple_request("gpt-x", &format!("my key: {REQUEST_SECRET}"), false);
    req["instructions"] = json!(format!("use Bearer {BEARER_SECRET}"));
    let resp = post_responses(&proxy.url("/v1/responses"), &req).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains(REPLY_SECRET), "the client gets it as is");
    stop(&mut proxy);

    let events = body_events(&proxy);
    let request = body_of(&events, "request");
    let body = request["body"].as_str().unwrap();
    eprintln!("request body event: {request}");
    assert_eq!(request["backend"], "main");
    assert_eq!(request["truncated"], false);
    assert!(
        body.contains("\"messages\""),
        "the upstream Chat request: {body}"
    );
    assert!(body.contains("sk-[REDACTED]"), "{body}");
    assert!(body.contains("Bearer [REDACTED]"), "{body}");

    let response = body_of(&events, "response");
    let body = response["body"].as_str().unwrap();
    eprintln!("response body event: {response}");
    assert_eq!(response["truncated"], false);
    assert_eq!(response["bytes"], resp.body.len());
    assert!(
        body.contains("\"object\":\"response\""),
        "the converted Response object: {body}"
    );
    assert!(body.contains("the key is sk-[REDACTED] there"), "{body}");

    let all = proxy.logs();
    for secret in [REQUEST_SECRET, BEARER_SECRET, REPLY_SECRET, MAIN_KEY] {
        assert!(!all.contains(secret), "{secret} in the logs:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_body_cuts_at_log_body_max_bytes() {
    const MAX: usize = 300;
    let (_mock, mut proxy) = started(json!({
        "log_body": true, "log_format": "json", "log_body_max_bytes": MAX
    }))
    .await;
    let long = "lorem ipsum ".repeat(1000);
    let resp = post_responses(
        &proxy.url("/v1/responses"),
        &simple_request("gpt-x", &long, true),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    stop(&mut proxy);

    let events = body_events(&proxy);
    let request = body_of(&events, "request");
    assert_eq!(request["truncated"], true);
    assert!(request["bytes"].as_u64().unwrap() > long.len() as u64);
    assert!(request["body"].as_str().unwrap().len() <= MAX, "{request}");

    let response = body_of(&events, "response");
    assert_eq!(response["truncated"], true);
    assert_eq!(response["bytes"], resp.body.len());
    let body = response["body"].as_str().unwrap();
    assert!(body.len() <= MAX, "{response}");
    // the SSE events the client got, newlines kept (JSON escapes them)
    assert!(body.starts_with("event: response.created\n"), "{body}");
    assert!(
        resp.body.starts_with(body),
        "a prefix of what the client got"
    );
}
