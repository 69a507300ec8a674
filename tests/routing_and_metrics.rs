//! Model routing (prefix > model > default), `/v1/models`, and the statistics endpoints
//! `/metrics` (Prometheus text) and `/stats` against the requests a test made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mock_upstream::{MockReply, MockUpstream, PROMPT_TOKENS};
use common::*;
use serde_json::{json, Value};

fn config(port: u16, log_dir: &std::path::Path, mp: u16) -> Value {
    json!({
        "listen": format!("127.0.0.1:{port}"),
        "log_dir": log_dir.to_string_lossy(),
        "threads": 1,
        "backends": [
            // One attempt: a scripted error is the turn's answer (retries: tests/failover.rs).
            {"name": "main", "url": format!("http://127.0.0.1:{mp}/v1"), "api_key": "k-main",
             "retries": 0, "match_rules": {"default": true}},
            {"name": "kimi", "url": format!("http://127.0.0.1:{mp}/kimi-base/v1"), "api_key": "k-kimi",
             "models": [{"name": "kimi-k2.6"}],
             "match_rules": {"path_prefix": "/kimi", "model": ["kimi-*"]}},
            {"name": "ds", "url": format!("http://127.0.0.1:{mp}/ds-base/v1"), "api_key": "k-ds",
             "model": "deepseek-chat", "match_rules": {"model": "deepseek-chat"}}
        ]
    })
}

async fn started() -> (MockUpstream, ProxyProcess) {
    let mock = MockUpstream::start().await;
    let mp = mock.port();
    let proxy = ProxyProcess::start_with(move |port, dir| config(port, dir, mp)).await;
    (mock, proxy)
}

