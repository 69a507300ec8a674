//! A provider that refuses before the first byte — 429 (with `Retry-After`), 5xx — is tried
//! again, then its `fallback` backends in order, before anything reaches the client; a
//! status not worth another attempt is the client's answer at once. Over a WebSocket (every
//! turn rides the proxy's own connections) against the generic mock provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::mock_upstream::{MockReply, MockUpstream};
use common::ws::{ws_url, WsClient};
use common::*;
use serde_json::{json, Value};

fn backends(primary: &MockUpstream, fallback: &MockUpstream) -> Value {
    json!([
        {"name": "primary", "url": format!("http://127.0.0.1:{}/v1", primary.port()),
         "api_key": MAIN_KEY, "retries": 1, "fallback": ["spare"], "match_rules": {"default": true}},
        {"name": "spare", "url": format!("http://127.0.0.1:{}/v1", fallback.port()),
         "api_key": MAIN_KEY, "retries": 0},
    ])
}

fn refusal(status: u16, retry_after: Option<&str>) -> MockReply {
    let reply = MockReply::error(
        status,
        "slow down",
        "rate_limit_error",
        Some("rate_limited"),
    );
    match retry_after {
        None => reply,
        Some(v) => MockReply::Delayed {
            reply: Box::new(reply),
            delay_ms: 0,
            headers: vec![("retry-after".into(), v.into())],
        },
    }
}

async fn turn(proxy: &ProxyProcess) -> Vec<Value> {
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    ws.create(&json!({"type": "response.create", "model": "m", "input": "hi", "store": false}))
        .await
}

/// A 429 with `Retry-After: 1` is waited for and tried again on the same backend; the turn
/// completes from the second answer.
#[tokio::test]
async fn a_rate_limit_is_waited_for_and_tried_again() {
    let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
    let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
    primary.push(refusal(429, Some("1")));
    primary.push(MockReply::text("Second time lucky."));
    let t = Instant::now();
    let frames = turn(&proxy).await;
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "response.completed", "{frames:#?}");
    assert_eq!(primary.requests().len(), 2);
    assert!(spare.requests().is_empty());
    // The wait was the provider's (not asserted as a time: only that one was made).
    assert!(t.elapsed().as_millis() >= 900, "Retry-After was honoured");
    assert!(
        !frames.iter().any(|f| f["type"] == "error"),
        "nothing of the refusal reached the client: {frames:#?}"
    );
}

/// 503 twice on the primary (its one retry included): the spare answers.
#[tokio::test]
async fn a_failing_backend_fails_over_to_its_fallback() {
    let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
    let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
    primary.push(refusal(503, None));
    primary.push(refusal(503, None));
    spare.push(MockReply::text("From the spare."));
    let frames = turn(&proxy).await;
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "response.completed", "{frames:#?}");
    assert_eq!(primary.requests().len(), 2);
    assert_eq!(spare.requests().len(), 1);
    let logs = proxy.stderr() + &proxy.logs();
    assert!(
        logs.contains("the provider refused before the first byte: trying again"),
        "{}",
        proxy.context("the attempts are logged")
    );
}

/// A `Retry-After` longer than the proxy waits for skips to the fallback at once; with no
/// backend left, the last refusal is the client's answer (with its status).
#[tokio::test]
async fn a_long_retry_after_fails_over_and_the_last_refusal_is_the_answer() {
    let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
    let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
    primary.push(refusal(429, Some("3600")));
    spare.push(refusal(429, None));
    let frames = turn(&proxy).await;
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "error", "{frames:#?}");
    assert_eq!(last["status"], 429, "{frames:#?}");
    assert_eq!(primary.requests().len(), 1, "not waited for an hour");
    assert_eq!(spare.requests().len(), 1);
}

/// A 400 is not tried again: the provider would refuse it again.
#[tokio::test]
async fn a_bad_request_is_answered_at_once() {
    let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
    let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
    primary.push(MockReply::error(
        400,
        "bad input",
        "invalid_request_error",
        None,
    ));
    let frames = turn(&proxy).await;
    assert_eq!(frames.last().unwrap()["status"], 400, "{frames:#?}");
    assert_eq!(primary.requests().len(), 1);
    assert!(spare.requests().is_empty());
}

/// A backend that keeps failing is taken out of rotation: after five failures in a row its
/// circuit opens (`ccp_circuit_state` 2, `/stats` "open") and the next turns go to the
/// fallback without trying it.
#[tokio::test]
async fn a_backend_that_keeps_failing_is_out_of_rotation() {
    let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
    let mut b = backends(&primary, &spare);
    b[0]["retries"] = json!(0);
    let proxy = ProxyProcess::start_with_backends(b).await;
    for _ in 0..5 {
        primary.push(refusal(503, None));
    }
    for n in 0..7 {
        spare.push(MockReply::text("From the spare."));
        let frames = turn(&proxy).await;
        assert_eq!(
            frames.last().unwrap()["type"],
            "response.completed",
            "turn {n}: {frames:#?}"
        );
    }
    assert_eq!(
        primary.requests().len(),
        5,
        "not tried once its circuit opened"
    );
    assert_eq!(spare.requests().len(), 7);
    let metrics = metrics_text(&proxy).await;
    assert!(
        metrics.contains("ccp_circuit_state{backend=\"primary\"} 2")
            && metrics.contains("ccp_circuit_state{backend=\"spare\"} 0"),
        "{metrics}"
    );
    let stats = stats_json(&proxy).await;
    assert_eq!(stats["backends"][0]["circuit"], "open", "{stats:#}");
}
