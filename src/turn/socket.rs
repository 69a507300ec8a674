//! One turn of a WebSocket connection, transport-free: the session (`turn::session`) hands
//! each resolved `response.create` here, and it runs the same exchange as an HTTP request —
//! backend choice, prepare, the provider, reply, rescue, record — with every event one text
//! frame. The provider is reached through [`Upstream`] (Pingora's connector in
//! `proxy/websocket`, a script in the tests), so nothing here holds a Pingora type.
//!
//! ```text
//!  session ─▶ SocketTurns::turn ─▶ choose_backend ─▶ prepare_turn ─┬─ warm-up: created + completed
//!                                                                  └─ Exchange ⇄ Upstream ─▶ frames
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::config::Config;
use crate::convert::error::ClientError;
use crate::convert::streaming::{Framing, StreamConverter};
use crate::stats::Stats;
use crate::store::staged::Staged;
use crate::telemetry::Telemetry;

use super::chain::{entry_from_items, extend_with_output, peek_previous, ConnChain, Resolved};
use super::converse::{converse, Client};
use super::exchange::Exchange;
use super::intern::Interner;
use super::prepare::{absorb_output, prepare_turn};
use super::record::{Ending, Outcome};
use super::refs::references;
use super::reply::ReplyMode;
use super::rescue::{Cause, Failure};
use super::route::{choose_backend, no_backend, owner_of, WsRoute};
use super::session::{TurnEnd, TurnFuture, Turns};
use super::stored::{pending_for, stored_chain};
use super::upstream::{chat_path, trace_headers};

/// A WebSocket turn's access line: `WS response.create`.
pub const WS_ENDING: Ending<'static> = Ending {
    method: "WS",
    path: "response.create",
    usage: (0, 0, 0, 0),
    class: None,
    error: None,
    local: false,
};

/// The proxy's shared state a turn uses.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub config: &'a Config,
    pub stats: &'a Stats,
    pub store: Option<&'a Arc<Staged>>,
    pub echoes: &'a Interner,
    pub telemetry: Option<&'a Telemetry>,
    /// Where the spend of named client keys is kept (their budgets).
    pub ledger: Option<&'a dyn crate::store::ledger::Ledger>,
}

/// The way to the provider: the Chat request sent (with retries and failover), its reply's
/// head read.
pub trait Upstream: Sync {
    type Reply: Reply;
    /// Send `chat` to backend `first` or its fallbacks; the reply and the backend that
    /// answered. A failure before the reply's head is the client's error and its cause.
    fn send<'a>(
        &'a self,
        first: usize,
        client: &'a http::HeaderMap,
        chat: Bytes,
        trace: &'a [(&'static str, http::HeaderValue)],
    ) -> impl Future<Output = Result<(Self::Reply, usize), Failure>> + Send + 'a;
}

/// The provider's reply under way.
pub trait Reply: Send {
    /// Its status and headers.
    fn head(&self) -> (u16, &http::HeaderMap);
    /// The next body bytes; `None` at the body's end.
    fn read(&mut self) -> impl Future<Output = Result<Option<Bytes>, Cause>> + Send + '_;
    /// The body ended cleanly: the connection may be reused.
    fn release(self) -> impl Future<Output = ()> + Send;
}

/// The session's side of the proxy for one connection: a turn, the store, the records.
pub struct SocketTurns<'a, U> {
    pub env: Env<'a>,
    pub upstream: &'a U,
    pub route: WsRoute,
    /// The upgrade request's headers (token, trace context, the headers the provider gets).
    pub client: &'a http::HeaderMap,
}

impl<U: Upstream> Turns for SocketTurns<'_, U> {
    fn load_stored_chain<'a>(
        &'a self,
        text: &'a str,
        chain: &'a mut ConnChain,
    ) -> impl Future<Output = Result<(), ClientError>> + Send + 'a {
        load_stored_chain(self.env, text, chain, self.client)
    }

    fn resolve_references<'a>(
        &'a self,
        text: &'a str,
        chain: &'a ConnChain,
    ) -> impl Future<Output = Result<Option<String>, ClientError>> + Send + 'a {
        resolve_references(self.env, text, chain, self.client)
    }

    fn reject(&self, err: &ClientError) {
        let mut x = Exchange::new(Outcome::new(Instant::now()));
        x.outcome.backend = self
            .route
            .prefix_backend
            .or(self.env.config.default_backend);
        x.refused(err, Some(Cause::rejected(err.status)));
        x.finish(self.env.config, self.env.stats, WS_ENDING);
    }

    fn turn(&self, resolved: Resolved, tx: mpsc::Sender<Frame>) -> TurnFuture<'_> {
        Box::pin(turn(self, resolved, tx))
    }
}

