//! The stream converter: a push-based state machine from Chat Completions chunks (as raw SSE
//! bytes, in any split) to Responses API events (as SSE bytes).
//!
//! It always ends with exactly one terminal event — `response.completed`,
//! `response.incomplete` or `response.failed` — followed by `data: [DONE]`, whether the
//! upstream ended with `[DONE]`, ended without it, sent an error, or was cut off.

use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};

use super::error::{base_resp_error, code_for_stream_error};
use super::ids::{encode_compaction_token, encode_reasoning_token, IdGen};
use super::response::{usage_json, write_response, Status};
use super::tools::{custom_input_from_arguments, ToolOrigin};
use super::ResponseContext;
use crate::sse::{write_event_json, write_json_line, SseDecoder, SseEvent, DONE_FRAME};
use crate::types::chat::{
    arguments_text, content_text, ChatChunk, ChatCompletion, ChatUsage, ChunkDelta, ToolCallDelta,
};

#[derive(Debug)]
enum Slot {
    Reasoning {
        id: String,
        output_index: usize,
        text: String,
        closed: bool,
    },
    Message {
        id: String,
        output_index: usize,
        text: String,
        closed: bool,
    },
    Tool(ToolSlot),
}

#[derive(Debug)]
struct ToolSlot {
    chat_index: u32,
    id: String,
    /// Set once `output_item.added` was sent.
    output_index: Option<usize>,
    call_id: String,
    chat_name: String,
    args: String,
    closed: bool,
    /// Freeform tools: the raw input decoded so far from the `{"input": "…` arguments.
    input: InputDecoder,
}

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events: `event: NAME\ndata: JSON\n\n`, one per event, then
    /// `data: [DONE]`.
    Sse,
    /// One JSON object per event, each followed by `\n` (serde_json never writes a raw
    /// newline inside JSON): the WebSocket transport sends each line as one text frame.
    /// No `[DONE]`.
    WebSocket,
    /// Nothing is written: only the final Response object is built (whole JSON replies).
    None,
}

/// How the turn ended, before mapping to a terminal event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream finished (with or without `[DONE]` / a finish chunk).
    Finished,
    /// Failure: error code and message for `response.failed`.
    Failed { code: String, message: String },
}

/// The output buffer's first size, and the most it keeps between reads.
const OUT_INITIAL: usize = 2048;
const OUT_KEEP: usize = 8192;

pub struct StreamConverter {
    ctx: ResponseContext,
    framing: Framing,
    /// `framing != Framing::None`.
    emit: bool,
    out: BytesMut,
    decoder: SseDecoder,
    scratch: Vec<SseEvent>,
    seq: u64,
    ids: IdGen,
    started: bool,
    slots: Vec<Slot>,
    added: usize,
    open_text: Option<usize>,
    open_reasoning: Option<usize>,
    think: Option<ThinkSplitter>,
    usage: Option<ChatUsage>,
    finish_reason: Option<String>,
    /// A `delta` was seen: a later full `message` only repeats what was streamed.
    saw_delta: bool,
    /// The final Response object as JSON, once the terminal event was produced.
    final_json: Option<Vec<u8>>,
    /// `error.code` of a failed final Response.
    failure_code: Option<String>,
    /// Chat chunks seen (for the access log).
    pub chunks: u64,
    /// Remote compaction: the summary text so far (no message items are made).
    summary: String,
    /// Remote compaction: the one `compaction` output item, once made.
    compaction_item: Option<(usize, Value)>,
}

impl StreamConverter {
    /// `framing`: how the Responses events are written ([`Framing::None`]: only the final
    /// Response object is built, for whole JSON replies).
    pub fn new(ctx: ResponseContext, framing: Framing) -> Self {
        let think = ctx.quirks.think_tags.then(ThinkSplitter::default);
        let ids = IdGen::new(ctx.id_seed);
        StreamConverter {
            ctx,
            framing,
            emit: framing != Framing::None,
            out: BytesMut::with_capacity(OUT_INITIAL),
            decoder: SseDecoder::new(),
            scratch: Vec::new(),
            seq: 0,
            ids,
            started: false,
            slots: Vec::new(),
            added: 0,
            open_text: None,
            open_reasoning: None,
            think,
            usage: None,
            finish_reason: None,
            saw_delta: false,
            final_json: None,
            failure_code: None,
            chunks: 0,
            summary: String::new(),
            compaction_item: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.final_json.is_some()
    }

    /// Bytes ready for the client.
    pub fn take_output(&mut self) -> Bytes {
        if self.out.capacity() > OUT_KEEP {
            // A big write (the first events carry the echoed request): hand the whole
            // buffer over. `split` would leave this converter sharing the allocation, and
            // so holding it, for as long as the stream stays open.
            return std::mem::replace(&mut self.out, BytesMut::with_capacity(OUT_INITIAL)).freeze();
        }
        self.out.split().freeze()
    }

    /// The final Response object, once the terminal event was produced.
    pub fn final_response(&self) -> Option<Value> {
        self.final_json
            .as_deref()
            .and_then(|j| serde_json::from_slice(j).ok())
    }

    /// The final Response object as the JSON the client receives.
    pub fn final_json(&self) -> Option<&[u8]> {
        self.final_json.as_deref()
    }

    /// The final Response object's JSON, moved out (the converter stays done).
    pub fn take_final_json(&mut self) -> Option<Vec<u8>> {
        self.final_json.as_mut().map(std::mem::take)
    }

    /// The `error.code` of the final Response when it failed.
    pub fn failure_code(&self) -> Option<&str> {
        self.failure_code.as_deref()
    }

    pub fn usage(&self) -> Option<&ChatUsage> {
        self.usage.as_ref()
    }

    /// Has any output item (text, reasoning, tool call) started?
    pub fn has_content(&self) -> bool {
        self.added > 0
    }

    /// Send `response.created` and `response.in_progress` now (e.g. as soon as the upstream
    /// answered 200), so the client sees progress before the first token.
    pub fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        if !self.emit {
            // JSON mode: the two events are not written, so do not build them (the Response
            // object carries the echoed request fields, tools included).
            self.seq += 2;
            return;
        }
        let mut resp = Vec::with_capacity(1024 + self.ctx.echo.len());
        write_response(
            &mut resp,
            &self.ctx,
            Status::InProgress,
            &[],
            None,
            None,
            None,
        );
        self.response_event("response.created", &resp);
        self.response_event("response.in_progress", &resp);
    }

