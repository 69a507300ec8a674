//! Faults, bad input and secrets: every upstream fault and every bad input ends cleanly, the
//! proxy keeps serving, and no key ever reaches a log. Every proxy here runs with
//! `RUST_LOG=trace` and `log_body: true`, and each test greps all its logs for the keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::mock_upstream::{self, MockReply, MockUpstream};
use common::*;
use serde_json::{json, Value};

const SECRET_A: &str = "sk-resilience-primary-0123456789";
const SECRET_B: &str = "sk-resilience-fallback-9876543210";
const CLIENT_TOKEN: &str = "proxy-client-token-abcdef";

fn trace_logging() {
    // Inherited by every proxy process this test binary starts.
    std::env::set_var("RUST_LOG", "trace");
}

/// One backend at the mock, `log_body` on, short timeouts.
fn config(port: u16, log_dir: &std::path::Path, mock_port: u16, extra: Value) -> Value {
    let mut c = json!({
        "listen": format!("127.0.0.1:{port}"),
        "log_dir": log_dir.to_string_lossy(),
        "log_body": true,
        "threads": 2,
        "grace_period_seconds": 3,
        "max_body_bytes": 200000,
        "backends": [{
            "name": "primary",
            "url": format!("http://127.0.0.1:{mock_port}/v1"),
            "api_key": SECRET_A,
            "timeouts": {"connect_ms": 1000, "first_byte_ms": 1500, "idle_ms": 1500, "total_ms": 20000},
            // One attempt: a scripted error or a slow head is the turn's answer (retries and
            // failover: tests/failover.rs).
            "retries": 0,
            "match_rules": {"default": true}
        }]
    });
    if let (Some(obj), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
    c
}

async fn start(mock: &MockUpstream, extra: Value) -> ProxyProcess {
    trace_logging();
    let mp = mock.port();
    ProxyProcess::start_with(move |port, dir| config(port, dir, mp, extra)).await
}

fn assert_no_secrets(proxy: &ProxyProcess) {
    let all = format!("{}{}{}", proxy.logs(), proxy.stderr(), proxy.stdout());
    assert!(!all.is_empty(), "trace logging produced nothing");
    for secret in [SECRET_A, SECRET_B, CLIENT_TOKEN] {
        assert!(
            !all.contains(secret),
            "a secret leaked into the logs: {secret}"
        );
        // nor a long piece of it
        assert!(
            !all.contains(&secret[3..20]),
            "part of a secret leaked: {secret}"
        );
    }
}

fn request(stream: bool) -> Value {
    simple_request("m", "hello", stream)
}

fn failed_code(resp: &FullResponse) -> String {
    let stream = parse_sse(&resp.body);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.failed", "{}", resp.body);
    terminal["response"]["error"]["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_http_errors_are_mapped() {
    let mock = MockUpstream::start().await;
    let proxy = start(&mock, json!({})).await;
    let cases: Vec<(MockReply, u16, Option<&str>, &str)> = vec![
        (MockReply::error(401, &format!("Incorrect API key provided: {SECRET_A}"), "invalid_request_error", Some("invalid_api_key")), 401, Some("invalid_api_key"), "primary backend"),
        (MockReply::error(403, "forbidden", "permission_error", None), 401, Some("invalid_api_key"), "primary backend"),
        (MockReply::Delayed { reply: Box::new(MockReply::error(429, "Rate limit reached for requests", "rate_limit_error", None)), delay_ms: 0, headers: vec![("retry-after".into(), "7".into())] }, 429, Some("rate_limit_exceeded"), "try again in 7s"),
        (MockReply::error(429, "Your account balance is insufficient", "insufficient_quota", Some("insufficient_quota")), 429, Some("insufficient_quota"), "insufficient"),
        (MockReply::error(500, "internal boom", "server_error", None), 502, Some("server_error"), "internal boom"),
        (MockReply::error(503, "The engine is currently overloaded", "server_error", None), 503, Some("server_is_overloaded"), "overloaded"),
        (MockReply::error(400, "This model's maximum context length is 131072 tokens. However, you requested 200000 tokens", "invalid_request_error", None), 400, Some("context_length_exceeded"), "context"),
        (MockReply::Raw { status: 502, content_type: "text/html".into(), body: "<html>bad gateway</html>".into() }, 502, Some("server_error"), "bad gateway"),
    ];
    for (reply, status, code, needle) in cases {
        mock.push(reply);
        let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
        assert_eq!(resp.status, status, "{}", resp.body);
        let err = assert_openai_error_shape(&resp.json());
        assert_eq!(err["code"].as_str(), code, "{}", resp.body);
        assert!(
            err["message"].as_str().unwrap().contains(needle),
            "{needle}: {}",
            resp.body
        );
        assert!(
            !resp.body.contains(SECRET_A),
            "the key never reaches the client"
        );
        if status == 429 && needle.contains("7s") {
            assert_eq!(resp.header("retry-after").as_deref(), Some("7"));
        }
    }
    health_ok(&proxy).await;
    assert_no_secrets(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_the_stream_end_in_response_failed() {
    let mock = MockUpstream::start().await;
    let proxy = start(&mock, json!({})).await;
    // garbage instead of JSON chunks
    mock.push(MockReply::sse(vec!["data: {not json at all\n\n".into()]));
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(failed_code(&resp), "server_error");
    // an error object inside the stream
    let mut chunks = mock_upstream::sse_text("partial");
    chunks.truncate(2);
    chunks.push("data: {\"error\":{\"message\":\"Input too long: context length exceeded\",\"code\":\"context_length_exceeded\"}}\n\n".into());
    mock.push(MockReply::sse(chunks));
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    assert_eq!(failed_code(&resp), "context_length_exceeded");
    // cut mid-stream
    mock.push(MockReply::Sse {
        chunks: mock_upstream::sse_text("cut off here please"),
        delay_ms: 10,
        cut_after: Some(3),
    });
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    assert_eq!(failed_code(&resp), "server_error");
    // stall mid-stream longer than the idle timeout (1.5 s)
    let mut chunks = mock_upstream::sse_text("slow");
    chunks.insert(2, String::new());
    mock.push(MockReply::Sse {
        chunks,
        delay_ms: 2500,
        cut_after: None,
    });
    let t = Instant::now();
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    assert_eq!(failed_code(&resp), "server_error");
    assert!(t.elapsed() < Duration::from_secs(10));
    // slow headers (longer than first byte + idle) → 504 before the stream
    mock.push(MockReply::Delayed {
        reply: Box::new(MockReply::text("late")),
        delay_ms: 2500,
        headers: vec![],
    });
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    assert_eq!(resp.status, 504, "{}\n{}", resp.body, proxy.stderr());
    assert_openai_error_shape(&resp.json());
    // truncated JSON for a non-streamed request
    mock.push(MockReply::Raw {
        status: 200,
        content_type: "application/json".into(),
        body: "{\"choices\": [{\"message\": {\"content\": \"hal".into(),
    });
    let resp = post_responses(&proxy.url("/v1/responses"), &request(false)).await;
    // the 200 header went out before the body could be read: a failed Response object
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v = resp.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["code"], "server_error");
    // a JSON reply to a streamed request is converted to a proper stream
    mock.push(MockReply::json_text("one piece"));
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    let stream = parse_sse(&resp.body);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed");
    assert_eq!(streamed_text(&stream), "one piece");
    health_ok(&proxy).await;
    assert_no_secrets(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_retry_then_fail_over() {
    let mock = MockUpstream::start().await;
    let dead = free_port(); // nothing listens here
    trace_logging();
    let mp = mock.port();
    let proxy = ProxyProcess::start_with(move |port, dir| {
        let mut c = config(port, dir, mp, json!({}));
        c["backends"] = json!([
            {"name": "dead", "url": format!("http://127.0.0.1:{dead}/v1"), "api_key": SECRET_A,
             "retries": 1, "fallback": ["backup"], "match_rules": {"default": true}},
            {"name": "lonely", "url": format!("http://127.0.0.1:{dead}/v1"), "api_key": SECRET_A,
             "retries": 0, "match_rules": {"path_prefix": "/lonely"}},
            {"name": "backup", "url": format!("http://127.0.0.1:{mp}/v1"), "api_key": SECRET_B}
        ]);
        c
    })
    .await;
    let resp = post_responses(&proxy.url("/v1/responses"), &request(true)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let stream = parse_sse(&resp.body);
    assert_eq!(check_lifecycle(&stream)["type"], "response.completed");
    let req = mock.single_request();
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {SECRET_B}").as_str()),
        "the fallback's own key"
    );
    // no fallback: 502 naming the backend
    let resp = post_responses(&proxy.url("/lonely/v1/responses"), &request(true)).await;
    assert_eq!(resp.status, 502, "{}", resp.body);
    let err = assert_openai_error_shape(&resp.json());
    assert!(err["message"].as_str().unwrap().contains("lonely"), "{err}");
    assert_no_secrets(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_corpus_gets_openai_errors_and_the_proxy_keeps_serving() {
    let mock = MockUpstream::start().await;
    let proxy = start(&mock, json!({})).await;
    let url = proxy.url("/v1/responses");
    let big = "x".repeat(300_000);
    let bodies: Vec<(Vec<u8>, &str, u16)> = vec![
        (b"".to_vec(), "application/json", 400),
        (b"{".to_vec(), "application/json", 400),
        (b"[1,2,3]".to_vec(), "application/json", 400),
        (b"null".to_vec(), "application/json", 400),
        (
            br#"{"model": 42, "input": "x"}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"model": "m", "input": 42}"#.to_vec(),
            "application/json",
            400,
        ),
        (br#"{"model": "m"}"#.to_vec(), "application/json", 400),
        (br#"{"input": "x"}"#.to_vec(), "application/json", 400),
        (
            br#"{"model": "m", "input": [{"type": "message", "role": "user"}]}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"model": "m", "input": [{"type": "function_call", "name": "x"}]}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"model": "m", "input": "x", "stream": "yes"}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"model": "m", "input": "x", "tools": [{"type": "function"}]}"#.to_vec(),
            "application/json",
            400,
        ),
        (
            br#"{"model": "m", "input": "x", "previous_response_id": "resp_1"}"#.to_vec(),
            "application/json",
            400,
        ),
        (vec![0xff, 0xfe, b'{', b'}'], "application/json", 400),
        (
            format!(r#"{{"model": "m", "input": "{big}"}}"#).into_bytes(),
            "application/json",
            413,
        ),
        (
            br#"{"model": "m", "input": "x"}"#.to_vec(),
            "text/plain",
            415,
        ),
        (
            br#"model=m&input=x"#.to_vec(),
            "application/x-www-form-urlencoded",
            415,
        ),
    ];
    let total = bodies.len();
    for (body, ct, status) in bodies {
        let resp = client()
            .post(&url)
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let got = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(
            got,
            status,
            "body {:?}: {text}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_openai_error_shape(&v);
    }
    // huge headers
    let resp = client()
        .post(&url)
        .header("x-huge", "h".repeat(100_000))
        .json(&request(true))
        .send()
        .await;
    if let Ok(r) = resp {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    // bad methods and paths
    for (m, p, s) in [
        ("GET", "/v1/responses", 405),
        ("PUT", "/", 405),
        ("POST", "/v1/chat/completions", 404),
        ("DELETE", "/health", 405),
    ] {
        let r = client()
            .request(m.parse().unwrap(), proxy.url(p))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), s, "{m} {p}");
        let v: Value = r.json().await.unwrap();
        assert_openai_error_shape(&v);
    }
    // The body is converted as it streams in, after the upstream connection is made: a bad
    // body aborts the upstream request before it is complete, so no provider ever receives
    // a request from it.
    let reqs = mock.requests();
    assert!(
        reqs.iter()
            .all(|r| r.body_raw.is_empty() && r.is_rejected()),
        "{:?}",
        reqs.iter().map(|r| r.body_raw.clone()).collect::<Vec<_>>()
    );
    health_ok(&proxy).await;
    // and real requests still work
    let resp = post_responses(&url, &request(true)).await;
    assert_eq!(
        check_lifecycle(&parse_sse(&resp.body))["type"],
        "response.completed"
    );
    eprintln!("bad inputs tried: {total} bodies + huge headers + 4 method/path cases");
    assert_no_secrets(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_are_enforced() {
    let mock = MockUpstream::start().await;
    let proxy = start(&mock, json!({"auth_tokens": [CLIENT_TOKEN]})).await;
    let url = proxy.url("/v1/responses");
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer proxy-client-token-abcdeX"),
        Some("Basic x"),
    ] {
        let mut req = client().post(&url).json(&request(true));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(assert_openai_error_shape(&v)["code"], "invalid_api_key");
    }
    let resp = post_json(
        &url,
        &request(true),
        &[("authorization", &format!("Bearer {CLIENT_TOKEN}"))],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let resp = post_json(&url, &request(true), &[("x-api-key", CLIENT_TOKEN)]).await;
    assert_eq!(resp.status, 200);
    // the client's token never goes upstream: the backend key does
    for r in mock.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {SECRET_A}").as_str())
        );
        assert!(!r.headers.iter().any(|(_, v)| v.contains(CLIENT_TOKEN)));
    }
    health_ok(&proxy).await;
    assert_no_secrets(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_cancels_the_upstream_stream() {
    let mock = MockUpstream::start().await;
    let proxy = start(&mock, json!({})).await;
    let chunks = mock_upstream::sse_text(&"word ".repeat(200));
    let n = chunks.len();
    mock.push(MockReply::Sse {
        chunks,
        delay_ms: 50,
        cut_after: None,
    });
    {
        use futures_util::StreamExt;
        let resp = client()
            .post(proxy.url("/v1/responses"))
            .json(&request(true))
            .send()
            .await
            .unwrap();
        let mut body = resp.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        // drop the response: the client goes away after the first bytes
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.abandoned_streams() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        mock.abandoned_streams(),
        1,
        "the upstream stream of {n} chunks (≈{} s) was not cancelled",
        n * 50 / 1000
    );
    health_ok(&proxy).await;
    assert_no_secrets(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_open_streams_finish_then_exits_zero() {
    let mock = MockUpstream::start().await;
    let mut proxy = start(&mock, json!({})).await;
    let text = "one two three four five six seven eight";
    mock.push(MockReply::Sse {
        chunks: mock_upstream::sse_text(text),
        delay_ms: 100,
        cut_after: None,
    });
    // The client reads the stream into `seen` as it arrives.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let pending = {
        use futures_util::StreamExt;
        let resp = client()
            .post(proxy.url("/v1/responses"))
            .header("accept", "text/event-stream")
            .json(&request(true))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let seen = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                seen.lock()
                    .unwrap()
                    .extend_from_slice(&chunk.expect("the stream is not cut"));
            }
        })
    };
    let text_of = |seen: &std::sync::Mutex<Vec<u8>>| {
        String::from_utf8_lossy(&seen.lock().unwrap()).into_owned()
    };
    // Mid-stream: the client has the first text delta, and not the end.
    eventually(
        "the client receives the first text delta",
        Duration::from_secs(10),
        || async { text_of(&seen).contains("event: response.output_text.delta") },
    )
    .await;
    proxy.terminate();
    let at_sigterm = text_of(&seen);
    assert!(
        !at_sigterm.contains("response.completed"),
        "the stream had ended before SIGTERM:\n{at_sigterm}"
    );
    tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("the stream ends after SIGTERM")
        .unwrap();
    let body = text_of(&seen);
    let stream = parse_sse(&body);
    assert_eq!(
        check_lifecycle(&stream)["type"],
        "response.completed",
        "{body}"
    );
    assert_eq!(streamed_text(&stream), text);
    let status = proxy
        .wait_exit(Duration::from_secs(15))
        .expect("the proxy exits after SIGTERM");
    assert!(
        status.success(),
        "{}",
        proxy.context(format!("exit status {status:?}"))
    );
    assert_no_secrets(&proxy);
}

/// A provider that answers the first request on each connection (keeping it alive) and
/// closes a connection when a second request comes on it: what a provider does to an idle
/// kept-alive connection it already gave up on. Returns its port and the count of requests
/// it answered.
async fn provider_dropping_reused_connections(
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = std::sync::Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        // Bounded: the test makes a handful of connections.
        for _ in 0..64 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                for request in 0.. {
                    // One request: the head, then its body (chunked or by length).
                    let complete = |b: &[u8]| -> bool {
                        let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
                            return false;
                        };
                        let head = String::from_utf8_lossy(&b[..end]).to_ascii_lowercase();
                        let body = &b[end + 4..];
                        if head.contains("transfer-encoding: chunked") {
                            body.ends_with(b"0\r\n\r\n")
                        } else {
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            body.len() >= len
                        }
                    };
                    while !complete(&buf) {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.clear();
                    if request > 0 {
                        // The second request on this connection: gone without an answer.
                        return;
                    }
                    let body = json!({"id": "chatcmpl-1", "object": "chat.completion",
                        "created": 1, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "fresh"}}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: keep-alive\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (port, answered)
}

/// A kept-alive upstream connection the provider closed, found when it is reused: the
/// request goes again on a new connection, over HTTP and over a WebSocket, and the client
/// never sees it (before: a 502 "ConnectionClosed" on HTTP, an error frame on a socket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_connection_the_provider_closed_is_retried_on_a_new_one() {
    use std::sync::atomic::Ordering;
    let (up, answered) = provider_dropping_reused_connections().await;
    let proxy = ProxyProcess::start_with(move |port, dir| {
        let mut c = config(port, dir, up, json!({}));
        c["backends"][0]["model"] = json!("m");
        c
    })
    .await;
    for i in 0..3 {
        let resp = post_json(&proxy.url("/v1/responses"), &request(false), &[]).await;
        assert_eq!(resp.status, 200, "HTTP request {i}: {}", resp.body);
        let v: Value = serde_json::from_str(&resp.body).unwrap();
        assert_eq!(v["output"][0]["content"][0]["text"], "fresh", "{v}");
    }
    let mut ws =
        common::ws::WsClient::connect(&common::ws::ws_url(proxy.port, "/v1/responses"), &[])
            .await
            .unwrap();
    for i in 0..3 {
        let mut msg = request(true);
        msg["type"] = json!("response.create");
        msg["store"] = json!(false);
        let frames = ws.create(&msg).await;
        let last = frames.last().unwrap();
        assert_eq!(
            last["type"], "response.completed",
            "WebSocket turn {i}: {frames:?}"
        );
    }
    assert_eq!(answered.load(Ordering::SeqCst), 6);
    assert_no_secrets(&proxy);
}
