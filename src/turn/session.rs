//! A WebSocket connection's session (Codex's and Open Responses' WebSocket mode), over any
//! byte stream: read the client's messages, run one turn at a time, write its frames, and end
//! the connection the way RFC 6455 wants (an oversized message: its error frame, then 1009; a
//! client's Close: answered with its code; shutdown: 1001; the age limit: 1000).
//!
//! ```text
//!  client ⇄ (proxy/websocket: Pingora session ⇄ pump ⇄ duplex) ⇄ tungstenite ⇄ run ─▶ Turns
//!                                                       (chain, queue, the one turn in flight)
//! ```
//!
//! What a turn is — prepare, upstream, reply, record — is the [`Turns`] the proxy gives
//! (`proxy/websocket`); here only the connection's order of things.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

use crate::convert::error::ClientError;
use crate::turn::chain::{resolve_message, ChainEntry, ConnChain, Message, Resolved};

/// Responses one connection remembers for `previous_response_id` (Codex continues the
/// latest; a fork or a retry may go back a few).
const CHAIN_ENTRIES: usize = 16;
/// Frames a turn may have waiting for the client.
const FRAME_QUEUE: usize = 256;
/// Bound of the connection's last writes (the error frame, the Close): a client that reads
/// nothing does not hold the connection open.
const CLOSE_WRITES: Duration = Duration::from_secs(5);

/// Bytes tungstenite reads at a time (and keeps zeroed between reads).
pub const READ_BUFFER: usize = 4 * 1024;
/// The pipe between the byte pump and tungstenite, each way: what a connection holds of a
/// message in flight beyond tungstenite's own buffer.
pub const PIPE_BUFFER: usize = 16 * 1024;

/// A connection's limits (`websocket.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A message (and a frame) larger is refused, then the connection closed with 1009.
    pub max_message_bytes: usize,
    /// Messages queued and responses remembered, together.
    pub max_connection_bytes: usize,
    /// After its turn in flight, an older connection is closed (with the limit's error).
    pub max_connection_age: Duration,
}

impl From<&crate::config::WebSocketConfig> for Limits {
    fn from(c: &crate::config::WebSocketConfig) -> Self {
        Limits {
            max_message_bytes: c.max_message_bytes,
            max_connection_bytes: c.max_connection_bytes,
            max_connection_age: c.max_connection_age,
        }
    }
}

impl Limits {
    /// tungstenite's side of the limits (a server's: it reads masked frames), and its
    /// buffers sized for an idle connection: tungstenite zeroes its whole read buffer before
    /// each read (its default, 128 KiB, stayed resident on every socket), and buffers writes
    /// up to 128 KiB before sending. Codex's traffic is small messages and a few large ones:
    /// reads of [`READ_BUFFER`] (a large message takes several), every frame written at once.
    pub fn tungstenite(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }
}

/// How a turn ended, for the connection's chain.
pub struct TurnEnd {
    pub response_id: String,
    /// The conversation after the turn (`None` when it failed: not continued).
    pub entry: Option<ChainEntry>,
    /// The id it continued (evicted when the turn failed).
    pub previous: Option<String>,
}

/// A turn in flight; dropping it cancels it (and its upstream request).
pub type TurnFuture<'a> = Pin<Box<dyn Future<Output = TurnEnd> + Send + 'a>>;

/// What the session asks of the proxy for a message.
pub trait Turns: Sync {
    /// When `text` continues a response the connection does not know, put its chain from
    /// the response store into `chain`.
    fn load_stored_chain<'a>(
        &'a self,
        text: &'a str,
        chain: &'a mut ConnChain,
    ) -> impl Future<Output = Result<(), ClientError>> + Send + 'a;
    /// `text` with its `item_reference`s replaced; `None` when it has none.
    fn resolve_references<'a>(
        &'a self,
        text: &'a str,
        chain: &'a ConnChain,
    ) -> impl Future<Output = Result<Option<String>, ClientError>> + Send + 'a;
    /// A message refused before any turn (its record).
    fn reject(&self, err: &ClientError);
    /// The turn of a create; every event a text frame on `tx`.
    fn turn(&self, resolved: Resolved, tx: mpsc::Sender<Frame>) -> TurnFuture<'_>;
}

/// A client message waiting for its turn.
enum Incoming {
    Text(String),
    Binary,
}

/// How the session ends.
enum End {
    /// The client closed: the Close tungstenite queued in reply (the client's code echoed,
    /// RFC 6455 §5.5.1) is flushed.
    ClientClosed,
    /// Frames for the client, then a Close of ours.
    Close(Vec<Frame>, CloseFrame),
}