/// One turn: every event a text frame on `tx`, recorded once.
async fn turn<U: Upstream>(
    t: &SocketTurns<'_, U>,
    resolved: Resolved,
    tx: mpsc::Sender<Frame>,
) -> TurnEnd {
    let env = t.env;
    let previous = resolved.previous.clone();
    let failed = |response_id: String| TurnEnd {
        response_id,
        entry: None,
        previous: previous.clone(),
    };
    // A stream from its converted request on (over a socket every reply is one).
    let mut x = Exchange::new(Outcome::new(Instant::now()));
    x.outcome.model = crate::convert::sniff::sniff_model(&resolved.head);
    x.outcome.bytes_in = resolved.head.len() as u64;
    let model = x.outcome.model.as_deref();
    let chosen = choose_backend(env.config, t.route.prefix_backend, model);
    let Some((idx, backend)) = chosen.and_then(|i| env.config.backends.get(i).map(|b| (i, b)))
    else {
        refuse(env, x, &tx, &no_backend(""), None).await;
        return failed(String::new());
    };
    x.outcome.backend = Some(idx);
    x.outcome.client = super::route::client_name(env.config, t.client);
    if resolved.generate {
        let token = super::route::client_token(t.client);
        let now = crate::store::now_secs();
        if let Some(err) = super::budget::over_budget(env.config, env.ledger, token, now).await {
            refuse(env, x, &tx, &err, Some(Cause::rejected(err.status))).await;
            return failed(String::new());
        }
        // A turn's span from its backend choice on, as over HTTP (a warm-up has none).
        x.start_span(env.telemetry, t.client, WS_ENDING.method, WS_ENDING.path);
    }
    let log = env.config.body_log_limit();
    let prepared = match prepare_turn(&resolved, idx, backend, env.echoes, log) {
        Ok(p) => p,
        Err(err) => {
            let cause = Cause::rejected(err.status);
            refuse(env, x, &tx, &err, Some(cause)).await;
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
        // Codex's warm-up: a response without the provider; its input is the base of the
        // next turn. Not a turn of the provider's: no record.
        let mut conv = StreamConverter::new(rctx, Framing::WebSocket);
        conv.start();
        conv.finish_without_events();
        send_lines(&tx, &conv.take_output()).await;
        let mut entry = resolved.entry;
        entry.bytes += next_chat.settled_bytes();
        entry.chat = Some(Arc::new(next_chat));
        return TurnEnd {
            response_id,
            entry: Some(entry),
            previous,
        };
    }
    x.log_body(log);
    let n = resolved.entry.items.len();
    let own = &resolved.entry.items[n - resolved.new_items.min(n)..];
    let pending = pending_for(
        resolved.store,
        owner_of(env.config, t.client),
        previous.clone(),
        own.iter()
            .filter_map(|i| RawValue::from_string(i.to_string()).ok())
            .collect(),
    );
    x.prepared(rctx, pending, None);
    x.outcome.model = prepared.model.or(x.outcome.model.take());
    let trace = trace_headers(x.span_mut(), t.client, backend, &chat_path(backend));
    let chat = Bytes::from(prepared.chat);
    let sent = t.upstream.send(idx, t.client, chat.clone(), &trace).await;
    let (reply, idx) = match sent {
        Ok(s) => s,
        Err(f) => {
            let err = &f.error;
            tracing::warn!(backend = %backend.name, status = err.status, "{}", err.message);
            refuse(env, x, &tx, err, Some(f.cause)).await;
            return failed(response_id);
        }
    };
    x.outcome.backend = Some(idx);
    let backend = env.config.backends.get(idx).unwrap_or(backend);
    let (status, headers) = reply.head();
    if x.on_head(status, headers, Framing::WebSocket).is_none() {
        // Not reached: the request was prepared.
        x.finish(env.config, env.stats, WS_ENDING);
        return failed(response_id);
    }
    let mut frames = Frames(&tx);
    let clean_end = converse(
        env,
        t.upstream,
        &mut x,
        reply,
        idx,
        chat,
        t.client,
        &trace,
        &mut frames,
    )
    .await;
    let entry = if clean_end && x.clean() {
        x.final_json().map(|json| {
            let mut e = extend_with_output(&resolved.entry, json);
            if let Some(p) = absorb_output(&next_chat, json, backend, &catalog) {
                e.bytes += p.settled_bytes();
                e.chat = Some(Arc::new(p));
            }
            e
        })
    } else {
        None
    };
    if let Some(spend) = x.finish(env.config, env.stats, WS_ENDING) {
        spend.keep(env.ledger).await;
    }
    TurnEnd {
        response_id,
        entry,
        previous,
    }
}

/// A turn that ended in `err` before any reply: its error frame, and its record.
async fn refuse(
    env: Env<'_>,
    mut x: Exchange,
    tx: &mpsc::Sender<Frame>,
    err: &ClientError,
    cause: Option<Cause>,
) {
    x.refused(err, cause);
    x.finish(env.config, env.stats, WS_ENDING);
    let _ = tx.send(Frame::text(err.ws_frame())).await;
}

/// A WebSocket client: every event a text frame, a provider's error an error frame.
struct Frames<'a>(&'a mpsc::Sender<Frame>);

