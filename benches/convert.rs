//! Benchmarks of the pure conversion core (`make bench`).
//!
//! - `request/*`: the recorded Codex 0.169 requests (`tests/fixtures/codex-0.169/`) and a
//!   generated ~1 MB, 300-turn Codex history, parsed, converted and serialised exactly as
//!   the proxy does (`parse_request` → `convert_request` → `serde_json::to_vec`), and each
//!   stage on its own.
//! - `json/*`: serde_json against sonic-rs on the same bodies (parse into our types, parse
//!   into a DOM, serialise the Chat request, parse a stream chunk). A comparison only: the
//!   product uses serde_json.
//! - `stream/*`: a long generated upstream Chat stream (reasoning, text and tool-call
//!   deltas, a few MB of SSE) through `StreamConverter`, as MB/s of upstream bytes and as
//!   output events/s, fed one SSE event per read and in 16 KiB reads.
//!
//! Timings are reported, never asserted. They are CPU time of the benchmark thread
//! (`CLOCK_THREAD_CPUTIME_ID`), so that other work on shared cores does not inflate them;
//! `BENCH_CLOCK=wall` measures wall time instead. `BENCH_QUICK=1` shortens every
//! measurement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use codex_convert_proxy::convert::ids::encode_reasoning_token;
// The product's allocator (src/main.rs), so the figures are the proxy's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use codex_convert_proxy::convert::request::{
    chat_body, convert_request, parse_request, RequestOptions,
};
use codex_convert_proxy::convert::streaming::convert_completion_json;
use codex_convert_proxy::convert::streaming::{Framing, StreamConverter};
use codex_convert_proxy::convert::tools::{ConvertedTools, ToolsCache};
use codex_convert_proxy::convert::ResponseContext;
use codex_convert_proxy::providers::Quirks;
use codex_convert_proxy::types::chat::{ChatChunk, ChatCompletion};
use codex_convert_proxy::types::responses::ResponsesRequest;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/codex-0.169");

/// The recorded Codex requests (every fixture with an `input`), sorted by name.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(FIXTURE_DIR).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if v.get("input").is_none() {
            continue; // e.g. the model catalogue example
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.push((name, bytes));
    }
    out.sort();
    out
}

/// Deterministic pseudo-random text (xorshift), so the history is the same every run.
struct Words(u64);

impl Words {
    const VOCAB: &'static [&'static str] = &[
        "the",
        "proxy",
        "converts",
        "a",
        "request",
        "into",
        "Chat",
        "messages",
        "and",
        "tool",
        "calls",
        "function",
        "output",
        "reasoning",
        "stream",
        "event",
        "file",
        "src/lib.rs",
        "cargo",
        "test",
        "passed",
        "error:",
        "expected",
        "found",
        "`String`",
        "let",
        "fn",
        "impl",
        "struct",
        "{",
        "}",
        "=>",
        "ok",
        "résumé",
        "思考",
        "—",
        "\"quoted\"",
        "\\n",
    ];

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, bytes: usize) -> String {
        let mut s = String::with_capacity(bytes + 16);
        while s.len() < bytes {
            if !s.is_empty() {
                s.push(if self.next().is_multiple_of(11) {
                    '\n'
                } else {
                    ' '
                });
            }
            s.push_str(Self::VOCAB[(self.next() % Self::VOCAB.len() as u64) as usize]);
        }
        s
    }
}

