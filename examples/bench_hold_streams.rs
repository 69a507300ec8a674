//! Holds many streamed requests open at once and reports how much the server's memory grew
//! per open stream (`make loadtest`, the 2,000-open-streams test).
//!
//! Reads the servers' resident set (`VmRSS` of `--pids`, summed) before opening, opens
//! `--streams` connections (in batches of `--batch`), POSTs `--body` to `--path` on each and
//! waits until every one has received the response head and its first body bytes; then
//! reads the resident set again after a short settle, prints one JSON line and closes
//! everything. Bounded: gives up after `--timeout-secs`. 127.0.0.1 only.
//!
//! ```text
//! bench_hold_streams --addr 127.0.0.1:18320 --path /slow/v1/responses --body req.json \
//!     --streams 2000 --pids 1234[,5678] [--batch 100] [--settle-ms 1500] [--timeout-secs 60]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{arg, open_in_batches, rss_kib, Common, Progress};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Open one stream and keep reading it; `ready` counts streams whose body has started.
async fn hold(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    ready: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if s.write_all(&request).await.is_err() {
        failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut buf = vec![0u8; 4096];
    let mut head = Vec::new();
    let mut started = false;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if !started {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            Ok(n) => {
                if started {
                    continue;
                }
                head.extend_from_slice(&buf[..n]);
                if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    if !head.starts_with(b"HTTP/1.1 200") {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    if head.len() > end + 4 {
                        started = true;
                        head = Vec::new();
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let c = Common::parse(&args, 60);
    let body = std::fs::read(arg(&args, "--body").expect("--body FILE")).expect("read --body");
    let streams: usize = arg(&args, "--streams").map_or(2000, |v| v.parse().unwrap());
    let (addr, path) = (c.addr, &c.path);
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async move {
        let start = Instant::now();
        let before = rss_kib(&c.pids);
        let progress = Progress::default();
        let spawn = || {
            let p = progress.clone();
            tokio::spawn(hold(addr, Arc::clone(&request), p.ready, p.failed))
        };
        let tasks = open_in_batches(streams, &c, start, &progress, spawn, |_| {}).await;
        let open_secs = start.elapsed().as_secs_f64();
        tokio::time::sleep(c.settle).await;
        let during = rss_kib(&c.pids);
        let (open, fails) = (progress.ready(), progress.failed());
        for t in &tasks {
            t.abort();
        }
        let per_stream = if open > 0 {
            (during.saturating_sub(before)) as f64 / open as f64
        } else {
            0.0
        };
        format!(
            "{{\"streams_requested\":{streams},\"streams_open\":{open},\"failed\":{fails},\"rss_before_kib\":{before},\"rss_open_kib\":{during},\"kib_per_stream\":{per_stream:.2},\"open_secs\":{open_secs:.2}}}"
        )
    });
    println!("{result}");
}
