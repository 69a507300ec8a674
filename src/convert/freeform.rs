//! Freeform (custom) tool input carried in function arguments: a custom tool goes upstream
//! as a function with one string parameter `input`, so its raw input travels as
//! `{"input": "…"}`. Both directions live here: the arguments for a call sent back in
//! history, the input read from the model's arguments, and the incremental decoder that
//! streams that input while the arguments arrive.

use serde_json::{json, Value};

/// The raw input of a custom tool from the function arguments the model produced:
/// `{"input": "..."}`, or the arguments themselves when they are not that shape.
pub fn custom_input_from_arguments(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => match map.get("input") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => match map.values().find_map(Value::as_str) {
                Some(s) if map.len() == 1 => s.to_owned(),
                _ => arguments.to_owned(),
            },
        },
        Ok(Value::String(s)) => s,
        _ => arguments.to_owned(),
    }
}

/// Function arguments for a custom tool call sent back upstream in history.
pub fn arguments_for_custom_input(input: &str) -> String {
    json!({ "input": input }).to_string()
}

/// Decodes the string value of `{"input": "…` incrementally from a growing arguments text, so
/// a freeform tool's raw input streams as it arrives. Gives up (and leaves the whole input to
/// the final event) when the arguments have another shape.
#[derive(Debug, Default)]
pub(crate) struct InputDecoder {
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
    pub(crate) fn feed(&mut self, args: &str) -> String {
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

    /// The input decoded so far.
    pub(crate) fn decoded(&self) -> &str {
        &self.decoded
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
    fn custom_input_extraction() {
        assert_eq!(
            custom_input_from_arguments(r#"{"input":"*** Begin Patch"}"#),
            "*** Begin Patch"
        );
        assert_eq!(
            custom_input_from_arguments("*** Begin Patch\n"),
            "*** Begin Patch\n"
        );
        assert_eq!(custom_input_from_arguments(r#"{"patch":"p"}"#), "p");
        assert_eq!(
            custom_input_from_arguments(&arguments_for_custom_input("a\"b\n")),
            "a\"b\n"
        );
    }
}