fn last_path_and_key(mock: &MockUpstream) -> (String, String) {
    let r = mock.requests().pop().unwrap();
    assert!(!r.is_rejected(), "{:?}", r.rejection);
    (
        r.path.clone(),
        r.header("authorization").unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_beats_model_beats_default() {
    let (mock, proxy) = started().await;
    let url = proxy.url("/v1/responses");
    for (model, path, key) in [
        (
            "kimi-k2.6",
            "/kimi-base/v1/chat/completions",
            "Bearer k-kimi",
        ),
        (
            "deepseek-chat",
            "/ds-base/v1/chat/completions",
            "Bearer k-ds",
        ),
        ("glm-5", "/v1/chat/completions", "Bearer k-main"),
    ] {
        let resp = post_responses(&url, &simple_request(model, "hi", true)).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(
            last_path_and_key(&mock),
            (path.to_owned(), key.to_owned()),
            "{model}"
        );
    }
    // the prefix wins over the model
    let resp = post_responses(
        &proxy.url("/kimi/v1/responses"),
        &simple_request("deepseek-chat", "hi", true),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(last_path_and_key(&mock).0, "/kimi-base/v1/chat/completions");
    // a body far larger than the first read (Codex histories are): model first, as Codex sends it
    let big = "lorem ipsum ".repeat(40_000);
    // (serde_json sorts keys: write the body by hand with `model` first, as Codex does)
    let body = format!(
        r#"{{"model":"kimi-k2.6","stream":true,"input":{}}}"#,
        json!(big)
    );
    let resp = read_full(
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        resp.status,
        200,
        "{}",
        &resp.body[..resp.body.len().min(300)]
    );
    assert_eq!(
        check_lifecycle(&parse_sse(&resp.body))["type"],
        "response.completed"
    );
    let r = mock.requests().pop().unwrap();
    assert_eq!(r.path, "/kimi-base/v1/chat/completions");
    assert_eq!(
        r.body.as_ref().unwrap()["messages"][0]["content"]
            .as_str()
            .unwrap()
            .len(),
        big.len()
    );
    // `model` after a large `input`: past the first read, so the default backend serves it
    let late = format!(
        r#"{{"stream":true,"input":{},"model":"kimi-k2.6"}}"#,
        json!(big)
    );
    let resp = read_full(
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body(late)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(last_path_and_key(&mock).0, "/v1/chat/completions");
    // the real Codex request fixture with a model routed by rule
    // (its bytes as Codex sent them: `model` first)
    let raw = std::fs::read_to_string(fixture_path("turn1-text.json")).unwrap();
    assert!(
        raw.trim_start()
            .trim_start_matches('{')
            .trim_start()
            .starts_with("\"model\""),
        "fixture keeps Codex's key order"
    );
    let raw = raw.replacen("\"stub-model\"", "\"deepseek-chat\"", 1);
    let resp = read_full(
        client()
            .post(&url)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(last_path_and_key(&mock).0, "/ds-base/v1/chat/completions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed() {
    let (_mock, proxy) = started().await;
    let all: Value = client()
        .get(proxy.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["object"], "list");
    let ids: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["kimi-k2.6", "deepseek-chat"]);
    assert_eq!(all["data"][0]["object"], "model");
    assert_eq!(all["data"][0]["owned_by"], "kimi");
    let kimi: Value = client()
        .get(proxy.url("/kimi/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kimi["data"].as_array().unwrap().len(), 1);
    let r = client().post(proxy.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_requests_made() {
    let (mock, proxy) = started().await;
    let url = proxy.url("/v1/responses");
    for _ in 0..3 {
        let r = post_responses(&url, &simple_request("glm-5", "hi", true)).await;
        assert_eq!(r.status, 200);
    }
    let r = post_responses(&url, &simple_request("glm-5", "hi", false)).await;
    assert_eq!(r.status, 200);
    mock.push(MockReply::error(500, "boom", "server_error", None));
    let r = post_responses(&url, &simple_request("glm-5", "hi", true)).await;
    assert_eq!(r.status, 502);
    let r = post_responses(&proxy.url("/nope"), &simple_request("glm-5", "hi", true)).await;
    assert_eq!(r.status, 404);
    let r = post_responses(
        &proxy.url("/kimi/v1/responses"),
        &simple_request("kimi-k2.6", "hi", true),
    )
    .await;
    assert_eq!(r.status, 200);

    let resp = client().get(proxy.url("/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = resp.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}\n{text}"))
    };
    assert_eq!(value("ccp_requests_total", &[("backend", "main")]), 5.0);
    assert_eq!(value("ccp_streams_total", &[("backend", "main")]), 4.0);
    assert_eq!(value("ccp_requests_total", &[("backend", "kimi")]), 1.0);
    assert_eq!(value("ccp_requests_total", &[("backend", "-")]), 1.0);
    assert_eq!(
        value(
            "ccp_errors_total",
            &[("backend", "main"), ("class", "upstream_5xx")]
        ),
        1.0
    );
    assert_eq!(
        value("ccp_errors_total", &[("backend", "-"), ("class", "client")]),
        1.0
    );
    assert_eq!(
        value(
            "ccp_errors_total",
            &[("backend", "main"), ("class", "client")]
        ),
        0.0
    );
    // 3 streams and 1 JSON reply carry the mock's usage
    assert_eq!(
        value("ccp_tokens_input_total", &[("backend", "main")]),
        (4 * PROMPT_TOKENS) as f64
    );
    let hist = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "ccp_request_duration_seconds" && s.labels.get("backend") == Some("main")
        })
        .expect("latency histogram");
    match &hist.value {
        prometheus_parse::Value::Histogram(h) => {
            assert_eq!(
                h.last().unwrap().count,
                5.0,
                "+Inf bucket counts every request"
            );
        }
        other => panic!("not a histogram: {other:?}"),
    }
    let stats: Value = client()
        .get(proxy.url("/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["backends"][0]["requests"], 5);
    assert_eq!(stats["backends"][0]["ttft_seconds"]["count"], 4);
    // local endpoints are not counted
    let again = client()
        .get(proxy.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("ccp_requests_total{backend=\"main\"} 5"));
    // the access line carries the fields
    let logs = proxy.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("kimi") && l.contains("request"))
        .unwrap_or_else(|| panic!("{logs}"));
    for field in [
        "method=POST",
        "path=/kimi/v1/responses",
        "backend=\"kimi\"",
        "model=\"kimi-k2.6\"",
        "stream=true",
        "status=200",
        "duration_ms=",
        "ttfb_ms=",
        "tokens_in=42",
        "tokens_out=",
        "tokens_cached=",
        "error_code=",
    ] {
        assert!(
            line.contains(field),
            "{field} missing in access line: {line}"
        );
    }
}

/// The dialect guard: an item type, a content-part type, a tool type and a top-level member
/// the proxy does not convert are each counted in `ccp_unconverted_total{kind, type}` and
/// logged once per type at warn (with the backend), and the request still goes through,
/// with the rest converted. Codex's own members (`client_metadata`, ...) count nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialect_guard_counts_and_logs_what_is_not_converted() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let body = json!({"model": "m", "stream": false, "invented_member": true,
        "client_metadata": {"x-codex-turn-metadata": "{}"},
        "tools": [{"type": "invented_tool", "x": 1},
                  {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": false}],
        "input": [
            {"type": "invented_item", "payload": 1},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "hello"}, {"type": "invented_part", "x": 1}]}]});
    for _ in 0..2 {
        mock.push(MockReply::text("ok"));
        let resp = post_json(&proxy.url("/v1/responses"), &body, &[]).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
    }
    let metrics = metrics_text(&proxy).await;
    for (kind, ty) in [
        ("item", "invented_item"),
        ("part", "invented_part"),
        ("tool", "invented_tool"),
        ("member", "invented_member"),
    ] {
        let line = format!("ccp_unconverted_total{{kind=\"{kind}\",type=\"{ty}\"}} 2");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    assert!(
        !metrics.contains("client_metadata"),
        "Codex's own members are not counted"
    );
    // The rest reached the provider.
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let chat = reqs[0].json();
    assert_eq!(chat["tools"][0]["function"]["name"], "f");
    assert_eq!(chat["tools"].as_array().unwrap().len(), 1);
    // Logged once per type, with the backend (error.log has the warnings).
    let path = proxy.dir.path().join("logs").join("error.log");
    let logs = eventually(
        "the warning about the last unconverted type in error.log",
        std::time::Duration::from_secs(5),
        || async {
            let logs = std::fs::read_to_string(&path).unwrap_or_default();
            if logs.contains("invented_member") {
                Ok(logs)
            } else {
                Err(logs)
            }
        },
    )
    .await;
    for ty in [
        "invented_item",
        "invented_part",
        "invented_tool",
        "invented_member",
    ] {
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("does not convert") && l.contains(ty))
            .collect();
        assert_eq!(lines.len(), 1, "{ty} logged once:\n{logs}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("main"),
            "{}",
            lines[0]
        );
    }
}
