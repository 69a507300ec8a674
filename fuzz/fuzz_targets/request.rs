#![no_main]
//! Any bytes as a Responses request, through every provider profile: no panic.

use codex_convert_proxy_fuzz::convert::request::{convert_request, parse_request, RequestOptions};
use codex_convert_proxy_fuzz::providers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse_request(data) else {
        return;
    };
    for p in providers::Profile::ALL {
        let q = p.quirks();
        let opts = RequestOptions {
        tools: None,
            quirks: &q,
            model_override: None,
            id_seed: Some(1), chain_resolved: false,
        };
        if let Ok(c) = convert_request(req.clone(), &opts) {
            let _ = serde_json::to_vec(&c.chat);
        }
    }
});
