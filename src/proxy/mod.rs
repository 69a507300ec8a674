//! The Pingora shell: the only code that touches a `Session`. Each hook delegates to the pure
//! core in a few lines.
//!
//! ```text
//! request_filter        local endpoints (/health, 404, 405, 413, 415), route by path prefix
//! upstream_peer         peer for the backend: DNS resolved asynchronously, TLS + SNI, timeouts
//! upstream_request_filter  path, Host, Authorization: Bearer <backend key>; client auth and
//!                       Codex headers removed; body sent chunked (its length changes)
//! request_body_filter   buffer the body, then convert::request → the Chat body at the end
//! response_filter       pick the mode: SSE stream / JSON / upstream error, fix the headers
//! response_body_filter  bytes → convert::streaming → bytes (sync; may only emit events)
//! fail_to_proxy         errors before the response: OpenAI-shaped body; after: response.failed
//! logging               the access line
//! ```

mod dns;
mod local;
mod stored;
pub mod upstream;
pub mod websocket;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::config::{Backend, Config};
use crate::convert::error::ClientError;
use crate::convert::sniff::sniff_model;
use crate::convert::streaming::Framing;
use crate::convert::ResponseContext;
use crate::stats::{ErrorClass, RequestRecord, Stats};
use crate::turn::intern;
use crate::turn::prepare::prepare_request;
use crate::turn::reply::{usage_tokens, ReplyMode, UpstreamHead};

/// The converting proxy.
pub struct ConvertProxy {
    config: Arc<Config>,
    stats: Arc<Stats>,
    dns: dns::Resolver,
    /// OpenTelemetry; `None` when off (then no span is ever made).
    telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// One copy of identical echoed request fields for all open streams.
    echoes: intern::Interner,
    /// Upstream connections made outside Pingora's proxy flow (WebSocket turns).
    connector: pingora::connectors::http::Connector,
    /// Flips when the server shuts down (WebSocket sessions close with 1001).
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// The response store (`None`: stateless).
    store: Option<Arc<dyn crate::store::Store>>,
}

impl ConvertProxy {
    pub fn new(config: Arc<Config>, stats: Arc<Stats>) -> Self {
        ConvertProxy {
            config,
            stats,
            dns: dns::Resolver::default(),
            telemetry: None,
            echoes: intern::Interner::default(),
            connector: pingora::connectors::http::Connector::new(None),
            shutdown: tokio::sync::watch::channel(false).1,
            store: None,
        }
    }

    /// The response store for `previous_response_id`, retrieve and delete.
    pub fn with_store(mut self, store: Option<Arc<dyn crate::store::Store>>) -> Self {
        self.store = store;
        self
    }

    /// The receiver that tells WebSocket sessions the server is shutting down.
    pub fn with_shutdown(mut self, shutdown: tokio::sync::watch::Receiver<bool>) -> Self {
        self.shutdown = shutdown;
        self
    }

    pub fn with_telemetry(mut self, telemetry: Option<Arc<crate::telemetry::Telemetry>>) -> Self {
        self.telemetry = telemetry;
        self
    }

    fn backend(&self, ctx: &Ctx) -> Option<&Backend> {
        ctx.backend.and_then(|i| self.config.backends.get(i))
    }
}

