//! The stream converter: a push-based state machine from Chat Completions chunks (as raw SSE
//! bytes, in any split) to Responses API events (written in a [`Framing`]).
//!
//! It always ends with exactly one terminal event — `response.completed`,
//! `response.incomplete` or `response.failed` — followed, in the SSE framing, by
//! `data: [DONE]`, whether the upstream ended with `[DONE]`, ended without it, sent an error,
//! or was cut off. That is structural: the terminal event is written only on the way into
//! [`Phase::Done`], which nothing leaves.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::error::{base_resp_error, code_for_stream_error};
pub use super::events::Framing;
use super::events::{
    EventWriter, ItemStatus, OutputItem, ReasoningDone, ResponseEventKind, ResponsesEvent,
    SearchSource, UrlCitation, WEB_SEARCH_COMPLETED, WEB_SEARCH_IN_PROGRESS, WEB_SEARCH_SEARCHING,
};
use super::freeform::{custom_input_from_arguments, InputDecoder};
use super::ids::{encode_compaction_token, encode_reasoning_token, IdGen};
use super::response::{usage_json, write_response, Status};
use super::think::ThinkSplitter;
use super::tools::ToolOrigin;
use super::ResponseContext;
use crate::providers::NativeSearch;
use crate::sse::{SseDecoder, SseEvent};
use crate::types::chat::{ChatChunk, ChatCompletion, ChatUsage, ChunkDelta, ToolCallDelta};

#[derive(Debug)]
enum Slot {
    Text(TextSlot),
    Tool(ToolSlot),
}

/// The two kinds of text item: the same fields, the same life (added, part added, deltas,
/// done events, item done), different event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Message,
    Reasoning,
}

impl TextKind {
    fn id_prefix(self) -> &'static str {
        match self {
            TextKind::Message => "msg",
            TextKind::Reasoning => "rs",
        }
    }
}

/// A message or reasoning item.
#[derive(Debug)]
struct TextSlot {
    kind: TextKind,
    id: String,
    output_index: usize,
    text: String,
    closed: bool,
    /// A message's citations of the provider's search results (at its end).
    annotations: Vec<UrlCitation>,
}

impl TextSlot {
    /// The item as announced, or (`done`) finished.
    fn item(&self, done: bool, raw_reasoning: bool) -> OutputItem<'_> {
        match (self.kind, done) {
            (TextKind::Message, false) => OutputItem::Message {
                id: &self.id,
                text: None,
                annotations: &[],
            },
            (TextKind::Message, true) => OutputItem::Message {
                id: &self.id,
                text: Some(&self.text),
                annotations: &self.annotations,
            },
            (TextKind::Reasoning, false) => OutputItem::Reasoning {
                id: &self.id,
                done: None,
            },
            (TextKind::Reasoning, true) => OutputItem::Reasoning {
                id: &self.id,
                done: Some(ReasoningDone {
                    text: &self.text,
                    encrypted_content: encode_reasoning_token(&self.text),
                    raw: raw_reasoning,
                }),
            },
        }
    }
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
    /// The provider reply (of this turn's replies) the call came in.
    round: u32,
}

impl ToolSlot {
    /// The call as announced (`in_progress`, empty) or finished.
    fn item<'a>(&'a self, origin: &'a ToolOrigin, status: ItemStatus) -> OutputItem<'a> {
        let done = status == ItemStatus::Completed;
        let arguments = match (done, self.args.trim().is_empty()) {
            (false, _) => "",
            (true, true) => "{}",
            (true, false) => self.args.as_str(),
        };
        let (name, namespace) = match origin {
            ToolOrigin::Custom { name, namespace } => {
                let input = if done {
                    Cow::Owned(custom_input_from_arguments(&self.args))
                } else {
                    Cow::Borrowed("")
                };
                return OutputItem::CustomToolCall {
                    id: &self.id,
                    status,
                    call_id: &self.call_id,
                    name,
                    namespace: namespace.as_deref(),
                    input,
                };
            }
            ToolOrigin::ToolSearch => {
                return OutputItem::ToolSearchCall {
                    id: &self.id,
                    status,
                    call_id: &self.call_id,
                    arguments: if done {
                        search_arguments(&self.args)
                    } else {
                        None
                    },
                };
            }
            ToolOrigin::WebSearch => {
                return OutputItem::WebSearchCall {
                    id: &self.id,
                    status,
                    query: "",
                    sources: &[],
                };
            }
            ToolOrigin::Function { name } => (name, None),
            ToolOrigin::Namespaced { namespace, name } => (name, Some(namespace.as_str())),
        };
        OutputItem::FunctionCall {
            id: &self.id,
            status,
            call_id: &self.call_id,
            name,
            namespace,
            arguments,
        }
    }
}

/// A `tool_search_call`'s arguments: the model's JSON object (`None`: not an object, sent
/// as `{}`).
fn search_arguments(args: &str) -> Option<Box<serde_json::value::RawValue>> {
    let raw: Box<serde_json::value::RawValue> = serde_json::from_str(args).ok()?;
    raw.get().starts_with('{').then_some(raw)
}

/// How the provider's reply ended, before mapping to a terminal event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The upstream finished (with or without `[DONE]` / a finish chunk).
    Finished,
    /// Failure: error code and message for `response.failed`.
    Failed { code: String, message: String },
}

/// Where the turn is.
#[derive(Debug)]
enum Phase {
    /// Nothing was sent yet.
    Idle,
    /// `response.created` and `response.in_progress` were sent; items stream.
    Streaming(Streaming),
    /// The terminal event was produced: only the final Response object is left.
    Done(Finished),
}

