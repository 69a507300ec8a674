//! The stateful half of the Responses API, transport-free: which paths address a stored
//! response, a request's own input items as they are stored, a chain put in front of a
//! request's input (`previous_chain`, `prepend_chain`), the record kept for a finished
//! response (`keep`, in the background), and `GET`/`DELETE …/responses/{id}` and its
//! `input_items` list (`serve_stored`). The store is reached through its trait only.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::convert::error::ClientError;
use crate::store::staged::Staged;
use crate::store::{rebuild_chain, ChainError, Store, StoredResponse};
use crate::turn::chain::previous_not_found;
use crate::types::responses::{Input, InputItem, MessageContent, MessageItem, ResponsesRequest};

/// A path under `…/responses/` that names a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredPath<'a> {
    /// `/v1/responses/{id}` (GET, DELETE).
    Response(&'a str),
    /// `/v1/responses/{id}/input_items` (GET).
    InputItems(&'a str),
}

/// `rest` (the path after a backend prefix) as a stored-response path.
pub fn stored_path(rest: &str) -> Option<StoredPath<'_>> {
    let p = rest.trim_end_matches('/');
    let tail = p
        .strip_prefix("/v1/responses/")
        .or_else(|| p.strip_prefix("/responses/"))?;
    let (id, sub) = match tail.split_once('/') {
        Some((id, sub)) => (id, Some(sub)),
        None => (tail, None),
    };
    if id.is_empty() || id == "compact" {
        return None;
    }
    match sub {
        None => Some(StoredPath::Response(id)),
        Some("input_items") => Some(StoredPath::InputItems(id)),
        Some(_) => None,
    }
}

/// What is stored of a request once its response is complete.
#[derive(Debug, Clone)]
pub struct Pending {
    pub owner: Option<String>,
    pub previous: Option<String>,
    pub input: Vec<Box<RawValue>>,
}

/// The request's own `input` items as JSON (a string input is one user message). The
/// body has been parsed once: `input` is found by a structural scan, and only it is parsed.
pub fn own_input(body: &[u8]) -> Vec<Box<RawValue>> {
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(borrow, default)]
        input: Option<&'a RawValue>,
    }
    let raw = match crate::convert::sniff::top_level(body, ["input"]) {
        Some([found]) => found.and_then(|b| std::str::from_utf8(b).ok()),
        None => match serde_json::from_slice::<Top<'_>>(body) {
            Ok(top) => top.input.map(RawValue::get),
            Err(_) => return Vec::new(),
        },
    };
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.starts_with('"') {
        let item = format!("{{\"type\":\"message\",\"role\":\"user\",\"content\":{raw}}}");
        return RawValue::from_string(item).into_iter().collect();
    }
    serde_json::from_str::<Vec<Box<RawValue>>>(raw).unwrap_or_default()
}

/// Put the chain's items in front of the request's input (read from the chain's bytes,
/// which the request then borrows).
pub fn prepend_chain<'a>(req: &mut ResponsesRequest<'a>, chain: &'a [Box<RawValue>]) {
    let mut items: Vec<InputItem<'a>> = Vec::with_capacity(chain.len() + 8);
    for raw in chain {
        // Stored items were accepted once; one that no longer parses is left out rather
        // than failing every continuation of the chain.
        if let Ok(item) = serde_json::from_str::<InputItem<'a>>(raw.get()) {
            items.push(item);
        }
    }
    match req.input.take() {
        Some(Input::Items(own)) => items.extend(own),
        Some(Input::Text(t)) => items.push(InputItem::Message(MessageItem {
            id: None,
            role: "user".into(),
            content: MessageContent::Text(t),
        })),
        None => {}
    }
    req.input = Some(Input::Items(items));
}