    /// Feed raw upstream SSE bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if self.is_done() {
            return;
        }
        let mut events = std::mem::take(&mut self.scratch);
        self.decoder.push(bytes, &mut events);
        self.handle_events(&mut events);
        self.scratch = events;
    }

    /// The upstream body ended normally.
    pub fn finish(&mut self) {
        if !self.is_done() {
            let mut events = std::mem::take(&mut self.scratch);
            self.decoder.finish(&mut events);
            self.handle_events(&mut events);
            self.scratch = events;
        }
        self.finalize(Outcome::Finished);
    }

    /// JSON mode: finish without an SSE decoder.
    pub fn finish_quiet(&mut self) {
        self.finalize(Outcome::Finished);
    }

    /// The upstream failed (cut off, timed out, unreadable): `response.failed`.
    pub fn fail(&mut self, code: &str, message: &str) {
        self.finalize(Outcome::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    fn handle_events(&mut self, events: &mut Vec<SseEvent>) {
        for ev in events.drain(..) {
            if self.is_done() {
                continue;
            }
            let data = ev.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                self.finalize(Outcome::Finished);
                continue;
            }
            match serde_json::from_str::<ChatChunk>(data) {
                Ok(chunk) => self.push_chunk(&chunk),
                Err(e) => self.fail(
                    "server_error",
                    &format!("The upstream sent an unreadable stream event ({e})."),
                ),
            }
        }
    }

    /// One parsed chunk.
    pub fn push_chunk(&mut self, chunk: &ChatChunk) {
        if self.is_done() {
            return;
        }
        self.chunks += 1;
        if let Some(err) = &chunk.error {
            let (code, message) = code_for_stream_error(err);
            self.fail(&code, &message);
            return;
        }
        if let Some((code, message)) = base_resp_error(chunk.base_resp.as_ref()) {
            self.fail(&code, &message);
            return;
        }
        self.start();
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(u) = &choice.usage {
                self.usage = Some(u.clone());
            }
            match (&choice.delta, &choice.message) {
                (Some(d), _) => {
                    self.saw_delta = true;
                    self.push_delta(d);
                }
                // A full message after the deltas (MiniMax ends a stream with a
                // `chat.completion` frame repeating the whole message): already streamed.
                (None, Some(m)) if !self.saw_delta => self.push_delta(m),
                _ => {}
            }
            if let Some(fr) = choice.finish_reason.as_deref().filter(|s| !s.is_empty()) {
                self.finish_reason = Some(fr.to_owned());
            }
        }
    }

    /// A non-streamed completion (JSON mode, or a JSON reply to a streamed request).
    pub fn push_completion(&mut self, c: &ChatCompletion) {
        if let Some(err) = &c.error {
            let (code, message) = code_for_stream_error(err);
            self.fail(&code, &message);
            return;
        }
        if let Some((code, message)) = base_resp_error(c.base_resp.as_ref()) {
            self.fail(&code, &message);
            return;
        }
        self.start();
        if let Some(u) = &c.usage {
            self.usage = Some(u.clone());
        }
        if let Some(choice) = c.choices.first() {
            if let Some(u) = &choice.usage {
                self.usage = Some(u.clone());
            }
            if let Some(m) = &choice.message {
                // A whole message is one big delta; its calls are numbered in order.
                let mut m = m.clone();
                for (i, tc) in m.tool_calls.iter_mut().flatten().enumerate() {
                    tc.index = Some(i as u32);
                }
                self.push_delta(&m);
            }
            self.finish_reason = choice.finish_reason.clone();
        }
    }

    fn push_delta(&mut self, d: &ChunkDelta) {
        if let Some(r) = d.reasoning_content.as_deref().or(d.reasoning.as_deref()) {
            self.reasoning_delta(r);
        }
        if let Some(c) = &d.content {
            match c {
                Value::String(s) => self.content_delta(s),
                Value::Null => {}
                other => self.content_delta(&content_text(other)),
            }
        }
        if let Some(calls) = &d.tool_calls {
            for tc in calls {
                self.tool_delta(tc);
            }
        }
    }

    fn content_delta(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.think.as_mut() {
            None => self.text_delta(s),
            Some(t) => {
                let parts = t.push(s);
                for (is_reasoning, piece) in parts {
                    if is_reasoning {
                        self.reasoning_delta(&piece);
                    } else {
                        self.text_delta(&piece);
                    }
                }
            }
        }
    }

    fn text_delta(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.ctx.compaction {
            self.summary.push_str(s);
            return;
        }
        self.close_reasoning();
        let slot = match self.open_text {
            Some(i) => i,
            None => {
                self.close_tools();
                let id = self.ids.next("msg");
                let output_index = self.added;
                self.added += 1;
                self.event(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": {
                        "id": id, "type": "message", "status": "in_progress",
                        "role": "assistant", "content": []}}),
                );
                self.event(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}),
                );
                self.slots.push(Slot::Message {
                    id,
                    output_index,
                    text: String::new(),
                    closed: false,
                });
                self.open_text = Some(self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        if let Some(Slot::Message {
            id,
            output_index,
            text,
            ..
        }) = self.slots.get_mut(slot)
        {
            text.push_str(s);
            let payload = json!({"item_id": id, "output_index": output_index,
                "content_index": 0, "delta": s, "logprobs": []});
            self.event("response.output_text.delta", payload);
        }
    }

    fn reasoning_delta(&mut self, s: &str) {
        if s.is_empty() || self.ctx.compaction {
            return;
        }
        if self.open_text.is_some() {
            self.close_text();
        }
        let slot = match self.open_reasoning {
            Some(i) => i,
            None => {
                self.close_tools();
                let id = self.ids.next("rs");
                let output_index = self.added;
                self.added += 1;
                self.event(
                    "response.output_item.added",
                    json!({"output_index": output_index, "item": {
                        "id": id, "type": "reasoning", "summary": []}}),
                );
                self.event(
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""}}),
                );
                self.slots.push(Slot::Reasoning {
                    id,
                    output_index,
                    text: String::new(),
                    closed: false,
                });
                self.open_reasoning = Some(self.slots.len() - 1);
                self.slots.len() - 1
            }
        };
        let raw = self.ctx.include_reasoning_text;
        if let Some(Slot::Reasoning {
            id,
            output_index,
            text,
            ..
        }) = self.slots.get_mut(slot)
        {
            text.push_str(s);
            let (id, oi) = (id.clone(), *output_index);
            self.event(
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": oi, "summary_index": 0, "delta": s}),
            );
            if raw {
                self.event(
                    "response.reasoning_text.delta",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "delta": s}),
                );
            }
        }
    }

    fn tool_delta(&mut self, d: &ToolCallDelta) {
        if self.ctx.compaction {
            // The summarisation request offers no tools; a call anyway is not a summary.
            return;
        }
        let name_frag = d
            .function
            .as_ref()
            .and_then(|f| f.name.as_deref())
            .unwrap_or("");
        let args_frag = d
            .function
            .as_ref()
            .and_then(|f| f.arguments.as_ref())
            .map(arguments_text)
            .unwrap_or_default();
        let chat_index = match d.index {
            Some(i) => i,
            None => {
                // No index: a new call when it carries a new id, else the latest call.
                let last = self.slots.iter().rev().find_map(|s| match s {
                    Slot::Tool(t) => Some((t.chat_index, t.call_id.clone())),
                    _ => None,
                });
                match (last, d.id.as_deref()) {
                    (Some((i, cid)), Some(id)) if !id.is_empty() && cid != id => i + 1,
                    (Some((i, _)), _) => i,
                    (None, _) => 0,
                }
            }
        };
        let pos = self
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Tool(t) if t.chat_index == chat_index));
        let pos = match pos {
            Some(p) => p,
            None => {
                self.close_text();
                self.close_reasoning();
                self.slots.push(Slot::Tool(ToolSlot {
                    chat_index,
                    id: String::new(),
                    output_index: None,
                    call_id: String::new(),
                    chat_name: String::new(),
                    args: String::new(),
                    closed: false,
                    input: InputDecoder::default(),
                }));
                self.slots.len() - 1
            }
        };
        let Some(Slot::Tool(t)) = self.slots.get_mut(pos) else {
            return;
        };
        if t.closed {
            // Only text after the calls closes them; a provider that goes back to a call
            // afterwards is out of protocol. Keep the text for the final object.
            tracing::warn!(chat_index, "tool call arguments after the call was closed");
            t.args.push_str(&args_frag);
            return;
        }
        if let Some(id) = d.id.as_deref().filter(|s| !s.is_empty()) {
            if t.call_id.is_empty() {
                t.call_id = id.to_owned();
            }
        }
        if !name_frag.is_empty() && t.output_index.is_none() {
            t.chat_name = name_frag.to_owned();
        }
        let pending_before = t.args.len();
        t.args.push_str(&args_frag);
        if t.output_index.is_none() {
            if t.chat_name.is_empty() {
                return; // wait for the name
            }
            self.add_tool(pos);
            // Everything buffered so far goes out as the first delta.
            self.tool_args_delta(pos, 0);
        } else if !args_frag.is_empty() {
            self.tool_args_delta(pos, pending_before);
        }
    }

    /// Announce a call. Calls stay open until the turn ends: some providers send the heads of
    /// all parallel calls first and their arguments afterwards, so closing a call when the
    /// next one starts could cut its arguments.
    fn add_tool(&mut self, pos: usize) {
        let output_index = self.added;
        self.added += 1;
        let call_id_new = self.ids.next("call");
        let fc_id = self.ids.next("fc");
        let ctc_id = self.ids.next("ctc");
        let Some(Slot::Tool(t)) = self.slots.get_mut(pos) else {
            return;
        };
        t.output_index = Some(output_index);
        if t.call_id.is_empty() {
            t.call_id = call_id_new;
        }
        let origin = self.ctx.catalog.origin(&t.chat_name);
        let item = match &origin {
            ToolOrigin::Custom { name } => {
                t.id = ctc_id;
                json!({"id": t.id, "type": "custom_tool_call", "status": "in_progress",
                    "call_id": t.call_id, "name": name, "input": ""})
            }
            ToolOrigin::Function { name } => {
                t.id = fc_id;
                json!({"id": t.id, "type": "function_call", "status": "in_progress",
                    "call_id": t.call_id, "name": name, "arguments": ""})
            }
            ToolOrigin::Namespaced { namespace, name } => {
                t.id = fc_id;
                json!({"id": t.id, "type": "function_call", "status": "in_progress",
                    "call_id": t.call_id, "name": name, "namespace": namespace, "arguments": ""})
            }
        };
        self.event(
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
    }

    /// Stream the arguments after byte `from` (function tools only; a custom tool's raw
    /// input is only known once its JSON arguments are complete).
    fn tool_args_delta(&mut self, pos: usize, from: usize) {
        let custom = match self.slots.get(pos) {
            Some(Slot::Tool(t)) => self.ctx.catalog.is_custom(&t.chat_name),
            _ => return,
        };
        if custom {
            // Stream the raw input as the JSON string arrives.
            let Some(Slot::Tool(t)) = self.slots.get_mut(pos) else {
                return;
            };
            let piece = t.input.feed(&t.args);
            if !piece.is_empty() {
                let payload =
                    json!({"item_id": t.id, "output_index": t.output_index, "delta": piece});
                self.event("response.custom_tool_call_input.delta", payload);
            }
            return;
        }
        let Some(Slot::Tool(t)) = self.slots.get(pos) else {
            return;
        };
        let delta = t.args.get(from..).unwrap_or("");
        if delta.is_empty() {
            return;
        }
        let payload = json!({"item_id": t.id, "output_index": t.output_index, "delta": delta});
        self.event("response.function_call_arguments.delta", payload);
    }

    fn close_tool(&mut self, pos: usize) {
        let Some(Slot::Tool(t)) = self.slots.get_mut(pos) else {
            return;
        };
        if t.closed {
            return;
        }
        t.closed = true;
        let Some(output_index) = t.output_index else {
            return; // never named: nothing was announced
        };
        if t.args.trim().is_empty() && !self.ctx.catalog.is_custom(&t.chat_name) {
            // A call without arguments: `{}`, announced as a delta so deltas add up.
            t.args = "{}".to_owned();
            let payload = json!({"item_id": t.id, "output_index": output_index, "delta": "{}"});
            self.event("response.function_call_arguments.delta", payload);
        }
        let Some(Slot::Tool(t)) = self.slots.get(pos) else {
            return;
        };
        let (events, _) = tool_done_events(&self.ctx, t, output_index);
        for (name, payload) in events {
            self.event(name, payload);
        }
    }

    fn close_tools(&mut self) {
        for i in 0..self.slots.len() {
            if matches!(&self.slots[i], Slot::Tool(t) if !t.closed) {
                self.close_tool(i);
            }
        }
    }

    fn close_text(&mut self) {
        let Some(i) = self.open_text.take() else {
            return;
        };
        let Some(Slot::Message {
            id,
            output_index,
            text,
            closed,
        }) = self.slots.get_mut(i)
        else {
            return;
        };
        *closed = true;
        let (id, oi, text) = (id.clone(), *output_index, text.clone());
        self.event(
            "response.output_text.done",
            json!({"item_id": id, "output_index": oi, "content_index": 0, "text": text, "logprobs": []}),
        );
        self.event(
            "response.content_part.done",
            json!({"item_id": id, "output_index": oi, "content_index": 0,
                "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}}),
        );
        let item = message_item(&id, &text);
        self.event(
            "response.output_item.done",
            json!({"output_index": oi, "item": item}),
        );
    }

    fn close_reasoning(&mut self) {
        let Some(i) = self.open_reasoning.take() else {
            return;
        };
        let Some(Slot::Reasoning {
            id,
            output_index,
            text,
            closed,
        }) = self.slots.get_mut(i)
        else {
            return;
        };
        *closed = true;
        let (id, oi, text) = (id.clone(), *output_index, text.clone());
        if self.ctx.include_reasoning_text {
            self.event(
                "response.reasoning_text.done",
                json!({"item_id": id, "output_index": oi, "content_index": 0, "text": text}),
            );
        }
        self.event(
            "response.reasoning_summary_text.done",
            json!({"item_id": id, "output_index": oi, "summary_index": 0, "text": text}),
        );
        self.event(
            "response.reasoning_summary_part.done",
            json!({"item_id": id, "output_index": oi, "summary_index": 0,
                "part": {"type": "summary_text", "text": text}}),
        );
        let item = reasoning_item(&id, &text, self.ctx.include_reasoning_text);
        self.event(
            "response.output_item.done",
            json!({"output_index": oi, "item": item}),
        );
    }

    fn finalize(&mut self, outcome: Outcome) {
        if self.is_done() {
            return;
        }
        self.start();
        let outcome = if self.ctx.compaction {
            self.compaction_outcome(outcome)
        } else {
            outcome
        };
        // A failed turn leaves the items still open unfinished: no `output_item.done` for a
        // partial message or call (Codex would keep the fragment in its history and show it),
        // only `response.failed` with the items that were complete.
        if !matches!(outcome, Outcome::Failed { .. }) {
            self.close_all();
        }
        self.terminal(outcome);
    }

    /// Remote compaction: a finished reply becomes exactly one `compaction` item carrying
    /// the summary; no summary is a failure, never an empty or made-up compaction.
    fn compaction_outcome(&mut self, outcome: Outcome) -> Outcome {
        if let Some(t) = self.think.as_mut() {
            for (is_reasoning, piece) in t.flush() {
                if !is_reasoning {
                    self.summary.push_str(&piece);
                }
            }
        }
        if !matches!(outcome, Outcome::Finished) {
            return outcome;
        }
        if matches!(
            self.finish_reason.as_deref(),
            Some("content_filter" | "sensitive")
        ) {
            return outcome;
        }
        let summary = self.summary.trim();
        if summary.is_empty() {
            return Outcome::Failed {
                code: "server_error".to_owned(),
                message: "The provider returned no summary for the compaction request.".to_owned(),
            };
        }
        // A summary cut at the length limit is still the summary: not `incomplete`.
        self.finish_reason = None;
        let item = json!({"id": self.ids.next("cmp"), "type": "compaction",
            "encrypted_content": encode_compaction_token(summary)});
        let output_index = self.added;
        self.added += 1;
        self.event(
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        self.event(
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
        self.compaction_item = Some((output_index, item));
        outcome
    }

    /// Finish every open item (end of a successful turn).
    fn close_all(&mut self) {
        if let Some(t) = self.think.as_mut() {
            for (is_reasoning, piece) in t.flush() {
                if is_reasoning {
                    self.reasoning_delta(&piece);
                } else {
                    self.text_delta(&piece);
                }
            }
        }
        self.close_reasoning();
        self.close_text();
        // Calls still waiting for a name get one now rather than vanishing.
        for i in 0..self.slots.len() {
            if let Slot::Tool(t) = &self.slots[i] {
                if t.output_index.is_none() && !t.closed && !t.args.is_empty() {
                    self.add_tool(i);
                    self.tool_args_delta(i, 0);
                }
            }
        }
        self.close_tools();
    }

    fn terminal(&mut self, outcome: Outcome) {
        let output = self.output_items();
        let usage = self.usage.as_ref().map(usage_json);
        let (status, error, reason, name) = match &outcome {
            Outcome::Failed { code, message } => (
                Status::Failed,
                Some(json!({"code": code, "message": message})),
                None,
                "response.failed",
            ),
            Outcome::Finished => match self.finish_reason.as_deref() {
                Some("length") => (
                    Status::Incomplete,
                    None,
                    Some("max_output_tokens"),
                    "response.incomplete",
                ),
                Some("content_filter") | Some("sensitive") => (
                    Status::Incomplete,
                    None,
                    Some("content_filter"),
                    "response.incomplete",
                ),
                Some("network_error") => (
                    Status::Failed,
                    Some(json!({"code": "server_error",
                        "message": "The provider reported an error while generating (finish_reason network_error)."})),
                    None,
                    "response.failed",
                ),
                _ => (Status::Completed, None, None, "response.completed"),
            },
        };
        let mut resp = Vec::with_capacity(1024 + self.ctx.echo.len());
        write_response(
            &mut resp,
            &self.ctx,
            status,
            &output,
            usage.as_ref(),
            error.as_ref(),
            reason,
        );
        if self.emit {
            self.response_event(name, &resp);
            if self.framing == Framing::Sse {
                self.out.extend_from_slice(DONE_FRAME);
            }
        } else {
            self.seq += 1; // JSON mode: the terminal event is not written
        }
        self.failure_code = error
            .as_ref()
            .and_then(|e| e.get("code").and_then(Value::as_str).map(str::to_owned));
        self.final_json = Some(resp);
    }

    fn output_items(&self) -> Vec<Value> {
        let mut items: Vec<(usize, Value)> = Vec::with_capacity(self.slots.len() + 1);
        if let Some(c) = &self.compaction_item {
            items.push(c.clone());
        }
        for s in &self.slots {
            match s {
                Slot::Message {
                    id,
                    output_index,
                    text,
                    closed: true,
                } => items.push((*output_index, message_item(id, text))),
                Slot::Reasoning {
                    id,
                    output_index,
                    text,
                    closed: true,
                } => items.push((
                    *output_index,
                    reasoning_item(id, text, self.ctx.include_reasoning_text),
                )),
                Slot::Message { .. } | Slot::Reasoning { .. } => {}
                Slot::Tool(t) => {
                    if let (Some(oi), true) = (t.output_index, t.closed) {
                        items.push((oi, tool_item(&self.ctx, t)));
                    }
                }
            }
        }
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `{"type":NAME,"sequence_number":N,"response":RESPONSE}` with the Response object's
    /// JSON copied in (it was serialised once for the created and in_progress pair).
    fn response_event(&mut self, name: &'static str, response_json: &[u8]) {
        let seq = self.seq;
        self.seq += 1;
        if !self.emit {
            return;
        }
        let num = seq.to_string();
        let sse = self.framing == Framing::Sse;
        let o = &mut self.out;
        o.reserve(response_json.len() + 2 * name.len() + 96);
        if sse {
            o.extend_from_slice(b"event: ");
            o.extend_from_slice(name.as_bytes());
            o.extend_from_slice(b"\ndata: ");
        }
        o.extend_from_slice(b"{\"type\":\"");
        o.extend_from_slice(name.as_bytes());
        o.extend_from_slice(b"\",\"sequence_number\":");
        o.extend_from_slice(num.as_bytes());
        o.extend_from_slice(b",\"response\":");
        o.extend_from_slice(response_json);
        o.extend_from_slice(if sse { b"}\n\n" } else { b"}\n" });
    }

    fn event(&mut self, name: &'static str, mut payload: Value) {
        let seq = self.seq;
        self.seq += 1;
        if !self.emit {
            return;
        }
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("type".into(), Value::String(name.to_owned()));
            obj.insert("sequence_number".into(), Value::from(seq));
        }
        match self.framing {
            Framing::Sse => write_event_json(&mut self.out, name, &payload),
            _ => write_json_line(&mut self.out, &payload),
        }
    }
}

fn message_item(id: &str, text: &str) -> Value {
    json!({"id": id, "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

fn reasoning_item(id: &str, text: &str, raw: bool) -> Value {
    let mut item = json!({"id": id, "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}],
        "encrypted_content": encode_reasoning_token(text)});
    if raw {
        if let Some(o) = item.as_object_mut() {
            o.insert(
                "content".into(),
                json!([{"type": "reasoning_text", "text": text}]),
            );
        }
    }
    item
}

fn tool_item(ctx: &ResponseContext, t: &ToolSlot) -> Value {
    let args = if t.args.trim().is_empty() {
        "{}"
    } else {
        t.args.as_str()
    };
    match ctx.catalog.origin(&t.chat_name) {
        ToolOrigin::Custom { name } => json!({"id": t.id, "type": "custom_tool_call",
            "status": "completed", "call_id": t.call_id, "name": name,
            "input": custom_input_from_arguments(&t.args)}),
        ToolOrigin::Function { name } => json!({"id": t.id, "type": "function_call",
            "status": "completed", "call_id": t.call_id, "name": name, "arguments": args}),
        ToolOrigin::Namespaced { namespace, name } => json!({"id": t.id,
            "type": "function_call", "status": "completed", "call_id": t.call_id,
            "name": name, "namespace": namespace, "arguments": args}),
    }
}

fn tool_done_events(
    ctx: &ResponseContext,
    t: &ToolSlot,
    output_index: usize,
) -> (Vec<(&'static str, Value)>, ()) {
    let item = tool_item(ctx, t);
    let mut events = Vec::with_capacity(3);
    if let Some(input) = item.get("input").and_then(Value::as_str) {
        // What was not streamed yet (all of it when the arguments were not `{"input": "…"}`).
        let rest = input
            .strip_prefix(t.input.decoded.as_str())
            .unwrap_or(input);
        if !rest.is_empty() {
            events.push((
                "response.custom_tool_call_input.delta",
                json!({"item_id": t.id, "output_index": output_index, "delta": rest}),
            ));
        }
        events.push((
            "response.custom_tool_call_input.done",
            json!({"item_id": t.id, "output_index": output_index, "input": input}),
        ));
    } else {
        let args = item.get("arguments").cloned().unwrap_or(Value::Null);
        let name = item.get("name").cloned().unwrap_or(Value::Null);
        events.push((
            "response.function_call_arguments.done",
            json!({"item_id": t.id, "output_index": output_index, "name": name, "arguments": args}),
        ));
    }
    events.push((
        "response.output_item.done",
        json!({"output_index": output_index, "item": item}),
    ));
    (events, ())
}

/// Decodes the string value of `{"input": "…` incrementally from a growing arguments text, so
/// a freeform tool's raw input streams as it arrives. Gives up (and leaves the whole input to
/// the final event) when the arguments have another shape.
#[derive(Debug, Default)]
struct InputDecoder {
    /// Byte offset in the arguments up to which they were consumed.
    pos: usize,
    state: InputState,
    decoded: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum InputState {
    #[default]
    Prefix,
    InString,
    Finished,
    GaveUp,
}

impl InputDecoder {
    /// Consume what is new in `args`; returns the newly decoded text.
    fn feed(&mut self, args: &str) -> String {
        let mut out = String::new();
        if self.state == InputState::Prefix {
            let trimmed = args.trim_start();
            let lead = args.len() - trimmed.len();
            let compact: String = trimmed
                .chars()
                .filter(|c| !c.is_whitespace())
                .take(10)
                .collect();
            if compact.len() < 10 {
                if !"{\"input\":\"".starts_with(compact.as_str()) {
                    self.state = InputState::GaveUp;
                }
                return out;
            }
            if compact != "{\"input\":\"" {
                self.state = InputState::GaveUp;
                return out;
            }
            // position right after the opening quote of the value
            let Some(colon) = trimmed.find(':') else {
                return out;
            };
            let Some(quote) = trimmed[colon..].find('"') else {
                return out;
            };
            self.pos = lead + colon + quote + 1;
            self.state = InputState::InString;
        }
        if self.state != InputState::InString {
            return out;
        }
        let bytes = args.as_bytes();
        let mut i = self.pos;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.state = InputState::Finished;
                    i += 1;
                    break;
                }
                b'\\' => {
                    let Some(&esc) = bytes.get(i + 1) else {
                        break; // wait for the rest of the escape
                    };
                    let simple = match esc {
                        b'n' => Some('\n'),
                        b't' => Some('\t'),
                        b'r' => Some('\r'),
                        b'b' => Some('\u{8}'),
                        b'f' => Some('\u{c}'),
                        b'"' => Some('"'),
                        b'\\' => Some('\\'),
                        b'/' => Some('/'),
                        _ => None,
                    };
                    if let Some(c) = simple {
                        out.push(c);
                        i += 2;
                        continue;
                    }
                    if esc != b'u' {
                        self.state = InputState::GaveUp;
                        break;
                    }
                    // \uXXXX, possibly a surrogate pair \uXXXX\uXXXX
                    let Some(hi) = args
                        .get(i + 2..i + 6)
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                    else {
                        if args.len() < i + 6 {
                            break; // incomplete
                        }
                        self.state = InputState::GaveUp;
                        break;
                    };
                    if (0xD800..0xDC00).contains(&hi) {
                        if args.len() < i + 12 {
                            break; // wait for the low surrogate
                        }
                        let lo = args
                            .get(i + 6..i + 8)
                            .filter(|s| *s == "\\u")
                            .and_then(|_| args.get(i + 8..i + 12))
                            .and_then(|h| u32::from_str_radix(h, 16).ok());
                        match lo.and_then(|lo| {
                            char::from_u32(
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF),
                            )
                        }) {
                            Some(c) => out.push(c),
                            None => out.push('\u{FFFD}'),
                        }
                        i += 12;
                    } else {
                        out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
                        i += 6;
                    }
                }
                _ => {
                    // copy a run of plain characters (valid UTF-8: `args` is a str)
                    let start = i;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\\' {
                        i += 1;
                    }
                    out.push_str(&args[start..i]);
                }
            }
        }
        self.pos = i;
        self.decoded.push_str(&out);
        out
    }
}

/// Splits `<think>…</think>` out of streamed content, with tags split across chunks.
#[derive(Debug, Default)]
struct ThinkSplitter {
    in_think: bool,
    pending: String,
    /// Strip whitespace right after `</think>`.
    after_close: bool,
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

impl ThinkSplitter {
    /// Returns (is_reasoning, text) pieces ready to emit.
    fn push(&mut self, s: &str) -> Vec<(bool, String)> {
        self.pending.push_str(s);
        let mut out = Vec::new();
        loop {
            let tag = if self.in_think { CLOSE } else { OPEN };
            if let Some(pos) = self.pending.find(tag) {
                let before: String = self.pending[..pos].to_owned();
                self.emit(&mut out, before);
                self.pending.drain(..pos + tag.len());
                self.in_think = !self.in_think;
                self.after_close = !self.in_think;
                continue;
            }
            // Keep a suffix that could be the start of the tag.
            let keep = (1..tag.len())
                .rev()
                .find(|n| self.pending.ends_with(&tag[..*n]))
                .unwrap_or(0);
            let cut = self.pending.len() - keep;
            if cut > 0 {
                let head: String = self.pending[..cut].to_owned();
                self.pending.drain(..cut);
                self.emit(&mut out, head);
            }
            return out;
        }
    }

    fn flush(&mut self) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.pending);
        self.emit(&mut out, rest);
        out
    }

    fn emit(&mut self, out: &mut Vec<(bool, String)>, mut text: String) {
        if !self.in_think && self.after_close {
            let trimmed = text.trim_start();
            if trimmed.is_empty() {
                return;
            }
            text = trimmed.to_owned();
            self.after_close = false;
        }
        if !text.is_empty() {
            out.push((self.in_think, text));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ctx(profile: &str) -> ResponseContext {
        use crate::convert::request::{convert_request, parse_request, RequestOptions};
        let q = crate::providers::quirks_for(profile).unwrap();
        let req = parse_request(br#"{"model": "m", "input": "hi", "stream": true}"#).unwrap();
        let opts = RequestOptions {
            quirks: &q,
            model_override: None,
            id_seed: Some(7),
            chain_resolved: false,
        };
        convert_request(req, &opts).unwrap().ctx
    }

    /// MiniMax ends a stream with a `chat.completion` frame holding the whole message and
    /// the real usage: the text must not be doubled, the usage must be taken.
    #[test]
    fn final_full_message_frame_is_not_repeated() {
        let mut c = StreamConverter::new(ctx("minimax"), Framing::Sse);
        c.push_bytes(
            concat!(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"\",\"content\":\"<think>plan</think>Hel\"}}],",
                "\"usage\":{\"total_tokens\":0}}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
                "data: {\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",",
                "\"message\":{\"role\":\"assistant\",\"content\":\"<think>plan</think>Hello\"}}],",
                "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n\n"
            )
            .as_bytes(),
        );
        c.finish();
        let resp = c.final_response().unwrap();
        assert_eq!(resp["status"], "completed");
        assert_eq!(resp["output"][0]["summary"][0]["text"], "plan");
        assert_eq!(resp["output"][1]["content"][0]["text"], "Hello");
        assert_eq!(resp["usage"]["total_tokens"], 8);
    }

    /// A lone full message (no deltas before it) is still read.
    #[test]
    fn lone_message_frame_is_read() {
        let mut c = StreamConverter::new(ctx("openai"), Framing::Sse);
        c.push_bytes(b"data: {\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"content\":\"Hi\"}}]}\n\n");
        c.finish();
        assert_eq!(
            c.final_response().unwrap()["output"][0]["content"][0]["text"],
            "Hi"
        );
    }

    #[test]
    fn minimax_base_resp_errors_fail_the_response() {
        let mut c = StreamConverter::new(ctx("minimax"), Framing::Sse);
        c.push_bytes(
            b"data: {\"base_resp\":{\"status_code\":1002,\"status_msg\":\"rate limit\"}}\n\n",
        );
        c.finish();
        let resp = c.final_response().unwrap();
        assert_eq!(resp["status"], "failed");
        assert_eq!(resp["error"]["code"], "rate_limit_exceeded");
        // status_code 0 is success.
        let mut c = StreamConverter::new(ctx("minimax"), Framing::None);
        let ok: ChatCompletion =
            serde_json::from_value(json!({"choices": [{"message": {"content": "x"},
            "finish_reason": "stop"}], "base_resp": {"status_code": 0, "status_msg": ""}}))
            .unwrap();
        c.push_completion(&ok);
        c.finish_quiet();
        assert_eq!(c.final_response().unwrap()["status"], "completed");
        let bad: ChatCompletion = serde_json::from_value(
            json!({"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}}),
        )
        .unwrap();
        let mut c = StreamConverter::new(ctx("minimax"), Framing::None);
        c.push_completion(&bad);
        c.finish_quiet();
        let resp = c.final_response().unwrap();
        assert_eq!(resp["status"], "failed");
        assert_eq!(resp["error"]["code"], "insufficient_quota");
    }

    #[test]
    fn freeform_input_streams_for_every_split() {
        let input =
            "*** Begin Patch\n*** Add File: a \"b\".txt\n+héllo 😀 \\ tab\t/\n*** End Patch\n";
        let args = serde_json::json!({ "input": input }).to_string();
        let escaped = args.replace('😀', "\\ud83d\\ude00").replace('é', "\\u00e9");
        for a in [&args, &escaped] {
            let cuts: Vec<usize> = (0..=a.len()).filter(|i| a.is_char_boundary(*i)).collect();
            for &cut in &cuts {
                let mut d = InputDecoder::default();
                let mut got = d.feed(&a[..cut]);
                got.push_str(&d.feed(a));
                assert_eq!(got, input, "cut {cut} of {a}");
                assert_eq!(d.decoded, input);
            }
            // one byte at a time
            let mut d = InputDecoder::default();
            let mut got = String::new();
            for &cut in &cuts {
                got.push_str(&d.feed(&a[..cut]));
            }
            assert_eq!(got, input);
        }
        let mut d = InputDecoder::default();
        assert_eq!(d.feed(r#"{"patch": "x"}"#), "");
        assert_eq!(d.state, InputState::GaveUp);
        let mut d = InputDecoder::default();
        assert_eq!(d.feed("*** Begin Patch"), "");
        assert_eq!(d.state, InputState::GaveUp);
    }

    #[test]
    fn think_splitter_handles_split_tags() {
        let full = "<think>plan it</think>\n\nanswer";
        for split in 0..full.len() {
            let mut t = ThinkSplitter::default();
            let mut got = t.push(&full[..split]);
            got.extend(t.push(&full[split..]));
            got.extend(t.flush());
            let reasoning: String = got
                .iter()
                .filter(|(r, _)| *r)
                .map(|(_, s)| s.as_str())
                .collect();
            let text: String = got
                .iter()
                .filter(|(r, _)| !*r)
                .map(|(_, s)| s.as_str())
                .collect();
            assert_eq!(reasoning, "plan it", "split {split}");
            assert_eq!(text, "answer", "split {split}");
        }
    }
}
