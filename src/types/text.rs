//! A string of the request that usually goes upstream unchanged: kept as the JSON literal
//! the client wrote, so it is neither unescaped when parsed nor escaped again when the Chat
//! body is written.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A string: the client's JSON literal (borrowed from the body) or decoded text.
///
/// A literal is kept only when serde_json would write its value back as the same bytes: no
/// `\u` and no `\/` escapes (serde_json writes `é` for `\u00e9` and `/` for `\/`; every other
/// escape, `\n` `\"` `\\` ..., and every raw character of a valid literal it writes as it
/// was). So the Chat body is byte for byte what decoding and re-encoding would make.
#[derive(Debug, Clone)]
pub enum Text<'a> {
    /// A JSON string literal, quotes included: the client's, or texts joined as literals.
    Json(Cow<'a, RawValue>),
    /// Decoded text.
    Plain(Cow<'a, str>),
}

impl Default for Text<'_> {
    fn default() -> Self {
        Text::Plain(Cow::Borrowed(""))
    }
}

impl PartialEq for Text<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<'a> From<String> for Text<'a> {
    fn from(s: String) -> Self {
        Text::Plain(Cow::Owned(s))
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text::Plain(Cow::Borrowed(s))
    }
}

impl<'a> From<Cow<'a, str>> for Text<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Text::Plain(s)
    }
}

impl<'a> Text<'a> {
    /// A JSON string literal (`None` for any other JSON value). One that serde_json would
    /// write differently is decoded.
    pub fn from_json(raw: &'a RawValue) -> Option<Self> {
        let lit = raw.get();
        if !lit.starts_with('"') {
            return None;
        }
        if rewritten_by_serde(lit.as_bytes()) {
            return serde_json::from_str::<String>(lit).ok().map(Text::from);
        }
        Some(Text::Json(Cow::Borrowed(raw)))
    }

    /// The text, decoded (borrowed when the literal has no escapes).
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Text::Plain(s) => Cow::Borrowed(s),
            Text::Json(raw) => decode(raw.get()),
        }
    }

    /// The text, decoded and owned.
    pub fn into_string(self) -> String {
        match self {
            Text::Plain(s) => s.into_owned(),
            Text::Json(raw) => decode(raw.get()).into_owned(),
        }
    }

    /// Bytes of the text as written (a literal's, escapes and quotes included).
    pub fn source_len(&self) -> usize {
        match self {
            Text::Plain(s) => s.len(),
            Text::Json(raw) => raw.get().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Text::Plain(s) => s.is_empty(),
            Text::Json(raw) => raw.get().len() <= 2,
        }
    }

    /// Empty or only whitespace (read from the literal's start, without decoding it).
    pub fn is_blank(&self) -> bool {
        match self {
            Text::Plain(s) => s.trim().is_empty(),
            Text::Json(raw) => {
                let inner = inner(raw.get());
                if inner.contains('\\') {
                    return decode(raw.get()).trim().is_empty();
                }
                inner.trim().is_empty()
            }
        }
    }

    /// The same text, owning its bytes.
    pub fn into_owned(self) -> Text<'static> {
        match self {
            Text::Plain(s) => Text::Plain(Cow::Owned(s.into_owned())),
            Text::Json(raw) => Text::Json(Cow::Owned(raw.into_owned())),
        }
    }
}

impl Text<'static> {
    /// The texts joined by `sep`, as one literal made of theirs (a literal's bytes are copied,
    /// not decoded): the bytes serde_json writes for the joined decoded texts.
    pub fn join<'t>(texts: impl IntoIterator<Item = &'t Text<'t>>, sep: &str) -> Text<'static> {
        let texts: Vec<&Text<'_>> = texts.into_iter().collect();
        let sep_lit = escaped(sep);
        let len: usize = texts.iter().map(|t| t.source_len() + sep_lit.len()).sum();
        let mut out = String::with_capacity(len + 2);
        out.push('"');
        for (i, t) in texts.iter().enumerate() {
            if i > 0 {
                out.push_str(&sep_lit);
            }
            match t {
                Text::Json(raw) => out.push_str(inner(raw.get())),
                Text::Plain(s) => out.push_str(&escaped(s)),
            }
        }
        out.push('"');
        match RawValue::from_string(out) {
            Ok(raw) => Text::Json(Cow::Owned(raw)),
            // Not reached: every piece is a valid literal's inside.
            Err(_) => {
                let decoded: Vec<Cow<'_, str>> = texts.iter().map(|t| t.as_str()).collect();
                Text::from(decoded.join(sep))
            }
        }
    }
}

