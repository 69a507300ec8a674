//! The response store: what `previous_response_id`, `GET /v1/responses/{id}`,
//! `/input_items` and `DELETE` need for clients that let the server remember (the OpenAI
//! SDKs, the Agents SDK; Codex sends `store: false` and keeps its history itself).
//!
//! A response is stored as a delta — its own new input, its output, its Response object and
//! a link to its predecessor — so a long conversation costs O(n), and a chain is rebuilt by
//! walking the links. Kinds: `embedded` (an append-only log on local disk, the default), `redis`
//! (shared by several instances), `memory` (bounded, lost on restart), `none` (stateless). The
//! rest of the proxy sees only [`Store`], behind [`staged::Staged`] (read-your-writes while a
//! response is written in the background).

pub mod embedded;
pub mod ledger;
pub mod memory;
pub mod redis;
pub mod staged;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One stored response (a delta of its conversation).
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub id: String,
    /// SHA-256 (hex) of the client token that created it, when the proxy checks tokens: only
    /// that token sees it.
    pub owner: Option<String>,
    pub previous: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// This request's own input items (not the predecessors').
    pub input: Vec<Box<RawValue>>,
    /// The response's output items.
    pub output: Vec<Box<RawValue>>,
    /// The Response object as the client got it.
    pub response: Box<RawValue>,
}

/// A record as it is written: `output` only when it is not the Response object's own
/// `output` (a response's items are written once; records written before this had both).
#[derive(Serialize)]
struct RecordOut<'a> {
    id: &'a str,
    owner: &'a Option<String>,
    previous: &'a Option<String>,
    created_at: u64,
    input: &'a [Box<RawValue>],
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a [Box<RawValue>]>,
    response: &'a RawValue,
}

#[derive(Deserialize)]
struct RecordIn {
    id: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    previous: Option<String>,
    created_at: u64,
    input: Vec<Box<RawValue>>,
    #[serde(default)]
    output: Option<Vec<Box<RawValue>>>,
    response: Box<RawValue>,
}

/// The `output` span of a Response object's JSON.
fn output_span(response: &RawValue) -> Option<&[u8]> {
    match crate::convert::sniff::top_level(response.get().as_bytes(), ["output"]) {
        Some([span]) => span,
        None => None,
    }
}

impl StoredResponse {
    pub fn to_bytes(&self) -> Vec<u8> {
        let output = (!self.output_is_the_responses()).then_some(&self.output[..]);
        serde_json::to_vec(&RecordOut {
            id: &self.id,
            owner: &self.owner,
            previous: &self.previous,
            created_at: self.created_at,
            input: &self.input,
            output,
            response: &self.response,
        })
        .unwrap_or_default()
    }

    pub fn from_bytes(b: &[u8]) -> Option<StoredResponse> {
        let r: RecordIn = serde_json::from_slice(b).ok()?;
        let output = match r.output {
            Some(o) => o,
            None => match output_span(&r.response) {
                Some(span) => serde_json::from_slice(span).ok()?,
                None => Vec::new(),
            },
        };
        Some(StoredResponse {
            id: r.id,
            owner: r.owner,
            previous: r.previous,
            created_at: r.created_at,
            input: r.input,
            output,
            response: r.response,
        })
    }

