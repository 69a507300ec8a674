//! Providers' prompt caches match the longest common prefix of consecutive requests. Turn
//! N+1 of a Codex session repeats turn N's items and adds its own, so the Chat body the
//! proxy makes for turn N+1 must begin with the bytes of turn N's messages, for every
//! profile: anything that made the two differ (member order, re-serialised text, a system
//! prompt that changes between turns) would cost the user every cache hit. Over a WebSocket
//! the body of turn N+1 is the same bytes as over HTTP (tests/convert_incremental.rs).
//! (Includes tests/common/core.rs alone, as the other pure suites do.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use codex_convert_proxy::convert::request::{chat_body, convert_request, parse_request};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

#[path = "common/core.rs"]
mod core_helpers;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The `body` of a recorded 0.171 HTTP request, as written.
fn recorded_0171(folder: &str, file: &str) -> Vec<u8> {
    #[derive(Deserialize)]
    struct Http<'a> {
        #[serde(borrow)]
        body: &'a RawValue,
    }
    let text =
        std::fs::read_to_string(fixtures().join("codex-0.171").join(folder).join(file)).unwrap();
    let http: Http<'_> = serde_json::from_str(&text).unwrap();
    http.body.get().as_bytes().to_vec()
}

/// Consecutive requests of one Codex session (turn N, turn N+1).
fn pairs() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    vec![
        (
            "0.171 http-tool: the follow-up after exec_command",
            recorded_0171("http-tool", "001-POST-responses.json"),
            recorded_0171("http-tool", "002-POST-responses.json"),
        ),
        (
            "0.171 responses lite (code mode): the follow-up after exec",
            recorded_0171("http-responses-lite-code-mode", "001-POST-responses.json"),
            recorded_0171("http-responses-lite-code-mode", "002-POST-responses.json"),
        ),
    ]
}

/// The raw `messages` array of a Chat body.
fn messages(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Chat<'a> {
        #[serde(borrow)]
        messages: &'a RawValue,
    }
    let chat: Chat<'_> = serde_json::from_slice(body).unwrap();
    chat.messages.get().to_owned()
}

#[test]
fn the_recorded_pairs_are_continuations() {
    for (what, a, b) in pairs() {
        let (a, b): (Value, Value) = (
            serde_json::from_slice(&a).unwrap(),
            serde_json::from_slice(&b).unwrap(),
        );
        let (ia, ib) = (
            a["input"].as_array().unwrap(),
            b["input"].as_array().unwrap(),
        );
        assert!(ib.len() > ia.len(), "{what}");
        assert_eq!(
            &ib[..ia.len()],
            &ia[..],
            "{what}: turn N+1 repeats turn N's input"
        );
    }
}

#[test]
fn turn_n_plus_1_begins_with_the_bytes_of_turn_ns_messages_for_every_profile() {
    for (what, a, b) in pairs() {
        for q in core_helpers::all_profiles() {
            let chat = |body: &[u8]| {
                let opts = core_helpers::options(&q, 1);
                let c = convert_request(parse_request(body).unwrap(), &opts).unwrap();
                chat_body(&c.chat, body.len()).unwrap()
            };
            let (ca, cb) = (chat(&a), chat(&b));
            let (ma, mb) = (messages(&ca), messages(&cb));
            let open = ma.strip_suffix(']').unwrap();
            assert!(
                mb.starts_with(open) && mb[open.len()..].starts_with(','),
                "{what}, {}: turn N+1's messages do not begin with turn N's\nN:   {}\nN+1: {}",
                q.profile,
                &ma[..ma.len().min(400)],
                &mb[..mb.len().min(400)],
            );
            // Everything before the messages (model, and what the profile puts first) is
            // the same too.
            let head = |c: &[u8]| {
                let s = std::str::from_utf8(c).unwrap();
                s[..s.find("\"messages\"").unwrap()].to_owned()
            };
            assert_eq!(head(&ca), head(&cb), "{what}, {}", q.profile);
        }
    }
}
