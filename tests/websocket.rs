//! The WebSocket transport and remote compaction: the real proxy process between a
//! tokio-tungstenite client (the library Codex uses) replaying Codex 0.171's recorded
//! messages, and the mock Chat provider (which rejects what a strict provider rejects).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::mock_upstream::{message_text, MockReply, MockUpstream};
use common::ws::{as_stream, error_frame, final_response, ws_url, WsClient};
use common::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// A recorded file of Codex 0.171 (tests/fixtures/codex-0.171/).
fn fixture171(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures/codex-0.171").join(name)
}

fn fixture171_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture171(name)).unwrap()).unwrap()
}

/// The client messages (`"dir": "in"`) of a recorded WebSocket transcript.
fn transcript_in(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture171(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["dir"] == "in")
        .map(|l| match &l["msg"] {
            Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        })
        .collect()
}

async fn setup() -> (MockUpstream, ProxyProcess) {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    (mock, proxy)
}

fn output_items(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "response.output_item.done")
        .map(|f| f["item"].clone())
        .collect()
}

fn roles(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["role"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test]
async fn codex_ws_agent_transcript_chains_on_one_socket() {
    let (mock, proxy) = setup().await;
    let ins = transcript_in("ws-agent/001-WS-transcript.jsonl");
    assert_eq!(ins.len(), 3);
    mock.push(MockReply::tool_call(
        "call_up_1",
        "exec_command",
        r#"{"cmd": "echo hi"}"#,
    ));
    mock.push(MockReply::text("The command printed hi."));
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();

    // The warm-up: a response without the provider.
    assert_eq!(ins[0]["generate"], false);
    let warm = ws.create(&ins[0]).await;
    check_lifecycle(&as_stream(&warm));
    let warm_id = final_response(&warm)["id"].as_str().unwrap().to_owned();
    assert_eq!(final_response(&warm)["output"], json!([]));
    assert!(
        mock.requests().is_empty(),
        "the warm-up called the provider"
    );

    // The first turn: chained on the warm-up, only the remaining items.
    let mut t1 = ins[1].clone();
    t1["previous_response_id"] = json!(warm_id);
    let turn1 = ws.create(&t1).await;
    check_lifecycle(&as_stream(&turn1));
    let calls = output_items(&turn1);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function_call");
    assert_eq!(calls[0]["name"], "exec_command");
    let call_id = calls[0]["call_id"].as_str().unwrap().to_owned();
    let id1 = final_response(&turn1)["id"].as_str().unwrap().to_owned();

    // The tool follow-up: only the function_call_output.
    let mut t2 = ins[2].clone();
    t2["previous_response_id"] = json!(id1);
    assert_eq!(t2["input"].as_array().unwrap().len(), 1);
    t2["input"][0]["call_id"] = json!(call_id);
    let turn2 = ws.create(&t2).await;
    check_lifecycle(&as_stream(&turn2));
    assert_eq!(
        response_output_text(final_response(&turn2)),
        "The command printed hi."
    );

    // The provider received the whole conversation each time, in order.
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let first = reqs[0].messages();
    assert_eq!(roles(&first), ["system", "user", "user"]);
    assert!(message_text(&first[0]).contains("Codex"));
    let second = reqs[1].messages();
    assert_eq!(
        roles(&second),
        ["system", "user", "user", "assistant", "tool"]
    );
    assert_eq!(
        second[3]["tool_calls"][0]["function"]["name"],
        "exec_command"
    );
    assert_eq!(second[4]["tool_call_id"], second[3]["tool_calls"][0]["id"]);
    assert_eq!(reqs[1].json()["stream"], true);
    // Tools come from each message (Codex repeats them).
    assert!(reqs[1].json()["tools"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn remote_compaction_over_websocket_returns_one_compaction_item_and_expands_it() {
    let (mock, proxy) = setup().await;
    let ins = transcript_in("ws-remote-compaction/001-WS-transcript.jsonl");
    assert_eq!(ins.len(), 4);
    mock.push(MockReply::tool_call(
        "call_up_1",
        "exec_command",
        r#"{"cmd": "echo hi"}"#,
    ));
    let summary = "The user asked to run `echo hi` with USE_TOOL; it printed hi. Next: report it.";
    mock.push(MockReply::text(summary));
    mock.push(MockReply::text("hello"));
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let warm = ws.create(&ins[0]).await;
    let warm_id = final_response(&warm)["id"].clone();
    let mut t1 = ins[1].clone();
    t1["previous_response_id"] = warm_id;
    let turn1 = ws.create(&t1).await;
    let call_id = output_items(&turn1)[0]["call_id"].clone();

    // Mid-turn compaction: the tool output and the trigger, chained.
    let mut c = ins[2].clone();
    c["previous_response_id"] = final_response(&turn1)["id"].clone();
    let last = c["input"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({"type": "compaction_trigger"}));
    c["input"][0]["call_id"] = call_id;
    let compacted = ws.create(&c).await;
    check_lifecycle(&as_stream(&compacted));
    let items = output_items(&compacted);
    assert_eq!(items.len(), 1, "{compacted:#?}");
    assert_eq!(items[0]["type"], "compaction");
    let token = items[0]["encrypted_content"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ccpc1."));
    let resp = final_response(&compacted);
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["output"].as_array().unwrap().len(), 1);
    assert!(resp["usage"]["total_tokens"].as_u64().unwrap() > 0);

    // The summarisation request: the whole conversation, no tools, the proxy's prompt last.
    let reqs = mock.requests();
    let sum_req = reqs[1].json();
    assert!(sum_req.get("tools").is_none(), "{sum_req}");
    let msgs = reqs[1].messages();
    assert_eq!(
        roles(&msgs),
        ["system", "user", "user", "assistant", "tool", "user"]
    );
    assert!(message_text(msgs.last().unwrap()).contains("compacted"));

    // After compaction Codex starts a new chain with the compaction item in its input.
    let mut after = ins[3].clone();
    assert!(after.get("previous_response_id").is_none());
    let input = after["input"].as_array_mut().unwrap();
    let pos = input
        .iter()
        .position(|i| i["type"] == "compaction")
        .unwrap();
    input[pos]["encrypted_content"] = json!(token);
    let turn3 = ws.create(&after).await;
    check_lifecycle(&as_stream(&turn3));
    assert_eq!(response_output_text(final_response(&turn3)), "hello");
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    let msgs = reqs[2].messages();
    let texts: Vec<String> = msgs.iter().map(message_text).collect();
    let at = texts
        .iter()
        .position(|t| t.contains(summary))
        .expect("the summary in the provider's input");
    assert_eq!(msgs[at]["role"], "user");
    assert!(
        msgs.iter()
            .all(|m| m["role"] != "tool" && m.get("tool_calls").is_none()),
        "calls from before the compaction came back: {msgs:#?}"
    );
}

#[tokio::test]
async fn continuations_resolve_on_their_connection_and_failures_evict() {
    let (mock, proxy) = setup().await;
    let url = ws_url(proxy.port, "/v1/responses");
    let mut ws = WsClient::connect(&url, &[]).await.unwrap();
    mock.push(MockReply::text("OK"));
    let first = ws
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "input": "Remember the code word: cobalt. Reply with OK."}),
        )
        .await;
    let id = final_response(&first)["id"].as_str().unwrap().to_owned();

    // A continuation: the provider gets the earlier turn too.
    mock.push(MockReply::text("cobalt"));
    let second = ws
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "previous_response_id": id, "input": "What is the code word?"}),
        )
        .await;
    assert_eq!(response_output_text(final_response(&second)), "cobalt");
    let msgs = mock.requests()[1].messages();
    assert_eq!(roles(&msgs), ["user", "assistant", "user"]);
    assert!(message_text(&msgs[0]).contains("cobalt"));
    assert_eq!(message_text(&msgs[1]), "OK");

    // A tool output that answers nothing: rejected before the provider, and the id it
    // continued is evicted.
    let before = mock.requests().len();
    let bad = ws
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "previous_response_id": id,
            "input": [{"type": "function_call_output", "call_id": "call_missing", "output": "x"}]}),
        )
        .await;
    let err = error_frame(&bad);
    assert_eq!(bad.last().unwrap()["status"], 400);
    assert!(err["message"].as_str().unwrap().contains("call_missing"));
    assert_eq!(mock.requests().len(), before);
    let stale = ws
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "previous_response_id": id, "input": "stale"}),
        )
        .await;
    assert_eq!(error_frame(&stale)["code"], "previous_response_not_found");
    assert_eq!(error_frame(&stale)["param"], "previous_response_id");

    // The second turn's id still continues; another connection knows none of them.
    let second_id = final_response(&second)["id"].as_str().unwrap().to_owned();
    let mut other = WsClient::connect(&url, &[]).await.unwrap();
    let miss = other
        .create(
            &json!({"type": "response.create", "model": "m", "store": false,
            "previous_response_id": second_id, "input": "x"}),
        )
        .await;
    assert_eq!(error_frame(&miss)["code"], "previous_response_not_found");
    let unknown = other
        .create(&json!({"type": "response.create", "model": "m",
            "previous_response_id": "resp_unknown", "input": "x"}))
        .await;
    assert_eq!(error_frame(&unknown)["code"], "previous_response_not_found");
    // The socket stays usable after errors.
    mock.push(MockReply::text("recovered"));
    let ok = other
        .create(&json!({"type": "response.create", "model": "m", "input": "start again"}))
        .await;
    assert_eq!(response_output_text(final_response(&ok)), "recovered");
    mock.push(MockReply::text("still here"));
    let cont = ws
        .create(&json!({"type": "response.create", "model": "m",
            "previous_response_id": second_id, "input": "again"}))
        .await;
    assert_eq!(response_output_text(final_response(&cont)), "still here");
    mock.assert_no_rejections();
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_bursts_are_answered_in_order() {
    let (mock, proxy) = setup().await;
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    ws.send_raw(Message::text("this is not json")).await;
    let f = ws.turn().await;
    assert_eq!(error_frame(&f)["code"], "invalid_json");
    ws.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let f = ws.turn().await;
    assert_eq!(error_frame(&f)["code"], "invalid_message");
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "input": 5}))
        .await;
    assert_eq!(error_frame(&f)["param"], "input");
    // A message the proxy does not act on gets no answer at all: the next frame is the
    // next create's.
    ws.send(&json!({"type": "response.processed", "response_id": "resp_x"}))
        .await;
    ws.send_raw(Message::Ping(b"are you there".to_vec().into()))
        .await;
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "generate": false, "input": "x"}))
        .await;
    assert_eq!(f[0]["type"], "response.created");
    assert_eq!(final_response(&f)["status"], "completed");

    // A burst of 10,000 creates, sent without waiting for answers (the client reads at the
    // same time, as a real one does): queued, answered one after the other, in order.
    const BURST: usize = 10_000;
    let (mut tx, mut rx) = futures_util::StreamExt::split(ws.ws);
    let send = async {
        for i in 0..BURST {
            let m = json!({"type": "response.create", "model": "m", "generate": false,
                "input": format!("burst {i}"), "metadata": {"n": i.to_string()}});
            futures_util::SinkExt::send(&mut tx, Message::text(m.to_string()))
                .await
                .unwrap();
        }
    };
    let recv = async {
        let mut ids = std::collections::HashSet::new();
        let mut n = 0usize;
        while n < BURST {
            let msg = tokio::time::timeout(
                common::ws::TURN_TIMEOUT,
                futures_util::StreamExt::next(&mut rx),
            )
            .await
            .expect("the burst stalled")
            .unwrap()
            .unwrap();
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "response.completed" {
                assert_eq!(v["response"]["metadata"]["n"], n.to_string());
                assert!(ids.insert(v["response"]["id"].as_str().unwrap().to_owned()));
                n += 1;
            }
        }
    };
    tokio::join!(send, recv);
    let mut ws = WsClient {
        ws: tx.reunite(rx).unwrap(),
    };
    assert!(mock.requests().is_empty());
    // The proxy is healthy afterwards, and the socket too.
    let health = client().get(proxy.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    mock.push(MockReply::text("fine"));
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "input": "x"}))
        .await;
    assert_eq!(response_output_text(final_response(&f)), "fine");
}