    /// Whether `output` is, byte for byte, the Response object's compact `output` array
    /// (as for every response the proxy made): then it is not written a second time.
    fn output_is_the_responses(&self) -> bool {
        let Some(span) = output_span(&self.response) else {
            return self.output.is_empty();
        };
        let Some(inner) = span.strip_prefix(b"[").and_then(|s| s.strip_suffix(b"]")) else {
            return false;
        };
        let mut rest = inner;
        for (i, item) in self.output.iter().enumerate() {
            if i > 0 {
                match rest.strip_prefix(b",") {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            match rest.strip_prefix(item.get().as_bytes()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// The ids of its output items (what an `item_reference` names), in order.
    pub fn output_ids(&self) -> Vec<String> {
        self.output
            .iter()
            .filter_map(|o| item_id(o.get()))
            .collect()
    }

    /// Its output item with id `item_id`.
    pub fn output_item(&self, item_id: &str) -> Option<&RawValue> {
        self.output
            .iter()
            .find(|o| {
                o.get().contains(item_id) && self::item_id(o.get()).as_deref() == Some(item_id)
            })
            .map(|o| &**o)
    }
}

/// The `id` of an item (a JSON object), when it has a string one.
pub fn item_id(item: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow, default)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Id<'_>>(item)
        .ok()
        .and_then(|i| i.id)
        .map(std::borrow::Cow::into_owned)
}

/// The store failed (down, full, corrupt): requests that need it get a 503.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub writes: AtomicU64,
    pub evictions: AtomicU64,
    pub errors: AtomicU64,
}

impl StoreStats {
    pub fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A lookup: a hit or a miss.
    pub fn lookup<T>(&self, found: Option<T>) -> Option<T> {
        self.count(if found.is_some() {
            &self.hits
        } else {
            &self.misses
        });
        found
    }
}

/// Where responses are kept.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Keep `r` (replacing one with the same id).
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError>;
    /// [`Store::put`] of a record shared with its writer (the read-your-writes layer serves
    /// it meanwhile): a store that keeps or encodes it later takes it without a copy.
    async fn put_shared(&self, r: std::sync::Arc<StoredResponse>) -> Result<(), StoreError> {
        self.put(std::sync::Arc::unwrap_or_clone(r)).await
    }
    /// The response, unless unknown, deleted or expired.
    async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError>;
    /// Forget it; `false` when there was nothing to forget.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;
    /// The id of the kept response whose output has the item `item_id` (what an
    /// `item_reference` names; item ids do not say their response). Indexed when a response
    /// is put, forgotten with it; the response itself may be gone since (expired, deleted):
    /// [`Store::get`] decides, with its retention and owner.
    async fn find_item(&self, item_id: &str) -> Result<Option<String>, StoreError>;
    /// (responses, bytes) held now.
    fn size(&self) -> (u64, u64);
    fn stats(&self) -> &StoreStats;
}

/// Retention: responses older than `ttl` are gone; over `max_bytes` the oldest go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub ttl: Duration,
    pub max_bytes: u64,
}

/// The conversation of `last` and its predecessors, oldest first: each response's input,
/// then its output. Bounded: at most `max_turns` links are walked.
pub async fn rebuild_chain(
    store: &dyn Store,
    last: &StoredResponse,
    max_turns: usize,
) -> Result<Vec<Box<RawValue>>, ChainError> {
    let mut turns: Vec<StoredResponse> = Vec::new();
    let mut next = last.previous.clone();
    while let Some(id) = next {
        if turns.len() >= max_turns {
            return Err(ChainError::TooLong(max_turns));
        }
        match store.get(&id).await.map_err(ChainError::Store)? {
            Some(r) => {
                next = r.previous.clone();
                turns.push(r);
            }
            None => return Err(ChainError::Missing(id)),
        }
    }
    let mut items = Vec::new();
    for r in turns.into_iter().rev().chain(std::iter::once(last.clone())) {
        items.extend(r.input);
        items.extend(r.output);
    }
    Ok(items)
}

#[derive(Debug)]
pub enum ChainError {
    /// A response of the chain is gone (deleted or expired).
    Missing(String),
    TooLong(usize),
    Store(StoreError),
}

/// SHA-256 (hex) of a client token: what a stored response keeps as its owner.
pub fn owner_hash(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds (a response's `created_at` and its age).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A retention of `ttl` seconds and `max_bytes`.
    pub fn retention(ttl: u64, max_bytes: u64) -> Retention {
        Retention {
            ttl: Duration::from_secs(ttl),
            max_bytes,
        }
    }

    pub fn record(id: &str, previous: Option<&str>, created_at: u64, text: &str) -> StoredResponse {
        let raw = |s: String| RawValue::from_string(s).unwrap();
        let short = text.get(..16).unwrap_or(text);
        StoredResponse {
            id: id.to_owned(),
            owner: None,
            previous: previous.map(str::to_owned),
            created_at,
            input: vec![raw(format!(
                r#"{{"type":"message","id":"in_{short}","role":"user","content":"{text} in"}}"#
            ))],
            output: vec![raw(format!(
                r#"{{"type":"message","id":"msg_{short}","role":"assistant","content":[{{"type":"output_text","text":"{text} out"}}]}}"#
            ))],
            response: raw(format!(r#"{{"id":"{id}","object":"response"}}"#)),
        }
    }

    /// The behaviour every store kind has.
    pub async fn contract(store: &dyn Store) {
        let now = now_secs();
        assert!(store.get("resp_a").await.unwrap().is_none());
        store.put(record("resp_a", None, now, "one")).await.unwrap();
        store
            .put(record("resp_b", Some("resp_a"), now, "two"))
            .await
            .unwrap();
        let b = store.get("resp_b").await.unwrap().unwrap();
        assert_eq!(b.previous.as_deref(), Some("resp_a"));
        let items = rebuild_chain(store, &b, 100).await.unwrap();
        let texts: Vec<&str> = items.iter().map(|i| i.get()).collect();
        assert_eq!(texts.len(), 4);
        assert!(texts[0].contains("one in") && texts[3].contains("two out"));
        assert_eq!(store.size().0, 2);
        // Output items are found by their id; input items and unknown ids are not.
        assert_eq!(
            store.find_item("msg_two").await.unwrap().as_deref(),
            Some("resp_b")
        );
        assert_eq!(
            store.find_item("msg_one").await.unwrap().as_deref(),
            Some("resp_a")
        );
        assert!(store.find_item("in_two").await.unwrap().is_none());
        assert!(store.find_item("msg_nope").await.unwrap().is_none());
        // Put again with other output: the old item is no longer indexed.
        let mut b2 = record("resp_b", Some("resp_a"), now, "two");
        b2.output = vec![RawValue::from_string(
            r#"{"type":"message","id":"msg_two_again","role":"assistant","content":[]}"#.into(),
        )
        .unwrap()];
        store.put(b2).await.unwrap();
        assert!(store.find_item("msg_two").await.unwrap().is_none());
        assert_eq!(
            store.find_item("msg_two_again").await.unwrap().as_deref(),
            Some("resp_b")
        );
        store
            .put(record("resp_b", Some("resp_a"), now, "two"))
            .await
            .unwrap();
        assert!(store.delete("resp_a").await.unwrap());
        // Forgotten with its response.
        assert!(store.find_item("msg_one").await.unwrap().is_none());
        assert!(!store.delete("resp_a").await.unwrap());
        assert!(matches!(
            rebuild_chain(store, &b, 100).await,
            Err(ChainError::Missing(id)) if id == "resp_a"
        ));
        assert_eq!(store.size().0, 1);
    }

    #[test]
    fn owners_are_token_hashes() {
        assert_eq!(owner_hash("t").len(), 64);
        assert_ne!(owner_hash("t"), owner_hash("u"));
        assert_eq!(owner_hash("t"), owner_hash("t"));
    }

    #[test]
    fn records_round_trip() {
        let r = record("resp_x", Some("resp_w"), 5, "hi");
        let back = StoredResponse::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back.id, "resp_x");
        assert_eq!(back.input[0].get(), r.input[0].get());
        assert!(StoredResponse::from_bytes(b"nope").is_none());
    }

    /// A response's output items are written once (as its Response object's), and read
    /// back as its output; an output that is not the Response object's is written as is,
    /// and records written with both still read.
    #[test]
    fn output_items_are_written_once() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        let item = r#"{"type":"message","id":"msg_once","role":"assistant","content":[]}"#;
        let mut r = record("resp_x", None, 5, "hi");
        r.output = vec![raw(item), raw(r#"{"type":"reasoning","id":"rs_1"}"#)];
        r.response = raw(&format!(
            r#"{{"id":"resp_x","output":[{item},{{"type":"reasoning","id":"rs_1"}}],"status":"completed"}}"#
        ));
        let bytes = r.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text.matches("msg_once").count(), 1, "{text}");
        let back = StoredResponse::from_bytes(&bytes).unwrap();
        assert_eq!(back.output_ids(), ["msg_once", "rs_1"]);
        assert_eq!(back.output_item("msg_once").unwrap().get(), item);
        // Not the Response object's: written beside it.
        r.output.pop();
        let back = StoredResponse::from_bytes(&r.to_bytes()).unwrap();
        assert_eq!(back.output_ids(), ["msg_once"]);
        // Written before (output beside the Response object): read as it was.
        let old = format!(
            r#"{{"id":"resp_o","owner":null,"previous":null,"created_at":1,"input":[],"output":[{item}],"response":{{"id":"resp_o"}}}}"#
        );
        let back = StoredResponse::from_bytes(old.as_bytes()).unwrap();
        assert_eq!(back.output_ids(), ["msg_once"]);
        // No output anywhere: none.
        let none = r#"{"id":"resp_n","created_at":1,"input":[],"response":{"id":"resp_n"}}"#;
        assert!(StoredResponse::from_bytes(none.as_bytes())
            .unwrap()
            .output
            .is_empty());
    }
}
