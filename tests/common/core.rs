//! The pure test helpers: no proxy process, no network. The SSE parser for the proxy's
//! output, the Responses stream-lifecycle checker (over parsed events, so the SSE and the
//! WebSocket suites share it), and the conversion helpers of the pure suites
//! (convert_core.rs, convert_core_recorded.rs, fuzz_props.rs include this file alone with
//! `#[path = "common/core.rs"] mod core_helpers;`).
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use codex_convert_proxy::convert::request::{
    convert_request, parse_request, Converted, RequestOptions,
};
use codex_convert_proxy::convert::streaming::{Framing, StreamConverter};
use codex_convert_proxy::convert::ResponseContext;
use codex_convert_proxy::providers::{self, Quirks};
use serde_json::Value;

// ------------------------------------------------------------------------------------------
// Conversion helpers

/// A file under tests/fixtures/, as bytes.
pub fn fixture_bytes(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Every provider profile's quirks, in `providers::Profile::ALL` order.
pub fn all_profiles() -> Vec<Quirks> {
    providers::Profile::ALL
        .into_iter()
        .map(providers::Profile::quirks)
        .collect()
}

/// Parses and converts a Responses request body for `quirks` with a fixed id seed: the Chat
/// request as JSON, and the whole conversion.
pub fn convert_body<'a>(body: &'a [u8], quirks: &Quirks, id_seed: u64) -> (Value, Converted<'a>) {
    let req = parse_request(body).unwrap_or_else(|e| panic!("parse: {e}"));
    let c =
        convert_request(req, &options(quirks, id_seed)).unwrap_or_else(|e| panic!("convert: {e}"));
    (serde_json::to_value(&c.chat).unwrap(), c)
}

/// Conversion options for `quirks` with a fixed id seed: no backend model, no tools cache, no
/// chain.
pub fn options(quirks: &Quirks, id_seed: u64) -> RequestOptions<'_> {
    RequestOptions {
        tools: None,
        quirks,
        model_override: None,
        id_seed: Some(id_seed),
        chain_resolved: false,
    }
}

/// A context with a fixed response id, clock and id seed (reproducible output).
pub fn fixed(mut ctx: ResponseContext) -> ResponseContext {
    ctx.response_id = "resp_fixed".into();
    ctx.created_at = 1_700_000_000;
    ctx.fixed_now = Some(1_700_000_005);
    ctx.id_seed = 9;
    ctx
}

/// Feeds upstream SSE `chunks` to an SSE stream converter, then ends it; returns what it wrote.
pub fn run_stream<C: AsRef<[u8]>>(ctx: ResponseContext, chunks: &[C]) -> Vec<u8> {
    let mut conv = StreamConverter::new(ctx, Framing::Sse);
    let mut out = Vec::new();
    for c in chunks {
        conv.push_bytes(c.as_ref());
        out.extend_from_slice(&conv.take_output());
    }
    conv.finish();
    out.extend_from_slice(&conv.take_output());
    out
}

// ------------------------------------------------------------------------------------------
// Events

/// One SSE event of the proxy's response.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

/// A parsed proxy SSE stream.
#[derive(Debug, Clone)]
pub struct SseStream {
    pub events: Vec<SseEvent>,
    /// Whether `data: [DONE]` was seen (it must be the very last thing).
    pub done: bool,
}

impl SseStream {
    pub fn types(&self) -> Vec<String> {
        self.events.iter().map(|e| e.event.clone()).collect()
    }

    pub fn of_type(&self, ty: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.event == ty)
            .map(|e| &e.data)
            .collect()
    }

    /// The last event.
    pub fn last(&self) -> &SseEvent {
        self.events.last().expect("the stream has no events")
    }
}