/// A Codex history of `turns` agent turns on top of a real Codex request (its instructions,
/// developer messages and tools): per turn a user message, a reasoning item carrying our
/// `encrypted_content` token, assistant commentary, a `function_call` and its
/// `function_call_output`, and the assistant's answer.
fn codex_history(turns: usize) -> Vec<u8> {
    let base: Value =
        serde_json::from_slice(&std::fs::read(format!("{FIXTURE_DIR}/turn1-text.json")).unwrap())
            .unwrap();
    let mut req = base.clone();
    let mut input: Vec<Value> = base["input"].as_array().unwrap().clone();
    let mut w = Words(0x9E37_79B9_7F4A_7C15);
    for t in 0..turns {
        input.push(json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": w.text(300)}]}));
        let reasoning = w.text(420);
        input.push(json!({"type": "reasoning", "id": format!("rs_{t:016x}"),
            "summary": [{"type": "summary_text", "text": reasoning}],
            "encrypted_content": encode_reasoning_token(&reasoning)}));
        input.push(
            json!({"type": "message", "role": "assistant", "id": format!("msg_a{t:015x}"),
            "content": [{"type": "output_text", "text": w.text(120)}]}),
        );
        let call_id = format!("call_{t:024x}");
        let args =
            json!({"cmd": w.text(60), "workdir": "/home/user/project", "yield_time_ms": 1000});
        input.push(
            json!({"type": "function_call", "id": format!("fc_{t:032x}"),
            "name": "exec_command", "arguments": args.to_string(), "call_id": call_id}),
        );
        input.push(json!({"type": "function_call_output", "call_id": call_id,
            "output": format!("Chunk ID: {t:06x}\nWall time: 0.0123 seconds\nProcess exited with code 0\nOutput:\n{}", w.text(900))}));
        input.push(
            json!({"type": "message", "role": "assistant", "id": format!("msg_b{t:015x}"),
            "content": [{"type": "output_text", "text": w.text(250)}]}),
        );
    }
    req["input"] = Value::Array(input);
    serde_json::to_vec(&req).unwrap()
}

/// `json` rewritten with `type` first in every object, as Codex writes its items
/// (`serde_json::Value` sorts members, which puts `type` near the end).
fn codex_order(json: &[u8]) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(o) => {
                out.push(b'{');
                let first = o.get_key_value("type");
                let rest = o.iter().filter(|(k, _)| k.as_str() != "type");
                for (i, (k, v)) in first.into_iter().chain(rest).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).unwrap();
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            other => serde_json::to_writer(&mut *out, other).unwrap(),
        }
    }
    let v: Value = serde_json::from_slice(json).unwrap();
    let mut out = Vec::with_capacity(json.len());
    write(&v, &mut out);
    out
}

fn opts<'a>(quirks: &'a Quirks, tools: Option<&'a ToolsCache>) -> RequestOptions<'a> {
    RequestOptions {
        tools,
        quirks,
        model_override: None,
        id_seed: Some(42),
        chain_resolved: false,
    }
}

/// What the proxy does with a client body: parse, convert (with the tools converted once per
/// distinct tools JSON, as the proxy does), serialise the Chat request.
fn full_pipeline(body: &[u8], quirks: &Quirks, tools: &ToolsCache) -> Vec<u8> {
    let req = parse_request(body).unwrap();
    let converted = convert_request(req, &opts(quirks, Some(tools))).unwrap();
    chat_body(&converted.chat, body.len()).unwrap()
}

/// CPU time of the calling thread, in nanoseconds. Wall time when `BENCH_CLOCK=wall`.
pub struct Clock {
    wall: bool,
}

impl Clock {
    fn now(&self) -> u64 {
        if self.wall {
            return std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        }
        let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .expect("CLOCK_THREAD_CPUTIME_ID");
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    }
}

impl Measurement for Clock {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        self.now()
    }
    fn end(&self, start: u64) -> u64 {
        self.now().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WallTime.formatter() // nanoseconds either way
    }
}

fn config() -> Criterion<Clock> {
    let wall = std::env::var("BENCH_CLOCK").is_ok_and(|v| v == "wall");
    let c = Criterion::default().with_measurement(Clock { wall });
    if std::env::var_os("BENCH_QUICK").is_some() {
        c.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
    } else {
        c.sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
    }
}

