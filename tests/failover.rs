//! A provider that refuses before the first byte — 429 (with `Retry-After`), 500, 503, no
//! head within `first_byte_ms` — is tried again, then its `fallback` backends in order,
//! before anything reaches the client; a status not worth another attempt is the client's
//! answer at once, and nothing is tried again once a byte went out. Each over HTTP (streamed)
//! and over a WebSocket — every turn rides the proxy's own provider connection — against the
//! generic mock provider.
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

/// How a client saw a turn end.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Completed,
    /// `response.failed` after the reply started.
    Failed,
    /// An error before the reply, with its status.
    Refused(u16),
}

#[derive(Debug, Clone, Copy)]
enum Via {
    Http,
    WebSocket,
}

const BOTH: [Via; 2] = [Via::Http, Via::WebSocket];

/// One streamed turn over `via`; how it ended, and whether any error event reached the
/// client before its end.
async fn turn(proxy: &ProxyProcess, via: Via) -> (End, String) {
    match via {
        Via::WebSocket => {
            let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
                .await
                .unwrap();
            let frames = ws
                .create(&json!({"type": "response.create", "model": "m", "input": "hi", "store": false}))
                .await;
            let last = frames.last().unwrap();
            let end = match last["type"].as_str().unwrap() {
                "response.completed" => End::Completed,
                "response.failed" => End::Failed,
                "error" => End::Refused(last["status"].as_u64().unwrap() as u16),
                other => panic!("{other}: {frames:#?}"),
            };
            (end, format!("{frames:#?}"))
        }
        Via::Http => {
            let r = post_responses(
                &proxy.url("/v1/responses"),
                &simple_request("m", "hi", true),
            )
            .await;
            if r.status != 200 {
                assert_openai_error_shape(&r.json());
                return (End::Refused(r.status), r.body);
            }
            let stream = parse_sse(&r.body);
            let end = match stream.last().event.as_str() {
                "response.completed" => End::Completed,
                "response.failed" => End::Failed,
                other => panic!("{other}: {}", r.body),
            };
            assert!(stream.of_type("error").is_empty(), "{}", r.body);
            (end, r.body)
        }
    }
}

/// A 429 with `Retry-After: 1` is waited for and tried again on the same backend; the turn
/// completes from the second answer.
#[tokio::test]
async fn a_rate_limit_is_waited_for_and_tried_again() {
    for via in BOTH {
        let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
        let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
        primary.push(refusal(429, Some("1")));
        primary.push(MockReply::text("Second time lucky."));
        let t = Instant::now();
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Completed, "{via:?}: {seen}");
        assert!(seen.contains("Second time lucky."), "{via:?}: {seen}");
        assert_eq!(primary.requests().len(), 2, "{via:?}");
        assert!(spare.requests().is_empty(), "{via:?}");
        // The wait was the provider's (not asserted as a time: only that one was made).
        assert!(
            t.elapsed().as_millis() >= 900,
            "{via:?}: Retry-After was honoured"
        );
        assert!(
            !seen.contains("slow down"),
            "{via:?}: nothing of the refusal reached the client: {seen}"
        );
    }
}

/// A 500 then a 503 on the primary (its one retry included): the spare answers.
#[tokio::test]
async fn a_failing_backend_fails_over_to_its_fallback() {
    for via in BOTH {
        let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
        let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
        primary.push(refusal(500, None));
        primary.push(refusal(503, None));
        spare.push(MockReply::text("From the spare."));
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Completed, "{via:?}: {seen}");
        assert!(seen.contains("From the spare."), "{via:?}: {seen}");
        assert_eq!(primary.requests().len(), 2, "{via:?}");
        assert_eq!(spare.requests().len(), 1, "{via:?}");
        let logs = proxy.stderr() + &proxy.logs();
        assert!(
            logs.contains("the provider refused before the first byte: trying again"),
            "{}",
            proxy.context("the attempts are logged")
        );
    }
}

/// A head that does not come within `first_byte_ms` is a refusal too: tried again, then the
/// spare answers.
#[tokio::test]
async fn a_stalled_head_fails_over_to_the_fallback() {
    for via in BOTH {
        let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
        let mut b = backends(&primary, &spare);
        b[0]["timeouts"] = json!({"first_byte_ms": 500, "idle_ms": 500, "total_ms": 60000});
        let proxy = ProxyProcess::start_with_backends(b).await;
        for _ in 0..2 {
            primary.push(MockReply::Delayed {
                reply: Box::new(MockReply::text("too late")),
                delay_ms: 20_000,
                headers: vec![],
            });
        }
        spare.push(MockReply::text("From the spare."));
        let t = Instant::now();
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Completed, "{via:?}: {seen}");
        assert!(
            seen.contains("From the spare.") && !seen.contains("too late"),
            "{via:?}: {seen}"
        );
        assert!(
            t.elapsed().as_secs() < 15,
            "{via:?}: the late heads were not waited for"
        );
        assert_eq!(primary.requests().len(), 2, "{via:?}");
        assert_eq!(spare.requests().len(), 1, "{via:?}");
    }
}

