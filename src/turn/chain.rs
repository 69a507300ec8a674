//! Chains: `previous_response_id` resolved into the whole conversation for a stateless Chat
//! provider, and the connection-local memory of a WebSocket session (Codex sends
//! `store: false`, so a continuation must find its predecessor on the same socket).
//!
//! Items are kept as their JSON text (`Arc<str>`), exactly as the client sent them or as the
//! proxy produced them (reasoning and compaction tokens included, so passback works), and
//! shared between the entries of one chain: a turn adds its new items, it does not copy the
//! history.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::convert::error::ClientError;
use crate::convert::request::ChatPrefix;

/// One conversation so far: every input and output item, in order.
#[derive(Debug, Clone, Default)]
pub struct ChainEntry {
    pub items: Arc<Vec<Arc<str>>>,
    /// `call_id`s of the calls in `items` (a tool output must answer one of them).
    pub call_ids: Arc<HashSet<String>>,
    /// Bytes of item text held by this entry's items.
    pub bytes: usize,
    /// The conversation already converted for the provider (so the next turn converts only
    /// its new items); `None` when not made (the next turn converts the whole chain).
    pub chat: Option<Arc<ChatPrefix>>,
    /// A hash of the items that change the tools offered (`additional_tools`,
    /// `tool_search_output`): a converted prefix is reused only under the same tools.
    pub tools_fp: u64,
}

impl ChainEntry {
    /// Account for an item that changes the tool set.
    fn note_tools(&mut self, kind: &str, item: &str) {
        if is_tools_item(kind) {
            self.tools_fp = (self.tools_fp ^ crate::convert::tools::fnv1a(item.as_bytes()))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(17);
        }
    }
}

/// Items whose tools the conversion offers from their place on.
fn is_tools_item(kind: &str) -> bool {
    matches!(kind, "additional_tools" | "tool_search_output")
}

/// The responses one WebSocket connection produced, newest last, bounded in count and bytes.
#[derive(Debug)]
pub struct ConnChain {
    entries: VecDeque<(String, ChainEntry)>,
    max_entries: usize,
    max_bytes: usize,
    /// How many entries hold each shared piece (an item's text, a converted chunk), by its
    /// address, with its length: what [`ConnChain::held_bytes`] counts once. Kept as entries
    /// come and go — a turn adds its entry's pieces, an eviction removes one entry's —
    /// instead of recounting every entry's (which grew with the chain's length times its
    /// entries, and was half a long session's CPU).
    pieces: HashMap<usize, (usize, u32), BuildHasherDefault<AddressHasher>>,
    /// [`ConnChain::held_bytes`].
    held: usize,
}

/// A hasher for addresses: they are distinct and aligned, so one multiplication spreads them
/// (SipHash, the default, cost more than the rest of the bookkeeping).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