fn bench_requests(c: &mut Criterion<Clock>) {
    let quirks = Quirks::openai();
    let mut bodies = fixtures();
    let history = codex_history(300);
    eprintln!(
        "history-300: {} bytes, {} input items",
        history.len(),
        parse_request(&history)
            .ok()
            .and_then(|r| match r.input {
                Some(codex_convert_proxy::types::responses::Input::Items(i)) => Some(i.len()),
                _ => None,
            })
            .unwrap_or(0)
    );
    // The same history with `type` first in each item, as Codex sends it (the one above has
    // serde_json's sorted members, as a client that sorts keys would send it).
    bodies.push(("history-300-codex".to_owned(), codex_order(&history)));
    bodies.push(("history-300".to_owned(), history));

    let tools = ToolsCache::default();
    let mut g = c.benchmark_group("request/pipeline");
    for (name, body) in &bodies {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| full_pipeline(black_box(body), &quirks, &tools))
        });
    }
    g.finish();

    // The stages on their own, for the two sizes that matter.
    let mut g = c.benchmark_group("request/stage");
    for (name, body) in bodies
        .iter()
        .filter(|(n, _)| n == "turn1-text" || n.starts_with("history-300"))
    {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse", name), body, |b, body| {
            b.iter(|| parse_request(black_box(body)).unwrap())
        });
        let parsed = parse_request(body).unwrap();
        g.bench_with_input(BenchmarkId::new("convert", name), &parsed, |b, parsed| {
            b.iter_batched(
                || parsed.clone(),
                |req| convert_request(req, &opts(&quirks, Some(&tools))).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
        // What the tools cache saves per request: reading, converting and serialising the
        // tools of a request not seen before.
        if let Some(t) = parsed.tools.as_ref() {
            g.bench_with_input(BenchmarkId::new("tools-uncached", name), t, |b, t| {
                b.iter(|| {
                    ConvertedTools::new(Some(black_box(t)), &Default::default(), &quirks).unwrap()
                })
            });
        }
        let chat = convert_request(parsed, &opts(&quirks, Some(&tools)))
            .unwrap()
            .chat;
        g.bench_with_input(BenchmarkId::new("serialize", name), &chat, |b, chat| {
            b.iter(|| serde_json::to_vec(black_box(chat)).unwrap())
        });
    }
    g.finish();

    // serde_json against sonic-rs on the same work.
    let mut g = c.benchmark_group("json");
    for (name, body) in bodies
        .iter()
        .filter(|(n, _)| n == "turn1-text" || n == "history-300")
    {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("serde_json/typed", name),
            body,
            |b, body| {
                b.iter(|| serde_json::from_slice::<ResponsesRequest>(black_box(body)).unwrap())
            },
        );
        // (No sonic_rs/typed: the request types keep tools and schemas as serde_json
        // RawValue, which only serde_json's deserializer fills.)
        g.bench_with_input(BenchmarkId::new("serde_json/dom", name), body, |b, body| {
            b.iter(|| serde_json::from_slice::<Value>(black_box(body)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("sonic_rs/dom", name), body, |b, body| {
            b.iter(|| sonic_rs::from_slice::<sonic_rs::Value>(black_box(body)).unwrap())
        });
        // Serialising the same Chat request as a JSON tree with each library (the typed
        // request holds serde_json RawValues, which sonic-rs would not write verbatim).
        let chat = convert_request(parse_request(body).unwrap(), &opts(&quirks, None))
            .unwrap()
            .chat;
        let tree: Value = serde_json::to_value(&chat).unwrap();
        let sonic_tree: sonic_rs::Value =
            sonic_rs::from_slice(&serde_json::to_vec(&chat).unwrap()).unwrap();
        g.bench_with_input(
            BenchmarkId::new("serde_json/to_vec", name),
            &tree,
            |b, c| b.iter(|| serde_json::to_vec(black_box(c)).unwrap()),
        );
        g.bench_with_input(
            BenchmarkId::new("sonic_rs/to_vec", name),
            &sonic_tree,
            |b, c| b.iter(|| sonic_rs::to_vec(black_box(c)).unwrap()),
        );
    }
    let chunk = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"Hello, wor"},"logprobs":null,"finish_reason":null}]}"#;
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("serde_json/chunk", |b| {
        b.iter(|| serde_json::from_slice::<ChatChunk>(black_box(chunk)).unwrap())
    });
    g.bench_function("sonic_rs/chunk", |b| {
        b.iter(|| sonic_rs::from_slice::<ChatChunk>(black_box(chunk)).unwrap())
    });
    g.finish();
}