/// The record of a finished response, from its final Response object. `None` for a failed
/// one (a failed continuation is not continued) or an unreadable one.
pub fn record_of(id: &str, response_json: &[u8], p: Pending) -> Option<StoredResponse> {
    let json = std::str::from_utf8(response_json).ok()?;
    // The proxy wrote this JSON: its fields are found by a structural scan, and only the
    // output is parsed (then the whole is checked once, as it becomes the record's).
    let [status, created_at, output] =
        crate::convert::sniff::top_level(response_json, ["status", "created_at", "output"])?;
    let status = serde_json::from_slice::<&str>(status?).ok()?;
    if !matches!(status, "completed" | "incomplete") {
        return None;
    }
    let created_at = match created_at {
        Some(c) => serde_json::from_slice::<u64>(c).ok()?,
        None => 0,
    };
    let output = match output {
        Some(o) => serde_json::from_slice::<Vec<Box<RawValue>>>(o).ok()?,
        None => Vec::new(),
    };
    let response = RawValue::from_string(json.to_owned()).ok()?;
    Some(StoredResponse {
        id: id.to_owned(),
        owner: p.owner,
        previous: p.previous,
        created_at,
        input: p.input,
        output,
        response,
    })
}

/// `GET …/input_items`: the response's own input items in OpenAI's list shape, with
/// `limit` (1–100, default 20), `order` (`desc`, the default, or `asc`) and `after` (an item
/// id). Items without an `id` get a stable one.
pub fn input_items_page(rec: &StoredResponse, query: Option<&str>) -> Result<Vec<u8>, ClientError> {
    let mut limit = 20usize;
    let mut desc = true;
    let mut after: Option<String> = None;
    for (k, v) in query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        match k {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| bad_param("limit must be an integer from 1 to 100.", "limit"))?
            }
            "order" => {
                desc = match v {
                    "desc" => true,
                    "asc" => false,
                    _ => return Err(bad_param("order must be asc or desc.", "order")),
                }
            }
            "after" => after = Some(v.to_owned()),
            _ => {}
        }
    }
    let suffix = rec.id.strip_prefix("resp_").unwrap_or(&rec.id);
    let mut items: Vec<serde_json::Value> = rec
        .input
        .iter()
        .enumerate()
        .filter_map(|(n, raw)| {
            let mut v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
            if let Some(o) = v.as_object_mut() {
                if !o.get("id").is_some_and(serde_json::Value::is_string) {
                    let kind = o.get("type").and_then(|t| t.as_str()).unwrap_or("message");
                    let prefix = if kind == "message" { "msg" } else { "item" };
                    o.insert("id".into(), format!("{prefix}_{suffix}_{n}").into());
                }
                if o.get("type").is_none() && o.get("role").is_some() {
                    o.insert("type".into(), "message".into());
                }
            }
            Some(v)
        })
        .collect();
    if desc {
        items.reverse();
    }
    let start = match &after {
        Some(a) => items
            .iter()
            .position(|i| i["id"].as_str() == Some(a.as_str()))
            .map(|p| p + 1)
            .ok_or_else(|| bad_param("after names no item of this response.", "after"))?,
        None => 0,
    };
    let page: Vec<serde_json::Value> = items.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + page.len() < items.len();
    let first = page.first().map(|i| i["id"].clone());
    let last = page.last().map(|i| i["id"].clone());
    Ok(
        serde_json::json!({"object": "list", "data": page, "first_id": first, "last_id": last,
        "has_more": has_more})
        .to_string()
        .into_bytes(),
    )
}

fn bad_param(message: &str, param: &str) -> ClientError {
    let mut e = ClientError::new(400, "invalid_request_error", None, message);
    e.param = Some(param.to_owned());
    e
}

/// 404 for a response that is unknown, deleted, expired, stored with `store: false`, or
/// another token's.
pub fn not_found(id: &str) -> ClientError {
    let shown: String = id.chars().take(128).collect();
    ClientError::new(
        404,
        "invalid_request_error",
        Some("not_found"),
        format!("No response found with id '{shown}'."),
    )
}

/// 503 when the store cannot answer.
pub fn store_unavailable(e: &crate::store::StoreError) -> ClientError {
    ClientError::new(
        503,
        "server_error",
        Some("store_unavailable"),
        format!("The response store is unavailable ({e}); requests that do not need it (store: false, no previous_response_id) still work."),
    )
}

/// Links walked to rebuild a chain at most.
const MAX_CHAIN: usize = 100_000;

/// Before conversion: the conversation `previous_response_id` names, from the store (put
/// in front of the input with [`prepend_chain`]); `None` without one.
pub async fn previous_chain(
    store: &dyn Store,
    req: &ResponsesRequest<'_>,
    owner: Option<&str>,
) -> Result<Option<Vec<Box<RawValue>>>, ClientError> {
    let Some(id) = &req.previous_response_id else {
        return Ok(None);
    };
    let chain = stored_chain(store, id, owner)
        .await?
        .ok_or_else(|| previous_not_found(id))?;
    Ok(Some(chain))
}

