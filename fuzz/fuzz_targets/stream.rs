#![no_main]
//! Any bytes as an upstream SSE body, split at a fuzzed point: no panic, exactly one terminal
//! event, and the split does not change the output.

use codex_convert_proxy_fuzz::convert::streaming::{Framing, StreamConverter};
use codex_convert_proxy_fuzz::convert::ResponseContext;
use codex_convert_proxy_fuzz::providers;
use libfuzzer_sys::fuzz_target;

fn run(ctx: &ResponseContext, parts: &[&[u8]]) -> Vec<u8> {
    let mut conv = StreamConverter::new(ctx.clone(), Framing::Sse);
    let mut out = Vec::new();
    for p in parts {
        conv.push_bytes(p);
        out.extend_from_slice(&conv.take_output());
    }
    conv.finish();
    out.extend_from_slice(&conv.take_output());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let mut ctx = ResponseContext::for_tests("m", true);
    let profiles = providers::Profile::ALL;
    ctx.quirks = profiles[usize::from(selector) % profiles.len()].quirks();
    let cut = if body.is_empty() {
        0
    } else {
        usize::from(selector) * 7 % body.len()
    };
    let whole = run(&ctx, &[body]);
    let split = run(&ctx, &[&body[..cut], &body[cut..]]);
    assert_eq!(whole, split, "splitting changed the output");
    let text = String::from_utf8_lossy(&whole);
    let terminals = text
        .lines()
        .filter(|l| {
            matches!(
                *l,
                "event: response.completed"
                    | "event: response.failed"
                    | "event: response.incomplete"
            )
        })
        .count();
    assert_eq!(terminals, 1, "exactly one terminal event");
});
