//! The WebSocket transport (Codex's and Open Responses' WebSocket mode).
//!
//! Pingora hands an upgraded connection over as a byte tunnel, so the WebSocket is terminated
//! here, in `request_filter`: the 101 goes out, then the upgraded bytes are pumped between
//! Pingora's session and tungstenite (the framing: RFC 6455, pings, fragments, close), and each
//! `response.create` message runs through the same turn as an HTTP request — resolve the
//! chain, prepare, upstream, reply — with the events written as one JSON text frame each.
//!
//! ```text
//!  client ⇄ Pingora session ⇄ pump ⇄ duplex ⇄ tungstenite ⇄ session loop ─▶ turn ─▶ provider
//!                                                 (chain, queue, the one turn in flight)
//! ```

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

use crate::convert::error::ClientError;
use crate::convert::streaming::{Framing, StreamConverter};
use crate::stats::ErrorClass;
use crate::turn::chain::{
    entry_from_items, extend_with_output, peek_previous, resolve_message, ChainEntry, ConnChain,
    Message,
};
use crate::turn::prepare::{absorb_output, prepare_turn};
use crate::turn::record::{record, Ending, Outcome};
use crate::turn::refs::references;
use crate::turn::reply::{usage_tokens, ReplyMode, UpstreamHead};
use crate::turn::rescue::{outcome_class, Cause, Kind, Side, MID_STREAM_CODE};
use crate::turn::route::{choose_ws_backend, no_backend, owner_of, WsRoute};
use crate::turn::stored::{keep, stored_chain};

use super::ConvertProxy;

/// Responses one connection remembers for `previous_response_id` (Codex continues the
/// latest; a fork or a retry may go back a few).
const CHAIN_ENTRIES: usize = 16;
/// Frames a turn may have waiting for the client.
const FRAME_QUEUE: usize = 256;
/// Bound of the connection's last writes (the error frame, the Close): a client that reads
/// nothing does not hold the connection open.
const CLOSE_WRITES: std::time::Duration = std::time::Duration::from_secs(5);

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

/// How a turn ended, for the connection's chain.
struct TurnEnd {
    response_id: String,
    /// The conversation after the turn (`None` when it failed: not continued).
    entry: Option<ChainEntry>,
    /// The id it continued (evicted when the turn failed).
    previous: Option<String>,
}

impl ConvertProxy {
    /// Serve a WebSocket upgrade on `session`; returns when the connection is over.
    pub(crate) async fn serve_websocket(
        &self,
        session: &mut Session,
        route: WsRoute,
    ) -> Result<bool> {
        let ws_conf = &self.config.websocket;
        if !ws_conf.enabled {
            let err = ClientError::new(
                426,
                "invalid_request_error",
                Some("websocket_disabled"),
                "WebSockets are switched off on this proxy (websocket.enabled = false): use HTTP POST.",
            );
            super::local::write_json(session, 426, &err.body_bytes(), None).await?;
            return Ok(true);
        }
        let key = match crate::turn::route::websocket_key(&session.req_header().headers) {
            Ok(k) => k,
            Err(err) => {
                super::local::write_json(session, err.status, &err.body_bytes(), None).await?;
                return Ok(true);
            }
        };
        let client = session.req_header().clone();
        let mut resp = ResponseHeader::build(101, Some(4))?;
        resp.insert_header(http::header::UPGRADE, "websocket")?;
        resp.insert_header(http::header::CONNECTION, "Upgrade")?;
        resp.insert_header(
            "sec-websocket-accept",
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
        )?;
        // permessage-deflate is declined (not echoed): Codex works either way.
        session.write_response_header(Box::new(resp), false).await?;
        // Between turns a connection may be idle for long: no read timeout on the socket.
        session.as_downstream_mut().set_read_timeout(None);

        let (ours, theirs) = tokio::io::duplex(256 * 1024);
        let cfg = WebSocketConfig::default()
            .max_message_size(Some(ws_conf.max_message_bytes))
            .max_frame_size(Some(ws_conf.max_message_bytes));
        let ws = WebSocketStream::from_raw_socket(ours, Role::Server, Some(cfg)).await;
        tracing::debug!(path = %client.uri.path(), "websocket open");
        let ((), ()) = tokio::join!(pump(session, theirs), self.ws_loop(ws, route, &client));
        tracing::debug!(path = %client.uri.path(), "websocket closed");
        Ok(true)
    }