/// What is kept of the response once it is complete (`None` with `store: false`).
pub fn pending_of(
    raw: &[u8],
    req: &mut ResponsesRequest<'_>,
    owner: Option<String>,
) -> Option<Pending> {
    if req.store.is_none() {
        // Stored by default, as OpenAI's API: the Response object says so.
        req.store = Some(true);
    }
    pending_for(
        req.store,
        owner,
        req.previous_response_id.clone(),
        own_input(raw),
    )
}

/// The one rule for both transports: a response is kept when its Response object says
/// `store: true` (over HTTP that is the default, set by [`pending_of`]; over a WebSocket
/// the message's own `store`, so Codex's `store: false` sessions stay on their socket). It
/// is written once it completes (a failed one is not kept: [`record_of`]).
pub fn pending_for(
    store: Option<bool>,
    owner: Option<String>,
    previous: Option<String>,
    input: Vec<Box<RawValue>>,
) -> Option<Pending> {
    (store == Some(true)).then_some(Pending {
        owner,
        previous,
        input,
    })
}

/// The conversation of stored response `id` (its predecessors' and its own input and
/// output), `None` when it is unknown, gone, another token's, or its chain is broken.
pub async fn stored_chain(
    store: &dyn Store,
    id: &str,
    owner: Option<&str>,
) -> Result<Option<Vec<Box<RawValue>>>, ClientError> {
    let last = match store.get(id).await {
        Ok(Some(r)) if r.owner.as_deref() == owner => r,
        Ok(_) => return Ok(None),
        Err(e) => return Err(store_unavailable(&e)),
    };
    match rebuild_chain(store, &last, MAX_CHAIN).await {
        Ok(items) => Ok(Some(items)),
        Err(ChainError::Missing(_)) => Ok(None),
        Err(ChainError::TooLong(n)) => Err(ClientError::new(
            400,
            "invalid_request_error",
            None,
            format!("The conversation of previous_response_id is longer than {n} responses."),
        )),
        Err(ChainError::Store(e)) => Err(store_unavailable(&e)),
    }
}

/// Keep a finished response: readable at once, written in the background (a failed write is
/// logged and counted, never turned into a failed response).
pub fn keep(store: Option<&Arc<Staged>>, id: &str, response_json: &[u8], pending: Pending) {
    if let (Some(store), Some(rec)) = (store, record_of(id, response_json, pending)) {
        store.keep(rec);
    }
}

