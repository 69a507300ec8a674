//! The ends of a WebSocket connection through the real proxy process (issue #18): a message
//! over `websocket.max_message_bytes` always gets its error frame and the close 1009, and a
//! client's Close is always answered (RFC 6455 §5.5.1), idle and mid-turn — the turn in flight
//! still cancelled upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::mock_upstream::{sse_text, MockReply, MockUpstream};
use common::ws::{ws_url, WsClient};
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// The limit of issue #18's report (256 KiB) and a message just over it (266 KB).
const LIMIT: usize = 256 * 1024;
const OVERSIZED: usize = 266_000;
/// The reliable reproduction: bad one-byte messages first, each answered with an error
/// frame (so the proxy still has frames on their way out), then a message of 1 MB (so it
/// still has bytes of it to pass in) when it refuses that one.
const BURST: usize = 300;
const OVERSIZED_BIG: usize = 1_000_000;
/// Fresh connections, one oversized message each, of each kind.
const TRIES: usize = 100;
/// Bound of the wait for a Close reply.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

async fn proxy_with_limit(mock: &MockUpstream, limit: usize) -> ProxyProcess {
    let port = mock.port();
    ProxyProcess::start_with(move |p, dir| {
        let mut c = default_config(p, dir, port);
        c["websocket"] = json!({ "max_message_bytes": limit });
        c
    })
    .await
}

/// The upgrade request and, in the same write, `burst` masked one-byte text frames (`x`, not
/// JSON) and one masked text frame of `size` bytes: all of it is on its way before the 101
/// comes back.
fn upgrade_with_message(port: u16, burst: usize, size: usize) -> Vec<u8> {
    let mut out = format!(
        "GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer dummy\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..burst {
        out.extend_from_slice(&[0x81, 0x80 | 1, 0, 0, 0, 0, b'x']);
    }
    out.push(0x81); // FIN, text
    out.push(0x80 | 127); // masked, 64-bit length
    out.extend_from_slice(&(size as u64).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // the zero mask: the payload as is
    out.resize(out.len() + size, b'x');
    out
}

/// The frames (opcode, payload) of a server's unmasked byte stream; the rest when cut.
fn server_frames(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while b.len() >= 2 {
        let op = b[0] & 0x0f;
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if b.len() < head + len {
            break;
        }
        frames.push((op, b[head..head + len].to_vec()));
        b = &b[head + len..];
    }
    frames
}

/// What the client saw after sending `burst` bad messages and one oversized: `Err` says
/// what was missing.
async fn one_oversized(port: u16, burst: usize, size: usize) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = tcp.into_split();
    let bytes = upgrade_with_message(port, burst, size);
    // The proxy stops reading mid-message: the write may never finish, so it runs beside the
    // reads.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        wr
    });
    // Everything until the proxy ends the connection (or resets it: what arrived before
    // still counts).
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut buf)).await {
            Err(_) => {
                writer.abort();
                return Err("the connection did not end within 10 s".into());
            }
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    writer.abort();
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(format!("no 101: {:?}", String::from_utf8_lossy(&got)));
    };
    if !got.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "no 101: {:?}",
            String::from_utf8_lossy(&got[..end])
        ));
    }
    let mut frames = server_frames(&got[end + 4..]);
    // The burst's answers first, one each, then the oversized message's.
    let answered = frames
        .iter()
        .take_while(|(op, p)| *op == 1 && p.windows(12).any(|w| w == b"invalid_json"))
        .count();
    if answered != burst {
        return Err(format!(
            "{answered} of the {burst} bad messages before it answered, then {:?}",
            frames
                .get(answered)
                .map(|(op, p)| (op, String::from_utf8_lossy(p)))
        ));
    }
    frames.drain(..answered);
    let Some((1, text)) = frames.first() else {
        return Err(format!("no error frame (frames: {frames:?})"));
    };
    let err: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let shape = err["type"] == "error"
        && err["status"] == 400
        && err["error"]["code"] == "message_too_large"
        && err["error"]["type"] == "invalid_request_error"
        && err["error"]["message"].is_string();
    if !shape {
        return Err(format!("not the message_too_large error frame: {err}"));
    }
    match frames.get(1) {
        Some((8, p)) if p.len() >= 2 && u16::from_be_bytes([p[0], p[1]]) == 1009 => Ok(()),
        Some((8, p)) => Err(format!("close {p:?}, not 1009")),
        other => Err(format!(
            "the error frame, then {other:?} instead of the close 1009"
        )),
    }
}

