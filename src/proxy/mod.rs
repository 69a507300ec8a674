//! The Pingora shell: the only code that touches a `Session`. Each hook carries out what a
//! transport-free turn module decides (`src/turn/`):
//!
//! ```text
//! request_filter        turn::route (pages, auth, checks, backend) → write, upgrade or admit
//! upstream_peer         peer for the admitted backend (turn::upstream::Attempts: backoff)
//! fail_to_connect       turn::upstream::Attempts: retry, fail over, give up
//! upstream_request_filter  the provider's path and headers (turn::upstream)
//! request_body_filter   buffer the body, then turn::prepare → the Chat body at the end
//! response_filter       turn::reply::ReplyMode::on_head: SSE / JSON / error, the headers
//! response_body_filter  ReplyMode::push (sync); the finished response kept (turn::stored)
//! fail_to_proxy         turn::rescue: an error body before the head, response.failed after
//! logging               turn::record: the access line, stats, span, body log
//! ```
//!
//! `websocket.rs` drives the same turn modules for each WebSocket message.

mod dns;
mod driven;
mod local;
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

use crate::config::Backend;
use crate::convert::error::ClientError;
use crate::convert::sniff::sniff_model;
use crate::convert::streaming::Framing;
use crate::live::{Generation, Live};
use crate::stats::{Gauge, Opened};
use crate::turn::exchange::Exchange;
use crate::turn::intern;
use crate::turn::prepare::{prepare_http, HttpTurn};
use crate::turn::record::{Ending, Outcome};
use crate::turn::reply::passes_provider_header;
use crate::turn::rescue::{Cause, Kind, Side, TOTAL_TIMEOUT};
use crate::turn::route::{self, Route};
use crate::turn::stored::serve_stored;
use crate::turn::upstream::{trace_headers, Attempts, Next};

/// The converting proxy.
pub struct ConvertProxy {
    /// The configuration and its statistics; a request keeps the generation it started on.
    live: Arc<Live>,
    dns: dns::Resolver,
    /// OpenTelemetry; `None` when off (then no span is ever made).
    telemetry: Option<Arc<crate::telemetry::Telemetry>>,
    /// One copy of identical echoed request fields for all open streams.
    echoes: intern::Interner,
    /// Upstream connections made outside Pingora's proxy flow (WebSocket turns).
    connector: pingora::connectors::http::Connector,
    /// Flips when the server shuts down (WebSocket sessions close with 1001).
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// The response store (`None`: stateless), read-your-writes in front of it.
    store: Option<Arc<crate::store::staged::Staged>>,
    /// Where the spend of named client keys is kept.
    ledger: Option<Arc<dyn crate::store::ledger::Ledger>>,
}

impl ConvertProxy {
    pub fn new(live: Arc<Live>) -> Self {
        ConvertProxy {
            live,
            dns: dns::Resolver::default(),
            telemetry: None,
            echoes: intern::Interner::default(),
            connector: pingora::connectors::http::Connector::new(None),
            shutdown: tokio::sync::watch::channel(false).1,
            store: None,
            ledger: None,
        }
    }

