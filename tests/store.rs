//! The response store over HTTP: the OpenAI Python SDK's `previous_response_id`, retrieve,
//! `input_items` and delete through the real proxy (embedded store by default, and the
//! memory store), the provider receiving the whole conversation in order; a restart keeping
//! the chain; token isolation; expiry; eviction; a long chain; `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mock_upstream::{message_text, MockReply, MockUpstream};
use common::*;
use serde_json::{json, Value};

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| format!("{}: {}", m["role"].as_str().unwrap_or("?"), message_text(m)))
        .collect()
}

async fn post(proxy: &ProxyProcess, body: &Value, token: Option<&str>) -> FullResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    post_json(&proxy.url("/v1/responses"), body, &headers).await
}

async fn get(proxy: &ProxyProcess, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = client().get(proxy.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_openai_sdk_chains_retrieves_lists_and_deletes() {
    let mock = MockUpstream::start().await;
    mock.push(MockReply::json_text("Nice to meet you, Ada."));
    mock.push(MockReply::text("Lyon is lovely."));
    mock.push(MockReply::json_text("Ada, from Lyon."));
    let proxy = ProxyProcess::start(&mock).await;
    // The SDK runs in its own process; the mock answers on this runtime meanwhile.
    let base = proxy.url("/v1");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(sdk_python())
            .arg(repo_root().join("tests/sdk/store_chain.py"))
            .arg(base)
            .arg("sk-client")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        proxy.context(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    );
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["r1"]["text"], "Nice to meet you, Ada.");
    assert_eq!(v["r1"]["store"], true);
    assert_eq!(v["r2"]["previous"], v["r1"]["id"]);
    assert_eq!(v["r3"]["text"], "Ada, from Lyon.");
    assert_eq!(v["retrieved"]["id"], v["r2"]["id"]);
    assert_eq!(v["retrieved"]["text"], "Lyon is lovely.");
    assert_eq!(v["retrieved"]["status"], "completed");
    let items = v["input_items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["role"], "user");
    assert!(items[0]["id"].is_string());
    let e = &v["errors"];
    assert_eq!(e["retrieve_deleted"]["status"], 404);
    assert_eq!(e["retrieve_unknown"]["status"], 404);
    assert_eq!(e["continue_unknown"]["status"], 400);
    assert_eq!(e["continue_unknown"]["code"], "previous_response_not_found");
    assert_eq!(e["continue_deleted"]["code"], "previous_response_not_found");
    assert_eq!(
        e["continue_store_false"]["code"],
        "previous_response_not_found"
    );

    // The provider got the whole conversation each turn, in order, without the earlier
    // instructions (only the request's own).
    // (A create rejected by the proxy — the continuations of deleted or unknown ids — aborts
    // the upstream request it had begun: the mock sees it without a body.)
    let all = mock.requests();
    assert!(all
        .iter()
        .all(|r| !r.is_rejected() || r.body_raw.is_empty()));
    let reqs: Vec<_> = all.into_iter().filter(|r| !r.body_raw.is_empty()).collect();
    assert_eq!(
        reqs.len(),
        4,
        "{:#?}",
        reqs.iter().map(|r| &r.body_raw).collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&reqs[0].messages()),
        ["user: My name is Ada. Remember it."]
    );
    assert_eq!(
        texts(&reqs[1].messages()),
        [
            "user: My name is Ada. Remember it.",
            "assistant: Nice to meet you, Ada.",
            "user: And my city is Lyon."
        ]
    );
    assert_eq!(
        texts(&reqs[2].messages()),
        [
            "system: Answer briefly.",
            "user: My name is Ada. Remember it.",
            "assistant: Nice to meet you, Ada.",
            "user: And my city is Lyon.",
            "assistant: Lyon is lovely.",
            "user: What are my name and city?"
        ]
    );
    // The store's metrics.
    let metrics = metrics_text(&proxy).await;
    for name in [
        "ccp_store_responses",
        "ccp_store_bytes",
        "ccp_store_hits_total",
        "ccp_store_misses_total",
        "ccp_store_writes_total",
        "ccp_store_evictions_total",
        "ccp_store_errors_total",
    ] {
        assert!(
            metrics.contains(&format!("\n{name} ")),
            "{name} missing:\n{metrics}"
        );
    }
    let writes: u64 = metric_value(&metrics, "ccp_store_writes_total");
    assert_eq!(writes, 3, "r1, r2, r3 stored; r4 had store=false");
}

fn store_config(port: u16, dir: &Path, mock: u16, store: Value, tokens: Option<Value>) -> Value {
    let mut c = default_config(port, dir, mock);
    c["store"] = store;
    if let Some(t) = tokens {
        c["auth_tokens"] = t;
    }
    c
}

#[tokio::test]
async fn a_restart_keeps_the_chain() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("responses");
    let store = json!({"type": "embedded", "path": path.to_string_lossy()});
    let s = store.clone();
    let mut first =
        ProxyProcess::start_with(move |p, d| store_config(p, d, mock_port, s, None)).await;
    mock.push(MockReply::json_text("Noted: the code is 4711."));
    let r = post(
        &first,
        &json!({"model": "m", "input": "The code is 4711."}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // Readable at once (read-your-writes), though written in the background.
    assert_eq!(
        get(&first, &format!("/v1/responses/{id}"), None).await.0,
        200,
        "{}",
        first.context("a kept response is readable as soon as its reply has ended")
    );
    // Restart only once the write is committed to the file.
    eventually(
        "the embedded store commits the write (ccp_store_writes_total 1)",
        Duration::from_secs(10),
        || async { store_writes(&first).await == 1 },
    )
    .await;
    first.terminate();
    assert!(first.wait_exit(Duration::from_secs(10)).is_some());
    drop(first);
    let s = store.clone();
    let second = ProxyProcess::start_with(move |p, d| store_config(p, d, mock_port, s, None)).await;
    mock.push(MockReply::json_text("It is 4711."));
    let r = post(
        &second,
        &json!({"model": "m", "input": "What is the code?", "previous_response_id": id}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(response_output_text(&r.json()), "It is 4711.");
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        texts(&last.messages()),
        [
            "user: The code is 4711.",
            "assistant: Noted: the code is 4711.",
            "user: What is the code?"
        ]
    );
}

#[tokio::test]
async fn a_response_belongs_to_its_token_and_expires() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, d| {
        store_config(
            p,
            d,
            mock_port,
            json!({"type": "memory", "ttl_days": 3.0 / 86400.0}),
            Some(json!(["token-a", "token-b"])),
        )
    })
    .await;
    let sent_at = Instant::now();
    let r = post(
        &proxy,
        &json!({"model": "m", "input": "mine"}),
        Some("token-a"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert!(
        id.len() >= "resp_".len() + 32,
        "ids carry 128 random bits: {id}"
    );
    let path = format!("/v1/responses/{id}");
    assert_eq!(
        get(&proxy, &path, Some("token-a")).await.0,
        200,
        "a kept response is readable at once"
    );
    // Another token: not found, for retrieve, items, continue and delete.
    assert_eq!(get(&proxy, &path, Some("token-b")).await.0, 404);
    assert_eq!(
        get(&proxy, &format!("{path}/input_items"), Some("token-b"))
            .await
            .0,
        404
    );
    let r = post(
        &proxy,
        &json!({"model": "m", "input": "x", "previous_response_id": id}),
        Some("token-b"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "previous_response_not_found");
    let del = client()
        .delete(proxy.url(&path))
        .bearer_auth("token-b")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 404);
    assert_eq!(get(&proxy, &path, Some("token-a")).await.0, 200);
    // Expiry (a 3 s TTL here): gone after it, not before.
    eventually("the response expires", Duration::from_secs(10), || async {
        get(&proxy, &path, Some("token-a")).await.0 == 404
    })
    .await;
    let lived = sent_at.elapsed();
    assert!(
        lived >= Duration::from_millis(2900),
        "the response expired after {lived:?}, before its 3 s TTL"
    );
}

#[tokio::test]
async fn the_size_bound_evicts_the_oldest_and_long_chains_rebuild() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, d| {
        store_config(
            p,
            d,
            mock_port,
            json!({"type": "embedded", "max_bytes": 4_000_000}),
            None,
        )
    })
    .await;
    // A chain of 40 turns of ~25 KB each (1 MB in all): the last turn gets all of it.
    let mut prev: Option<String> = None;
    let filler = "history ".repeat(3_000);
    for t in 0..40 {
        mock.push(MockReply::json_text(&format!("ok {t}")));
        let mut body = json!({"model": "m", "input": format!("turn {t}: {filler}")});
        if let Some(p) = &prev {
            body["previous_response_id"] = json!(p);
        }
        let r = post(&proxy, &body, None).await;
        assert_eq!(r.status, 200, "turn {t}: {}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        // Each turn continues the previous one at once: the write is in the background, yet
        // the response is readable as soon as its reply has ended (read-your-writes).
        assert_eq!(
            get(&proxy, &format!("/v1/responses/{id}"), None).await.0,
            200,
            "turn {t}: a kept response is readable at once"
        );
        prev = Some(id);
    }
    let last = mock.requests().pop().unwrap();
    let msgs = last.messages();
    assert_eq!(msgs.len(), 79);
    assert!(last.body_raw.len() > 900_000);
    assert!(message_text(&msgs[0]).starts_with("turn 0:"));
    // Past the bound the oldest go first: 4 MB holds the last turns only.
    for t in 0..60 {
        mock.push(MockReply::json_text("x"));
        let r = post(
            &proxy,
            &json!({"model": "m", "input": format!("fill {t} {filler}{filler}{filler}")}),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    // Wait (bounded) until all 100 writes are committed: the size gauge counts a batch's
    // records before its eviction runs at the end of the batch.
    eventually(
        "the 100 writes are committed (ccp_store_writes_total 100)",
        Duration::from_secs(20),
        || async { store_writes(&proxy).await == 100 },
    )
    .await;
    let r = post(
        &proxy,
        &json!({"model": "m", "input": "x", "previous_response_id": prev}),
        None,
    )
    .await;
    assert_eq!(
        r.status, 400,
        "the early chain should have been evicted: {}",
        r.body
    );
    let metrics = metrics_text(&proxy).await;
    let evictions: u64 = metric_value(&metrics, "ccp_store_evictions_total");
    assert!(evictions > 0, "{metrics}");
    let bytes: u64 = metric_value(&metrics, "ccp_store_bytes");
    assert!(bytes <= 4_000_000, "{bytes}");
}

#[tokio::test]
async fn codex_traffic_with_store_false_is_never_stored_and_none_is_stateless() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, d| {
        store_config(p, d, mock_port, json!({"type": "none"}), None)
    })
    .await;
    let r = post(&proxy, &json!({"model": "m", "input": "x"}), None).await;
    assert_eq!(r.status, 200);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&proxy, &format!("/v1/responses/{id}"), None).await.0,
        404
    );
    let r = post(
        &proxy,
        &json!({"model": "m", "input": "x", "previous_response_id": id}),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "previous_response_id");

    // With the default store, a Codex request (store: false) leaves nothing behind.
    let proxy = ProxyProcess::start(&mock).await;
    let body = fixture("turn1-text.json");
    assert_eq!(body["store"], false);
    let r = post_responses(&proxy.url("/v1/responses"), &body).await;
    assert_eq!(r.status, 200);
    r.assert_body_complete();
    let id = parse_sse(&r.body).of_type("response.completed")[0]["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A kept response is readable as soon as its reply has ended: this one is not.
    assert_eq!(
        get(&proxy, &format!("/v1/responses/{id}"), None).await.0,
        404
    );
    // Once the request is recorded (counted in /metrics), nothing was written for it. The
    // same proxy keeps what asks to be kept, so the zero is not a store that writes nothing.
    eventually(
        "the request is counted in ccp_requests_total",
        Duration::from_secs(10),
        || async {
            metrics_text(&proxy)
                .await
                .contains("ccp_requests_total{backend=\"main\"} 1\n")
        },
    )
    .await;
    assert_eq!(store_writes(&proxy).await, 0);
    mock.push(MockReply::json_text("kept"));
    let kept = post(
        &proxy,
        &json!({"model": "m", "input": "x", "store": true}),
        None,
    )
    .await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    eventually(
        "the kept response is written (ccp_store_writes_total 1)",
        Duration::from_secs(10),
        || async { store_writes(&proxy).await == 1 },
    )
    .await;
}

/// `ccp_store_writes_total`: the writes the store has committed.
async fn store_writes(proxy: &ProxyProcess) -> u64 {
    metric_value(&metrics_text(proxy).await, "ccp_store_writes_total")
}

#[tokio::test]
async fn websocket_continuations_find_stored_responses_across_connections() {
    use common::ws::{error_frame, final_response, ws_url, WsClient};
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    let url = ws_url(proxy.port, "/v1/responses");
    let mut a = WsClient::connect(&url, &[]).await.unwrap();
    mock.push(MockReply::text("Stored: blue."));
    let kept = a
        .create(
            &json!({"type": "response.create", "model": "m", "store": true,
            "input": "My favourite colour is blue."}),
        )
        .await;
    let kept_id = final_response(&kept)["id"].as_str().unwrap().to_owned();
    // Kept before its terminal event went out: readable at once (read-your-writes).
    assert_eq!(
        get(&proxy, &format!("/v1/responses/{kept_id}"), None)
            .await
            .0,
        200,
        "the response kept over the WebSocket is readable as soon as its last frame arrived"
    );
    mock.push(MockReply::text("Not stored."));
    let local = a
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "input": "A secret: 42."}),
        )
        .await;
    let local_id = final_response(&local)["id"].as_str().unwrap().to_owned();
    drop(a);
    let mut b = WsClient::connect(&url, &[]).await.unwrap();
    mock.push(MockReply::text("Blue."));
    let cont = b
        .create(
            &json!({"type": "response.create", "model": "m", "store": true,
            "previous_response_id": kept_id, "input": "What is my favourite colour?"}),
        )
        .await;
    assert_eq!(response_output_text(final_response(&cont)), "Blue.");
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        texts(&last.messages()),
        [
            "user: My favourite colour is blue.",
            "assistant: Stored: blue.",
            "user: What is my favourite colour?"
        ]
    );
    // store: false stays on its connection.
    let miss = b
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "previous_response_id": local_id, "input": "And the secret?"}),
        )
        .await;
    assert_eq!(error_frame(&miss)["code"], "previous_response_not_found");
}

