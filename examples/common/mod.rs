//! What the memory benches share (`bench_hold_streams`, `bench_ws_sessions`): their common
//! arguments, the servers' resident set, and opening connections in batches, each batch
//! settled before the next.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The value after `name` on the command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Resident set of the processes, in KiB (0 for a process that is gone).
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum()
}

/// `--addr` (loopback only), `--path`, `--batch`, `--settle-ms`, `--timeout-secs`, `--pids`.
pub struct Common {
    pub addr: SocketAddr,
    pub path: String,
    pub batch: usize,
    pub settle: Duration,
    pub timeout: Duration,
    pub pids: Vec<u32>,
}

impl Common {
    pub fn parse(args: &[String], default_timeout_secs: u64) -> Self {
        let addr: SocketAddr = arg(args, "--addr")
            .expect("--addr HOST:PORT")
            .parse()
            .expect("--addr HOST:PORT");
        assert!(addr.ip().is_loopback(), "loopback only");
        let number = |name: &str, default: u64| -> u64 {
            arg(args, name).map_or(default, |v| v.parse().expect(name))
        };
        Common {
            addr,
            path: arg(args, "--path").unwrap_or_else(|| "/v1/responses".into()),
            batch: number("--batch", 100) as usize,
            settle: Duration::from_millis(number("--settle-ms", 1500)),
            timeout: Duration::from_secs(number("--timeout-secs", default_timeout_secs)),
            pids: arg(args, "--pids")
                .expect("--pids PID[,PID]")
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().expect("--pids"))
                .collect(),
        }
    }
}

/// Counters the connections report to: ready (open as the bench wants it) or failed.
#[derive(Clone, Default)]
pub struct Progress {
    pub ready: Arc<AtomicUsize>,
    pub failed: Arc<AtomicUsize>,
}

impl Progress {
    pub fn ready(&self) -> usize {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Open `total` connections with `spawn`, `batch` at a time, each batch ready (or failed)
/// before the next, within `timeout` from `start`; `after_batch(opened)` runs after each.
pub async fn open_in_batches(
    total: usize,
    c: &Common,
    start: Instant,
    progress: &Progress,
    mut spawn: impl FnMut() -> tokio::task::JoinHandle<()>,
    mut after_batch: impl FnMut(usize),
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::with_capacity(total);
    let mut opened = 0;
    while opened < total && start.elapsed() < c.timeout {
        let n = c.batch.min(total - opened);
        for _ in 0..n {
            tasks.push(spawn());
        }
        opened += n;
        while progress.ready() + progress.failed() < opened && start.elapsed() < c.timeout {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        after_batch(opened);
    }
    tasks
}
