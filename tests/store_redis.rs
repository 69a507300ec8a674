//! Two proxy instances sharing one real Redis (Debian's `redis-server`, started here on a free
//! port and stopped by PID): a response created on one is continued and retrieved on the
//! other; with Redis killed, requests that need the store get a 503 while Codex traffic
//! (`store: false`) and plain creates keep working; with Redis back, the proxies reconnect
//! by themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mock_upstream::{message_text, MockReply, MockUpstream};
use common::*;
use serde_json::{json, Value};

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} ({e}): install Debian's redis-server (.ci/run does)")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis { child, port }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn post(proxy: &ProxyProcess, body: &Value) -> FullResponse {
    post_json(&proxy.url("/v1/responses"), body, &[]).await
}

async fn status_of(proxy: &ProxyProcess, path: &str) -> u16 {
    client()
        .get(proxy.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis_and_survive_it_going_away() {
    let mut redis = Redis::start(free_port());
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let config = |url: String| {
        move |p, d: &std::path::Path| {
            let mut c = default_config(p, d, mock_port);
            c["store"] = json!({"type": "redis", "url": url});
            c
        }
    };
    let a = ProxyProcess::start_with(config(url.clone())).await;
    let b = ProxyProcess::start_with(config(url.clone())).await;

    // Created on A, continued and retrieved on B.
    mock.push(MockReply::json_text("Remembered: saffron."));
    let r = post(&a, &json!({"model": "m", "input": "The spice is saffron."})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while status_of(&b, &format!("/v1/responses/{id}")).await != 200 {
        assert!(Instant::now() < deadline, "B never saw A's response");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mock.push(MockReply::json_text("Saffron."));
    let r = post(
        &b,
        &json!({"model": "m", "input": "Which spice?", "previous_response_id": id}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let last = mock.requests().pop().unwrap();
    let texts: Vec<String> = last.messages().iter().map(message_text).collect();
    assert_eq!(
        texts,
        [
            "The spice is saffron.",
            "Remembered: saffron.",
            "Which spice?"
        ]
    );
    // An item of A's response, referenced on B (the AI SDK's replay): found through
    // Redis's item index.
    let first = client()
        .get(b.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let msg_id = first["output"][0]["id"].as_str().unwrap().to_owned();
    mock.push(MockReply::json_text("Still saffron."));
    let r = post(
        &b,
        &json!({"model": "m", "input": [
            {"type": "message", "role": "user", "content": "The spice is saffron."},
            {"type": "item_reference", "id": msg_id},
            {"type": "message", "role": "user", "content": "Sure?"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let last = mock.requests().pop().unwrap();
    let texts: Vec<String> = last.messages().iter().map(message_text).collect();
    assert_eq!(
        texts,
        ["The spice is saffron.", "Remembered: saffron.", "Sure?"]
    );
    let r = post(
        &b,
        &json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_nope"}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        assert_openai_error_shape(&r.json())["code"],
        "item_not_found"
    );

    // Redis goes away.
    redis.kill();
    let r = post(
        &a,
        &json!({"model": "m", "input": "x", "previous_response_id": id}),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        assert_openai_error_shape(&r.json())["code"],
        "store_unavailable"
    );
    assert_eq!(status_of(&b, &format!("/v1/responses/{id}")).await, 503);
    // What does not need the store keeps working: Codex's requests (store: false), and a
    // create whose write fails in the background still completes.
    let codex = fixture("turn1-text.json");
    let r = post_responses(&a.url("/v1/responses"), &codex).await;
    assert_eq!(r.status, 200);
    let r = post(&b, &json!({"model": "m", "input": "hello while down"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "completed");

    // Redis is back (empty: it kept nothing): the proxies reconnect by themselves.
    let _redis = Redis::start(redis.port);
    mock.push(MockReply::json_text("Back."));
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_id = loop {
        let r = post(&a, &json!({"model": "m", "input": "after"})).await;
        assert_eq!(r.status, 200);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if status_of(&b, &format!("/v1/responses/{id}")).await == 200 {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the proxies did not reconnect to Redis"
        );
    };
    let r = post(
        &b,
        &json!({"model": "m", "input": "and now?", "previous_response_id": new_id}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let metrics = metrics_text(&a).await;
    let errors: u64 = metric_value(&metrics, "ccp_store_errors_total");
    assert!(errors > 0, "{metrics}");
}

/// A key's spend is kept in Redis and shared: spent through instance A, its budget is used
/// up on instance B too (atomic `INCRBY`s; every instance refuses alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_keys_spend_and_budget_through_redis() {
    let redis = Redis::start(free_port());
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let config = |url: String| {
        move |p, d: &std::path::Path| {
            let mut c = default_config(p, d, mock_port);
            c["store"] = json!({"type": "redis", "url": url});
            // A turn costs more than the budget.
            c["prices"] = json!({ MAIN_MODEL: {"input": 1000, "output": 1000} });
            c["auth_tokens"] = json!([
                {"name": "alice", "token": "tok-alice", "budget": {"usd": 0.001, "per": "month"}}
            ]);
            c
        }
    };
    let a = ProxyProcess::start_with(config(url.clone())).await;
    let b = ProxyProcess::start_with(config(url.clone())).await;
    let alice = [("authorization", "Bearer tok-alice")];
    let body = json!({"model": "m", "input": "Hello.", "store": false});
    mock.push(MockReply::json_text("Hi."));
    let r = post_json(&a.url("/v1/responses"), &body, &alice).await;
    assert_eq!(r.status, 200, "{}", a.context(&r.body));
    // B sees A's spend (once A kept it) and refuses, without calling the provider.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let n = mock.requests().len();
        mock.push(MockReply::json_text("Hi again."));
        let r = post_json(&b.url("/v1/responses"), &body, &alice).await;
        if r.status == 429 {
            assert_eq!(
                mock.requests().len(),
                n,
                "the refused turn reached the provider"
            );
            break r;
        }
        assert_eq!(r.status, 200, "{}", b.context(&r.body));
        assert!(Instant::now() < deadline, "B never saw A's spend");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let err = refused.json();
    assert_eq!(err["error"]["code"], "insufficient_quota", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spent this month"),
        "{err}"
    );
    // And A too.
    let r = post_json(&a.url("/v1/responses"), &body, &alice).await;
    assert_eq!(r.status, 429, "{}", r.body);
}