/// Per-request state.
pub struct Ctx {
    start: Instant,
    backend: Option<usize>,
    body: BytesMut,
    /// From the converted request until the response header (then moved into the mode).
    response_ctx: Option<ResponseContext>,
    /// The Response id (for the access log).
    response_id: Option<String>,
    /// Set when the client should get this error (used by `fail_to_proxy`).
    client_error: Option<ClientError>,
    /// What the response body filter does with the upstream's bytes (set by the head).
    mode: Option<ReplyMode>,
    upstream_status: u16,
    client_status: u16,
    /// The response header went to the client: only SSE events can report errors now.
    downstream_started: bool,
    first_byte: Option<Duration>,
    error_code: Option<String>,
    stream: bool,
    model: Option<String>,
    /// Connection attempts on the current backend (for retries and failover).
    attempts: u32,
    /// Backends already given up on (failover never loops).
    tried: Vec<usize>,
    /// Answered by the proxy itself (/health, /metrics, …): not counted in the stats.
    local: bool,
    bytes_in: u64,
    bytes_out: u64,
    /// Time to the first output item (text, reasoning or tool call).
    ttft: Option<Duration>,
    /// The request's spans (telemetry on).
    otel: Option<crate::telemetry::RequestSpan>,
    /// The response body so far (`log_body`).
    body_log: Option<crate::logger::BodyLog>,
    /// Remote compaction v1: the user messages its output keeps (`Some` on that path).
    compact: Option<crate::turn::compact::Kept>,
    /// Kept in the store when the response is complete (`store` not false).
    pending_store: Option<crate::turn::stored::Pending>,
    /// The client token's hash, when the proxy checks tokens (a stored response's owner).
    owner: Option<String>,
    /// The error response closes the connection (see `reject_body`).
    close_after_error: bool,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            start: Instant::now(),
            backend: None,
            body: BytesMut::new(),
            response_ctx: None,
            response_id: None,
            client_error: None,
            mode: None,
            upstream_status: 0,
            client_status: 0,
            downstream_started: false,
            first_byte: None,
            error_code: None,
            stream: false,
            model: None,
            attempts: 0,
            tried: Vec::new(),
            local: false,
            bytes_in: 0,
            bytes_out: 0,
            ttft: None,
            otel: None,
            body_log: None,
            compact: None,
            pending_store: None,
            owner: None,
            close_after_error: false,
        }
    }

    /// A body rejected in `request_body_filter`: the upstream request is already under way
    /// there, and Pingora cannot reuse the client's connection afterwards (the next request
    /// on it would be reset), so the error response says `Connection: close`.
    fn reject_body(&mut self, err: ClientError) -> Box<Error> {
        self.close_after_error = true;
        self.fail_with(err)
    }

    fn fail_with(&mut self, err: ClientError) -> Box<Error> {
        let status = err.status;
        self.error_code = err.code.clone();
        self.client_error = Some(err);
        Error::explain(ErrorType::HTTPStatus(status), "request rejected")
    }
}

/// Larger request headers get 431 (Codex sends a few KB).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Paths that convert, after the backend prefix is stripped.
fn is_convert_path(rest: &str) -> bool {
    matches!(
        rest.trim_end_matches('/'),
        "" | "/v1/responses" | "/responses"
    ) || is_compact_path(rest)
}

/// Remote compaction v1 (`POST …/responses/compact`).
fn is_compact_path(rest: &str) -> bool {
    matches!(
        rest.trim_end_matches('/'),
        "/v1/responses/compact" | "/responses/compact"
    )
}

