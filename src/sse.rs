//! Incremental Server-Sent Events decoding and encoding.
//!
//! The decoder is fed arbitrary byte chunks: it keeps partial lines between chunks and only
//! decodes complete lines, so a multi-byte UTF-8 character split across chunks is never
//! broken. `\n`, `\r\n` and `\r` line endings, comment lines and `event:`/`id:` fields work.

use bytes::BytesMut;

/// One decoded SSE event: the joined `data:` lines and the optional `event:` name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a following `\n` belongs to the same line ending.
    after_cr: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    /// Bytes seen in total (for "upstream sent nothing" checks).
    pub bytes_seen: usize,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; complete events are pushed to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) {
        self.bytes_seen += chunk.len();
        if self.after_cr {
            if let Some(b'\n') = chunk.first() {
                chunk = &chunk[1..];
            }
            self.after_cr = false;
        }
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', chunk) {
            let (head, tail) = chunk.split_at(pos);
            let is_cr = tail.first() == Some(&b'\r');
            let mut rest = &tail[1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    _ => {}
                }
            }
            if self.line.is_empty() {
                self.process_line(head, out);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
                self.line = line;
                self.line.clear();
            }
            chunk = rest;
        }
        self.line.extend_from_slice(chunk);
    }

    /// The stream ended: a pending line or event without its blank line is still delivered.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out);
        }
        self.dispatch(out);
    }

    /// Bytes held back waiting for a line end.
    pub fn pending(&self) -> &[u8] {
        &self.line
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return; // comment / keep-alive
        }
        // The SIMD check first: `from_utf8_lossy` walks a valid line char by char.
        let text = match simdutf8::basic::from_utf8(line) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(line),
        };
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {} // id, retry, unknown fields
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.has_data = false;
    }
}

/// Append one event as `event: NAME\ndata: JSON\n\n`. `json` must not contain a newline
/// (serde_json's compact output never does).
pub fn write_event(out: &mut BytesMut, name: &str, json: &str) {
    out.reserve(name.len() + json.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Append one event as `event: NAME\ndata: JSON\n\n`, serialising `payload` (compact, so
/// without newlines) straight into `out`: no intermediate string.
pub fn write_event_json<T: serde::Serialize + ?Sized>(out: &mut BytesMut, name: &str, payload: &T) {
    use bytes::BufMut as _;
    let start = out.len();
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer((&mut *out).writer(), payload).is_err() {
        // Only a failing Serialize impl gets here (writing to memory cannot fail).
        out.truncate(start);
        return;
    }
    out.extend_from_slice(b"\n\n");
}

/// `JSON\n`: one event of the WebSocket framing (a line per text frame).
pub fn write_json_line<T: serde::Serialize + ?Sized>(out: &mut BytesMut, payload: &T) {
    use bytes::BufMut as _;
    let start = out.len();
    if serde_json::to_writer((&mut *out).writer(), payload).is_err() {
        out.truncate(start);
        return;
    }
    out.extend_from_slice(b"\n");
}

pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn decodes_events_split_anywhere() {
        let stream =
            "data: {\"a\":1}\n\nevent: x\ndata: hé€llo\n\n: keep-alive\n\ndata: [DONE]\n\n";
        let whole = decode_all(&[stream.as_bytes()]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[1].event.as_deref(), Some("x"));
        assert_eq!(whole[1].data, "hé€llo");
        let bytes = stream.as_bytes();
        for split in 0..bytes.len() {
            let got = decode_all(&[&bytes[..split], &bytes[split..]]);
            assert_eq!(got, whole, "split at {split}");
        }
        // one byte at a time
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_all(&singles), whole);
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let crlf = decode_all(&[b"data: a\r\n\r\ndata: b\r", b"\n\r\n"]);
        assert_eq!(
            crlf.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let cr = decode_all(&[b"data: a\r\rdata: b\r\r"]);
        assert_eq!(
            cr.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn multiline_data_and_missing_final_blank_line() {
        let got = decode_all(&[b"data: one\ndata: two\n\ndata:three"]);
        assert_eq!(got[0].data, "one\ntwo");
        assert_eq!(got[1].data, "three");
    }

    #[test]
    fn encoder_writes_one_frame() {
        let mut out = BytesMut::new();
        write_event(&mut out, "response.created", "{\"x\":1}");
        assert_eq!(&out[..], b"event: response.created\ndata: {\"x\":1}\n\n");
    }

    #[test]
    fn json_encoder_matches_the_string_encoder() {
        let v = serde_json::json!({"type": "t", "delta": "a\nb \"q\" 思考", "n": 1});
        let mut a = BytesMut::from(&b"prefix"[..]);
        let mut b = a.clone();
        write_event(&mut a, "t", &v.to_string());
        write_event_json(&mut b, "t", &v);
        assert_eq!(a, b);
    }
}
