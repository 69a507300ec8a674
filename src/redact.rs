//! Secret redaction for logs and for provider messages passed on to clients. Pure.

/// A body for `log_body`: secrets (API keys, bearer tokens) replaced.
pub fn redact_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    redact(&text)
}

/// Replace things that look like secrets: `sk-…` keys, `Bearer …` tokens, and the values of
/// JSON keys named like `api_key`, `authorization`, `token`, `secret`, `password`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let lower_starts = |p: &str| {
            rest.len() >= p.len() && rest.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
        };
        let prev_is_word = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !prev_is_word && (rest.starts_with("sk-") || lower_starts("bearer ")) {
            let skip = if rest.starts_with("sk-") { 3 } else { 7 };
            let tail = &rest[skip..];
            let len = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .unwrap_or(tail.len());
            if len >= 8 {
                out.push_str(&rest[..skip]);
                out.push_str("[REDACTED]");
                i += skip + len;
                continue;
            }
        }
        if let Some(len) = secret_key_value_len(rest) {
            out.push_str(&rest[..len.0]);
            out.push_str("\"[REDACTED]\"");
            i += len.0 + len.1;
            continue;
        }
        let ch_len = rest.chars().next().map(char::len_utf8).unwrap_or(1);
        out.push_str(&rest[..ch_len]);
        i += ch_len;
    }
    out
}

/// At `"api_key": "value"`: (bytes up to the value, length of the quoted value).
fn secret_key_value_len(s: &str) -> Option<(usize, usize)> {
    let rest = s.strip_prefix('"')?;
    let end = rest.find('"')?;
    let key = rest[..end].to_ascii_lowercase();
    let secret = [
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "token",
        "secret",
        "password",
        "access_token",
    ]
    .iter()
    .any(|k| key == *k || key.ends_with(&format!("_{k}")));
    if !secret {
        return None;
    }
    let after = &rest[end + 1..];
    let ws = after.len() - after.trim_start().len();
    let after = after.trim_start().strip_prefix(':')?;
    let ws2 = after.len() - after.trim_start().len();
    let val = after.trim_start();
    let vrest = val.strip_prefix('"')?;
    let mut j = 0;
    let vb = vrest.as_bytes();
    while j < vb.len() {
        match vb[j] {
            b'\\' => j += 2,
            b'"' => break,
            _ => j += 1,
        }
    }
    let prefix = 1 + end + 1 + ws + 1 + ws2;
    Some((prefix, (j + 2).min(val.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_keys_and_tokens() {
        let s =
            r#"{"api_key": "abc\"def", "x": "Bearer sk-1234567890abcdef", "other": "sk-short"}"#;
        let r = redact(s);
        assert!(!r.contains("abc"), "{r}");
        assert!(!r.contains("1234567890abcdef"), "{r}");
        assert!(r.contains("\"x\""));
        assert!(r.contains("sk-short"), "short strings are not keys: {r}");
        assert_eq!(redact("héllo wörld"), "héllo wörld");
    }
}