#[async_trait]
impl ProxyHttp for ConvertProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Self::CTX {
        Ctx::new()
    }

    /// Local endpoints and routing. Runs before any upstream work.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let path = session.req_header().uri.path().to_owned();
        let method = session.req_header().method.clone();
        if let Some(resp) = local::serve_local(
            &self.config,
            &self.stats,
            self.store.as_deref(),
            &method,
            &path,
        ) {
            ctx.client_status = resp.status;
            ctx.local = true;
            local::write_body(session, &resp).await?;
            return Ok(true);
        }
        if !self.config.auth_tokens.is_empty()
            && !authorized(session.req_header(), &self.config.auth_tokens)
        {
            let err = ClientError::new(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Missing or invalid proxy token: send one of the proxy's auth_tokens as `Authorization: Bearer <token>`.",
            );
            return respond(session, ctx, err).await;
        }
        let routed = self.config.route(&path);
        let rest = routed.map(|(_, rest)| rest).unwrap_or(path.as_str());
        // Prefix > model > default.
        let by_prefix = routed.is_some_and(|(_, rest)| rest.len() != path.len());
        if let Some(resp) = local::serve_models(
            &self.config,
            &method,
            rest,
            routed.filter(|_| by_prefix).map(|(i, _)| i),
        ) {
            ctx.client_status = resp.status;
            ctx.local = true;
            local::write_body(session, &resp).await?;
            return Ok(true);
        }
        if let Some(sp) = crate::turn::stored::stored_path(rest) {
            ctx.local = true;
            let query = session.req_header().uri.query().map(str::to_owned);
            let owner = self.owner_of(session.req_header());
            let (status, body) = self
                .serve_stored(&method, sp, query.as_deref(), owner.as_deref())
                .await;
            ctx.client_status = status;
            local::write_json(session, status, &body, None).await?;
            return Ok(true);
        }
        if !is_convert_path(rest) {
            let err = ClientError::new(
                404,
                "invalid_request_error",
                Some("not_found"),
                format!("Unknown path {path}: this proxy serves POST /v1/responses (also /responses and /, and the same under a backend prefix)."),
            );
            return respond(session, ctx, err).await;
        }
        if method == http::Method::GET
            && !is_compact_path(rest)
            && websocket::is_upgrade(session.req_header())
        {
            ctx.local = true;
            ctx.client_status = 101;
            let route = websocket::WsRoute {
                prefix_backend: routed.filter(|_| by_prefix).map(|(i, _)| i),
            };
            return self.serve_websocket(session, route).await;
        }
        if method != http::Method::POST {
            let err = ClientError::new(
                405,
                "invalid_request_error",
                Some("method_not_allowed"),
                format!("Method {method} is not allowed on {path}: use POST."),
            );
            return respond(session, ctx, err).await;
        }
        let headers = &session.req_header().headers;
        let header_bytes: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            let err = ClientError::new(
                431,
                "invalid_request_error",
                Some("request_header_fields_too_large"),
                format!("The request headers are too large ({header_bytes} bytes; the limit is {MAX_HEADER_BYTES})."),
            );
            return respond(session, ctx, err).await;
        }
        if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            if !ct.is_empty() && !ct.contains("json") {
                let err = ClientError::new(
                    415,
                    "invalid_request_error",
                    Some("unsupported_media_type"),
                    format!("Content-Type {ct} is not supported: send application/json."),
                );
                return respond(session, ctx, err).await;
            }
        }
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.config.max_body_bytes) {
            return respond(session, ctx, too_large(self.config.max_body_bytes)).await;
        }
        // The body is buffered whole: one allocation of the declared size, not a doubling
        // series of copies.
        if let Some(n) = declared {
            ctx.body.reserve(n);
        }
        let mut chosen = routed.map(|(i, _)| i);
        if !by_prefix && self.config.has_model_rules() {
            // Route by model: read the first body chunk (kept in Pingora's retry buffer, so
            // it still goes through request_body_filter) and find `model` in it.
            session.as_downstream_mut().enable_retry_buffering();
            if let Some(first) = session.read_request_body().await? {
                if let Some(i) = sniff_model(&first).and_then(|m| self.config.route_model(&m)) {
                    chosen = Some(i);
                }
            }
        }
        let Some(idx) = chosen else {
            let err = ClientError::new(
                404,
                "invalid_request_error",
                Some("not_found"),
                format!("No backend serves {path}: it matches no path_prefix, no match_rules.model and no default backend is configured."),
            );
            return respond(session, ctx, err).await;
        };
        if let Some(t) = &self.telemetry {
            let h = &session.req_header().headers;
            let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
            let (tp, ts) = (header("traceparent"), header("tracestate"));
            ctx.otel = Some(t.start_request(tp, ts, method.as_str(), &path, ctx.start));
        }
        ctx.backend = Some(idx);
        ctx.owner = self.owner_of(session.req_header());
        if is_compact_path(rest) {
            ctx.compact = Some(crate::turn::compact::Kept::default());
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        if ctx.attempts > 0 {
            tokio::time::sleep(upstream::backoff(ctx.attempts)).await;
        }
        let Some(backend) = self.backend(ctx) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no backend chosen",
            ));
        };
        match self.peer_for(backend).await {
            Ok(peer) => Ok(Box::new(peer)),
            Err(err) => {
                let name = backend.name.clone();
                Err(ctx.fail_with(err).more_context(name).into_up())
            }
        }
    }

    /// A failed connection (before anything was sent): retry the backend, then fail over to
    /// its `fallback` backends in order.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Self::CTX,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let Some(idx) = ctx.backend else {
            return e;
        };
        let Some(backend) = self.config.backends.get(idx) else {
            return e;
        };
        ctx.attempts += 1;
        if ctx.attempts <= backend.retries {
            tracing::warn!(backend = %backend.name, attempt = ctx.attempts, "connect failed ({}), retrying", e.etype().as_str());
            e.set_retry(true);
            return e;
        }
        ctx.tried.push(idx);
        let next = backend
            .fallback
            .iter()
            .copied()
            .find(|i| !ctx.tried.contains(i));
        if let Some(next) = next {
            let to = self
                .config
                .backends
                .get(next)
                .map(|b| b.name.as_str())
                .unwrap_or("?");
            tracing::warn!(backend = %backend.name, fallback = to, "connect failed ({}), failing over", e.etype().as_str());
            ctx.backend = Some(next);
            ctx.attempts = 0;
            e.set_retry(true);
        }
        e
    }

    /// Headers for the provider. The body's length changes, so it goes chunked.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let Some(backend) = self.backend(ctx) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no backend chosen",
            ));
        };
        let path = upstream::chat_path(backend);
        let uri: http::Uri = path
            .parse()
            .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream path"))?;
        req.set_uri(uri);
        let client_trace = ["traceparent", "tracestate"]
            .map(|n| (n, session.req_header().headers.get(n).cloned()));
        upstream::set_headers(req, backend, None)?;
        // W3C trace context: the upstream span's when telemetry is on, else the client's.
        if let Some(span) = ctx.otel.as_mut() {
            let (host, port, tls) = (&backend.host, backend.port, backend.tls);
            if let Some(h) = span.upstream_traceparent(host, port, tls, &path) {
                req.insert_header("traceparent", h.traceparent)?;
                if let Some(ts) = h.tracestate {
                    req.insert_header("tracestate", ts)?;
                }
            }
        } else {
            for (name, value) in client_trace {
                if let Some(v) = value {
                    req.insert_header(name, v)?;
                }
            }
        }
        Ok(())
    }

    /// Buffer the client's body; convert it once complete.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(chunk) = body.take() {
            if ctx.body.len() + chunk.len() > self.config.max_body_bytes {
                return Err(ctx.reject_body(too_large(self.config.max_body_bytes)));
            }
            ctx.body.extend_from_slice(&chunk);
        }
        if !end_of_stream {
            *body = Some(Bytes::new()); // held back: nothing goes upstream yet
            return Ok(());
        }
        let Some(idx) = ctx.backend else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no backend chosen",
            ));
        };
        let Some(backend) = self.config.backends.get(idx) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "no backend chosen",
            ));
        };
        let mut raw = std::mem::take(&mut ctx.body);
        ctx.bytes_in = raw.len() as u64;
        if ctx.compact.is_some() {
            match crate::turn::compact::compact_request(&raw) {
                Ok((create, kept)) => {
                    raw = BytesMut::from(&create[..]);
                    ctx.compact = Some(kept);
                }
                Err(e) => return Err(ctx.reject_body(e)),
            }
        }
        let log = self
            .config
            .log_body
            .then_some(self.config.log_body_max_bytes);
        let mut req = match crate::convert::request::parse_request(&raw) {
            Ok(r) => r,
            Err(e) => return Err(ctx.reject_body(crate::turn::prepare::invalid(e))),
        };
        let mut chain_resolved = false;
        if let (Some(store), None) = (&self.store, &ctx.compact) {
            let owner = ctx.owner.clone();
            match self
                .store_prelude(store.as_ref(), &raw, &mut req, owner)
                .await
            {
                Ok((pending, resolved)) => {
                    ctx.pending_store = pending;
                    chain_resolved = resolved;
                }
                Err(e) => return Err(ctx.reject_body(e)),
            }
        }
        let prepared =
            match prepare_request(req, raw.len(), backend, &self.echoes, log, chain_resolved) {
                Ok(p) => p,
                Err(e) => return Err(ctx.reject_body(e)),
            };
        if let Some(max) = log {
            ctx.body_log = Some(crate::logger::BodyLog::new(max));
        }
        ctx.model = prepared.model;
        ctx.stream = prepared.rctx.stream;
        ctx.response_id = Some(prepared.rctx.response_id.clone());
        ctx.response_ctx = Some(prepared.rctx);
        *body = Some(Bytes::from(prepared.chat));
        Ok(())
    }

    /// Decide how the body is converted, and fix the headers for the new body.
    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let status = resp.status.as_u16();
        ctx.upstream_status = status;
        ctx.first_byte = Some(ctx.start.elapsed());
        let content_type = resp
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let retry_after = resp
            .headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Only our own headers go to the client.
        let names: Vec<http::HeaderName> = resp.headers.keys().cloned().collect();
        for name in names {
            if !matches!(name.as_str(), "retry-after" | "x-request-id" | "date") {
                resp.remove_header(&name);
            }
        }
        let Some(rctx) = ctx.response_ctx.take() else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "response without a converted request",
            ));
        };
        let head = UpstreamHead {
            status,
            content_type: &content_type,
            retry_after,
        };
        let mode = ReplyMode::on_head(rctx, &head, Framing::Sse);
        let client_status = mode.client_status();
        let sse = mode.is_event_stream();
        ctx.mode = Some(mode);
        resp.set_status(client_status)?;
        ctx.client_status = client_status;
        if sse {
            resp.insert_header(
                http::header::CONTENT_TYPE,
                "text/event-stream; charset=utf-8",
            )?;
            resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
            resp.insert_header("x-accel-buffering", "no")?;
        } else {
            resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        }
        resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        ctx.downstream_started = true;
        Ok(())
    }

    /// Convert the body. Synchronous, after the header went out: a failure here can only
    /// become an SSE `response.failed` event.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<Duration>> {
        let input = body.take();
        if let (Some(span), Some(b)) = (ctx.otel.as_mut(), input.as_ref()) {
            span.observe_upstream_body(b);
        }
        let backend = self
            .backend(ctx)
            .map(|b| b.name.clone())
            .unwrap_or_default();
        if let Some(total) = self.backend(ctx).map(|b| b.timeouts.total) {
            if !end_of_stream && ctx.start.elapsed() > total {
                return Err(Error::explain(
                    ErrorType::ReadTimedout,
                    "total request timeout",
                ));
            }
        }
        let api_key = self.backend(ctx).map(|b| b.api_key.as_str()).unwrap_or("");
        let Some(mode) = ctx.mode.as_mut() else {
            return Ok(None);
        };
        let pushed = mode.push(input.as_deref(), end_of_stream, &backend, api_key);
        if ctx.ttft.is_none() && mode.has_content(end_of_stream) {
            ctx.ttft = Some(ctx.start.elapsed());
        }
        if let Some(err) = &pushed.error {
            ctx.error_code = err.code.clone();
        }
        if pushed.failed_code.is_some() {
            ctx.error_code = pushed.failed_code;
        }
        if end_of_stream {
            if let Some(pending) = ctx.pending_store.take() {
                let final_json = match mode.converter() {
                    Some(c) => c.final_json(),
                    None if !mode.is_event_stream() => pushed.out.as_deref(),
                    None => None,
                };
                if let (Some(json), Some(id)) = (final_json, ctx.response_id.as_deref()) {
                    self.keep(id, json, pending);
                }
            }
        }
        *body = match (&ctx.compact, pushed.out) {
            (Some(kept), Some(obj)) if end_of_stream && !mode.is_event_stream() => Some(
                Bytes::from(crate::turn::compact::compaction_object(&obj, kept)),
            ),
            (_, out) => out,
        };
        if let Some(b) = body.as_ref() {
            ctx.bytes_out += b.len() as u64;
            if let Some(log) = ctx.body_log.as_mut() {
                log.push(b);
            }
        }
        Ok(None)
    }

    /// A fatal error. Before the response header: an OpenAI-shaped error. After it (a stream
    /// cut off, a timeout mid-stream): the stream ends with `response.failed`.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let backend = self
            .backend(ctx)
            .map(|b| b.name.clone())
            .unwrap_or_else(|| "upstream".into());
        if ctx.downstream_started && e.esource() == &pingora::ErrorSource::Downstream {
            // The client went away mid-response: nothing to finish, and not the backend's
            // fault.
            tracing::debug!(backend = %backend, "client gone mid-response: {e}");
            ctx.error_code = Some("client_closed".to_owned());
            return FailToProxy {
                error_code: ctx.client_status,
                can_reuse_downstream: false,
            };
        }
        if ctx.downstream_started {
            let (code, message) = match e.etype() {
                ErrorType::ReadTimedout => (
                    "server_error",
                    format!("The {backend} backend stopped sending (idle timeout)."),
                ),
                _ => (
                    "server_error",
                    format!(
                        "The {backend} backend connection failed mid-stream: {}",
                        e.etype().as_str()
                    ),
                ),
            };
            ctx.error_code = Some(code.to_owned());
            // Finish the response the client already has the header of: the terminal event
            // of a stream, a failed Response object for JSON (nothing of it was sent yet).
            let bytes = ctx
                .mode
                .as_mut()
                .and_then(|m| m.fail(code, &message, &backend));
            // The response is complete when the final bytes went out: the client's
            // connection stays usable (closing it would race with the client's next request).
            let mut complete = false;
            if let Some(b) = bytes {
                match session.write_response_body(Some(b), true).await {
                    Ok(()) => complete = true,
                    Err(err) => tracing::debug!("client gone while reporting a failure: {err}"),
                }
            }
            tracing::warn!(backend = %backend, "stream failed: {message}");
            return FailToProxy {
                error_code: ctx.client_status,
                can_reuse_downstream: complete,
            };
        }
        let err = ctx
            .client_error
            .take()
            .unwrap_or_else(|| upstream::upstream_error(e, &backend));
        ctx.error_code = err.code.clone();
        ctx.client_status = err.status;
        if err.status >= 500 {
            tracing::warn!(backend = %backend, status = err.status, "{}: {e}", err.message);
        }
        // A complete error response leaves the connection usable (Pingora drains any unread
        // request body before reusing it); a client that is gone gets no reuse.
        let close = ctx.close_after_error;
        let written = match local::write_error(session, err.status, &err.body_bytes(), close).await
        {
            Ok(()) => true,
            Err(we) => {
                tracing::debug!("could not send the error response: {we}");
                false
            }
        };
        let client_gone = matches!(
            e.etype(),
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
        ) && e.esource() == &pingora::ErrorSource::Downstream;
        FailToProxy {
            error_code: err.status,
            can_reuse_downstream: written && !client_gone && !close,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let req = session.req_header();
        let backend = self.backend(ctx).map(|b| b.name.as_str()).unwrap_or("-");
        let (tin, tout, tcached, treasoning) = usage_of(ctx);
        if !ctx.local {
            self.stats.record(&RequestRecord {
                backend: ctx.backend,
                stream: ctx.stream,
                error: classify(ctx, e),
                duration: ctx.start.elapsed(),
                ttft: ctx.ttft,
                tokens_in: tin,
                tokens_out: tout,
                tokens_cached: tcached,
                tokens_reasoning: treasoning,
                bytes_in: ctx.bytes_in,
                bytes_out: ctx.bytes_out,
            });
        }
        tracing::info!(
            target: "access",
            method = %req.method,
            path = %req.uri.path(),
            backend,
            model = ctx.model.as_deref().unwrap_or("-"),
            stream = ctx.stream,
            status = ctx.client_status,
            upstream_status = ctx.upstream_status,
            duration_ms = ctx.start.elapsed().as_millis() as u64,
            ttfb_ms = ctx.first_byte.map(|d| d.as_millis() as u64),
            ttft_ms = ctx.ttft.map(|d| d.as_millis() as u64),
            tokens_in = tin,
            tokens_out = tout,
            tokens_cached = tcached,
            error_code = ctx.error_code.as_deref().unwrap_or("-"),
            error = e.map(|e| e.etype().as_str()).unwrap_or("-"),
            "request"
        );
        if let Some(log) = ctx.body_log.take() {
            log.log(backend);
        }
        if let Some(span) = ctx.otel.take() {
            let b = self.backend(ctx);
            span.finish(&crate::telemetry::Finish {
                backend: b.map(|b| b.name.as_str()),
                provider: b.map(|b| b.quirks.profile),
                request_model: b.and_then(|b| b.model.as_deref()).or(ctx.model.as_deref()),
                stream: ctx.stream,
                status: ctx.client_status,
                upstream_status: ctx.upstream_status,
                usage: (tin + tout > 0).then_some((tin, tout, tcached, treasoning)),
                ttft: ctx.ttft,
                response_id: ctx.response_id.as_deref(),
                error_class: classify(ctx, e),
                error_code: ctx.error_code.as_deref(),
            });
        }
    }
}