/// Splits the proxy's SSE body into `(event, json)` pairs. Asserts that each
/// event has an `event:` line equal to the JSON `type`, that every block is
/// complete (ends with a blank line), and that `data: [DONE]` (if any) is the
/// last block.
pub fn parse_sse(body: &str) -> SseStream {
    let normalized = body.replace("\r\n", "\n");
    let mut events = Vec::new();
    let mut done = false;
    let mut rest = normalized.as_str();
    while !rest.is_empty() {
        let (block, tail) = match rest.find("\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => {
                if rest.trim().is_empty() {
                    break;
                }
                panic!("incomplete SSE block at the end of the stream (no blank line): {rest:?}\nfull body:\n{body}");
            }
        };
        rest = tail;
        let block = block.trim_start_matches('\n');
        if block.trim().is_empty() {
            continue;
        }
        let mut event_name: Option<String> = None;
        let mut data_lines: Vec<&str> = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                continue; // comment / keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => event_name = Some(value.to_owned()),
                "data" => data_lines.push(value),
                "id" | "retry" => {}
                other => panic!("unexpected SSE field {other:?} in block {block:?}"),
            }
        }
        if data_lines.is_empty() {
            // A block with no data (e.g. only comments) dispatches nothing.
            continue;
        }
        let data = data_lines.join("\n");
        assert!(
            !done,
            "an SSE block follows `data: [DONE]`: {block:?}\nfull body:\n{body}"
        );
        if data.trim() == "[DONE]" {
            done = true;
            continue;
        }
        let json: Value = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data:?}\nfull body:\n{body}"));
        let ty = json
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("SSE event JSON has no string `type`: {json}"))
            .to_owned();
        let name =
            event_name.unwrap_or_else(|| panic!("SSE event without an `event:` line: {block:?}"));
        assert_eq!(
            name, ty,
            "`event:` line differs from the JSON `type` in block {block:?}"
        );
        events.push(SseEvent {
            event: name,
            data: json,
        });
    }
    SseStream { events, done }
}

/// Event types that end a response stream.
pub const TERMINAL_EVENTS: &[&str] = &[
    "response.completed",
    "response.failed",
    "response.incomplete",
];

/// Checks the invariants of a Responses SSE stream ([`check_events`]) and that it ends with
/// `data: [DONE]`; returns the terminal event's JSON.
pub fn check_lifecycle(stream: &SseStream) -> Value {
    assert!(
        stream.done,
        "the stream does not end with `data: [DONE]`:\n{}",
        dump(&stream.events)
    );
    check_events(&stream.events)
}

