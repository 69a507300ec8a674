//! The Responses events and output items the converter writes: one serialize-only vocabulary
//! for the stream converter and the Response object.
//!
//! Every object is written with its keys in alphabetical order, except the Response events,
//! whose `type` and `sequence_number` come first and whose Response object (serialised once,
//! see [`super::response::write_response`]) is copied in. The golden fixtures
//! (`tests/fixtures/golden*`) pin that order byte for byte.
//!
//! The framing ([`Framing`]) decides how an event is written: an SSE block, a line of JSON (a
//! WebSocket text frame), or nothing; `data: [DONE]` belongs to the SSE framing alone.

use std::borrow::Cow;

use bytes::BytesMut;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::sse::{write_event_json, write_json_line, DONE_FRAME};

/// `serialize_struct` with the fields in the order given (alphabetical, by convention).
macro_rules! object {
    ($s:expr, $($key:literal => $value:expr),* $(,)?) => {{
        let mut st = $s.serialize_struct("", 0 $(+ { let _ = $key; 1 })*)?;
        $(st.serialize_field($key, $value)?;)*
        st.end()
    }};
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

/// The events that carry the whole Response object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseEventKind {
    Created,
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

impl ResponseEventKind {
    pub fn name(self) -> &'static str {
        match self {
            ResponseEventKind::Created => "response.created",
            ResponseEventKind::InProgress => "response.in_progress",
            ResponseEventKind::Completed => "response.completed",
            ResponseEventKind::Incomplete => "response.incomplete",
            ResponseEventKind::Failed => "response.failed",
        }
    }
}

/// One Responses streaming event about an output item (the Response events are
/// [`ResponseEventKind`]). Borrowed: built, written, dropped.
#[derive(Debug)]
pub enum ResponsesEvent<'a> {
    OutputItemAdded {
        output_index: usize,
        item: &'a OutputItem<'a>,
    },
    OutputItemDone {
        output_index: usize,
        item: &'a OutputItem<'a>,
    },
    /// An `output_text` part: empty when added, the whole text when done.
    ContentPartAdded {
        item_id: &'a str,
        output_index: usize,
    },
    ContentPartDone {
        item_id: &'a str,
        output_index: usize,
        text: &'a str,
        annotations: &'a [UrlCitation],
    },
    OutputTextDelta {
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    OutputTextDone {
        item_id: &'a str,
        output_index: usize,
        text: &'a str,
    },
    /// A `summary_text` part: empty when added, the whole text when done.
    ReasoningSummaryPartAdded {
        item_id: &'a str,
        output_index: usize,
    },
    ReasoningSummaryPartDone {
        item_id: &'a str,
        output_index: usize,
        text: &'a str,
    },
    ReasoningSummaryTextDelta {
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    ReasoningSummaryTextDone {
        item_id: &'a str,
        output_index: usize,
        text: &'a str,
    },
    ReasoningTextDelta {
        item_id: &'a str,
        output_index: usize,
        delta: &'a str,
    },
    ReasoningTextDone {
        item_id: &'a str,
        output_index: usize,
        text: &'a str,
    },
    FunctionCallArgumentsDelta {
        item_id: &'a str,
        output_index: Option<usize>,
        delta: &'a str,
    },
    FunctionCallArgumentsDone {
        item_id: &'a str,
        output_index: usize,
        name: &'a str,
        arguments: &'a str,
    },
    CustomToolCallInputDelta {
        item_id: &'a str,
        output_index: Option<usize>,
        delta: &'a str,
    },
    CustomToolCallInputDone {
        item_id: &'a str,
        output_index: usize,
        input: &'a str,
    },
    /// `response.web_search_call.{in_progress, searching, completed}`.
    WebSearchCallProgress {
        name: &'static str,
        item_id: &'a str,
        output_index: usize,
    },
    /// A citation of the message's `output_text` part.
    OutputTextAnnotationAdded {
        item_id: &'a str,
        output_index: usize,
        annotation_index: usize,
        annotation: &'a UrlCitation,
    },
}

/// `response.web_search_call.*` event names, in the order they come.
pub const WEB_SEARCH_IN_PROGRESS: &str = "response.web_search_call.in_progress";
pub const WEB_SEARCH_SEARCHING: &str = "response.web_search_call.searching";
pub const WEB_SEARCH_COMPLETED: &str = "response.web_search_call.completed";

/// A `url_citation` annotation: the characters `start_index..end_index` of the text cite
/// `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlCitation {
    pub start_index: usize,
    pub end_index: usize,
    pub url: String,
    pub title: String,
}

