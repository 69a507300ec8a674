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
//!                                (turn::session: chain, queue, the one turn in flight)
//! ```

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::WebSocketStream;

use crate::convert::error::ClientError;
use crate::convert::streaming::{Framing, StreamConverter};
use crate::stats::ErrorClass;
use crate::turn::chain::{
    entry_from_items, extend_with_output, peek_previous, ConnChain, Resolved,
};
use crate::turn::exchange::Exchange;
use crate::turn::prepare::{absorb_output, prepare_turn};
use crate::turn::record::{record, Ending, Outcome};
use crate::turn::refs::references;
use crate::turn::reply::ReplyMode;
use crate::turn::rescue::Cause;
use crate::turn::route::{choose_backend, no_backend, owner_of, WsRoute};
use crate::turn::session::{Limits, TurnEnd, TurnFuture, Turns};
use crate::turn::stored::{pending_for, stored_chain};

use super::upstream::trace_headers;
use super::ConvertProxy;

/// The session's side of the proxy: a turn, the store, the records, for one connection.
struct WsTurns<'a> {
    proxy: &'a ConvertProxy,
    route: WsRoute,
    client: &'a RequestHeader,
}

impl Turns for WsTurns<'_> {
    fn load_stored_chain<'a>(
        &'a self,
        text: &'a str,
        chain: &'a mut ConnChain,
    ) -> impl Future<Output = Result<(), ClientError>> + Send + 'a {
        self.proxy.load_stored_chain(text, chain, self.client)
    }

    fn resolve_references<'a>(
        &'a self,
        text: &'a str,
        chain: &'a ConnChain,
    ) -> impl Future<Output = Result<Option<String>, ClientError>> + Send + 'a {
        self.proxy.resolve_references(text, chain, self.client)
    }

    fn reject(&self, err: &ClientError) {
        self.proxy.record_ws_rejection(self.route, err);
    }

    fn turn(&self, resolved: Resolved, tx: mpsc::Sender<Frame>) -> TurnFuture<'_> {
        Box::pin(self.proxy.ws_turn(resolved, self.route, self.client, tx))
    }
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
        let limits = Limits::from(ws_conf);
        let ws =
            WebSocketStream::from_raw_socket(ours, Role::Server, Some(limits.tungstenite())).await;
        tracing::debug!(path = %client.uri.path(), "websocket open");
        let turns = WsTurns {
            proxy: self,
            route,
            client: &client,
        };
        let session_loop = crate::turn::session::run(&turns, ws, &limits, self.shutdown.clone());
        let ((), ()) = tokio::join!(pump(session, theirs), session_loop);
        tracing::debug!(path = %client.uri.path(), "websocket closed");
        Ok(true)
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
        let chosen = choose_backend(&self.config, route.prefix_backend, o.model.as_deref());
        let Some((idx, backend)) = chosen.and_then(|i| self.config.backends.get(i).map(|b| (i, b)))
        else {
            let err = no_backend("");
            let _ = tx.send(Frame::text(err.ws_frame())).await;
            return failed(String::new());
        };
        o.backend = Some(idx);
        let log = self.config.body_log_limit();
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
        // From here on the same exchange as an HTTP turn (turn::exchange).
        let mut x = Exchange::new(o);
        if let Some(t) = &self.telemetry {
            let header = |n: &str| client.headers.get(n).and_then(|v| v.to_str().ok());
            let start = x.outcome.start;
            let span = t.start_request(
                header("traceparent"),
                header("tracestate"),
                WS_ENDING.method,
                WS_ENDING.path,
                start,
            );
            x.set_span(Some(span));
        }
        x.log_body(log);
        let n = resolved.entry.items.len();
        let own = &resolved.entry.items[n - resolved.new_items.min(n)..];
        let pending = pending_for(
            resolved.store,
            owner_of(&self.config, &client.headers),
            previous.clone(),
            own.iter()
                .filter_map(|i| serde_json::value::RawValue::from_string(i.to_string()).ok())
                .collect(),
        );
        x.prepared(rctx, pending, None);
        x.outcome.model = prepared.model.or(x.outcome.model.take());
        let trace = trace_headers(
            x.span_mut(),
            &client.headers,
            backend,
            &crate::turn::upstream::chat_path(backend),
        );
        let sent = self
            .send_chat(idx, client, Bytes::from(prepared.chat), &trace)
            .await;
        let (mut up, idx, peer) = match sent {
            Ok(s) => s,
            Err(f) => {
                let err = &f.error;
                tracing::warn!(backend = %backend.name, status = err.status, "{}", err.message);
                x.refused(err, Some(f.cause));
                x.finish(&self.config, &self.stats, WS_ENDING);
                let _ = tx.send(Frame::text(err.ws_frame())).await;
                return failed(response_id);
            }
        };
        x.outcome.backend = Some(idx);
        let Some(backend) = self.config.backends.get(idx) else {
            return failed(response_id);
        };
        let head = up
            .response_header()
            .map(|h| (h.status.as_u16(), h.headers.clone()));
        let Some((status, headers)) = head else {
            return failed(response_id);
        };
        if x.on_head(status, &headers, Framing::WebSocket).is_none() {
            return failed(response_id);
        }
        let clean_end = self.relay(&mut up, &mut x, backend, &tx).await;
        let ok = clean_end && x.clean();
        let entry = if ok {
            x.final_json().map(|json| {
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
        x.finish(&self.config, &self.stats, WS_ENDING);
        if clean_end {
            self.release(up, &peer).await;
        }
        TurnEnd {
            response_id,
            entry,
            previous,
        }
    }

    /// The provider's reply, converted as it arrives (turn::exchange), each event a frame
    /// on `tx`, within the backend's total timeout. `true` when the body ended cleanly.
    async fn relay(
        &self,
        up: &mut pingora::protocols::http::client::HttpSession,
        x: &mut Exchange,
        backend: &crate::config::Backend,
        tx: &mpsc::Sender<Frame>,
    ) -> bool {
        let total = backend.timeouts.total;
        loop {
            let remaining = total.saturating_sub(x.outcome.start.elapsed());
            let read = tokio::time::timeout(remaining, up.read_response_body()).await;
            let (chunk, end) = match read {
                Ok(Ok(Some(b))) => (Some(b), false),
                Ok(Ok(None)) => (None, true),
                Ok(Err(e)) => {
                    self.fail_ws(x, super::cause_of(&e), backend, tx).await;
                    return false;
                }
                Err(_) => {
                    self.fail_ws(x, Cause::total_timeout(), backend, tx).await;
                    return false;
                }
            };
            let pushed = x.push(self.store.as_ref(), chunk.as_deref(), end, backend);
            if let Some(out) = pushed.out {
                match pushed.error {
                    Some(err) => {
                        let _ = tx.send(Frame::text(err.ws_frame())).await;
                    }
                    None => self.send_reply(tx, x.mode(), out).await,
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
        x: &mut Exchange,
        cause: Cause,
        backend: &crate::config::Backend,
        tx: &mpsc::Sender<Frame>,
    ) {
        if let Some(out) = x.fail(cause, &backend.name) {
            self.send_reply(tx, x.mode(), out).await;
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
    async fn send_reply(&self, tx: &mpsc::Sender<Frame>, mode: Option<&ReplyMode>, out: Bytes) {
        if mode.is_some_and(ReplyMode::is_event_stream) {
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
