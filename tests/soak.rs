//! A bounded soak: 20,000 mixed requests (streams, JSON, tool calls, upstream 500s, streams
//! cut mid-way) at concurrency 64 through the real proxy. Every request must end exactly as
//! its scenario says, the proxy's open file descriptors must not grow, and its memory must
//! stay within a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const TOTAL: usize = 20_000;
const CONCURRENCY: usize = 64;

fn frames(parts: &[Value], done: bool) -> Vec<String> {
    let mut v: Vec<String> = parts.iter().map(|p| format!("data: {p}\n\n")).collect();
    if done {
        v.push("data: [DONE]\n\n".into());
    }
    v
}

fn delta(d: Value, finish: Option<&str>) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})
}

async fn mock(req: Request) -> Response {
    let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let model = v["model"].as_str().unwrap_or("");
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
    let sse = |chunks: Vec<String>, cut: bool| {
        let mut items: Vec<Result<Bytes, std::io::Error>> =
            chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
        if cut {
            items.push(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "cut",
            )));
        }
        let stream = futures_util::stream::iter(items).then(|i| async move {
            if i.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            i
        });
        let mut r = Response::new(Body::from_stream(stream));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r
    };
    match model {
        "soak-text" => sse(
            frames(
                &[
                    delta(json!({"role": "assistant", "content": "Hel"}), None),
                    delta(json!({"content": "lo"}), None),
                    delta(json!({}), Some("stop")),
                    usage,
                ],
                true,
            ),
            false,
        ),
        "soak-tool" => sse(
            frames(
                &[
                    delta(
                        json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\":"}}]}),
                        None,
                    ),
                    delta(
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"ls\"}"}}]}),
                        None,
                    ),
                    delta(json!({}), Some("tool_calls")),
                    usage,
                ],
                true,
            ),
            false,
        ),
        "soak-cut" => sse(
            frames(&[delta(json!({"content": "partial"}), None)], false),
            true,
        ),
        "soak-500" => {
            let mut r = Response::new(Body::from(
                r#"{"error":{"message":"boom","type":"server_error"}}"#,
            ));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        _ => {
            let body = json!({"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}});
            let mut r = Response::new(Body::from(body.to_string()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
    }
}

/// (model, stream) of request number `i`: 55% text streams, 20% JSON, 15% tool streams,
/// 5% upstream 500, 5% streams cut mid-way.
/// Waits (bounded) until the proxy has recorded `n` requests (`ccp_requests_total`).
async fn all_recorded(proxy: &ProxyProcess, n: u64) {
    eventually(
        format!("the proxy records all {n} requests"),
        Duration::from_secs(30),
        || async {
            let got = metric_value(
                &metrics_text(proxy).await,
                "ccp_requests_total{backend=\"soak\"}",
            );
            if got == n {
                Ok(())
            } else {
                Err(format!("{got} recorded"))
            }
        },
    )
    .await;
}

fn scenario(i: usize) -> (&'static str, bool) {
    if let Ok(only) = std::env::var("SOAK_ONLY") {
        return match only.as_str() {
            "text" => ("soak-text", true),
            "json" => ("soak-json", false),
            "tool" => ("soak-tool", true),
            "500" => ("soak-500", true),
            _ => ("soak-cut", true),
        };
    }
    match i % 20 {
        0..=10 => ("soak-text", true),
        11..=14 => ("soak-json", false),
        15..=17 => ("soak-tool", true),
        18 => ("soak-500", true),
        _ => ("soak-cut", true),
    }
}

fn check(model: &str, status: u16, body: &str) -> Result<(), String> {
    let expect_terminal = |t: &str| -> Result<Value, String> {
        let stream = parse_sse(body);
        let last = stream.events.last().ok_or("no events")?;
        if last.event != t || !stream.done {
            return Err(format!(
                "expected {t}, got {} (done {})",
                last.event, stream.done
            ));
        }
        Ok(last.data.clone())
    };
    match (model, status) {
        ("soak-text", 200) => {
            let t = expect_terminal("response.completed")?;
            (response_output_text(&t["response"]) == "Hello")
                .then_some(())
                .ok_or("text".into())
        }
        ("soak-tool", 200) => {
            let t = expect_terminal("response.completed")?;
            (t["response"]["output"][0]["arguments"] == "{\"cmd\":\"ls\"}")
                .then_some(())
                .ok_or("args".into())
        }
        ("soak-cut", 200) => expect_terminal("response.failed").map(|_| ()),
        ("soak-json", 200) => {
            let v: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
            (v["status"] == "completed")
                .then_some(())
                .ok_or("json status".into())
        }
        ("soak-500", 502) => Ok(()),
        (m, s) => Err(format!("{m}: unexpected status {s}: {body}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_20k_mixed_requests_at_concurrency_64() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mp = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().fallback(mock);
        let _ = axum::serve(listener, app).await;
    });
    let proxy = ProxyProcess::start_with(move |port, dir| {
        json!({"listen": format!("127.0.0.1:{port}"), "log_dir": dir.to_string_lossy(), "threads": 2,
               "log_level": "warn",
               "backends": [{"name": "soak", "url": format!("http://127.0.0.1:{mp}/v1"), "api_key": "k"}]})
    })
    .await;
    let pid = proxy.pid();
    let url = proxy.url("/v1/responses");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(CONCURRENCY)
        .no_proxy()
        .build()
        .unwrap();

    // After a stream the upstream cut mid-way, the client gets a complete `response.failed`
    // stream, but Pingora closes the connection (it never reuses a client connection after an
    // upstream error); a pooled client could race that close with its next request. Those
    // requests use a client that does not pool, as a real client's retry on a fresh
    // connection would.
    let no_pool = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap();
    let run = |range: std::ops::Range<usize>| {
        let client = client.clone();
        let no_pool = no_pool.clone();
        let url = url.clone();
        let failures = Arc::new(AtomicUsize::new(0));
        let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
        let (f2, ff2) = (Arc::clone(&failures), Arc::clone(&first_failure));
        async move {
            futures_util::stream::iter(range)
                .for_each_concurrent(CONCURRENCY, |i| {
                    let (model, stream) = scenario(i);
                    let client = if model == "soak-cut" { no_pool.clone() } else { client.clone() };
                    let (url, failures, first) = (url.clone(), Arc::clone(&f2), Arc::clone(&ff2));
                    async move {
                        let body = json!({"model": model, "stream": stream, "input": format!("request {i}")});
                        let result = match client.post(&url).json(&body).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                match r.text().await {
                                    Ok(text) => check(model, status, &text),
                                    Err(e) => Err(format!("{model}: body: {e}")),
                                }
                            }
                            Err(e) => Err(format!("{model}: send: {e}")),
                        };
                        if let Err(e) = result {
                            failures.fetch_add(1, Ordering::Relaxed);
                            first.lock().unwrap().get_or_insert(e);
                        }
                    }
                })
                .await;
            (
                failures.load(Ordering::Relaxed),
                first_failure.lock().unwrap().clone(),
            )
        }
    };

    // Warm up (connection pools, allocator), then measure once the proxy has recorded every
    // request (its last step).
    let (f, e) = run(0..2_000).await;
    assert_eq!(f, 0, "warm-up failures: {e:?}");
    all_recorded(&proxy, 2_000).await;
    let fds_before = open_fds(pid);
    let rss_before = proc_status(pid, "VmRSS:");
    let t = Instant::now();
    let (failures, first) = run(0..TOTAL).await;
    let elapsed = t.elapsed();
    all_recorded(&proxy, 2_000 + TOTAL as u64).await;
    // The connections the proxy closes (after a cut stream) may take a moment to go: wait
    // (bounded) until the fds and memory are within their bounds, then assert on what was
    // last read.
    let fds_bound = fds_before + 2 * CONCURRENCY;
    let rss_bound = rss_before + 64 * 1024;
    let (fds_after, rss_after) = settle(pid, fds_bound, rss_bound).await;
    let hwm = proc_status(pid, "VmHWM:");
    eprintln!(
        "soak: {TOTAL} requests at concurrency {CONCURRENCY} in {elapsed:?} ({:.0} req/s); fds {fds_before} -> {fds_after}; RSS {rss_before} kB -> {rss_after} kB (peak {hwm} kB)",
        TOTAL as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(
        failures, 0,
        "unexpected outcomes: {failures}, first: {first:?}"
    );
    // idle keep-alive connections to the client and the upstream may stay open: at most one
    // per concurrent request each way, and no growth beyond that
    assert!(
        fds_after <= fds_bound,
        "open fds grew: {fds_before} -> {fds_after}"
    );
    assert!(
        rss_after < rss_bound,
        "RSS grew by more than 64 MB: {rss_before} -> {rss_after} kB"
    );
    health_ok(&proxy).await;
    server.abort();
}
