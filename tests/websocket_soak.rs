//! A bounded WebSocket soak: 64 concurrent sockets, each a 30-turn chain of continuations
//! (`previous_response_id`, only the new input each turn), twice. Every turn must complete
//! with the whole conversation sent upstream; after the sockets close the proxy's open file
//! descriptors must not grow and its memory must come back within a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::mock_upstream::MockUpstream;
use common::ws::{final_response, ws_url, WsClient};
use common::*;
use serde_json::json;

const SOCKETS: usize = 64;
const TURNS: usize = 30;

/// One socket's chain of continuations; the first turn that did not complete, if any.
async fn chain(port: u16, n: usize) -> Result<(), String> {
    let mut ws = WsClient::connect(&ws_url(port, "/v1/responses"), &[])
        .await
        .map_err(|e| e.to_string())?;
    let mut prev: Option<String> = None;
    for t in 0..TURNS {
        let mut msg = json!({"type": "response.create", "model": "m", "store": false,
            "input": format!("socket {n} turn {t} {}", "padding ".repeat(64))});
        if let Some(p) = &prev {
            msg["previous_response_id"] = json!(p);
        }
        let frames = ws.create(&msg).await;
        let resp = final_response(&frames);
        if resp["status"] != "completed" {
            return Err(format!("socket {n} turn {t}: {resp}"));
        }
        prev = resp["id"].as_str().map(str::to_owned);
    }
    Ok(())
}

/// Waits (bounded) until the proxy has recorded every turn of `rounds` rounds.
async fn all_recorded(proxy: &ProxyProcess, rounds: usize) {
    let n = (rounds * SOCKETS * TURNS) as u64;
    eventually(
        format!("the proxy records the {n} turns of {rounds} rounds"),
        Duration::from_secs(30),
        || async {
            let got = metric_value(
                &metrics_text(proxy).await,
                "ccp_requests_total{backend=\"main\"}",
            );
            if got == n {
                Ok(())
            } else {
                Err(format!("{got} recorded"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sockets_with_long_chains_stay_bounded() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let pid = proxy.pid();
    let round = || async {
        let tasks: Vec<_> = (0..SOCKETS)
            .map(|n| tokio::spawn(chain(proxy.port, n)))
            .collect();
        let mut errors = Vec::new();
        for t in tasks {
            if let Err(e) = t.await.unwrap() {
                errors.push(e);
            }
        }
        errors
    };
    let errors = round().await;
    assert!(errors.is_empty(), "warm-up: {errors:?}");
    all_recorded(&proxy, 1).await;
    let fds_before = open_fds(pid);
    let rss_before = proc_status(pid, "VmRSS:");
    let t = Instant::now();
    let errors = round().await;
    let elapsed = t.elapsed();
    assert!(
        errors.is_empty(),
        "{} failed chains, first: {:?}",
        errors.len(),
        errors.first()
    );
    let peak = proc_status(pid, "VmHWM:");
    all_recorded(&proxy, 2).await;
    let fds_bound = fds_before + 2 * SOCKETS;
    let rss_bound = rss_before + 32 * 1024;
    let (fds_after, rss_after) = settle(pid, fds_bound, rss_bound).await;
    eprintln!(
        "websocket soak: {SOCKETS} sockets x {TURNS} turns in {elapsed:?} ({:.0} turns/s); fds {fds_before} -> {fds_after}; RSS {rss_before} kB -> {rss_after} kB (peak {peak} kB)",
        (SOCKETS * TURNS) as f64 / elapsed.as_secs_f64()
    );
    // Every turn sent the whole chain upstream: the last turn of a chain carries all its
    // inputs and outputs.
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2 * SOCKETS * TURNS);
    let longest = reqs.iter().map(|r| r.messages().len()).max().unwrap();
    assert_eq!(longest, 2 * TURNS - 1);
    mock.assert_no_rejections();
    assert!(
        fds_after <= fds_bound,
        "open fds grew: {fds_before} -> {fds_after}"
    );
    assert!(
        rss_after < rss_bound,
        "RSS grew by more than 32 MB after the sockets closed: {rss_before} -> {rss_after} kB"
    );
    let r = client().get(proxy.url("/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