/// `GET`/`DELETE …/responses/{id}`, `GET …/{id}/input_items`: (status, JSON body).
pub async fn serve_stored(
    store: Option<&dyn Store>,
    method: &http::Method,
    path: StoredPath<'_>,
    query: Option<&str>,
    owner: Option<&str>,
) -> (u16, Vec<u8>) {
    let render = |e: ClientError| (e.status, e.body_bytes());
    let Some(store) = store else {
        return render(ClientError::new(
            404,
            "invalid_request_error",
            Some("not_found"),
            "This proxy keeps no responses (store.type is \"none\").",
        ));
    };
    let id = match path {
        StoredPath::Response(id) | StoredPath::InputItems(id) => id,
    };
    let allowed = match path {
        StoredPath::Response(_) => {
            matches!(*method, http::Method::GET | http::Method::DELETE)
        }
        StoredPath::InputItems(_) => *method == http::Method::GET,
    };
    if !allowed {
        return render(ClientError::new(
            405,
            "invalid_request_error",
            Some("method_not_allowed"),
            format!("Method {method} is not allowed here."),
        ));
    }
    if query.is_some_and(|q| q.split('&').any(|kv| kv == "stream=true")) {
        return render(ClientError::new(
            400,
            "invalid_request_error",
            None,
            "Streaming a stored response (stream=true) is not supported: retrieve it without `stream`.",
        ));
    }
    let rec = match store.get(id).await {
        Ok(Some(r)) if r.owner.as_deref() == owner => r,
        Ok(_) => return render(not_found(id)),
        Err(e) => return render(store_unavailable(&e)),
    };
    match (path, method) {
        (StoredPath::InputItems(_), _) => match input_items_page(&rec, query) {
            Ok(b) => (200, b),
            Err(e) => render(e),
        },
        (_, &http::Method::DELETE) => match store.delete(id).await {
            Ok(_) => (
                200,
                serde_json::json!({"id": id, "object": "response", "deleted": true})
                    .to_string()
                    .into_bytes(),
            ),
            Err(e) => render(store_unavailable(&e)),
        },
        _ => (200, rec.response.get().as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::convert::request::parse_request;
    use serde_json::{json, Value};

    #[test]
    fn stored_paths() {
        assert_eq!(
            stored_path("/v1/responses/resp_1"),
            Some(StoredPath::Response("resp_1"))
        );
        assert_eq!(
            stored_path("/responses/resp_1/input_items/"),
            Some(StoredPath::InputItems("resp_1"))
        );
        for p in [
            "/v1/responses",
            "/v1/responses/",
            "/v1/responses/compact",
            "/v1/responses/r/x",
            "/v1/models",
        ] {
            assert_eq!(stored_path(p), None, "{p}");
        }
    }

    #[test]
    fn own_input_and_chain_in_front() {
        let items = own_input(br#"{"model":"m","input":"hello"}"#);
        assert_eq!(items.len(), 1);
        assert!(items[0].get().contains("\"role\":\"user\""));
        let items = own_input(
            br#"{"input":[{"type":"message","role":"user","content":"a"},{"type":"x"}]}"#,
        );
        assert_eq!(items.len(), 2);
        let mut req = parse_request(br#"{"model":"m","input":"now"}"#).unwrap();
        let chain = vec![
            RawValue::from_string(r#"{"type":"message","role":"user","content":"before"}"#.into())
                .unwrap(),
            RawValue::from_string(
                r#"{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok"}]}"#
                    .into(),
            )
            .unwrap(),
        ];
        prepend_chain(&mut req, &chain);
        match req.input {
            Some(Input::Items(i)) => {
                assert_eq!(i.len(), 3);
                assert_eq!(i[0].type_name(), "message");
            }
            other => panic!("{other:?}"),
        }
    }

    fn rec() -> StoredResponse {
        let p = Pending {
            owner: None,
            previous: None,
            input: own_input(
                br#"{"input":[{"type":"message","role":"user","content":"a"},{"role":"user","content":"b"},{"type":"message","id":"msg_x","role":"user","content":"c"}]}"#,
            ),
        };
        record_of(
            "resp_abc",
            br#"{"id":"resp_abc","status":"completed","created_at":9,"output":[{"type":"message","id":"m"}]}"#,
            p,
        )
        .unwrap()
    }

    #[test]
    fn records_only_for_finished_responses() {
        let r = rec();
        assert_eq!(r.created_at, 9);
        assert_eq!(r.output.len(), 1);
        let p = Pending {
            owner: None,
            previous: None,
            input: Vec::new(),
        };
        assert!(record_of("resp_f", br#"{"status":"failed","output":[]}"#, p.clone()).is_none());
        assert!(record_of("resp_f", b"garbage", p).is_none());
    }

    #[test]
    fn input_items_pages() {
        let r = rec();
        let page: Value = serde_json::from_slice(&input_items_page(&r, None).unwrap()).unwrap();
        assert_eq!(page["object"], "list");
        let ids: Vec<&str> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["msg_x", "msg_abc_1", "msg_abc_0"]);
        assert_eq!(page["data"][1]["type"], "message");
        assert_eq!(page["first_id"], "msg_x");
        assert_eq!(page["has_more"], false);
        let page: Value = serde_json::from_slice(
            &input_items_page(&r, Some("order=asc&limit=1&after=msg_abc_0")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            page["data"],
            json!([{"type": "message", "role": "user", "content": "b", "id": "msg_abc_1"}])
        );
        assert_eq!(page["has_more"], true);
        assert_eq!(
            input_items_page(&r, Some("limit=0")).unwrap_err().status,
            400
        );
        assert_eq!(
            input_items_page(&r, Some("order=up")).unwrap_err().status,
            400
        );
        assert_eq!(
            input_items_page(&r, Some("after=zzz")).unwrap_err().status,
            400
        );
    }
}