#[derive(Debug, Default)]
struct Streaming {
    /// The text slot (message or reasoning) still open: at most one at a time.
    open: Option<usize>,
    /// A `delta` was seen: a later full `message` only repeats what was streamed.
    saw_delta: bool,
}

#[derive(Debug)]
struct Finished {
    /// The final Response object as JSON.
    json: Vec<u8>,
    /// `error.code` of a failed final Response.
    failure_code: Option<String>,
}

/// The output buffer's first size, and the most it keeps between reads.
const OUT_INITIAL: usize = 2048;
const OUT_KEEP: usize = 8192;

pub struct StreamConverter {
    ctx: ResponseContext,
    events: EventWriter,
    out: BytesMut,
    decoder: SseDecoder,
    scratch: Vec<SseEvent>,
    ids: IdGen,
    phase: Phase,
    slots: Vec<Slot>,
    added: usize,
    think: Option<ThinkSplitter>,
    usage: Option<ChatUsage>,
    finish_reason: Option<String>,
    /// Chat chunks seen (for the access log).
    pub chunks: u64,
    /// Remote compaction: the summary text so far (no message items are made).
    summary: String,
    /// Remote compaction: the one `compaction` output item (output index, id, token), once
    /// made.
    compaction_item: Option<(usize, String, String)>,
    /// The searches the provider reported with their results (GLM), in output order.
    searches: Vec<SearchSlot>,
    /// Results the answer may cite by marker (GLM's `refer`, e.g. `ref_1`).
    cited: Vec<Cited>,
    /// This turn's provider reply: 0, then one more for each answered search call (Kimi).
    round: u32,
    /// The usage of the earlier replies of this turn.
    usage_before: Option<ChatUsage>,
    /// The reply's text and reasoning (Kimi: they go back with the search call).
    round_text: String,
    round_reasoning: String,
    /// The reply ended with search calls the proxy answers: the messages to send, until
    /// taken; while set (and until [`StreamConverter::resume`]) the turn is not over.
    continuation: Option<Vec<Value>>,
    awaiting: bool,
}

/// A search the provider ran and reported with its results.
#[derive(Debug)]
struct SearchSlot {
    id: String,
    output_index: usize,
    sources: Vec<SearchSource>,
}

#[derive(Debug)]
struct Cited {
    refer: String,
    url: String,
    title: String,
}

/// Search calls answered by the proxy in one turn, at most (Kimi's loop): a reply that calls
/// the search again after that ends the turn as it is.
pub const MAX_SEARCH_ANSWERS: u32 = 3;

impl StreamConverter {
    /// `framing`: how the Responses events are written ([`Framing::None`]: only the final
    /// Response object is built, for whole JSON replies).
    pub fn new(ctx: ResponseContext, framing: Framing) -> Self {
        let think = ctx.quirks.think_tags.then(ThinkSplitter::default);
        let ids = IdGen::new(ctx.id_seed);
        StreamConverter {
            ctx,
            events: EventWriter::new(framing),
            out: BytesMut::with_capacity(OUT_INITIAL),
            decoder: SseDecoder::new(),
            scratch: Vec::new(),
            ids,
            phase: Phase::Idle,
            slots: Vec::new(),
            added: 0,
            think,
            usage: None,
            finish_reason: None,
            chunks: 0,
            summary: String::new(),
            compaction_item: None,
            searches: Vec::new(),
            cited: Vec::new(),
            round: 0,
            usage_before: None,
            round_text: String::new(),
            round_reasoning: String::new(),
            continuation: None,
            awaiting: false,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
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

    fn finished(&self) -> Option<&Finished> {
        match &self.phase {
            Phase::Done(f) => Some(f),
            _ => None,
        }
    }

    /// The final Response object, once the terminal event was produced.
    pub fn final_response(&self) -> Option<Value> {
        self.final_json()
            .and_then(|j| serde_json::from_slice(j).ok())
    }

    /// The final Response object as the JSON the client receives.
    pub fn final_json(&self) -> Option<&[u8]> {
        self.finished().map(|f| f.json.as_slice())
    }

    /// The final Response object's JSON, moved out (the converter stays done).
    pub fn take_final_json(&mut self) -> Option<Vec<u8>> {
        match &mut self.phase {
            Phase::Done(f) => Some(std::mem::take(&mut f.json)),
            _ => None,
        }
    }

    /// The `error.code` of the final Response when it failed.
    pub fn failure_code(&self) -> Option<&str> {
        self.finished().and_then(|f| f.failure_code.as_deref())
    }

    pub fn usage(&self) -> Option<&ChatUsage> {
        self.usage.as_ref()
    }

    /// Has any output item (text, reasoning, tool call) started?
    pub fn has_content(&self) -> bool {
        self.added > 0
    }

    /// The streaming state (`None` before the start and after the end).
    fn streaming(&mut self) -> Option<&mut Streaming> {
        match &mut self.phase {
            Phase::Streaming(s) => Some(s),
            _ => None,
        }
    }

    fn open_slot(&self) -> Option<usize> {
        match &self.phase {
            Phase::Streaming(s) => s.open,
            _ => None,
        }
    }

    /// Send `response.created` and `response.in_progress` now (e.g. as soon as the upstream
    /// answered 200), so the client sees progress before the first token.
    pub fn start(&mut self) {
        if !matches!(self.phase, Phase::Idle) {
            return;
        }
        self.phase = Phase::Streaming(Streaming::default());
        if !self.events.writes() {
            // JSON mode: the two events are not written, so do not build them (the Response
            // object carries the echoed request fields, tools included).
            self.events.skip();
            self.events.skip();
            return;
        }
        let mut resp = Vec::with_capacity(1024 + self.ctx.echo.len());
        write_response(
            &mut resp,
            &self.ctx,
            Status::InProgress,
            &[] as &[Value],
            None,
            None,
            None,
        );
        self.events
            .response_event(&mut self.out, ResponseEventKind::Created, &resp);
        self.events
            .response_event(&mut self.out, ResponseEventKind::InProgress, &resp);
    }

    /// Feed raw upstream SSE bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if self.is_done() || self.awaiting {
            return;
        }
        let mut events = std::mem::take(&mut self.scratch);
        self.decoder.push(bytes, &mut events);
        self.handle_events(&mut events);
        self.scratch = events;
    }