/// The client's token: `Authorization: Bearer …`, else `x-api-key`.
fn client_token(req: &RequestHeader) -> &str {
    req.headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| req.headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or("")
        .trim()
}

/// Does the request carry one of the proxy's client tokens? Compared in constant time.
fn authorized(req: &RequestHeader, tokens: &[String]) -> bool {
    let given = client_token(req);
    // Check every token (no early exit), each comparison in constant time.
    tokens.iter().fold(false, |ok, t| {
        ok | constant_time_eq(t.as_bytes(), given.as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// (input, output, cached, reasoning) tokens the provider reported.
fn usage_of(ctx: &Ctx) -> (u64, u64, u64, u64) {
    usage_tokens(ctx.mode.as_ref().and_then(ReplyMode::usage))
}

/// The error class of a finished request, for the statistics.
fn classify(ctx: &Ctx, e: Option<&Error>) -> Option<ErrorClass> {
    if let Some(e) = e {
        use ErrorType::*;
        return Some(match e.etype() {
            ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
                ErrorClass::Timeout
            }
            ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | InvalidCert
            | HandshakeError | SocketError | ConnectProxyFailure => ErrorClass::Connect,
            HTTPStatus(s) if *s < 500 => ErrorClass::Client,
            _ if ctx.downstream_started => ErrorClass::StreamFailed,
            _ if ctx.client_status == 502 && ctx.upstream_status == 0 => ErrorClass::Connect,
            _ => ErrorClass::Internal,
        });
    }
    match (ctx.upstream_status, ctx.client_status) {
        (0, s) if s >= 400 => Some(ErrorClass::Client),
        (u, _) if (400..500).contains(&u) => Some(ErrorClass::Upstream4xx),
        (u, _) if u >= 500 => Some(ErrorClass::Upstream5xx),
        _ if ctx.error_code.is_some() => Some(ErrorClass::StreamFailed),
        _ => None,
    }
}

async fn respond(session: &mut Session, ctx: &mut Ctx, err: ClientError) -> Result<bool> {
    ctx.client_status = err.status;
    ctx.error_code = err.code.clone();
    let allow = (err.status == 405).then_some("POST");
    local::write_json(session, err.status, &err.body_bytes(), allow).await?;
    Ok(true)
}

fn too_large(limit: usize) -> ClientError {
    ClientError::new(
        413,
        "invalid_request_error",
        Some("request_too_large"),
        format!(
            "The request body is larger than this proxy's limit of {limit} bytes (max_body_bytes)."
        ),
    )
}