fn chunk_line(delta: Value, finish: Option<&str>) -> String {
    let v = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
        "created": 1_764_000_000u64, "model": "deepseek-reasoner",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {v}\n\n")
}

/// A long upstream Chat stream in recorded shape: `rounds` × (reasoning deltas, text
/// deltas), then three parallel tool calls with their arguments in small pieces, the
/// finish chunk, a usage chunk and `[DONE]`. Returned as one SSE event per element.
fn upstream_stream(rounds: usize) -> Vec<String> {
    let mut w = Words(0x2545_F491_4F6C_DD1D);
    let mut ev = vec![chunk_line(
        json!({"role": "assistant", "content": null, "reasoning_content": ""}),
        None,
    )];
    for _ in 0..rounds {
        for _ in 0..40 {
            ev.push(chunk_line(
                json!({"content": null, "reasoning_content": w.text(12)}),
                None,
            ));
        }
        for _ in 0..40 {
            ev.push(chunk_line(json!({"content": w.text(12)}), None));
        }
    }
    for i in 0..3u32 {
        ev.push(chunk_line(
            json!({"tool_calls": [{"index": i, "id": format!("call_{i:08}"), "type": "function",
                "function": {"name": "exec_command", "arguments": ""}}]}),
            None,
        ));
        let args = json!({"cmd": w.text(2000), "workdir": "/home/user/project"}).to_string();
        let mut rest = args.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(16);
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let (piece, tail) = rest.split_at(cut);
            ev.push(chunk_line(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                None,
            ));
            rest = tail;
        }
    }
    ev.push(chunk_line(json!({}), Some("tool_calls")));
    ev.push(format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 12000, "completion_tokens": 9000, "total_tokens": 21000,
                "prompt_tokens_details": {"cached_tokens": 11000},
                "completion_tokens_details": {"reasoning_tokens": 4000}}})
    ));
    ev.push("data: [DONE]\n\n".to_owned());
    ev
}

/// The response context a real Codex request gives (its tool catalogue), fixed ids.
fn stream_ctx() -> ResponseContext {
    let body = std::fs::read(format!("{FIXTURE_DIR}/turn1-text.json")).unwrap();
    let quirks = Quirks::openai();
    let mut ctx = convert_request(parse_request(&body).unwrap(), &opts(&quirks, None))
        .unwrap()
        .ctx;
    ctx.fixed_now = Some(1_700_000_001);
    ctx.id_seed = 7;
    ctx
}

fn run_stream<'a>(ctx: &ResponseContext, reads: impl Iterator<Item = &'a [u8]>) -> usize {
    let mut conv = StreamConverter::new(ctx.clone(), Framing::Sse);
    conv.start();
    let mut out = 0;
    for r in reads {
        conv.push_bytes(r);
        out += conv.take_output().len();
    }
    conv.finish();
    out + conv.take_output().len()
}