    /// Where the spend of named client keys is kept.
    pub fn with_ledger(mut self, ledger: Arc<dyn crate::store::ledger::Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The response store for `previous_response_id`, retrieve and delete.
    pub fn with_store(mut self, store: Option<Arc<dyn crate::store::Store>>) -> Self {
        self.store = store.map(|s| Arc::new(crate::store::staged::Staged::new(s)));
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

    /// Admit a turn to convert: size its body buffer, route by model when asked (the first
    /// body chunk is read for it), start its span.
    async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        c: route::Convert,
        method: &http::Method,
        path: &str,
    ) -> Result<bool> {
        if let Some(n) = c.declared_len {
            // The body is buffered whole: one allocation of the declared size.
            ctx.turn.body.reserve(n);
        }
        let mut model = None;
        let mut first = None;
        if c.sniff {
            // Route by model: read the first body chunk (kept in Pingora's retry buffer, so
            // it still goes through request_body_filter).
            session.as_downstream_mut().enable_retry_buffering();
            first = session.read_request_body().await?;
            model = first.as_deref().and_then(sniff_model);
        }
        let gen = Arc::clone(&ctx.gen);
        let idx = match route::choose_backend(&gen.config, c.prefix, model.as_deref()) {
            Some(i) => i,
            None => return write_error_now(session, ctx, route::no_backend(path)).await,
        };
        let headers = &session.req_header().headers;
        ctx.turn.exchange.outcome.client = route::client_name(&gen.config, headers);
        let now = crate::store::now_secs();
        let token = route::client_token(headers);
        if let Some(err) =
            crate::turn::budget::over_budget(&gen.config, self.ledger.as_deref(), token, now).await
        {
            ctx.admitted.attempts = Some(Attempts::new(idx));
            return write_error_now(session, ctx, err).await;
        }
        let headers = &session.req_header().headers;
        let telemetry = self.telemetry.as_deref();
        ctx.turn
            .exchange
            .start_span(telemetry, headers, method.as_str(), path);
        ctx.admitted.attempts = Some(Attempts::new(idx));
        ctx.open[0] = Some(gen.stats.open(Gauge::HttpTurns));
        ctx.admitted.owner = route::owner_of(&gen.config, headers);
        ctx.turn.compact = c.compact;
        let loops = gen
            .config
            .backends
            .get(idx)
            .is_some_and(|b| b.quirks.web_search.loops());
        if loops && !c.compact {
            // The provider's search is a call this proxy answers: one turn, several requests.
            if let Some(b) = first {
                ctx.turn.body.extend_from_slice(&b);
            }
            return self.drive_http(session, ctx, idx).await;
        }
        Ok(false)
    }

    /// Prepare the client's body `raw` for `backend` (turn::prepare); a refused body's model
    /// is sniffed for the record.
    async fn prepare(
        &self,
        ctx: &mut Ctx,
        backend: &Backend,
        raw: &[u8],
    ) -> std::result::Result<crate::turn::prepare::PreparedHttp, ClientError> {
        ctx.turn.exchange.outcome.bytes_in = raw.len() as u64;
        let t = HttpTurn {
            backend,
            echoes: &self.echoes,
            log_body: ctx.gen.config.body_log_limit(),
            store: self.store(),
            owner: ctx.admitted.owner.clone(),
            compact: ctx.turn.compact,
        };
        let prepared = prepare_http(raw, t).await;
        if prepared.is_err() {
            ctx.turn.exchange.outcome.model = sniff_model(raw);
        }
        prepared
    }

    /// The shared state a turn on the proxy's own connections uses.
    fn env<'a>(&'a self, gen: &'a Generation) -> crate::turn::socket::Env<'a> {
        crate::turn::socket::Env {
            config: &gen.config,
            stats: &gen.stats,
            store: self.store.as_ref(),
            echoes: &self.echoes,
            telemetry: self.telemetry.as_deref(),
            ledger: self.ledger.as_deref(),
        }
    }

    /// What `page` shows that is read first: for `/stats`, today's spend of every named key
    /// in the ledger.
    async fn readings(&self, gen: &Generation, page: route::Page) -> crate::turn::pages::Readings {
        let mut r = crate::turn::pages::Readings::default();
        let (route::Page::Stats, Some(ledger)) = (page, self.ledger.as_deref()) else {
            return r;
        };
        let today = crate::spend::period(crate::spend::Per::Day, crate::store::now_secs());
        for c in &gen.config.clients {
            match ledger.spend(&c.name, &today).await {
                Ok(micro) => r.keys_today.push((c.name.clone(), micro)),
                Err(e) => tracing::warn!(client = %c.name, "spend not read: {e}"),
            }
        }
        r
    }

    /// The response store, as the turn modules take it.
    fn store(&self) -> Option<&dyn crate::store::Store> {
        self.store.as_deref().map(|s| s as &dyn crate::store::Store)
    }
}

/// The backend of the admitted turn, in its configuration.
fn backend_of<'g>(gen: &'g Generation, admitted: &Admitted) -> Option<&'g Backend> {
    let a = admitted.attempts.as_ref()?;
    gen.config.backends.get(a.backend())
}

