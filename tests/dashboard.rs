//! The live page (issue #21, item 5), in a real browser: Debian's Chromium driven through
//! WebDriver (chromedriver) loads `/dashboard` while traffic runs; the numbers are read from
//! the page's DOM and compared with `/stats`. A screenshot is saved under
//! `CARGO_TARGET_TMPDIR` (CI keeps it as an artifact). `.ci/run` installs `chromium` and
//! `chromium-driver`.
//!
//! Also: the page is off unless enabled, and takes a client token or the admin token
//! (Bearer, or Basic as a browser's prompt sends) when the proxy checks tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::mock_upstream::{MockReply, MockUpstream};
use common::ws::{ws_url, WsClient};
use common::*;
use serde_json::{json, Value};

const ALICE: &str = "tok-alice-7f3a";
const BOB: &str = "tok-bob-91c2";
const ADMIN: &str = "admin-secret-55d0";
/// Requests the traffic task sends (bounded), `TRAFFIC_GAP` apart.
const TRAFFIC: usize = 40;
const TRAFFIC_GAP: Duration = Duration::from_millis(60);

fn find(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])
            .expect("chromedriver is not installed (Debian: apt-get install chromium chromium-driver; .ci/run does)");
        let browser = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])
            .expect("chromium is not installed (Debian: apt-get install chromium; .ci/run does)");
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let probe = http.clone();
        let status = format!("{base}/status");
        eventually("chromedriver answers", Duration::from_secs(20), || {
            let (probe, status) = (probe.clone(), status.clone());
            async move {
                match probe.get(&status).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("HTTP {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        // The flags this machine's closed network needs (no background connections).
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": browser, "args": args}}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session")
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Driver {
            child,
            base,
            http,
            session,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req
            .send()
            .await
            .expect("WebDriver call")
            .json()
            .await
            .unwrap();
        assert!(r["value"].get("error").is_none(), "WebDriver {path}: {r}");
        r["value"].clone()
    }

    /// A DevTools command (chromedriver's `goog/cdp/execute`).
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the page shows, as text, read from its DOM.
const READ_PAGE: &str = r#"
const v = {};
document.querySelectorAll('[data-v]').forEach(e => { v[e.dataset.v] = e.textContent; });
const cells = (tr) => { const r = {}; tr.querySelectorAll('[data-f]').forEach(td => { r[td.dataset.f] = td.textContent; }); return r; };
const backends = {};
document.querySelectorAll('#backends tr[data-backend]').forEach(tr => { backends[tr.dataset.backend] = cells(tr); });
const errors = {};
document.querySelectorAll('#errors tr[data-class]').forEach(tr => { errors[tr.dataset.backend + '/' + tr.dataset.class] = cells(tr).count; });
const keys = {};
document.querySelectorAll('#by_key tr[data-key]').forEach(tr => { keys[tr.dataset.key] = cells(tr).usd; });
const models = {};
document.querySelectorAll('#by_model tr[data-model]').forEach(tr => { models[tr.dataset.model] = cells(tr).usd; });
return {v, backends, errors, keys, models, polls: Number(document.body.dataset.polls || 0)};
"#;

fn backend_config(mock: &MockUpstream) -> Value {
    json!([{
        "name": "main",
        "url": mock.url("/v1"),
        "api_key": "sk-main",
        "model": "model-a",
        "retries": 0,
        "match_rules": {"default": true},
    }])
}

fn proxy_config(port: u16, log_dir: &std::path::Path, mock: &MockUpstream) -> Value {
    let mut c = test_config(port, log_dir, backend_config(mock));
    c["auth_tokens"] = json!([{"name": "alice", "token": ALICE}, {"name": "bob", "token": BOB}]);
    c["prices"] = json!({"model-a": {"input": 3, "cached_input": 0.5, "output": 15}});
    c["store"] = json!({"type": "memory"});
    c["dashboard"] = json!({"enabled": true, "admin_token": ADMIN});
    c
}

/// A tile's number as the page shows it (0 before its first poll).
fn tile(page: &Value, key: &str) -> f64 {
    page["v"][key]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0)
}

/// `/stats`'s `p50_le`-style value as the page writes it.
fn secs(v: &Value) -> String {
    match v.as_f64() {
        Some(f) => format!("≤ {f} s"),
        None => "–".into(),
    }
}

/// What the page should show, from `/stats`, in the page's own shapes.
fn expected(stats: &Value) -> Value {
    let mut backends = serde_json::Map::new();
    let (mut total, mut errors_total) = (0, 0);
    let mut errors = serde_json::Map::new();
    for b in stats["backends"].as_array().unwrap() {
        let name = b["backend"].as_str().unwrap();
        let requests = b["requests"].as_u64().unwrap();
        let errs: u64 = b["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        total += requests;
        errors_total += errs;
        for (class, n) in b["errors"].as_object().unwrap() {
            if n.as_u64().unwrap() > 0 {
                errors.insert(format!("{name}/{class}"), json!(n.to_string()));
            }
        }
        if name == "-" && requests == 0 {
            continue;
        }
        backends.insert(
            name.to_owned(),
            json!({
                "circuit": if name == "-" { String::new() } else { b["circuit"].as_str().unwrap().replace('_', "-") },
                "requests": requests.to_string(),
                "errors": errs.to_string(),
                "latency_p50": secs(&b["latency_seconds"]["p50_le"]),
                "latency_p99": secs(&b["latency_seconds"]["p99_le"]),
                "ttft_p50": secs(&b["ttft_seconds"]["p50_le"]),
                "ttft_p99": secs(&b["ttft_seconds"]["p99_le"]),
                "tokens_in": b["tokens"]["input"].to_string(),
                "tokens_cached": b["tokens"]["cached"].to_string(),
                "tokens_out": b["tokens"]["output"].to_string(),
            }),
        );
    }
    let usd = |m: &Value| -> Value {
        m.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!(format!("{:.6}", v.as_f64().unwrap()))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let today = &stats["spend_today_usd"];
    let spend: f64 = today["by_model"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    json!({
        "backends": backends,
        "errors": errors,
        "keys": usd(&today["by_client"]),
        "models": usd(&today["by_model"]),
        "requests": total.to_string(),
        "errors_total": errors_total.to_string(),
        "spend_today": format!("{spend:.6}"),
        "open": stats["open"],
        "store_responses": stats["store"]["responses"].to_string(),
    })
}

/// The page's numbers in the same shape as [`expected`].
fn shown(page: &Value) -> Value {
    let v = &page["v"];
    // The rates are the page's own (between two polls): checked while the traffic runs.
    let mut backends = page["backends"].clone();
    if let Some(rows) = backends.as_object_mut() {
        for row in rows.values_mut() {
            row.as_object_mut().map(|r| r.remove("rps"));
        }
    }
    json!({
        "backends": backends,
        "errors": page["errors"],
        "keys": page["keys"],
        "models": page["models"],
        "requests": v["requests"],
        "errors_total": v["errors"],
        "spend_today": v["spend_today"],
        "open": {
            "http_turns": v["http_turns"].as_str().unwrap_or("").parse::<u64>().ok(),
            "http_streams": v["http_streams"].as_str().unwrap_or("").parse::<u64>().ok(),
            "websocket_sessions": v["websocket_sessions"].as_str().unwrap_or("").parse::<u64>().ok(),
        },
        "store_responses": v["store_responses"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_a_browser_shows_what_stats_says_while_traffic_runs() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start_with(|port, dir| proxy_config(port, dir, &mock)).await;
    // One provider error, so that a class shows; the rest are the mock's default answer.
    mock.push(MockReply::error(500, "overloaded", "server_error", None));

    // A WebSocket session held open the whole time.
    let bearer = format!("Bearer {ALICE}");
    let mut ws = WsClient::connect(
        &ws_url(proxy.port, "/v1/responses"),
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    let turn = ws
        .create(&json!({"type": "response.create", "model": "m", "store": false,
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}))
        .await;
    assert!(!turn.is_empty());

    // Traffic from alice and bob, streamed and not, while the page is open.
    let url = proxy.url("/v1/responses");
    let traffic = tokio::spawn(async move {
        for i in 0..TRAFFIC {
            let token = if i % 3 == 0 { BOB } else { ALICE };
            let body = simple_request("m", &format!("request {i}"), i % 2 == 0);
            let auth = format!("Bearer {token}");
            let r = post_json(&url, &body, &[("authorization", auth.as_str())]).await;
            assert!(
                r.status == 200 || r.status == 500,
                "{} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(TRAFFIC_GAP).await;
        }
    });

    let driver = Driver::start().await;
    // What a browser's password prompt sends: Basic, the admin token as the password.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN}"));
    driver.cdp("Network.enable", json!({})).await;
    driver
        .cdp(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Authorization": format!("Basic {basic}")}}),
        )
        .await;
    driver.goto(&proxy.url("/dashboard")).await;

    // Live: the page's request count grows while the traffic runs.
    let first = eventually(
        "the page polled /stats",
        Duration::from_secs(20),
        || async {
            let p = driver.script(READ_PAGE).await;
            let n = tile(&p, "requests") as u64;
            (p["polls"].as_u64() >= Some(1) && n > 0)
                .then_some(n)
                .ok_or(p.to_string())
        },
    )
    .await;
    if !traffic.is_finished() {
        eventually(
            "the page follows the traffic",
            Duration::from_secs(20),
            || async {
                let p = driver.script(READ_PAGE).await;
                let (n, rate) = (tile(&p, "requests") as u64, tile(&p, "rps"));
                (n > first && rate > 0.0)
                    .then_some(())
                    .ok_or(format!("still {n}, {rate}/s"))
            },
        )
        .await;
    }
    traffic.await.unwrap();

    // The traffic over (the socket still open): the page and /stats agree on every number.
    let agreed = eventually(
        "the page shows what /stats says",
        Duration::from_secs(20),
        || async {
            let want = expected(&stats_json(&proxy).await);
            let got = shown(&driver.script(READ_PAGE).await);
            if want == got {
                Ok(want)
            } else {
                Err(format!("want {want:#}\n got {got:#}"))
            }
        },
    )
    .await;
    // The numbers are the traffic's: every request, both keys priced, the socket, the store.
    let total = 1 + TRAFFIC as u64; // the socket's turn and the traffic
    assert_eq!(agreed["requests"], total.to_string(), "{agreed:#}");
    assert_eq!(
        agreed["backends"]["main"]["requests"],
        total.to_string(),
        "{agreed:#}"
    );
    assert!(
        agreed["backends"].get("-").is_none(),
        "the page made no unrouted request: {agreed:#}"
    );
    assert_eq!(agreed["errors"]["main/upstream_5xx"], "1", "{agreed:#}");
    assert_eq!(agreed["backends"]["main"]["circuit"], "closed");
    assert_eq!(agreed["open"]["websocket_sessions"], 1);
    for key in ["alice", "bob"] {
        let usd: f64 = agreed["keys"][key].as_str().unwrap().parse().unwrap();
        assert!(usd > 0.0, "{key}: {agreed:#}");
    }
    // By the model the client was answered as (as ccp_cost_usd_total's `model`).
    assert!(
        agreed["models"]["m"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    let stored: u64 = agreed["store_responses"].as_str().unwrap().parse().unwrap();
    assert!(stored > 0, "{agreed:#}");

    let png = driver.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &png).unwrap();
    if let Some(copy) = std::env::var_os("CCP_DASHBOARD_SCREENSHOT") {
        std::fs::write(copy, &png).unwrap();
    }
    eprintln!("dashboard screenshot: {}", out.display());

    // The socket closes: the page sees it go.
    drop(ws);
    eventually(
        "the closed socket leaves the page",
        Duration::from_secs(20),
        || async {
            let p = driver.script(READ_PAGE).await;
            (p["v"]["websocket_sessions"] == "0")
                .then_some(())
                .ok_or(p["v"].to_string())
        },
    )
    .await;
}

#[tokio::test]
async fn the_page_is_off_unless_enabled_and_takes_a_token() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start_with(|port, dir| proxy_config(port, dir, &mock)).await;
    let http = client();
    let get = |auth: Option<String>| {
        let mut r = http.get(proxy.url("/dashboard"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    let locked = get(None).await.unwrap();
    assert_eq!(locked.status().as_u16(), 401);
    assert!(locked
        .headers()
        .get("www-authenticate")
        .is_some_and(|v| v.to_str().unwrap().starts_with("Basic realm=")));
    let body: Value = locked.json().await.unwrap();
    assert_openai_error_shape(&body);
    let wrong = base64::engine::general_purpose::STANDARD.encode("admin:nope");
    assert_eq!(
        get(Some(format!("Basic {wrong}")))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        get(Some("Bearer nope".into()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A client token, or the admin token as Bearer or as Basic's password.
    let admin = base64::engine::general_purpose::STANDARD.encode(format!("me:{ADMIN}"));
    for auth in [
        format!("Bearer {BOB}"),
        format!("Bearer {ADMIN}"),
        format!("Basic {admin}"),
    ] {
        let r = get(Some(auth.clone())).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{auth}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        let html = r.text().await.unwrap();
        // Self-contained: nothing is loaded from another origin.
        assert!(
            html.contains("fetch(\"/stats\"")
                && !html.contains("http://")
                && !html.contains("https://")
        );
    }
    let post = http
        .post(proxy.url("/dashboard"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    // Off by default: the path is unknown.
    let off =
        ProxyProcess::start_with(|port, dir| test_config(port, dir, backend_config(&mock))).await;
    let r = client().get(off.url("/dashboard")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
