//! What turns cost and what a client key may spend, through the proxy process and the strict
//! provider mocks (tests/common/providers.rs, each reporting the same usage in its own shape:
//! 120 input tokens of which 64 cached, 30 output):
//!
//! - every profile's turn costs its usage at the shipped price of its model (cached input
//!   at the cached price), in `/metrics` (`ccp_cost_usd_total{backend, model, client}`),
//!   `/stats` and the access line; a model without a price costs nothing counted;
//! - a named client key (`auth_tokens` object) is refused with 429 `insufficient_quota`
//!   once its spend reaches its budget — over HTTP and over a WebSocket, before any provider
//!   call — while other keys go on; its spend is labelled by its name, never by its token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::providers::{Profile, ProviderMock};
use common::ws::{error_frame, WsClient};
use common::*;
use serde_json::{json, Value};

fn turn(model: &str) -> Value {
    json!({"model": model, "input": "Say hello.", "stream": false, "store": false})
}

fn cost_sample(metrics: &str, backend: &str, model: &str, client: &str) -> Option<f64> {
    let prefix = format!(
        "ccp_cost_usd_total{{backend=\"{backend}\",model=\"{model}\",client=\"{client}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The shipped prices (README, "Spend"), USD per million tokens: input, cached input, output.
/// 56 uncached + 64 cached input tokens and 30 output tokens at each.
#[tokio::test]
async fn every_profile_turn_costs_its_usage_at_the_shipped_price() {
    let cases = [
        (Profile::Glm, "glm-4.6", Some((0.60, 0.11, 2.20))),
        (Profile::Kimi, "kimi-k2.6", Some((0.95, 0.16, 4.00))),
        (
            Profile::DeepSeek,
            "deepseek-v4-pro",
            Some((1.32, 0.044, 3.96)),
        ),
        (Profile::MiniMax, "MiniMax-M2.7", Some((0.30, 0.06, 1.20))),
        (Profile::OpenAi, "qwen3-coder", None),
    ];
    for (p, model, price) in cases {
        let mock = ProviderMock::start(p, "sk-cost").await;
        let backend = mock.backend(p.name(), json!({"default": true}));
        let proxy = ProxyProcess::start_with_backends(json!([backend])).await;
        let r = post_responses(&proxy.url("/v1/responses"), &turn(model)).await;
        assert_eq!(r.status, 200, "{}", proxy.context(&r.body));
        mock.assert_all_accepted();
        let expected = price.map_or(0.0, |(i, c, o): (f64, f64, f64)| {
            (56.0 * i + 64.0 * c + 30.0 * o).round() / 1e6
        });
        let metrics = metrics_text(&proxy).await;
        let got = cost_sample(&metrics, p.name(), model, "-");
        assert_eq!(got, Some(expected), "{}: {metrics}", p.name());
        let stats = stats_json(&proxy).await;
        assert_eq!(
            stats["spend_usd"]["by_model"][model],
            json!(expected),
            "{stats:#}"
        );
        // The access line says what the turn cost (nothing for a model without a price).
        let logs = eventually_logs(&proxy, "tokens_in=120").await;
        let line = logs
            .lines()
            .find(|l| l.contains("tokens_in=120"))
            .unwrap()
            .to_owned();
        assert_eq!(
            line.contains(&format!("cost_usd={expected:.6}")),
            price.is_some(),
            "{line}"
        );
    }
}

/// The access log once it holds `needle` (it is written by a background thread).
async fn eventually_logs(proxy: &ProxyProcess, needle: &str) -> String {
    for _ in 0..100 {
        let logs = proxy.logs();
        if logs.contains(needle) {
            return logs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{}", proxy.context(format!("no {needle:?} in the logs")));
}

/// A key with a budget: at 384 micro-dollars a turn (a price of 2 / 0.5 / 8 USD per million
/// tokens), a budget of $0.0005 a day allows two turns; the third is refused, over HTTP and
/// over a WebSocket, without reaching the provider, while a plain key goes on.
#[tokio::test]
async fn a_key_over_its_budget_is_refused_before_the_provider_is_called() {
    let mock = ProviderMock::start(Profile::Glm, "sk-budget").await;
    let mut backend = mock.backend("glm", json!({"default": true}));
    backend["prices"] = json!({"GLM-4.6": {"input": 2, "cached_input": 0.5, "output": 8}});
    let proxy = ProxyProcess::start_with(move |port, dir| {
        let mut c = test_config(port, dir, json!([backend]));
        c["auth_tokens"] = json!([
            {"name": "alice", "token": "tok-alice-secret", "budget": {"usd": 0.0005, "per": "day"}},
            "tok-plain",
        ]);
        c
    })
    .await;
    let url = proxy.url("/v1/responses");
    // One connection, as a Codex session has: each turn's spend is kept before the next
    // request on it is read.
    let http = client();
    let post = |token: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            read_full(
                http.post(&url)
                    .bearer_auth(token)
                    .json(&turn("glm-4.6"))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    for n in 1..=2 {
        let r = post("tok-alice-secret").await;
        assert_eq!(r.status, 200, "turn {n}: {}", proxy.context(&r.body));
    }
    let r = post("tok-alice-secret").await;
    assert_eq!(r.status, 429, "{}", proxy.context(&r.body));
    let err = r.json();
    assert_eq!(err["error"]["type"], "insufficient_quota", "{err}");
    assert_eq!(err["error"]["code"], "insufficient_quota", "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"alice\"")
            && message.contains("$0.000768 spent today of $0.0005 per day")
            && message.contains("00:00 UTC"),
        "{message}"
    );
    assert!(!message.contains("tok-alice"), "never the token: {message}");
    assert_eq!(
        mock.requests().len(),
        2,
        "the refused turn never reached the provider"
    );

    // Over a WebSocket too, before any provider call.
    let mut ws = WsClient::connect(
        &common::ws::ws_url(proxy.port, "/v1/responses"),
        &[("authorization", "Bearer tok-alice-secret")],
    )
    .await
    .unwrap();
    let mut create = turn("glm-4.6");
    create["type"] = json!("response.create");
    let frames = ws.create(&create).await;
    error_frame(&frames);
    let e = frames.last().unwrap();
    assert_eq!(e["status"], 429, "{frames:#?}");
    assert_eq!(e["error"]["code"], "insufficient_quota", "{frames:#?}");
    assert_eq!(mock.requests().len(), 2);

    // Another key is served.
    let r = post("tok-plain").await;
    assert_eq!(r.status, 200, "{}", r.body);
    mock.assert_all_accepted();

    // Spend by name (two turns of alice, one unnamed), never by token.
    let metrics = metrics_text(&proxy).await;
    assert_eq!(
        cost_sample(&metrics, "glm", "glm-4.6", "alice"),
        Some(0.000768),
        "{metrics}"
    );
    assert_eq!(
        cost_sample(&metrics, "glm", "glm-4.6", "-"),
        Some(0.000384),
        "{metrics}"
    );
    assert!(!metrics.contains("tok-"), "{metrics}");
    let logs = proxy.logs();
    assert!(!logs.contains("tok-alice-secret"), "{logs}");
}
