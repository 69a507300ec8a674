//! The Chat request body, byte for byte, for every recorded Codex request and a set of
//! edge-case bodies, under every provider profile: compared with the output of the
//! converter as it was before strings were passed through as JSON (tests/fixtures/
//! golden-chat/, written by that converter). `GOLDEN_WRITE=1` rewrites the files.
//! (Includes tests/common/core.rs alone, as the other pure suites do.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use codex_convert_proxy::convert::request::{chat_body, convert_request, parse_request};
use serde::Deserialize;
use serde_json::value::RawValue;

#[path = "common/core.rs"]
mod core_helpers;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Request bodies as Codex sent them: the 0.169 bodies, and the `body` member of each
/// recorded 0.171 HTTP request, as it is written in the file.
fn recorded() -> Vec<(String, Vec<u8>)> {
    #[derive(Deserialize)]
    struct Http<'a> {
        #[serde(borrow)]
        body: &'a RawValue,
    }
    let mut out = Vec::new();
    let dir = fixtures().join("codex-0.169");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && n != "model-catalog-example.json")
        .collect();
    names.sort();
    for n in names {
        out.push((
            format!("0.169-{}", n.trim_end_matches(".json")),
            std::fs::read(dir.join(&n)).unwrap(),
        ));
    }
    let dir = fixtures().join("codex-0.171");
    let mut files = Vec::new();
    for d in std::fs::read_dir(&dir).unwrap() {
        let d = d.unwrap();
        let folder = d.file_name().into_string().unwrap();
        if !folder.starts_with("http-") {
            continue;
        }
        for f in std::fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap().file_name().into_string().unwrap();
            if f.contains("-POST-responses") && f.ends_with(".json") {
                files.push((folder.clone(), f));
            }
        }
    }
    files.sort();
    for (folder, f) in files {
        let text = std::fs::read_to_string(dir.join(&folder).join(&f)).unwrap();
        let http: Http<'_> = serde_json::from_str(&text).unwrap();
        out.push((
            format!("0.171-{folder}-{}", f.trim_end_matches(".json")),
            http.body.get().as_bytes().to_vec(),
        ));
    }
    out
}

/// Bodies for the string paths: escapes serde_json writes differently (`\u`, `\/`), raw
/// non-ASCII, members in any order, text joined from several parts and messages, the
/// system prompt made of instructions, developer messages and a schema hint, reasoning
/// passed back, tool outputs as parts, custom tool calls, blank arguments.
const EDGE: &[(&str, &str)] = &[
    (
        "escapes",
        r#"{"model":"m","instructions":"caf\u00e9 \/ \"q\" \\ tab\there\nnext \ud83d\ude00 ünï","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"a\u0001b\u001fc \u2028 d\/e"}]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"k\":\"v\\n\u00e9\"}"},{"type":"function_call_output","call_id":"c1","output":"line 1\nline 2\t\"x\" \\path\\ \u00fc"}]}"#,
    ),
    (
        "member-order",
        r#"{"input":[{"content":"no type, a role","role":"user"},{"arguments":"{}","call_id":"c1","name":"f","type":"function_call"},{"call_id":"c1","output":"sorted \"keys\"\n","type":"function_call_output"},{"content":[{"text":"sorted part","type":"output_text"}],"role":"assistant","type":"message"}],"model":"m"}"#,
    ),
    (
        "joins",
        r#"{"model":"m","instructions":"base \"instructions\"\n","text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"}}},"input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"dev one\n"},{"type":"input_text","text":""},{"type":"input_text","text":"dev \u00e9 two"}]},{"type":"message","role":"system","content":"sys three"},{"type":"message","role":"user","content":[{"type":"input_text","text":""},{"type":"input_text","text":"u1 \"q\""},{"type":"input_text","text":""},{"type":"input_text","text":"u2"}]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"first\n"}]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"second \u00e9"},{"type":"refusal","refusal":"no \"way\""}]},{"type":"message","role":"developer","content":"late developer \\ text"},{"type":"message","role":"user","content":"plain string content \"x\"\n"}]}"#,
    ),
    (
        "reasoning-and-tools",
        r#"{"model":"m","input":[{"type":"message","role":"user","content":"go"},{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"think \"a\"\n"},{"type":"summary_text","text":"think b"}]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"calling"}]},{"type":"function_call","call_id":"c1","name":"exec","arguments":"  \n\t "},{"type":"custom_tool_call","call_id":"c2","name":"apply_patch","input":"*** Begin Patch\n\"quoted\" \u00e9\n*** End Patch"},{"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"part \"one\""},{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"},{"type":"input_text","text":"part two\n"}]},{"type":"custom_tool_call_output","call_id":"c2","output":"Done!\n"},{"type":"function_call_output","call_id":"orphan","output":"nobody asked \"this\""},{"type":"function_call","call_id":"c3","name":"never_answered","arguments":"{\"a\":1}"},{"type":"message","role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":{"url":"https://example.com/a.png"}}]}]}"#,
    ),
    (
        "string-input",
        r#"{"model":"m","instructions":"","input":"just \"a\" string\n\u00e9"}"#,
    ),
];

/// The Chat body of `body` for each profile, one `profile<TAB>body` line each.
fn chat_bodies(body: &[u8]) -> String {
    let mut out = String::new();
    for q in core_helpers::all_profiles() {
        let opts = core_helpers::options(&q, 1);
        let chat = match parse_request(body).and_then(|r| convert_request(r, &opts)) {
            Ok(c) => String::from_utf8(chat_body(&c.chat, body.len()).unwrap()).unwrap(),
            Err(e) => format!("error: {}", e.message),
        };
        out.push_str(&format!("{}\t{chat}\n", q.profile));
    }
    out
}

#[test]
fn chat_bodies_are_byte_identical_to_the_saved_ones() {
    let dir = fixtures().join("golden-chat");
    let write = std::env::var_os("GOLDEN_WRITE").is_some();
    let mut cases = recorded();
    assert!(cases.len() >= 12, "recorded bodies: {}", cases.len());
    cases.extend(
        EDGE.iter()
            .map(|(n, b)| (format!("edge-{n}"), b.as_bytes().to_vec())),
    );
    let mut failed = Vec::new();
    for (name, body) in &cases {
        let got = chat_bodies(body);
        let path = dir.join(format!("{name}.txt"));
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (GOLDEN_WRITE=1 writes it)", path.display()));
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .find(|(g, w)| g != w)
                .map(|(g, w)| {
                    let at = g.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
                    let from = at.saturating_sub(60);
                    format!(
                        "first difference at byte {at}:\n got: {}\nwant: {}",
                        g.get(from..(at + 60).min(g.len())).unwrap_or(""),
                        w.get(from..(at + 60).min(w.len())).unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "line count differs".into());
            failed.push(format!("{name}: {line}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
