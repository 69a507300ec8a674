#![no_main]
//! Any bytes as a non-streamed chat completion: no panic, always a Response object.

use codex_convert_proxy_fuzz::convert::streaming::convert_completion;
use codex_convert_proxy_fuzz::convert::ResponseContext;
use codex_convert_proxy_fuzz::types::chat::ChatCompletion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = serde_json::from_slice::<ChatCompletion>(data) {
        let ctx = ResponseContext::for_tests("m", false);
        let r = convert_completion(&ctx, &c);
        assert_eq!(r["object"], "response");
    }
});
