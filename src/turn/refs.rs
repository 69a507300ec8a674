//! `item_reference` input items (`{"type": "item_reference", "id": "rs_…"}`), which the
//! OpenAI API takes for an earlier output item and the Vercel AI SDK sends for every one when
//! it replays a stored conversation: each is replaced by the item it names, as that item's
//! JSON exactly (a reasoning item keeps the proxy's `encrypted_content`, which is how
//! reasoning goes back to the provider), before the request is parsed for conversion.
//!
//! An id is looked up in the WebSocket connection's own chain first (items produced on the
//! socket, `store: false` included), then in the response store (an item of a response of
//! the same client token). One found nowhere is a 400 naming it, never dropped.
//!
//! The body is rewritten, only its `input` array replaced: the request's stored input then
//! holds the items themselves (as OpenAI's `input_items` lists them), so a later chain and
//! `GET …/input_items` do not depend on the referenced response still being there.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::convert::error::ClientError;
use crate::store::{Store, StoredResponse};

use super::stored::store_unavailable;

/// A create body's `input` with its references, before they are resolved.
pub struct References<'a> {
    body: &'a [u8],
    /// Where `input` is in `body`.
    span: std::ops::Range<usize>,
    items: Vec<&'a RawValue>,
    /// (index in `items`, the id it names, the item once found).
    refs: Vec<(usize, &'a str, Option<Arc<str>>)>,
}

/// The references in `body`'s `input`; `None` when it has none (or is no JSON object with
/// an `input` array: the request is then left to its parser's error).
pub fn references(body: &[u8]) -> Option<References<'_>> {
    memchr::memmem::find(body, b"item_reference")?;
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(borrow, default)]
        input: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
    }
    let input = serde_json::from_slice::<Top<'_>>(body).ok()?.input?;
    let start = (input.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let span = start..start.checked_add(input.get().len())?;
    if body.get(span.clone())? != input.get().as_bytes() {
        return None;
    }
    let items: Vec<&RawValue> = serde_json::from_str(input.get()).ok()?;
    let mut refs = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let Ok(head) = serde_json::from_str::<Head<'_>>(item.get()) else {
            continue;
        };
        if head.kind.as_deref() != Some("item_reference") {
            continue;
        }
        // An id that is not a plain string is left to the parser's error.
        let Some(id) = head.id.and_then(|raw| plain_str(raw.get())) else {
            continue;
        };
        refs.push((n, id, None));
    }
    (!refs.is_empty()).then_some(References {
        body,
        span,
        items,
        refs,
    })
}

/// A JSON string without escapes, as its text.
fn plain_str(json: &str) -> Option<&str> {
    let s = json.strip_prefix('"')?.strip_suffix('"')?;
    (!s.contains(['\\', '"'])).then_some(s)
}

impl References<'_> {
    /// Resolve what `find` knows (a WebSocket connection's chain).
    pub fn resolve_with(&mut self, find: impl Fn(&str) -> Option<Arc<str>>) {
        for (_, id, found) in &mut self.refs {
            if found.is_none() {
                *found = find(id);
            }
        }
    }

    /// Resolve the rest from the store: items of responses `owner` may read. A store that
    /// cannot answer is a 503.
    pub async fn resolve_stored(
        &mut self,
        store: &dyn Store,
        owner: Option<&str>,
    ) -> Result<(), ClientError> {
        // Replayed histories name many items of few responses: each is read once.
        let mut responses: HashMap<String, Option<StoredResponse>> = HashMap::new();
        for (_, id, found) in &mut self.refs {
            if found.is_some() {
                continue;
            }
            let Some(rid) = store
                .find_item(id)
                .await
                .map_err(|e| store_unavailable(&e))?
            else {
                continue;
            };
            if !responses.contains_key(&rid) {
                let r = store.get(&rid).await.map_err(|e| store_unavailable(&e))?;
                let r = r.filter(|r| r.owner.as_deref() == owner);
                responses.insert(rid.clone(), r);
            }
            *found = responses
                .get(&rid)
                .and_then(Option::as_ref)
                .and_then(|r| r.output_item(id))
                .map(|raw| Arc::from(raw.get()));
        }
        Ok(())
    }

    /// The body with every reference replaced by its item; a 400 naming the first one not
    /// found.
    pub fn into_body(self) -> Result<Vec<u8>, ClientError> {
        let mut texts: Vec<&str> = self.items.iter().map(|i| i.get()).collect();
        for (n, id, found) in &self.refs {
            match found {
                Some(item) => {
                    if let Some(t) = texts.get_mut(*n) {
                        *t = item;
                    }
                }
                None => return Err(not_found(id, *n)),
            }
        }
        let size = texts.iter().map(|t| t.len() + 1).sum::<usize>();
        let mut out = Vec::with_capacity(self.body.len() + size);
        out.extend_from_slice(&self.body[..self.span.start]);
        out.push(b'[');
        for (i, t) in texts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(t.as_bytes());
        }
        out.push(b']');
        out.extend_from_slice(&self.body[self.span.end..]);
        Ok(out)
    }
}

/// OpenAI's error for a reference to an item the proxy does not have (the converter's own,
/// for one left unresolved).
pub fn not_found(id: &str, index: usize) -> ClientError {
    let shown: String = id.chars().take(128).collect();
    let mut err = ClientError::new(
        400,
        "invalid_request_error",
        Some("item_not_found"),
        format!("Item with id '{shown}' not found."),
    );
    err.param = Some(format!("input[{index}]"));
    err
}