/// Between the quotes of a literal.
fn inner(lit: &str) -> &str {
    lit.get(1..lit.len().saturating_sub(1)).unwrap_or("")
}

fn decode(lit: &str) -> Cow<'_, str> {
    let s = inner(lit);
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    // A literal that serde_json accepted once decodes; an empty string otherwise.
    Cow::Owned(serde_json::from_str::<String>(lit).unwrap_or_default())
}

/// `s` as serde_json escapes it, without the quotes.
fn escaped(s: &str) -> String {
    let lit = serde_json::to_string(s).unwrap_or_default();
    inner(&lit).to_owned()
}

/// The literal has a `\u` or `\/` escape (serde_json writes those characters differently).
fn rewritten_by_serde(lit: &[u8]) -> bool {
    let mut rest = lit;
    while let Some(i) = memchr::memchr(b'\\', rest) {
        match rest.get(i + 1) {
            Some(b'u' | b'/') => return true,
            Some(_) => rest = &rest[i + 2..],
            None => return false,
        }
    }
    false
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Json(raw) => raw.serialize(s),
            Text::Plain(t) => s.serialize_str(t),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        Text::from_json(raw).ok_or_else(|| D::Error::custom("expected a string"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(lit: &str) -> Text<'_> {
        serde_json::from_str(lit).unwrap()
    }

    /// What the Chat body gets for a literal, against what decoding and re-encoding makes.
    #[test]
    fn written_as_serde_would_write_the_decoded_text() {
        for lit in [
            r#""plain""#,
            r#""""#,
            r#""line\nnext\ttab \"q\" back\\slash \b\f\r""#,
            r#""caf\u00e9 \u2028 \ud83d\ude00""#,
            r#""a\/b""#,
            r#""\\u0041 is not an escape""#,
            "\"raw ünïcödé and \u{7f}\"",
            r#""ends with escaped backslash\\""#,
        ] {
            let t = parse(lit);
            let decoded: String = serde_json::from_str(lit).unwrap();
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                serde_json::to_string(&decoded).unwrap(),
                "{lit}"
            );
            assert_eq!(t.as_str(), decoded, "{lit}");
            assert_eq!(t.clone().into_string(), decoded);
            assert_eq!(t.is_empty(), decoded.is_empty());
            assert_eq!(t.is_blank(), decoded.trim().is_empty());
        }
    }

    #[test]
    fn kept_raw_only_when_serde_writes_it_back_unchanged() {
        assert!(matches!(parse(r#""a\nb""#), Text::Json(_)));
        assert!(matches!(parse(r#""\\u0041""#), Text::Json(_)));
        assert!(matches!(parse(r#""\u0041""#), Text::Plain(_)));
        assert!(matches!(parse(r#""a\/b""#), Text::Plain(_)));
    }

    #[test]
    fn joined_as_serde_would_write_the_joined_text() {
        let owned = parse(r#""caf\u00e9""#);
        let texts = [
            parse(r#""a\nb \"q\"""#),
            Text::from("plain \"x\"\n"),
            owned,
            Text::default(),
        ];
        let joined = Text::join(texts.iter(), "\n\n");
        assert!(matches!(joined, Text::Json(_)));
        let decoded: Vec<String> = texts.iter().map(|t| t.as_str().into_owned()).collect();
        let expected = decoded.join("\n\n");
        assert_eq!(joined.as_str(), expected);
        assert_eq!(
            serde_json::to_string(&joined).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        assert_eq!(joined.clone().into_owned(), joined);
    }

    #[test]
    fn blank_reads_escaped_whitespace() {
        assert!(parse(r#"" \n\t\r ""#).is_blank());
        assert!(!parse(r#"" \n{}""#).is_blank());
        assert!(!parse(r#""\"""#).is_blank());
    }

    #[test]
    fn only_strings() {
        assert!(serde_json::from_str::<Text<'_>>("5").is_err());
        assert!(serde_json::from_str::<Text<'_>>("null").is_err());
        assert!(serde_json::from_str::<Text<'_>>(r#"{"a":"b"}"#).is_err());
    }
}