fn dump(ev: &[SseEvent]) -> String {
    ev.iter()
        .map(|e| e.data.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks the invariants of a Responses event stream, whatever its framing (parsed SSE,
/// WebSocket frames), and returns the terminal event's JSON:
/// - the first event is `response.created`;
/// - every event has a `sequence_number`, starting at 0, strictly increasing;
/// - exactly one terminal event (completed / failed / incomplete), the last one;
/// - every `output_item.added` has exactly one matching `output_item.done`
///   (same `output_index`, after it), and no `done` without `added`;
/// - `output_text.delta`s come after their item's `output_item.added` and
///   before its `output_item.done`, and concatenate to the
///   `output_text.done` text (per `output_index` + `content_index`), which
///   also equals the text of the `output_item.done` item's content part.
pub fn check_events(ev: &[SseEvent]) -> Value {
    let dump = || dump(ev);
    assert!(!ev.is_empty(), "the stream has no events");
    assert_eq!(
        ev[0].event,
        "response.created",
        "the first event must be response.created:\n{}",
        dump()
    );

    // Sequence numbers.
    let mut prev: Option<u64> = None;
    for (i, e) in ev.iter().enumerate() {
        let seq = e
            .data
            .get("sequence_number")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| {
                panic!(
                    "event #{i} ({}) has no sequence_number: {}",
                    e.event, e.data
                )
            });
        match prev {
            None => assert_eq!(seq, 0, "the first sequence_number must be 0"),
            Some(p) => assert!(
                seq > p,
                "sequence_number not strictly increasing at event #{i} ({}): {p} then {seq}",
                e.event
            ),
        }
        prev = Some(seq);
    }

    // Exactly one terminal event, the last one.
    let terminals: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| TERMINAL_EVENTS.contains(&e.event.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        terminals.len(),
        1,
        "expected exactly one terminal event, got {:?}:\n{}",
        terminals
            .iter()
            .map(|i| ev[*i].event.clone())
            .collect::<Vec<_>>(),
        dump()
    );
    assert_eq!(
        terminals[0],
        ev.len() - 1,
        "the terminal event {} is not the last event before [DONE]:\n{}",
        ev[terminals[0]].event,
        dump()
    );

    // Output items: added/done pairing.
    let mut added: BTreeMap<u64, usize> = BTreeMap::new();
    let mut done: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, e) in ev.iter().enumerate() {
        let idx = || {
            e.data
                .get("output_index")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("{} without output_index: {}", e.event, e.data))
        };
        match e.event.as_str() {
            "response.output_item.added" => {
                let k = idx();
                assert!(
                    added.insert(k, i).is_none(),
                    "two output_item.added for output_index {k}:\n{}",
                    dump()
                );
            }
            "response.output_item.done" => {
                let k = idx();
                let a = added.get(&k).unwrap_or_else(|| {
                    panic!("output_item.done for output_index {k} without a previous output_item.added:\n{}", dump())
                });
                assert!(*a < i);
                assert!(
                    done.insert(k, i).is_none(),
                    "two output_item.done for output_index {k}:\n{}",
                    dump()
                );
            }
            _ => {}
        }
    }
    // A failed turn leaves its unfinished items without `output_item.done` (so that no
    // client keeps a fragment); every other turn finishes every item.
    let failed = ev[terminals[0]].event == "response.failed";
    for k in added.keys() {
        assert!(
            failed || done.contains_key(k),
            "output_item.added for output_index {k} has no matching output_item.done:\n{}",
            dump()
        );
    }

    // Text deltas vs. done text.
    let mut deltas: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut done_texts: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for (i, e) in ev.iter().enumerate() {
        let key = || {
            let o = e.data.get("output_index").and_then(Value::as_u64);
            let c = e.data.get("content_index").and_then(Value::as_u64);
            match (o, c) {
                (Some(o), Some(c)) => (o, c),
                _ => panic!("{} without output_index/content_index: {}", e.event, e.data),
            }
        };
        match e.event.as_str() {
            "response.output_text.delta" => {
                let k = key();
                let a = added.get(&k.0).copied().unwrap_or(usize::MAX);
                assert!(
                    a < i,
                    "output_text.delta before the output_item.added of output_index {}:\n{}",
                    k.0,
                    dump()
                );
                if let Some(d) = done.get(&k.0) {
                    assert!(i < *d, "output_text.delta after its output_item.done");
                }
                let delta = e
                    .data
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| {
                        panic!("output_text.delta without a string delta: {}", e.data)
                    });
                deltas.entry(k).or_default().push_str(delta);
            }
            "response.output_text.done" => {
                let k = key();
                let text = e
                    .data
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("output_text.done without text: {}", e.data));
                done_texts.insert(k, text.to_owned());
            }
            _ => {}
        }
    }
    for (k, text) in &deltas {
        if failed && !done_texts.contains_key(k) {
            continue; // an unfinished item of a failed turn
        }
        let done_text = done_texts.get(k).unwrap_or_else(|| {
            panic!(
                "text deltas for output_index {} content_index {} have no output_text.done:\n{}",
                k.0,
                k.1,
                dump()
            )
        });
        assert_eq!(
            text, done_text,
            "text deltas do not concatenate to the done text"
        );
        // The item's final content part carries the same text.
        let item_done = &ev[done[&k.0]].data;
        let part_text = item_done
            .pointer(&format!("/item/content/{}/text", k.1))
            .and_then(Value::as_str);
        assert_eq!(
            part_text,
            Some(text.as_str()),
            "output_item.done's content[{}].text differs from the streamed text: {}",
            k.1,
            item_done
        );
    }

    ev[terminals[0]].data.clone()
}

/// Concatenation of all `response.output_text.delta` deltas.
pub fn streamed_text(stream: &SseStream) -> String {
    stream
        .of_type("response.output_text.delta")
        .iter()
        .filter_map(|e| e.get("delta").and_then(Value::as_str))
        .collect()
}

/// The completed items of a stream (`output_item.done` items, in order).
pub fn done_items(stream: &SseStream) -> Vec<Value> {
    stream
        .of_type("response.output_item.done")
        .iter()
        .map(|e| e["item"].clone())
        .collect()
}

