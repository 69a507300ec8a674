//! The upstream's Pingora side: the peer of a backend, the provider's headers on a Pingora
//! request, and — for turns that do not ride Pingora's proxy flow (WebSocket messages) —
//! sending the Chat request through the connector, with the retries, backoff and failover
//! `turn::upstream::Attempts` decides.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::client::HttpSession;
use pingora::{Error, ErrorType, Result};

use crate::config::Backend;
use crate::convert::error::ClientError;
use crate::live::Generation;
use crate::stats::Stats;
use crate::turn::rescue::Failure;
use crate::turn::upstream::{
    chat_path, keeps_client_header, provider_headers, retry_after, retryable_status, Attempts, Next,
};

use super::ConvertProxy;

/// The provider's headers on `req`: only `user-agent` and `accept-language` of the client's
/// are kept; Host, the backend's key, JSON in, SSE or JSON out; `chunked` when the body
/// goes out in pieces (else `content_length`).
pub fn set_headers(
    req: &mut RequestHeader,
    backend: &Backend,
    content_length: Option<usize>,
) -> Result<()> {
    let names: Vec<http::HeaderName> = req.headers.keys().cloned().collect();
    for name in names.iter().filter(|n| !keeps_client_header(n.as_str())) {
        req.remove_header(name);
    }
    for (name, value) in provider_headers(backend) {
        let mut v = http::HeaderValue::from_str(&value).map_err(|_| {
            Error::explain(
                ErrorType::InternalError,
                "a backend value (host or api_key) is not a valid header value",
            )
        })?;
        v.set_sensitive(name == http::header::AUTHORIZATION);
        req.insert_header(name, v)?;
    }
    match content_length {
        Some(n) => req.insert_header(http::header::CONTENT_LENGTH, n.to_string())?,
        None => req.insert_header(http::header::TRANSFER_ENCODING, "chunked")?,
    }
    Ok(())
}

impl ConvertProxy {
    /// The peer for a backend: DNS resolved asynchronously, TLS + SNI, timeouts.
    pub(crate) async fn peer_for(&self, backend: &Backend) -> Result<HttpPeer, ClientError> {
        let addr = self
            .dns
            .resolve(&backend.host, backend.port)
            .await
            .map_err(|e| {
                ClientError::new(
                    502,
                    "server_error",
                    Some("server_error"),
                    format!(
                        "Cannot resolve the host of the {} backend ({}): {e}",
                        backend.name, backend.host
                    ),
                )
            })?;
        let mut peer = HttpPeer::new(addr, backend.tls, backend.host.clone());
        let t = &backend.timeouts;
        peer.options.connection_timeout = Some(t.connect);
        peer.options.total_connection_timeout = Some(t.connect + Duration::from_secs(5));
        // read_timeout applies to every read: the wait for headers and each gap in a stream.
        peer.options.read_timeout = Some(t.idle.max(t.first_byte));
        peer.options.write_timeout = Some(Duration::from_secs(60));
        peer.options.idle_timeout = Some(Duration::from_secs(30));
        Ok(peer)
    }

