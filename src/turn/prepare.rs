//! Prepare: the client's create body → the provider's Chat body and the response context.
//! One function for both transports (an HTTP body, or a WebSocket message resolved against
//! its chain into the same body).

use crate::config::Backend;
use crate::convert::error::ClientError;
use crate::convert::request::{
    chat_body, convert_request, convert_turn, parse_request, ChatPrefix, InvalidRequest,
    RequestOptions, Turn,
};
use crate::convert::tools::ToolCatalog;
use crate::convert::ResponseContext;
use crate::types::responses::InputItem;

use crate::store::Store;

use super::chain::Resolved;
use super::compact::Kept;
use super::intern::Interner;
use super::stored::{pending_of, prepend_chain, previous_chain, Pending};

/// A converted request, ready for the provider.
#[derive(Debug)]
pub struct Prepared {
    /// The Chat Completions body.
    pub chat: Vec<u8>,
    pub rctx: ResponseContext,
    /// The model the client asked for (for the access log).
    pub model: Option<String>,
}

/// Parse and convert `raw` for `backend`. `echoes`: shares identical echoed request fields
/// between open requests. `log_body`: the size limit when bodies are logged.
/// `chain_resolved`: `input` already holds the conversation `previous_response_id` names
/// (a WebSocket chain), which is then only echoed.
pub fn prepare(
    raw: &[u8],
    backend: &Backend,
    echoes: &Interner,
    log_body: Option<usize>,
    chain_resolved: bool,
) -> Result<Prepared, ClientError> {
    let req = parse_request(raw).map_err(invalid)?;
    prepare_request(req, raw.len(), backend, echoes, log_body, chain_resolved)
}

/// [`prepare`] for a request already parsed (`size`: its body's length, to size the Chat
/// body's buffer).
pub fn prepare_request(
    req: crate::types::responses::ResponsesRequest<'_>,
    size: usize,
    backend: &Backend,
    echoes: &Interner,
    log_body: Option<usize>,
    chain_resolved: bool,
) -> Result<Prepared, ClientError> {
    let model = req.model.clone();
    let opts = options(backend, echoes, chain_resolved);
    let converted = convert_request(req, &opts).map_err(invalid)?;
    let chat = chat_body(&converted.chat, size).map_err(|e| {
        ClientError::new(
            500,
            "server_error",
            Some("server_error"),
            format!("Internal proxy error: serialising the chat request failed ({e})."),
        )
    })?;
    let c = converted;
    let rctx = converted_tail(
        backend,
        echoes,
        log_body,
        &chat,
        c.ctx,
        &c.skipped,
        &c.unconverted,
    );
    Ok(Prepared { chat, rctx, model })
}

/// The conversion options for `backend` (the tools cache, its quirks and model).
fn options<'a>(
    backend: &'a Backend,
    echoes: &'a Interner,
    chain_resolved: bool,
) -> RequestOptions<'a> {
    RequestOptions {
        tools: Some(&echoes.tools),
        quirks: &backend.quirks,
        model_override: backend.model.as_deref(),
        id_seed: None,
        chain_resolved,
    }
}

/// After a conversion, for both transports: the dialect guard's report, the debug line of
/// what was left out, the request body log, and the echoed fields shared.
fn converted_tail(
    backend: &Backend,
    echoes: &Interner,
    log_body: Option<usize>,
    chat: &[u8],
    mut rctx: ResponseContext,
    skipped: &[String],
    unconverted: &[crate::convert::Unconverted],
) -> ResponseContext {
    super::guard::report(&backend.name, unconverted);
    if !skipped.is_empty() {
        tracing::debug!(backend = %backend.name, ?skipped, "left out what the provider cannot take");
    }
    if let Some(max) = log_body {
        crate::logger::log_body("request", &backend.name, chat, max);
    }
    rctx.echo = echoes.intern(rctx.echo);
    rctx
}

/// What an HTTP create is prepared with.
pub struct HttpTurn<'a> {
    pub backend: &'a Backend,
    pub echoes: &'a Interner,
    /// The size limit when bodies are logged.
    pub log_body: Option<usize>,
    /// The response store (`None`: `store.type` is `none`).
    pub store: Option<&'a dyn Store>,
    /// The client token's hash, when tokens are checked (a stored response's owner).
    pub owner: Option<String>,
    /// Remote compaction v1: `raw` is a `/responses/compact` body.
    pub compact: bool,
}

