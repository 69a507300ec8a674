//! Shared helpers for the integration tests that run the proxy: the mock upstream, a handle
//! on a running proxy process, HTTP helpers. The pure helpers (the SSE parser, the lifecycle
//! checker, the convert helpers) are in [`core`], which the pure suites include on their own.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod codex;
pub mod core;
pub mod mock_upstream;
pub mod providers;
pub mod ws;

pub use self::core::*;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use self::mock_upstream::MockUpstream;

/// Timeout of every HTTP call a test makes.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the proxy may take to answer `/health` after spawning.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// API keys of the two backends of the default config.
pub const MAIN_KEY: &str = "sk-test-main";
pub const KIMI_KEY: &str = "sk-test-kimi";
/// The model the `main` backend forces.
pub const MAIN_MODEL: &str = "mock-model";

/// Path of the proxy binary built by cargo for the integration tests.
pub fn proxy_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_codex-convert-proxy"))
}

/// A free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// An HTTP client for talking to the proxy: 20 s timeout, never through an
/// environment proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .no_proxy()
        .build()
        .expect("build reqwest client")
}

/// The repository root (`CARGO_MANIFEST_DIR`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a recorded Codex 0.169 fixture.
pub fn fixture_path(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures/codex-0.169").join(name)
}

/// A recorded Codex 0.169 fixture, parsed.
pub fn fixture(name: &str) -> Value {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse fixture {}: {e}", path.display()))
}

/// What a probe of [`eventually`] reports: done (`true`, `Some`, `Ok`) or not yet (`false`,
/// `None`, `Err` with what it saw, which the panic shows).
pub trait Probe {
    type Output;
    fn done(self) -> Result<Self::Output, String>;
}

impl Probe for bool {
    type Output = ();
    fn done(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".into())
        }
    }
}

impl<T> Probe for Option<T> {
    type Output = T;
    fn done(self) -> Result<T, String> {
        self.ok_or_else(|| "None".into())
    }
}

impl<T> Probe for Result<T, String> {
    type Output = T;
    fn done(self) -> Result<T, String> {
        self
    }
}

/// How often [`eventually`] and [`eventually_sync`] probe.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// Runs `probe` until it reports done and returns what it reported; panics with `what` (and
/// the probe's last report) when it has not within `deadline`. The probe runs at least once,
/// and once more at the deadline.
pub async fn eventually<P, F, Fut>(
    what: impl std::fmt::Display,
    deadline: Duration,
    mut probe: F,
) -> P::Output
where
    P: Probe,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = P>,
{
    let start = Instant::now();
    loop {
        let last = match probe().await.done() {
            Ok(v) => return v,
            Err(last) => last,
        };
        if start.elapsed() >= deadline {
            panic!("{what}: not within {deadline:?} (last probe: {last})");
        }
        tokio::time::sleep(PROBE_EVERY.min(deadline.saturating_sub(start.elapsed()))).await;
    }
}

/// [`eventually`] for a blocking probe (sleeps the thread between probes).
pub fn eventually_sync<P: Probe>(
    what: impl std::fmt::Display,
    deadline: Duration,
    mut probe: impl FnMut() -> P,
) -> P::Output {
    let start = Instant::now();
    loop {
        let last = match probe().done() {
            Ok(v) => return v,
            Err(last) => last,
        };
        if start.elapsed() >= deadline {
            panic!("{what}: not within {deadline:?} (last probe: {last})");
        }
        std::thread::sleep(PROBE_EVERY.min(deadline.saturating_sub(start.elapsed())));
    }
}

/// A Codex run's description, then the proxy's stderr (the context of a failed assertion).
pub fn context_of(run: &codex::CodexRun, proxy: &ProxyProcess) -> String {
    proxy.context(run.describe())
}

