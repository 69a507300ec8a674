//! The upstream: the peer of a backend, the headers the provider gets, and — for turns that
//! do not ride Pingora's proxy flow (WebSocket messages) — sending the Chat request with
//! connect retries, backoff and failover, as plain functions.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::client::HttpSession;
use pingora::{Error, ErrorType, Result};

use crate::config::Backend;
use crate::convert::error::ClientError;

use super::ConvertProxy;

/// `{base path}/chat/completions`.
pub fn chat_path(backend: &Backend) -> String {
    format!(
        "{}/chat/completions",
        backend.url.path().trim_end_matches('/')
    )
}

/// The wait before connection attempt `attempt` (1-based): 50 ms, 100 ms, 200 ms, … ≤ 500 ms.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(4)).min(Duration::from_millis(500))
}

/// The provider's headers on `req`: only `user-agent` and `accept-language` of the client's
/// are kept; Host, the backend's key, JSON in, SSE or JSON out; `chunked` when the body
/// goes out in pieces (else `content_length`).
pub fn set_headers(
    req: &mut RequestHeader,
    backend: &Backend,
    content_length: Option<usize>,
) -> Result<()> {
    let names: Vec<http::HeaderName> = req.headers.keys().cloned().collect();
    for name in names {
        if !matches!(name.as_str(), "user-agent" | "accept-language") {
            req.remove_header(&name);
        }
    }
    let host = match (backend.tls, backend.port) {
        (true, 443) | (false, 80) => backend.host.clone(),
        (_, port) => format!("{}:{port}", backend.host),
    };
    req.insert_header(http::header::HOST, host)?;
    if !backend.api_key.is_empty() {
        let mut v =
            http::HeaderValue::from_str(&format!("Bearer {}", backend.api_key)).map_err(|_| {
                Error::explain(
                    ErrorType::InternalError,
                    "api_key is not a valid header value",
                )
            })?;
        v.set_sensitive(true);
        req.insert_header(http::header::AUTHORIZATION, v)?;
    }
    req.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    req.insert_header(http::header::ACCEPT, "text/event-stream, application/json")?;
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
    /// failing over to its `fallback` backends (never after the request was sent). Returns
    /// the session with the response header read, the backend that answered, and its peer.
    pub(crate) async fn send_chat(
        &self,
        first: usize,
        client: &RequestHeader,
        body: Bytes,
        traceparent: Option<(String, Option<String>)>,
    ) -> Result<(HttpSession, usize, HttpPeer), ClientError> {
        let mut idx = first;
        let mut tried: Vec<usize> = Vec::new();
        let mut attempts = 0u32;
        loop {
            let Some(backend) = self.config.backends.get(idx) else {
                return Err(internal("no backend chosen"));
            };
            if attempts > 0 {
                tokio::time::sleep(backoff(attempts)).await;
            }
            let peer = self.peer_for(backend).await?;
            match self.connector.get_http_session(&peer).await {
                Ok((mut session, _reused)) => {
                    let sent = send_on(&mut session, backend, client, body.clone(), &traceparent)
                        .await
                        .map_err(|e| upstream_error(&e, &backend.name));
                    return sent.map(|()| (session, idx, peer));
                }
                Err(e) => {
                    attempts += 1;
                    if attempts <= backend.retries {
                        tracing::warn!(backend = %backend.name, attempt = attempts, "connect failed ({}), retrying", e.etype().as_str());
                        continue;
                    }
                    tried.push(idx);
                    let next = backend
                        .fallback
                        .iter()
                        .copied()
                        .find(|i| !tried.contains(i));
                    match next {
                        Some(n) => {
                            let to = self
                                .config
                                .backends
                                .get(n)
                                .map(|b| b.name.as_str())
                                .unwrap_or("?");
                            tracing::warn!(backend = %backend.name, fallback = to, "connect failed ({}), failing over", e.etype().as_str());
                            idx = n;
                            attempts = 0;
                        }
                        None => return Err(upstream_error(&e, &backend.name)),
                    }
                }
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

async fn send_on(
    session: &mut HttpSession,
    backend: &Backend,
    client: &RequestHeader,
    body: Bytes,
    traceparent: &Option<(String, Option<String>)>,
) -> Result<()> {
    let mut req = RequestHeader::build(http::Method::POST, chat_path(backend).as_bytes(), None)?;
    for name in ["user-agent", "accept-language"] {
        if let Some(v) = client.headers.get(name) {
            req.insert_header(name, v.clone())?;
        }
    }
    set_headers(&mut req, backend, Some(body.len()))?;
    if let Some((tp, ts)) = traceparent {
        req.insert_header("traceparent", tp.as_str())?;
        if let Some(ts) = ts {
            req.insert_header("tracestate", ts.as_str())?;
        }
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

/// A Pingora error before any response (on the way to the provider or back) → the
/// client's error.
pub fn upstream_error(e: &Error, backend: &str) -> ClientError {
    use ErrorType::*;
    match e.etype() {
        ConnectTimedout => ClientError::new(
            504,
            "server_error",
            Some("timeout"),
            format!("Timed out connecting to the {backend} backend."),
        ),
        ReadTimedout => ClientError::new(
            504,
            "server_error",
            Some("timeout"),
            format!("The {backend} backend did not answer in time."),
        ),
        ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure
        | TLSHandshakeTimedout | InvalidCert | HandshakeError | SocketError
        | ConnectProxyFailure => ClientError::new(
            502,
            "server_error",
            Some("server_error"),
            format!(
                "Cannot connect to the {backend} backend: {}.",
                e.etype().as_str()
            ),
        ),
        HTTPStatus(code) => {
            ClientError::new(*code, "invalid_request_error", None, format!("HTTP {code}"))
        }
        _ if e.esource() == &pingora::ErrorSource::Upstream => ClientError::new(
            502,
            "server_error",
            Some("server_error"),
            format!("The {backend} backend failed: {}.", e.etype().as_str()),
        ),
        _ if e.esource() == &pingora::ErrorSource::Downstream => ClientError::new(
            400,
            "invalid_request_error",
            None,
            format!("Bad request: {}.", e.etype().as_str()),
        ),
        _ => ClientError::new(
            500,
            "server_error",
            Some("server_error"),
            format!("Internal proxy error: {}.", e.etype().as_str()),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert!(backoff(2) > backoff(1));
        assert_eq!(backoff(30), Duration::from_millis(500));
    }

    #[test]
    fn headers_keep_only_what_the_provider_needs() {
        let cfg = crate::config::Config::from_json_str(
            r#"{"backends": [{"name": "b", "url": "https://api.example.com/v4", "api_key": "sk-key-123"}]}"#,
            &|_| None,
        )
        .unwrap();
        let b = &cfg.backends[0];
        assert_eq!(chat_path(b), "/v4/chat/completions");
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