#[tokio::test]
async fn a_create_sent_during_a_turn_waits_for_it() {
    let (mock, proxy) = setup().await;
    mock.push(MockReply::Sse {
        chunks: mock_upstream_text("first answer"),
        delay_ms: 40,
        cut_after: None,
    });
    mock.push(MockReply::text("second answer"));
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    ws.send(&json!({"type": "response.create", "model": "m", "input": "one"}))
        .await;
    ws.send(&json!({"type": "response.create", "model": "m", "input": "two"}))
        .await;
    let t1 = ws.turn().await;
    let t2 = ws.turn().await;
    check_lifecycle(&as_stream(&t1));
    check_lifecycle(&as_stream(&t2));
    assert_eq!(response_output_text(final_response(&t1)), "first answer");
    assert_eq!(response_output_text(final_response(&t2)), "second answer");
}

fn mock_upstream_text(text: &str) -> Vec<String> {
    common::mock_upstream::sse_text(text)
}

#[tokio::test]
async fn a_client_that_goes_away_mid_turn_cancels_the_upstream_request() {
    let (mock, proxy) = setup().await;
    mock.push(MockReply::Sse {
        chunks: mock_upstream_text(&"slow words ".repeat(20)),
        delay_ms: 150,
        cut_after: None,
    });
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    ws.send(&json!({"type": "response.create", "model": "m", "input": "go"}))
        .await;
    let first = ws.next_json().await.unwrap();
    assert_eq!(first["type"], "response.created");
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.abandoned_streams() == 0 {
        assert!(
            Instant::now() < deadline,
            "the upstream stream was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = client().get(proxy.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn upstream_errors_are_error_frames_in_openai_codes() {
    let (mock, proxy) = setup().await;
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/kimi/v1/responses"), &[])
        .await
        .unwrap();
    mock.push(MockReply::text("OK"));
    let first = ws
        .create(&json!({"type": "response.create", "model": "kimi-k2.6", "input": "hi"}))
        .await;
    let id = final_response(&first)["id"].clone();
    assert!(mock.requests()[0].path.starts_with("/kimi-base/v1/"));
    mock.push(MockReply::error(
        400,
        "This model's maximum context length is 131072 tokens. However, you requested 200000 tokens",
        "invalid_request_error",
        None,
    ));
    let f = ws
        .create(&json!({"type": "response.create", "model": "kimi-k2.6",
            "previous_response_id": id, "input": "more"}))
        .await;
    assert_eq!(error_frame(&f)["code"], "context_length_exceeded");
    assert_eq!(f.last().unwrap()["status"], 400);
    // The failed continuation evicted its base.
    let f = ws
        .create(&json!({"type": "response.create", "model": "kimi-k2.6",
            "previous_response_id": id, "input": "again"}))
        .await;
    assert_eq!(error_frame(&f)["code"], "previous_response_not_found");
    // The key never shows, in frames or logs.
    assert!(!proxy.logs().contains(KIMI_KEY));
}

#[tokio::test]
async fn upgrades_check_the_proxy_token_and_get_426_when_switched_off() {
    let mock = MockUpstream::start().await;
    let port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, dir| {
        let mut c = default_config(p, dir, port);
        c["auth_tokens"] = json!(["proxy-token-1"]);
        c
    })
    .await;
    let url = ws_url(proxy.port, "/v1/responses");
    match WsClient::connect(&url, &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 401)
        }
        Err(e) => panic!("expected 401, got {e}"),
        Ok(_) => panic!("the upgrade succeeded without the proxy token"),
    }
    let mut ws = WsClient::connect(&url, &[("authorization", "Bearer proxy-token-1")])
        .await
        .unwrap();
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "generate": false, "input": "x"}))
        .await;
    assert_eq!(final_response(&f)["status"], "completed");

    let off = ProxyProcess::start_with(move |p, dir| {
        let mut c = default_config(p, dir, port);
        c["websocket"] = json!({"enabled": false});
        c
    })
    .await;
    match WsClient::connect(&ws_url(off.port, "/v1/responses"), &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 426)
        }
        Err(e) => panic!("expected 426, got {e}"),
        Ok(_) => panic!("the upgrade succeeded with websocket.enabled = false"),
    }
    // A plain GET is still a 405 with Allow: POST.
    let resp = client().get(off.url("/v1/responses")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001() {
    let (_mock, mut proxy) = setup().await;
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "generate": false, "input": "x"}))
        .await;
    assert_eq!(final_response(&f)["status"], "completed");
    proxy.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        assert!(Instant::now() < deadline, "no close frame after SIGTERM");
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut ws.ws),
        )
        .await
        {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(CloseCode::Away));
    assert!(proxy.wait_exit(Duration::from_secs(10)).is_some());
}

