//! A WebSocket client for the proxy's WebSocket mode (tokio-tungstenite, the library Codex
//! itself uses), and helpers to read one turn's frames.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{SseEvent, SseStream};

/// Bound of one turn's wait.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(20);

pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// `ws://127.0.0.1:PORT{path}`.
pub fn ws_url(port: u16, path: &str) -> String {
    format!("ws://127.0.0.1:{port}{path}")
}

impl WsClient {
    /// Opens a socket with Codex's headers (and `extra`).
    pub async fn connect(
        url: &str,
        extra: &[(&str, &str)],
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut req = url.into_client_request()?;
        let h = req.headers_mut();
        h.insert("authorization", "Bearer dummy".parse().unwrap());
        h.insert(
            "openai-beta",
            "responses_websockets=2026-02-06".parse().unwrap(),
        );
        h.insert(
            "x-codex-beta-features",
            "remote_compaction_v2".parse().unwrap(),
        );
        for (k, v) in extra {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let (ws, resp) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(req),
        )
        .await
        .expect("connect timed out")?;
        assert_eq!(resp.status().as_u16(), 101);
        Ok(WsClient { ws })
    }

    pub async fn send(&mut self, v: &Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// The next text frame as JSON (pings and pongs skipped); `None` when the socket
    /// closed.
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(TURN_TIMEOUT, self.ws.next())
                .await
                .expect("no frame within the turn timeout")?;
            match msg {
                Ok(Message::Text(t)) => {
                    assert_ne!(t.as_str(), "[DONE]", "[DONE] sent over a WebSocket");
                    return Some(
                        serde_json::from_str(t.as_str())
                            .unwrap_or_else(|e| panic!("frame is not JSON ({e}): {t}")),
                    );
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The frames of one turn: up to a terminal event or an error frame.
    pub async fn turn(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(v) = self.next_json().await {
            let ty = v["type"].as_str().unwrap_or("").to_owned();
            frames.push(v);
            if is_terminal(&ty) || ty == "error" {
                return frames;
            }
        }
        panic!("the socket closed before the turn ended: {frames:#?}");
    }

    /// Sends a create and reads its turn.
    pub async fn create(&mut self, v: &Value) -> Vec<Value> {
        self.send(v).await;
        self.turn().await
    }
}

pub fn is_terminal(ty: &str) -> bool {
    matches!(
        ty,
        "response.completed" | "response.failed" | "response.incomplete"
    )
}

/// A turn's frames as events (the event name is the JSON `type`), what
/// [`super::check_events`] reads.
pub fn events(frames: &[Value]) -> Vec<SseEvent> {
    frames
        .iter()
        .map(|f| SseEvent {
            event: f["type"].as_str().unwrap_or("").to_owned(),
            data: f.clone(),
        })
        .collect()
}

/// The lifecycle checks of a turn's frames ([`super::check_events`], shared with the SSE
/// suites); returns the terminal event.
pub fn check_turn(frames: &[Value]) -> Value {
    super::check_events(&events(frames))
}

/// A turn's frames as the event stream the SSE helpers read (`done`: WebSocket has no
/// `[DONE]`, and its end is the terminal event).
pub fn as_stream(frames: &[Value]) -> SseStream {
    SseStream {
        events: events(frames),
        done: true,
    }
}

/// The Response object of a turn's terminal event.
pub fn final_response(frames: &[Value]) -> &Value {
    let last = frames.last().expect("no frames");
    assert!(
        is_terminal(last["type"].as_str().unwrap_or("")),
        "the turn did not end with a terminal event: {frames:#?}"
    );
    &last["response"]
}

/// The error frame of a turn (asserting its envelope).
pub fn error_frame(frames: &[Value]) -> &Value {
    let last = frames.last().expect("no frames");
    assert_eq!(
        last["type"], "error",
        "expected an error frame: {frames:#?}"
    );
    assert!(last["status"].as_u64().is_some(), "{last}");
    for k in ["code", "message", "type"] {
        assert!(last["error"][k].is_string(), "error.{k}: {last}");
    }
    assert!(last["error"].get("param").is_some(), "{last}");
    &last["error"]
}
