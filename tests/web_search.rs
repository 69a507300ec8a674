//! Codex's hosted `web_search` tool through each provider's own search, against the strict
//! provider mocks (tests/common/providers.rs), which accept only the documented search shape:
//!
//! - GLM: the `web_search` tool in GLM's form; its results (a top-level `web_search` array)
//!   come back as one `web_search_call` item with its sources and the events Codex and the
//!   SDKs read, and the answer's `[ref_1]` marker as a `url_citation` annotation;
//! - Kimi: the `$web_search` builtin function; the proxy answers the model's call with the
//!   call's arguments unchanged and calls again (the client sees one `web_search_call`, never
//!   a `$web_search` function call), over HTTP (streamed and not) and over a WebSocket; the
//!   usage of both calls is counted;
//! - DeepSeek: its server tool only where a backend says `"web_search": "native"`;
//! - MiniMax, or a backend with `"web_search": "off"`: the tool is dropped, visibly (counted
//!   in `ccp_unconverted_total{kind="tool",type="web_search"}`);
//! - `"web_search": "native"` on a profile without a search is a configuration error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::providers::{
    Profile, ProviderMock, CACHED_TOKENS, COMPLETION_TOKENS, GLM_SEARCH_TEXT, KIMI_SEARCH_ARGS,
    KIMI_SEARCH_TEXT, KIMI_WEB_SEARCH, PROMPT_TOKENS, SEARCH_TITLE, SEARCH_URL,
};
use common::ws::{check_turn, final_response, WsClient};
use common::*;
use serde_json::{json, Value};

const QUESTION: &str = "What is planned for the next Rust edition? Search the web.";

/// Codex's request with `web_search = "live"`: the hosted tool next to a function.
fn request(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "instructions": "You are a coding agent.",
        "input": [{"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": QUESTION}]}],
        "tools": [
            {"type": "function", "name": "exec_command", "description": "Run a command.",
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
            {"type": "web_search", "external_web_access": true}
        ],
        "tool_choice": "auto",
        "stream": stream,
        "store": false,
    })
}

async fn rig(p: Profile, extra: Value) -> (ProxyProcess, ProviderMock) {
    let mock = ProviderMock::start(p, "sk-search-key").await;
    let mut backend = mock.backend(p.name(), json!({"default": true}));
    if let (Some(b), Some(e)) = (backend.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let proxy = ProxyProcess::start_with_backends(json!([backend])).await;
    (proxy, mock)
}

fn context(proxy: &ProxyProcess, mock: &ProviderMock) -> String {
    proxy.context(format!(
        "mock requests: {:#?}",
        mock.requests()
            .iter()
            .map(|r| (r.rejection.clone(), r.body_raw.clone()))
            .collect::<Vec<_>>()
    ))
}

fn items_of_type<'a>(response: &'a Value, ty: &str) -> Vec<&'a Value> {
    response["output"]
        .as_array()
        .map(|o| o.iter().filter(|i| i["type"] == ty).collect())
        .unwrap_or_default()
}

/// The one `web_search_call` of a finished Response, completed, with `sources` when given.
fn assert_search_item(response: &Value, sources: Option<&[&str]>, ctx: &str) {
    let calls = items_of_type(response, "web_search_call");
    assert_eq!(calls.len(), 1, "one web_search_call: {response:#}\n{ctx}");
    let call = calls[0];
    assert_eq!(call["status"], "completed", "{ctx}");
    assert_eq!(call["action"]["type"], "search", "{ctx}");
    assert!(call["action"]["query"].is_string(), "{ctx}");
    assert!(call["id"].as_str().unwrap().starts_with("ws_"), "{ctx}");
    if let Some(urls) = sources {
        let got: Vec<&str> = call["action"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s["type"], "url", "{ctx}");
                s["url"].as_str().unwrap()
            })
            .collect();
        assert_eq!(got, urls, "{ctx}");
    }
    for f in items_of_type(response, "function_call") {
        assert_ne!(
            f["name"], KIMI_WEB_SEARCH,
            "the provider's search leaked: {ctx}"
        );
    }
}