impl ConnChain {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        ConnChain {
            entries: VecDeque::new(),
            max_entries: max_entries.max(1),
            max_bytes,
            pieces: HashMap::default(),
            held: 0,
        }
    }

    pub fn get(&self, id: &str) -> Option<&ChainEntry> {
        self.entries.iter().find(|(k, _)| k == id).map(|(_, e)| e)
    }

    /// Remember a response. Older entries go first when a bound is reached; an entry larger
    /// than the byte bound alone is not kept (its continuation gets
    /// `previous_response_not_found`, and the client sends the whole history again).
    pub fn insert(&mut self, id: String, entry: ChainEntry) {
        self.remove(&id);
        if entry.bytes > self.max_bytes {
            return;
        }
        self.count(&entry, true);
        self.entries.push_back((id, entry));
        while self.entries.len() > self.max_entries || self.held > self.max_bytes {
            let Some((_, old)) = self.entries.pop_front() else {
                break;
            };
            self.count(&old, false);
        }
    }

    /// Add (or take away) the pieces of `entry` to what the chain holds.
    fn count(&mut self, entry: &ChainEntry, add: bool) {
        let items = entry
            .items
            .iter()
            .map(|it| (it.as_ptr() as usize, it.len()));
        let chunks = entry.chat.iter().flat_map(|p| p.chunks());
        let chunks = chunks.map(|c| (c.as_ptr() as usize, c.len()));
        for (addr, len) in items.chain(chunks) {
            if add {
                let e = self.pieces.entry(addr).or_insert((len, 0));
                if e.1 == 0 {
                    self.held += len;
                }
                e.1 += 1;
            } else if let Some(e) = self.pieces.get_mut(&addr) {
                e.1 -= 1;
                if e.1 == 0 {
                    self.held -= e.0;
                    self.pieces.remove(&addr);
                }
            }
        }
    }

    /// The item with id `item_id` of the conversations held (newest first): what an
    /// `item_reference` names on this connection.
    pub fn find_item(&self, item_id: &str) -> Option<Arc<str>> {
        self.entries.iter().rev().find_map(|(_, e)| {
            e.items
                .iter()
                .rev()
                .find(|it| {
                    it.contains(item_id) && crate::store::item_id(it).as_deref() == Some(item_id)
                })
                .cloned()
        })
    }

    pub fn remove(&mut self, id: &str) {
        if let Some(i) = self.entries.iter().position(|(k, _)| k == id) {
            if let Some((_, old)) = self.entries.remove(i) {
                self.count(&old, false);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held: item text and converted messages (shared ones count once).
    pub fn held_bytes(&self) -> usize {
        self.held
    }
}

/// A `response.create` message, resolved against the connection's chain.
#[derive(Debug)]
pub struct Resolved {
    /// The create request as an HTTP body with only this message's items in `input` (what
    /// goes on top of `base_chat`); [`Resolved::full_body`] has the whole conversation.
    pub head: Vec<u8>,
    /// Items of this message (the last ones of `entry.items`).
    pub new_items: usize,
    /// The predecessor's converted conversation, when it has one.
    pub base_chat: Option<Arc<ChatPrefix>>,
    /// FNV-1a of the message's `tools` JSON: a converted prefix is reused only with the same
    /// tools (their names shape the converted calls).
    pub tools_key: u64,
    /// The conversation's items (previous ones + this message's input).
    pub entry: ChainEntry,
    /// `generate: false`: answer without calling the provider (Codex's warm-up).
    pub generate: bool,
    /// The `previous_response_id` it continued.
    pub previous: Option<String>,
    /// The message's `store` (over a WebSocket a response is stored only with `store: true`).
    pub store: Option<bool>,
}

/// What a client message is.
#[derive(Debug)]
pub enum Message {
    Create(Box<Resolved>),
    /// A message type the proxy does not act on (e.g. `response.processed`): ignored.
    Ignored(String),
}

/// The top level of a WebSocket message, each value kept as its JSON text.
type Members<'a> = BTreeMap<String, &'a RawValue>;

/// Read a client text message: a `response.create` becomes a full create request. A
/// continuation rejected here evicts the id it continued (its next use gets
/// `previous_response_not_found`), as a continuation that fails later does.
pub fn resolve_message(text: &str, chain: &mut ConnChain) -> Result<Message, ClientError> {
    let members: Members<'_> = serde_json::from_str(text).map_err(|e| {
        let mut err = invalid(format!(
            "The WebSocket message is not a JSON object: {e}. Send {{\"type\": \"response.create\", ...}}."
        ));
        err.code = Some("invalid_json".to_owned());
        err
    })?;
    let kind = match members.get("type") {
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map_err(|_| invalid_param("`type` must be a string.", "type"))?,
        None => {
            return Err(invalid_param(
                "Missing required parameter: 'type' (e.g. \"response.create\").",
                "type",
            ))
        }
    };
    if kind != "response.create" {
        return Ok(Message::Ignored(kind));
    }
    let generate = match members.get("generate") {
        None => true,
        Some(raw) => match serde_json::from_str::<Option<bool>>(raw.get()) {
            Ok(g) => g.unwrap_or(true),
            Err(_) => return Err(invalid_param("`generate` must be a boolean.", "generate")),
        },
    };
    let previous = match members.get("previous_response_id") {
        None => None,
        Some(raw) => serde_json::from_str::<Option<String>>(raw.get()).map_err(|_| {
            invalid_param(
                "`previous_response_id` must be a string.",
                "previous_response_id",
            )
        })?,
    };
    let base = match &previous {
        None => None,
        Some(id) => match chain.get(id) {
            Some(e) => Some(e.clone()),
            None => return Err(previous_not_found(id)),
        },
    };
    let resolved = resolve_create(&members, base, previous.clone(), generate);
    if resolved.is_err() {
        if let Some(id) = &previous {
            chain.remove(id);
        }
    }
    resolved.map(|r| Message::Create(Box::new(r)))
}

