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
use crate::turn::prepare::{absorb_output, prepare_turn};
use crate::turn::record::{record, Ending, Outcome};
use crate::turn::refs::references;
use crate::turn::reply::{usage_tokens, ReplyMode, UpstreamHead};
use crate::turn::rescue::{outcome_class, Cause, Kind, Side, MID_STREAM_CODE};
use crate::turn::route::{choose_ws_backend, no_backend, owner_of, WsRoute};
use crate::turn::session::{Limits, TurnEnd, TurnFuture, Turns};
use crate::turn::stored::{keep, stored_chain};

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
