//! `<think>` tags, for providers that carry reasoning inside the message text: the
//! response side splits `<think>…</think>` out of streamed content, the request side writes
//! the reasoning back the same way.

/// Splits `<think>…</think>` out of streamed content, with tags split across chunks.
#[derive(Debug, Default)]
pub(crate) struct ThinkSplitter {
    in_think: bool,
    pending: String,
    /// Strip whitespace right after `</think>`.
    after_close: bool,
}

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

impl ThinkSplitter {
    /// Returns (is_reasoning, text) pieces ready to emit.
    pub(crate) fn push(&mut self, s: &str) -> Vec<(bool, String)> {
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

    pub(crate) fn flush(&mut self) -> Vec<(bool, String)> {
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

/// An assistant message's text with its reasoning in front, in `<think>` tags as the
/// provider writes them: reasoning read back from `<think>\n…\n</think>` keeps its
/// newlines, so only missing ones are added.
pub fn write(reasoning: &str, text: &str) -> String {
    let open = if reasoning.starts_with('\n') {
        ""
    } else {
        "\n"
    };
    let close = if reasoning.ends_with('\n') { "" } else { "\n" };
    format!("{OPEN}{open}{reasoning}{close}{CLOSE}\n\n{text}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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

    /// What the request side writes, the response side reads back, and writes again the
    /// same.
    #[test]
    fn written_tags_read_back() {
        for (reasoning, text) in [("plan it", "answer"), ("\nplan\n", "a\nb"), ("p", "")] {
            let wrote = write(reasoning, text);
            let mut t = ThinkSplitter::default();
            let mut got = t.push(&wrote);
            got.extend(t.flush());
            let read: String = got
                .iter()
                .filter(|(r, _)| *r)
                .map(|(_, s)| s.as_str())
                .collect();
            let rest: String = got
                .iter()
                .filter(|(r, _)| !*r)
                .map(|(_, s)| s.as_str())
                .collect();
            assert_eq!(rest, text);
            assert_eq!(write(&read, &rest), wrote);
        }
    }
}
