//! Runs the request path of the pure core (parse, convert, serialise the Chat request) on
//! one body file N times, for a profiler: `valgrind --tool=callgrind` counts instructions,
//! which stay the same from run to run on a shared machine where times do not.
//!
//!   cargo build --release --example profile_convert
//!   valgrind --tool=callgrind target/release/examples/profile_convert BODY.json 20
// The product's allocator (src/main.rs), so the figures are the proxy's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use codex_convert_proxy::convert::request::{
    chat_body, convert_request, parse_request, RequestOptions,
};
use codex_convert_proxy::providers::Quirks;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: profile_convert BODY.json [N]")?;
    let n: usize = args
        .next()
        .map_or(Ok(10), |s| s.parse())
        .map_err(|e| format!("N: {e}"))?;
    let body = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let quirks = Quirks::openai();
    // As the proxy: the tools converted once per distinct tools JSON.
    let tools = codex_convert_proxy::convert::tools::ToolsCache::default();
    let mut total = 0usize;
    for _ in 0..n {
        let req = parse_request(&body).map_err(|e| e.message)?;
        let opts = RequestOptions {
            tools: Some(&tools),
            quirks: &quirks,
            model_override: None,
            id_seed: Some(1),
            chain_resolved: false,
        };
        let converted = convert_request(req, &opts).map_err(|e| e.message)?;
        total += chat_body(&converted.chat, body.len())
            .map_err(|e| e.to_string())?
            .len();
    }
    println!("{n} conversions of {} bytes, {total} bytes out", body.len());
    Ok(())
}
