//! Bounded fuzzing inside the normal test run (the cargo-fuzz targets in `fuzz/` explore
//! further): request conversion, SSE decoding + stream conversion and response conversion
//! never panic, and a stream always ends with exactly one terminal event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codex_convert_proxy::convert::request::{convert_request, parse_request};
use codex_convert_proxy::convert::streaming::convert_completion;
use codex_convert_proxy::convert::ResponseContext;
use codex_convert_proxy::providers::Quirks;
use codex_convert_proxy::types::chat::ChatCompletion;
use proptest::prelude::*;
use serde_json::{json, Value};

#[path = "common/core.rs"]
mod core_helpers;

fn profiles() -> Vec<Quirks> {
    core_helpers::all_profiles()
}

/// Arbitrary JSON values, biased towards the shapes of Responses requests.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("message"),
            Just("function_call"),
            Just("function_call_output"),
            Just("reasoning"),
            Just("custom_tool_call"),
            Just("custom_tool_call_output"),
            Just("input_text"),
            Just("output_text"),
            Just("input_image"),
            Just("user"),
            Just("assistant"),
            Just("developer"),
            Just("system"),
            Just("function"),
            Just("namespace"),
            Just("custom"),
            Just("web_search"),
            Just("<think>"),
            Just("ccp1.e30"),
            Just("ccp1.!!")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("type"),
                        Just("role"),
                        Just("content"),
                        Just("text"),
                        Just("name"),
                        Just("arguments"),
                        Just("call_id"),
                        Just("output"),
                        Just("input"),
                        Just("summary"),
                        Just("encrypted_content"),
                        Just("namespace"),
                        Just("tools"),
                        Just("image_url"),
                        Just("parameters"),
                        Just("format"),
                        Just("id")
                    ]
                    .prop_map(str::to_owned),
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn request_from(input: Value, tools: Value, extra: Value) -> Value {
    let mut req = json!({"model": "m", "stream": true, "input": input, "tools": tools});
    if let (Some(o), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    req
}

fn run_stream(ctx: ResponseContext, chunks: &[Vec<u8>]) -> String {
    String::from_utf8(core_helpers::run_stream(ctx, chunks)).expect("the output is UTF-8")
}

fn terminal_count(out: &str) -> usize {
    out.lines()
        .filter(|l| {
            matches!(
                *l,
                "event: response.completed"
                    | "event: response.failed"
                    | "event: response.incomplete"
            )
        })
        .count()
}

/// Chat chunk frames built from fuzzed pieces.
fn chunk_frames() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        "[ -~]{0,20}".prop_map(|s| json!({"choices": [{"index": 0, "delta": {"content": s}}]})),
        "[ -~]{0,20}".prop_map(|s| json!({"choices": [{"index": 0, "delta": {"reasoning_content": s}}]})),
        (0u32..3, proptest::option::of("[a-z]{1,6}"), proptest::option::of("[a-z_]{1,8}"), "[ -~]{0,10}").prop_map(|(i, id, name, args)| {
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "id": id, "function": {"name": name, "arguments": args}}]}}]})
        }),
        prop_oneof![Just("stop"), Just("length"), Just("tool_calls"), Just("content_filter"), Just("weird")]
            .prop_map(|f| json!({"choices": [{"index": 0, "delta": {}, "finish_reason": f}]})),
        Just(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})),
        Just(json!({"error": {"message": "boom", "code": "x"}})),
        json_value(),
    ];
    prop::collection::vec(
        prop_oneof![
            8 => piece.prop_map(|v| format!("data: {v}\n\n").into_bytes()),
            1 => Just(b"data: [DONE]\n\n".to_vec()),
            1 => Just(b": keep-alive\r\n\r\n".to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..40),
        ],
        0..24,
    )
    .prop_map(|frames| frames.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn request_conversion_never_panics(input in json_value(), tools in json_value(), extra in json_value(), p in 0usize..5) {
        let body = request_from(input, tools, extra).to_string();
        let quirks = &profiles()[p];
        if let Ok(req) = parse_request(body.as_bytes()) {
            let opts = core_helpers::options(quirks, 1);
            if let Ok(c) = convert_request(req, &opts) {
                // whatever came in, the Chat request serialises and has a user turn
                let v = serde_json::to_value(&c.chat).unwrap();
                prop_assert!(v["messages"].as_array().is_some_and(|m| !m.is_empty()));
            }
        }
    }

    #[test]
    fn parse_request_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn stream_conversion_always_ends_once(stream in chunk_frames(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8), p in 0usize..5) {
        let mut ctx = ResponseContext::for_tests("m", true);
        ctx.quirks = profiles()[p].clone();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut last = 0;
        for pnt in points {
            chunks.push(stream[last..pnt].to_vec());
            last = pnt;
        }
        chunks.push(stream[last..].to_vec());
        let out = run_stream(ctx.clone(), &chunks);
        prop_assert_eq!(terminal_count(&out), 1, "{}", out);
        prop_assert!(out.ends_with("data: [DONE]\n\n"));
        // splitting never changes the output
        prop_assert_eq!(out, run_stream(ctx, &[stream]));
    }

    #[test]
    fn completion_conversion_never_panics(v in json_value()) {
        let ctx = ResponseContext::for_tests("m", false);
        let text = v.to_string();
        if let Ok(c) = serde_json::from_str::<ChatCompletion>(&text) {
            let r = convert_completion(&ctx, &c);
            prop_assert_eq!(&r["object"], "response");
        }
    }
}

#[test]
fn mutated_codex_fixtures_never_panic() {
    // Replace each node of the real requests with odd values, one at a time.
    let odd = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({}),
        json!([{"type": "message"}]),
    ];
    for name in [
        "turn1-text.json",
        "turn2-after-exec-command.json",
        "turn1-with-apply-patch-freeform.json",
    ] {
        let path = format!(
            "{}/tests/fixtures/codex-0.169/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let base: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut paths = Vec::new();
        collect_paths(&base, String::new(), &mut paths);
        let mut tried = 0;
        for p in paths.iter().step_by(5) {
            for o in &odd {
                let mut v = base.clone();
                if let Some(slot) = v.pointer_mut(p) {
                    *slot = o.clone();
                }
                for q in profiles() {
                    if let Ok(req) = parse_request(v.to_string().as_bytes()) {
                        let _ = convert_request(req, &core_helpers::options(&q, 1));
                    }
                }
                tried += 1;
            }
        }
        assert!(tried > 100, "{name}: {tried}");
    }
}

fn collect_paths(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                // skip the huge prompt texts' insides: they are leaves anyway
                collect_paths(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                collect_paths(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}