impl Client for Frames<'_> {
    async fn send(
        &mut self,
        mode: Option<&ReplyMode>,
        out: Bytes,
        error: Option<ClientError>,
    ) -> bool {
        match error {
            Some(err) => self.0.send(Frame::text(err.ws_frame())).await.is_ok(),
            None => send_reply(self.0, mode, out).await,
        }
    }
}

/// When `text` continues a response this connection does not know, put its chain from the
/// response store into `chain` (then it resolves like a connection-local one).
async fn load_stored_chain(
    env: Env<'_>,
    text: &str,
    chain: &mut ConnChain,
    client: &http::HeaderMap,
) -> Result<(), ClientError> {
    let (Some(store), Some(prev)) = (env.store, peek_previous(text)) else {
        return Ok(());
    };
    if chain.get(&prev).is_some() {
        return Ok(());
    }
    let owner = owner_of(env.config, client);
    if let Some(items) = stored_chain(store.as_ref(), &prev, owner.as_deref()).await? {
        chain.insert(prev, entry_from_items(items));
    }
    Ok(())
}

/// `text` with its `item_reference`s replaced by the items they name: items of this
/// connection's chain first (made here, stored or not), then the response store's (of this
/// client's token). `None` when it has none; a 400 for one found nowhere.
async fn resolve_references(
    env: Env<'_>,
    text: &str,
    chain: &ConnChain,
    client: &http::HeaderMap,
) -> Result<Option<String>, ClientError> {
    let Some(mut refs) = references(text.as_bytes()) else {
        return Ok(None);
    };
    refs.resolve_with(|id| chain.find_item(id));
    if let Some(store) = env.store {
        let owner = owner_of(env.config, client);
        refs.resolve_stored(store.as_ref(), owner.as_deref())
            .await?;
    }
    let body = refs.into_body()?;
    // Pieces of valid UTF-8 put together.
    Ok(Some(String::from_utf8(body).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })))
}

/// A reply's bytes as frames: event lines one frame each; a whole JSON body as one.
/// `false`: the session is gone.
async fn send_reply(tx: &mpsc::Sender<Frame>, mode: Option<&ReplyMode>, out: Bytes) -> bool {
    if mode.is_some_and(ReplyMode::is_event_stream) {
        send_lines(tx, &out).await
    } else if !out.is_empty() {
        tx.send(Frame::text(String::from_utf8_lossy(&out).into_owned()))
            .await
            .is_ok()
    } else {
        true
    }
}

