//! The reply: what happens to the provider's answer, whichever transport carries it.
//!
//! `ReplyMode::on_head` picks the mode from the upstream status and content type,
//! `push` converts body bytes as they arrive, `fail` finishes a reply the client already has
//! the start of. The HTTP hooks (`response_filter`, `response_body_filter`, `fail_to_proxy`)
//! and the WebSocket session both drive it; nothing here knows which one does.

use bytes::{Bytes, BytesMut};

use crate::convert::error::{client_status, map_http_error, ClientError};
use crate::convert::streaming::convert_completion_json;
use crate::convert::streaming::{Framing, StreamConverter};
use crate::convert::ResponseContext;
use crate::providers::Profile;
use crate::types::chat::{ChatCompletion, ChatUsage};

/// What the reply does with the upstream's bytes.
pub enum ReplyMode {
    /// Upstream SSE → Responses events, written as they come.
    Stream(Box<StreamConverter>),
    /// Upstream SSE → Response object (the client asked for JSON, the provider streamed):
    /// the stream is converted and only the final object is kept.
    JsonFromStream(Box<StreamConverter>),
    /// Upstream JSON → Responses events (the client streams, the provider answered whole).
    StreamFromJson(Box<StreamConverter>, BytesMut),
    /// Upstream JSON → Response object (the context is taken when the body is complete).
    Json {
        buf: BytesMut,
        ctx: Option<Box<ResponseContext>>,
        usage: Option<ChatUsage>,
    },
    /// Upstream error body → the client's error.
    Error {
        buf: BytesMut,
        /// The backend's provider: whose error codes count.
        profile: Profile,
        upstream_status: u16,
        retry_after: Option<String>,
        client_status: u16,
    },
}

/// The head of the upstream's response, as the reply needs it.
pub struct UpstreamHead<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub retry_after: Option<String>,
}

/// What one `push` produced.
#[derive(Default)]
pub struct Pushed {
    /// Bytes for the client (events, a final object or an error body).
    pub out: Option<Bytes>,
    /// The upstream error, mapped (an `Error` reply, at its end).
    pub error: Option<ClientError>,
    /// `error.code` of a failed final Response (JSON replies).
    pub failed_code: Option<String>,
}

impl ReplyMode {
    /// Pick the mode. `framing`: how events are written when the client streams (SSE over
    /// HTTP, lines for WebSocket frames). The client's status is then [`Self::client_status`].
    pub fn on_head(rctx: ResponseContext, head: &UpstreamHead<'_>, framing: Framing) -> Self {
        let status = head.status;
        if !(200..300).contains(&status) {
            return ReplyMode::Error {
                buf: BytesMut::new(),
                profile: rctx.quirks.profile,
                upstream_status: status,
                retry_after: head.retry_after.clone(),
                client_status: client_status(status),
            };
        }
        let stream = rctx.stream;
        if head.content_type.contains("event-stream") {
            if stream {
                let mut conv = StreamConverter::new(rctx, framing);
                conv.start();
                ReplyMode::Stream(Box::new(conv))
            } else {
                ReplyMode::JsonFromStream(Box::new(StreamConverter::new(rctx, Framing::None)))
            }
        } else if stream {
            ReplyMode::StreamFromJson(
                Box::new(StreamConverter::new(rctx, framing)),
                BytesMut::new(),
            )
        } else {
            ReplyMode::Json {
                buf: BytesMut::new(),
                ctx: Some(Box::new(rctx)),
                usage: None,
            }
        }
    }

    /// The status the client gets.
    pub fn client_status(&self) -> u16 {
        match self {
            ReplyMode::Error { client_status, .. } => *client_status,
            _ => 200,
        }
    }

    /// Does the client get a stream of events (else one JSON body)?
    pub fn is_event_stream(&self) -> bool {
        matches!(self, ReplyMode::Stream(_) | ReplyMode::StreamFromJson(..))
    }

