//! The Pingora shell: the only code that touches a `Session`. Pingora accepts the
//! connection and parses the request; every request is then answered from
//! `request_filter`, each part decided by a transport-free turn module (`src/turn/`):
//!
//! ```text
//! request_filter   turn::route (pages, auth, checks, backend) → a page, a stored response,
//!                  a WebSocket (websocket.rs), or a turn: turn::budget, then driven.rs —
//!                  turn::prepare, the Chat request on the proxy's own provider connection
//!                  (upstream.rs: turn::upstream::Attempts — retries, Retry-After, failover,
//!                  the circuit), turn::converse (the reply relayed as it is converted, a
//!                  provider's search calls answered, idle and total timeouts)
//! fail_to_proxy    turn::rescue: the client's connection failed mid-turn
//! logging          turn::record: the access line, stats, span, body log, the spend
//! ```
//!
//! Pingora's own proxy flow (one upstream request per client request, the upstream hooks)
//! is not used: a turn that is refused with a 429/5xx before its first byte is sent again,
//! or to a fallback, and a Kimi search turn takes several requests — so HTTP and WebSocket
//! turns go through the same `Upstream`/`Reply` and `converse`.

mod dns;
mod driven;
mod local;
pub mod upstream;
pub mod websocket;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::config::Backend;
use crate::convert::error::ClientError;
use crate::convert::sniff::sniff_model;
use crate::live::{Generation, Live};
use crate::stats::{Gauge, Opened};
use crate::turn::exchange::Exchange;
use crate::turn::intern;
use crate::turn::prepare::{prepare_http, HttpTurn};
use crate::turn::record::{Ending, Outcome};
use crate::turn::rescue::{Cause, Kind, Side, TOTAL_TIMEOUT};
use crate::turn::route::{self, Route};
use crate::turn::stored::serve_stored;
use crate::turn::upstream::Attempts;

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
            continue_body(session).await?;
            // Route by model: read the first body chunk (the turn's body starts with it).
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
        // The turn is carried on the proxy's own provider connection (proxy/driven.rs): a
        // 429/5xx or no head in time can be retried and failed over before the first byte,
        // and a provider's search call answered, as on a WebSocket.
        if let Some(b) = first {
            ctx.turn.body.extend_from_slice(&b);
        }
        self.drive_http(session, ctx, idx).await
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
    /// The error response closes the connection (a body refused before it was read whole:
    /// the rest of it would be taken for the next request).
    close_after_error: bool,
}

/// One turn: its body, its conversion, the reply, and its accounting.
struct Turn {
    body: BytesMut,
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
                compact: false,
                exchange: Exchange::new(Outcome::new(Instant::now())),
            },
        }
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

    /// Not reached: every turn is carried on the proxy's own connection from
    /// `request_filter` (proxy/driven.rs), which answers every request.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        Err(no_backend_chosen())
    }

    /// A fatal error of the client's connection in `request_filter` (turn::rescue): before
    /// the response header, an OpenAI-shaped error; after it, the reply ends with
    /// `response.failed` (the provider's faults are the turn's own: proxy/driven.rs).
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
            write_error_before_head(session, ctx, cause, &backend, e).await
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

/// A failure before the reply's head: write the cause's error in OpenAI's shape.
async fn write_error_before_head(
    session: &mut Session,
    ctx: &mut Ctx,
    cause: Cause,
    backend: &str,
    e: &Error,
) -> FailToProxy {
    let turn = &mut ctx.turn;
    let err = cause.before_head(backend);
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

/// A client that sent `Expect: 100-continue` waits for a `100 Continue` before its body
/// (curl does for bodies over 1 MiB, and many HTTP libraries always): sent before the first
/// read of the body, once (Pingora writes it only while no response was written).
async fn continue_body(session: &mut Session) -> Result<()> {
    let expects = session
        .req_header()
        .headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if expects && !session.is_body_done() {
        session.write_continue_response().await?;
    }
    Ok(())
}

/// In `request_filter`: write `err` to the client now and end the request (`Ok(true)`: the
/// filter answered); no upstream request is made.
async fn write_error_now(session: &mut Session, ctx: &mut Ctx, err: ClientError) -> Result<bool> {
    ctx.turn.exchange.refused(&err, None);
    let allow = (err.status == 405).then_some("POST");
    local::write_json(session, err.status, &err.body_bytes(), allow).await?;
    Ok(true)
}