impl Serialize for UrlCitation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object!(s, "end_index" => &self.end_index, "start_index" => &self.start_index,
            "title" => &self.title, "type" => "url_citation", "url" => &self.url)
    }
}

/// One source a search found: `{"type":"url","url":URL}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSource {
    pub url: String,
}

impl Serialize for SearchSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object!(s, "type" => "url", "url" => &self.url)
    }
}

/// A `web_search_call`'s `action`: `{"query", "sources", "type": "search"}`.
struct SearchAction<'a> {
    query: &'a str,
    sources: &'a [SearchSource],
}

impl Serialize for SearchAction<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object!(s, "query" => self.query, "sources" => self.sources, "type" => "search")
    }
}

impl ResponsesEvent<'_> {
    /// The event's `type` (and SSE `event:` name).
    pub fn name(&self) -> &'static str {
        use ResponsesEvent as E;
        match self {
            E::OutputItemAdded { .. } => "response.output_item.added",
            E::OutputItemDone { .. } => "response.output_item.done",
            E::ContentPartAdded { .. } => "response.content_part.added",
            E::ContentPartDone { .. } => "response.content_part.done",
            E::OutputTextDelta { .. } => "response.output_text.delta",
            E::OutputTextDone { .. } => "response.output_text.done",
            E::ReasoningSummaryPartAdded { .. } => "response.reasoning_summary_part.added",
            E::ReasoningSummaryPartDone { .. } => "response.reasoning_summary_part.done",
            E::ReasoningSummaryTextDelta { .. } => "response.reasoning_summary_text.delta",
            E::ReasoningSummaryTextDone { .. } => "response.reasoning_summary_text.done",
            E::ReasoningTextDelta { .. } => "response.reasoning_text.delta",
            E::ReasoningTextDone { .. } => "response.reasoning_text.done",
            E::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            E::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            E::CustomToolCallInputDelta { .. } => "response.custom_tool_call_input.delta",
            E::CustomToolCallInputDone { .. } => "response.custom_tool_call_input.done",
            E::WebSearchCallProgress { name, .. } => name,
            E::OutputTextAnnotationAdded { .. } => "response.output_text.annotation.added",
        }
    }
}

/// An event with its sequence number: what is serialised.
pub struct Sequenced<'a> {
    pub sequence_number: u64,
    pub event: &'a ResponsesEvent<'a>,
}

const EMPTY: [(); 0] = [];

/// `{}`.
struct EmptyObject;

impl Serialize for EmptyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// `{"annotations":[...],"logprobs":[],"text":TEXT,"type":"output_text"}`.
struct OutputTextPart<'a>(&'a str, &'a [UrlCitation]);

impl Serialize for OutputTextPart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object!(s, "annotations" => self.1, "logprobs" => &EMPTY, "text" => self.0,
            "type" => "output_text")
    }
}

/// `{"text":TEXT,"type":KIND}` (`summary_text`, `reasoning_text`).
struct TextPart<'a>(&'static str, &'a str);

impl Serialize for TextPart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object!(s, "text" => self.1, "type" => self.0)
    }
}