    /// Feed upstream body bytes (`None` with `end` for an end without bytes).
    /// `backend`: its name for messages; `api_key`: scrubbed from provider messages.
    pub fn push(
        &mut self,
        input: Option<&[u8]>,
        end: bool,
        backend: &str,
        api_key: &str,
    ) -> Pushed {
        let mut p = Pushed::default();
        match self {
            ReplyMode::Stream(conv) => {
                if let Some(b) = input {
                    conv.push_bytes(b);
                }
                if end {
                    conv.finish();
                }
                p.out = Some(conv.take_output());
            }
            ReplyMode::JsonFromStream(conv) => {
                if let Some(b) = input {
                    conv.push_bytes(b);
                }
                if end {
                    conv.finish();
                    p.out = conv.take_final_json().map(Bytes::from);
                    p.failed_code = conv.failure_code().map(str::to_owned);
                }
            }
            ReplyMode::StreamFromJson(conv, buf) => {
                if let Some(b) = input {
                    buf.extend_from_slice(b);
                }
                if end {
                    match serde_json::from_slice::<ChatCompletion>(buf) {
                        Ok(c) => conv.push_completion(&c),
                        Err(e) => conv.fail(
                            "server_error",
                            &format!("The {backend} backend sent an unreadable reply ({e})."),
                        ),
                    }
                    conv.finish_without_events();
                    p.out = Some(conv.take_output());
                }
            }
            ReplyMode::Json { buf, ctx, usage } => {
                if let Some(b) = input {
                    buf.extend_from_slice(b);
                }
                // (`end` first: the context is taken only when the body is complete.)
                if let Some(rctx) = ctx.take_if(|_| end) {
                    let rctx = *rctx;
                    match serde_json::from_slice::<ChatCompletion>(buf) {
                        Ok(c) => {
                            let (json, code) = convert_completion_json(rctx, &c);
                            p.out = Some(Bytes::from(json));
                            p.failed_code = code;
                            *usage = c.usage().cloned();
                        }
                        Err(e) => {
                            // The 200 already went out: report a failed Response object.
                            let mut conv = StreamConverter::new(rctx, Framing::None);
                            conv.fail(
                                "server_error",
                                &format!("The {backend} backend sent an unreadable reply ({e})."),
                            );
                            p.out = conv.take_final_json().map(Bytes::from);
                            p.failed_code = conv.failure_code().map(str::to_owned);
                        }
                    }
                }
            }
            ReplyMode::Error {
                buf,
                profile,
                upstream_status,
                retry_after,
                client_status,
            } => {
                if let Some(b) = input {
                    buf.extend_from_slice(b);
                }
                if end {
                    let mut err = map_http_error(
                        *profile,
                        *upstream_status,
                        buf,
                        backend,
                        retry_after.as_deref(),
                    );
                    err.status = *client_status;
                    err.scrub_key(api_key);
                    tracing::warn!(backend = %backend, upstream_status = *upstream_status, code = err.code.as_deref().unwrap_or("-"), "upstream error: {}", err.message);
                    p.out = Some(Bytes::from(err.body_bytes()));
                    p.error = Some(err);
                }
            }
        }
        p
    }

    /// The upstream failed after the client got the head: the bytes that finish the reply
    /// (the terminal event of a stream, a failed Response object, an error body).
    pub fn fail(&mut self, code: &str, message: &str, backend: &str) -> Option<Bytes> {
        match self {
            ReplyMode::Stream(conv) | ReplyMode::StreamFromJson(conv, _) => {
                conv.fail(code, message);
                Some(conv.take_output())
            }
            ReplyMode::JsonFromStream(conv) => {
                conv.fail(code, message);
                conv.take_final_json().map(Bytes::from)
            }
            ReplyMode::Json { ctx, .. } => ctx.take().and_then(|r| {
                let mut conv = StreamConverter::new(*r, Framing::None);
                conv.fail(code, message);
                conv.take_final_json().map(Bytes::from)
            }),
            ReplyMode::Error {
                profile,
                upstream_status,
                retry_after,
                ..
            } => {
                let mut err = map_http_error(
                    *profile,
                    *upstream_status,
                    b"",
                    backend,
                    retry_after.as_deref(),
                );
                err.message = format!("{} ({message})", err.message);
                Some(Bytes::from(err.body_bytes()))
            }
        }
    }