/// The events of a web search, in order, for the search item at `output_index`.
fn assert_search_events(stream: &common::core::SseStream, ctx: &str) {
    let names: Vec<String> = stream
        .events
        .iter()
        .filter(|e| e.event.starts_with("response.web_search_call."))
        .map(|e| e.event.clone())
        .collect();
    assert_eq!(
        names,
        [
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed"
        ],
        "{ctx}"
    );
    let added = stream
        .of_type("response.output_item.added")
        .into_iter()
        .find(|e| e["item"]["type"] == "web_search_call")
        .expect("web_search_call added");
    assert_eq!(added["item"]["status"], "in_progress", "{ctx}");
}

fn text_of(response: &Value) -> (String, Value) {
    let msg = items_of_type(response, "message")
        .into_iter()
        .next_back()
        .cloned()
        .unwrap_or(Value::Null);
    let part = &msg["content"][0];
    (
        part["text"].as_str().unwrap_or("").to_owned(),
        part["annotations"].clone(),
    )
}

#[tokio::test]
async fn glm_searches_with_its_own_tool_and_its_results_come_back_as_a_web_search_call() {
    let (proxy, mock) = rig(Profile::Glm, json!({})).await;
    for stream in [true, false] {
        let resp = post_responses(&proxy.url("/v1/responses"), &request("glm-4.6", stream)).await;
        let ctx = context(&proxy, &mock);
        assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
        let response = if stream {
            let s = common::core::parse_sse(&resp.body);
            let terminal = common::core::check_lifecycle(&s);
            assert_search_events(&s, &ctx);
            // The annotation is announced before the text is done.
            let ann = s.of_type("response.output_text.annotation.added");
            assert_eq!(ann.len(), 1, "{ctx}");
            assert_eq!(ann[0]["annotation"]["url"], SEARCH_URL, "{ctx}");
            terminal["response"].clone()
        } else {
            resp.json()
        };
        assert_eq!(response["status"], "completed", "{ctx}");
        assert_search_item(&response, Some(&[SEARCH_URL]), &ctx);
        let (text, annotations) = text_of(&response);
        assert_eq!(text, GLM_SEARCH_TEXT, "{ctx}");
        let marker = "[ref_1]";
        let start = text.find(marker).unwrap();
        assert_eq!(
            annotations,
            json!([{"type": "url_citation", "url": SEARCH_URL, "title": SEARCH_TITLE,
                "start_index": start, "end_index": start + marker.len()}]),
            "{ctx}"
        );
        // GLM searched before it answered: the search item comes first.
        let kinds: Vec<&str> = response["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["web_search_call", "reasoning", "message"], "{ctx}");
    }
    mock.assert_all_accepted();
    // GLM got its own tool, next to the function.
    for r in mock.requests() {
        let tools = r.body.as_ref().unwrap()["tools"]
            .as_array()
            .unwrap()
            .clone();
        let search: Vec<&Value> = tools.iter().filter(|t| t["type"] == "web_search").collect();
        assert_eq!(search.len(), 1, "{tools:#?}");
        assert_eq!(search[0]["web_search"]["enable"], true);
        assert_eq!(search[0]["web_search"]["search_engine"], "search_std");
        assert_eq!(search[0]["web_search"]["search_result"], true);
    }
    let metrics = metrics_text(&proxy).await;
    assert!(
        !unconverted_samples(&metrics)
            .iter()
            .any(|(_, ty, _)| ty == "web_search"),
        "a web_search GLM ran is not dropped: {metrics}"
    );
}

/// Kimi's loop: the model calls `$web_search`, the proxy sends the arguments back as the
/// tool message (unchanged: the strict mock checks it) and calls again; the client sees one
/// response with the search and the answer.
fn assert_kimi_loop(mock: &ProviderMock, turns: usize, ctx: &str) {
    mock.assert_all_accepted();
    let requests = mock.requests();
    assert_eq!(requests.len(), 2 * turns, "two calls per turn: {ctx}");
    for pair in requests.chunks(2) {
        let first = pair[0].body.as_ref().unwrap();
        let second = pair[1].body.as_ref().unwrap();
        assert_eq!(
            first["stream"], true,
            "Kimi's replies are read as streams: {ctx}"
        );
        let tools = first["tools"].as_array().unwrap();
        assert!(
            tools.contains(
                &json!({"type": "builtin_function", "function": {"name": "$web_search"}})
            ),
            "{tools:#?}"
        );
        // The second call is the first plus the answer, byte for byte before it.
        let (a, b) = (&pair[0].body_raw, &pair[1].body_raw);
        let cut = a.find("],\"stream\"").unwrap();
        assert!(
            b.starts_with(&a[..cut]),
            "the second call extends the first:\n{a}\n{b}"
        );
        let msgs = second["messages"].as_array().unwrap();
        let n = msgs.len();
        let call = &msgs[n - 2];
        assert_eq!(call["role"], "assistant");
        assert_eq!(call["tool_calls"][0]["type"], "builtin_function");
        assert_eq!(call["tool_calls"][0]["function"]["name"], KIMI_WEB_SEARCH);
        assert!(
            call["reasoning_content"].is_string(),
            "reasoning passed back: {call}"
        );
        let answer = &msgs[n - 1];
        assert_eq!(answer["role"], "tool");
        assert_eq!(answer["tool_call_id"], call["tool_calls"][0]["id"]);
        assert_eq!(answer["content"], KIMI_SEARCH_ARGS);
        assert_eq!(first["messages"].as_array().unwrap().len(), n - 2);
    }
}

fn assert_kimi_response(response: &Value, ctx: &str) {
    assert_eq!(response["status"], "completed", "{ctx}");
    assert_search_item(response, None, ctx);
    assert_eq!(text_of(response).0, KIMI_SEARCH_TEXT, "{ctx}");
    let kinds: Vec<&str> = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["reasoning", "web_search_call", "reasoning", "message"],
        "{ctx}"
    );
    // Both calls' tokens (the search's are in the second call's prompt, as Kimi counts them).
    assert_eq!(
        response["usage"]["input_tokens"],
        2 * PROMPT_TOKENS,
        "{ctx}"
    );
    assert_eq!(
        response["usage"]["output_tokens"],
        2 * COMPLETION_TOKENS,
        "{ctx}"
    );
}