/// Per-request state: what `request_filter` admitted, and the one turn the request carries
/// (the part a WebSocket session keeps per message).
pub struct Ctx {
    /// The configuration the request runs on, to its end (a reload does not change it).
    gen: Arc<Generation>,
    /// Counted open while the request is: the turn, and its stream once it is one.
    open: [Option<Opened>; 2],
    admitted: Admitted,
    turn: Turn,
}

/// Decided before any body is read.
struct Admitted {
    /// Answered by the proxy itself (pages, stored responses, upgrades): not in the stats.
    local: bool,
    /// The backend and the connection attempts on it (retries, failover).
    attempts: Option<Attempts>,
    /// The client token's hash, when the proxy checks tokens (a stored response's owner).
    owner: Option<String>,
    /// The error response closes the connection (see `Ctx::keep_error_and_close`).
    close_after_error: bool,
}

/// One turn: its body, its conversion, the reply, and its accounting.
struct Turn {
    body: BytesMut,
    /// Set when the client should get this error (used by `fail_to_proxy`).
    client_error: Option<ClientError>,
    /// A remote compaction v1 request (`/responses/compact`).
    compact: bool,
    /// The exchange with the provider (turn::exchange), from the converted request on.
    exchange: Exchange,
}

impl Ctx {
    fn new(gen: Arc<Generation>) -> Self {
        Ctx {
            gen,
            open: [None, None],
            admitted: Admitted {
                local: false,
                attempts: None,
                owner: None,
                close_after_error: false,
            },
            turn: Turn {
                body: BytesMut::new(),
                client_error: None,
                compact: false,
                exchange: Exchange::new(Outcome::new(Instant::now())),
            },
        }
    }

    /// [`Ctx::keep_error`] for a body rejected in `request_body_filter`: the upstream
    /// request is already under way there, and Pingora cannot reuse the client's connection
    /// afterwards (the next request on it would be reset), so the error response says
    /// `Connection: close`.
    fn keep_error_and_close(&mut self, err: ClientError) -> Box<Error> {
        self.admitted.close_after_error = true;
        self.keep_error(err)
    }

    /// Keep `err` as the client's error and return the Pingora error that ends the hook;
    /// `fail_to_proxy` writes it ([`write_kept_error`]).
    fn keep_error(&mut self, err: ClientError) -> Box<Error> {
        let status = err.status;
        self.turn.exchange.outcome.error_code = err.code.clone();
        self.turn.client_error = Some(err);
        Error::explain(ErrorType::HTTPStatus(status), "request rejected")
    }

    /// The prepared turn is a stream: counted open until the request ends.
    fn opened_stream(&mut self) {
        if self.turn.exchange.outcome.stream {
            self.open[1] = Some(self.gen.stats.open(Gauge::HttpStreams));
        }
    }

    /// Answered by the proxy itself with `status`.
    fn local(&mut self, status: u16) {
        self.admitted.local = true;
        self.turn.exchange.outcome.status = status;
    }
}

/// A hook that needs the chosen backend ran without one: an internal error, not the
/// client's 404 ([`route::no_backend`]).
fn no_backend_chosen() -> Box<Error> {
    Error::explain(ErrorType::InternalError, "no backend chosen")
}

/// What broke, as the turn modules name it.
fn cause_of(e: &Error) -> Cause {
    use ErrorType::*;
    let kind = match e.etype() {
        ConnectTimedout => Kind::ConnectTimeout,
        ReadTimedout => Kind::ReadTimeout,
        Custom(TOTAL_TIMEOUT) => Kind::TotalTimeout,
        WriteTimedout => Kind::OtherTimeout,
        TLSHandshakeTimedout => Kind::TlsTimeout,
        ConnectRefused | ConnectNoRoute | ConnectError | TLSHandshakeFailure | InvalidCert
        | HandshakeError | SocketError | ConnectProxyFailure => Kind::Connect,
        HTTPStatus(s) => Kind::Status(*s),
        _ => Kind::Other,
    };
    let side = match e.esource() {
        pingora::ErrorSource::Upstream => Side::Upstream,
        pingora::ErrorSource::Downstream => Side::Downstream,
        _ => Side::Internal,
    };
    Cause::new(kind, side, e.etype().as_str())
}