impl Serialize for Sequenced<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ResponsesEvent as E;
        let seq = &self.sequence_number;
        let ty = self.event.name();
        match *self.event {
            E::OutputItemAdded { output_index, item }
            | E::OutputItemDone { output_index, item } => {
                object!(s, "item" => item, "output_index" => &output_index,
                    "sequence_number" => seq, "type" => ty)
            }
            E::ContentPartAdded {
                item_id,
                output_index,
            } => object!(s, "content_index" => &0, "item_id" => item_id,
                "output_index" => &output_index, "part" => &OutputTextPart("", &[]),
                "sequence_number" => seq, "type" => ty),
            E::ContentPartDone {
                item_id,
                output_index,
                text,
                annotations,
            } => object!(s, "content_index" => &0, "item_id" => item_id,
                "output_index" => &output_index, "part" => &OutputTextPart(text, annotations),
                "sequence_number" => seq, "type" => ty),
            E::OutputTextDelta {
                item_id,
                output_index,
                delta,
            } => object!(s, "content_index" => &0, "delta" => delta, "item_id" => item_id,
                "logprobs" => &EMPTY, "output_index" => &output_index,
                "sequence_number" => seq, "type" => ty),
            E::OutputTextDone {
                item_id,
                output_index,
                text,
            } => object!(s, "content_index" => &0, "item_id" => item_id,
                "logprobs" => &EMPTY, "output_index" => &output_index,
                "sequence_number" => seq, "text" => text, "type" => ty),
            E::ReasoningSummaryPartAdded {
                item_id,
                output_index,
            } => object!(s, "item_id" => item_id, "output_index" => &output_index,
                "part" => &TextPart("summary_text", ""), "sequence_number" => seq,
                "summary_index" => &0, "type" => ty),
            E::ReasoningSummaryPartDone {
                item_id,
                output_index,
                text,
            } => object!(s, "item_id" => item_id, "output_index" => &output_index,
                "part" => &TextPart("summary_text", text), "sequence_number" => seq,
                "summary_index" => &0, "type" => ty),
            E::ReasoningSummaryTextDelta {
                item_id,
                output_index,
                delta,
            } => object!(s, "delta" => delta, "item_id" => item_id,
                "output_index" => &output_index, "sequence_number" => seq,
                "summary_index" => &0, "type" => ty),
            E::ReasoningSummaryTextDone {
                item_id,
                output_index,
                text,
            } => object!(s, "item_id" => item_id, "output_index" => &output_index,
                "sequence_number" => seq, "summary_index" => &0, "text" => text,
                "type" => ty),
            E::ReasoningTextDelta {
                item_id,
                output_index,
                delta,
            } => object!(s, "content_index" => &0, "delta" => delta, "item_id" => item_id,
                "output_index" => &output_index, "sequence_number" => seq, "type" => ty),
            E::ReasoningTextDone {
                item_id,
                output_index,
                text,
            } => object!(s, "content_index" => &0, "item_id" => item_id,
                "output_index" => &output_index, "sequence_number" => seq, "text" => text,
                "type" => ty),
            E::FunctionCallArgumentsDelta {
                item_id,
                output_index,
                delta,
            }
            | E::CustomToolCallInputDelta {
                item_id,
                output_index,
                delta,
            } => object!(s, "delta" => delta, "item_id" => item_id,
                "output_index" => &output_index, "sequence_number" => seq, "type" => ty),
            E::FunctionCallArgumentsDone {
                item_id,
                output_index,
                name,
                arguments,
            } => object!(s, "arguments" => arguments, "item_id" => item_id, "name" => name,
                "output_index" => &output_index, "sequence_number" => seq, "type" => ty),
            E::CustomToolCallInputDone {
                item_id,
                output_index,
                input,
            } => object!(s, "input" => input, "item_id" => item_id,
                "output_index" => &output_index, "sequence_number" => seq, "type" => ty),
            E::WebSearchCallProgress {
                item_id,
                output_index,
                ..
            } => object!(s, "item_id" => item_id, "output_index" => &output_index,
                "sequence_number" => seq, "type" => ty),
            E::OutputTextAnnotationAdded {
                item_id,
                output_index,
                annotation_index,
                annotation,
            } => object!(s, "annotation" => annotation, "annotation_index" => &annotation_index,
                "content_index" => &0, "item_id" => item_id, "output_index" => &output_index,
                "sequence_number" => seq, "type" => ty),
        }
    }
}

/// The status of an output item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    InProgress,
    Completed,
}

impl ItemStatus {
    fn as_str(self) -> &'static str {
        match self {
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Completed => "completed",
        }
    }
}