    /// The upstream body ended normally.
    pub fn finish(&mut self) {
        if !self.is_done() && !self.awaiting {
            let mut events = std::mem::take(&mut self.scratch);
            self.decoder.finish(&mut events);
            self.handle_events(&mut events);
            self.scratch = events;
        }
        self.end_of_reply();
    }

    /// Finish when nothing is left to decode: a completion was pushed whole (JSON mode), or
    /// there is no provider reply at all (Codex's warm-up).
    pub fn finish_without_events(&mut self) {
        self.end_of_reply();
    }

    /// The provider's reply is over: the turn ends, unless the reply called the provider's
    /// own search (Kimi's `$web_search`), which the proxy answers ([`Self::take_continuation`]).
    fn end_of_reply(&mut self) {
        if self.is_done() || self.awaiting {
            return;
        }
        if let Some(messages) = self.search_answer() {
            self.close_text();
            self.continuation = Some(messages);
            self.awaiting = true;
            return;
        }
        self.finalize(End::Finished);
    }

    /// The messages that answer this reply's search calls: the assistant message as the
    /// provider wrote it (its reasoning, text and calls) and one tool message per call with
    /// the call's arguments unchanged (Kimi's documented loop). `None` when the reply has no
    /// such call, has a call of the client's too (the client answers first), or the turn
    /// answered [`MAX_SEARCH_ANSWERS`] already.
    fn search_answer(&self) -> Option<Vec<Value>> {
        if !self.ctx.catalog.native_search.loops() || self.round >= MAX_SEARCH_ANSWERS {
            return None;
        }
        let calls: Vec<&ToolSlot> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Tool(t) if t.round == self.round && !t.chat_name.is_empty() => Some(t),
                _ => None,
            })
            .collect();
        let searching = |t: &&ToolSlot| self.ctx.catalog.is_web_search(&t.chat_name);
        if calls.is_empty() || !calls.iter().all(searching) {
            return None;
        }
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.call_id,
                    "type": "builtin_function",
                    "function": {"name": t.chat_name, "arguments": t.args},
                })
            })
            .collect();
        let mut assistant = serde_json::json!({
            "role": "assistant",
            "content": self.round_text,
            "tool_calls": tool_calls,
        });
        if !self.round_reasoning.is_empty() || self.ctx.quirks.require_reasoning_content {
            assistant["reasoning_content"] = Value::String(self.round_reasoning.clone());
        }
        let mut messages = vec![assistant];
        messages.extend(calls.iter().map(|t| {
            serde_json::json!({
                "role": "tool",
                "tool_call_id": t.call_id,
                "name": t.chat_name,
                "content": t.args,
            })
        }));
        Some(messages)
    }

    /// The messages to send to the provider before the turn goes on (see
    /// [`Self::end_of_reply`]), once.
    pub fn take_continuation(&mut self) -> Option<Vec<Value>> {
        self.continuation.take()
    }

    /// Is the turn waiting for the proxy to answer a search call?
    pub fn awaiting(&self) -> bool {
        self.awaiting
    }

    /// The provider answered the continuation: its reply continues this turn's response. The
    /// searches it answered are complete; the next reply's calls and text are new items.
    pub fn resume(&mut self) {
        if !self.awaiting {
            return;
        }
        self.awaiting = false;
        let answered: Vec<usize> = (0..self.slots.len())
            .filter(|i| {
                matches!(&self.slots[*i], Slot::Tool(t)
                    if t.round == self.round && self.ctx.catalog.is_web_search(&t.chat_name))
            })
            .collect();
        for i in answered {
            self.close_tool(i);
        }
        self.round += 1;
        self.usage_before = self.usage.take();
        self.usage.clone_from(&self.usage_before);
        self.finish_reason = None;
        self.decoder = SseDecoder::new();
        self.round_text.clear();
        self.round_reasoning.clear();
        if let Some(s) = self.streaming() {
            s.saw_delta = false;
        }
    }

    /// The upstream failed (cut off, timed out, unreadable): `response.failed`.
    pub fn fail(&mut self, code: &str, message: &str) {
        self.finalize(End::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    fn handle_events(&mut self, events: &mut Vec<SseEvent>) {
        for ev in events.drain(..) {
            if self.is_done() || self.awaiting {
                continue;
            }
            let data = ev.data.trim();
            if data.is_empty() {
                continue;
            }
            if data == "[DONE]" {
                self.end_of_reply();
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
        if self.is_done() || self.awaiting {
            return;
        }
        self.chunks += 1;
        if let Some(err) = &chunk.error {
            let (code, message) = code_for_stream_error(self.ctx.quirks.profile, err);
            self.fail(&code, &message);
            return;
        }
        if let Some((code, message)) = base_resp_error(chunk.base_resp.as_ref()) {
            self.fail(&code, &message);
            return;
        }
        self.start();
        if let Some(u) = chunk.usage() {
            self.usage = Some(self.with_earlier_usage(u));
        }
        if let Some(results) = &chunk.web_search {
            self.search_results(results);
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            let saw_delta = self.streaming().is_some_and(|s| s.saw_delta);
            match (&choice.delta, &choice.message) {
                (Some(d), _) => {
                    if let Some(s) = self.streaming() {
                        s.saw_delta = true;
                    }
                    self.push_delta(d);
                }
                // A full message after the deltas (MiniMax ends a stream with a
                // `chat.completion` frame repeating the whole message): already streamed.
                (None, Some(m)) if !saw_delta => self.push_delta(m),
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
            let (code, message) = code_for_stream_error(self.ctx.quirks.profile, err);
            self.fail(&code, &message);
            return;
        }
        if let Some((code, message)) = base_resp_error(c.base_resp.as_ref()) {
            self.fail(&code, &message);
            return;
        }
        self.start();
        if let Some(u) = c.usage() {
            self.usage = Some(self.with_earlier_usage(u));
        }
        if let Some(results) = &c.web_search {
            self.search_results(results);
        }
        if let Some(choice) = c.choices.first() {
            if let Some(m) = &choice.message {
                // A whole message is one big delta; its calls are numbered in order.
                let mut m = m.clone();
                for (i, tc) in m.tool_calls.iter_mut().flatten().enumerate() {
                    tc.index = Some(i as u32);
                }
                self.push_delta(&m);
            }
            self.finish_reason = choice.finish_reason.as_deref().map(str::to_owned);
        }
    }

    /// `u` with the usage of this turn's earlier replies added.
    fn with_earlier_usage(&self, u: &ChatUsage) -> ChatUsage {
        match &self.usage_before {
            Some(before) => before.plus(u),
            None => u.clone(),
        }
    }

    /// GLM's `web_search` results (a top-level array of the completion or of a chunk): one
    /// `web_search_call` per reply, complete at once (the provider searched before it
    /// answered), and the results its answer may cite.
    fn search_results(&mut self, results: &Value) {
        if self.ctx.catalog.native_search != NativeSearch::Glm || self.ctx.compaction {
            return;
        }
        let Some(list) = results.as_array().filter(|l| !l.is_empty()) else {
            return;
        };
        if !self.searches.is_empty() {
            return; // the same results repeated in a later chunk (GLM searches once)
        }
        let mut sources = Vec::new();
        for r in list {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let url = text("link");
            if url.is_empty() {
                continue;
            }
            let refer = text("refer");
            if !refer.is_empty() {
                self.cited.push(Cited {
                    refer,
                    url: url.clone(),
                    title: text("title"),
                });
            }
            if !sources.iter().any(|s: &SearchSource| s.url == url) {
                sources.push(SearchSource { url });
            }
        }
        self.close_text();
        self.close_tools();
        let slot = SearchSlot {
            id: self.ids.next("ws"),
            output_index: self.added,
            sources,
        };
        self.added += 1;
        let (id, oi) = (slot.id.as_str(), slot.output_index);
        let w = &mut self.events;
        let out = &mut self.out;
        let item = |status| OutputItem::WebSearchCall {
            id,
            status,
            query: "",
            sources: &slot.sources,
        };
        w.event(
            out,
            &ResponsesEvent::OutputItemAdded {
                output_index: oi,
                item: &item(ItemStatus::InProgress),
            },
        );
        for name in [
            WEB_SEARCH_IN_PROGRESS,
            WEB_SEARCH_SEARCHING,
            WEB_SEARCH_COMPLETED,
        ] {
            w.event(
                out,
                &ResponsesEvent::WebSearchCallProgress {
                    name,
                    item_id: id,
                    output_index: oi,
                },
            );
        }
        w.event(
            out,
            &ResponsesEvent::OutputItemDone {
                output_index: oi,
                item: &item(ItemStatus::Completed),
            },
        );
        self.searches.push(slot);
    }

    fn push_delta(&mut self, d: &ChunkDelta) {
        if let Some(r) = d.reasoning_content.as_deref().or(d.reasoning.as_deref()) {
            self.text_piece(TextKind::Reasoning, r);
        }
        if let Some(c) = &d.content {
            self.content_delta(&c.0);
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
            None => self.text_piece(TextKind::Message, s),
            Some(t) => {
                let parts = t.push(s);
                for (is_reasoning, piece) in parts {
                    self.text_piece(TextKind::of(is_reasoning), &piece);
                }
            }
        }
    }

    /// A piece of message or reasoning text: it opens an item of that kind (closing the open
    /// one of the other kind, and the calls) or extends the open one.
    fn text_piece(&mut self, kind: TextKind, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.ctx.compaction {
            // The summary is the reply's text; its reasoning is not part of it.
            if kind == TextKind::Message {
                self.summary.push_str(s);
            }
            return;
        }
        let open = self
            .open_slot()
            .filter(|i| matches!(self.slots.get(*i), Some(Slot::Text(t)) if t.kind == kind));
        let slot = match open {
            Some(i) => i,
            None => {
                self.close_text();
                self.open_text(kind)
            }
        };
        let raw = self.ctx.include_reasoning_text;
        if self.ctx.catalog.native_search.loops() {
            match kind {
                TextKind::Message => self.round_text.push_str(s),
                TextKind::Reasoning => self.round_reasoning.push_str(s),
            }
        }
        let Some(Slot::Text(t)) = self.slots.get_mut(slot) else {
            return;
        };
        t.text.push_str(s);
        let (item_id, output_index) = (t.id.as_str(), t.output_index);
        let out = &mut self.out;
        match kind {
            TextKind::Message => self.events.event(
                out,
                &ResponsesEvent::OutputTextDelta {
                    item_id,
                    output_index,
                    delta: s,
                },
            ),
            TextKind::Reasoning => {
                self.events.event(
                    out,
                    &ResponsesEvent::ReasoningSummaryTextDelta {
                        item_id,
                        output_index,
                        delta: s,
                    },
                );
                if raw {
                    self.events.event(
                        out,
                        &ResponsesEvent::ReasoningTextDelta {
                            item_id,
                            output_index,
                            delta: s,
                        },
                    );
                }
            }
        }
    }

    /// Announce a new text item (after the calls before it are finished); returns its slot.
    fn open_text(&mut self, kind: TextKind) -> usize {
        self.close_tools();
        let slot = TextSlot {
            kind,
            id: self.ids.next(kind.id_prefix()),
            output_index: self.added,
            text: String::new(),
            closed: false,
            annotations: Vec::new(),
        };
        self.added += 1;
        let (item_id, output_index) = (slot.id.as_str(), slot.output_index);
        let out = &mut self.out;
        self.events.event(
            out,
            &ResponsesEvent::OutputItemAdded {
                output_index,
                item: &slot.item(false, false),
            },
        );
        let part = match kind {
            TextKind::Message => ResponsesEvent::ContentPartAdded {
                item_id,
                output_index,
            },
            TextKind::Reasoning => ResponsesEvent::ReasoningSummaryPartAdded {
                item_id,
                output_index,
            },
        };
        self.events.event(out, &part);
        self.slots.push(Slot::Text(slot));
        let i = self.slots.len() - 1;
        if let Some(s) = self.streaming() {
            s.open = Some(i);
        }
        i
    }

    /// Finish the open text item, if any.
    fn close_text(&mut self) {
        let Some(i) = self.streaming().and_then(|s| s.open.take()) else {
            return;
        };
        let raw = self.ctx.include_reasoning_text;
        let Some(Slot::Text(t)) = self.slots.get_mut(i) else {
            return;
        };
        t.closed = true;
        if t.kind == TextKind::Message && !self.cited.is_empty() {
            t.annotations = citations(&t.text, &self.cited);
        }
        let t = &*t;
        let (item_id, output_index, text) = (t.id.as_str(), t.output_index, t.text.as_str());
        let out = &mut self.out;
        let w = &mut self.events;
        match t.kind {
            TextKind::Message => {
                for (annotation_index, annotation) in t.annotations.iter().enumerate() {
                    w.event(
                        out,
                        &ResponsesEvent::OutputTextAnnotationAdded {
                            item_id,
                            output_index,
                            annotation_index,
                            annotation,
                        },
                    );
                }
                w.event(
                    out,
                    &ResponsesEvent::OutputTextDone {
                        item_id,
                        output_index,
                        text,
                    },
                );
                w.event(
                    out,
                    &ResponsesEvent::ContentPartDone {
                        item_id,
                        output_index,
                        text,
                        annotations: &t.annotations,
                    },
                );
            }
            TextKind::Reasoning => {
                if raw {
                    w.event(
                        out,
                        &ResponsesEvent::ReasoningTextDone {
                            item_id,
                            output_index,
                            text,
                        },
                    );
                }
                w.event(
                    out,
                    &ResponsesEvent::ReasoningSummaryTextDone {
                        item_id,
                        output_index,
                        text,
                    },
                );
                w.event(
                    out,
                    &ResponsesEvent::ReasoningSummaryPartDone {
                        item_id,
                        output_index,
                        text,
                    },
                );
            }
        }
        if w.writes() {
            w.event(
                out,
                &ResponsesEvent::OutputItemDone {
                    output_index,
                    item: &t.item(true, raw),
                },
            );
        } else {
            w.skip(); // JSON mode: do not build the item (the token) twice
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
            .map_or("", |a| &a.0);
        let chat_index = match d.index {
            Some(i) => i,
            None => {
                // No index: a new call when it carries a new id, else the latest call.
                let last = self.slots.iter().rev().find_map(|s| match s {
                    Slot::Tool(t) if t.round == self.round => {
                        Some((t.chat_index, t.call_id.clone()))
                    }
                    _ => None,
                });
                match (last, d.id.as_deref()) {
                    (Some((i, cid)), Some(id)) if !id.is_empty() && cid != id => i + 1,
                    (Some((i, _)), _) => i,
                    (None, _) => 0,
                }
            }
        };
        let pos = self.slots.iter().position(
            |s| matches!(s, Slot::Tool(t) if t.chat_index == chat_index && t.round == self.round),
        );
        let pos = match pos {
            Some(p) => p,
            None => {
                self.close_text();
                self.slots.push(Slot::Tool(ToolSlot {
                    chat_index,
                    id: String::new(),
                    output_index: None,
                    call_id: String::new(),
                    chat_name: String::new(),
                    args: String::new(),
                    closed: false,
                    input: InputDecoder::default(),
                    round: self.round,
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
            t.args.push_str(args_frag);
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
        t.args.push_str(args_frag);
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
        t.id = match origin {
            ToolOrigin::Custom { .. } => ctc_id,
            ToolOrigin::Function { .. } | ToolOrigin::Namespaced { .. } => fc_id,
            ToolOrigin::ToolSearch => self.ids.next("tsc"),
            ToolOrigin::WebSearch => self.ids.next("ws"),
        };
        self.events.event(
            &mut self.out,
            &ResponsesEvent::OutputItemAdded {
                output_index,
                item: &t.item(&origin, ItemStatus::InProgress),
            },
        );
        if origin == ToolOrigin::WebSearch {
            for name in [WEB_SEARCH_IN_PROGRESS, WEB_SEARCH_SEARCHING] {
                self.events.event(
                    &mut self.out,
                    &ResponsesEvent::WebSearchCallProgress {
                        name,
                        item_id: &t.id,
                        output_index,
                    },
                );
            }
        }
    }

    /// Stream the arguments after byte `from` (function tools only; a custom tool's raw
    /// input is only known once its JSON arguments are complete).
    fn tool_args_delta(&mut self, pos: usize, from: usize) {
        let Some(Slot::Tool(t)) = self.slots.get_mut(pos) else {
            return;
        };
        if self.ctx.catalog.has_no_argument_events(&t.chat_name) {
            return; // a `tool_search_call` or `web_search_call` has no argument events
        }
        if self.ctx.catalog.is_custom(&t.chat_name) {
            // Stream the raw input as the JSON string arrives.
            let piece = t.input.feed(&t.args);
            if !piece.is_empty() {
                self.events.event(
                    &mut self.out,
                    &ResponsesEvent::CustomToolCallInputDelta {
                        item_id: &t.id,
                        output_index: t.output_index,
                        delta: &piece,
                    },
                );
            }
            return;
        }
        let delta = t.args.get(from..).unwrap_or("");
        if delta.is_empty() {
            return;
        }
        self.events.event(
            &mut self.out,
            &ResponsesEvent::FunctionCallArgumentsDelta {
                item_id: &t.id,
                output_index: t.output_index,
                delta,
            },
        );
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
        let origin = self.ctx.catalog.origin(&t.chat_name);
        let custom = matches!(
            origin,
            ToolOrigin::Custom { .. } | ToolOrigin::ToolSearch | ToolOrigin::WebSearch
        );
        let out = &mut self.out;
        let w = &mut self.events;
        if origin == ToolOrigin::WebSearch {
            w.event(
                out,
                &ResponsesEvent::WebSearchCallProgress {
                    name: WEB_SEARCH_COMPLETED,
                    item_id: &t.id,
                    output_index,
                },
            );
        }
        if t.args.trim().is_empty() && !custom {
            // A call without arguments: `{}`, announced as a delta so deltas add up.
            t.args = "{}".to_owned();
            w.event(
                out,
                &ResponsesEvent::FunctionCallArgumentsDelta {
                    item_id: &t.id,
                    output_index: Some(output_index),
                    delta: "{}",
                },
            );
        }
        let t = &*t;
        let item = t.item(&origin, ItemStatus::Completed);
        match &item {
            OutputItem::CustomToolCall { input, .. } => {
                // What was not streamed yet (all of it when the arguments were not
                // `{"input": "…"}`).
                let rest = input.strip_prefix(t.input.decoded()).unwrap_or(input);
                if !rest.is_empty() {
                    w.event(
                        out,
                        &ResponsesEvent::CustomToolCallInputDelta {
                            item_id: &t.id,
                            output_index: Some(output_index),
                            delta: rest,
                        },
                    );
                }
                w.event(
                    out,
                    &ResponsesEvent::CustomToolCallInputDone {
                        item_id: &t.id,
                        output_index,
                        input: input.as_ref(),
                    },
                );
            }
            OutputItem::FunctionCall {
                name, arguments, ..
            } => w.event(
                out,
                &ResponsesEvent::FunctionCallArgumentsDone {
                    item_id: &t.id,
                    output_index,
                    name,
                    arguments,
                },
            ),
            _ => {}
        }
        w.event(
            out,
            &ResponsesEvent::OutputItemDone {
                output_index,
                item: &item,
            },
        );
    }

    fn close_tools(&mut self) {
        for i in 0..self.slots.len() {
            if matches!(&self.slots[i], Slot::Tool(t) if !t.closed) {
                self.close_tool(i);
            }
        }
    }

    fn finalize(&mut self, outcome: End) {
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
        if !matches!(outcome, End::Failed { .. }) {
            self.close_all();
        }
        self.terminal(outcome);
    }

    /// Remote compaction: a finished reply becomes exactly one `compaction` item carrying
    /// the summary; no summary is a failure, never an empty or made-up compaction.
    fn compaction_outcome(&mut self, outcome: End) -> End {
        if let Some(t) = self.think.as_mut() {
            for (is_reasoning, piece) in t.flush() {
                if !is_reasoning {
                    self.summary.push_str(&piece);
                }
            }
        }
        if !matches!(outcome, End::Finished) {
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
            return End::Failed {
                code: "server_error".to_owned(),
                message: "The provider returned no summary for the compaction request.".to_owned(),
            };
        }
        // A summary cut at the length limit is still the summary: not `incomplete`.
        self.finish_reason = None;
        let id = self.ids.next("cmp");
        let token = encode_compaction_token(summary);
        let output_index = self.added;
        self.added += 1;
        let item = OutputItem::Compaction {
            id: &id,
            encrypted_content: &token,
        };
        self.events.event(
            &mut self.out,
            &ResponsesEvent::OutputItemAdded {
                output_index,
                item: &item,
            },
        );
        self.events.event(
            &mut self.out,
            &ResponsesEvent::OutputItemDone {
                output_index,
                item: &item,
            },
        );
        self.compaction_item = Some((output_index, id, token));
        outcome
    }

    /// Finish every open item (end of a successful turn).
    fn close_all(&mut self) {
        if let Some(t) = self.think.as_mut() {
            for (is_reasoning, piece) in t.flush() {
                self.text_piece(TextKind::of(is_reasoning), &piece);
            }
        }
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

    /// The terminal event and the final Response object: the way into [`Phase::Done`].
    fn terminal(&mut self, outcome: End) {
        if self.is_done() {
            return;
        }
        let usage = self.usage.as_ref().map(usage_json);
        let (status, error, reason, kind) = match &outcome {
            End::Failed { code, message } => (
                Status::Failed,
                Some(serde_json::json!({"code": code, "message": message})),
                None,
                ResponseEventKind::Failed,
            ),
            End::Finished => match self.finish_reason.as_deref() {
                Some("length") => (
                    Status::Incomplete,
                    None,
                    Some("max_output_tokens"),
                    ResponseEventKind::Incomplete,
                ),
                Some("content_filter") | Some("sensitive") => (
                    Status::Incomplete,
                    None,
                    Some("content_filter"),
                    ResponseEventKind::Incomplete,
                ),
                Some("network_error") => (
                    Status::Failed,
                    Some(serde_json::json!({"code": "server_error",
                        "message": "The provider reported an error while generating (finish_reason network_error)."})),
                    None,
                    ResponseEventKind::Failed,
                ),
                _ => (Status::Completed, None, None, ResponseEventKind::Completed),
            },
        };
        let origins = self.finished_call_origins();
        let mut resp = Vec::with_capacity(1024 + self.ctx.echo.len());
        write_response(
            &mut resp,
            &self.ctx,
            status,
            &self.output_items(&origins),
            usage.as_ref(),
            error.as_ref(),
            reason,
        );
        self.events.response_event(&mut self.out, kind, &resp);
        self.events.end(&mut self.out);
        let failure_code = error
            .as_ref()
            .and_then(|e| e.get("code").and_then(Value::as_str).map(str::to_owned));
        self.phase = Phase::Done(Finished {
            json: resp,
            failure_code,
        });
    }

    /// The origins of the finished calls, in slot order (what [`Self::output_items`] reads).
    fn finished_call_origins(&self) -> Vec<ToolOrigin> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Tool(t) if t.output_index.is_some() && t.closed => {
                    Some(self.ctx.catalog.origin(&t.chat_name))
                }
                _ => None,
            })
            .collect()
    }

    /// The finished items, in output order (the open ones of a failed turn left out).
    fn output_items<'a>(&'a self, origins: &'a [ToolOrigin]) -> Vec<OutputItem<'a>> {
        let mut items: Vec<(usize, OutputItem<'_>)> = Vec::with_capacity(self.slots.len() + 1);
        if let Some((oi, id, token)) = &self.compaction_item {
            items.push((
                *oi,
                OutputItem::Compaction {
                    id,
                    encrypted_content: token,
                },
            ));
        }
        for w in &self.searches {
            items.push((
                w.output_index,
                OutputItem::WebSearchCall {
                    id: &w.id,
                    status: ItemStatus::Completed,
                    query: "",
                    sources: &w.sources,
                },
            ));
        }
        let raw = self.ctx.include_reasoning_text;
        let mut origins = origins.iter();
        for s in &self.slots {
            match s {
                Slot::Text(t) if t.closed => items.push((t.output_index, t.item(true, raw))),
                Slot::Text(_) => {}
                Slot::Tool(t) => {
                    if let (Some(oi), true) = (t.output_index, t.closed) {
                        if let Some(origin) = origins.next() {
                            items.push((oi, t.item(origin, ItemStatus::Completed)));
                        }
                    }
                }
            }
        }
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v).collect()
    }
}

/// The `url_citation`s of `text`: each place it writes a cited result's marker (GLM's
/// `ref_1`, with the brackets around it, `[ref_1]` or `【ref_1】`), in order. Indices count
/// characters, as the Responses API does.
fn citations(text: &str, cited: &[Cited]) -> Vec<UrlCitation> {
    let mut found: Vec<(usize, usize, &Cited)> = Vec::new();
    for c in cited {
        for (at, _) in text.match_indices(c.refer.as_str()) {
            let mut start = at;
            let mut end = at + c.refer.len();
            // A longer marker (`ref_10` for `ref_1`) is not this one.
            if text[end..].starts_with(|ch: char| ch.is_ascii_digit()) {
                continue;
            }
            if let (Some(open), Some(close)) = (
                text[..start].chars().next_back(),
                text[end..].chars().next(),
            ) {
                if matches!((open, close), ('[', ']') | ('【', '】') | ('(', ')')) {
                    start -= open.len_utf8();
                    end += close.len_utf8();
                }
            }
            found.push((start, end, c));
        }
    }
    found.sort_by_key(|(start, _, _)| *start);
    found
        .into_iter()
        .map(|(start, end, c)| UrlCitation {
            start_index: text[..start].chars().count(),
            end_index: text[..end].chars().count(),
            url: c.url.clone(),
            title: c.title.clone(),
        })
        .collect()
}

impl TextKind {
    fn of(is_reasoning: bool) -> Self {
        if is_reasoning {
            TextKind::Reasoning
        } else {
            TextKind::Message
        }
    }
}

/// A non-streamed chat completion → the Response object (status completed, incomplete or
/// failed). The same state machine as the stream path builds the items, so both agree.
pub fn convert_completion(ctx: &ResponseContext, completion: &ChatCompletion) -> Value {
    let (json, _) = convert_completion_json(ctx.clone(), completion);
    serde_json::from_slice(&json).unwrap_or(Value::Null)
}

/// The same, as the JSON the client receives, and the error code when the Response failed.
pub fn convert_completion_json(
    ctx: ResponseContext,
    completion: &ChatCompletion,
) -> (Vec<u8>, Option<String>) {
    let mut conv = StreamConverter::new(ctx, Framing::None);
    conv.push_completion(completion);
    conv.finish_without_events();
    let code = conv.failure_code().map(str::to_owned);
    (conv.take_final_json().unwrap_or_default(), code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn cited(refer: &str, url: &str) -> Cited {
        Cited {
            refer: refer.to_owned(),
            url: url.to_owned(),
            title: format!("title of {refer}"),
        }
    }

    /// Markers with their brackets, in text order, indices in characters; `ref_10` is not
    /// `ref_1`.
    #[test]
    fn citations_cover_each_marker_in_characters() {
        let c = [
            cited("ref_1", "https://one.test"),
            cited("ref_10", "https://ten.test"),
        ];
        let text = "Ünïcode first【ref_10】 then [ref_1] and ref_1.";
        let got = citations(text, &c);
        let spans: Vec<(usize, usize, &str)> = got
            .iter()
            .map(|a| (a.start_index, a.end_index, a.url.as_str()))
            .collect();
        let chars = |needle: &str| text[..text.find(needle).unwrap()].chars().count();
        assert_eq!(
            spans,
            vec![
                (chars("【"), chars("【") + 8, "https://ten.test"),
                (chars("[ref_1]"), chars("[ref_1]") + 7, "https://one.test"),
                (chars("ref_1."), chars("ref_1.") + 5, "https://one.test"),
            ]
        );
        assert_eq!(got[0].title, "title of ref_10");
        assert!(citations("no markers", &c).is_empty());
    }

    /// Kimi's loop at the converter: the reply's search call is not a client call; the turn
    /// waits for the proxy's answer, then the next reply continues the same response.
    #[test]
    fn a_search_call_waits_for_its_answer_and_the_next_reply_continues() {
        let quirks = crate::providers::Profile::Kimi.quirks();
        let tools: Vec<crate::types::responses::Tool> =
            serde_json::from_value(json!([{"type": "web_search"}])).unwrap();
        let set = crate::convert::tools::convert_tools(&tools, &quirks);
        let mut ctx = ResponseContext::for_tests("kimi-k2.6", true);
        ctx.quirks = quirks;
        ctx.catalog = std::sync::Arc::new(set.catalog);
        let mut conv = StreamConverter::new(ctx, Framing::Sse);
        let sse = |v: Value| format!("data: {v}\n\n");
        let args = r#"{"search_result":{"search_id":"s1"}}"#;
        conv.push_bytes(
            sse(json!({"choices": [{"index": 0, "delta": {"reasoning_content": "look it up"}}]}))
                .as_bytes(),
        );
        conv.push_bytes(sse(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "type": "builtin_function", "function": {"name": "$web_search", "arguments": args}}]}}]})).as_bytes());
        conv.push_bytes(sse(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls", "usage": {"prompt_tokens": 10, "completion_tokens": 2}}]})).as_bytes());
        conv.push_bytes(b"data: [DONE]\n\n");
        conv.finish();
        assert!(!conv.is_done() && conv.awaiting());
        let out = String::from_utf8(conv.take_output().to_vec()).unwrap();
        assert!(out.contains("response.web_search_call.searching"), "{out}");
        assert!(!out.contains("function_call"), "{out}");
        let answer = conv.take_continuation().unwrap();
        assert_eq!(
            answer,
            vec![
                json!({"role": "assistant", "content": "", "reasoning_content": "look it up",
                    "tool_calls": [{"id": "c1", "type": "builtin_function",
                        "function": {"name": "$web_search", "arguments": args}}]}),
                json!({"role": "tool", "tool_call_id": "c1", "name": "$web_search", "content": args}),
            ]
        );
        assert!(conv.take_continuation().is_none(), "once");
        conv.resume();
        conv.push_bytes(
            sse(json!({"choices": [{"index": 0, "delta": {"content": "Found it."}}]})).as_bytes(),
        );
        conv.push_bytes(sse(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "usage": {"prompt_tokens": 30, "completion_tokens": 3}}]})).as_bytes());
        conv.push_bytes(b"data: [DONE]\n\n");
        conv.finish();
        assert!(conv.is_done());
        let done = conv.final_response().unwrap();
        let kinds: Vec<&str> = done["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["reasoning", "web_search_call", "message"],
            "{done:#}"
        );
        assert_eq!(done["usage"]["input_tokens"], 40);
        assert_eq!(done["usage"]["output_tokens"], 5);
    }

    fn ctx(profile: &str) -> ResponseContext {
        use crate::convert::request::{convert_request, parse_request, RequestOptions};
        let q = crate::providers::quirks_for(profile).unwrap();
        let req = parse_request(br#"{"model": "m", "input": "hi", "stream": true}"#).unwrap();
        let opts = RequestOptions {
            tools: None,
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
        let ok = json!({"choices": [{"message": {"content": "x"},
            "finish_reason": "stop"}], "base_resp": {"status_code": 0, "status_msg": ""}})
        .to_string();
        let ok: ChatCompletion = serde_json::from_str(&ok).unwrap();
        c.push_completion(&ok);
        c.finish_without_events();
        assert_eq!(c.final_response().unwrap()["status"], "completed");
        let bad = json!({"base_resp": {"status_code": 1008, "status_msg": "insufficient balance"}})
            .to_string();
        let bad: ChatCompletion = serde_json::from_str(&bad).unwrap();
        let mut c = StreamConverter::new(ctx("minimax"), Framing::None);
        c.push_completion(&bad);
        c.finish_without_events();
        let resp = c.final_response().unwrap();
        assert_eq!(resp["status"], "failed");
        assert_eq!(resp["error"]["code"], "insufficient_quota");
    }
}
