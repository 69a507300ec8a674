//! Integration tests: the real proxy process between a reqwest client (playing
//! Codex) and the scriptable mock Chat Completions upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::mock_upstream::{self, MockReply, MockUpstream};
use common::*;
use serde_json::{json, Value};

/// The developer prompt Codex 0.169 sends as its first input item.
const CODEX_PROMPT_START: &str = "You are a coding agent running in the Codex CLI";

async fn setup() -> (MockUpstream, ProxyProcess) {
    let mock = MockUpstream::start().await;
    let proxy = ProxyProcess::start(&mock).await;
    (mock, proxy)
}

/// Parses a streamed reply, checking status, content type and completeness.
fn expect_stream(resp: &FullResponse, proxy: &ProxyProcess) -> SseStream {
    assert_eq!(
        resp.status,
        200,
        "{}",
        proxy.context(format!("expected HTTP 200, body: {}", resp.body))
    );
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("text/event-stream"),
        "content-type should be text/event-stream, got {ct:?}"
    );
    resp.assert_body_complete();
    parse_sse(&resp.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_ok_and_backends() {
    let (_mock, proxy) = setup().await;
    let resp = client().get(proxy.url("/health")).send().await.unwrap();
    let resp = read_full(resp).await;
    assert_eq!(resp.status, 200, "body: {}", resp.body);
    let body = resp.json();
    assert_eq!(body["status"], "ok", "{body}");
    assert!(
        body["version"].is_string(),
        "version must be a string: {body}"
    );
    let names: Vec<&str> = body["backends"]
        .as_array()
        .unwrap_or_else(|| panic!("backends must be an array: {body}"))
        .iter()
        .map(|b| {
            b.as_str()
                .or_else(|| b["name"].as_str())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(names, vec!["main", "kimi"], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_text_turn_from_codex_fixture() {
    let (mock, proxy) = setup().await;
    let text = "Hi! I'm the mock model, streaming through the proxy.";
    mock.push(MockReply::text(text));

    let request = fixture("turn1-text.json");
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);

    // The full lifecycle of one text message, in order.
    let mut types = stream.types();
    types.dedup_by(|a, b| a == b && a == "response.output_text.delta");
    assert_eq!(
        types,
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
        "unexpected event sequence"
    );
    assert_eq!(streamed_text(&stream), text);

    // The terminal event carries the whole response.
    assert_eq!(terminal["type"], "response.completed");
    let response = &terminal["response"];
    assert!(
        response["id"].is_string(),
        "response.id must be a string: {response}"
    );
    assert_eq!(response["object"], "response");
    assert_eq!(response["status"], "completed");
    assert_eq!(response_output_text(response), text);
    let item = &response["output"][0];
    assert_eq!(item["type"], "message");
    assert_eq!(item["role"], "assistant");
    let usage = &response["usage"];
    assert_eq!(
        usage["input_tokens"],
        mock_upstream::PROMPT_TOKENS,
        "{usage}"
    );
    assert_eq!(
        usage["output_tokens"],
        mock_upstream::COMPLETION_TOKENS,
        "{usage}"
    );
    assert_eq!(
        usage["total_tokens"],
        mock_upstream::TOTAL_TOKENS,
        "{usage}"
    );
    assert_eq!(
        usage["input_tokens_details"]["cached_tokens"],
        mock_upstream::CACHED_TOKENS,
        "{usage}"
    );

    // What the provider received.
    mock.assert_no_rejections();
    let up = mock.single_request();
    assert_eq!(up.method, "POST");
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(up.header("authorization"), Some("Bearer sk-test-main"));
    assert!(
        up.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content-type: {:?}",
        up.header("content-type")
    );
    let body = up.json();
    assert_eq!(body["model"], MAIN_MODEL);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true, "{body}");
    let messages = up.messages();
    assert!(
        messages.iter().any(|m| {
            (m["role"] == "system" || m["role"] == "user")
                && mock_upstream::message_text(m).contains(CODEX_PROMPT_START)
        }),
        "the developer prompt must reach the provider as a system or user message"
    );
    assert!(
        messages
            .iter()
            .any(|m| m["role"] == "user" && mock_upstream::message_text(m).contains("Say hi")),
        "the user prompt must reach the provider"
    );
    let tools = body["tools"].as_array().cloned().unwrap_or_default();
    assert!(
        tools
            .iter()
            .any(|t| t["type"] == "function" && t["function"]["name"] == "exec_command"),
        "the exec_command tool must be forwarded as a Chat function tool: {tools:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streaming_request_returns_response_object() {
    let (mock, proxy) = setup().await;
    let text = "A single JSON answer.";
    mock.push(MockReply::json_text(text));

    let request = simple_request("gpt-5-codex", "Answer without streaming", false);
    let resp = post_json(&proxy.url("/v1/responses"), &request, &[]).await;
    assert_eq!(
        resp.status,
        200,
        "{}",
        proxy.context(format!("body: {}", resp.body))
    );
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let body = resp.json();
    assert_eq!(body["object"], "response", "{body}");
    assert_eq!(body["status"], "completed", "{body}");
    assert!(body["id"].is_string(), "{body}");
    let item = &body["output"][0];
    assert_eq!(item["type"], "message", "{body}");
    assert_eq!(item["role"], "assistant", "{body}");
    assert_eq!(item["content"][0]["type"], "output_text", "{body}");
    assert_eq!(item["content"][0]["text"], text, "{body}");
    assert_eq!(body["usage"]["input_tokens"], mock_upstream::PROMPT_TOKENS);
    assert_eq!(
        body["usage"]["output_tokens"],
        mock_upstream::COMPLETION_TOKENS
    );
    assert_eq!(body["usage"]["total_tokens"], mock_upstream::TOTAL_TOKENS);

    mock.assert_no_rejections();
    let up = mock.single_request();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_ne!(
        up.json()["stream"],
        true,
        "a non-streaming client request must not be streamed upstream"
    );
    let messages = up.messages();
    assert!(messages.iter().any(|m| m["role"] == "user"
        && mock_upstream::message_text(m).contains("Answer without streaming")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_routing_reaches_kimi_backend() {
    let (mock, proxy) = setup().await;
    let paths = ["/kimi/v1/responses", "/kimi/responses", "/kimi"];
    for path in paths {
        let request = simple_request("kimi-client-model", &format!("routed via {path}"), true);
        let resp = post_responses(&proxy.url(path), &request).await;
        let stream = expect_stream(&resp, &proxy);
        let terminal = check_lifecycle(&stream);
        assert_eq!(terminal["type"], "response.completed", "{path}");
        assert_eq!(
            streamed_text(&stream),
            mock_upstream::DEFAULT_TEXT,
            "{path}"
        );
    }
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), paths.len());
    for (path, up) in paths.iter().zip(&reqs) {
        assert_eq!(
            up.path, "/kimi-base/v1/chat/completions",
            "client path {path}"
        );
        assert_eq!(
            up.header("authorization"),
            Some("Bearer sk-test-kimi"),
            "client path {path}"
        );
        // kimi has no `model` in the config: the client's model goes through.
        assert_eq!(
            up.json()["model"],
            "kimi-client-model",
            "client path {path}"
        );
        assert!(
            up.messages()
                .iter()
                .any(|m| mock_upstream::message_text(m).contains(&format!("routed via {path}"))),
            "client path {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_routing_for_all_paths() {
    let (mock, proxy) = setup().await;
    let paths = ["/v1/responses", "/responses", "/"];
    for path in paths {
        let request = simple_request("gpt-5-codex", &format!("default via {path}"), true);
        let resp = post_responses(&proxy.url(path), &request).await;
        let stream = expect_stream(&resp, &proxy);
        let terminal = check_lifecycle(&stream);
        assert_eq!(terminal["type"], "response.completed", "{path}");
    }
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), paths.len());
    for (path, up) in paths.iter().zip(&reqs) {
        assert_eq!(up.path, "/v1/chat/completions", "client path {path}");
        assert_eq!(
            up.header("authorization"),
            Some("Bearer sk-test-main"),
            "client path {path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_model_overrides_request_model() {
    let (mock, proxy) = setup().await;
    let request = simple_request("gpt-5-codex", "which model?", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    check_lifecycle(&expect_stream(&resp, &proxy));
    let request = simple_request("kimi-k2-client", "which model?", true);
    let resp = post_responses(&proxy.url("/kimi/v1/responses"), &request).await;
    check_lifecycle(&expect_stream(&resp, &proxy));

    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].json()["model"],
        MAIN_MODEL,
        "the main backend's model replaces the request's"
    );
    assert_eq!(
        reqs[1].json()["model"],
        "kimi-k2-client",
        "without a backend model the request's model is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_authorization_is_not_forwarded() {
    let (mock, proxy) = setup().await;
    let secret = "client-secret-xyz-123";
    let auth = format!("Bearer {secret}");
    for path in ["/v1/responses", "/kimi/v1/responses"] {
        let request = simple_request("m", "hello", true);
        let resp = post_json(
            &proxy.url(path),
            &request,
            &[
                ("authorization", auth.as_str()),
                ("accept", "text/event-stream"),
            ],
        )
        .await;
        check_lifecycle(&expect_stream(&resp, &proxy));
    }
    mock.assert_no_rejections();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let expected = ["Bearer sk-test-main", "Bearer sk-test-kimi"];
    for (up, want) in reqs.iter().zip(expected) {
        assert_eq!(up.header("authorization"), Some(want));
        let auth_headers = up
            .headers
            .iter()
            .filter(|(k, _)| k == "authorization")
            .count();
        assert_eq!(auth_headers, 1, "exactly one Authorization header upstream");
        for (k, v) in &up.headers {
            assert!(
                !v.contains(secret),
                "the client's credential leaked upstream in header {k}: {v}"
            );
        }
        assert!(!up.body_raw.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_not_logged() {
    let (mock, proxy) = setup().await;
    let request = simple_request("m", "hello", true);
    let resp = post_json(
        &proxy.url("/v1/responses"),
        &request,
        &[("authorization", "Bearer client-secret-in-logs-check")],
    )
    .await;
    check_lifecycle(&expect_stream(&resp, &proxy));
    mock.assert_no_rejections();
    // The request's access line is its last: once stderr (coloured) and the log file have
    // it, every line the request wrote is there.
    let is_access = |l: &str| {
        l.contains(" access: ") && l.contains("method=POST") && l.contains("path=/v1/responses")
    };
    eventually(
        "the access line of the request in stderr and in the log file",
        std::time::Duration::from_secs(10),
        || async {
            let (stderr, logs) = (strip_ansi(&proxy.stderr()), proxy.logs());
            if stderr.lines().any(is_access) && logs.lines().any(is_access) {
                Ok(())
            } else {
                Err(format!(
                    "\n--- stderr ---\n{stderr}\n--- log files ---\n{logs}"
                ))
            }
        },
    )
    .await;
    let all = format!("{}\n{}\n{}", proxy.stderr(), proxy.stdout(), proxy.logs());
    for secret in [MAIN_KEY, KIMI_KEY, "client-secret-in-logs-check"] {
        assert!(
            !all.contains(secret),
            "a credential ({secret}) appears in the proxy's output or logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_path_is_404_with_openai_error() {
    let (mock, proxy) = setup().await;
    let request = simple_request("m", "hello", true);
    let resp = post_json(&proxy.url("/v1/does-not-exist"), &request, &[]).await;
    assert_eq!(resp.status, 404, "body: {}", resp.body);
    assert_openai_error_shape(&resp.json());

    let resp = read_full(
        client()
            .get(proxy.url("/definitely/not/here"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status, 404, "body: {}", resp.body);
    assert_openai_error_shape(&resp.json());
    assert!(
        mock.requests().is_empty(),
        "nothing must reach the provider for an unknown path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_openai_error() {
    let (mock, proxy) = setup().await;
    for path in ["/v1/responses", "/kimi/v1/responses"] {
        let resp = read_full(client().get(proxy.url(path)).send().await.unwrap()).await;
        assert_eq!(resp.status, 405, "GET {path}, body: {}", resp.body);
        assert_openai_error_shape(&resp.json());
    }
    assert!(mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_400_error_is_mapped() {
    let (mock, proxy) = setup().await;
    let message = "Invalid value for 'messages': the mock provider refuses this request";
    mock.push(MockReply::error(
        400,
        message,
        "invalid_request_error",
        Some("invalid_value"),
    ));
    let request = simple_request("m", "hello", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    assert_eq!(resp.status, 400, "body: {}", resp.body);
    let err = assert_openai_error_shape(&resp.json());
    assert!(
        err["message"].as_str().unwrap().contains(message),
        "the provider's message must be carried: {err}"
    );
    mock.assert_no_rejections();
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_500_error_is_mapped() {
    let (mock, proxy) = setup().await;
    let message = "The mock provider had an internal error, please retry";
    mock.push(MockReply::error(500, message, "server_error", None));
    let request = simple_request("m", "hello", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    // 5xx → 502 server_error (503/529 → 503 server_is_overloaded), as Codex retries on both.
    assert_eq!(resp.status, 502, "body: {}", resp.body);
    let err = assert_openai_error_shape(&resp.json());
    assert!(
        err["message"].as_str().unwrap().contains(message),
        "the provider's message must be carried: {err}"
    );
    mock.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_cut_mid_stream_gives_response_failed() {
    let (mock, proxy) = setup().await;
    // Role chunk + 3 content pieces, then the connection dies.
    mock.push(MockReply::Sse {
        chunks: mock_upstream::sse_text("This reply will be cut off in the middle of it"),
        delay_ms: 20,
        cut_after: Some(4),
    });
    let request = simple_request("m", "hello", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);
    assert_eq!(
        terminal["type"], "response.failed",
        "a cut upstream must end in response.failed, got {terminal}"
    );
    assert_eq!(terminal["response"]["status"], "failed", "{terminal}");
    assert_eq!(
        terminal["response"]["error"]["code"], "server_error",
        "{terminal}"
    );
    assert!(stream.of_type("response.completed").is_empty());
    mock.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_without_done_still_completes() {
    let (mock, proxy) = setup().await;
    let text = "No [DONE] marker at the end of this stream.";
    mock.push(MockReply::sse(mock_upstream::sse_text_without_done(text)));
    let request = simple_request("m", "hello", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed", "{terminal}");
    assert_eq!(streamed_text(&stream), text);
    assert_eq!(response_output_text(&terminal["response"]), text);
    mock.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_split_across_reads_keeps_utf8_text() {
    let (mock, proxy) = setup().await;
    let text = "héllo wörld — 你好世界 🌍🚀 done";
    // Re-chunk the frames at arbitrary places (mid-line, mid-JSON), with a
    // pause between chunks so they arrive in separate reads.
    let joined: String = mock_upstream::sse_text(text).concat();
    let chunks = mock_upstream::split_pieces(&joined, 7);
    mock.push(MockReply::Sse {
        chunks,
        delay_ms: 1,
        cut_after: None,
    });
    let request = simple_request("m", "hello", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed", "{terminal}");
    assert_eq!(streamed_text(&stream), text);
    assert_eq!(response_output_text(&terminal["response"]), text);
    mock.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_call_stream_gives_function_call_items() {
    let (mock, proxy) = setup().await;
    let calls = [
        ("call_tool_a", "exec_command", r#"{"cmd":"ls -la /tmp"}"#),
        (
            "call_tool_b",
            "exec_command",
            r#"{"cmd":"echo \"quoted\" ünïcode","workdir":"/tmp"}"#,
        ),
    ];
    mock.push(MockReply::sse(mock_upstream::sse_tool_calls(&calls)));
    let request = fixture("turn1-text.json");
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed", "{terminal}");

    let items: Vec<Value> = done_items(&stream)
        .into_iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert_eq!(items.len(), calls.len(), "function_call items: {items:?}");
    for (item, (id, name, args)) in items.iter().zip(calls) {
        assert_eq!(item["call_id"], id, "{item}");
        assert_eq!(item["name"], name, "{item}");
        let got: Value = serde_json::from_str(item["arguments"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("arguments are not complete JSON ({e}): {item}"));
        let want: Value = serde_json::from_str(args).unwrap();
        assert_eq!(got, want, "{item}");
        assert!(
            item["id"].is_string(),
            "function_call item needs an id: {item}"
        );
    }
    // The final response lists the same calls.
    let output: Vec<&Value> = terminal["response"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert_eq!(output.len(), calls.len(), "{terminal}");
    for (item, (id, _, args)) in output.iter().zip(calls) {
        assert_eq!(item["call_id"], id);
        let got: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(got, serde_json::from_str::<Value>(args).unwrap());
    }
    mock.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_stream_gives_reasoning_then_message() {
    let (mock, proxy) = setup().await;
    let reasoning = "The user greets me; I should greet back briefly.";
    let text = "Hello back!";
    mock.push(MockReply::reasoning(reasoning, text));
    let request = simple_request("m", "hello", true);
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed", "{terminal}");
    assert_eq!(streamed_text(&stream), text);

    let items = done_items(&stream);
    let r = items
        .iter()
        .position(|i| i["type"] == "reasoning")
        .unwrap_or_else(|| panic!("no reasoning item: {items:?}"));
    let m = items
        .iter()
        .position(|i| i["type"] == "message")
        .unwrap_or_else(|| panic!("no message item: {items:?}"));
    assert!(r < m, "the reasoning item must come before the message");
    let item = &items[r];
    let mut shown = String::new();
    for key in ["summary", "content"] {
        for part in item[key].as_array().into_iter().flatten() {
            shown.push_str(part["text"].as_str().unwrap_or_default());
        }
    }
    assert!(
        shown.contains(reasoning),
        "the reasoning text must appear in the reasoning item's summary or content: {item}"
    );
    mock.assert_no_rejections();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_turn_fixture_sends_tool_history_upstream() {
    let (mock, proxy) = setup().await;
    mock.push(MockReply::text("The command printed hello-from-tool."));
    let request = fixture("turn2-after-exec-command.json");
    let resp = post_responses(&proxy.url("/v1/responses"), &request).await;
    let stream = expect_stream(&resp, &proxy);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed", "{terminal}");

    mock.assert_no_rejections();
    let up = mock.single_request();
    let messages = up.messages();
    let call_id = "call_b04d3a13433b48fb8a8131c0";
    let assistant = messages
        .iter()
        .find(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
        .unwrap_or_else(|| panic!("no assistant message with tool_calls: {messages:?}"));
    let call = &assistant["tool_calls"][0];
    assert_eq!(call["id"], call_id);
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "exec_command");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"cmd": "echo hello-from-tool"}));
    let pos_call = messages.iter().position(|m| m == assistant).unwrap();
    let pos_tool = messages
        .iter()
        .position(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message for {call_id}: {messages:?}"));
    assert!(pos_call < pos_tool, "the tool result must follow the call");
    assert!(mock_upstream::message_text(&messages[pos_tool]).contains("hello-from-tool"));
}

// ---------------------------------------------------------------------------
// Self-tests of the test harness (no proxy involved): the mock is as strict as
// documented, and the SSE parser / lifecycle checker accept a valid stream and
// reject broken ones.
// ---------------------------------------------------------------------------

async fn post_mock(mock: &MockUpstream, path: &str, body: &str, auth: bool) -> FullResponse {
    let mut req = client()
        .post(mock.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if auth {
        req = req.header("authorization", "Bearer sk-harness");
    }
    read_full(req.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_mock_rejects_invalid_chat_requests() {
    let mock = MockUpstream::start().await;
    let good = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let mut cases: Vec<(&str, String, bool)> = vec![
        ("/v1/responses", good.to_string(), true),
        ("/v1/chat/completions", "not json".to_owned(), true),
        ("/v1/chat/completions", good.to_string(), false),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}]}).to_string(),
            true,
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": []}).to_string(),
            true,
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "developer", "content": "x"}]}).to_string(),
            true,
        ),
        (
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}).to_string(),
            true,
        ),
    ];
    for key in mock_upstream::RESPONSES_ONLY_KEYS {
        let mut body = good.clone();
        body[*key] = json!(null);
        cases.push(("/v1/chat/completions", body.to_string(), true));
    }
    for (path, body, auth) in &cases {
        let resp = post_mock(&mock, path, body, *auth).await;
        assert_eq!(resp.status, 400, "{path} {body} auth={auth}: {}", resp.body);
        assert_openai_error_shape(&resp.json());
    }
    let reqs = mock.requests();
    assert_eq!(reqs.len(), cases.len());
    assert!(reqs.iter().all(mock_upstream::RecordedRequest::is_rejected));

    // A valid request is accepted (default JSON reply).
    let resp = post_mock(&mock, "/v1/chat/completions", &good.to_string(), true).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.json()["choices"][0]["message"]["content"],
        mock_upstream::DEFAULT_TEXT
    );
    assert!(mock.requests().last().unwrap().rejection.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_mock_streams_and_cuts() {
    let mock = MockUpstream::start().await;
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
            .to_string();

    // Default streamed reply.
    let resp = post_mock(&mock, "/v1/chat/completions", &body, true).await;
    resp.assert_body_complete();
    assert!(resp.body.ends_with("data: [DONE]\n\n"));
    let text: String = resp
        .body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, mock_upstream::DEFAULT_TEXT);

    // A cut stream: the client sees an aborted body after 2 frames.
    let frames = mock_upstream::sse_text("some text to cut");
    mock.push(MockReply::Sse {
        chunks: frames.clone(),
        delay_ms: 5,
        cut_after: Some(2),
    });
    let resp = post_mock(&mock, "/v1/chat/completions", &body, true).await;
    assert!(resp.body_error.is_some(), "the body should be aborted");
    assert_eq!(resp.body, frames[..2].concat());

    // Tool-call builder: arguments reassemble.
    let frames = mock_upstream::sse_tool_calls(&[("c1", "f", r#"{"a":"bcdefghijklmnop"}"#)]);
    let args: String = frames
        .iter()
        .filter_map(|f| f.strip_prefix("data: "))
        .map(str::trim)
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(args, r#"{"a":"bcdefghijklmnop"}"#);
}

fn synthetic_stream(text: &str, with_done: bool) -> String {
    let mut seq = 0u64;
    let mut out = String::new();
    let mut push = |mut v: Value| {
        v["sequence_number"] = json!(seq);
        seq += 1;
        out.push_str(&format!(
            "event: {}\ndata: {}\n\n",
            v["type"].as_str().unwrap(),
            v
        ));
    };
    let item = json!({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}]});
    push(json!({"type": "response.created", "response": {"id": "resp_1"}}));
    push(json!({"type": "response.in_progress", "response": {"id": "resp_1"}}));
    push(
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "id": "msg_1", "content": []}}),
    );
    push(
        json!({"type": "response.content_part.added", "output_index": 0, "content_index": 0, "item_id": "msg_1", "part": {"type": "output_text", "text": ""}}),
    );
    for piece in mock_upstream::split_pieces(text, 3) {
        push(
            json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "item_id": "msg_1", "delta": piece}),
        );
    }
    push(
        json!({"type": "response.output_text.done", "output_index": 0, "content_index": 0, "item_id": "msg_1", "text": text}),
    );
    push(
        json!({"type": "response.content_part.done", "output_index": 0, "content_index": 0, "item_id": "msg_1", "part": {"type": "output_text", "text": text}}),
    );
    push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    push(
        json!({"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": [item]}}),
    );
    if with_done {
        out.push_str("data: [DONE]\n\n");
    }
    out
}

#[test]
fn harness_lifecycle_checker() {
    let good = synthetic_stream("héllo wörld", true);
    let stream = parse_sse(&good);
    let terminal = check_lifecycle(&stream);
    assert_eq!(terminal["type"], "response.completed");
    assert_eq!(streamed_text(&stream), "héllo wörld");

    let bad_cases = [
        // No [DONE].
        synthetic_stream("abc", false),
        // Event name differs from type.
        good.replacen("event: response.in_progress", "event: response.progress", 1),
        // A delta that does not add up to the done text.
        good.replacen("\"delta\":\"hél\"", "\"delta\":\"hXl\"", 1),
        // Two terminal events.
        good.replace("data: [DONE]\n\n", "")
            + "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":99}\n\ndata: [DONE]\n\n",
        // Missing output_item.done.
        good.lines()
            .collect::<Vec<_>>()
            .join("\n")
            .split("\n\n")
            .filter(|b| !b.contains("response.output_item.done"))
            .map(|b| format!("{b}\n\n"))
            .collect::<String>(),
    ];
    for (i, bad) in bad_cases.iter().enumerate() {
        let bad = bad.clone();
        let result = std::panic::catch_unwind(move || check_lifecycle(&parse_sse(&bad)));
        assert!(result.is_err(), "bad case #{i} was accepted");
    }
}

/// A client that sends `Expect: 100-continue` (curl for bodies over 1 MiB, and many HTTP
/// libraries) gets `100 Continue` before it sends its body, then the answer; with routing
/// by model (the first chunk read to route) as without.
#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mock = MockUpstream::start().await;
    let mock_port = mock.port();
    let proxy = ProxyProcess::start_with(move |port, dir| {
        let mut c = default_config(port, dir, mock_port);
        // The second backend routes by model: the body's first chunk is read to route.
        c["backends"][1]["match_rules"]["model"] = json!("kimi-*");
        c
    })
    .await;
    for (path, model) in [("/v1/responses", "gpt-x"), ("/v1/responses", "kimi-k2.6")] {
        let body = serde_json::to_vec(&simple_request(model, "hi", false)).unwrap();
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        // The body waits for the 100 (bounded: a proxy that never sends it fails here).
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{model}: no 100 Continue before the body"))
                .unwrap();
            assert!(n > 0, "{model}: closed before 100 Continue");
            got.extend_from_slice(&buf[..n]);
        }
        let first = String::from_utf8_lossy(&got).to_string();
        assert!(
            first.starts_with("HTTP/1.1 100 Continue\r\n"),
            "{model}: {first}"
        );
        tcp.write_all(&body).await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest))
            .await
            .expect("the answer")
            .unwrap();
        got.extend_from_slice(&rest);
        let all = String::from_utf8_lossy(&got).to_string();
        assert!(all.contains("HTTP/1.1 200"), "{model}: {all}");
        assert!(all.contains("\"object\":\"response\""), "{model}: {all}");
        assert_eq!(
            all.matches("100 Continue").count(),
            1,
            "{model}: one 100: {all}"
        );
    }
    assert_eq!(mock.requests().len(), 2);
}