#[async_trait]
impl ProxyHttp for ConvertProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Self::CTX {
        Ctx::new(self.live.current())
    }

    /// Route (turn::route), then answer, upgrade, or admit the turn. Runs before any
    /// upstream work.
    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let req = session.req_header();
        let (method, path) = (req.method.clone(), req.uri.path().to_owned());
        let query = req.uri.query().map(str::to_owned);
        let view = route::Request {
            method: &method,
            path: &path,
            headers: &req.headers,
        };
        let gen = Arc::clone(&ctx.gen);
        match route::route(&gen.config, &view) {
            Err(err) => write_error_now(session, ctx, err).await,
            Ok(Route::Page(page)) => {
                let store = self.store();
                let readings = self.readings(&gen, page).await;
                let resp =
                    crate::turn::pages::render(page, &gen.config, &gen.stats, store, &readings);
                ctx.local(resp.status);
                local::write_body(session, &resp).await?;
                Ok(true)
            }
            Ok(Route::Stored(sp)) => {
                let owner = route::owner_of(&gen.config, &session.req_header().headers);
                let store = self.store();
                let (status, body) =
                    serve_stored(store, &method, sp, query.as_deref(), owner.as_deref()).await;
                ctx.local(status);
                local::write_json(session, status, &body, None).await?;
                Ok(true)
            }
            Ok(Route::WebSocket(ws)) => {
                ctx.local(101);
                self.serve_websocket(&gen, session, ws).await
            }
            Ok(Route::Convert(c)) => self.admit(session, ctx, c, &method, &path).await,
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        // A backend whose circuit is open goes to its fallback, when it has one.
        let gen = Arc::clone(&ctx.gen);
        if let Some(a) = ctx.admitted.attempts.as_mut() {
            if !gen.stats.breakers().allow(a.backend(), Instant::now()) {
                if let Some(to) = a.next_fallback(&gen.config) {
                    tracing::warn!(backend = %gen.backend_name(a.backend()), fallback = gen.backend_name(to), "circuit open: the backend is out of rotation, failing over");
                    a.skip_to(to);
                }
            }
        }
        if let Some(d) = ctx.admitted.attempts.as_ref().and_then(Attempts::delay) {
            tokio::time::sleep(d).await;
        }
        let Some(backend) = backend_of(&gen, &ctx.admitted) else {
            return Err(no_backend_chosen());
        };
        match self.peer_for(backend).await {
            Ok(peer) => Ok(Box::new(peer)),
            Err(err) => {
                let name = backend.name.clone();
                Err(ctx.keep_error(err).more_context(name).into_up())
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
        let gen = &ctx.gen;
        let Some(a) = ctx.admitted.attempts.as_mut() else {
            return e;
        };
        let from = gen.backend_name(a.backend());
        upstream::failed(&gen.stats, a.backend(), from);
        let why = e.etype().as_str();
        match a.connect_failed(&gen.config) {
            Next::Retry(attempt) => {
                tracing::warn!(backend = %from, attempt, "connect failed ({why}), retrying");
                e.set_retry(true);
            }
            Next::Failover { to } => {
                let to = gen.backend_name(to);
                tracing::warn!(backend = %from, fallback = to, "connect failed ({why}), failing over");
                e.set_retry(true);
            }
            Next::GiveUp => {}
        }
        e
    }

    /// A failure after the request went out. The one retried: the provider closed a kept-alive
    /// connection just as it was reused, before any answer (Pingora marks it retryable on a
    /// reused connection only). The request goes again on another connection — Pingora
    /// replays the client's body from its retry buffer, and `request_body_filter` converts
    /// it again — unless the body outgrew that buffer or the reply had started. POST is not
    /// idempotent in general; a Chat request the provider never answered is safe to resend.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Self::CTX,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        let replayable = !session.as_ref().retry_buffer_truncated();
        if replayable && !ctx.turn.exchange.started() {
            e.retry.decide_reuse(client_reused);
            if e.retry() {
                let backend = backend_of(&ctx.gen, &ctx.admitted).map_or("?", |b| b.name.as_str());
                tracing::debug!(backend = %backend, "a reused upstream connection was closed before the answer: sending again");
            }
        } else {
            e.set_retry(false);
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
        let gen = Arc::clone(&ctx.gen);
        let Some(backend) = backend_of(&gen, &ctx.admitted) else {
            return Err(no_backend_chosen());
        };
        let path = crate::turn::upstream::chat_path(backend);
        let uri: http::Uri = path
            .parse()
            .map_err(|_| Error::explain(ErrorType::InternalError, "bad upstream path"))?;
        req.set_uri(uri);
        let client = &session.req_header().headers;
        let trace = trace_headers(ctx.turn.exchange.span_mut(), client, backend, &path);
        upstream::set_headers(req, backend, None)?;
        for (name, value) in trace {
            req.insert_header(name, value)?;
        }
        Ok(())
    }

    /// Buffer the client's body; prepare it (turn::prepare) once complete.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let gen = Arc::clone(&ctx.gen);
        if let Some(chunk) = body.take() {
            let max = gen.config.max_body_bytes;
            if ctx.turn.body.len() + chunk.len() > max {
                return Err(ctx.keep_error_and_close(route::too_large(max)));
            }
            ctx.turn.body.extend_from_slice(&chunk);
        }
        if !end_of_stream {
            *body = Some(Bytes::new()); // held back: nothing goes upstream yet
            return Ok(());
        }
        let Some(backend) = backend_of(&gen, &ctx.admitted) else {
            return Err(no_backend_chosen());
        };
        let raw = std::mem::take(&mut ctx.turn.body);
        let prepared = match self.prepare(ctx, backend, &raw).await {
            Ok(p) => p,
            Err(e) => return Err(ctx.keep_error_and_close(e)),
        };
        let x = &mut ctx.turn.exchange;
        x.log_body(gen.config.body_log_limit());
        let p = prepared.prepared;
        x.outcome.model = p.model;
        x.prepared(p.rctx, prepared.pending, prepared.kept);
        ctx.opened_stream();
        *body = Some(Bytes::from(p.chat));
        Ok(())
    }

    /// The reply's mode (turn::reply) from the provider's head, and the client's headers.
    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(a) = ctx.admitted.attempts.as_ref() {
            let (gen, status) = (&ctx.gen, resp.status.as_u16());
            if crate::turn::upstream::retryable_status(status) {
                upstream::failed(&gen.stats, a.backend(), gen.backend_name(a.backend()));
            } else {
                gen.stats.breakers().success(a.backend());
            }
        }
        let x = &mut ctx.turn.exchange;
        let Some(mode) = x.on_head(resp.status.as_u16(), &resp.headers, Framing::Sse) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "response without a converted request",
            ));
        };
        let (status, content) = (mode.client_status(), mode.content_headers());
        let names: Vec<http::HeaderName> = resp.headers.keys().cloned().collect();
        for name in names.iter().filter(|n| !passes_provider_header(n.as_str())) {
            resp.remove_header(name);
        }
        resp.set_status(status)?;
        for (name, value) in content {
            resp.insert_header(*name, *value)?;
        }
        resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        Ok(())
    }

    /// Convert the body (ReplyMode::push). Synchronous, after the header went out: a
    /// failure here can only end the reply (`response.failed`).
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<Option<Duration>> {
        let input = body.take();
        let gen = Arc::clone(&ctx.gen);
        let Some(backend) = backend_of(&gen, &ctx.admitted) else {
            return Ok(None);
        };
        let x = &mut ctx.turn.exchange;
        if !end_of_stream && x.over_time(backend).is_some() {
            return Err(Error::explain(
                ErrorType::Custom(TOTAL_TIMEOUT),
                "total request timeout",
            ));
        }
        *body = x
            .push(
                self.store.as_ref(),
                input.as_deref(),
                end_of_stream,
                backend,
            )
            .out;
        Ok(None)
    }

    /// A fatal error (turn::rescue). Before the response header: an OpenAI-shaped error.
    /// After it (a stream cut off, a timeout mid-stream): the reply ends with
    /// `response.failed`.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let backend = backend_of(&ctx.gen, &ctx.admitted)
            .map(|b| b.name.clone())
            .unwrap_or_else(|| "upstream".into());
        let cause = cause_of(e);
        if ctx.turn.exchange.started() {
            finish_started(session, &mut ctx.turn, cause, &backend).await
        } else {
            write_kept_error(session, ctx, cause, &backend, e).await
        }
    }

    /// The turn's record (turn::record), once.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Self::CTX) {
        let req = session.req_header();
        let mut x = std::mem::replace(
            &mut ctx.turn.exchange,
            Exchange::new(Outcome::new(Instant::now())),
        );
        x.outcome.backend = ctx.admitted.attempts.as_ref().map(Attempts::backend);
        let statuses = (x.outcome.status, x.outcome.upstream_status);
        let end = Ending {
            method: req.method.as_str(),
            path: req.uri.path(),
            class: e.map(|e| cause_of(e).class(x.started(), statuses)),
            error: e.map(|e| e.etype().as_str()),
            local: ctx.admitted.local,
            ..Ending::default()
        };
        if let Some(spend) = x.finish(&ctx.gen.config, &ctx.gen.stats, end) {
            spend.keep(self.ledger.as_deref()).await;
        }
    }
}