/// Each `\n`-terminated line of `out` as one text frame; `false`: the session is gone.
async fn send_lines(tx: &mpsc::Sender<Frame>, out: &[u8]) -> bool {
    for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let text = String::from_utf8_lossy(line).into_owned();
        if tx.send(Frame::text(text)).await.is_err() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use serde_json::{json, Value};

    use super::*;
    use crate::turn::chain::{resolve_message, Message};
    use crate::turn::rescue::{Kind, Side};

    /// What the scripted provider does with the next request.
    enum Script {
        /// Answers 200 with these SSE chunks, then (when given) fails with the cause.
        Sse(Vec<String>, Option<Cause>),
        /// Never answers: the connection failed.
        Refused,
    }

    /// A provider that follows a script and keeps the Chat bodies it got.
    #[derive(Default)]
    struct Scripted {
        script: Mutex<VecDeque<Script>>,
        bodies: Mutex<Vec<Value>>,
    }

    struct ScriptedReply {
        head: http::HeaderMap,
        chunks: VecDeque<Bytes>,
        then: Option<Cause>,
    }

    impl Upstream for Scripted {
        type Reply = ScriptedReply;

        async fn send(
            &self,
            first: usize,
            _client: &http::HeaderMap,
            chat: Bytes,
            _trace: &[(&'static str, http::HeaderValue)],
        ) -> Result<(ScriptedReply, usize), Failure> {
            self.bodies
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&chat).unwrap());
            let next = self.script.lock().unwrap().pop_front();
            match next {
                Some(Script::Sse(chunks, then)) => {
                    let mut head = http::HeaderMap::new();
                    head.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/event-stream"),
                    );
                    let chunks = chunks.into_iter().map(Bytes::from).collect();
                    Ok((ScriptedReply { head, chunks, then }, first))
                }
                Some(Script::Refused) | None => Err(Failure::caused(
                    Cause::new(Kind::Connect, Side::Upstream, "ConnectRefused"),
                    "ds",
                )),
            }
        }
    }

    impl Reply for ScriptedReply {
        fn head(&self) -> (u16, &http::HeaderMap) {
            (200, &self.head)
        }

        async fn read(&mut self) -> Result<Option<Bytes>, Cause> {
            match self.chunks.pop_front() {
                Some(b) => Ok(Some(b)),
                None => self.then.take().map_or(Ok(None), Err),
            }
        }

        async fn release(self) {}
    }

    fn sse_text(text: &str) -> Vec<String> {
        let chunk = |delta: Value, finish: Value| {
            let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                "model": "deepseek-chat",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {c}\n\n")
        };
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": text}), Value::Null),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".to_owned(),
        ]
    }

    struct World {
        config: Config,
        stats: Stats,
        echoes: Interner,
        upstream: Scripted,
    }

    impl World {
        fn new(script: Vec<Script>) -> Self {
            let config = Config::from_json_str(
                r#"{"backends": [{"name": "ds", "provider": "deepseek", "url": "http://127.0.0.1:1/v1",
                    "model": "deepseek-chat", "match_rules": {"default": true}}]}"#,
                &|_| None,
            )
            .unwrap();
            World {
                config,
                stats: Stats::new(vec!["ds".into()]),
                echoes: Interner::default(),
                upstream: Scripted {
                    script: Mutex::new(script.into()),
                    bodies: Mutex::default(),
                },
            }
        }

        fn turns(&self) -> SocketTurns<'_, Scripted> {
            SocketTurns {
                env: Env {
                    config: &self.config,
                    stats: &self.stats,
                    store: None,
                    echoes: &self.echoes,
                    telemetry: None,
                    ledger: None,
                },
                upstream: &self.upstream,
                route: WsRoute {
                    prefix_backend: None,
                },
                client: &EMPTY_HEADERS,
            }
        }

        /// One message through the turn; its frames and its end (the chain updated as the
        /// session does).
        async fn run(&self, chain: &mut ConnChain, msg: Value) -> (Vec<Value>, TurnEnd) {
            let Message::Create(r) = resolve_message(&msg.to_string(), chain).unwrap() else {
                panic!("not a create: {msg}");
            };
            let (tx, mut rx) = mpsc::channel(256);
            let end = self.turns().turn(*r, tx).await;
            let mut frames = Vec::new();
            while let Ok(f) = rx.try_recv() {
                frames.push(serde_json::from_str(f.to_text().unwrap()).unwrap());
            }
            if let Some(e) = &end.entry {
                chain.insert(end.response_id.clone(), e.clone());
            }
            (frames, end)
        }

        fn errors(&self) -> Value {
            self.stats.json()["backends"][0]["errors"].clone()
        }
    }

    static EMPTY_HEADERS: std::sync::LazyLock<http::HeaderMap> =
        std::sync::LazyLock::new(http::HeaderMap::new);

    fn types(frames: &[Value]) -> Vec<&str> {
        frames.iter().map(|f| f["type"].as_str().unwrap()).collect()
    }

    fn create(extra: Value) -> Value {
        let mut m = json!({"type": "response.create", "model": "deepseek-chat",
            "input": [{"type": "message", "role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }

    #[tokio::test]
    async fn a_warm_up_answers_without_the_provider_and_the_next_turn_continues_it() {
        let w = World::new(vec![Script::Sse(sse_text("hello"), None)]);
        let mut chain = ConnChain::new(16, 1 << 20);
        let (frames, end) = w.run(&mut chain, create(json!({"generate": false}))).await;
        assert_eq!(
            types(&frames),
            [
                "response.created",
                "response.in_progress",
                "response.completed"
            ]
        );
        assert!(w.upstream.bodies.lock().unwrap().is_empty());
        assert!(end.entry.as_ref().unwrap().chat.is_some(), "converted once");
        let next = create(json!({"previous_response_id": end.response_id,
            "input": [{"type": "message", "role": "user", "content": "and then"}]}));
        let (frames, end) = w.run(&mut chain, next).await;
        assert_eq!(types(&frames).last(), Some(&"response.completed"));
        assert!(end.entry.is_some());
        let bodies = w.upstream.bodies.lock().unwrap();
        let users: Vec<&Value> = bodies[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| &m["content"])
            .collect();
        assert_eq!(users, [&json!("hi"), &json!("and then")], "{}", bodies[0]);
        // A warm-up is no provider turn: one request in the statistics.
        assert_eq!(w.stats.json()["backends"][0]["requests"], 1);
    }

    #[tokio::test]
    async fn a_reply_cut_mid_stream_ends_in_response_failed_and_is_not_continued() {
        let cut = Cause::new(Kind::Other, Side::Upstream, "ConnectionClosed");
        let mut chunks = sse_text("partial");
        chunks.truncate(2);
        let w = World::new(vec![Script::Sse(chunks, Some(cut))]);
        let mut chain = ConnChain::new(16, 1 << 20);
        let (frames, end) = w.run(&mut chain, create(json!({}))).await;
        let last = frames.last().unwrap();
        assert_eq!(last["type"], "response.failed", "{frames:?}");
        assert!(
            last["response"]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ConnectionClosed"),
            "{last}"
        );
        assert!(end.entry.is_none(), "a failed turn is not continued");
        assert_eq!(w.errors()["stream_failed"], 1, "{}", w.stats.json());
    }

    #[tokio::test]
    async fn a_provider_that_cannot_be_reached_and_a_refused_request_each_get_one_error_frame() {
        let w = World::new(vec![Script::Refused]);
        let mut chain = ConnChain::new(16, 1 << 20);
        let (frames, end) = w.run(&mut chain, create(json!({}))).await;
        assert_eq!(types(&frames), ["error"], "{frames:?}");
        assert_eq!(frames[0]["status"], 502, "{frames:?}");
        assert!(end.entry.is_none());
        // Refused by the conversion: the provider is not called, the client's class.
        let (frames, _) = w
            .run(&mut chain, create(json!({"temperature": "hot"})))
            .await;
        assert_eq!(types(&frames), ["error"], "{frames:?}");
        assert_eq!(frames[0]["status"], 400, "{frames:?}");
        assert_eq!(w.upstream.bodies.lock().unwrap().len(), 1);
        let errors = w.errors();
        assert_eq!(
            (errors["connect"].as_u64(), errors["client"].as_u64()),
            (Some(1), Some(1)),
            "{errors}"
        );
    }
}