/// `s` without its ANSI colour sequences (`ESC [ … m`; the proxy colours its stderr).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits for `child` at most `timeout`, killing it (and panicking with `what`) after that.
pub fn wait_bounded(mut child: Child, timeout: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("wait") {
            Some(status) => return status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {timeout:?} (killed)");
            }
            None => std::thread::sleep(PROBE_EVERY),
        }
    }
}

/// A minimal Responses request with one user message.
pub fn simple_request(model: &str, text: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "input": [{
            "type": "message",
            "role": "user",
            "content": [{ "type": "input_text", "text": text }],
        }],
    })
}

/// A test proxy config: `listen` on `port`, logs in `log_dir`, one worker thread, a 1 s
/// shutdown grace, and `backends`. Callers add other keys to the object it returns.
pub fn test_config(port: u16, log_dir: &Path, backends: Value) -> Value {
    json!({
        "listen": format!("127.0.0.1:{port}"),
        "log_dir": log_dir.to_string_lossy(),
        "threads": 1,
        "grace_period_seconds": 1,
        "backends": backends,
    })
}

/// The default two-backend config of the brief: `main` (default, model
/// override) at `/v1` of the mock and `kimi` (prefix `/kimi`, no model) at
/// `/kimi-base/v1` of the mock.
pub fn default_config(listen_port: u16, log_dir: &Path, mock_port: u16) -> Value {
    test_config(
        listen_port,
        log_dir,
        json!([
            {
                "name": "main",
                "url": format!("http://127.0.0.1:{mock_port}/v1"),
                "api_key": MAIN_KEY,
                "model": MAIN_MODEL,
                // One attempt: a scripted error reply is the turn's answer (retries and
                // failover are tests/failover.rs's).
                "retries": 0,
                "match_rules": { "default": true },
            },
            {
                "name": "kimi",
                "url": format!("http://127.0.0.1:{mock_port}/kimi-base/v1"),
                "api_key": KIMI_KEY,
                "retries": 0,
                "match_rules": { "path_prefix": "/kimi" },
            },
        ]),
    )
}

/// A running proxy process. Killed on drop.
pub struct ProxyProcess {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl ProxyProcess {
    /// Starts the proxy with [`default_config`] pointing at the mock.
    pub async fn start(mock: &MockUpstream) -> Self {
        let mock_port = mock.port();
        Self::start_with(move |port, log_dir| default_config(port, log_dir, mock_port)).await
    }

    /// Starts the proxy with [`test_config`] and these backends.
    pub async fn start_with_backends(backends: Value) -> Self {
        Self::start_with(move |port, log_dir| test_config(port, log_dir, backends)).await
    }

    /// Starts the proxy with a config built from `(listen port, log dir)`.
    /// Waits (bounded) until `GET /health` answers 200; panics with the
    /// proxy's stderr otherwise.
    pub async fn start_with(make_config: impl FnOnce(u16, &Path) -> Value) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().join("logs");
        std::fs::create_dir_all(&log_dir).expect("create log dir");
        let port = free_port();
        let config = make_config(port, &log_dir);
        let config_path = dir.path().join("config.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("serialize config"),
        )
        .expect("write config");
        let stdout_path = dir.path().join("proxy.stdout");
        let stderr_path = dir.path().join("proxy.stderr");
        let stdout = File::create(&stdout_path).expect("create stdout file");
        let stderr = File::create(&stderr_path).expect("create stderr file");
        let child = Command::new(proxy_bin())
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .env("RUST_BACKTRACE", "1")
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", proxy_bin().display()));
        let mut proc = ProxyProcess {
            child,
            port,
            dir,
            config_path,
            stdout_path,
            stderr_path,
        };
        proc.wait_healthy().await;
        proc
    }