/// A failure after the reply's head went out: finish the reply with its terminal event (a
/// failed Response object for JSON: nothing of it was sent yet), unless the client is gone.
async fn finish_started(
    session: &mut Session,
    turn: &mut Turn,
    cause: Cause,
    backend: &str,
) -> FailToProxy {
    let x = &mut turn.exchange;
    let bytes = x.fail(cause, backend);
    // Complete when the final bytes went out: the client's connection stays usable
    // (closing it would race with the client's next request).
    let mut complete = false;
    if let Some(b) = bytes {
        match session.write_response_body(Some(b), true).await {
            Ok(()) => complete = true,
            Err(err) => tracing::debug!("client gone while reporting a failure: {err}"),
        }
    }
    FailToProxy {
        error_code: x.outcome.status,
        can_reuse_downstream: complete,
    }
}

/// A failure before the reply's head: write the client's error (the one a hook kept with
/// [`Ctx::keep_error`], else the cause's) in OpenAI's shape.
async fn write_kept_error(
    session: &mut Session,
    ctx: &mut Ctx,
    cause: Cause,
    backend: &str,
    e: &Error,
) -> FailToProxy {
    let turn = &mut ctx.turn;
    let err = turn
        .client_error
        .take()
        .unwrap_or_else(|| cause.before_head(backend));
    turn.exchange.refused(&err, None);
    if err.status >= 500 {
        tracing::warn!(backend = %backend, status = err.status, "{}: {e}", err.message);
    }
    // A complete error response leaves the connection usable (Pingora drains any unread
    // request body before reusing it); a client that is gone gets no reuse.
    let close = ctx.admitted.close_after_error;
    let written = match local::write_error(session, err.status, &err.body_bytes(), close).await {
        Ok(()) => true,
        Err(we) => {
            tracing::debug!("could not send the error response: {we}");
            false
        }
    };
    let client_gone = matches!(
        e.etype(),
        ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed
    ) && cause.client_gone();
    FailToProxy {
        error_code: err.status,
        can_reuse_downstream: written && !client_gone && !close,
    }
}

/// In `request_filter`: write `err` to the client now and end the request (`Ok(true)`: the
/// filter answered); no upstream request is made.
async fn write_error_now(session: &mut Session, ctx: &mut Ctx, err: ClientError) -> Result<bool> {
    ctx.turn.exchange.refused(&err, None);
    let allow = (err.status == 405).then_some("POST");
    local::write_json(session, err.status, &err.body_bytes(), allow).await?;
    Ok(true)
}