fn resolve_create(
    members: &Members<'_>,
    base: Option<ChainEntry>,
    previous: Option<String>,
    generate: bool,
) -> Result<Resolved, ClientError> {
    let new_items = input_items(members.get("input").copied())?;
    let mut entry = base.clone().unwrap_or_default();
    if !new_items.is_empty() {
        let mut items = Vec::with_capacity(entry.items.len() + new_items.len());
        items.extend(entry.items.iter().cloned());
        let mut calls = (*entry.call_ids).clone();
        for it in new_items {
            let shape = item_shape(&it);
            if let (Some(_), Some(call_id)) = (&base, shape.answers.as_deref()) {
                if !calls.contains(call_id) {
                    let mut err = invalid_param(
                        format!("No tool call found for the {} with call_id '{call_id}': it answers no call in the conversation of previous_response_id.", shape.kind),
                        "input",
                    );
                    err.code = Some("invalid_tool_output".to_owned());
                    return Err(err);
                }
            }
            if let Some(id) = shape.call_id {
                calls.insert(id);
            }
            entry.note_tools(&shape.kind, &it);
            entry.bytes += it.len();
            items.push(it);
        }
        entry.items = Arc::new(items);
        entry.call_ids = Arc::new(calls);
    }
    let new_items = entry.items.len() - base.as_ref().map_or(0, |b| b.items.len());
    let head = create_body(members, &entry.items[entry.items.len() - new_items..]);
    let tools_key =
        crate::convert::tools::fnv1a(members.get("tools").map_or("", |t| t.get()).as_bytes())
            ^ entry.tools_fp;
    let base_chat = base.and_then(|b| b.chat);
    entry.chat = None;
    let store = members
        .get("store")
        .and_then(|raw| serde_json::from_str::<Option<bool>>(raw.get()).ok())
        .flatten();
    Ok(Resolved {
        head,
        new_items,
        base_chat,
        tools_key,
        entry,
        generate,
        previous,
        store,
    })
}

/// The `previous_response_id` of a message, read without the rest.
pub fn peek_previous(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        previous_response_id: Option<String>,
    }
    serde_json::from_str::<Peek>(text)
        .ok()
        .and_then(|p| p.previous_response_id)
}

/// A chain entry for a conversation read from the response store.
pub fn entry_from_items(items: Vec<Box<RawValue>>) -> ChainEntry {
    let mut entry = ChainEntry::default();
    let mut calls = HashSet::new();
    let mut kept = Vec::with_capacity(items.len());
    for raw in items {
        let it: Arc<str> = Arc::from(raw.get());
        let shape = item_shape(&it);
        if let Some(id) = shape.call_id {
            calls.insert(id);
        }
        entry.note_tools(&shape.kind, &it);
        entry.bytes += it.len();
        kept.push(it);
    }
    entry.items = Arc::new(kept);
    entry.call_ids = Arc::new(calls);
    entry
}

impl Resolved {
    /// The create request with the whole conversation in `input` (for a turn that cannot
    /// build on `base_chat`).
    pub fn full_body(&self) -> Vec<u8> {
        match serde_json::from_slice::<Members<'_>>(&self.head) {
            Ok(members) => create_body(&members, &self.entry.items),
            Err(_) => self.head.clone(),
        }
    }
}

