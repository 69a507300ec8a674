//! Echoed request fields shared between requests.
//!
//! Every Response object repeats the request's `instructions` and `tools` (tens of KB), and
//! Codex sends the same ones on every turn of every session of a given version and set-up.
//! An open stream keeps its rendered echo until its last event, so each of thousands of
//! open streams would hold its own identical copy; here they share one.

use std::sync::{Arc, Mutex, Weak};

/// Below this size a copy costs less than looking one up.
const MIN_LEN: usize = 1024;
/// Distinct echoes remembered at once (Codex versions × set-ups in use).
const MAX_ENTRIES: usize = 64;

#[derive(Default)]
pub struct Interner {
    entries: Mutex<Vec<Weak<str>>>,
    /// The tools converted once per distinct `tools` JSON and profile.
    pub tools: crate::convert::tools::ToolsCache,
}

impl Interner {
    /// The shared copy of `s` when one is alive, else `s` (remembered for the next caller).
    pub fn intern(&self, s: Arc<str>) -> Arc<str> {
        if s.len() < MIN_LEN {
            return s;
        }
        let mut entries = match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Forget echoes no open request holds any more (this also frees their memory).
        entries.retain(|w| w.strong_count() > 0);
        for w in entries.iter() {
            if let Some(shared) = w.upgrade() {
                if *shared == *s {
                    return shared;
                }
            }
        }
        if entries.len() < MAX_ENTRIES {
            entries.push(Arc::downgrade(&s));
        }
        s
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn equal_echoes_share_one_allocation_while_alive() {
        let i = Interner::default();
        let big = "x".repeat(4096);
        let a = i.intern(Arc::from(big.as_str()));
        let b = i.intern(Arc::from(big.as_str()));
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second request gets the first one's copy"
        );
        let other = i.intern(Arc::from("y".repeat(4096).as_str()));
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(i.len(), 2);
        // Small ones are not looked up.
        let s1 = i.intern(Arc::from("small"));
        let s2 = i.intern(Arc::from("small"));
        assert!(!Arc::ptr_eq(&s1, &s2));
        // Once no request holds it, it is forgotten.
        drop((a, b, other));
        let c = i.intern(Arc::from(big.as_str()));
        assert_eq!(i.len(), 1);
        assert_eq!(&*c, big.as_str());
    }

    #[test]
    fn never_more_than_the_cap() {
        let i = Interner::default();
        let kept: Vec<Arc<str>> = (0..MAX_ENTRIES + 10)
            .map(|n| i.intern(Arc::from(format!("{n:05}{}", "z".repeat(2000)).as_str())))
            .collect();
        assert_eq!(i.len(), MAX_ENTRIES);
        assert_eq!(kept.len(), MAX_ENTRIES + 10);
    }
}
