//! Config reload without a restart (issue #21, item 4): `codex-convert-proxy reload` (SIGHUP)
//! re-reads the file. New requests and new WebSocket sessions use the new backends and
//! tokens; an SSE stream and a WebSocket session open during the reload finish on the
//! configuration they started with; an invalid file keeps the running configuration, is
//! logged with its path and counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::mock_upstream::{delta_chunk, done_frame, frame, MockReply, MockUpstream};
use common::ws::{final_response, ws_url, WsClient};
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

const NEW_TOKEN: &str = "ccp-reload-test-token";

fn backends(mock: &MockUpstream, model: &str) -> Value {
    json!([{
        "name": "main",
        "url": mock.url("/v1"),
        "api_key": "sk-main",
        "model": model,
        "retries": 0,
        "match_rules": {"default": true},
    }])
}

/// A streamed reply of `words` text deltas, `delay_ms` apart: a stream that is still open
/// while the test reloads.
fn slow_stream(words: usize, delay_ms: u64) -> MockReply {
    let mut chunks = vec![frame(&delta_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    ))];
    for i in 0..words {
        chunks.push(frame(&delta_chunk(
            json!({"content": format!("w{i} ")}),
            None,
        )));
    }
    chunks.push(frame(&delta_chunk(json!({}), Some("stop"))));
    chunks.push(done_frame());
    MockReply::Sse {
        chunks,
        delay_ms,
        cut_after: None,
    }
}

fn run_reload(proxy: &ProxyProcess) -> std::process::Output {
    Command::new(proxy_bin())
        .arg("reload")
        .arg("--config")
        .arg(&proxy.config_path)
        .output()
        .expect("run codex-convert-proxy reload")
}

async fn reloads(proxy: &ProxyProcess) -> (u64, u64) {
    let c = &stats_json(proxy).await["config"];
    (
        c["reloads"].as_u64().unwrap(),
        c["failed_reloads"].as_u64().unwrap(),
    )
}