/// An output item, as announced (`in_progress`, empty) or finished.
#[derive(Debug)]
pub enum OutputItem<'a> {
    /// An assistant message: no content part while in progress, one `output_text` part done.
    Message {
        id: &'a str,
        /// `None`: in progress.
        text: Option<&'a str>,
        /// The text's citations (done only).
        annotations: &'a [UrlCitation],
    },
    /// A reasoning item: an empty summary while in progress; done, the summary, the
    /// proxy's token carrying the text, and the raw text when the client asked for it.
    Reasoning {
        id: &'a str,
        done: Option<ReasoningDone<'a>>,
    },
    FunctionCall {
        id: &'a str,
        status: ItemStatus,
        call_id: &'a str,
        name: &'a str,
        namespace: Option<&'a str>,
        arguments: &'a str,
    },
    CustomToolCall {
        id: &'a str,
        status: ItemStatus,
        call_id: &'a str,
        name: &'a str,
        namespace: Option<&'a str>,
        input: Cow<'a, str>,
    },
    /// The model's call of the client-executed `tool_search` (`arguments` `None`: `{}`).
    ToolSearchCall {
        id: &'a str,
        status: ItemStatus,
        call_id: &'a str,
        arguments: Option<Box<RawValue>>,
    },
    /// A search the provider ran (its own web search).
    WebSearchCall {
        id: &'a str,
        /// `in_progress` when announced, `completed` when done.
        status: ItemStatus,
        query: &'a str,
        sources: &'a [SearchSource],
    },
    /// Remote compaction: the summary, as the proxy's token.
    Compaction {
        id: &'a str,
        encrypted_content: &'a str,
    },
}

#[derive(Debug)]
pub struct ReasoningDone<'a> {
    pub text: &'a str,
    pub encrypted_content: String,
    /// Also the raw text as `content`.
    pub raw: bool,
}

impl Serialize for OutputItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OutputItem::Message { id, text: None, .. } => object!(s, "content" => &EMPTY,
                "id" => id, "role" => "assistant", "status" => "in_progress",
                "type" => "message"),
            OutputItem::Message {
                id,
                text: Some(t),
                annotations,
            } => object!(s,
                "content" => &[OutputTextPart(t, annotations)], "id" => id, "role" => "assistant",
                "status" => "completed", "type" => "message"),
            OutputItem::Reasoning { id, done: None } => object!(s, "id" => id,
                "summary" => &EMPTY, "type" => "reasoning"),
            OutputItem::Reasoning { id, done: Some(d) } if d.raw => {
                object!(s, "content" => &[TextPart("reasoning_text", d.text)],
                "encrypted_content" => &d.encrypted_content, "id" => id,
                "summary" => &[TextPart("summary_text", d.text)], "type" => "reasoning")
            }
            OutputItem::Reasoning { id, done: Some(d) } => {
                object!(s, "encrypted_content" => &d.encrypted_content, "id" => id,
                "summary" => &[TextPart("summary_text", d.text)], "type" => "reasoning")
            }
            OutputItem::FunctionCall {
                id,
                status,
                call_id,
                name,
                namespace: None,
                arguments,
            } => object!(s, "arguments" => arguments, "call_id" => call_id, "id" => id,
                "name" => name, "status" => status.as_str(), "type" => "function_call"),
            OutputItem::FunctionCall {
                id,
                status,
                call_id,
                name,
                namespace: Some(ns),
                arguments,
            } => object!(s, "arguments" => arguments, "call_id" => call_id, "id" => id,
                "name" => name, "namespace" => ns, "status" => status.as_str(),
                "type" => "function_call"),
            OutputItem::CustomToolCall {
                id,
                status,
                call_id,
                name,
                namespace: None,
                input,
            } => object!(s, "call_id" => call_id, "id" => id, "input" => input,
                "name" => name, "status" => status.as_str(), "type" => "custom_tool_call"),
            OutputItem::CustomToolCall {
                id,
                status,
                call_id,
                name,
                namespace: Some(ns),
                input,
            } => object!(s, "call_id" => call_id, "id" => id, "input" => input,
                "name" => name, "namespace" => ns, "status" => status.as_str(),
                "type" => "custom_tool_call"),
            OutputItem::ToolSearchCall {
                id,
                status,
                call_id,
                arguments,
            } => match arguments {
                Some(args) => object!(s, "arguments" => args, "call_id" => call_id,
                    "execution" => "client", "id" => id, "status" => status.as_str(),
                    "type" => "tool_search_call"),
                None => object!(s, "arguments" => &EmptyObject, "call_id" => call_id,
                    "execution" => "client", "id" => id, "status" => status.as_str(),
                    "type" => "tool_search_call"),
            },
            OutputItem::WebSearchCall {
                id,
                status,
                query,
                sources,
            } => object!(s, "action" => &SearchAction { query, sources }, "id" => id,
                "status" => status.as_str(), "type" => "web_search_call"),
            OutputItem::Compaction {
                id,
                encrypted_content,
            } => object!(s, "encrypted_content" => encrypted_content, "id" => id,
                "type" => "compaction"),
        }
    }
}