    async fn wait_healthy(&mut self) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(1000))
            .no_proxy()
            .build()
            .expect("client");
        let url = self.url("/health");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the proxy exited during start-up with {status}\n--- stderr ---\n{}\n--- stdout ---\n{}",
                    self.stderr(),
                    self.stdout()
                );
            }
            match client.get(&url).send().await {
                Ok(r) if r.status().as_u16() == 200 => return,
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = format!("{e}"),
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the proxy did not answer GET /health with 200 within {STARTUP_TIMEOUT:?} (last: {last})\n--- stderr ---\n{}\n--- stdout ---\n{}",
                    self.stderr(),
                    self.stdout()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// What the proxy wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `head`, then what the proxy wrote to stderr so far (the context of a failed assertion).
    pub fn context(&self, head: impl std::fmt::Display) -> String {
        format!("{head}\n--- proxy stderr ---\n{}", self.stderr())
    }

    /// What the proxy wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Every file under the log dir, concatenated (for leak checks).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("logs")) {
            for e in entries.flatten() {
                if let Ok(s) = std::fs::read_to_string(e.path()) {
                    out.push_str(&s);
                }
            }
        }
        out
    }
}

impl ProxyProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits (bounded) for the process to exit; `None` when it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct FullResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    /// `Some(error)` when reading the body failed (e.g. the connection was
    /// aborted); `body` then holds what arrived before.
    pub body_error: Option<String>,
}

impl FullResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body (HTTP {}) is not JSON: {e}\n{}",
                self.status, self.body
            )
        })
    }

    /// Panics when the body could not be read to its end.
    pub fn assert_body_complete(&self) {
        assert!(
            self.body_error.is_none(),
            "reading the response body failed: {:?}\npartial body:\n{}",
            self.body_error,
            self.body
        );
    }
}

/// Reads a response to its end, keeping what arrived when it fails.
pub async fn read_full(resp: reqwest::Response) -> FullResponse {
    use futures_util::StreamExt;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut bytes = Vec::new();
    let mut body_error = None;
    let mut stream = resp.bytes_stream();
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => bytes.extend_from_slice(&b),
            Err(e) => {
                body_error = Some(format!("{e:?}"));
                break;
            }
        }
    }
    FullResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        body_error,
    }
}

/// POSTs JSON with the given extra headers and reads the whole response.
pub async fn post_json(url: &str, body: &Value, headers: &[(&str, &str)]) -> FullResponse {
    let mut req = client().post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url} failed: {e:?}"));
    read_full(resp).await
}

/// POSTs a Responses request the way Codex does (Bearer token, SSE accept).
pub async fn post_responses(url: &str, body: &Value) -> FullResponse {
    post_json(
        url,
        body,
        &[
            ("authorization", "Bearer client-key-not-for-upstream"),
            ("accept", "text/event-stream"),
        ],
    )
    .await
}

/// The Python of the OpenAI SDK venv (`scripts/sdk-venv.sh`), or `$SDK_PYTHON`.
pub fn sdk_python() -> PathBuf {
    let path = match std::env::var_os("SDK_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".venv-sdk/bin/python"),
    };
    assert!(
        path.exists(),
        "the SDK venv was not found at {}: run scripts/sdk-venv.sh (make test does) to create \
         .venv-sdk with the OpenAI SDK, or set SDK_PYTHON",
        path.display()
    );
    path
}