#[tokio::test]
async fn remote_compaction_over_http_v2_and_v1() {
    let (mock, proxy) = setup().await;
    // v2 over HTTP: Codex's recorded request (the whole history + compaction_trigger).
    let recorded = fixture171_json("http-remote-compaction/003-POST-responses-COMPACT.json");
    let body = recorded["body"].clone();
    let summary = "Summary: ran echo hi, it printed hi.";
    mock.push(MockReply::text(summary));
    let resp = post_responses(&proxy.url("/v1/responses"), &body).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let stream = parse_sse(&resp.body);
    check_lifecycle(&stream);
    let items = done_items(&stream);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["type"], "compaction");
    let token = items[0]["encrypted_content"].as_str().unwrap().to_owned();
    let req = mock.single_request();
    assert!(req.json().get("tools").is_none());
    assert!(message_text(req.messages().last().unwrap()).contains("compacted"));

    // The first request after compaction, with the token Codex got back.
    let mut next =
        fixture171_json("http-remote-compaction/004-POST-responses.json")["body"].clone();
    let input = next["input"].as_array_mut().unwrap();
    input.last_mut().unwrap()["encrypted_content"] = json!(token);
    mock.push(MockReply::text("carrying on"));
    let resp = post_responses(&proxy.url("/v1/responses"), &next).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let msgs = mock.requests()[1].messages();
    assert!(msgs.iter().any(|m| message_text(m).contains(summary)));

    // v1: POST /responses/compact.
    mock.push(MockReply::json_text(
        "Launch Tuesday; notify support first.",
    ));
    let v1 = json!({"model": "m", "prompt_cache_key": "k", "input": [
        {"type": "message", "role": "user", "content": "We agreed to launch on Tuesday and notify support first."},
        {"type": "message", "role": "assistant", "content": "Understood."}]});
    let resp = post_json(&proxy.url("/v1/responses/compact"), &v1, &[]).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let obj = resp.json();
    assert_eq!(obj["object"], "response.compaction");
    assert!(obj["id"].is_string() && obj["created_at"].is_u64());
    let out = obj["output"].as_array().unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["role"], "user");
    assert_eq!(out[1]["type"], "compaction");
    assert!(obj["usage"]["total_tokens"].is_u64());
    // A provider error while compacting maps as any other (never a fake summary).
    mock.push(MockReply::error(
        400,
        "This model's maximum context length is 131072 tokens. However, you requested 200000 tokens",
        "invalid_request_error",
        None,
    ));
    let resp = post_json(&proxy.url("/v1/responses/compact"), &v1, &[]).await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        assert_openai_error_shape(&resp.json())["code"],
        "context_length_exceeded"
    );
    mock.assert_no_rejections();

    // A token of ours, altered: a clear 400, never a panic.
    let mut tampered = next.clone();
    let t = format!("{}x", &token[..token.len() - 4]);
    tampered["input"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap()["encrypted_content"] = json!(t);
    let resp = post_responses(&proxy.url("/v1/responses"), &tampered).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let err = assert_openai_error_shape(&resp.json());
    assert_eq!(err["code"], "invalid_encrypted_content");

    // No model (and the backend sets none) → 400.
    let resp = post_json(
        &proxy.url("/kimi/v1/responses/compact"),
        &json!({"input": [{"type": "message", "role": "user", "content": "Compact this."}]}),
        &[],
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(assert_openai_error_shape(&resp.json())["param"], "model");
    // Also where the backend sets the model that goes upstream (Open Responses
    // `compact-missing-model`): the client must still name one, for a create as well.
    for path in ["/v1/responses/compact", "/v1/responses"] {
        let resp = post_json(
            &proxy.url(path),
            &json!({"input": [{"type": "message", "role": "user", "content": "Compact this."}]}),
            &[],
        )
        .await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.body);
        let err = assert_openai_error_shape(&resp.json());
        assert_eq!(err["param"], "model", "{path}");
        assert_eq!(err["code"], "missing_required_parameter", "{path}");
    }
}