fn models_seen(mock: &MockUpstream) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|r| r.json()["model"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_to_new_requests_while_open_streams_and_sockets_finish_on_the_old() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let a_backends = backends(&a, "model-a");
    let proxy =
        ProxyProcess::start_with(|port, log_dir| test_config(port, log_dir, a_backends)).await;

    // A WebSocket session with one turn on A.
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let create = |text: &str| {
        json!({"type": "response.create", "model": "m", "store": false,
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]})
    };
    let first = ws.create(&create("one")).await;
    assert_eq!(final_response(&first)["status"], "completed", "{first:#?}");

    // An SSE stream on A, open across the reload.
    a.push(slow_stream(16, 150));
    let resp = client()
        .post(proxy.url("/v1/responses"))
        .json(&simple_request("m", "stream me", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("response.output_text.delta") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the stream's first delta")
            .expect("the stream ended before its first delta")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    // The new file: backend `main` is now B, and a client token is required.
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&proxy.config_path).unwrap()).unwrap();
    config["backends"] = backends(&b, "model-b");
    config["auth_tokens"] = json!([NEW_TOKEN]);
    std::fs::write(
        &proxy.config_path,
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let out = run_reload(&proxy);
    assert!(
        out.status.success(),
        "reload: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        proxy.stderr()
    );
    eventually(
        "the reload took effect",
        Duration::from_secs(10),
        || async {
            let r = reloads(&proxy).await;
            (r == (1, 0)).then_some(()).ok_or(format!("{r:?}"))
        },
    )
    .await;

    // The stream opened before it finishes on A, whole.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the open stream stalled after the reload")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let stream = parse_sse(&seen);
    assert_eq!(stream.last().event, "response.completed", "{seen}");
    let text = streamed_text(&stream);
    assert_eq!(text.split_whitespace().count(), 16, "{text}");

    // New requests: the new token is required, and they go to B.
    let refused = post_json(
        &proxy.url("/v1/responses"),
        &simple_request("m", "no token", false),
        &[],
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let bearer = format!("Bearer {NEW_TOKEN}");
    let auth = [("authorization", bearer.as_str())];
    let served = post_json(
        &proxy.url("/v1/responses"),
        &simple_request("m", "to b", false),
        &auth,
    )
    .await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(models_seen(&b), vec!["model-b"]);

    // The socket opened before the reload keeps its configuration: its next turn goes to A.
    let second = ws.create(&create("two")).await;
    assert_eq!(
        final_response(&second)["status"],
        "completed",
        "{second:#?}"
    );
    assert_eq!(models_seen(&a), vec!["model-a"; 3]);
    assert_eq!(models_seen(&b).len(), 1);
    // A socket opened after it is on the new one: B, and the new token.
    let mut fresh = WsClient::connect(
        &ws_url(proxy.port, "/v1/responses"),
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    let third = fresh.create(&create("three")).await;
    assert_eq!(final_response(&third)["status"], "completed", "{third:#?}");
    assert_eq!(models_seen(&b), vec!["model-b"; 2]);

    // Backend `main` kept its counters across the reload: every request above is counted.
    let m = metrics_text(&proxy).await;
    assert_eq!(
        metric_value(&m, "ccp_requests_total{backend=\"main\"}"),
        5,
        "{m}"
    );
    assert!(
        proxy.logs().contains("configuration reloaded"),
        "{}",
        proxy.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_keeps_the_running_configuration() {
    let mock = MockUpstream::start().await;
    let bs = backends(&mock, "model-a");
    let proxy = ProxyProcess::start_with(|port, log_dir| test_config(port, log_dir, bs)).await;
    let good = std::fs::read(&proxy.config_path).unwrap();

    // `reload` checks the file first: an invalid one is reported, nothing is signalled.
    let mut config: Value = serde_json::from_slice(&good).unwrap();
    config["backends"][0]["url"] = json!("not a url");
    std::fs::write(
        &proxy.config_path,
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let out = run_reload(&proxy);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not signalled") && err.contains("url"),
        "{err}"
    );
    assert_eq!(reloads(&proxy).await, (0, 0));

    // A SIGHUP with the file broken (as `kill -HUP` sends): the proxy refuses it itself.
    std::fs::write(&proxy.config_path, b"{\"backends\": [").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually(
        "the reload was refused",
        Duration::from_secs(10),
        || async {
            let r = reloads(&proxy).await;
            (r == (0, 1)).then_some(()).ok_or(format!("{r:?}"))
        },
    )
    .await;
    let stats = stats_json(&proxy).await;
    let why = stats["config"]["last_error"].as_str().unwrap().to_owned();
    assert!(
        why.contains(&proxy.config_path.display().to_string()),
        "{why}"
    );
    let m = metrics_text(&proxy).await;
    assert_eq!(
        metric_value(&m, "ccp_config_reloads_total{result=\"error\"}"),
        1,
        "{m}"
    );
    eventually(
        "the refusal is logged with the path",
        Duration::from_secs(5),
        || async {
            let logs = proxy.logs();
            (logs.contains("configuration reload refused")
                && logs.contains(&proxy.config_path.display().to_string()))
            .then_some(())
            .ok_or(logs)
        },
    )
    .await;

    // Still serving on the running configuration.
    let r = post_responses(
        &proxy.url("/v1/responses"),
        &simple_request("m", "still", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(models_seen(&mock), vec!["model-a"]);

    // A settings change that needs a restart is reported, the rest applied.
    let mut config: Value = serde_json::from_slice(&good).unwrap();
    config["listen"] = json!(format!("127.0.0.1:{}", free_port()));
    config["backends"][0]["model"] = json!("model-c");
    std::fs::write(
        &proxy.config_path,
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    assert!(run_reload(&proxy).status.success());
    eventually("the second file took", Duration::from_secs(10), || async {
        let r = reloads(&proxy).await;
        (r == (1, 1)).then_some(()).ok_or(format!("{r:?}"))
    })
    .await;
    let r = post_responses(
        &proxy.url("/v1/responses"),
        &simple_request("m", "again", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(models_seen(&mock), vec!["model-a", "model-c"]);
    eventually(
        "the restart-only change is logged",
        Duration::from_secs(5),
        || async {
            let logs = proxy.logs();
            (logs.contains("need a restart") && logs.contains("listen"))
                .then_some(())
                .ok_or(logs)
        },
    )
    .await;
}

/// The binary replaced without closing the listening socket (Pingora's graceful upgrade): a
/// second proxy started with `--upgrade` on the same configuration takes the socket when the
/// running one gets SIGQUIT; the stream open on the old one finishes whole, and after the
/// old one exits the new one answers on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_upgrade_hands_the_socket_over_and_finishes_what_is_open() {
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mock = MockUpstream::start().await;
    let bs = backends(&mock, "model-a");
    let mut old = ProxyProcess::start_with(|port, log_dir| {
        let mut c = test_config(port, log_dir, bs);
        c["store"] = json!({"type": "none"});
        c
    })
    .await;
    mock.push(slow_stream(16, 150));
    let resp = client()
        .post(old.url("/v1/responses"))
        .json(&simple_request("m", "stream me", true))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("response.output_text.delta") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the first delta")
            .expect("the stream ended early")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }

    let new_err = old.dir.path().join("new.stderr");
    let new = Killed(
        Command::new(proxy_bin())
            .arg("--config")
            .arg(&old.config_path)
            .arg("--upgrade")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&new_err).unwrap())
            .spawn()
            .unwrap(),
    );
    let sock = old.dir.path().join("logs/codex-convert-proxy.upgrade.sock");
    eventually(
        "the new proxy waits for the socket",
        Duration::from_secs(20),
        || async {
            sock.exists()
                .then_some(())
                .ok_or(std::fs::read_to_string(&new_err).unwrap_or_default())
        },
    )
    .await;
    let quit = Command::new("kill")
        .args(["-QUIT", &old.pid().to_string()])
        .status()
        .unwrap();
    assert!(quit.success());

    // The stream open on the old proxy finishes whole.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the open stream stalled during the upgrade")
    {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let stream = parse_sse(&seen);
    assert_eq!(stream.last().event, "response.completed", "{seen}");
    assert_eq!(streamed_text(&stream).split_whitespace().count(), 16);

    // The old one leaves; the port keeps answering, now from the new one.
    let status = old
        .wait_exit(Duration::from_secs(30))
        .expect("the old proxy exits");
    assert!(status.success(), "{status}\n{}", old.stderr());
    let r = post_responses(
        &old.url("/v1/responses"),
        &simple_request("m", "after", false),
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "{}\n--- new ---\n{}",
        r.body,
        std::fs::read_to_string(&new_err).unwrap_or_default()
    );
    assert_eq!(mock.requests().len(), 2);
    let pid_file =
        std::fs::read_to_string(old.dir.path().join("logs/codex-convert-proxy.pid")).unwrap();
    assert_eq!(
        pid_file.trim(),
        new.0.id().to_string(),
        "the pid file names the new proxy"
    );
}

/// `--upgrade` with the embedded store refuses to start (the running proxy holds the file),
/// before it could take the listening socket.
#[test]
fn an_upgrade_with_the_embedded_store_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = json!({
        "listen": format!("127.0.0.1:{}", free_port()),
        "log_dir": dir.path().join("logs"),
        "backends": [{"name": "main", "url": "http://127.0.0.1:9/v1", "match_rules": {"default": true}}],
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let out = Command::new(proxy_bin())
        .arg("--config")
        .arg(&path)
        .arg("--upgrade")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--upgrade needs a store"), "{err}");
}
