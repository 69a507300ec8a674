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
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("rc")?.as_str().map(str::to_owned)
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
    fn ids_are_deterministic_per_seed_and_distinct() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        assert_eq!(a.next("msg"), b.next("msg"));
        assert_ne!(a.next("msg"), a.next("msg"));
        assert_ne!(new_response_id(), new_response_id());
    }
}
