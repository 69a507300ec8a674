//! The dialect guard: what a client sent that the proxy does not convert (an item, content
//! part or tool type, a top-level member) is counted in `/metrics` as
//! `ccp_unconverted_total{kind, type}` and logged once per type per process at warn, with
//! the backend. Clients change their wire surface every few weeks; this is where the next
//! change shows first.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use crate::convert::{Unconverted, UnconvertedKind};

/// Distinct (kind, type) pairs counted at most: the names come from clients, so a client
/// sending random types must not grow the map or the metric without bound. Past it, a new
/// type is counted as `type="(other)"`.
const MAX_TYPES: usize = 256;
/// A type name is cut to this many bytes.
const MAX_TYPE_LEN: usize = 64;
const OVERFLOW: &str = "(other)";

fn counts() -> &'static Mutex<HashMap<(UnconvertedKind, String), u64>> {
    static COUNTS: OnceLock<Mutex<HashMap<(UnconvertedKind, String), u64>>> = OnceLock::new();
    COUNTS.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<(UnconvertedKind, String), u64>> {
    match counts().lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn clean(ty: &str) -> String {
    let mut end = ty.len().min(MAX_TYPE_LEN);
    while !ty.is_char_boundary(end) {
        end -= 1;
    }
    ty[..end].to_owned()
}

/// Count what one request left unconverted; the first of each type is logged at warn.
pub fn report(backend: &str, found: &[Unconverted]) {
    if found.is_empty() {
        return;
    }
    let mut new = Vec::new();
    {
        let mut map = lock();
        for u in found {
            let mut key = (u.kind, clean(&u.ty));
            if !map.contains_key(&key) && map.len() >= MAX_TYPES {
                key.1 = OVERFLOW.to_owned();
            }
            let n = map.entry(key.clone()).or_insert(0);
            if *n == 0 {
                new.push(key);
            }
            *n += 1;
        }
    }
    for (kind, ty) in new {
        if kind == UnconvertedKind::Tool && ty == "web_search" {
            tracing::warn!(
                backend,
                "the client offered web_search, which this backend cannot run: dropped (its provider has no web search of its own in its Chat API, or the backend says \"web_search\": \"off\"; counted in ccp_unconverted_total{{kind=\"tool\",type=\"web_search\"}}; logged once)"
            );
            continue;
        }
        tracing::warn!(
            backend,
            kind = kind.as_str(),
            r#type = %ty,
            "the client sent something this proxy does not convert (counted in ccp_unconverted_total; logged once per type)"
        );
    }
}

/// The counter in Prometheus text format (nothing but the header while nothing was met).
pub fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP ccp_unconverted_total What clients sent that the proxy does not convert, by kind (item, part, tool, member) and type.\n# TYPE ccp_unconverted_total counter"
    );
    let map = lock();
    let mut rows: Vec<_> = map.iter().collect();
    rows.sort();
    for ((kind, ty), n) in rows {
        let ty = ty
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(
            out,
            "ccp_unconverted_total{{kind=\"{}\",type=\"{ty}\"}} {n}",
            kind.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample(out: &str, kind: &str, ty: &str) -> Option<u64> {
        let prefix = format!("ccp_unconverted_total{{kind=\"{kind}\",type=\"{ty}\"}} ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|n| n.parse().unwrap())
    }

    #[test]
    fn counts_per_kind_and_type_and_is_bounded() {
        let u = |k, t: &str| Unconverted::new(k, t);
        report(
            "b",
            &[
                u(UnconvertedKind::Item, "guard_test_item"),
                u(UnconvertedKind::Item, "guard_test_item"),
                u(UnconvertedKind::Tool, "guard_\"test\"_tool"),
            ],
        );
        let mut out = String::new();
        render(&mut out);
        assert_eq!(sample(&out, "item", "guard_test_item"), Some(2));
        assert_eq!(sample(&out, "tool", "guard_\\\"test\\\"_tool"), Some(1));
        assert_eq!(sample(&out, "part", "guard_test_item"), None);
        // A client sending endless new types grows nothing past the bound.
        let many: Vec<Unconverted> = (0..MAX_TYPES * 2)
            .map(|i| u(UnconvertedKind::Member, &format!("guard_flood_{i}")))
            .collect();
        report("b", &many);
        assert!(lock().len() <= MAX_TYPES + 1);
        let mut out = String::new();
        render(&mut out);
        assert!(sample(&out, "member", OVERFLOW).unwrap() > 0);
        assert_eq!(clean(&"é".repeat(40)).len(), MAX_TYPE_LEN);
    }
}