/// An HTTP create, prepared.
#[derive(Debug)]
pub struct PreparedHttp {
    pub prepared: Prepared,
    /// What the store keeps once the response is complete (`store` not false).
    pub pending: Option<Pending>,
    /// Remote compaction v1: the user messages its output keeps.
    pub kept: Option<Kept>,
}

/// Prepare an HTTP create: its item references are resolved from the store, a compaction
/// request becomes its summarisation create, a `previous_response_id` gets its stored chain
/// in front of the input, then the body is converted.
pub async fn prepare_http(raw: &[u8], t: HttpTurn<'_>) -> Result<PreparedHttp, ClientError> {
    // `item_reference`s become the stored items they name (the body is rewritten, so what
    // is stored of this request holds the items themselves).
    let resolved = super::refs::resolve_http(raw, t.store, t.owner.as_deref()).await?;
    let raw = resolved.as_deref().unwrap_or(raw);
    let compacted;
    let (raw, kept) = if t.compact {
        let (create, kept) = super::compact::compact_request(raw)?;
        compacted = create;
        (&compacted[..], Some(kept))
    } else {
        (raw, None)
    };
    // The stored conversation the request continues: the request borrows from it.
    let chain;
    let mut req = parse_request(raw).map_err(invalid)?;
    let mut pending = None;
    let mut chain_resolved = false;
    if let (Some(store), None) = (t.store, &kept) {
        chain = previous_chain(store, &req, t.owner.as_deref()).await?;
        if let Some(chain) = &chain {
            prepend_chain(&mut req, chain);
            chain_resolved = true;
        }
        pending = pending_of(raw, &mut req, t.owner);
    }
    let prepared = prepare_request(
        req,
        raw.len(),
        t.backend,
        t.echoes,
        t.log_body,
        chain_resolved,
    )?;
    Ok(PreparedHttp {
        prepared,
        pending,
        kept,
    })
}

/// A request the client got wrong → 400 in OpenAI's shape.
pub fn invalid(e: InvalidRequest) -> ClientError {
    let mut err = ClientError::new(400, "invalid_request_error", e.code, e.message);
    err.param = e.param;
    err
}

/// A WebSocket turn prepared on top of its chain's converted conversation.
#[derive(Debug)]
pub struct PreparedTurn {
    pub prepared: Prepared,
    /// The converted conversation after this turn's input (its output is added with
    /// [`absorb_output`]).
    pub next: ChatPrefix,
    /// Whether the chain's converted prefix was used (else the whole chain was converted).
    pub incremental: bool,
}