#[tokio::test]
async fn two_continuations_of_one_response_fork_the_chain() {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    mock.push(MockReply::json_text("Base noted."));
    let r = post(
        &proxy,
        &json!({"model": "m", "input": "Base fact: 7."}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        get(&proxy, &format!("/v1/responses/{id}"), None).await.0,
        200,
        "a kept response is readable at once"
    );
    let left = json!({"model": "m", "input": "Branch left", "previous_response_id": id});
    let right = json!({"model": "m", "input": "Branch right", "previous_response_id": id});
    let (l, r) = tokio::join!(post(&proxy, &left, None), post(&proxy, &right, None));
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(l.json()["id"], r.json()["id"]);
    let reqs = mock.requests();
    for branch in ["Branch left", "Branch right"] {
        let req = reqs
            .iter()
            .find(|q| q.body_raw.contains(branch))
            .unwrap_or_else(|| panic!("{branch} not sent"));
        assert_eq!(
            texts(&req.messages()),
            [
                "user: Base fact: 7.".to_owned(),
                "assistant: Base noted.".to_owned(),
                format!("user: {branch}")
            ]
        );
    }
}

/// A stored chain remembers the tools of responses lite: the first request brings them in
/// an `additional_tools` item and a `configuration_update`; the continuation that sends
/// only the tool output (with `previous_response_id`) still offers them, keeps the effort,
/// and the namespaced custom call goes back as the model made it.
#[tokio::test]
async fn a_stored_chain_keeps_the_tools_of_responses_lite() {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, d| {
        let mut c = store_config(p, d, mock_port, json!({"type": "memory"}), None);
        c["backends"][0]["provider"] = json!("deepseek");
        c
    })
    .await;
    let tools = json!([{"type": "namespace", "name": "functions", "tools": [
        {"type": "custom", "name": "exec", "description": "run js",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]}]);
    mock.push(MockReply::tool_call(
        "call_1",
        "functions__exec",
        &json!({"input": "text(1)"}).to_string(),
    ));
    let first = json!({"model": "m", "stream": true, "input": [
        {"type": "additional_tools", "role": "developer", "tools": tools},
        {"type": "configuration_update", "reasoning": {"effort": "none"}},
        {"type": "message", "role": "user", "content": "run it"}]});
    let r = post(&proxy, &first, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let events = parse_sse(&r.body);
    let done = events.of_type("response.completed")[0];
    let id = done["response"]["id"].as_str().unwrap().to_owned();
    let call = &done["response"]["output"][0];
    assert_eq!(call["type"], "custom_tool_call");
    assert_eq!(
        (&call["name"], &call["namespace"]),
        (&json!("exec"), &json!("functions"))
    );
    // Kept in the background, yet readable at once (read-your-writes).
    assert_eq!(
        get(&proxy, &format!("/v1/responses/{id}"), None).await.0,
        200,
        "a kept response is readable as soon as its reply has ended"
    );
    mock.push(MockReply::text("done"));
    let next = json!({"model": "m", "stream": true, "previous_response_id": id, "input": [
        {"type": "custom_tool_call_output", "call_id": "call_1",
         "output": [{"type": "input_text", "text": "1"}]}]});
    let r = post(&proxy, &next, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    for req in &reqs {
        let chat = req.json();
        assert_eq!(
            chat["tools"][0]["function"]["name"], "functions__exec",
            "{chat}"
        );
        assert_eq!(chat["thinking"], json!({"type": "disabled"}));
    }
    let msgs = reqs[1].messages();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool"]);
    assert_eq!(
        msgs[1]["tool_calls"][0]["function"]["name"],
        "functions__exec"
    );
    mock.assert_no_rejections();
}