#[tokio::test]
async fn kimi_search_call_is_answered_by_the_proxy_over_http() {
    let (proxy, mock) = rig(Profile::Kimi, json!({})).await;
    let mut turns = 0;
    for stream in [true, false] {
        let resp = post_responses(&proxy.url("/v1/responses"), &request("kimi-k2.6", stream)).await;
        turns += 1;
        let ctx = context(&proxy, &mock);
        assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
        let response = if stream {
            let s = common::core::parse_sse(&resp.body);
            let terminal = common::core::check_lifecycle(&s);
            assert_search_events(&s, &ctx);
            assert!(
                s.of_type("response.function_call_arguments.delta")
                    .is_empty(),
                "{ctx}"
            );
            terminal["response"].clone()
        } else {
            assert_eq!(
                resp.header("content-type").as_deref(),
                Some("application/json"),
                "{ctx}"
            );
            resp.json()
        };
        assert_kimi_response(&response, &ctx);
    }
    let ctx = context(&proxy, &mock);
    assert_kimi_loop(&mock, turns, &ctx);
    // One turn each in the statistics and the access log (not one per provider call).
    let metrics = metrics_text(&proxy).await;
    assert!(
        metrics.contains("ccp_requests_total{backend=\"kimi\"} 2"),
        "{metrics}"
    );
    // Each turn's two calls, by model: the cached share of Kimi's input.
    let per_model =
        |name: &str, n: u64| format!("{name}{{backend=\"kimi\",model=\"kimi-k2.6\"}} {n}");
    for line in [
        per_model("ccp_input_tokens_total", 4 * PROMPT_TOKENS),
        per_model("ccp_cached_tokens_total", 4 * CACHED_TOKENS),
        per_model("ccp_output_tokens_total", 4 * COMPLETION_TOKENS),
    ] {
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn kimi_search_call_is_answered_by_the_proxy_over_a_websocket() {
    let (proxy, mock) = rig(Profile::Kimi, json!({})).await;
    let mut ws = WsClient::connect(&common::ws::ws_url(proxy.port, "/v1/responses"), &[])
        .await
        .unwrap();
    let mut body = request("kimi-k2.6", true);
    body["type"] = json!("response.create");
    let frames = ws.create(&body).await;
    let ctx = context(&proxy, &mock);
    let terminal = check_turn(&frames);
    assert_eq!(terminal["type"], "response.completed", "{frames:#?}\n{ctx}");
    let names: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["type"].as_str())
        .filter(|t| t.starts_with("response.web_search_call."))
        .collect();
    assert_eq!(
        names,
        [
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed"
        ],
        "{ctx}"
    );
    assert_kimi_response(final_response(&frames), &ctx);
    assert_kimi_loop(&mock, 1, &ctx);
}

#[tokio::test]
async fn kimi_refusing_the_answer_ends_the_turn_with_the_providers_error() {
    // One attempt: the refusal is not retried.
    let (proxy, mock) = rig(Profile::Kimi, json!({"retries": 0})).await;
    // The model searches; the answer to its call is refused.
    mock.push(common::providers::Reply::tool(
        Some("search first"),
        KIMI_WEB_SEARCH,
        KIMI_SEARCH_ARGS,
    ));
    mock.push(common::providers::Reply::Error);
    let resp = post_responses(&proxy.url("/v1/responses"), &request("kimi-k2.6", true)).await;
    let ctx = context(&proxy, &mock);
    assert_eq!(resp.status, 200, "{ctx}");
    let s = common::core::parse_sse(&resp.body);
    let terminal = common::core::check_lifecycle(&s);
    assert_eq!(terminal["type"], "response.failed", "{ctx}");
    let (_, err) = common::providers::error_reply(Profile::Kimi);
    let provider_message = err["error"]["message"].as_str().unwrap();
    let message = terminal["response"]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(provider_message),
        "the provider's error is named: {message}\n{ctx}"
    );
    assert_eq!(mock.requests().len(), 2, "{ctx}");
}