/// Writes events in one framing into a buffer.
#[derive(Debug)]
pub struct EventWriter {
    pub framing: Framing,
    /// The next event's `sequence_number` (counted in every framing).
    seq: u64,
}

impl EventWriter {
    pub fn new(framing: Framing) -> Self {
        EventWriter { framing, seq: 0 }
    }

    /// Does this framing write anything?
    pub fn writes(&self) -> bool {
        self.framing != Framing::None
    }

    /// Count an event that is not written.
    pub fn skip(&mut self) {
        self.seq += 1;
    }

    /// One item event.
    pub fn event(&mut self, out: &mut BytesMut, event: &ResponsesEvent<'_>) {
        let sequence_number = self.seq;
        self.seq += 1;
        let payload = Sequenced {
            sequence_number,
            event,
        };
        match self.framing {
            Framing::Sse => write_event_json(out, event.name(), &payload),
            Framing::WebSocket => write_json_line(out, &payload),
            Framing::None => {}
        }
    }

    /// `{"type":NAME,"sequence_number":N,"response":RESPONSE}` with the Response object's
    /// JSON copied in (it was serialised once for the created and in_progress pair).
    pub fn response_event(
        &mut self,
        out: &mut BytesMut,
        kind: ResponseEventKind,
        response_json: &[u8],
    ) {
        let seq = self.seq;
        self.seq += 1;
        let sse = match self.framing {
            Framing::Sse => true,
            Framing::WebSocket => false,
            Framing::None => return,
        };
        let name = kind.name();
        let num = seq.to_string();
        out.reserve(response_json.len() + 2 * name.len() + 96);
        if sse {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\ndata: ");
        }
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\",\"sequence_number\":");
        out.extend_from_slice(num.as_bytes());
        out.extend_from_slice(b",\"response\":");
        out.extend_from_slice(response_json);
        out.extend_from_slice(if sse { b"}\n\n" } else { b"}\n" });
    }

    /// The end of the stream: `data: [DONE]` in the SSE framing, nothing otherwise.
    pub fn end(&mut self, out: &mut BytesMut) {
        if self.framing == Framing::Sse {
            out.extend_from_slice(DONE_FRAME);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn written(framing: Framing, ev: &ResponsesEvent<'_>) -> String {
        let mut w = EventWriter::new(framing);
        w.skip();
        let mut out = BytesMut::new();
        w.event(&mut out, ev);
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// The keys come out sorted, as `json!` wrote them.
    #[test]
    fn events_write_sorted_keys_like_json_macro() {
        let ev = ResponsesEvent::OutputTextDelta {
            item_id: "msg_1",
            output_index: 2,
            delta: "a\"b",
        };
        let want = json!({"type": "response.output_text.delta", "sequence_number": 1,
            "item_id": "msg_1", "output_index": 2, "content_index": 0, "delta": "a\"b",
            "logprobs": []});
        assert_eq!(
            written(Framing::WebSocket, &ev),
            format!("{}\n", serde_json::to_string(&want).unwrap())
        );
        assert_eq!(
            written(Framing::Sse, &ev),
            format!("event: response.output_text.delta\ndata: {want}\n\n")
        );
        assert_eq!(written(Framing::None, &ev), "");
        let item = OutputItem::Reasoning {
            id: "rs_1",
            done: Some(ReasoningDone {
                text: "t",
                encrypted_content: "tok".into(),
                raw: true,
            }),
        };
        let want: Value = json!({"id": "rs_1", "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "t"}], "encrypted_content": "tok",
            "content": [{"type": "reasoning_text", "text": "t"}]});
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
    }

    #[test]
    fn response_events_put_type_first_and_done_is_sse_only() {
        let mut out = BytesMut::new();
        let mut w = EventWriter::new(Framing::WebSocket);
        w.response_event(&mut out, ResponseEventKind::Completed, b"{}");
        w.end(&mut out);
        assert_eq!(
            &out[..],
            b"{\"type\":\"response.completed\",\"sequence_number\":0,\"response\":{}}\n"
        );
        let mut out = BytesMut::new();
        let mut w = EventWriter::new(Framing::Sse);
        w.response_event(&mut out, ResponseEventKind::Failed, b"{}");
        w.end(&mut out);
        assert!(out.ends_with(b"}\n\ndata: [DONE]\n\n"));
    }
}
