//! Running the real Codex CLI (0.169.0) offline in tests, and a recording tap that sits
//! between Codex and the proxy to capture the Responses requests Codex sends.
//!
//! The Codex binary comes from `$CODEX_BIN` or
//! `$CARGO_MANIFEST_DIR/.codex-cli/node_modules/.bin/codex` (`make codex`,
//! scripts/install-codex.sh). A missing binary FAILS the tests.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;

use super::repo_root;

/// Upper bound of one Codex run (killed after it).
pub const CODEX_TIMEOUT: Duration = Duration::from_secs(120);
/// The key Codex sends to the proxy (must never reach the provider).
pub const CODEX_CLIENT_KEY: &str = "codex-client-dummy-key";

pub fn codex_bin() -> PathBuf {
    let path = match std::env::var_os("CODEX_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".codex-cli/node_modules/.bin/codex"),
    };
    assert!(
        path.exists(),
        "the Codex CLI was not found at {}: run `make codex` (scripts/install-codex.sh) \
         to install @openai/codex@0.169.0 into .codex-cli/, or set CODEX_BIN",
        path.display()
    );
    path
}

/// `$CARGO_MANIFEST_DIR/.codex-cli-0.171/node_modules/.bin/codex` (or `$CODEX_BIN_0171`):
/// the Codex version with WebSocket mode and remote compaction v2 as recorded in
/// tests/fixtures/codex-0.171.
pub fn codex_bin_0171() -> PathBuf {
    let path = match std::env::var_os("CODEX_BIN_0171") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(".codex-cli-0.171/node_modules/.bin/codex"),
    };
    assert!(
        path.exists(),
        "the Codex CLI 0.171 was not found at {}: run `make codex` (scripts/install-codex.sh) \
         to install @openai/codex@0.171.0 into .codex-cli-0.171/, or set CODEX_BIN_0171",
        path.display()
    );
    path
}

/// How Codex reaches the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodexProvider {
    /// A `model_providers.proxy` block (HTTP only, Codex's local compaction).
    Custom,
    /// The same block with `supports_websockets = true`.
    CustomWebSocket,
    /// Codex's built-in OpenAI provider with `openai_base_url` pointing at the proxy: it
    /// speaks WebSocket first and compacts remotely.
    BuiltIn,
}

/// How to run `codex exec`.
#[derive(Debug, Clone)]
pub struct CodexOptions {
    /// Codex 0.171 instead of 0.169.
    pub v0171: bool,
    pub provider: CodexProvider,
    /// The model name Codex uses.
    pub model: String,
    /// Set no `model` at all (`model` is then ignored): Codex uses its default model
    /// (0.171: `gpt-6.2-sol`), whose bundled catalog entry has `use_responses_lite: true`,
    /// so Codex speaks the Responses-lite dialect with code mode (tools in an
    /// `additional_tools` input item, the custom `exec` tool).
    pub no_model: bool,
    /// Codex's default tool set: without the `--disable plugins/remote_plugin/apps/goals/
    /// multi_agent` flags and without `web_search="disabled"`.
    pub default_tools: bool,
    /// Extra `-c key=value` overrides.
    pub config: Vec<String>,
    /// A prepared `CODEX_HOME` (e.g. holding a model catalog); a fresh temp dir otherwise.
    pub home: Option<PathBuf>,
    pub timeout: Duration,
}

impl Default for CodexOptions {
    fn default() -> Self {
        CodexOptions {
            v0171: false,
            provider: CodexProvider::Custom,
            model: "glm-5".to_owned(),
            no_model: false,
            default_tools: false,
            config: Vec::new(),
            home: None,
            timeout: CODEX_TIMEOUT,
        }
    }
}

/// Result of one `codex exec --json` run.
#[derive(Debug)]
pub struct CodexRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The JSON lines of stdout.
    pub events: Vec<Value>,
    pub elapsed: Duration,
}