fn bench_stream(c: &mut Criterion<Clock>) {
    let ctx = stream_ctx();
    let events = upstream_stream(400);
    let whole: Vec<u8> = events.concat().into_bytes();
    let reads16k: Vec<&[u8]> = whole.chunks(16 * 1024).collect();
    // Count the Responses events one run produces (for events/s).
    let out_events = {
        let mut conv = StreamConverter::new(ctx.clone(), Framing::Sse);
        conv.start();
        conv.push_bytes(&whole);
        conv.finish();
        let out = conv.take_output();
        out.windows(2).filter(|w| w == b"\n\n").count()
    };
    eprintln!(
        "stream: {} upstream bytes, {} upstream events, {} Responses events out",
        whole.len(),
        events.len(),
        out_events
    );

    let mut g = c.benchmark_group("stream/bytes");
    g.throughput(Throughput::Bytes(whole.len() as u64));
    g.bench_function("per_event_reads", |b| {
        b.iter(|| run_stream(&ctx, events.iter().map(|e| e.as_bytes())))
    });
    g.bench_function("16k_reads", |b| {
        b.iter(|| run_stream(&ctx, reads16k.iter().copied()))
    });
    g.finish();

    let mut g = c.benchmark_group("stream/events");
    g.throughput(Throughput::Elements(out_events as u64));
    g.bench_function("per_event_reads", |b| {
        b.iter(|| run_stream(&ctx, events.iter().map(|e| e.as_bytes())))
    });
    g.finish();
}

/// The non-stream reply path of the proxy: parse the upstream completion, build the Response
/// object (which echoes the request's fields, tools included), serialise it.
fn bench_response(c: &mut Criterion<Clock>) {
    let ctx = stream_ctx();
    let text = "Here is the plan: read the file, change the function, run the tests. ".repeat(6);
    let completion =
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1_764_000_000u64,
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
        "finish_reason": "stop"}], "usage": {"prompt_tokens": 11000, "completion_tokens": 90,
        "total_tokens": 11090}})
        .to_string();
    let mut g = c.benchmark_group("response");
    g.throughput(Throughput::Bytes(completion.len() as u64));
    g.bench_function("json_reply/turn1-text", |b| {
        b.iter(|| {
            let parsed: ChatCompletion = serde_json::from_str(black_box(&completion)).unwrap();
            // What the proxy does: the Response object's JSON straight from the converter.
            convert_completion_json(ctx.clone(), &parsed).0
        })
    });
    g.bench_function("stream_start/turn1-text", |b| {
        b.iter(|| {
            let mut conv = StreamConverter::new(ctx.clone(), Framing::Sse);
            conv.start();
            conv.take_output()
        })
    });
    g.finish();
}

/// Turn 300 of the 1 MB history: over HTTP Codex sends the whole conversation and the proxy
/// parses, converts and serialises all of it; over a WebSocket it sends only the new item
/// (the `function_call_output`) with `previous_response_id`, and the proxy converts that on
/// top of the chain's converted conversation. The Chat body is the same.
fn bench_chain(c: &mut Criterion<Clock>) {
    use codex_convert_proxy::config::Config;
    use codex_convert_proxy::turn::chain::{resolve_message, ConnChain, Message};
    use codex_convert_proxy::turn::intern::Interner;
    use codex_convert_proxy::turn::prepare::prepare_turn;

    let history: Value = serde_json::from_slice(&codex_history(300)).unwrap();
    let items = history["input"].as_array().unwrap().clone();
    // The last turn's output item is the follow-up's new input.
    let fco = items
        .iter()
        .rposition(|i| i["type"] == "function_call_output")
        .unwrap();
    let cfg = Config::from_json_str(
        r#"{"backends": [{"name": "b", "url": "http://h/v1", "model": "m"}]}"#,
        &|_| None,
    )
    .unwrap();
    let backend = &cfg.backends[0];
    let echoes = Interner::default();
    let mut base = history.clone();
    base["input"] = Value::Array(items[..fco].to_vec());
    base["type"] = json!("response.create");
    let mut chain = ConnChain::new(8, usize::MAX);
    let Ok(Message::Create(r)) = resolve_message(&base.to_string(), &mut chain) else {
        panic!("base message")
    };
    let first = prepare_turn(&r, 0, backend, &echoes, None).unwrap();
    let mut entry = r.entry.clone();
    entry.chat = Some(std::sync::Arc::new(first.next));
    chain.insert("resp_base".into(), entry);
    let mut msg = json!({"type": "response.create", "previous_response_id": "resp_base",
        "input": [items[fco].clone()]});
    for k in [
        "model",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
        "store",
        "include",
        "prompt_cache_key",
        "stream",
    ] {
        if let Some(v) = history.get(k) {
            msg[k] = v.clone();
        }
    }
    let msg = msg.to_string();
    let mut whole = history.clone();
    whole["input"] = Value::Array(items[..=fco].to_vec());
    let whole = serde_json::to_vec(&whole).unwrap();
    eprintln!(
        "turn 300: {} bytes received over HTTP, {} over a WebSocket",
        whole.len(),
        msg.len()
    );
    let quirks = backend.quirks.clone();
    let mut g = c.benchmark_group("chain/turn-300");
    g.bench_function("http_whole_history", |b| {
        b.iter(|| full_pipeline(black_box(&whole), &quirks, &echoes.tools))
    });
    g.bench_function("websocket_new_items", |b| {
        b.iter(|| {
            let Ok(Message::Create(r)) = resolve_message(black_box(&msg), &mut chain) else {
                panic!("continuation")
            };
            let t = prepare_turn(&r, 0, backend, &echoes, None).unwrap();
            assert!(t.incremental);
            t.prepared.chat
        })
    });
    g.finish();
}

