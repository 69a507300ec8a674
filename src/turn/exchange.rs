//! One turn's exchange with the provider, whichever transport carries it: the reply mode
//! from the provider's head, every body chunk converted and accounted for, the failure that
//! ends a reply under way, the store write and the compaction object at its end, the body
//! log and the span, and the record once it is over. The HTTP hooks and the WebSocket
//! session call only [`Exchange::on_head`], [`Exchange::push`], [`Exchange::fail`] and
//! [`Exchange::finish`]: each rule below exists once.

use std::sync::Arc;

use bytes::Bytes;

use crate::config::{Backend, Config};
use crate::convert::error::ClientError;
use crate::convert::streaming::Framing;
use crate::convert::ResponseContext;
use crate::logger::BodyLog;
use crate::stats::{ErrorClass, Stats};
use crate::store::staged::Staged;
use crate::telemetry::{RequestSpan, Telemetry};

use super::compact::{compaction_object, Kept};
use super::record::{record, Ending, Outcome};
use super::reply::{usage_tokens, ReplyMode, UpstreamHead};
use super::rescue::{outcome_class, Cause, MID_STREAM_CODE};
use super::stored::{keep, Pending};

/// One turn, from the converted request to its record.
pub struct Exchange {
    pub outcome: Outcome,
    /// From the converted request until the provider's head (then moved into the mode).
    rctx: Option<ResponseContext>,
    mode: Option<ReplyMode>,
    /// Kept in the store once the response is complete.
    pending: Option<Pending>,
    /// Remote compaction v1: the user messages its output keeps.
    compact: Option<Kept>,
    body_log: Option<BodyLog>,
    span: Option<RequestSpan>,
    /// The failure that ended the turn (its statistics class).
    cause: Option<Cause>,
    /// The reply's head went to the client: only the reply can report errors now.
    started: bool,
}

/// What one [`Exchange::push`] produced.
#[derive(Default)]
pub struct Chunk {
    /// Bytes for the client.
    pub out: Option<Bytes>,
    /// The provider's error, mapped (an error reply, at its end): a WebSocket client gets
    /// it as an error frame.
    pub error: Option<ClientError>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("outcome", &self.outcome)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    pub fn new(outcome: Outcome) -> Self {
        Exchange {
            outcome,
            rctx: None,
            mode: None,
            pending: None,
            compact: None,
            body_log: None,
            span: None,
            cause: None,
            started: false,
        }
    }

    /// The converted request's context, what the store keeps of it, and (v1) the kept
    /// messages of a compaction.
    pub fn prepared(
        &mut self,
        rctx: ResponseContext,
        pending: Option<Pending>,
        compact: Option<Kept>,
    ) {
        self.outcome.stream = rctx.stream;
        self.outcome.response_id = Some(rctx.response_id.clone());
        self.rctx = Some(rctx);
        self.pending = pending;
        self.compact = compact;
    }

    /// Log the response body (up to `limit` bytes) when the turn ends.
    pub fn log_body(&mut self, limit: Option<usize>) {
        self.body_log = limit.map(BodyLog::new);
    }

    /// Start the turn's span (when telemetry is on), a child of the client's trace context.
    pub fn start_span(
        &mut self,
        telemetry: Option<&Telemetry>,
        client: &http::HeaderMap,
        method: &str,
        path: &str,
    ) {
        let Some(t) = telemetry else { return };
        let header = |n: &str| client.get(n).and_then(|v| v.to_str().ok());
        let (tp, ts) = (header("traceparent"), header("tracestate"));
        self.span = Some(t.start_request(tp, ts, method, path, self.outcome.start));
    }

    pub fn span_mut(&mut self) -> Option<&mut RequestSpan> {
        self.span.as_mut()
    }

    /// A compaction v1 request (its reply is the compaction object).
    pub fn is_compact(&self) -> bool {
        self.compact.is_some()
    }

    pub fn started(&self) -> bool {
        self.started
    }

    pub fn mode(&self) -> Option<&ReplyMode> {
        self.mode.as_ref()
    }

    /// The provider's head: the reply's mode. `None` without a converted request.
    pub fn on_head(
        &mut self,
        status: u16,
        headers: &http::HeaderMap,
        framing: Framing,
    ) -> Option<&ReplyMode> {
        let rctx = self.rctx.take()?;
        let header = |n: http::header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
        let content_type = header(http::header::CONTENT_TYPE)
            .unwrap_or("")
            .to_ascii_lowercase();
        let head = UpstreamHead {
            status,
            content_type: &content_type,
            retry_after: header(http::header::RETRY_AFTER).map(str::to_owned),
        };
        let mode = ReplyMode::on_head(rctx, &head, framing);
        let o = &mut self.outcome;
        o.upstream_status = status;
        o.first_byte = Some(o.start.elapsed());
        o.status = mode.client_status();
        self.started = true;
        self.mode = Some(mode);
        self.mode.as_ref()
    }