/// The proxy answers `/health` with 200.
pub async fn health_ok(proxy: &ProxyProcess) {
    let r = client().get(proxy.url("/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// The proxy's `/metrics` text.
pub async fn metrics_text(proxy: &ProxyProcess) -> String {
    client()
        .get(proxy.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}

/// `GET /stats` as JSON.
pub async fn stats_json(proxy: &ProxyProcess) -> Value {
    client()
        .get(proxy.url("/stats"))
        .send()
        .await
        .expect("/stats")
        .json()
        .await
        .expect("/stats is JSON")
}

/// The value of an unlabelled metric in Prometheus text (panics when absent).
pub fn metric_value(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in:\n{metrics}"))
}

/// A `/proc/<pid>/status` value in kB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn proc_status(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A process's open fds and RSS (kB) once both are within their bounds (connections being
/// closed take a moment to go), or, after a bounded wait, as they are then: the caller
/// asserts on what it returns.
pub async fn settle(pid: u32, fds_bound: usize, rss_bound: u64) -> (usize, u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (fds, rss) = (open_fds(pid), proc_status(pid, "VmRSS:"));
        if (fds <= fds_bound && rss < rss_bound) || Instant::now() >= deadline {
            return (fds, rss);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The metric family of the proxy's dialect guard: one sample per item type, content-part
/// type, tool type or top-level member a request carried that the proxy did not convert.
pub const UNCONVERTED_METRIC: &str = "ccp_unconverted_total";

/// The `ccp_unconverted_total` samples above zero in Prometheus text, as
/// `(kind, type, value)`, sorted. No such family (a proxy that never left anything
/// unconverted, or one without the guard) is no sample.
pub fn unconverted_samples(metrics: &str) -> Vec<(String, String, f64)> {
    let lines = metrics.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("/metrics is not valid Prometheus text ({e}):\n{metrics}"));
    let mut out: Vec<(String, String, f64)> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == UNCONVERTED_METRIC)
        .filter_map(|s| {
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            };
            // NaN (an unreadable sample) counts as unconverted too.
            (v.is_nan() || v > 0.0).then(|| {
                (
                    s.labels.get("kind").unwrap_or("?").to_owned(),
                    s.labels.get("type").unwrap_or("?").to_owned(),
                    v,
                )
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

/// The dialect guard: scrapes `{proxy_base_url}/metrics` and fails listing every
/// `ccp_unconverted_total` sample above zero (every item, part, tool or member type a client
/// sent that the proxy did not convert). Call it after a real-Codex run.
pub async fn assert_no_unconverted(proxy_base_url: &str) {
    assert_unconverted_exactly(proxy_base_url, &[]).await;
}

/// The dialect guard for a run that is known to send something the proxy leaves out on
/// purpose (e.g. Codex's default tool set offers the hosted `web_search` tool, which no
/// Chat provider can run): the `(kind, type)` pairs above zero must be exactly `expected`.
pub async fn assert_unconverted_exactly(proxy_base_url: &str, expected: &[(&str, &str)]) {
    let url = format!("{}/metrics", proxy_base_url.trim_end_matches('/'));
    let resp = client()
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "GET {url}");
    let text = resp.text().await.expect("metrics body");
    let left = unconverted_samples(&text);
    let unexpected: Vec<String> = left
        .iter()
        .filter(|(k, t, _)| !expected.iter().any(|(ek, et)| ek == k && et == t))
        .map(|(k, t, v)| format!("  kind={k} type={t}: {v}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "the proxy left {} kind(s) of input unconverted (ccp_unconverted_total):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    for (k, t) in expected {
        assert!(
            left.iter().any(|(lk, lt, _)| lk == k && lt == t),
            "expected kind={k} type={t} in ccp_unconverted_total, got {left:?}"
        );
    }
}

/// Upper bound of the Python SDK check.
pub const SDK_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs tests/sdk/strict_events.py on `dir` (killed after [`SDK_CHECK_TIMEOUT`]): its exit
/// status and report.
pub fn run_sdk_check(dir: &Path) -> (std::process::ExitStatus, String) {
    let python = sdk_python();
    let script = repo_root().join("tests/sdk/strict_events.py");
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("strict_events.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", python.display()));
    let deadline = Instant::now() + SDK_CHECK_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SDK check did not finish within {SDK_CHECK_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

/// Runs the SDK check on `dir`; panics with its report on any problem.
pub fn run_strict_check(dir: &Path) {
    let (status, report) = run_sdk_check(dir);
    eprintln!("{report}");
    assert!(
        status.success(),
        "the OpenAI SDK's models reject the proxy's output ({status}):\n{report}"
    );
}