#[tokio::test]
async fn deepseek_offers_its_server_tool_only_when_a_backend_asks_for_it() {
    for (extra, offered) in [(json!({}), false), (json!({"web_search": "native"}), true)] {
        let (proxy, mock) = rig(Profile::DeepSeek, extra.clone()).await;
        let resp = post_responses(
            &proxy.url("/v1/responses"),
            &request("deepseek-v4-pro", false),
        )
        .await;
        let ctx = context(&proxy, &mock);
        assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
        mock.assert_all_accepted();
        let body = mock.requests()[0].body.clone().unwrap();
        let has = body["tools"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "deepseek_web_search"}));
        assert_eq!(has, offered, "{extra}: {body:#}");
        let metrics = metrics_text(&proxy).await;
        let dropped = unconverted_samples(&metrics)
            .iter()
            .any(|(kind, ty, _)| kind == "tool" && ty == "web_search");
        assert_eq!(dropped, !offered, "{metrics}");
    }
}

#[tokio::test]
async fn without_a_search_of_the_providers_the_tool_is_dropped_visibly() {
    for (p, extra, model) in [
        (Profile::MiniMax, json!({}), "MiniMax-M2.7"),
        (Profile::Glm, json!({"web_search": "off"}), "glm-4.6"),
    ] {
        let (proxy, mock) = rig(p, extra).await;
        let resp = post_responses(&proxy.url("/v1/responses"), &request(model, false)).await;
        let ctx = context(&proxy, &mock);
        assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
        mock.assert_all_accepted();
        let body = mock.requests()[0].body.clone().unwrap();
        let tools = body["tools"].as_array().unwrap();
        assert!(
            tools.iter().all(|t| t["type"] == "function"),
            "only the function: {tools:#?}"
        );
        assert!(items_of_type(&resp.json(), "web_search_call").is_empty());
        let metrics = metrics_text(&proxy).await;
        let dropped: f64 = unconverted_samples(&metrics)
            .iter()
            .filter(|(kind, ty, _)| kind == "tool" && ty == "web_search")
            .map(|(_, _, n)| *n)
            .sum();
        assert_eq!(dropped, 1.0, "{metrics}");
        let warned = proxy.stderr() + &proxy.logs();
        assert!(
            warned.contains("the client offered web_search, which this backend cannot run"),
            "{}",
            proxy.context("the drop is warned")
        );
    }
}

#[test]
fn native_search_on_a_profile_without_one_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        json!({"backends": [{"name": "mm", "url": "http://127.0.0.1:9/v1", "provider": "minimax",
            "web_search": "native", "match_rules": {"default": true}}]})
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(proxy_bin())
        .args(["--config", path.to_str().unwrap(), "--check"])
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("backends[0].web_search")
            && stderr.contains("has no web search of its own"),
        "{stderr}"
    );
}

