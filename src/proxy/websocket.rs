//! The WebSocket transport (Codex's and Open Responses' WebSocket mode).
//!
//! Pingora hands an upgraded connection over as a byte tunnel, so the WebSocket is terminated
//! here, in `request_filter`: the 101 goes out, then the upgraded bytes are pumped between
//! Pingora's session and tungstenite (the framing: RFC 6455, pings, fragments, close). What
//! happens on the connection (`turn::session`) and in each of its turns (`turn::socket`) is
//! decided in the turn layer; this module gives it the bytes and Pingora's connector as its
//! [`Upstream`].
//!
//! ```text
//!  client ⇄ Pingora session ⇄ pump ⇄ duplex ⇄ tungstenite ⇄ turn::session ─▶ turn::socket
//!                                                                             ⇄ Pingora (provider)
//! ```

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::client::HttpSession;
use pingora::proxy::Session;
use pingora::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::convert::error::ClientError;
use crate::live::Generation;
use crate::turn::rescue::{Cause, Failure};
use crate::turn::route::WsRoute;
use crate::turn::session::{Limits, PIPE_BUFFER};
use crate::turn::socket::{Reply, SocketTurns, Upstream};

use super::ConvertProxy;

/// Pingora's connector as a WebSocket turn's way to the provider, with the backends of the
/// configuration the turn runs on.
pub(super) struct Pingora<'p> {
    pub(super) proxy: &'p ConvertProxy,
    pub(super) gen: &'p Generation,
}

impl<'p> Upstream for Pingora<'p> {
    type Reply = PingoraReply<'p>;

    async fn send(
        &self,
        first: usize,
        client: &http::HeaderMap,
        chat: Bytes,
        trace: &[(&'static str, http::HeaderValue)],
    ) -> std::result::Result<(Self::Reply, usize), Failure> {
        let proxy = self.proxy;
        let (session, idx, peer) = proxy
            .send_chat(self.gen, first, client, chat, trace)
            .await?;
        Ok((
            PingoraReply {
                proxy,
                session,
                peer,
            },
            idx,
        ))
    }
}

/// The provider's reply on a Pingora upstream session.
pub(super) struct PingoraReply<'p> {
    proxy: &'p ConvertProxy,
    session: HttpSession,
    peer: HttpPeer,
}

impl Reply for PingoraReply<'_> {
    fn head(&self) -> (u16, &http::HeaderMap) {
        match self.session.response_header() {
            Some(h) => (h.status.as_u16(), &h.headers),
            None => (0, &EMPTY),
        }
    }

    async fn read(&mut self) -> std::result::Result<Option<Bytes>, Cause> {
        self.session
            .read_response_body()
            .await
            .map_err(|e| super::cause_of(&e))
    }

    async fn release(self) {
        self.proxy.release(self.session, &self.peer).await;
    }
}

/// The head of a session whose head was not read (not reached: `send_chat` reads it).
static EMPTY: std::sync::LazyLock<http::HeaderMap> = std::sync::LazyLock::new(http::HeaderMap::new);

impl ConvertProxy {
    /// Serve a WebSocket upgrade on `session`; returns when the connection is over.
    /// The session keeps the configuration `gen` it opened on to its end (a reload applies
    /// to the sockets opened after it).
    pub(crate) async fn serve_websocket(
        &self,
        gen: &Generation,
        session: &mut Session,
        route: WsRoute,
    ) -> Result<bool> {
        let ws_conf = &gen.config.websocket;
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

        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        let limits = Limits::from(ws_conf);
        let ws =
            WebSocketStream::from_raw_socket(ours, Role::Server, Some(limits.tungstenite())).await;
        tracing::debug!(path = %client.uri.path(), "websocket open");
        let _open = gen.stats.open(crate::stats::Gauge::WebSocketSessions);
        let env = self.env(gen);
        let turns = SocketTurns {
            env,
            upstream: &Pingora { proxy: self, gen },
            route,
            client: &client.headers,
        };
        let session_loop = crate::turn::session::run(&turns, ws, &limits, self.shutdown.clone());
        let ((), ()) = tokio::join!(pump(session, theirs), session_loop);
        tracing::debug!(path = %client.uri.path(), "websocket closed");
        Ok(true)
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
    let mut buf = vec![0u8; PIPE_BUFFER];
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