/// The assistant text of a Response object's `output` (all `output_text` parts
/// of all `message` items).
pub fn response_output_text(response: &Value) -> String {
    let mut out = String::new();
    for item in response["output"].as_array().into_iter().flatten() {
        if item["type"] == "message" {
            for part in item["content"].as_array().into_iter().flatten() {
                if part["type"] == "output_text" {
                    out.push_str(part["text"].as_str().unwrap_or_default());
                }
            }
        }
    }
    out
}

/// Asserts the `{"error": {"message", "type", "param", "code"}}` shape and
/// returns the inner error object.
pub fn assert_openai_error_shape(body: &Value) -> Value {
    let err = body
        .get("error")
        .unwrap_or_else(|| panic!("error body without `error`: {body}"));
    assert!(
        err.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "error.message must be a non-empty string: {body}"
    );
    assert!(
        err.get("type").and_then(Value::as_str).is_some(),
        "error.type must be a string: {body}"
    );
    for key in ["param", "code"] {
        assert!(
            err.get(key).is_some(),
            "error.{key} must be present (may be null): {body}"
        );
    }
    err.clone()
}

// ------------------------------------------------------------------------------------------
// The converter's own output (pure suites)

/// Parses the stream converter's SSE output strictly: every block is exactly an `event:` line
/// and a `data:` line whose JSON `type` is the event name, and the output ends with
/// `data: [DONE]`.
pub fn parse_converter_sse(out: &[u8]) -> Vec<SseEvent> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "must end with [DONE]: {text}"
    );
    let mut evs = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.is_empty()) {
        if frame == "data: [DONE]" {
            continue;
        }
        let mut lines = frame.lines();
        let ev = lines
            .next()
            .unwrap()
            .strip_prefix("event: ")
            .unwrap()
            .to_owned();
        let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
        assert!(lines.next().is_none());
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], ev.as_str(), "event line equals type");
        evs.push(SseEvent { event: ev, data: v });
    }
    evs
}

/// [`check_events`] and what the converter promises on top: sequence numbers are the event's
/// position, `response.in_progress` comes second, and the deltas of every item kind (text,
/// arguments, reasoning summary, custom input) add up to its `output_item.done` content.
pub fn check_converter_events(evs: &[SseEvent]) -> Value {
    let terminal = check_events(evs);
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e.data["sequence_number"], i as u64);
    }
    let terminals: Vec<_> = evs
        .iter()
        .filter(|e| TERMINAL_EVENTS.contains(&e.event.as_str()))
        .collect();
    assert_eq!(terminals.len(), 1, "exactly one terminal event");
    assert_eq!(evs.last().unwrap().event, terminals[0].event);
    assert_eq!(evs[0].event, "response.created");
    assert_eq!(evs[1].event, "response.in_progress");
    // every added item gets a done with complete content, deltas follow their added
    let mut open = std::collections::HashMap::new();
    for SseEvent { event: e, data: v } in evs {
        match e.as_str() {
            "response.output_item.added" => {
                open.insert(v["output_index"].as_u64().unwrap(), String::new());
            }
            "response.output_text.delta"
            | "response.function_call_arguments.delta"
            | "response.reasoning_summary_text.delta"
            | "response.custom_tool_call_input.delta" => {
                let acc = open
                    .get_mut(&v["output_index"].as_u64().unwrap())
                    .expect("delta after added");
                acc.push_str(v["delta"].as_str().unwrap());
            }
            "response.output_item.done" => {
                let acc = open
                    .remove(&v["output_index"].as_u64().unwrap())
                    .expect("done after added");
                let item = &v["item"];
                let full = match item["type"].as_str().unwrap() {
                    "message" => item["content"][0]["text"].as_str().unwrap().to_owned(),
                    "function_call" => item["arguments"].as_str().unwrap().to_owned(),
                    "custom_tool_call" => item["input"].as_str().unwrap().to_owned(),
                    "reasoning" => item["summary"][0]["text"].as_str().unwrap().to_owned(),
                    t => panic!("unexpected item {t}"),
                };
                assert_eq!(acc, full, "deltas add up to the done content");
            }
            _ => {}
        }
    }
    let failed = evs.last().is_some_and(|e| e.event == "response.failed");
    assert!(failed || open.is_empty(), "items without done: {open:?}");
    terminal
}