    /// Upstream body bytes (`None` with `end` for an end without bytes): what the client
    /// gets of them, accounted for; at the end, the store write.
    pub fn push(
        &mut self,
        store: Option<&Arc<Staged>>,
        input: Option<&[u8]>,
        end: bool,
        backend: &Backend,
    ) -> Chunk {
        if let (Some(span), Some(b)) = (self.span.as_mut(), input) {
            span.observe_upstream_body(b);
        }
        let Some(mode) = self.mode.as_mut() else {
            return Chunk::default();
        };
        let o = &mut self.outcome;
        let pushed = mode.push(input, end, &backend.name, &backend.api_key);
        if o.ttft.is_none() && mode.has_content(end) {
            o.ttft = Some(o.start.elapsed());
        }
        if let Some(err) = &pushed.error {
            o.error_code = err.code.clone();
        }
        if pushed.failed_code.is_some() {
            o.error_code = pushed.failed_code;
        }
        if let Some(code) = mode.converter().and_then(|c| c.failure_code()) {
            o.error_code = Some(code.to_owned());
        }
        // Kept as soon as the final Response exists, before the bytes that end the reply go
        // out: a client that reads the terminal event and asks for the response finds it
        // (the staged layer serves it while it is written).
        if self.pending.is_some() {
            if let (Some(json), Some(id)) = (mode.final_json(pushed.out.as_deref()), &o.response_id)
            {
                if let Some(pending) = self.pending.take() {
                    keep(store, id, json, pending);
                }
            }
        }
        let out = match (&self.compact, pushed.out) {
            (Some(kept), Some(obj)) if end && !mode.is_event_stream() => {
                Some(Bytes::from(compaction_object(&obj, kept)))
            }
            (_, out) => out,
        };
        if let Some(b) = out.as_ref() {
            o.bytes_out += b.len() as u64;
            if let Some(log) = self.body_log.as_mut() {
                log.push(b);
            }
        }
        Chunk {
            out,
            error: pushed.error,
        }
    }

    /// The reply ended with the provider's own search calls, which the proxy answers (Kimi's
    /// `$web_search`): the Chat body that continues the turn — `chat`, the body that was
    /// sent, with the answer appended — once. `None`: the turn is over.
    pub fn continuation(&mut self, chat: &[u8]) -> Option<Vec<u8>> {
        let messages = self.mode.as_mut()?.converter_mut()?.take_continuation()?;
        let next = crate::convert::request::append_messages(chat, &messages);
        if next.is_none() {
            tracing::warn!("the Chat body could not be continued: the search call ends the turn");
        }
        next
    }

    /// The provider answered the continuation with a 2xx: its reply continues the response.
    pub fn resume(&mut self) {
        if let Some(mode) = self.mode.as_mut() {
            mode.resume();
        }
    }

    /// The provider refused the continuation (`status`, its error `body`): the turn ends with
    /// `response.failed` carrying the provider's error; the bytes that end it.
    pub fn continuation_refused(
        &mut self,
        status: u16,
        body: &[u8],
        backend: &Backend,
    ) -> Option<Bytes> {
        let mut err = crate::convert::error::map_http_error(
            backend.quirks.profile,
            status,
            body,
            &backend.name,
            None,
        );
        err.scrub_key(&backend.api_key);
        tracing::warn!(backend = %backend.name, upstream_status = status, "the provider refused the answer to its search call: {}", err.message);
        let code = err
            .code
            .clone()
            .unwrap_or_else(|| "server_error".to_owned());
        self.outcome.upstream_status = status;
        self.outcome.error_code = Some(code.clone());
        let out = self
            .mode
            .as_mut()?
            .fail(&code, &err.message, &backend.name)?;
        self.outcome.bytes_out += out.len() as u64;
        if let Some(log) = self.body_log.as_mut() {
            log.push(&out);
        }
        Some(out)
    }

    /// The reply under way broke (`cause`): the bytes that end it (`response.failed`, or a
    /// failed Response object), `None` when there is nothing to send (the client is gone).
    pub fn fail(&mut self, cause: Cause, backend: &str) -> Option<Bytes> {
        self.cause = Some(cause);
        if cause.client_gone() {
            tracing::debug!(backend = %backend, "client gone mid-response");
            self.outcome.error_code = Some("client_closed".to_owned());
            return None;
        }
        let message = cause.mid_stream(backend);
        tracing::warn!(backend = %backend, "stream failed: {message}");
        self.outcome.error_code = Some(MID_STREAM_CODE.to_owned());
        let out = self
            .mode
            .as_mut()?
            .fail(MID_STREAM_CODE, &message, backend)?;
        self.outcome.bytes_out += out.len() as u64;
        if let Some(log) = self.body_log.as_mut() {
            log.push(&out);
        }
        Some(out)
    }

    /// A failure before the reply's head (the client got `err`).
    pub fn refused(&mut self, err: &ClientError, cause: Option<Cause>) {
        self.outcome.status = err.status;
        self.outcome.error_code = err.code.clone();
        self.cause = cause;
    }

    /// The turn ended cleanly (the provider's body ended, the reply is complete).
    pub fn clean(&self) -> bool {
        self.cause.is_none()
            && self.outcome.error_code.is_none()
            && (200..300).contains(&self.outcome.upstream_status)
    }

    /// The final Response object's JSON (a stream's or a JSON reply's), once complete.
    pub fn final_json(&self) -> Option<&[u8]> {
        self.mode
            .as_ref()
            .and_then(ReplyMode::converter)
            .and_then(|c| c.final_json())
    }

    /// Its statistics class: the failure's, else the statuses'.
    pub fn class(&self) -> Option<ErrorClass> {
        let o = &self.outcome;
        match self.cause {
            Some(c) => Some(c.class(self.started, (o.status, o.upstream_status))),
            None => outcome_class(o.status, o.upstream_status, o.error_code.is_some()),
        }
    }

    /// Record it once (access line, statistics, span, body log). The usage is the
    /// exchange's; the class and the error name are `end`'s when it has them (a transport
    /// failure the caller saw), else the exchange's own.
    pub fn finish(
        mut self,
        config: &Config,
        stats: &Stats,
        end: Ending<'_>,
    ) -> Option<super::record::Spend> {
        let end = Ending {
            usage: usage_tokens(self.mode.as_ref().and_then(ReplyMode::usage)),
            class: end.class.or_else(|| self.class()),
            error: end.error.or(self.cause.map(|c| c.name)),
            ..end
        };
        let (log, span) = (self.body_log.take(), self.span.take());
        record(config, stats, &self.outcome, &end, log, span)
    }
}
