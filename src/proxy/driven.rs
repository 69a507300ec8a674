//! An HTTP turn, carried by the proxy itself on a provider connection it holds, as it carries
//! a WebSocket turn: the Chat request goes through `Upstream::send` (retries, `Retry-After`,
//! failover and the circuit before the first byte), the reply through `turn::converse`
//! (converted as it comes, a provider's search call answered with a second request). The
//! turn's rules are the turn layer's (prepare, converse, the record in `logging`); this
//! module gives it the client's body, Pingora's connector and the client's session.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use crate::convert::error::ClientError;
use crate::convert::streaming::Framing;
use crate::turn::converse::{converse, Client};
use crate::turn::reply::{passes_provider_header, ReplyMode};
use crate::turn::route;
use crate::turn::socket::{Reply, Upstream};
use crate::turn::upstream::{chat_path, trace_headers, Attempts};

use super::websocket::Pingora;
use super::{write_error_now, ConvertProxy, Ctx};

/// A turn the proxy refused before any provider call: its error, recorded as the proxy's
/// own refusal (as over a WebSocket and through Pingora's flow).
async fn refuse(session: &mut Session, ctx: &mut Ctx, err: ClientError) -> Result<bool> {
    ctx.turn
        .exchange
        .refused(&err, Some(crate::turn::rescue::Cause::rejected(err.status)));
    let close = ctx.admitted.close_after_error;
    super::local::write_error(session, err.status, &err.body_bytes(), close).await?;
    Ok(true)
}

/// The client's connection: the reply's bytes as the response body.
struct Downstream<'s> {
    session: &'s mut Session,
    gone: bool,
}

impl Client for Downstream<'_> {
    async fn send(
        &mut self,
        _mode: Option<&ReplyMode>,
        out: Bytes,
        _error: Option<ClientError>,
    ) -> bool {
        if self.gone {
            return false;
        }
        if out.is_empty() {
            return true;
        }
        if let Err(e) = self.session.write_response_body(Some(out), false).await {
            tracing::debug!("client gone mid-response: {e}");
            self.gone = true;
        }
        !self.gone
    }
}

impl ConvertProxy {
    /// Carry the admitted turn on backend `idx` to its end; `Ok(true)`: answered.
    pub(super) async fn drive_http(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        idx: usize,
    ) -> Result<bool> {
        let gen = std::sync::Arc::clone(&ctx.gen);
        let Some(backend) = gen.config.backends.get(idx) else {
            return write_error_now(session, ctx, route::no_backend("")).await;
        };
        let mut raw = std::mem::take(&mut ctx.turn.body);
        if raw.is_empty() {
            // Nothing of the body read yet (routing by model reads its first chunk).
            super::continue_body(session).await?;
        }
        while let Some(chunk) = session.read_request_body().await? {
            if raw.len() + chunk.len() > gen.config.max_body_bytes {
                ctx.admitted.close_after_error = true;
                session.set_keepalive(None);
                return refuse(session, ctx, route::too_large(gen.config.max_body_bytes)).await;
            }
            raw.extend_from_slice(&chunk);
        }
        let prepared = match self.prepare(ctx, backend, &raw).await {
            Ok(p) => p,
            Err(e) => return refuse(session, ctx, e).await,
        };
        let x = &mut ctx.turn.exchange;
        x.log_body(gen.config.body_log_limit());
        let p = prepared.prepared;
        x.outcome.model = p.model;
        x.prepared(p.rctx, prepared.pending, prepared.kept);
        ctx.opened_stream();
        let x = &mut ctx.turn.exchange;
        let headers = session.req_header().headers.clone();
        let trace = trace_headers(x.span_mut(), &headers, backend, &chat_path(backend));
        let chat = Bytes::from(p.chat);
        let upstream = Pingora {
            proxy: self,
            gen: &gen,
        };
        let (reply, at) = match upstream.send(idx, &headers, chat.clone(), &trace).await {
            Ok(sent) => sent,
            Err(f) => {
                tracing::warn!(backend = %backend.name, status = f.error.status, "{}", f.error.message);
                let err = f.error;
                ctx.turn.exchange.refused(&err, Some(f.cause));
                super::local::write_error(session, err.status, &err.body_bytes(), false).await?;
                return Ok(true);
            }
        };
        ctx.admitted.attempts = Some(Attempts::new(at));
        let x = &mut ctx.turn.exchange;
        let (status, provider) = reply.head();
        let Some(mode) = x.on_head(status, provider, Framing::Sse) else {
            return Ok(true); // not reached: the request was prepared
        };
        let mut head = ResponseHeader::build(mode.client_status(), Some(8))?;
        for (name, value) in provider {
            if passes_provider_header(name.as_str()) {
                head.insert_header(name.clone(), value.clone())?;
            }
        }
        for (name, value) in mode.content_headers() {
            head.insert_header(*name, *value)?;
        }
        head.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        session.write_response_header(Box::new(head), false).await?;
        let env = self.env(&gen);
        let mut client = Downstream {
            session,
            gone: false,
        };
        converse(
            env,
            &upstream,
            x,
            reply,
            at,
            chat,
            &headers,
            &trace,
            &mut client,
        )
        .await;
        if !client.gone {
            client.session.write_response_body(None, true).await?;
        }
        Ok(true)
    }
}