/// The chain after a response: the conversation plus the response's output items (read
/// from the final Response object's JSON).
pub fn extend_with_output(entry: &ChainEntry, response_json: &[u8]) -> ChainEntry {
    #[derive(Deserialize)]
    struct Out<'a> {
        #[serde(borrow, default)]
        output: Vec<&'a RawValue>,
    }
    let output = match serde_json::from_slice::<Out<'_>>(response_json) {
        Ok(o) => o.output,
        Err(_) => Vec::new(),
    };
    if output.is_empty() {
        return ChainEntry {
            chat: None,
            ..entry.clone()
        };
    }
    let mut items = Vec::with_capacity(entry.items.len() + output.len());
    items.extend(entry.items.iter().cloned());
    let mut calls = (*entry.call_ids).clone();
    let mut bytes = entry.bytes;
    for raw in output {
        let it: Arc<str> = Arc::from(raw.get());
        if let Some(id) = item_shape(&it).call_id {
            calls.insert(id);
        }
        bytes += it.len();
        items.push(it);
    }
    ChainEntry {
        items: Arc::new(items),
        call_ids: Arc::new(calls),
        bytes,
        chat: None,
        tools_fp: entry.tools_fp,
    }
}

/// The create request as an HTTP body: every member but the WebSocket-only ones, `input`
/// replaced by the whole conversation, and `stream: true` (over a socket every reply is a
/// stream of events, whether the client said so — Codex does — or not, as the Open
/// Responses specification has it).
fn create_body(members: &Members<'_>, items: &[Arc<str>]) -> Vec<u8> {
    let size: usize = members.values().map(|v| v.get().len() + 16).sum::<usize>()
        + items.iter().map(|i| i.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(size + 16);
    out.push(b'{');
    let mut first = true;
    for (k, v) in members {
        if matches!(k.as_str(), "type" | "generate" | "input" | "stream") {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Keys came from valid JSON; writing a String cannot fail.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":true,\"input\":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(it.as_bytes());
    }
    out.extend_from_slice(b"]}");
    out
}

/// `input` as item texts: a string is one user message.
fn input_items(raw: Option<&RawValue>) -> Result<Vec<Arc<str>>, ClientError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let text = raw.get();
    if text.starts_with('"') {
        return Ok(vec![Arc::from(format!(
            "{{\"type\":\"message\",\"role\":\"user\",\"content\":{text}}}"
        ))]);
    }
    if text == "null" {
        return Ok(Vec::new());
    }
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| {
        invalid_param(
            "Invalid type for 'input': expected a string or an array of input items.",
            "input",
        )
    })?;
    Ok(items.into_iter().map(|i| Arc::from(i.get())).collect())
}

/// What an item says about tool calls.
struct Shape {
    kind: String,
    /// A call's `call_id`.
    call_id: Option<String>,
    /// A tool output's `call_id`.
    answers: Option<String>,
}

fn item_shape(item: &str) -> Shape {
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        call_id: Option<serde_json::Value>,
    }
    let head = serde_json::from_str::<Head>(item).ok();
    let kind = head
        .as_ref()
        .and_then(|h| h.kind.clone())
        .unwrap_or_default();
    let call_id = head
        .and_then(|h| h.call_id)
        .and_then(|v| v.as_str().map(str::to_owned));
    let (call, answers) = match kind.as_str() {
        "function_call" | "custom_tool_call" | "local_shell_call" | "tool_search_call" => {
            (call_id, None)
        }
        "function_call_output"
        | "custom_tool_call_output"
        | "local_shell_call_output"
        | "tool_search_output" => (None, call_id),
        _ => (None, None),
    };
    Shape {
        kind,
        call_id: call,
        answers,
    }
}

fn invalid(message: String) -> ClientError {
    ClientError::new(400, "invalid_request_error", None, message)
}

fn invalid_param(message: impl Into<String>, param: &str) -> ClientError {
    let mut err = ClientError::new(400, "invalid_request_error", None, message.into());
    err.param = Some(param.to_owned());
    err
}