impl CodexRun {
    pub fn describe(&self) -> String {
        format!(
            "codex exited with {} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Error events, ignoring the harmless "Model metadata ... not found" warning.
    pub fn errors(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| {
                let ty = e["type"].as_str().unwrap_or_default();
                if ty == "error" || ty == "turn.failed" {
                    return true;
                }
                if ty == "item.completed" || ty == "item.started" {
                    let item = &e["item"];
                    if item["type"] == "error" {
                        let msg = item["message"].as_str().unwrap_or_default();
                        return !msg.contains("Model metadata");
                    }
                }
                false
            })
            .collect()
    }

    /// Texts of the completed `agent_message` items.
    pub fn agent_messages(&self) -> Vec<String> {
        self.completed_items("agent_message")
            .iter()
            .filter_map(|i| i["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The completed items of this type (`command_execution`, `file_change`, `reasoning`...).
    pub fn completed_items(&self, ty: &str) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == "item.completed" && e["item"]["type"] == ty)
            .map(|e| e["item"].clone())
            .collect()
    }

    /// Asserts exit status 0, no error event and a `turn.completed`.
    pub fn assert_success(&self, context: &str) {
        assert!(self.status.success(), "{}\n{context}", self.describe());
        let errors = self.errors();
        assert!(
            errors.is_empty(),
            "codex reported errors: {errors:?}\n{}\n{context}",
            self.describe()
        );
        assert!(
            self.events.iter().any(|e| e["type"] == "turn.completed"),
            "no turn.completed event\n{}\n{context}",
            self.describe()
        );
    }
}

/// Runs `codex exec --json` (offline flags of PROTOCOL.md §1) against `base_url` in
/// `workdir`. Killed after `opts.timeout`.
pub async fn run_codex(
    base_url: &str,
    workdir: &Path,
    prompt: &str,
    opts: &CodexOptions,
) -> CodexRun {
    let bin = if opts.v0171 {
        codex_bin_0171()
    } else {
        codex_bin()
    };
    let base_url = base_url.to_owned();
    let workdir = workdir.to_owned();
    let prompt = prompt.to_owned();
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || {
        run_codex_blocking(&bin, &base_url, &workdir, &prompt, &opts)
    })
    .await
    .expect("codex runner thread panicked")
}

fn run_codex_blocking(
    bin: &Path,
    base_url: &str,
    workdir: &Path,
    prompt: &str,
    opts: &CodexOptions,
) -> CodexRun {
    let fresh_home = tempfile::tempdir().expect("codex home");
    let home = opts
        .home
        .clone()
        .unwrap_or_else(|| fresh_home.path().to_owned());
    let out_dir = tempfile::tempdir().expect("codex output dir");
    let stdout_path = out_dir.path().join("codex.stdout");
    let stderr_path = out_dir.path().join("codex.stderr");
    let ws = if opts.provider == CodexProvider::CustomWebSocket {
        ", supports_websockets=true"
    } else {
        ""
    };
    let provider = format!(
        "model_providers.proxy={{name=\"proxy\", base_url=\"{base_url}\", wire_api=\"responses\", \
         env_key=\"PROXY_API_KEY\", request_max_retries=0, stream_max_retries=0, \
         stream_idle_timeout_ms=30000{ws}}}"
    );
    let mut cmd = Command::new(bin);
    cmd.arg("exec")
        .arg("--json")
        .args(["--skip-git-repo-check", "--ephemeral", "--color", "never"])
        .arg("-C")
        .arg(workdir);
    if !opts.no_model {
        cmd.args(["-c", &format!("model=\"{}\"", opts.model)]);
    }
    if opts.provider == CodexProvider::BuiltIn {
        cmd.args(["-c", &format!("openai_base_url=\"{base_url}\"")]);
    } else {
        cmd.args(["-c", "model_provider=proxy"])
            .args(["-c", &provider]);
    }
    cmd.args(["-c", "approval_policy=never"])
        .args(["-c", "sandbox_mode=danger-full-access"])
        .args(["-c", "check_for_update_on_startup=false"])
        .args(["-c", "analytics.enabled=false"])
        .args(["-c", "feedback.enabled=false"]);
    if !opts.default_tools {
        cmd.args(["--disable", "plugins"])
            .args(["--disable", "remote_plugin"])
            .args(["--disable", "apps"])
            .args(["--disable", "goals"])
            .args(["--disable", "multi_agent"])
            .args(["-c", "web_search=\"disabled\""]);
    }
    for c in &opts.config {
        cmd.args(["-c", c]);
    }
    cmd.arg(prompt)
        .env("CODEX_HOME", &home)
        // The shell commands Codex runs are login shells (`bash -lc`): with the machine's
        // own HOME they run its profile, whose `pyenv rehash` races between two commands
        // run at once and writes its complaint into their output.
        .env("HOME", &home)
        .env("PROXY_API_KEY", CODEX_CLIENT_KEY)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env_remove("OPENAI_API_KEY")
        .env_remove("CODEX_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            File::create(&stdout_path).expect("stdout file"),
        ))
        .stderr(Stdio::from(
            File::create(&stderr_path).expect("stderr file"),
        ));
    if opts.provider == CodexProvider::BuiltIn {
        // The built-in provider's key (what `codex login --with-api-key` would store).
        cmd.env("OPENAI_API_KEY", CODEX_CLIENT_KEY);
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let deadline = started + opts.timeout;
    let status = loop {
        match child.try_wait().expect("wait for codex") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "codex did not finish within {:?} (killed)\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    opts.timeout,
                    std::fs::read_to_string(&stdout_path).unwrap_or_default(),
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let elapsed = started.elapsed();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let events = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    CodexRun {
        status,
        stdout,
        stderr,
        events,
        elapsed,
    }
}

/// Writes a Codex model catalog into `dir` (`models.json`) for the model `slug`, based on
/// the recorded example (every field Codex's strict schema wants), with `overrides` merged
/// into the entry. Returns its path, for `-c model_catalog_json="..."`.
pub fn write_model_catalog(dir: &Path, slug: &str, overrides: &Value) -> PathBuf {
    let mut catalog = super::fixture("model-catalog-example.json");
    let entry = &mut catalog["models"][0];
    entry["slug"] = Value::String(slug.to_owned());
    entry["display_name"] = Value::String(slug.to_owned());
    if let (Some(entry), Some(o)) = (entry.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            entry.insert(k.clone(), v.clone());
        }
    }
    let path = dir.join("models.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&catalog).expect("catalog json"),
    )
    .expect("write model catalog");
    path
}

/// A Responses request Codex sent, as the tap saw it.
#[derive(Debug, Clone)]
pub struct TappedRequest {
    pub path: String,
    pub body: Value,
    /// The body as sent (key order kept).
    pub raw: String,
    /// HTTP status the proxy answered.
    pub status: u16,
}

struct TapState {
    target: String,
    client: reqwest::Client,
    requests: Mutex<Vec<TappedRequest>>,
}

/// A recording pass-through between Codex and the proxy: records every request body
/// (Codex's Responses request, before any conversion), forwards it to the proxy and streams
/// the answer back unchanged. A WebSocket upgrade is refused with 426 (not recorded): Codex
/// then uses HTTP at once, so a provider with `supports_websockets` can be tapped too.
pub struct ResponsesTap {
    addr: SocketAddr,
    state: Arc<TapState>,
    task: tokio::task::JoinHandle<()>,
}

impl ResponsesTap {
    /// A tap forwarding to `target_base` (e.g. `http://127.0.0.1:PROXY`): a request for
    /// `/v1/responses` goes to `{target_base}/v1/responses`.
    pub async fn start(target_base: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind tap");
        let addr = listener.local_addr().expect("tap addr");
        let state = Arc::new(TapState {
            target: target_base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .timeout(CODEX_TIMEOUT)
                .build()
                .expect("tap client"),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(tap_handle)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ResponsesTap { addr, state, task }
    }

    /// `http://127.0.0.1:TAP{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<TappedRequest> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for ResponsesTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tap_handle(State(state): State<Arc<TapState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.headers.contains_key(axum::http::header::UPGRADE) {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::UPGRADE_REQUIRED;
        return resp;
    }
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let url = format!(
        "{}{}",
        state.target,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut fwd = state.client.request(parts.method.clone(), &url);
    for (k, v) in &parts.headers {
        if matches!(
            k.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        fwd = fwd.header(k, v);
    }
    let sent = fwd.body(bytes.clone()).send().await;
    let status = sent.as_ref().map(|r| r.status().as_u16()).unwrap_or(502);
    state.requests.lock().unwrap().push(TappedRequest {
        path,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&bytes).into_owned(),
        status,
    });
    match sent {
        Ok(upstream) => {
            let headers = upstream.headers().clone();
            let mut resp = Response::new(Body::from_stream(upstream.bytes_stream()));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (k, v) in &headers {
                if matches!(
                    k.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    continue;
                }
                resp.headers_mut().insert(k.clone(), v.clone());
            }
            resp
        }
        Err(e) => {
            let mut resp = Response::new(Body::from(format!(
                "{{\"error\":{{\"message\":\"tap: {e}\",\"type\":\"server_error\",\"param\":null,\"code\":null}}}}"
            )));
            *resp.status_mut() = StatusCode::BAD_GATEWAY;
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    }
}

/// Whether the test run should rewrite the recorded fixtures (`CODEX_RECORD_FIXTURES=1`).
/// Off by default so that `cargo test` leaves the checked-in files alone (a missing file is
/// still written).
pub fn recording_fixtures() -> bool {
    std::env::var("CODEX_RECORD_FIXTURES").is_ok_and(|v| v == "1")
}

/// Writes a tapped request body (pretty-printed, key order kept) to
/// `tests/fixtures/codex-0.169/{name}` when recording or when the file does not exist yet.
pub fn record_fixture(name: &str, req: &TappedRequest) {
    let path = super::fixture_path(name);
    if !recording_fixtures() && path.exists() {
        return;
    }
    let mut text = pretty_json(&req.raw);
    let reparsed: Value = serde_json::from_str(&text).expect("pretty fixture is JSON");
    assert_eq!(reparsed, req.body, "pretty-printing changed the request");
    text.push('\n');
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    eprintln!("recorded {}", path.display());
}

/// Pretty-prints JSON text with two-space indents, keeping the key order (serde_json's
/// `Value` would sort the keys).
pub fn pretty_json(raw: &str) -> String {
    fn newline(out: &mut String, depth: usize) {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                // Skip whitespace to see whether the container is empty.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// One text frame a [`WsTap`] forwarded.
#[derive(Debug, Clone)]
pub struct TappedFrame {
    /// Which socket (0, 1, ... in accept order).
    pub conn: usize,
    /// `true`: from Codex to the proxy; `false`: from the proxy to Codex.
    pub from_client: bool,
    /// The frame's JSON (`Value::Null` when it is not JSON).
    pub body: Value,
}

/// A WebSocket upgrade request as a [`WsTap`] saw it: (path, headers lower-cased).
pub type Upgrade = (String, Vec<(String, String)>);

struct WsTapState {
    target: String,
    frames: Mutex<Vec<TappedFrame>>,
    /// The upgrade request of each socket: (path, headers lower-cased).
    upgrades: Mutex<Vec<Upgrade>>,
}

/// A recording WebSocket pass-through between Codex and the proxy: accepts Codex's
/// upgrade, opens a socket to the proxy with the same path and headers (no
/// permessage-deflate on either side: Codex works with it declined), and forwards every
/// frame both ways, recording the text frames. It speaks only WebSocket: a plain HTTP
/// request (Codex falling back) fails its handshake, and the test with it.
pub struct WsTap {
    addr: SocketAddr,
    state: Arc<WsTapState>,
    task: tokio::task::JoinHandle<()>,
}

impl WsTap {
    /// A tap forwarding to `target_base` (e.g. `ws://127.0.0.1:PROXY`).
    pub async fn start(target_base: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ws tap");
        let addr = listener.local_addr().expect("ws tap addr");
        let state = Arc::new(WsTapState {
            target: target_base.trim_end_matches('/').to_owned(),
            frames: Mutex::new(Vec::new()),
            upgrades: Mutex::new(Vec::new()),
        });
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut conn = 0usize;
            while let Ok((tcp, _)) = listener.accept().await {
                let st = Arc::clone(&st);
                let id = conn;
                conn += 1;
                tokio::spawn(async move {
                    ws_tap_conn(st, id, tcp).await;
                });
            }
        });
        WsTap { addr, state, task }
    }

    /// `http://127.0.0.1:TAP{path}` (what Codex is given as its base URL).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The text frames forwarded so far, in order.
    pub fn frames(&self) -> Vec<TappedFrame> {
        self.state.frames.lock().unwrap().clone()
    }

    /// The frames Codex sent (its `response.create` messages), in order.
    pub fn client_frames(&self) -> Vec<TappedFrame> {
        self.frames()
            .into_iter()
            .filter(|f| f.from_client)
            .collect()
    }

    /// The upgrade requests seen: (path, headers).
    pub fn upgrades(&self) -> Vec<Upgrade> {
        self.state.upgrades.lock().unwrap().clone()
    }
}

impl Drop for WsTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn ws_tap_conn(state: Arc<WsTapState>, conn: usize, tcp: tokio::net::TcpStream) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::handshake::server::{
        Request as WsRequest, Response as WsResponse,
    };
    use tokio_tungstenite::tungstenite::Message;

    let seen: Arc<Mutex<Option<Upgrade>>> = Arc::new(Mutex::new(None));
    let seen_cb = Arc::clone(&seen);
    // tungstenite's handshake callback type returns its (large) error response.
    #[allow(clippy::result_large_err)]
    let callback = move |req: &WsRequest, resp: WsResponse| {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        *seen_cb.lock().unwrap() = Some((req.uri().to_string(), headers));
        Ok(resp)
    };
    let Ok(client) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let Some((path, headers)) = seen.lock().unwrap().take() else {
        return;
    };
    state
        .upgrades
        .lock()
        .unwrap()
        .push((path.clone(), headers.clone()));
    let target = format!("{}{}", state.target, path);
    let Ok(mut req) = target.as_str().into_client_request() else {
        return;
    };
    for (k, v) in &headers {
        if matches!(
            k.as_str(),
            "host"
                | "connection"
                | "upgrade"
                | "content-length"
                | "sec-websocket-key"
                | "sec-websocket-version"
                | "sec-websocket-extensions"
                | "sec-websocket-accept"
        ) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            req.headers_mut().append(name, value);
        }
    }
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await;
    let Ok(Ok((upstream, _))) = connected else {
        return;
    };
    let (mut c_tx, mut c_rx) = client.split();
    let (mut u_tx, mut u_rx) = upstream.split();
    let record = |from_client: bool, m: &Message| {
        if let Message::Text(t) = m {
            state.frames.lock().unwrap().push(TappedFrame {
                conn,
                from_client,
                body: serde_json::from_str(t.as_str()).unwrap_or(Value::Null),
            });
        }
    };
    loop {
        tokio::select! {
            m = c_rx.next() => match m {
                Some(Ok(m)) => {
                    record(true, &m);
                    let close = matches!(m, Message::Close(_));
                    if u_tx.send(m).await.is_err() || close {
                        break;
                    }
                }
                _ => break,
            },
            m = u_rx.next() => match m {
                Some(Ok(m)) => {
                    record(false, &m);
                    let close = matches!(m, Message::Close(_));
                    if c_tx.send(m).await.is_err() || close {
                        break;
                    }
                }
                _ => break,
            },
        }
    }
    let _ = u_tx.close().await;
    let _ = c_tx.close().await;
}
