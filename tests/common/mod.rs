//! Shared helpers for the integration tests: the mock upstream, a handle on a
//! running proxy process, an SSE parser for the proxy's responses and a checker
//! of the Responses streaming lifecycle.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod codex;
pub mod mock_upstream;
pub mod providers;
pub mod ws;

use std::collections::BTreeMap;
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
                "match_rules": { "default": true },
            },
            {
                "name": "kimi",
                "url": format!("http://127.0.0.1:{mock_port}/kimi-base/v1"),
                "api_key": KIMI_KEY,
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

/// One SSE event of the proxy's response.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

/// A parsed proxy SSE stream.
#[derive(Debug, Clone)]
pub struct SseStream {
    pub events: Vec<SseEvent>,
    /// Whether `data: [DONE]` was seen (it must be the very last thing).
    pub done: bool,
}

impl SseStream {
    pub fn types(&self) -> Vec<String> {
        self.events.iter().map(|e| e.event.clone()).collect()
    }

    pub fn of_type(&self, ty: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.event == ty)
            .map(|e| &e.data)
            .collect()
    }

    /// The last event.
    pub fn last(&self) -> &SseEvent {
        self.events.last().expect("the stream has no events")
    }
}

/// Splits the proxy's SSE body into `(event, json)` pairs. Asserts that each
/// event has an `event:` line equal to the JSON `type`, that every block is
/// complete (ends with a blank line), and that `data: [DONE]` (if any) is the
/// last block.
pub fn parse_sse(body: &str) -> SseStream {
    let normalized = body.replace("\r\n", "\n");
    let mut events = Vec::new();
    let mut done = false;
    let mut rest = normalized.as_str();
    while !rest.is_empty() {
        let (block, tail) = match rest.find("\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => {
                if rest.trim().is_empty() {
                    break;
                }
                panic!("incomplete SSE block at the end of the stream (no blank line): {rest:?}\nfull body:\n{body}");
            }
        };
        rest = tail;
        let block = block.trim_start_matches('\n');
        if block.trim().is_empty() {
            continue;
        }
        let mut event_name: Option<String> = None;
        let mut data_lines: Vec<&str> = Vec::new();
        for line in block.lines() {
            if line.starts_with(':') {
                continue; // comment / keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => event_name = Some(value.to_owned()),
                "data" => data_lines.push(value),
                "id" | "retry" => {}
                other => panic!("unexpected SSE field {other:?} in block {block:?}"),
            }
        }
        if data_lines.is_empty() {
            // A block with no data (e.g. only comments) dispatches nothing.
            continue;
        }
        let data = data_lines.join("\n");
        assert!(
            !done,
            "an SSE block follows `data: [DONE]`: {block:?}\nfull body:\n{body}"
        );
        if data.trim() == "[DONE]" {
            done = true;
            continue;
        }
        let json: Value = serde_json::from_str(&data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {data:?}\nfull body:\n{body}"));
        let ty = json
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("SSE event JSON has no string `type`: {json}"))
            .to_owned();
        let name =
            event_name.unwrap_or_else(|| panic!("SSE event without an `event:` line: {block:?}"));
        assert_eq!(
            name, ty,
            "`event:` line differs from the JSON `type` in block {block:?}"
        );
        events.push(SseEvent {
            event: name,
            data: json,
        });
    }
    SseStream { events, done }
}

/// Event types that end a response stream.
pub const TERMINAL_EVENTS: &[&str] = &[
    "response.completed",
    "response.failed",
    "response.incomplete",
];