/// The OpenAI Python SDK's typed models accept every event and Response object of a search
/// turn (GLM's and Kimi's, streamed and not): `web_search_call` items, their events, the
/// `url_citation` annotations (tests/sdk/strict_events.py).
#[tokio::test]
async fn sdk_models_accept_the_search_items_and_events() {
    let dir = tempfile::tempdir().unwrap();
    for (p, model) in [(Profile::Glm, "glm-4.6"), (Profile::Kimi, "kimi-k2.6")] {
        let (proxy, mock) = rig(p, json!({})).await;
        for stream in [true, false] {
            let resp = post_responses(&proxy.url("/v1/responses"), &request(model, stream)).await;
            assert_eq!(resp.status, 200, "{}", context(&proxy, &mock));
            assert!(resp.body.contains("web_search_call"), "{}", resp.body);
            let ext = if stream { "sse" } else { "json" };
            std::fs::write(dir.path().join(format!("{}.{ext}", p.name())), &resp.body).unwrap();
        }
        mock.assert_all_accepted();
    }
    run_strict_check(dir.path());
}

/// One Codex run at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The real Codex CLI with `web_search = "live"` through a provider's own search: its JSON
/// events show the search, its final message is the provider's answer from the search, and
/// the strict mock accepted every request.
async fn codex_searches_through(p: Profile, model: &str, answer: &str) {
    use common::codex::{run_codex, CodexOptions};
    let _serial = SERIAL.lock().await;
    let (proxy, mock) = rig(p, json!({})).await;
    let workdir = tempfile::tempdir().unwrap();
    let opts = CodexOptions {
        model: model.to_owned(),
        config: vec!["web_search=\"live\"".to_owned()],
        timeout: std::time::Duration::from_secs(120),
        ..CodexOptions::default()
    };
    let run = run_codex(&proxy.url("/v1"), workdir.path(), QUESTION, &opts).await;
    let ctx = format!("{}\n{}", run.describe(), context(&proxy, &mock));
    run.assert_success(&ctx);
    mock.assert_all_accepted();
    let searches = run.completed_items("web_search");
    assert_eq!(searches.len(), 1, "Codex shows the search: {ctx}");
    assert_eq!(
        run.agent_messages().last().map(String::as_str),
        Some(answer),
        "{ctx}"
    );
    // Codex offered its hosted tool; the provider got its own search instead.
    let first = mock.requests()[0].body.clone().unwrap();
    let tools = first["tools"].as_array().unwrap();
    assert!(
        tools.iter().any(|t| t["type"] != "function"),
        "the provider's search was offered: {tools:#?}"
    );
}

#[tokio::test]
async fn codex_web_search_through_glm() {
    codex_searches_through(Profile::Glm, "glm-4.6", GLM_SEARCH_TEXT).await;
}

#[tokio::test]
async fn codex_web_search_through_kimi() {
    codex_searches_through(Profile::Kimi, "kimi-k2.6", KIMI_SEARCH_TEXT).await;
}

/// A Kimi turn with its search, carried by the proxy over HTTP, is kept in the store like
/// any other: retrieved with its `web_search_call`, and continued with
/// `previous_response_id` (the search noted in the history the provider gets).
#[tokio::test]
async fn a_kimi_search_turn_is_stored_and_continued() {
    let (proxy, mock) = rig(Profile::Kimi, json!({})).await;
    let mut first = request("kimi-k2.6", true);
    first["store"] = json!(true);
    let resp = post_responses(&proxy.url("/v1/responses"), &first).await;
    let ctx = context(&proxy, &mock);
    assert_eq!(resp.status, 200, "{ctx}");
    let s = common::core::parse_sse(&resp.body);
    let terminal = common::core::check_lifecycle(&s);
    let id = terminal["response"]["id"].as_str().unwrap().to_owned();
    let got = client()
        .get(proxy.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200, "{ctx}");
    let stored: Value = got.json().await.unwrap();
    assert_search_item(&stored, None, &ctx);
    // The next turn, without tools: the provider gets the conversation so far.
    let next = json!({"model": "kimi-k2.6", "input": "Thanks.", "previous_response_id": id,
        "stream": false});
    let resp = post_responses(&proxy.url("/v1/responses"), &next).await;
    let ctx = context(&proxy, &mock);
    assert_eq!(resp.status, 200, "{}\n{ctx}", resp.body);
    mock.assert_all_accepted();
    let last = mock.requests().pop().unwrap().body.unwrap();
    let history = last["messages"].to_string();
    assert!(history.contains(QUESTION), "{history}");
    assert!(history.contains("[web search"), "{history}");
    assert!(history.contains(KIMI_SEARCH_TEXT), "{history}");
}