/// A message over `websocket.max_message_bytes` (then the connection closes with 1009).
pub fn message_too_large(detail: &dyn std::fmt::Display, limit: usize) -> ClientError {
    ClientError::new(
        400,
        "invalid_request_error",
        Some("message_too_large"),
        format!("The WebSocket message is too large ({detail}); the limit is {limit} bytes (websocket.max_message_bytes)."),
    )
}

/// A binary message: the protocol is JSON text.
pub fn binary_message() -> ClientError {
    ClientError::new(
        400,
        "invalid_request_error",
        Some("invalid_message"),
        "Binary WebSocket messages are not supported: send JSON text messages.",
    )
}

/// A message that would make the connection hold more than `websocket.max_connection_bytes`.
pub fn memory_limit_reached(held: usize, limit: usize) -> ClientError {
    ClientError::new(
        400,
        "invalid_request_error",
        Some("websocket_memory_limit_reached"),
        format!("This WebSocket connection holds too much ({held} bytes queued and remembered; the limit is {limit}): the message was dropped."),
    )
}

/// The connection is older than `websocket.max_connection_minutes` (then it closes).
pub fn age_limit_reached(age: Duration) -> ClientError {
    ClientError::new(
        400,
        "invalid_request_error",
        Some("websocket_connection_limit_reached"),
        format!(
            "This WebSocket connection reached its age limit ({} minutes): open a new connection.",
            age.as_secs() / 60
        ),
    )
}

