//! A turn's conversation with the provider when the proxy holds the connection to it (every
//! WebSocket turn, and an HTTP turn on a backend whose search the proxy answers): the reply
//! relayed to the client as it is converted (turn::exchange), within the backend's total
//! timeout, and the provider's own search calls answered — the Chat body sent again with the
//! answer appended ([`Exchange::continuation`]) — until the turn is over.
//!
//! ```text
//!  reply ─▶ relay ─▶ client          (the turn ends)
//!             └─ a search call ─▶ Upstream::send(body + answer) ─▶ relay ─▶ ...
//! ```

use std::future::Future;

use bytes::Bytes;

use crate::config::Backend;
use crate::convert::error::ClientError;

use super::exchange::Exchange;
use super::reply::ReplyMode;
use super::rescue::Cause;
use super::socket::{Env, Reply, Upstream};

/// Where the reply's bytes go.
pub trait Client: Send {
    /// Bytes for the client; `error`: they are the provider's error, mapped (a WebSocket
    /// client gets it as an error frame). `false`: the client is gone.
    fn send(
        &mut self,
        mode: Option<&ReplyMode>,
        out: Bytes,
        error: Option<ClientError>,
    ) -> impl Future<Output = bool> + Send;
}

/// The client went away mid-reply.
const CLIENT_GONE: Cause = Cause {
    kind: super::rescue::Kind::Other,
    side: super::rescue::Side::Downstream,
    name: "WriteError",
};

/// The provider stopped sending for longer than the backend's `idle_ms`.
const IDLE_TIMEOUT: Cause = Cause {
    kind: super::rescue::Kind::ReadTimeout,
    side: super::rescue::Side::Upstream,
    name: "ReadTimedout",
};

/// The most an error body of a refused continuation is read.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Relay `reply` (its head already given to `x`), then answer each search call the reply
/// ends with and relay the provider's next reply, on backend `idx`. `chat`: the Chat body
/// sent. `true` when the last reply's body ended cleanly (its connection was released).
#[allow(clippy::too_many_arguments)]
pub async fn converse<U: Upstream, C: Client>(
    env: Env<'_>,
    upstream: &U,
    x: &mut Exchange,
    reply: U::Reply,
    idx: usize,
    mut chat: Bytes,
    headers: &http::HeaderMap,
    trace: &[(&'static str, http::HeaderValue)],
    client: &mut C,
) -> bool {
    let Some(mut backend) = env.config.backends.get(idx) else {
        return false;
    };
    let mut reply = reply;
    loop {
        if !relay(env, &mut reply, x, backend, client).await {
            return false;
        }
        let Some(next) = x.continuation(&chat) else {
            reply.release().await;
            return true;
        };
        reply.release().await;
        chat = Bytes::from(next);
        let (next_reply, at) = match upstream.send(idx, headers, chat.clone(), trace).await {
            Ok(sent) => sent,
            Err(f) => {
                fail(x, f.cause, backend, client).await;
                return false;
            }
        };
        backend = env.config.backends.get(at).unwrap_or(backend);
        reply = next_reply;
        let status = reply.head().0;
        if !(200..300).contains(&status) {
            let body = read_all(&mut reply, ERROR_BODY_LIMIT).await;
            if let Some(out) = x.continuation_refused(status, &body, backend) {
                client.send(x.mode(), out, None).await;
            }
            return false;
        }
        x.resume();
    }
}

/// The provider's reply, converted as it arrives (turn::exchange), each piece sent to
/// `client`, within the backend's idle gap between reads and its total timeout. `true` when
/// the body ended cleanly.
pub async fn relay<R: Reply, C: Client>(
    env: Env<'_>,
    reply: &mut R,
    x: &mut Exchange,
    backend: &Backend,
    client: &mut C,
) -> bool {
    let (total, idle) = (backend.timeouts.total, backend.timeouts.idle);
    loop {
        let remaining = total.saturating_sub(x.outcome.start.elapsed());
        // Each read waits at most the idle gap, and never past the total.
        let (wait, over) = if remaining <= idle {
            (remaining, Cause::total_timeout())
        } else {
            (idle, IDLE_TIMEOUT)
        };
        let (chunk, end) = match tokio::time::timeout(wait, reply.read()).await {
            Ok(Ok(Some(b))) => (Some(b), false),
            Ok(Ok(None)) => (None, true),
            Ok(Err(cause)) => {
                fail(x, cause, backend, client).await;
                return false;
            }
            Err(_) => {
                fail(x, over, backend, client).await;
                return false;
            }
        };
        let pushed = x.push(env.store, chunk.as_deref(), end, backend);
        if let Some(out) = pushed.out {
            if !client.send(x.mode(), out, pushed.error).await {
                // Nobody reads the rest: the provider's reply is dropped, not read to its end.
                x.fail(CLIENT_GONE, &backend.name);
                return false;
            }
        }
        if end {
            return true;
        }
    }
}

/// The provider's reply broke mid-turn (turn::rescue): the reply ends with `response.failed`
/// (or the error the client is owed).
pub async fn fail<C: Client>(x: &mut Exchange, cause: Cause, backend: &Backend, client: &mut C) {
    if let Some(out) = x.fail(cause, &backend.name) {
        client.send(x.mode(), out, None).await;
    }
}

/// A reply's body, up to `limit` bytes (an error body: what is past it is not read).
async fn read_all<R: Reply>(reply: &mut R, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match reply.read().await {
            Ok(Some(b)) => body.extend_from_slice(&b),
            _ => break,
        }
    }
    body
}
