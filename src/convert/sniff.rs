//! Find the top-level `"model"` of a JSON object from a prefix of its bytes, without parsing
//! (or even having) the rest. Codex writes `model` first, so the first body chunk is enough
//! to route by model before the upstream is chosen.

/// The value of the top-level `"model"` string key, if it lies inside `prefix`.
pub fn sniff_model(prefix: &[u8]) -> Option<String> {
    let mut s = Scanner { b: prefix, i: 0 };
    s.ws();
    s.expect(b'{')?;
    loop {
        s.ws();
        match s.peek()? {
            b'}' => return None,
            b',' => {
                s.i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key = s.string()?;
        s.ws();
        s.expect(b':')?;
        s.ws();
        if key == "model" {
            return if s.peek()? == b'"' { s.string() } else { None };
        }
        s.skip_value()?;
    }
}

/// The values of the top-level keys `keys` of the JSON object `body`, as the spans they are
/// in it (`None` for a key that is not there), by a structural scan that decodes nothing.
/// `None` when the scan does not see a whole object (then the caller parses). Meant for a
/// body that has been parsed once already: the spans are then valid JSON (and a key is
/// there once), so the scan stops when every key is found.
pub fn top_level<'a, const N: usize>(
    body: &'a [u8],
    keys: [&str; N],
) -> Option<[Option<&'a [u8]>; N]> {
    let mut found = [None; N];
    let mut s = Scanner { b: body, i: 0 };
    s.ws();
    s.expect(b'{')?;
    loop {
        s.ws();
        match s.peek()? {
            b'}' => return Some(found),
            b',' => {
                s.i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let start = s.i;
        s.skip_string()?;
        let raw_key = body.get(start + 1..s.i - 1)?;
        // A key with an escape is compared decoded.
        let decoded;
        let key = if raw_key.contains(&b'\\') {
            decoded = serde_json::from_slice::<String>(body.get(start..s.i)?).ok()?;
            decoded.as_bytes()
        } else {
            raw_key
        };
        s.ws();
        s.expect(b':')?;
        s.ws();
        let at = s.i;
        s.skip_value()?;
        if let Some(n) = keys.iter().position(|k| k.as_bytes() == key) {
            found[n] = Some(body.get(at..s.i)?);
            // The rest is not scanned once every key is found.
            if found.iter().all(Option::is_some) {
                return Some(found);
            }
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A JSON string at the cursor, decoded (via serde_json for escapes).
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        self.expect(b'"')?;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    let raw = self.b.get(start..self.i)?;
                    return serde_json::from_slice(raw).ok();
                }
                _ => self.i += 1,
            }
        }
    }

    /// Skip any value; `None` when it runs past the prefix.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                // number, true, false, null
                while !matches!(
                    self.peek()?,
                    b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'
                ) {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    fn skip_string(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            let at = memchr::memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
            self.i += at;
            match self.peek()? {
                b'\\' => self.i += 2,
                _ => {
                    self.i += 1;
                    return Some(());
                }
            }
        }
    }
}

/// Does `model` match `pattern` (`*` matches any run of characters, `?` one character)?
pub fn glob_match(pattern: &str, model: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let m: Vec<char> = model.chars().collect();
    let (mut pi, mut mi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while mi < m.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == m[mi]) {
            pi += 1;
            mi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = mi;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            mi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn top_level_spans_are_found_without_parsing() {
        let body = br#"{"model":"m","tools":[{"d":"a \"input\": [1]","x":{"input":2}}],
            "in\u0070ut" : [ {"t":"}"} ] , "n": -1.5e3, "store":true}"#;
        let [input, n, store, none] = top_level(body, ["input", "n", "store", "missing"]).unwrap();
        assert_eq!(input, Some(&br#"[ {"t":"}"} ]"#[..]));
        assert_eq!(n, Some(&b"-1.5e3"[..]));
        assert_eq!(store, Some(&b"true"[..]));
        assert_eq!(none, None);
        // Not a whole object: the caller parses.
        assert!(top_level(br#"{"input": [1, 2"#, ["input"]).is_none());
        assert!(top_level(b"[1]", ["input"]).is_none());
        assert_eq!(top_level(b" {} ", ["input"]), Some([None]));
    }

    #[test]
    fn finds_model_anywhere_at_top_level() {
        assert_eq!(
            sniff_model(br#"{"model":"kimi-k2.6","stream":true"#).as_deref(),
            Some("kimi-k2.6")
        );
        assert_eq!(
            sniff_model(br#" { "stream" : true, "input": [{"model": "inner", "x": "a\"}"}], "n": -1.5e3, "model": "glm-5" }"#).as_deref(),
            Some("glm-5")
        );
        assert_eq!(
            sniff_model(br#"{"model":"a\u00e9b"}"#).as_deref(),
            Some("aéb")
        );
        assert_eq!(
            sniff_model(br#"{"input": "long..."#),
            None,
            "cut before model"
        );
        assert_eq!(sniff_model(br#"{"model": 5}"#), None);
        assert_eq!(sniff_model(b"[1]"), None);
        assert_eq!(sniff_model(b""), None);
        assert_eq!(sniff_model(br#"{"mod"#), None);
    }

    #[test]
    fn never_panics_on_prefixes_of_a_real_body() {
        let body = br#"{"stream": true, "input": [{"type": "message", "content": "\\\"}]"}], "tools": [], "model": "x"}"#;
        for n in 0..=body.len() {
            let got = sniff_model(&body[..n]);
            assert!(got.is_none() || got.as_deref() == Some("x"));
        }
        assert_eq!(sniff_model(body).as_deref(), Some("x"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("kimi-*", "kimi-k2.6"));
        assert!(glob_match("*", ""));
        assert!(glob_match("glm-?", "glm-5"));
        assert!(glob_match("deepseek-*-chat", "deepseek-v3-chat"));
        assert!(!glob_match("kimi-*", "glm-5"));
        assert!(!glob_match("glm-?", "glm-45"));
        assert!(glob_match("exact", "exact"));
    }
}