/// The session: read messages, run one turn at a time, write its frames; returns when the
/// connection is over (`shutdown` flipping: after the turn in flight, a close 1001).
pub async fn run<S, T>(
    turns: &T,
    ws: WebSocketStream<S>,
    limits: &Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    T: Turns,
{
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Frame>(FRAME_QUEUE);
    let mut chain = ConnChain::new(CHAIN_ENTRIES, limits.max_connection_bytes);
    let mut queue: VecDeque<Incoming> = VecDeque::new();
    let mut queued_bytes = 0usize;
    let mut turn: Option<TurnFuture<'_>> = None;
    let age_limit = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(age_limit);
    let mut aged = false;
    let mut stopping = *shutdown.borrow();
    let end: End = loop {
        if turn.is_none() {
            // The last turn's frames first, then anything of the loop's own.
            while let Ok(f) = rx.try_recv() {
                if sink.send(f).await.is_err() {
                    return;
                }
            }
            if stopping {
                break End::Close(
                    Vec::new(),
                    CloseFrame {
                        code: CloseCode::Away,
                        reason: "server shutting down".into(),
                    },
                );
            }
            if aged {
                let err = age_limit_reached(limits.max_connection_age);
                break End::Close(
                    vec![Frame::text(err.ws_frame())],
                    CloseFrame {
                        code: CloseCode::Normal,
                        reason: "connection age limit".into(),
                    },
                );
            }
            if let Some(next) = queue.pop_front() {
                let text = match next {
                    Incoming::Binary => {
                        let err = binary_message();
                        if sink.send(Frame::text(err.ws_frame())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Incoming::Text(t) => t,
                };
                queued_bytes -= text.len();
                // A continuation of a stored response (store: true) not made on this
                // connection: its chain comes from the response store.
                if let Err(err) = turns.load_stored_chain(&text, &mut chain).await {
                    turns.reject(&err);
                    if sink.send(Frame::text(err.ws_frame())).await.is_err() {
                        return;
                    }
                    continue;
                }
                // Item references: from this connection's chain, then the store.
                let text = match turns.resolve_references(&text, &chain).await {
                    Ok(Some(t)) => t,
                    Ok(None) => text,
                    Err(err) => {
                        turns.reject(&err);
                        if sink.send(Frame::text(err.ws_frame())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                match resolve_message(&text, &mut chain) {
                    Ok(Message::Create(r)) => {
                        turn = Some(turns.turn(*r, tx.clone()));
                    }
                    Ok(Message::Ignored(kind)) => {
                        tracing::debug!(kind = %kind, "websocket message ignored");
                    }
                    Err(err) => {
                        turns.reject(&err);
                        if sink.send(Frame::text(err.ws_frame())).await.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
        }
        tokio::select! {
            biased;
            Some(f) = rx.recv() => {
                if sink.send(f).await.is_err() {
                    return;
                }
            }
            end = async { match turn.as_mut() { Some(t) => t.await, None => std::future::pending().await } } => {
                turn = None;
                match end.entry {
                    Some(entry) => chain.insert(end.response_id, entry),
                    None => {
                        if let Some(prev) = end.previous {
                            chain.remove(&prev);
                        }
                    }
                }
            }
            msg = stream.next() => match msg {
                Some(Ok(Frame::Text(t))) => {
                    let t = t.as_str().to_owned();
                    let held = queued_bytes + t.len() + chain.held_bytes();
                    if held > limits.max_connection_bytes {
                        let err = memory_limit_reached(held, limits.max_connection_bytes);
                        if turn.is_none() && sink.send(Frame::text(err.ws_frame())).await.is_err() {
                            return;
                        }
                        if turn.is_some() && tx.try_send(Frame::text(err.ws_frame())).is_err() {
                            tracing::debug!("websocket: memory-limit error frame not queued");
                        }
                        continue;
                    }
                    queued_bytes += t.len();
                    queue.push_back(Incoming::Text(t));
                }
                Some(Ok(Frame::Binary(_))) => queue.push_back(Incoming::Binary),
                Some(Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_))) => {}
                // The client closed: its Close is answered after the loop. Either way the
                // turn in flight is dropped, which cancels its upstream request.
                Some(Ok(Frame::Close(_))) => break End::ClientClosed,
                // The client went away, or broke the protocol.
                None => return,
                Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(e))) => {
                    // Too big for max_message_bytes: say so, then close with 1009 (RFC
                    // 6455 §7.4.1) — the rest of that message cannot be read past.
                    let err = message_too_large(&e, limits.max_message_bytes);
                    let mut frames = Vec::new();
                    while let Ok(f) = rx.try_recv() {
                        frames.push(f);
                    }
                    frames.push(Frame::text(err.ws_frame()));
                    break End::Close(
                        frames,
                        CloseFrame {
                            code: CloseCode::Size,
                            reason: "message too large".into(),
                        },
                    );
                }
                Some(Err(e)) => {
                    tracing::debug!("websocket read failed: {e}");
                    return;
                }
            },
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
            }
            () = &mut age_limit, if !aged => {
                aged = true;
            }
        }
    };
    // The turn in flight (a client Close mid-turn) is cancelled now, not after the writes.
    drop(turn);
    let last = async {
        if let End::Close(frames, close) = end {
            for f in frames {
                if sink.send(f).await.is_err() {
                    return;
                }
            }
            let _ = sink.send(Frame::Close(Some(close))).await;
        }
        // Flushes what is queued: our Close, or tungstenite's reply to the client's.
        let _ = sink.close().await;
    };
    if tokio::time::timeout(CLOSE_WRITES, last).await.is_err() {
        tracing::debug!("websocket: the last frames were not taken in time");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    /// Turns without a proxy: a turn sends `response.created`, then waits forever (or ends
    /// with `response.completed` when `complete`); its drop is seen.
    #[derive(Default)]
    struct Fake {
        rejected: AtomicUsize,
        turns: AtomicUsize,
        dropped: Arc<AtomicBool>,
        complete: bool,
    }

    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Turns for Fake {
        async fn load_stored_chain(
            &self,
            _text: &str,
            _chain: &mut ConnChain,
        ) -> Result<(), ClientError> {
            Ok(())
        }

        async fn resolve_references(
            &self,
            _text: &str,
            _chain: &ConnChain,
        ) -> Result<Option<String>, ClientError> {
            Ok(None)
        }

        fn reject(&self, _err: &ClientError) {
            self.rejected.fetch_add(1, Ordering::SeqCst);
        }

        fn turn(&self, _resolved: Resolved, tx: mpsc::Sender<Frame>) -> TurnFuture<'_> {
            self.turns.fetch_add(1, Ordering::SeqCst);
            let flag = DropFlag(Arc::clone(&self.dropped));
            let complete = self.complete;
            Box::pin(async move {
                let _flag = flag;
                let _ = tx.send(Frame::text(r#"{"type":"response.created"}"#)).await;
                if !complete {
                    std::future::pending::<()>().await;
                }
                let _ = tx
                    .send(Frame::text(r#"{"type":"response.completed"}"#))
                    .await;
                TurnEnd {
                    response_id: "resp_1".into(),
                    entry: None,
                    previous: None,
                }
            })
        }
    }

    const LIMITS: Limits = Limits {
        max_message_bytes: 1024,
        max_connection_bytes: 1 << 20,
        max_connection_age: Duration::from_secs(3600),
    };
    const WAIT: Duration = Duration::from_secs(5);
    const CREATE: &str = r#"{"type":"response.create","model":"m","input":"hi"}"#;

    /// The session over a duplex, and the client's end.
    async fn pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let server =
            WebSocketStream::from_raw_socket(server, Role::Server, Some(LIMITS.tungstenite()))
                .await;
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (server, client)
    }

    /// The next frame the client gets (pings skipped); `None` at the end.
    async fn next(client: &mut WebSocketStream<DuplexStream>) -> Option<Frame> {
        loop {
            match tokio::time::timeout(WAIT, client.next()).await {
                Err(_) => panic!("no frame within {WAIT:?}"),
                Ok(Some(Ok(Frame::Ping(_) | Frame::Pong(_)))) => {}
                Ok(Some(Ok(f))) => return Some(f),
                Ok(Some(Err(_)) | None) => return None,
            }
        }
    }

    fn error_code(f: &Frame) -> String {
        let Frame::Text(t) = f else {
            panic!("not a text frame: {f:?}");
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert!(v["status"].is_u64(), "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        v["error"]["code"].as_str().unwrap().to_owned()
    }

    fn close_code(f: Option<Frame>) -> Option<CloseCode> {
        match f {
            Some(Frame::Close(c)) => c.map(|c| c.code),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    /// Runs the session beside `client_side`, both bounded.
    async fn with_session<F, R>(
        fake: &Fake,
        script: impl FnOnce(WebSocketStream<DuplexStream>) -> F,
    ) -> R
    where
        F: Future<Output = R>,
    {
        let (server, client) = pair().await;
        let (_stop, shutdown) = watch::channel(false);
        let session = run(fake, server, &LIMITS, shutdown);
        let (ended, out) = tokio::join!(tokio::time::timeout(WAIT, session), script(client));
        ended.expect("the session did not end");
        out
    }

    #[tokio::test]
    async fn an_oversized_message_gets_its_error_frame_then_close_1009() {
        let fake = Fake::default();
        let (code, close) = with_session(&fake, |mut c| async move {
            c.send(Frame::text("x".repeat(LIMITS.max_message_bytes + 1)))
                .await
                .unwrap();
            let err = next(&mut c).await.expect("no error frame");
            (error_code(&err), close_code(next(&mut c).await))
        })
        .await;
        assert_eq!(code, "message_too_large");
        assert_eq!(close, Some(CloseCode::Size));
        assert_eq!(fake.turns.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_binary_message_is_refused_and_the_connection_goes_on() {
        let fake = Fake {
            complete: true,
            ..Fake::default()
        };
        with_session(&fake, |mut c| async move {
            c.send(Frame::binary(b"{}".to_vec())).await.unwrap();
            assert_eq!(error_code(&next(&mut c).await.unwrap()), "invalid_message");
            c.send(Frame::text(CREATE)).await.unwrap();
            for ty in ["response.created", "response.completed"] {
                let f = next(&mut c).await.unwrap();
                assert!(f.to_text().unwrap().contains(ty), "{f:?}");
            }
            c.close(None).await.unwrap();
            while next(&mut c).await.is_some() {}
        })
        .await;
        assert_eq!(fake.turns.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_idle_close_is_answered_with_its_code() {
        let fake = Fake::default();
        let close = with_session(&fake, |mut c| async move {
            c.send(Frame::Close(Some(CloseFrame {
                code: CloseCode::Library(4000),
                reason: "bye".into(),
            })))
            .await
            .unwrap();
            close_code(next(&mut c).await)
        })
        .await;
        assert_eq!(close, Some(CloseCode::Library(4000)));
    }

    #[tokio::test]
    async fn a_close_mid_turn_is_answered_and_drops_the_turn() {
        let fake = Fake::default();
        let close = with_session(&fake, |mut c| async move {
            c.send(Frame::text(CREATE)).await.unwrap();
            let f = next(&mut c).await.unwrap();
            assert!(f.to_text().unwrap().contains("response.created"), "{f:?}");
            c.send(Frame::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "".into(),
            })))
            .await
            .unwrap();
            close_code(next(&mut c).await)
        })
        .await;
        assert_eq!(close, Some(CloseCode::Away));
        assert!(
            fake.dropped.load(Ordering::SeqCst),
            "the turn was not dropped"
        );
    }

    #[tokio::test]
    async fn a_bad_message_is_an_error_frame_and_recorded() {
        let fake = Fake::default();
        with_session(&fake, |mut c| async move {
            c.send(Frame::text("not json")).await.unwrap();
            assert_eq!(error_code(&next(&mut c).await.unwrap()), "invalid_json");
            c.close(None).await.unwrap();
            while next(&mut c).await.is_some() {}
        })
        .await;
        assert_eq!(fake.rejected.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_errors_are_in_openai_shape() {
        for (err, code) in [
            (message_too_large(&"9 > 8", 8), "message_too_large"),
            (binary_message(), "invalid_message"),
            (memory_limit_reached(9, 8), "websocket_memory_limit_reached"),
            (
                age_limit_reached(Duration::from_secs(120)),
                "websocket_connection_limit_reached",
            ),
        ] {
            assert_eq!(err.status, 400);
            let v: serde_json::Value = serde_json::from_str(&err.ws_frame()).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], "invalid_request_error");
            assert_eq!(v["error"]["code"], code);
        }
        assert!(age_limit_reached(Duration::from_secs(120))
            .message
            .contains("2 minutes"));
    }
}