    /// The converter of an event reply (for the final object, usage and state).
    pub fn converter(&self) -> Option<&StreamConverter> {
        match self {
            ReplyMode::Stream(conv)
            | ReplyMode::JsonFromStream(conv)
            | ReplyMode::StreamFromJson(conv, _) => Some(conv),
            _ => None,
        }
    }

    /// The provider answered the proxy's answer to its search call: its reply continues
    /// the same response.
    pub fn resume(&mut self) {
        if let ReplyMode::StreamFromJson(_, buf) = self {
            buf.clear();
        }
        if let Some(conv) = self.converter_mut() {
            conv.resume();
        }
    }

    pub fn converter_mut(&mut self) -> Option<&mut StreamConverter> {
        match self {
            ReplyMode::Stream(conv)
            | ReplyMode::JsonFromStream(conv)
            | ReplyMode::StreamFromJson(conv, _) => Some(conv),
            _ => None,
        }
    }

    /// Has an output item started (for the time to first token)? `end`: the body is
    /// complete (a JSON reply has its content then).
    pub fn has_content(&self, end: bool) -> bool {
        match self {
            ReplyMode::Stream(conv)
            | ReplyMode::JsonFromStream(conv)
            | ReplyMode::StreamFromJson(conv, _) => conv.has_content(),
            ReplyMode::Json { .. } => end,
            ReplyMode::Error { .. } => false,
        }
    }

    /// The final Response object of a complete reply, for the store: the converter's, or
    /// the object a JSON reply just produced (`out`, the last push's bytes).
    pub fn final_json<'a>(&'a self, out: Option<&'a [u8]>) -> Option<&'a [u8]> {
        match self {
            ReplyMode::Stream(conv)
            | ReplyMode::JsonFromStream(conv)
            | ReplyMode::StreamFromJson(conv, _) => conv.final_json(),
            ReplyMode::Json { .. } => out,
            ReplyMode::Error { .. } => None,
        }
    }

    /// The content headers of the client's reply (besides the status and the length).
    pub fn content_headers(&self) -> &'static [(&'static str, &'static str)] {
        if self.is_event_stream() {
            &[
                ("content-type", "text/event-stream; charset=utf-8"),
                ("cache-control", "no-cache"),
                ("x-accel-buffering", "no"),
            ]
        } else {
            &[("content-type", "application/json")]
        }
    }

    /// The usage the provider reported.
    pub fn usage(&self) -> Option<&ChatUsage> {
        match self {
            ReplyMode::Stream(conv)
            | ReplyMode::JsonFromStream(conv)
            | ReplyMode::StreamFromJson(conv, _) => conv.usage(),
            ReplyMode::Json { usage, .. } => usage.as_ref(),
            ReplyMode::Error { .. } => None,
        }
    }
}

/// The provider's response headers the client gets; every other one is dropped (only
/// the proxy's own content headers describe the converted reply).
pub fn passes_provider_header(name: &str) -> bool {
    matches!(name, "retry-after" | "x-request-id" | "date")
}

