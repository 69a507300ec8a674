//! Opens many WebSocket sessions, runs one turn on each, leaves them idle and reports how
//! much the server's memory grew per idle session (`make loadtest`, the sessions test).
//!
//! Reads the servers' resident set (`VmRSS` of `--pids`, summed) before opening, opens
//! `--sessions` WebSocket connections to `--path` (`--batch` at a time), sends one
//! `response.create` on each whose input is `--history-bytes` of conversation (user and
//! assistant messages of about 1 KiB, `store: false`), waits for its `response.completed`,
//! and keeps the connection open; then reads the resident set again after a short settle,
//! prints one JSON line (with the resident set at every tenth of the sessions opened, as
//! `curve`) and closes everything. Bounded: gives up after `--timeout-secs`.
//! 127.0.0.1 only.
//!
//! ```text
//! bench_ws_sessions --addr 127.0.0.1:18320 --path /v1/responses --sessions 1000 \
//!     --history-bytes 1024 --pids 1234 [--batch 100] [--settle-ms 1500] [--timeout-secs 120]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{arg, open_in_batches, rss_kib, Common, Progress};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A conversation of about `bytes` bytes: user and assistant messages of ~1 KiB each, the
/// last one the user's.
fn history(bytes: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut total = 0;
    let mut i = 0usize;
    while total < bytes.max(1) {
        let n = (bytes - total).clamp(1, 1024);
        let text: String = format!("message {i}: ")
            .chars()
            .chain(std::iter::repeat('x'))
            .take(n)
            .collect();
        let role = if i.is_multiple_of(2) {
            "user"
        } else {
            "assistant"
        };
        let ty = if role == "user" {
            "input_text"
        } else {
            "output_text"
        };
        items.push(
            json!({"type": "message", "role": role, "content": [{"type": ty, "text": text}]}),
        );
        total += n;
        i += 1;
    }
    if i.is_multiple_of(2) {
        items.push(json!({"type": "message", "role": "user", "content": "go on"}));
    }
    items
}

/// One session: a turn, then idle until the end; `ready` counts sessions whose turn
/// completed.
async fn session(
    url: Arc<String>,
    create: Arc<String>,
    ready: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let fail = || {
        failed.fetch_add(1, Ordering::Relaxed);
    };
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        return fail();
    };
    if ws.send(Message::text(create.as_str())).await.is_err() {
        return fail();
    }
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("response.completed") => break,
                    Some("response.failed" | "error") => return fail(),
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            _ => return fail(),
        }
    }
    ready.fetch_add(1, Ordering::Relaxed);
    // Idle: hold the connection until the task is aborted.
    while let Some(Ok(_)) = ws.next().await {}
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let c = Common::parse(&args, 120);
    let sessions: usize = arg(&args, "--sessions").map_or(1000, |v| v.parse().unwrap());
    let history_bytes: usize = arg(&args, "--history-bytes").map_or(1024, |v| v.parse().unwrap());
    let create = json!({"type": "response.create", "model": "mock-model", "store": false,
        "input": history(history_bytes)})
    .to_string();
    let url = Arc::new(format!("ws://{}{}", c.addr, c.path));
    let create = Arc::new(create);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async move {
        let start = Instant::now();
        let before = rss_kib(&c.pids);
        let progress = Progress::default();
        // (sessions idle, RSS KiB) at every tenth of the way.
        let mut curve: Vec<(usize, u64)> = vec![(0, before)];
        let spawn = || {
            let p = progress.clone();
            tokio::spawn(session(Arc::clone(&url), Arc::clone(&create), p.ready, p.failed))
        };
        let (step, mut before_batch) = (sessions.max(1), 0);
        let sample = |opened: usize| {
            if before_batch * 10 / step != opened * 10 / step {
                curve.push((progress.ready(), rss_kib(&c.pids)));
            }
            before_batch = opened;
        };
        let tasks = open_in_batches(sessions, &c, start, &progress, spawn, sample).await;
        let open_secs = start.elapsed().as_secs_f64();
        tokio::time::sleep(c.settle).await;
        let idle = rss_kib(&c.pids);
        let (open, fails) = (progress.ready(), progress.failed());
        for t in &tasks {
            t.abort();
        }
        let per_session = if open > 0 {
            idle.saturating_sub(before) as f64 / open as f64
        } else {
            0.0
        };
        format!(
            "{{\"sessions_requested\":{sessions},\"sessions_idle\":{open},\"failed\":{fails},\"history_bytes\":{history_bytes},\"create_bytes\":{},\"rss_before_kib\":{before},\"rss_idle_kib\":{idle},\"kib_per_session\":{per_session:.2},\"open_secs\":{open_secs:.2},\"curve\":{}}}",
            create.len(),
            serde_json::to_string(&curve).unwrap()
        )
    });
    println!("{result}");
}