/// Once a byte of the reply went out, nothing is tried again: a stream cut mid-way ends in
/// `response.failed`, the spare never asked.
#[tokio::test]
async fn nothing_is_tried_again_after_the_first_byte() {
    for via in BOTH {
        let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
        let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
        primary.push(MockReply::Sse {
            chunks: common::mock_upstream::sse_text("cut off here please"),
            delay_ms: 10,
            cut_after: Some(3),
        });
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Failed, "{via:?}: {seen}");
        assert_eq!(primary.requests().len(), 1, "{via:?}");
        assert!(spare.requests().is_empty(), "{via:?}");
    }
}

/// A `Retry-After` longer than the proxy waits for skips to the fallback at once; with no
/// backend left, the last refusal is the client's answer (with its status).
#[tokio::test]
async fn a_long_retry_after_fails_over_and_the_last_refusal_is_the_answer() {
    for via in BOTH {
        let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
        let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
        primary.push(refusal(429, Some("3600")));
        spare.push(refusal(429, None));
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Refused(429), "{via:?}: {seen}");
        assert_eq!(
            primary.requests().len(),
            1,
            "{via:?}: not waited for an hour"
        );
        assert_eq!(spare.requests().len(), 1, "{via:?}");
    }
}

/// A 400 is not tried again: the provider would refuse it again.
#[tokio::test]
async fn a_bad_request_is_answered_at_once() {
    for via in BOTH {
        let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
        let proxy = ProxyProcess::start_with_backends(backends(&primary, &spare)).await;
        primary.push(MockReply::error(
            400,
            "bad input",
            "invalid_request_error",
            None,
        ));
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Refused(400), "{via:?}: {seen}");
        assert_eq!(primary.requests().len(), 1, "{via:?}");
        assert!(spare.requests().is_empty(), "{via:?}");
    }
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
        let via = BOTH[n % 2];
        let (end, seen) = turn(&proxy, via).await;
        assert_eq!(end, End::Completed, "turn {n} {via:?}: {seen}");
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

/// `circuit` per backend: two failures in a row open it, and after its cool-down one turn
/// probes the backend; its answer closes the circuit again (over HTTP and WebSocket alike).
#[tokio::test]
async fn an_open_circuit_is_probed_after_its_cool_down_and_closes_on_an_answer() {
    let (primary, spare) = (MockUpstream::start().await, MockUpstream::start().await);
    let mut b = backends(&primary, &spare);
    b[0]["retries"] = json!(0);
    b[0]["circuit"] = json!({"failures": 2, "cool_down_seconds": 1});
    let proxy = ProxyProcess::start_with_backends(b).await;
    let state = |m: &str| -> u64 { metric_value(m, "ccp_circuit_state{backend=\"primary\"}") };
    primary.push(refusal(503, None));
    primary.push(refusal(503, None));
    for via in BOTH {
        spare.push(MockReply::text("From the spare."));
        assert_eq!(turn(&proxy, via).await.0, End::Completed, "{via:?}");
    }
    assert_eq!(
        state(&metrics_text(&proxy).await),
        2,
        "open after two failures"
    );
    // Open: the next turn goes straight to the spare.
    spare.push(MockReply::text("From the spare."));
    assert_eq!(turn(&proxy, Via::Http).await.0, End::Completed);
    assert_eq!(primary.requests().len(), 2, "not tried while open");
    // Cooled down: the next turn probes the primary, which answers; the circuit closes.
    eventually(
        "the circuit cools down",
        std::time::Duration::from_secs(10),
        || async {
            let s = state(&metrics_text(&proxy).await);
            (s == 1).then_some(()).ok_or(format!("state {s}"))
        },
    )
    .await;
    let (end, seen) = turn(&proxy, Via::WebSocket).await;
    assert_eq!(end, End::Completed, "{seen}");
    assert_eq!(primary.requests().len(), 3, "the probe went to the primary");
    assert_eq!(spare.requests().len(), 3);
    assert_eq!(
        state(&metrics_text(&proxy).await),
        0,
        "closed by the probe's answer"
    );
    let logs = proxy.stderr() + &proxy.logs();
    assert!(
        logs.contains("circuit open") && logs.contains("circuit closed"),
        "{logs}"
    );
}