/// OpenAI's error for a continuation whose predecessor is unknown.
pub fn previous_not_found(id: &str) -> ClientError {
    let shown: String = id.chars().take(128).collect();
    let mut err = ClientError::new(
        400,
        "invalid_request_error",
        Some("previous_response_not_found"),
        format!("Previous response with id '{shown}' not found."),
    );
    err.param = Some("previous_response_id".to_owned());
    err
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::{json, Value};

    fn create(v: Value) -> Resolved {
        match resolve_message(&v.to_string(), &mut ConnChain::new(8, 1 << 20)).unwrap() {
            Message::Create(r) => *r,
            Message::Ignored(t) => panic!("ignored {t}"),
        }
    }

    fn create_on(chain: &mut ConnChain, v: Value) -> Result<Resolved, ClientError> {
        match resolve_message(&v.to_string(), chain)? {
            Message::Create(r) => Ok(*r),
            Message::Ignored(t) => panic!("ignored {t}"),
        }
    }

    fn body(r: &Resolved) -> Value {
        serde_json::from_slice(&r.full_body()).unwrap()
    }

    #[test]
    fn a_create_becomes_an_http_body_without_the_websocket_members() {
        let r = create(
            json!({"type": "response.create", "model": "m", "stream": true,
            "generate": false, "store": false, "input": "hi", "tools": [{"type": "function", "name": "f"}]}),
        );
        assert!(!r.generate);
        let b = body(&r);
        assert_eq!(b["model"], "m");
        assert_eq!(b["stream"], true);
        assert_eq!(b["tools"][0]["name"], "f");
        let no_stream = create(json!({"type": "response.create", "model": "m", "input": "x"}));
        assert_eq!(body(&no_stream)["stream"], true);
        assert!(b.get("type").is_none() && b.get("generate").is_none());
        assert!(b.get("previous_response_id").is_none());
        assert_eq!(
            b["input"],
            json!([{"type": "message", "role": "user", "content": "hi"}])
        );
    }

    #[test]
    fn a_continuation_carries_the_previous_input_and_output_in_order() {
        let mut chain = ConnChain::new(8, 1 << 20);
        let warm = create(
            json!({"type": "response.create", "model": "m", "generate": false,
            "input": [{"type": "message", "role": "developer", "content": "base"}]}),
        );
        chain.insert("resp_w".into(), warm.entry.clone());
        let t1 = create_on(
            &mut chain,
            json!({"type": "response.create", "model": "m", "previous_response_id": "resp_w",
            "input": [{"type": "message", "role": "user", "content": "run it"}]}),
        )
        .unwrap();
        assert_eq!(t1.previous.as_deref(), Some("resp_w"));
        // Kept in the body: the Response object echoes it.
        assert_eq!(body(&t1)["previous_response_id"], "resp_w");
        let response = json!({"id": "resp_1", "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "ccp1.x"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "sh", "arguments": "{}"}]});
        let after = extend_with_output(&t1.entry, response.to_string().as_bytes());
        chain.insert("resp_1".into(), after);
        let t2 = create_on(
            &mut chain,
            json!({"type": "response.create", "model": "m", "previous_response_id": "resp_1",
            "input": [{"type": "function_call_output", "call_id": "call_1", "output": "ok"}]}),
        )
        .unwrap();
        let input = body(&t2)["input"].clone();
        // The head holds only the new item.
        let head: Value = serde_json::from_slice(&t2.head).unwrap();
        assert_eq!(head["input"].as_array().unwrap().len(), 1);
        assert_eq!(t2.new_items, 1);
        let kinds: Vec<&str> = input
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "message",
                "message",
                "reasoning",
                "function_call",
                "function_call_output"
            ]
        );
        assert_eq!(input[2]["encrypted_content"], "ccp1.x");
        // Items are found by their id, for an item_reference.
        let fc = chain.find_item("fc_1").unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&fc).unwrap(),
            response["output"][1]
        );
        assert!(chain.find_item("rs_1").unwrap().contains("ccp1.x"));
        assert!(chain.find_item("fc_").is_none() && chain.find_item("call_1").is_none());
        // The items are shared, not copied: the chain holds each once.
        chain.insert("resp_2".into(), t2.entry.clone());
        let unique = t2.entry.bytes;
        assert_eq!(chain.held_bytes(), unique);
    }

    #[test]
    fn unknown_previous_ids_and_unanswerable_outputs_are_rejected() {
        let mut chain = ConnChain::new(8, 1 << 20);
        let err = create_on(
            &mut chain,
            json!({"type": "response.create", "previous_response_id": "resp_nope", "input": "x"}),
        )
        .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("previous_response_not_found"));
        assert_eq!(err.param.as_deref(), Some("previous_response_id"));
        let first = create(json!({"type": "response.create", "input": "hello"}));
        chain.insert("resp_a".into(), first.entry);
        let err = create_on(
            &mut chain,
            json!({"type": "response.create", "previous_response_id": "resp_a",
            "input": [{"type": "function_call_output", "call_id": "call_missing", "output": "x"}]}),
        )
        .unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("call_missing"));
        // The failed continuation evicted its base.
        assert!(chain.get("resp_a").is_none());
        // Without previous_response_id the whole history is the client's: repaired later,
        // not rejected here.
        assert!(create_on(
            &mut chain,
            json!({"type": "response.create",
            "input": [{"type": "function_call_output", "call_id": "call_missing", "output": "x"}]})
        )
        .is_ok());
    }

    #[test]
    fn bad_messages_get_errors_and_other_types_are_ignored() {
        let mut chain = ConnChain::new(8, 1 << 20);
        for bad in [
            "not json",
            "[1,2]",
            "{}",
            r#"{"type": 5}"#,
            r#"{"type": "response.create", "input": 5}"#,
            r#"{"type": "response.create", "generate": "no"}"#,
        ] {
            let err = resolve_message(bad, &mut chain).unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
        }
        assert!(matches!(
            resolve_message(r#"{"type": "response.processed", "response_id": "r"}"#, &mut chain),
            Ok(Message::Ignored(t)) if t == "response.processed"
        ));
    }

    #[test]
    fn the_chain_is_bounded_in_entries_and_bytes() {
        let mut chain = ConnChain::new(2, 1000);
        let e = |n: usize| ChainEntry {
            items: Arc::new(vec![Arc::from("x".repeat(n))]),
            call_ids: Arc::default(),
            bytes: n,
            ..ChainEntry::default()
        };
        chain.insert("a".into(), e(10));
        chain.insert("b".into(), e(10));
        chain.insert("c".into(), e(10));
        assert!(chain.get("a").is_none() && chain.get("c").is_some());
        assert_eq!(chain.len(), 2);
        chain.insert("d".into(), e(995));
        assert!(chain.get("b").is_none() && chain.get("c").is_none());
        assert!(chain.held_bytes() <= 1000);
        chain.insert("huge".into(), e(5000));
        assert!(chain.get("huge").is_none());
        chain.remove("d");
        assert!(chain.is_empty());
        assert_eq!(chain.held_bytes(), 0);
    }

    /// What the chain holds, counted the slow way: every distinct piece once.
    fn recount(chain: &ConnChain) -> usize {
        let mut seen = HashSet::new();
        let mut total = 0;
        for (_, e) in &chain.entries {
            for it in e.items.iter() {
                if seen.insert(it.as_ptr() as usize) {
                    total += it.len();
                }
            }
        }
        total
    }

    #[test]
    fn the_bytes_held_follow_shared_items_through_growth_eviction_and_removal() {
        // A conversation growing turn by turn, each entry sharing its predecessor's items
        // (as a chain does), with forks and removals on the way.
        let mut chain = ConnChain::new(4, 1 << 20);
        let mut items: Vec<Arc<str>> = Vec::new();
        for turn in 0..40usize {
            items.push(Arc::from(format!("item {turn} {}", "y".repeat(turn % 7))));
            let entry = ChainEntry {
                bytes: items.iter().map(|i| i.len()).sum(),
                items: Arc::new(items.clone()),
                ..ChainEntry::default()
            };
            chain.insert(format!("r{turn}"), entry);
            if turn % 5 == 0 {
                // A retry of the last turn under the same id: replaced, not counted twice.
                let again = chain.get(&format!("r{turn}")).cloned().unwrap();
                chain.insert(format!("r{turn}"), again);
            }
            if turn % 9 == 0 {
                chain.remove(&format!("r{}", turn.saturating_sub(1)));
            }
            assert_eq!(chain.held_bytes(), recount(&chain), "turn {turn}");
        }
        assert!(chain.len() <= 4);
    }
}