/// What a chain's converted prefix depends on besides the request: the backend (its
/// profile) and the tools.
pub fn prefix_key(backend: usize, tools_key: u64) -> u64 {
    tools_key ^ (backend as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Prepare a WebSocket turn: only the new items are parsed, converted and serialised when
/// the predecessor's converted conversation fits (same backend, same tools); otherwise the
/// whole chain is. The Chat body is the same either way.
pub fn prepare_turn(
    resolved: &Resolved,
    backend_idx: usize,
    backend: &Backend,
    echoes: &Interner,
    log_body: Option<usize>,
) -> Result<PreparedTurn, ClientError> {
    let key = prefix_key(backend_idx, resolved.tools_key);
    let prefix = resolved.base_chat.as_deref().filter(|p| p.key == key);
    let full;
    let raw: &[u8] = match prefix {
        Some(_) => &resolved.head,
        None => {
            full = resolved.full_body();
            &full
        }
    };
    let req = parse_request(raw).map_err(invalid)?;
    let model = req.model.clone();
    let Turn {
        body,
        ctx,
        next,
        skipped,
        unconverted,
    } = convert_turn(req, prefix, key, &options(backend, echoes, true)).map_err(invalid)?;
    let rctx = converted_tail(
        backend,
        echoes,
        log_body,
        &body,
        ctx,
        &skipped,
        &unconverted,
    );
    Ok(PreparedTurn {
        prepared: Prepared {
            chat: body,
            rctx,
            model,
        },
        next,
        incremental: prefix.is_some(),
    })
}

/// The converted conversation after a response: `next` plus the response's output items
/// (read from its final JSON). `None` when they cannot be read (the next turn then converts
/// the whole chain).
pub fn absorb_output(
    next: &ChatPrefix,
    response_json: &[u8],
    backend: &Backend,
    catalog: &ToolCatalog,
) -> Option<ChatPrefix> {
    #[derive(serde::Deserialize)]
    struct Out<'a> {
        #[serde(default, borrow)]
        output: Vec<InputItem<'a>>,
    }
    let out: Out = serde_json::from_slice(response_json).ok()?;
    next.absorb(out.output, &backend.quirks, catalog).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;
    use crate::turn::chain::{extend_with_output, resolve_message, ConnChain, Message};
    use serde_json::{json, Value};

    fn resolved(chain: &mut ConnChain, v: Value) -> Resolved {
        match resolve_message(&v.to_string(), chain).unwrap() {
            Message::Create(r) => *r,
            Message::Ignored(t) => panic!("ignored {t}"),
        }
    }

    /// The chain after response `id` (its final JSON `output`), as the session keeps it.
    fn remember(
        chain: &mut ConnChain,
        r: &Resolved,
        turn: &PreparedTurn,
        id: &str,
        output: &str,
        backend: &Backend,
    ) {
        let mut entry = extend_with_output(&r.entry, output.as_bytes());
        let absorbed = absorb_output(
            &turn.next,
            output.as_bytes(),
            backend,
            &turn.prepared.rctx.catalog,
        )
        .unwrap();
        entry.chat = Some(std::sync::Arc::new(absorbed));
        chain.insert(id.to_owned(), entry);
    }

    /// Turn after turn on one connection: from the second turn on, only the new items are
    /// converted, and each body equals the full conversion of the whole conversation.
    #[test]
    fn chained_turns_convert_only_new_items_and_match_the_full_conversion() {
        for profile in crate::providers::Profile::ALL {
            let cfg = Config::from_json_str(
                &json!({"backends": [{"name": "b", "provider": profile.as_str(),
                    "url": "http://h/v1", "model": "m"}]})
                .to_string(),
                &|_| None,
            )
            .unwrap();
            let backend = &cfg.backends[0];
            let echoes = Interner::default();
            let tools = json!([{"type": "function", "name": "sh", "description": "run",
                "parameters": {"type": "object"}, "strict": false}]);
            let mut chain = ConnChain::new(8, 1 << 24);
            let mut prev: Option<String> = None;
            for t in 0..5 {
                let input = if t == 0 {
                    json!([{"type": "message", "role": "developer", "content": "base"},
                        {"type": "message", "role": "user", "content": "go"}])
                } else {
                    json!([{"type": "function_call_output", "call_id": format!("call_{}", t - 1),
                        "output": format!("out {t}")}])
                };
                let mut msg = json!({"type": "response.create", "model": "m", "tools": tools,
                    "input": input});
                if let Some(p) = &prev {
                    msg["previous_response_id"] = json!(p);
                }
                let r = resolved(&mut chain, msg);
                let turn = prepare_turn(&r, 0, backend, &echoes, None).unwrap();
                assert_eq!(turn.incremental, t > 0, "{profile} turn {t}");
                let whole = prepare(&r.full_body(), backend, &echoes, None, true).unwrap();
                assert_eq!(
                    String::from_utf8(turn.prepared.chat.clone()).unwrap(),
                    String::from_utf8(whole.chat).unwrap(),
                    "{profile} turn {t}"
                );
                // The response: reasoning, text and a call, as the converter writes them.
                let id = format!("resp_{t}");
                let output = json!({"id": id, "output": [
                    {"type": "reasoning", "id": format!("rs_{t}"), "summary": [{"type": "summary_text", "text": "why"}],
                     "encrypted_content": crate::convert::ids::encode_reasoning_token(&format!("why {t}"))},
                    {"type": "message", "id": format!("msg_{t}"), "status": "completed", "role": "assistant",
                     "content": [{"type": "output_text", "text": format!("doing {t}"), "annotations": [], "logprobs": []}]},
                    {"type": "function_call", "id": format!("fc_{t}"), "status": "completed",
                     "call_id": format!("call_{t}"), "name": "sh", "arguments": "{}"}]})
                .to_string();
                remember(&mut chain, &r, &turn, &id, &output, backend);
                prev = Some(id);
            }
            // Other tools: the prefix is not used, the whole chain is converted, same body.
            let r = resolved(
                &mut chain,
                json!({"type": "response.create", "model": "m", "previous_response_id": prev,
                    "tools": [], "input": [{"type": "function_call_output", "call_id": "call_4", "output": "x"}]}),
            );
            let turn = prepare_turn(&r, 0, backend, &echoes, None).unwrap();
            assert!(!turn.incremental);
            let whole = prepare(&r.full_body(), backend, &echoes, None, true).unwrap();
            assert_eq!(turn.prepared.chat, whole.chat);
        }
    }

    /// Responses lite over a socket: the tools come once, in the first turn's
    /// `additional_tools` item, and the effort in a `configuration_update`; the turns that
    /// send only new items still offer the tools and keep the effort (from the converted
    /// prefix), with the body of the full conversion. A new `additional_tools` item replaces
    /// the set (the prefix made under the old one is not used).
    #[test]
    fn a_lite_chain_keeps_its_tools_and_effort() {
        let cfg = Config::from_json_str(
            &json!({"backends": [{"name": "b", "provider": "deepseek", "url": "http://h/v1"}]})
                .to_string(),
            &|_| None,
        )
        .unwrap();
        let backend = &cfg.backends[0];
        let echoes = Interner::default();
        let ns = |f: &str| {
            json!([{"type": "namespace", "name": "functions", "tools": [
            {"type": "custom", "name": "exec", "description": "run js",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "function", "name": f, "description": "d", "parameters": {"type": "object"}, "strict": false}]}])
        };
        let mut chain = ConnChain::new(8, 1 << 24);
        let mut prev: Option<String> = None;
        for t in 0..4 {
            let input = match t {
                0 => json!([{"type": "additional_tools", "role": "developer", "tools": ns("wait")},
                    {"type": "message", "role": "developer", "content": "base"},
                    {"type": "configuration_update", "reasoning": {"effort": "none"}},
                    {"type": "message", "role": "user", "content": "go"}]),
                2 => json!([{"type": "custom_tool_call_output", "call_id": "call_1",
                    "output": [{"type": "input_text", "text": "ok"}]},
                    {"type": "additional_tools", "role": "developer", "tools": ns("sleep")}]),
                _ => {
                    json!([{"type": "custom_tool_call_output", "call_id": format!("call_{}", t - 1),
                    "output": [{"type": "input_text", "text": "ok"}]}])
                }
            };
            let mut msg = json!({"type": "response.create", "model": "m", "input": input,
                "reasoning": {"effort": "high"}});
            if let Some(p) = &prev {
                msg["previous_response_id"] = json!(p);
            }
            let r = resolved(&mut chain, msg);
            let turn = prepare_turn(&r, 0, backend, &echoes, None).unwrap();
            assert_eq!(turn.incremental, t == 1 || t == 3, "turn {t}");
            let whole = prepare(&r.full_body(), backend, &echoes, None, true).unwrap();
            assert_eq!(turn.prepared.chat, whole.chat, "turn {t}");
            let chat: Value = serde_json::from_slice(&turn.prepared.chat).unwrap();
            let names: Vec<&str> = chat["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap())
                .collect();
            let second = if t < 2 {
                "functions__wait"
            } else {
                "functions__sleep"
            };
            assert_eq!(names, vec!["functions__exec", second], "turn {t}");
            assert_eq!(chat["thinking"], json!({"type": "disabled"}), "turn {t}");
            let id = format!("resp_{t}");
            let output = json!({"id": id, "output": [
                {"type": "custom_tool_call", "id": format!("ctc_{t}"), "status": "completed",
                 "call_id": format!("call_{t}"), "name": "exec", "namespace": "functions", "input": "text(1)"}]})
            .to_string();
            remember(&mut chain, &r, &turn, &id, &output, backend);
            prev = Some(id);
        }
    }
}