/// Checks the invariants of a Responses event stream and returns the terminal
/// event's JSON:
/// - the stream ends with `data: [DONE]`;
/// - the first event is `response.created`;
/// - every event has a `sequence_number`, starting at 0, strictly increasing;
/// - exactly one terminal event (completed / failed / incomplete), the last one;
/// - every `output_item.added` has exactly one matching `output_item.done`
///   (same `output_index`, after it), and no `done` without `added`;
/// - `output_text.delta`s come after their item's `output_item.added` and
///   before its `output_item.done`, and concatenate to the
///   `output_text.done` text (per `output_index` + `content_index`), which
///   also equals the text of the `output_item.done` item's content part.
pub fn check_lifecycle(stream: &SseStream) -> Value {
    let ev = &stream.events;
    let dump = || {
        ev.iter()
            .map(|e| e.data.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!ev.is_empty(), "the stream has no events");
    assert!(
        stream.done,
        "the stream does not end with `data: [DONE]`:\n{}",
        dump()
    );
    assert_eq!(
        ev[0].event,
        "response.created",
        "the first event must be response.created:\n{}",
        dump()
    );

    // Sequence numbers.
    let mut prev: Option<u64> = None;
    for (i, e) in ev.iter().enumerate() {
        let seq = e
            .data
            .get("sequence_number")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| {
                panic!(
                    "event #{i} ({}) has no sequence_number: {}",
                    e.event, e.data
                )
            });
        match prev {
            None => assert_eq!(seq, 0, "the first sequence_number must be 0"),
            Some(p) => assert!(
                seq > p,
                "sequence_number not strictly increasing at event #{i} ({}): {p} then {seq}",
                e.event
            ),
        }
        prev = Some(seq);
    }

    // Exactly one terminal event, the last one.
    let terminals: Vec<usize> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| TERMINAL_EVENTS.contains(&e.event.as_str()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        terminals.len(),
        1,
        "expected exactly one terminal event, got {:?}:\n{}",
        terminals
            .iter()
            .map(|i| ev[*i].event.clone())
            .collect::<Vec<_>>(),
        dump()
    );
    assert_eq!(
        terminals[0],
        ev.len() - 1,
        "the terminal event {} is not the last event before [DONE]:\n{}",
        ev[terminals[0]].event,
        dump()
    );

    // Output items: added/done pairing.
    let mut added: BTreeMap<u64, usize> = BTreeMap::new();
    let mut done: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, e) in ev.iter().enumerate() {
        let idx = || {
            e.data
                .get("output_index")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("{} without output_index: {}", e.event, e.data))
        };
        match e.event.as_str() {
            "response.output_item.added" => {
                let k = idx();
                assert!(
                    added.insert(k, i).is_none(),
                    "two output_item.added for output_index {k}:\n{}",
                    dump()
                );
            }
            "response.output_item.done" => {
                let k = idx();
                let a = added.get(&k).unwrap_or_else(|| {
                    panic!("output_item.done for output_index {k} without a previous output_item.added:\n{}", dump())
                });
                assert!(*a < i);
                assert!(
                    done.insert(k, i).is_none(),
                    "two output_item.done for output_index {k}:\n{}",
                    dump()
                );
            }
            _ => {}
        }
    }
    // A failed turn leaves its unfinished items without `output_item.done` (so that no
    // client keeps a fragment); every other turn finishes every item.
    let failed = ev[terminals[0]].event == "response.failed";
    for k in added.keys() {
        assert!(
            failed || done.contains_key(k),
            "output_item.added for output_index {k} has no matching output_item.done:\n{}",
            dump()
        );
    }

    // Text deltas vs. done text.
    let mut deltas: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut done_texts: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for (i, e) in ev.iter().enumerate() {
        let key = || {
            let o = e.data.get("output_index").and_then(Value::as_u64);
            let c = e.data.get("content_index").and_then(Value::as_u64);
            match (o, c) {
                (Some(o), Some(c)) => (o, c),
                _ => panic!("{} without output_index/content_index: {}", e.event, e.data),
            }
        };
        match e.event.as_str() {
            "response.output_text.delta" => {
                let k = key();
                let a = added.get(&k.0).copied().unwrap_or(usize::MAX);
                assert!(
                    a < i,
                    "output_text.delta before the output_item.added of output_index {}:\n{}",
                    k.0,
                    dump()
                );
                if let Some(d) = done.get(&k.0) {
                    assert!(i < *d, "output_text.delta after its output_item.done");
                }
                let delta = e
                    .data
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| {
                        panic!("output_text.delta without a string delta: {}", e.data)
                    });
                deltas.entry(k).or_default().push_str(delta);
            }
            "response.output_text.done" => {
                let k = key();
                let text = e
                    .data
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("output_text.done without text: {}", e.data));
                done_texts.insert(k, text.to_owned());
            }
            _ => {}
        }
    }
    for (k, text) in &deltas {
        if failed && !done_texts.contains_key(k) {
            continue; // an unfinished item of a failed turn
        }
        let done_text = done_texts.get(k).unwrap_or_else(|| {
            panic!(
                "text deltas for output_index {} content_index {} have no output_text.done:\n{}",
                k.0,
                k.1,
                dump()
            )
        });
        assert_eq!(
            text, done_text,
            "text deltas do not concatenate to the done text"
        );
        // The item's final content part carries the same text.
        let item_done = &ev[done[&k.0]].data;
        let part_text = item_done
            .pointer(&format!("/item/content/{}/text", k.1))
            .and_then(Value::as_str);
        assert_eq!(
            part_text,
            Some(text.as_str()),
            "output_item.done's content[{}].text differs from the streamed text: {}",
            k.1,
            item_done
        );
    }

    ev[terminals[0]].data.clone()
}

/// Concatenation of all `response.output_text.delta` deltas.
pub fn streamed_text(stream: &SseStream) -> String {
    stream
        .of_type("response.output_text.delta")
        .iter()
        .filter_map(|e| e.get("delta").and_then(Value::as_str))
        .collect()
}

/// The completed items of a stream (`output_item.done` items, in order).
pub fn done_items(stream: &SseStream) -> Vec<Value> {
    stream
        .of_type("response.output_item.done")
        .iter()
        .map(|e| e["item"].clone())
        .collect()
}

/// The assistant text of a Response object's `output` (all `output_text` parts
/// of all `message` items).
pub fn response_output_text(response: &Value) -> String {
    let mut out = String::new();
    for item in response["output"].as_array().into_iter().flatten() {
        if item["type"] == "message" {
            for part in item["content"].as_array().into_iter().flatten() {
                if part["type"] == "output_text" {
                    out.push_str(part["text"].as_str().unwrap_or_default());
                }
            }
        }
    }
    out
}

/// Asserts the `{"error": {"message", "type", "param", "code"}}` shape and
/// returns the inner error object.
pub fn assert_openai_error_shape(body: &Value) -> Value {
    let err = body
        .get("error")
        .unwrap_or_else(|| panic!("error body without `error`: {body}"));
    assert!(
        err.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.is_empty()),
        "error.message must be a non-empty string: {body}"
    );
    assert!(
        err.get("type").and_then(Value::as_str).is_some(),
        "error.type must be a string: {body}"
    );
    for key in ["param", "code"] {
        assert!(
            err.get(key).is_some(),
            "error.{key} must be present (may be null): {body}"
        );
    }
    err.clone()
}
