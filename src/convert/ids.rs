//! Ids for responses and items, and the opaque reasoning token.

use base64::Engine as _;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A random 64-bit value (SipHash keyed by the process's random state, over a counter and
/// the clock): unique enough for ids, no extra crate.
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    h.write_u64(nanos);
    h.finish()
}

pub fn new_response_id() -> String {
    format!("resp_{:016x}{:016x}", random_u64(), random_u64())
}

/// Deterministic item ids from a seed: `msg_…`, `rs_…`, `fc_…`, `ctc_…`, `call_…`.
#[derive(Debug, Clone)]
pub struct IdGen {
    seed: u64,
    n: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        IdGen { seed, n: 0 }
    }

    pub fn next(&mut self, prefix: &str) -> String {
        self.n += 1;
        // splitmix64 of seed + n
        let mut z = self
            .seed
            .wrapping_add(self.n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        format!("{prefix}_{z:016x}")
    }
}

const TOKEN_PREFIX: &str = "ccp1.";

/// Wrap the provider's raw reasoning into the opaque, versioned `encrypted_content` token.
pub fn encode_reasoning_token(reasoning: &str) -> String {
    let payload = serde_json::json!({ "rc": reasoning }).to_string();
    let mut out = String::with_capacity(TOKEN_PREFIX.len() + payload.len() * 4 / 3 + 4);
    out.push_str(TOKEN_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut out);
    out
}

/// The reasoning inside a token of ours; `None` for anything else (e.g. OpenAI's own).
pub fn decode_reasoning_token(token: &str) -> Option<String> {
    let b64 = token.strip_prefix(TOKEN_PREFIX)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64.as_bytes())
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Payload {
        rc: String,
    }
    serde_json::from_slice::<Payload>(&bytes).ok().map(|p| p.rc)
}

/// The compaction token: `ccpc1.` + base64url of `{"s": summary, "h": FNV-1a(summary)}`.
/// Stateless like the reasoning token: any instance, after any restart, can expand it.
const COMPACTION_PREFIX: &str = "ccpc";
const COMPACTION_VERSION: &str = "1";

/// Why a compaction item's `encrypted_content` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompactionTokenError {
    /// Not one of this proxy's tokens (e.g. OpenAI's own, or another proxy's).
    Foreign,
    /// One of ours, of a version this build does not read.
    UnknownVersion(String),
    /// One of ours, but altered or cut.
    Damaged,
}

impl std::fmt::Display for CompactionTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompactionTokenError::Foreign => f.write_str(
                "its encrypted_content was not produced by this proxy's remote compaction",
            ),
            CompactionTokenError::UnknownVersion(v) => write!(
                f,
                "its encrypted_content is a compaction token of version {v}, which this proxy does not read (it reads version {COMPACTION_VERSION})"
            ),
            CompactionTokenError::Damaged => {
                f.write_str("its encrypted_content is damaged (altered or cut)")
            }
        }
    }
}

/// Wrap a conversation summary into a compaction item's opaque `encrypted_content`.
pub fn encode_compaction_token(summary: &str) -> String {
    let h = format!("{:016x}", super::tools::fnv1a(summary.as_bytes()));
    let payload = serde_json::json!({ "s": summary, "h": h }).to_string();
    let mut out = format!("{COMPACTION_PREFIX}{COMPACTION_VERSION}.");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut out);
    out
}

/// The summary inside a compaction token of ours.
pub fn decode_compaction_token(token: &str) -> Result<String, CompactionTokenError> {
    let rest = token
        .strip_prefix(COMPACTION_PREFIX)
        .ok_or(CompactionTokenError::Foreign)?;
    let (version, b64) = rest.split_once('.').ok_or(CompactionTokenError::Foreign)?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CompactionTokenError::Foreign);
    }
    if version != COMPACTION_VERSION {
        return Err(CompactionTokenError::UnknownVersion(
            version.chars().take(8).collect(),
        ));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64.as_bytes())
        .map_err(|_| CompactionTokenError::Damaged)?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| CompactionTokenError::Damaged)?;
    let summary = v
        .get("s")
        .and_then(serde_json::Value::as_str)
        .ok_or(CompactionTokenError::Damaged)?;
    let h = v.get("h").and_then(serde_json::Value::as_str);
    if h != Some(format!("{:016x}", super::tools::fnv1a(summary.as_bytes())).as_str()) {
        return Err(CompactionTokenError::Damaged);
    }
    Ok(summary.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_round_trip_and_foreign_tokens() {
        let t = encode_reasoning_token("think \"hard\" 思考");
        assert!(t.starts_with("ccp1."));
        assert_eq!(decode_reasoning_token(&t).unwrap(), "think \"hard\" 思考");
        assert_eq!(decode_reasoning_token("gAAAAABopenai"), None);
        assert_eq!(decode_reasoning_token("ccp1.!!!"), None);
    }

    #[test]
    fn compaction_token_round_trip_and_rejections() {
        let t = encode_compaction_token("We fixed the bug in \"main.rs\"; 次は tests.");
        assert!(t.starts_with("ccpc1."));
        assert_eq!(
            decode_compaction_token(&t).unwrap(),
            "We fixed the bug in \"main.rs\"; 次は tests."
        );
        assert_eq!(
            decode_compaction_token("gAAAAABopenai-encrypted"),
            Err(CompactionTokenError::Foreign)
        );
        assert_eq!(
            decode_compaction_token("ccpc2.eyJzIjoiIn0"),
            Err(CompactionTokenError::UnknownVersion("2".into()))
        );
        // Cut, altered payload, altered summary with the old checksum.
        assert_eq!(
            decode_compaction_token(&t[..t.len() - 3]),
            Err(CompactionTokenError::Damaged)
        );
        assert_eq!(
            decode_compaction_token("ccpc1.!!!"),
            Err(CompactionTokenError::Damaged)
        );
        let payload = serde_json::json!({"s": "something else", "h": "0000000000000000"});
        let forged = format!(
            "ccpc1.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        assert_eq!(
            decode_compaction_token(&forged),
            Err(CompactionTokenError::Damaged)
        );
        // Never a panic on arbitrary text.
        for s in [
            "",
            "ccpc",
            "ccpc.",
            "ccpc1",
            "ccpc1.",
            "ccpcx.abc",
            "ccpc١.x",
        ] {
            assert!(decode_compaction_token(s).is_err(), "{s}");
        }
    }

    #[test]
    fn ids_are_deterministic_per_seed_and_distinct() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        assert_eq!(a.next("msg"), b.next("msg"));
        assert_ne!(a.next("msg"), a.next("msg"));
        assert_ne!(new_response_id(), new_response_id());
    }
}