/// An HTTP create's references resolved from the store: the rewritten body, `None` when it
/// has none. Without a store, a reference is a 400 (nothing can be found).
pub async fn resolve_http(
    body: &[u8],
    store: Option<&dyn Store>,
    owner: Option<&str>,
) -> Result<Option<Vec<u8>>, ClientError> {
    let Some(mut refs) = references(body) else {
        return Ok(None);
    };
    if let Some(store) = store {
        refs.resolve_stored(store, owner).await?;
    }
    refs.into_body().map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{now_secs, Retention};
    use serde_json::{json, Value};
    use std::time::Duration;

    fn raw(v: Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    const REASONING: &str =
        r#"{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"ccp1.abc"}"#;

    async fn store_with(owner: Option<&str>) -> MemoryStore {
        let s = MemoryStore::new(Retention {
            ttl: Duration::from_secs(3600),
            max_bytes: 1 << 20,
        });
        s.put(StoredResponse {
            id: "resp_1".into(),
            owner: owner.map(str::to_owned),
            previous: None,
            created_at: now_secs(),
            input: vec![raw(json!({"type": "message", "role": "user", "content": "hi"}))],
            output: vec![
                RawValue::from_string(REASONING.into()).unwrap(),
                raw(
                    json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "sh", "arguments": "{}"}),
                ),
            ],
            response: raw(json!({"id": "resp_1"})),
        })
        .await
        .unwrap();
        s
    }

    #[test]
    fn bodies_without_references_are_left_alone() {
        for body in [
            &br#"{"model":"m","input":"item_reference"}"#[..],
            br#"{"model":"m","input":[{"type":"message","role":"user","content":"item_reference"}]}"#,
            br#"{"model":"m"}"#,
            b"not json item_reference",
            // Not a plain string id: the parser says what is wrong.
            br#"{"input":[{"type":"item_reference","id":5}]}"#,
        ] {
            assert!(references(body).is_none(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[tokio::test]
    async fn references_become_the_stored_items_exactly_and_the_rest_is_kept() {
        let s = store_with(Some("o")).await;
        let body = br#"{"model":"m", "input": [ {"type":"message","role":"user","content":"go"},
            {"type": "item_reference", "id": "rs_1"}, {"id":"fc_1","type":"item_reference"},
            {"type":"function_call_output","call_id":"call_1","output":"ok"} ], "store": true}"#;
        let out = resolve_http(body, Some(&s), Some("o"))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(r#"{"model":"m", "input": ["#), "{text}");
        assert!(text.ends_with(r#"], "store": true}"#), "{text}");
        assert!(text.contains(REASONING), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let kinds: Vec<&str> = v["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "message",
                "reasoning",
                "function_call",
                "function_call_output"
            ]
        );
        assert_eq!(v["input"][2]["call_id"], "call_1");
    }

    #[tokio::test]
    async fn unknown_ids_other_owners_and_no_store_are_400s_naming_the_item() {
        let s = store_with(Some("o")).await;
        let body = br#"{"input":[{"type":"message","role":"user","content":"x"},{"type":"item_reference","id":"rs_nope"}]}"#;
        let err = resolve_http(body, Some(&s), Some("o")).await.unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.code.as_deref(), Some("item_not_found"));
        assert_eq!(err.param.as_deref(), Some("input[1]"));
        assert!(err.message.contains("'rs_nope'"), "{}", err.message);
        let mine = br#"{"input":[{"type":"item_reference","id":"rs_1"}]}"#;
        assert!(resolve_http(mine, Some(&s), Some("o")).await.is_ok());
        for owner in [Some("other"), None] {
            let err = resolve_http(mine, Some(&s), owner).await.unwrap_err();
            assert_eq!(err.code.as_deref(), Some("item_not_found"), "{owner:?}");
        }
        let err = resolve_http(mine, None, None).await.unwrap_err();
        assert_eq!(err.param.as_deref(), Some("input[0]"));
    }

    proptest::proptest! {
        /// Whatever the other members hold (escapes, text that looks like an input array),
        /// only `input` changes: each reference becomes its item, the rest is kept.
        #[test]
        fn only_the_input_is_rewritten(
            before in ".{0,40}",
            after in ".{0,40}",
            ids in proptest::collection::vec("[a-z0-9_]{1,12}", 1..6),
        ) {
            let mut input: Vec<Value> = ids
                .iter()
                .map(|id| json!({"type": "item_reference", "id": format!("rs_{id}")}))
                .collect();
            input.insert(0, json!({"role": "user", "content": before}));
            let body = json!({"instructions": before, "input": input, "a": [after, "\"input\":[]"]});
            let text = body.to_string();
            let mut refs = references(text.as_bytes()).unwrap();
            refs.resolve_with(|id| Some(Arc::from(json!({"type": "reasoning", "id": id}).to_string())));
            let out: Value = serde_json::from_slice(&refs.into_body().unwrap()).unwrap();
            let mut want = body.clone();
            for (n, id) in ids.iter().enumerate() {
                want["input"][n + 1] = json!({"type": "reasoning", "id": format!("rs_{id}")});
            }
            proptest::prop_assert_eq!(out, want);
        }

        #[test]
        fn any_bytes_are_read_without_a_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut body = bytes;
            body.extend_from_slice(br#"{"input":[{"type":"item_reference","id":"a"}]}"#);
            if let Some(mut refs) = references(&body) {
                refs.resolve_with(|_| None);
                proptest::prop_assert!(refs.into_body().is_err());
            }
        }
    }

    #[test]
    fn a_connection_chain_resolves_first() {
        let body = br#"{"input":[{"type":"item_reference","id":"msg_local"}]}"#;
        let mut refs = references(body).unwrap();
        refs.resolve_with(|id| {
            (id == "msg_local").then(|| {
                Arc::from(r#"{"type":"message","id":"msg_local","role":"assistant","content":[]}"#)
            })
        });
        let out = refs.into_body().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"input":[{"type":"message","id":"msg_local","role":"assistant","content":[]}]}"#
        );
    }
}
