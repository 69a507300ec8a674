//! A fast mock Chat Completions upstream for `make loadtest` (bench/loadtest.sh).
//!
//! Every POST (any path) is answered from bytes built once at start-up: a request whose
//! body says `"stream": true` gets a fixed SSE stream of `--chunks` text deltas, a finish
//! chunk, a usage chunk and `[DONE]`; any other gets a fixed non-stream completion. The
//! body is read to the end (a real upstream does), nothing else is parsed.
//!
//! Under a path starting with `/slow`, streams trickle instead: the first chunk at once,
//! then one small delta every `--slow-interval-ms`, ending after `--slow-secs` (the
//! 2,000-open-streams test). Listens on 127.0.0.1 only.
//!
//! ```text
//! bench_mock_upstream --listen 127.0.0.1:18301 [--chunks 50] [--slow-interval-ms 2000]
//!                     [--slow-secs 60] [--threads 1]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Response, StatusCode, Uri};
use axum::Router;

struct Canned {
    json: Bytes,
    sse: Bytes,
}

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"mock-model\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
    )
}

fn canned(chunks: usize) -> Canned {
    let text = "Here is the plan: read the file, change the function, run the tests. ".repeat(6);
    let json = format!(
        "{{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":1764000000,\"model\":\"mock-model\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":11000,\"completion_tokens\":90,\"total_tokens\":11090,\"prompt_tokens_details\":{{\"cached_tokens\":10240}}}}}}"
    );
    let mut sse = chunk(r#"{"role":"assistant","content":""}"#, "null");
    for i in 0..chunks {
        sse.push_str(&chunk(&format!(r#"{{"content":"word{i} "}}"#), "null"));
    }
    sse.push_str(&chunk("{}", "\"stop\""));
    sse.push_str("data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,\"model\":\"mock-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":11000,\"completion_tokens\":90,\"total_tokens\":11090}}\n\n");
    sse.push_str("data: [DONE]\n\n");
    Canned {
        json: Bytes::from(json),
        sse: Bytes::from(sse),
    }
}

/// The first `"stream"` key is followed (after optional spaces and the colon) by `true`.
/// A raw `"stream"` inside a JSON string is escaped, so the first hit is the key (or, rarely,
/// a string value "stream": then this says "no stream").
fn wants_stream(body: &[u8]) -> bool {
    let Some(pos) = memchr::memmem::find(body, b"\"stream\"") else {
        return false;
    };
    let rest = &body[pos + 8..];
    let value = rest.trim_ascii_start().strip_prefix(b":").unwrap_or(b"");
    value.trim_ascii_start().starts_with(b"true")
}

fn reply(content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn fast(canned: Arc<Canned>, body: Bytes) -> Response<Body> {
    if wants_stream(&body) {
        reply("text/event-stream", Body::from(canned.sse.clone()))
    } else {
        reply("application/json", Body::from(canned.json.clone()))
    }
}

async fn slow(
    canned: Arc<Canned>,
    interval: Duration,
    total: Duration,
    body: Bytes,
) -> Response<Body> {
    if !wants_stream(&body) {
        return reply("application/json", Body::from(canned.json.clone()));
    }
    let ticks = (total.as_millis() / interval.as_millis().max(1)).max(1) as u64;
    let stream = futures_util::stream::unfold(0u64, move |n| async move {
        if n > ticks {
            return None;
        }
        let frame = if n == 0 {
            chunk(r#"{"role":"assistant","content":"…"}"#, "null")
        } else if n == ticks {
            format!("{}data: [DONE]\n\n", chunk("{}", "\"stop\""))
        } else {
            tokio::time::sleep(interval).await;
            chunk(r#"{"content":"."}"#, "null")
        };
        Some((Ok::<_, Infallible>(Bytes::from(frame)), n + 1))
    });
    reply("text/event-stream", Body::from_stream(stream))
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("bad value for {name}: {v}"))
        })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen: SocketAddr = arg(&args, "--listen").unwrap_or(([127, 0, 0, 1], 18301).into());
    let chunks: usize = arg(&args, "--chunks").unwrap_or(50);
    let interval = Duration::from_millis(arg(&args, "--slow-interval-ms").unwrap_or(2000));
    let total = Duration::from_secs(arg(&args, "--slow-secs").unwrap_or(60));
    let threads: usize = arg(&args, "--threads").unwrap_or(1);
    assert!(listen.ip().is_loopback(), "loopback only");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let canned = Arc::new(canned(chunks));
        let app = Router::new().fallback(move |uri: Uri, body: Bytes| {
            let canned = Arc::clone(&canned);
            async move {
                if uri.path().starts_with("/slow") {
                    slow(canned, interval, total, body).await
                } else {
                    fast(canned, body).await
                }
            }
        });
        let l = tokio::net::TcpListener::bind(listen).await.unwrap();
        println!("mock upstream listening on {listen}");
        axum::serve(l, app).await.unwrap();
    });
}

#[cfg(test)]
mod tests {
    use super::wants_stream;

    #[test]
    fn stream_flag() {
        assert!(wants_stream(br#"{"model":"m","stream":true}"#));
        assert!(wants_stream(b"{\n  \"stream\": true,\n}"));
        assert!(!wants_stream(br#"{"stream":false}"#));
        assert!(!wants_stream(br#"{"input":"stream"}"#));
    }
}