#[tokio::test]
async fn every_oversized_message_gets_its_error_frame_and_close_1009() {
    let mock = MockUpstream::start().await;
    let proxy = proxy_with_limit(&mock, LIMIT).await;
    let url = ws_url(proxy.port, "/v1/responses");
    let mut failures = Vec::new();
    // Issue #18's case, then the one that loses the race most of the time.
    for (burst, size) in [(0, OVERSIZED), (BURST, OVERSIZED_BIG)] {
        for i in 0..TRIES {
            if let Err(e) = one_oversized(proxy.port, burst, size).await {
                failures.push(format!("{burst} + {size} bytes, try {i}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} oversized messages missed the error frame or the close 1009:\n{}",
        failures.len(),
        2 * TRIES,
        failures.join("\n")
    );
    // The proxy stays healthy and the socket still works.
    let mut ws = WsClient::connect(&url, &[]).await.unwrap();
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "generate": false, "input": "x"}))
        .await;
    assert_eq!(f.last().unwrap()["type"], "response.completed");
    assert!(mock.requests().is_empty());
}

/// Sends a Close with `code`; the reply's code, or what came instead.
async fn close_and_wait_reply(
    ws: &mut WsClient,
    code: CloseCode,
) -> Result<(Option<CloseCode>, Duration), String> {
    let start = Instant::now();
    ws.ws
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: "client done".into(),
        })))
        .await
        .map_err(|e| format!("sending the close: {e}"))?;
    loop {
        let left = CLOSE_WITHIN.saturating_sub(start.elapsed());
        let Ok(msg) = tokio::time::timeout(left, ws.ws.next()).await else {
            return Err(format!("no Close reply within {CLOSE_WITHIN:?}"));
        };
        match msg {
            Some(Ok(Message::Close(frame))) => return Ok((frame.map(|f| f.code), start.elapsed())),
            // Frames the server sent before it saw the Close.
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("no Close reply: {e}")),
            None => return Err("ended without a Close reply".into()),
        }
    }
}

#[tokio::test]
async fn an_idle_close_is_answered_with_its_code() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let url = ws_url(proxy.port, "/v1/responses");
    let mut failures = Vec::new();
    for (i, code) in [CloseCode::Normal, CloseCode::Away, CloseCode::Library(4000)]
        .into_iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let mut ws = WsClient::connect(&url, &[]).await.unwrap();
        // One turn first on some of them: a connection that has worked is idle too.
        if i % 2 == 1 {
            let f = ws
                .create(&json!({"type": "response.create", "model": "m", "generate": false, "input": "x"}))
                .await;
            assert_eq!(f.last().unwrap()["type"], "response.completed");
        }
        match close_and_wait_reply(&mut ws, code).await {
            Ok((Some(back), _)) if back == code => {}
            Ok((other, _)) => failures.push(format!("try {i}: sent {code:?}, got {other:?}")),
            Err(e) => failures.push(format!("try {i}: sent {code:?}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 30 idle closes unanswered:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_close_mid_turn_is_answered_and_cancels_the_upstream_request() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let url = ws_url(proxy.port, "/v1/responses");
    const TURNS: usize = 3;
    for i in 0..TURNS {
        // About 6 s of slow words: the close comes long before their end.
        mock.push(MockReply::Sse {
            chunks: sse_text(&"slow words ".repeat(40)),
            delay_ms: 150,
            cut_after: None,
        });
        let mut ws = WsClient::connect(&url, &[]).await.unwrap();
        ws.send(&json!({"type": "response.create", "model": "m", "input": "go"}))
            .await;
        let first = ws.next_json().await.unwrap();
        assert_eq!(first["type"], "response.created");
        let (code, took) = close_and_wait_reply(&mut ws, CloseCode::Away)
            .await
            .unwrap_or_else(|e| panic!("turn {i}: {e}"));
        assert_eq!(code, Some(CloseCode::Away), "turn {i}");
        assert!(took < CLOSE_WITHIN, "turn {i}: {took:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while mock.abandoned_streams() < i + 1 {
            assert!(
                Instant::now() < deadline,
                "turn {i}: the upstream stream was not cancelled"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(mock.requests().len(), TURNS);
    let health = client().get(proxy.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