#[tokio::test]
async fn fragments_pings_oversized_messages_and_no_secret_in_the_logs() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let mock = MockUpstream::start().await;
    let port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, dir| {
        let mut c = default_config(p, dir, port);
        c["log_level"] = json!("trace");
        c["log_body"] = json!(true);
        c["websocket"] = json!({"max_message_bytes": 4096});
        c
    })
    .await;
    const CLIENT_SECRET: &str = "client-secret-ws-7f3a";
    let url = ws_url(proxy.port, "/v1/responses");
    let auth = format!("Bearer {CLIENT_SECRET}");
    let mut ws = WsClient::connect(&url, &[("authorization", auth.as_str())])
        .await
        .unwrap();
    // One create in three fragments, a ping between them.
    let text = json!({"type": "response.create", "model": "m",
        "input": "fragmented hello"})
    .to_string();
    let bytes = text.as_bytes();
    let (a, rest) = bytes.split_at(10);
    let (b, c) = rest.split_at(15);
    ws.send_raw(Message::Frame(Frame::message(
        a.to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await;
    ws.send_raw(Message::Ping(b"between".to_vec().into())).await;
    ws.send_raw(Message::Frame(Frame::message(
        b.to_vec(),
        OpCode::Data(Data::Continue),
        false,
    )))
    .await;
    ws.send_raw(Message::Frame(Frame::message(
        c.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await;
    mock.push(MockReply::text("whole again"));
    let mut pong = false;
    let mut frames = Vec::new();
    loop {
        let msg = tokio::time::timeout(
            common::ws::TURN_TIMEOUT,
            futures_util::StreamExt::next(&mut ws.ws),
        )
        .await
        .unwrap()
        .unwrap()
        .unwrap();
        match msg {
            Message::Pong(p) => pong = p.as_ref() == b"between",
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                let end = v["type"] == "response.completed";
                frames.push(v);
                if end {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(pong, "no pong for the ping between fragments");
    assert_eq!(response_output_text(final_response(&frames)), "whole again");
    let msgs = mock.requests()[0].messages();
    assert_eq!(message_text(&msgs[0]), "fragmented hello");

    // Oversized: an error frame, then close 1009; the proxy stays healthy.
    ws.send_raw(Message::text("x".repeat(10_000))).await;
    let f = ws.turn().await;
    assert_eq!(error_frame(&f)["code"], "message_too_large");
    let close = loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut ws.ws),
        )
        .await
        .unwrap()
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close, Some(CloseCode::Size));
    let mut again = WsClient::connect(&url, &[("authorization", auth.as_str())])
        .await
        .unwrap();
    let f = again
        .create(&json!({"type": "response.create", "model": "m", "generate": false, "input": "x"}))
        .await;
    assert_eq!(final_response(&f)["status"], "completed");
    let logs = format!("{}{}", proxy.logs(), proxy.stderr());
    assert!(logs.contains("request"), "trace logs expected");
    for secret in [CLIENT_SECRET, MAIN_KEY] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

async fn next_close(ws: &mut WsClient) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(
            Duration::from_secs(10),
            futures_util::StreamExt::next(&mut ws.ws),
        )
        .await
        .expect("no close frame in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_old_connection_is_closed_after_its_turn_with_the_limit_error() {
    let mock = MockUpstream::start().await;
    let port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, dir| {
        let mut c = default_config(p, dir, port);
        c["websocket"] = json!({"max_connection_minutes": 0.02});
        c
    })
    .await;
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    // A turn that outlives the age limit still finishes.
    mock.push(MockReply::Sse {
        chunks: mock_upstream_text("a slow but complete answer"),
        delay_ms: 200,
        cut_after: None,
    });
    let f = ws
        .create(&json!({"type": "response.create", "model": "m", "input": "x"}))
        .await;
    assert_eq!(
        response_output_text(final_response(&f)),
        "a slow but complete answer"
    );
    let f = ws.turn().await;
    assert_eq!(
        error_frame(&f)["code"],
        "websocket_connection_limit_reached"
    );
    assert_eq!(next_close(&mut ws).await, Some(CloseCode::Normal));
}

#[tokio::test]
async fn sigterm_lets_the_turn_in_flight_finish_then_closes_with_1001() {
    // The drain is bounded by the grace period: 5 s here, the turn takes about 1 s.
    let mock = MockUpstream::start().await;
    let port = mock.port();
    let mut proxy = ProxyProcess::start_with(move |p, dir| {
        let mut c = default_config(p, dir, port);
        c["grace_period_seconds"] = json!(5);
        c
    })
    .await;
    mock.push(MockReply::Sse {
        chunks: mock_upstream_text("finished despite the shutdown"),
        delay_ms: 120,
        cut_after: None,
    });
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    ws.send(&json!({"type": "response.create", "model": "m", "input": "x"}))
        .await;
    let first = ws.next_json().await.unwrap();
    assert_eq!(first["type"], "response.created");
    proxy.terminate();
    let mut frames = vec![first];
    frames.extend(ws.turn().await);
    check_lifecycle(&as_stream(&frames));
    assert_eq!(
        response_output_text(final_response(&frames)),
        "finished despite the shutdown"
    );
    assert_eq!(next_close(&mut ws).await, Some(CloseCode::Away));
    assert!(proxy.wait_exit(Duration::from_secs(15)).is_some());
}

/// A provider reply cut off mid-stream (the connection aborted before the chunked body's
/// end) ends the socket's turn in `response.failed`, never in a `response.completed` with
/// the text cut short.
#[tokio::test]
async fn a_reply_cut_mid_stream_fails_the_turn() {
    let (mock, proxy) = setup().await;
    mock.push(MockReply::Sse {
        chunks: common::mock_upstream::sse_text("cut off here please"),
        delay_ms: 10,
        cut_after: Some(3),
    });
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let frames = ws
        .create(&json!({"type": "response.create", "model": "m", "input": "hi", "store": false}))
        .await;
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "response.failed", "{frames:#?}");
    assert_eq!(
        last["response"]["error"]["code"], "server_error",
        "{frames:#?}"
    );
}

/// The mock behind a proxy whose default backend waits 1 s for a head and between reads.
async fn with_short_waits() -> (MockUpstream, ProxyProcess) {
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |p, d| {
        let mut c = default_config(p, d, mock_port);
        c["backends"][0]["timeouts"] =
            json!({"first_byte_ms": 1000, "idle_ms": 1000, "total_ms": 60000});
        c
    })
    .await;
    (mock, proxy)
}

/// A provider that stops sending mid-stream for longer than the backend's `idle_ms` ends
/// the socket's turn in `response.failed` (idle timeout), long before `total_ms`.
#[tokio::test]
async fn a_reply_that_stalls_past_the_idle_gap_fails_the_turn() {
    let (mock, proxy) = with_short_waits().await;
    let mut chunks = common::mock_upstream::sse_text("slow");
    chunks.insert(2, String::new());
    mock.push(MockReply::Sse {
        chunks,
        delay_ms: 2500,
        cut_after: None,
    });
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let t = Instant::now();
    let frames = ws
        .create(&json!({"type": "response.create", "model": "m", "input": "hi", "store": false}))
        .await;
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "response.failed", "{frames:#?}");
    let message = last["response"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("idle timeout"), "{message}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "ended by the idle gap, not the total"
    );
}

/// A provider whose head does not come within the backend's `first_byte_ms` fails the
/// socket's turn before any event (the proxy's own connections set the connector's read
/// timeout themselves: before, a head that never came held the turn to `total_ms`).
#[tokio::test]
async fn a_head_later_than_first_byte_fails_the_turn_before_any_event() {
    let (mock, proxy) = with_short_waits().await;
    mock.push(MockReply::Delayed {
        reply: Box::new(MockReply::text("late")),
        delay_ms: 20_000,
        headers: vec![],
    });
    let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let t = Instant::now();
    let frames = ws
        .create(&json!({"type": "response.create", "model": "m", "input": "hi", "store": false}))
        .await;
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "ended by first_byte_ms, not by the late head: {frames:#?}"
    );
    let last = frames.last().unwrap();
    assert_eq!(last["type"], "error", "{frames:#?}");
    assert_eq!(last["status"], 504, "{frames:#?}");
    assert_eq!(
        frames.len(),
        1,
        "nothing of the reply was sent: {frames:#?}"
    );
}
