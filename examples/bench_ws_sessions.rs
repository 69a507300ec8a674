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
//!     [--turns K [--clk-tck 100]]
//! ```
//!
//! With `--turns K`, once every session is idle, each sends K continuations at once (one
//! short user message with `previous_response_id`, each on the last) and the line says the
//! servers' CPU per continuation turn (`cpu_us_per_turn`): the cost of a turn on a chain
//! with `--history-bytes` of history.
//!
//! ```text
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

/// The counters and the start signal of the continuation turns (`--turns`).
#[derive(Clone)]
struct Turns {
    per_session: usize,
    go: Arc<tokio::sync::Notify>,
    done: Arc<AtomicUsize>,
}

/// Wait for `response.completed`: its response id, `None` on a failure.
async fn completed<S>(ws: &mut S) -> Option<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                match v["type"].as_str() {
                    Some("response.completed") => {
                        return v["response"]["id"].as_str().map(str::to_owned)
                    }
                    Some("response.failed" | "error") => return None,
                    _ => {}
                }
            }
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

/// One session: a turn, then idle until the end (or, with `turns`, that many continuations
/// once told to go); `ready` counts sessions whose first turn completed.
async fn session(
    url: Arc<String>,
    create: Arc<String>,
    ready: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    turns: Turns,
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
    let Some(mut id) = completed(&mut ws).await else {
        return fail();
    };
    ready.fetch_add(1, Ordering::Relaxed);
    if turns.per_session > 0 {
        turns.go.notified().await;
        for i in 0..turns.per_session {
            let next = json!({"type": "response.create", "model": "mock-model", "store": false,
                "previous_response_id": id,
                "input": [{"type": "message", "role": "user", "content": format!("and then {i}")}]});
            if ws.send(Message::text(next.to_string())).await.is_err() {
                return;
            }
            match completed(&mut ws).await {
                Some(next_id) => id = next_id,
                None => return,
            }
            turns.done.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Idle: hold the connection until the task is aborted.
    while let Some(Ok(_)) = ws.next().await {}
}

/// CPU time (utime + stime, clock ticks) of the processes.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            // After "(comm)": state is field 3; utime and stime are fields 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let c = Common::parse(&args, 120);
    let sessions: usize = arg(&args, "--sessions").map_or(1000, |v| v.parse().unwrap());
    let history_bytes: usize = arg(&args, "--history-bytes").map_or(1024, |v| v.parse().unwrap());
    let turns = Turns {
        per_session: arg(&args, "--turns").map_or(0, |v| v.parse().unwrap()),
        go: Arc::new(tokio::sync::Notify::new()),
        done: Arc::new(AtomicUsize::new(0)),
    };
    let clk_tck: f64 = arg(&args, "--clk-tck").map_or(100.0, |v| v.parse().unwrap());
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
            let t = turns.clone();
            tokio::spawn(session(Arc::clone(&url), Arc::clone(&create), p.ready, p.failed, t))
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
        // The continuations, all sessions at once: the servers' CPU per turn.
        let mut cpu_us_per_turn = 0.0;
        if turns.per_session > 0 && open > 0 {
            let t0 = cpu_ticks(&c.pids);
            turns.go.notify_waiters();
            let want = open * turns.per_session;
            while turns.done.load(Ordering::Relaxed) < want && start.elapsed() < c.timeout {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let done = turns.done.load(Ordering::Relaxed).max(1);
            let ticks = cpu_ticks(&c.pids).saturating_sub(t0);
            cpu_us_per_turn = ticks as f64 * 1e6 / clk_tck / done as f64;
        }
        for t in &tasks {
            t.abort();
        }
        let per_session = if open > 0 {
            idle.saturating_sub(before) as f64 / open as f64
        } else {
            0.0
        };
        format!(
            "{{\"sessions_requested\":{sessions},\"sessions_idle\":{open},\"failed\":{fails},\"history_bytes\":{history_bytes},\"create_bytes\":{},\"rss_before_kib\":{before},\"rss_idle_kib\":{idle},\"kib_per_session\":{per_session:.2},\"open_secs\":{open_secs:.2},\"turns\":{},\"cpu_us_per_turn\":{cpu_us_per_turn:.1},\"curve\":{}}}",
            create.len(),
            turns.done.load(Ordering::Relaxed),
            serde_json::to_string(&curve).unwrap()
        )
    });
    println!("{result}");
}