/// The response store: a 300-turn conversation stored as deltas (each turn a user message
/// with a tool round trip and an answer, as in the 1 MB history), then rebuilt from its last
/// response by walking the links — the work of a `previous_response_id` over HTTP. (With the
/// default CPU clock, the embedded store's reads on tokio's blocking pool are not counted;
/// `BENCH_CLOCK=wall` counts them.)
fn bench_store(c: &mut Criterion<Clock>) {
    use codex_convert_proxy::store::{
        embedded::EmbeddedStore, memory::MemoryStore, rebuild_chain, Retention, Store,
        StoredResponse,
    };
    use serde_json::value::RawValue;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let history: Value = serde_json::from_slice(&codex_history(300)).unwrap();
    let items = history["input"].as_array().unwrap().clone();
    let turns: Vec<&[Value]> = items
        .split_inclusive(|i| {
            i["type"] == "message"
                && i["role"] == "assistant"
                && i["id"].as_str().is_some_and(|id| id.starts_with("msg_b"))
        })
        .collect();
    let raw = |v: &Value| RawValue::from_string(v.to_string()).unwrap();
    let records: Vec<StoredResponse> = turns
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let split = t.len().saturating_sub(4).max(1);
            StoredResponse {
                id: format!("resp_{n:032x}"),
                owner: None,
                previous: (n > 0).then(|| format!("resp_{:032x}", n - 1)),
                created_at: 1_800_000_000 + n as u64,
                input: t[..split].iter().map(raw).collect(),
                output: t[split..].iter().map(raw).collect(),
                response: RawValue::from_string(
                    r#"{"id":"r","object":"response","status":"completed"}"#.to_owned(),
                )
                .unwrap(),
            }
        })
        .collect();
    let bytes: usize = records.iter().map(|r| r.to_bytes().len()).sum();
    eprintln!(
        "store: {} turns, {} bytes stored in all, {} bytes per turn",
        records.len(),
        bytes,
        bytes / records.len().max(1)
    );
    let retention = Retention {
        ttl: std::time::Duration::from_secs(86_400 * 30),
        max_bytes: 1 << 30,
    };
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(&dir.path().join("bench"), retention).unwrap();
    let memory = MemoryStore::new(retention);
    rt.block_on(async {
        for r in &records {
            embedded.put(r.clone()).await.unwrap();
            memory.put(r.clone()).await.unwrap();
        }
    });
    let last = records.last().unwrap().clone();
    let mut g = c.benchmark_group("store/rebuild-300-turns");
    for (name, store) in [
        ("embedded", &embedded as &dyn Store),
        ("memory", &memory as &dyn Store),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async { rebuild_chain(store, &last, 10_000).await.unwrap().len() })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_requests, bench_stream, bench_response, bench_chain, bench_store
}
criterion_main!(benches);