    /// The session: read messages, run one turn at a time, write its frames.
    async fn ws_loop<S>(&self, ws: WebSocketStream<S>, route: WsRoute, client: &RequestHeader)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let conf = &self.config.websocket;
        let (mut sink, mut stream) = ws.split();
        let (tx, mut rx) = mpsc::channel::<Frame>(FRAME_QUEUE);
        let mut chain = ConnChain::new(CHAIN_ENTRIES, conf.max_connection_bytes);
        let mut queue: VecDeque<Incoming> = VecDeque::new();
        let mut queued_bytes = 0usize;
        type TurnFuture<'a> = Pin<Box<dyn Future<Output = TurnEnd> + Send + 'a>>;
        let mut turn: Option<TurnFuture<'_>> = None;
        let age_limit = tokio::time::sleep(conf.max_connection_age);
        tokio::pin!(age_limit);
        let mut aged = false;
        let mut shutdown = self.shutdown.clone();
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
                    let err = ClientError::new(
                        400,
                        "invalid_request_error",
                        Some("websocket_connection_limit_reached"),
                        format!("This WebSocket connection reached its age limit ({} minutes): open a new connection.", conf.max_connection_age.as_secs() / 60),
                    );
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
                            let err = ClientError::new(
                                400,
                                "invalid_request_error",
                                Some("invalid_message"),
                                "Binary WebSocket messages are not supported: send JSON text messages.",
                            );
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
                    if let Err(err) = self.load_stored_chain(&text, &mut chain, client).await {
                        if sink.send(Frame::text(err.ws_frame())).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    // Item references: from this connection's chain, then the store.
                    let text = match self.resolve_references(&text, &chain, client).await {
                        Ok(Some(t)) => t,
                        Ok(None) => text,
                        Err(err) => {
                            self.record_ws_rejection(route, &err);
                            if sink.send(Frame::text(err.ws_frame())).await.is_err() {
                                return;
                            }
                            continue;
                        }
                    };
                    match resolve_message(&text, &mut chain) {
                        Ok(Message::Create(r)) => {
                            turn = Some(Box::pin(self.ws_turn(*r, route, client, tx.clone())));
                        }
                        Ok(Message::Ignored(kind)) => {
                            tracing::debug!(kind = %kind, "websocket message ignored");
                        }
                        Err(err) => {
                            self.record_ws_rejection(route, &err);
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
                        if held > conf.max_connection_bytes {
                            let err = ClientError::new(
                                400,
                                "invalid_request_error",
                                Some("websocket_memory_limit_reached"),
                                format!("This WebSocket connection holds too much ({held} bytes queued and remembered; the limit is {}): the message was dropped.", conf.max_connection_bytes),
                            );
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
                        let err = ClientError::new(
                            400,
                            "invalid_request_error",
                            Some("message_too_large"),
                            format!("The WebSocket message is too large ({e}); the limit is {} bytes (websocket.max_message_bytes).", conf.max_message_bytes),
                        );
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

    /// One turn of a WebSocket connection: the same prepare, upstream, reply, rescue and
    /// record as an HTTP request; every event a text frame on `tx`.
    async fn ws_turn(
        &self,
        resolved: crate::turn::chain::Resolved,
        route: WsRoute,
        client: &RequestHeader,
        tx: mpsc::Sender<Frame>,
    ) -> TurnEnd {
        let previous = resolved.previous.clone();
        let mut o = Outcome::new(Instant::now());
        o.stream = true;
        o.model = crate::convert::sniff::sniff_model(&resolved.head);
        o.bytes_in = resolved.head.len() as u64;
        let failed = |id: String| TurnEnd {
            response_id: id,
            entry: None,
            previous: previous.clone(),
        };
        let chosen = choose_ws_backend(&self.config, route, o.model.as_deref());
        let Some((idx, backend)) = chosen.and_then(|i| self.config.backends.get(i).map(|b| (i, b)))
        else {
            let err = no_backend("");
            let _ = tx.send(Frame::text(err.ws_frame())).await;
            return failed(String::new());
        };
        o.backend = Some(idx);
        let log = self
            .config
            .log_body
            .then_some(self.config.log_body_max_bytes);
        let prepared = match prepare_turn(&resolved, idx, backend, &self.echoes, log) {
            Ok(p) => p,
            Err(err) => {
                self.record_ws(o, &err, ErrorClass::Client);
                let _ = tx.send(Frame::text(err.ws_frame())).await;
                return failed(String::new());
            }
        };
        tracing::trace!(
            incremental = prepared.incremental,
            new_items = resolved.new_items,
            "websocket turn prepared"
        );
        let next_chat = prepared.next;
        let prepared = prepared.prepared;
        let rctx = prepared.rctx;
        let catalog = rctx.catalog.clone();
        let response_id = rctx.response_id.clone();
        if !resolved.generate {
            // Codex's warm-up: a response without the provider; its input is the base of
            // the next turn.
            let mut conv = StreamConverter::new(rctx, Framing::WebSocket);
            conv.start();
            conv.finish_quiet();
            let out = conv.take_output();
            send_lines(&tx, &out).await;
            let mut entry = resolved.entry;
            entry.bytes += next_chat.settled_bytes();
            entry.chat = Some(std::sync::Arc::new(next_chat));
            return TurnEnd {
                response_id,
                entry: Some(entry),
                previous,
            };
        }
        o.response_id = Some(response_id.clone());
        let trace = ["traceparent", "tracestate"].map(|n| {
            client
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let trace = match trace {
            [Some(tp), ts] => Some((tp, ts)),
            _ => None,
        };
        let sent = self
            .send_chat(idx, client, Bytes::from(prepared.chat), trace)
            .await;
        let (mut up, idx, peer) = match sent {
            Ok(s) => s,
            Err(f) => {
                let err = &f.error;
                tracing::warn!(backend = %backend.name, status = err.status, "{}", err.message);
                self.record_ws(o, err, f.class());
                let _ = tx.send(Frame::text(err.ws_frame())).await;
                return failed(response_id);
            }
        };
        o.backend = Some(idx);
        o.first_byte = Some(o.start.elapsed());
        let Some(backend) = self.config.backends.get(idx) else {
            return failed(response_id);
        };
        let head = up.response_header().map(|h| {
            let get = |n: http::header::HeaderName| {
                h.headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            (
                h.status.as_u16(),
                get(http::header::CONTENT_TYPE)
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                get(http::header::RETRY_AFTER),
            )
        });
        let Some((upstream_status, content_type, retry_after)) = head else {
            return failed(response_id);
        };
        o.upstream_status = upstream_status;
        let mut mode = ReplyMode::on_head(
            rctx,
            &UpstreamHead {
                status: upstream_status,
                content_type: &content_type,
                retry_after,
            },
            Framing::WebSocket,
        );
        o.status = mode.client_status();
        let clean_end = self.relay(&mut up, &mut mode, &mut o, backend, &tx).await;
        let conv = mode.converter();
        if let Some(code) = conv.and_then(|c| c.failure_code()) {
            o.error_code = Some(code.to_owned());
        }
        let ok = clean_end && o.error_code.is_none() && (200..300).contains(&upstream_status);
        if ok && resolved.store == Some(true) {
            if let Some(json) = conv.and_then(|c| c.final_json()) {
                let n = resolved.entry.items.len();
                let input = resolved.entry.items[n - resolved.new_items.min(n)..]
                    .iter()
                    .filter_map(|i| serde_json::value::RawValue::from_string(i.to_string()).ok())
                    .collect();
                let pending = crate::turn::stored::Pending {
                    owner: owner_of(&self.config, &client.headers),
                    previous: previous.clone(),
                    input,
                };
                keep(self.store.as_ref(), &response_id, json, pending);
            }
        }
        let entry = if ok {
            conv.and_then(|c| c.final_json()).map(|json| {
                let mut e = extend_with_output(&resolved.entry, json);
                if let Some(p) = absorb_output(&next_chat, json, backend, &catalog) {
                    e.bytes += p.settled_bytes();
                    e.chat = Some(std::sync::Arc::new(p));
                }
                e
            })
        } else {
            None
        };
        let class = outcome_class(o.status, o.upstream_status, o.error_code.is_some());
        let end = Ending {
            usage: usage_tokens(mode.usage()),
            class,
            ..WS_ENDING
        };
        record(&self.config, &self.stats, &o, &end, None, None);
        if clean_end {
            self.release(up, &peer).await;
        }
        TurnEnd {
            response_id,
            entry,
            previous,
        }
    }

    /// The provider's reply, converted as it arrives (turn::reply), each event a frame on
    /// `tx`, within the backend's total timeout. `true` when the body ended cleanly.
    async fn relay(
        &self,
        up: &mut pingora::protocols::http::client::HttpSession,
        mode: &mut ReplyMode,
        o: &mut Outcome,
        backend: &crate::config::Backend,
        tx: &mpsc::Sender<Frame>,
    ) -> bool {
        let total = backend.timeouts.total;
        loop {
            let remaining = total.saturating_sub(o.start.elapsed());
            let read = tokio::time::timeout(remaining, up.read_response_body()).await;
            let (chunk, end) = match read {
                Ok(Ok(Some(b))) => (Some(b), false),
                Ok(Ok(None)) => (None, true),
                Ok(Err(e)) => {
                    self.fail_ws(o, mode, super::cause_of(&e), backend, tx)
                        .await;
                    return false;
                }
                Err(_) => {
                    let cause = Cause::new(Kind::TotalTimeout, Side::Upstream, "total");
                    self.fail_ws(o, mode, cause, backend, tx).await;
                    return false;
                }
            };
            let pushed = mode.push(chunk.as_deref(), end, &backend.name, &backend.api_key);
            if o.ttft.is_none() && mode.has_content(end) {
                o.ttft = Some(o.start.elapsed());
            }
            if let Some(err) = &pushed.error {
                o.error_code = err.code.clone();
                o.status = err.status;
            }
            if let Some(out) = pushed.out {
                o.bytes_out += out.len() as u64;
                if let Some(err) = pushed.error {
                    let _ = tx.send(Frame::text(err.ws_frame())).await;
                } else {
                    self.send_reply(tx, mode, out).await;
                }
            }
            if end {
                return true;
            }
        }
    }

    /// The provider's reply broke mid-turn (turn::rescue): the reply ends with
    /// `response.failed` (or the error the client is owed).
    async fn fail_ws(
        &self,
        o: &mut Outcome,
        mode: &mut ReplyMode,
        cause: Cause,
        backend: &crate::config::Backend,
        tx: &mpsc::Sender<Frame>,
    ) {
        let message = cause.mid_stream(&backend.name);
        tracing::warn!(backend = %backend.name, "stream failed: {message}");
        o.error_code = Some(MID_STREAM_CODE.to_owned());
        if let Some(out) = mode.fail(MID_STREAM_CODE, &message, &backend.name) {
            o.bytes_out += out.len() as u64;
            self.send_reply(tx, mode, out).await;
        }
    }

    /// When `text` continues a response this connection does not know, put its chain from
    /// the response store into `chain` (then it resolves like a connection-local one).
    async fn load_stored_chain(
        &self,
        text: &str,
        chain: &mut ConnChain,
        client: &RequestHeader,
    ) -> Result<(), ClientError> {
        let (Some(store), Some(prev)) = (self.store.as_deref(), peek_previous(text)) else {
            return Ok(());
        };
        if chain.get(&prev).is_some() {
            return Ok(());
        }
        let owner = owner_of(&self.config, &client.headers);
        if let Some(items) = stored_chain(store, &prev, owner.as_deref()).await? {
            chain.insert(prev, entry_from_items(items));
        }
        Ok(())
    }

    /// `text` with its `item_reference`s replaced by the items they name: items of this
    /// connection's chain first (made here, stored or not), then the response store's (of
    /// this client's token). `None` when it has none; a 400 for one found nowhere.
    async fn resolve_references(
        &self,
        text: &str,
        chain: &ConnChain,
        client: &RequestHeader,
    ) -> Result<Option<String>, ClientError> {
        let Some(mut refs) = references(text.as_bytes()) else {
            return Ok(None);
        };
        refs.resolve_with(|id| chain.find_item(id));
        if let Some(store) = self.store.as_deref() {
            let owner = owner_of(&self.config, &client.headers);
            refs.resolve_stored(store, owner.as_deref()).await?;
        }
        let body = refs.into_body()?;
        // Pieces of valid UTF-8 put together.
        Ok(Some(String::from_utf8(body).unwrap_or_else(|e| {
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        })))
    }

    /// A reply's bytes as frames: event lines one frame each; a whole JSON body as one.
    async fn send_reply(&self, tx: &mpsc::Sender<Frame>, mode: &ReplyMode, out: Bytes) {
        if mode.is_event_stream() {
            send_lines(tx, &out).await;
        } else if !out.is_empty() {
            let _ = tx
                .send(Frame::text(String::from_utf8_lossy(&out).into_owned()))
                .await;
        }
    }

    /// A message refused before it reached a backend.
    fn record_ws_rejection(&self, route: WsRoute, err: &ClientError) {
        let mut o = Outcome::new(Instant::now());
        o.stream = true;
        o.backend = route.prefix_backend.or(self.config.default_backend);
        self.record_ws(o, err, ErrorClass::Client);
    }

    /// The record of a turn that ended in `err` before any reply.
    fn record_ws(&self, mut o: Outcome, err: &ClientError, class: ErrorClass) {
        o.status = err.status;
        o.error_code = err.code.clone();
        let end = Ending {
            class: Some(class),
            ..WS_ENDING
        };
        record(&self.config, &self.stats, &o, &end, None, None);
    }
}

/// A WebSocket turn's access line: `WS response.create`.
const WS_ENDING: Ending<'static> = Ending {
    method: "WS",
    path: "response.create",
    usage: (0, 0, 0, 0),
    class: None,
    error: None,
    local: false,
};

/// Each `\n`-terminated line of `out` as one text frame.
async fn send_lines(tx: &mpsc::Sender<Frame>, out: &[u8]) {
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(line).into_owned();
        if tx.send(Frame::text(text)).await.is_err() {
            return;
        }
    }
}

/// Move bytes between Pingora's upgraded session and the WebSocket until the WebSocket side
/// is done and everything it wrote has reached the client (or the client can take no more).
/// The two directions never wait on each other: bytes from the client that the WebSocket
/// side has not taken yet are held here (one read's worth) while its frames keep flowing
/// out — otherwise a client sending a burst and the session answering it would each wait
/// for the other to read.
///
/// Every way out goes through the outbound drain: when the WebSocket side stops taking the
/// client's bytes (it refused an oversized message, it answered a Close) or the client stops
/// sending, the client's side is let go and the frames still queued for the client (the
/// error frame, the Close) are written out up to the end of the WebSocket side's stream —
/// issue #18: leaving at the failed inbound write lost them.
async fn pump(session: &mut Session, io: tokio::io::DuplexStream) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut buf = vec![0u8; 32 * 1024];
    let mut inbound = Bytes::new();
    // No more bytes from the client are read (it ended them, or the WebSocket side is done).
    let mut client_done = false;
    loop {
        tokio::select! {
            r = session.read_request_body(), if inbound.is_empty() && !client_done => match r {
                Ok(Some(b)) => inbound = b,
                Ok(None) | Err(_) => {
                    // The WebSocket side sees the end of the client's bytes and finishes.
                    client_done = true;
                    let _ = wr.shutdown().await;
                }
            },
            w = wr.write(&inbound), if !inbound.is_empty() => match w {
                Ok(0) | Err(_) => {
                    // The WebSocket side takes no more: what the client still sends is
                    // dropped, what the WebSocket side wrote still goes out.
                    inbound = Bytes::new();
                    client_done = true;
                }
                Ok(n) => {
                    let rest = inbound.split_off(n);
                    inbound = rest;
                }
            },
            n = rd.read(&mut buf) => match n {
                // The WebSocket side is done and all it wrote has been passed on.
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let out = Bytes::copy_from_slice(&buf[..n]);
                    if session.write_response_body(Some(out), false).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = wr.shutdown().await;
}