    /// Send a Chat request to backend `first`, retrying a failed connection with backoff and
    /// failing over to its `fallback` backends (never after the request was sent), as
    /// [`Attempts`] decides. Returns the session with the response header read, the backend
    /// that answered, and its peer.
    pub(crate) async fn send_chat(
        &self,
        gen: &Generation,
        first: usize,
        client: &http::HeaderMap,
        body: Bytes,
        trace: &[(&'static str, http::HeaderValue)],
    ) -> Result<(HttpSession, usize, HttpPeer), Failure> {
        let mut attempts = Attempts::new(first);
        // Kept-alive connections the provider had closed (found on reuse, before any answer):
        // the request goes again on another one, as over HTTP (`error_while_proxy`).
        let mut stale = 0;
        loop {
            let idx = attempts.backend();
            let Some(backend) = gen.config.backends.get(idx) else {
                return Err(Failure::refused(internal("no backend chosen")));
            };
            let breakers = gen.stats.breakers();
            if !breakers.allow(idx, std::time::Instant::now()) {
                if let Some(to) = attempts.next_fallback(&gen.config) {
                    tracing::warn!(backend = %backend.name, fallback = gen.backend_name(to), "circuit open: the backend is out of rotation, failing over");
                    attempts.skip_to(to);
                    continue;
                }
            }
            if let Some(d) = attempts.delay() {
                tokio::time::sleep(d).await;
            }
            let peer = self.peer_for(backend).await.map_err(Failure::refused)?;
            let e = match self.connector.get_http_session(&peer).await {
                Ok((mut session, reused)) => {
                    // The connector leaves a session's timeouts unset (Pingora's proxy flow
                    // sets them per request): the head within `first_byte_ms`, then each
                    // read of the body as on Pingora's flow (the relay's own idle timer
                    // ends a stalled stream at `idle_ms`).
                    let t = &backend.timeouts;
                    session.set_write_timeout(peer.options.write_timeout);
                    session.set_read_timeout(Some(t.first_byte));
                    match send_on(&mut session, backend, client, body.clone(), trace).await {
                        Ok(()) => {
                            session.set_read_timeout(peer.options.read_timeout);
                            let head = session.response_header();
                            let status = head.map_or(0, |h| h.status.as_u16());
                            if !retryable_status(status) {
                                breakers.success(idx);
                                return Ok((session, idx, peer));
                            }
                            failed(&gen.stats, idx, backend);
                            let wait = head
                                .and_then(|h| h.headers.get(http::header::RETRY_AFTER))
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| retry_after(v, crate::store::now_secs()));
                            match attempts.refused(&gen.config, status, wait) {
                                // No attempt left: the provider's answer is the client's.
                                Next::GiveUp => return Ok((session, idx, peer)),
                                next => {
                                    // Nothing of it went to the client: another attempt (this
                                    // connection, its body unread, is closed).
                                    tracing::warn!(backend = %backend.name, status, next = ?next, "the provider refused before the first byte: trying again");
                                    continue;
                                }
                            }
                        }
                        Err(mut e) => {
                            e.retry.decide_reuse(reused);
                            if e.retry() && stale < STALE_RETRIES {
                                stale += 1;
                                tracing::debug!(backend = %backend.name, "a reused upstream connection was closed before the answer: sending again");
                                continue;
                            }
                            // No head in time: another attempt, as for a refusal.
                            if *e.etype() == ErrorType::ReadTimedout {
                                failed(&gen.stats, idx, backend);
                                let next = attempts.refused(&gen.config, 0, None);
                                if next != Next::GiveUp {
                                    tracing::warn!(backend = %backend.name, next = ?next, "the provider gave no answer in time: trying again");
                                    continue;
                                }
                            }
                            // The provider's side, as Pingora marks it over HTTP.
                            let e = e.into_up();
                            return Err(Failure::caused(super::cause_of(&e), &backend.name));
                        }
                    }
                }
                Err(e) => e,
            };
            let why = e.etype().as_str();
            failed(&gen.stats, idx, backend);
            match attempts.connect_failed(&gen.config) {
                Next::Retry(attempt) => {
                    tracing::warn!(backend = %backend.name, attempt, "connect failed ({why}), retrying");
                }
                Next::Failover { to } => {
                    let to = gen.backend_name(to);
                    tracing::warn!(backend = %backend.name, fallback = to, "connect failed ({why}), failing over");
                }
                Next::GiveUp => return Err(Failure::caused(super::cause_of(&e), &backend.name)),
            }
        }
    }

    /// Give a finished upstream session back for reuse.
    pub(crate) async fn release(&self, session: HttpSession, peer: &HttpPeer) {
        self.connector
            .release_http_session(session, peer, Some(Duration::from_secs(30)))
            .await;
    }
}

/// Backend `idx` failed before its first byte: counted by its circuit.
pub(super) fn failed(stats: &Stats, idx: usize, backend: &Backend) {
    let c = &backend.circuit;
    if stats.breakers().failure(idx, std::time::Instant::now(), c) {
        tracing::warn!(backend = %backend.name, failures = c.trip_after, cool_down_s = c.cool_down.as_secs_f64(), "circuit open: the backend keeps failing, out of rotation for a cool-down");
    }
}

/// Stale kept-alive connections one turn may come across before it fails.
const STALE_RETRIES: u32 = 3;

async fn send_on(
    session: &mut HttpSession,
    backend: &Backend,
    client: &http::HeaderMap,
    body: Bytes,
    trace: &[(&'static str, http::HeaderValue)],
) -> Result<()> {
    let mut req = RequestHeader::build(http::Method::POST, chat_path(backend).as_bytes(), None)?;
    // The client's headers the provider gets: the same policy as over HTTP.
    for (name, v) in client.iter() {
        if keeps_client_header(name.as_str()) {
            req.append_header(name.clone(), v.clone())?;
        }
    }
    set_headers(&mut req, backend, Some(body.len()))?;
    for (name, value) in trace {
        req.insert_header(*name, value.clone())?;
    }
    session.write_request_header(Box::new(req)).await?;
    session.write_request_body(body, true).await?;
    session.finish_request_body().await?;
    session.read_response_header().await?;
    Ok(())
}

fn internal(what: &str) -> ClientError {
    ClientError::new(
        500,
        "server_error",
        Some("server_error"),
        format!("Internal proxy error: {what}."),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn headers_keep_only_what_the_provider_needs() {
        let cfg = crate::config::Config::from_json_str(
            r#"{"backends": [{"name": "b", "url": "https://api.example.com/v4", "api_key": "sk-key-123"}]}"#,
            &|_| None,
        )
        .unwrap();
        let b = &cfg.backends[0];
        let mut req = RequestHeader::build(http::Method::POST, b"/v1/responses", None).unwrap();
        for (k, v) in [
            ("authorization", "Bearer client-token"),
            ("user-agent", "codex"),
            ("accept-encoding", "zstd"),
            ("x-codex-turn-metadata", "{}"),
        ] {
            req.insert_header(k, v).unwrap();
        }
        set_headers(&mut req, b, Some(12)).unwrap();
        let h = &req.headers;
        assert_eq!(h["authorization"], "Bearer sk-key-123");
        assert!(h["authorization"].is_sensitive());
        assert_eq!(h["host"], "api.example.com");
        assert_eq!(h["user-agent"], "codex");
        assert_eq!(h["content-length"], "12");
        assert!(h.get("accept-encoding").is_none() && h.get("x-codex-turn-metadata").is_none());
    }
}