/// (input, output, cached, reasoning) tokens of a usage report.
pub fn usage_tokens(usage: Option<&ChatUsage>) -> (u64, u64, u64, u64) {
    match usage {
        Some(u) => (
            u.prompt_tokens,
            u.completion_tokens,
            u.cached(),
            u.reasoning(),
        ),
        None => (0, 0, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn head(status: u16, ct: &str) -> UpstreamHead<'_> {
        UpstreamHead {
            status,
            content_type: ct,
            retry_after: None,
        }
    }

    const SSE: &[u8] = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

    #[test]
    fn the_final_object_and_the_headers_follow_the_mode() {
        let mut sse = ReplyMode::on_head(
            ResponseContext::for_tests("m", true),
            &head(200, "text/event-stream"),
            Framing::Sse,
        );
        assert_eq!(
            sse.content_headers()[0].1,
            "text/event-stream; charset=utf-8"
        );
        assert!(sse.final_json(None).is_none(), "no object before the end");
        sse.push(Some(SSE), true, "b", "");
        let done: serde_json::Value =
            serde_json::from_slice(sse.final_json(None).unwrap()).unwrap();
        assert_eq!(done["status"], "completed");

        let json = ReplyMode::on_head(
            ResponseContext::for_tests("m", false),
            &head(200, "application/json"),
            Framing::Sse,
        );
        assert_eq!(
            json.content_headers(),
            &[("content-type", "application/json")]
        );
        assert_eq!(json.final_json(Some(b"{}")), Some(&b"{}"[..]));
        let err = ReplyMode::on_head(
            ResponseContext::for_tests("m", false),
            &head(500, "application/json"),
            Framing::Sse,
        );
        assert_eq!(
            err.final_json(Some(b"{}")),
            None,
            "an error is never stored"
        );
        assert!(passes_provider_header("retry-after"));
        assert!(!passes_provider_header("set-cookie") && !passes_provider_header("content-length"));
    }

    #[test]
    fn stream_reply_in_sse_and_websocket_framing() {
        let mut sse = ReplyMode::on_head(
            ResponseContext::for_tests("m", true),
            &head(200, "text/event-stream"),
            Framing::Sse,
        );
        assert!(sse.is_event_stream());
        assert_eq!(sse.client_status(), 200);
        let out = sse.push(Some(SSE), true, "b", "");
        let text = String::from_utf8(out.out.unwrap().to_vec()).unwrap();
        assert!(text.contains("event: response.completed"));
        assert!(text.ends_with("data: [DONE]\n\n"));

        let mut ws = ReplyMode::on_head(
            ResponseContext::for_tests("m", true),
            &head(200, "text/event-stream"),
            Framing::WebSocket,
        );
        let out = ws.push(Some(SSE), true, "b", "");
        let text = String::from_utf8(out.out.unwrap().to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(!text.contains("[DONE]") && !text.contains("event: "));
        for l in &lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["type"].as_str().unwrap().starts_with("response."));
        }
        let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
        assert_eq!(last["type"], "response.completed");
        assert!(ws.usage().is_none());
    }

    #[test]
    fn json_reply_keeps_usage_and_error_reply_scrubs_the_key() {
        let mut j = ReplyMode::on_head(
            ResponseContext::for_tests("m", false),
            &head(200, "application/json"),
            Framing::Sse,
        );
        assert!(!j.is_event_stream());
        let body = br#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        assert!(j.push(Some(&body[..10]), false, "b", "").out.is_none());
        let p = j.push(Some(&body[10..]), true, "b", "");
        let v: serde_json::Value = serde_json::from_slice(&p.out.unwrap()).unwrap();
        assert_eq!(v["status"], "completed");
        assert_eq!(usage_tokens(j.usage()), (3, 1, 0, 0));

        let mut e = ReplyMode::on_head(
            ResponseContext::for_tests("m", true),
            &head(401, "application/json"),
            Framing::Sse,
        );
        assert_eq!(e.client_status(), 401);
        let p = e.push(
            Some(br#"{"error":{"message":"bad key sk-secret-123"}}"#),
            true,
            "b",
            "sk-secret-123",
        );
        let err = p.error.unwrap();
        assert_eq!(err.status, 401);
        assert!(!err.message.contains("sk-secret-123"));
    }

    #[test]
    fn fail_finishes_a_stream_with_one_terminal_event() {
        let mut sse = ReplyMode::on_head(
            ResponseContext::for_tests("m", true),
            &head(200, "text/event-stream"),
            Framing::WebSocket,
        );
        sse.push(Some(&SSE[..40]), false, "b", "");
        let out = sse.fail("server_error", "cut", "b").unwrap();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(text.matches("response.failed").count(), 1);
        assert!(sse.converter().unwrap().is_done());
    }
}
