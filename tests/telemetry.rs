//! OpenTelemetry: the real proxy binary exports its spans to an in-process OTLP receiver —
//! a tonic gRPC `TraceService` (OTLP/gRPC) or an axum route decoding protobuf (OTLP/HTTP) —
//! with the GenAI attributes, the mock upstream's usage, and the W3C trace context taken from
//! the client and passed upstream with the upstream span's id.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mock_upstream::{
    MockReply, MockUpstream, CACHED_TOKENS, COMPLETION_TOKENS, MOCK_MODEL, PROMPT_TOKENS,
};
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde_json::{json, Value};

const CLIENT_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";
const TRACESTATE: &str = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
const UPSTREAM_KEY: &str = "sk-test-deepseek-0123456789abcdef";
const SPAN_KIND_SERVER: i32 = 2;
const SPAN_KIND_CLIENT: i32 = 3;
const STATUS_CODE_ERROR: i32 = 2;

fn client_traceparent() -> String {
    format!("00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01")
}

/// One received span, flattened with its resource's `service.name`.
#[derive(Debug, Clone)]
struct Received {
    service: Option<String>,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    status_code: i32,
    attrs: BTreeMap<String, Value>,
}

impl Received {
    fn attr(&self, key: &str) -> Value {
        self.attrs.get(key).cloned().unwrap_or(Value::Null)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_of(kv: &KeyValue) -> Value {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => json!(s),
        Some(AnyValue::IntValue(i)) => json!(i),
        Some(AnyValue::DoubleValue(d)) => json!(d),
        Some(AnyValue::BoolValue(b)) => json!(b),
        other => json!(format!("{other:?}")),
    }
}

/// What a receiver got, shared with the test.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Received>>>);

impl Spans {
    fn add(&self, req: ExportTraceServiceRequest) {
        let mut out = self.0.lock().unwrap();
        for rs in req.resource_spans {
            let service = rs.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| json_of(kv).as_str().map(str::to_owned))
            });
            for ss in rs.scope_spans {
                for s in ss.spans {
                    out.push(Received {
                        service: service.clone(),
                        name: s.name.clone(),
                        kind: s.kind,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        status_code: s.status.as_ref().map(|st| st.code).unwrap_or(0),
                        attrs: s
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), json_of(kv)))
                            .collect(),
                    });
                }
            }
        }
    }

    fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` spans arrived.
    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.all();
            if all.len() >= n || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tonic::async_trait]
impl TraceService for Spans {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.add(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver on 127.0.0.1:0.
async fn grpc_receiver() -> (Spans, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spans = Spans::default();
    let service = TraceServiceServer::new(spans.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    (spans, port)
}

/// An OTLP/HTTP (protobuf) receiver on 127.0.0.1:0: `POST /v1/traces`.
async fn http_receiver() -> (Spans, u16) {
    use axum::http::header::CONTENT_TYPE;
    use prost::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spans = Spans::default();
    let state = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let spans = state.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                spans.add(req);
                (
                    [(CONTENT_TYPE, "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (spans, port)
}

fn config(port: u16, log_dir: &std::path::Path, mock_port: u16, telemetry: Value) -> Value {
    let mut c = test_config(
        port,
        log_dir,
        json!([{
            "name": "deepseek",
            "url": format!("http://127.0.0.1:{mock_port}/v1"),
            "api_key": UPSTREAM_KEY,
            // One attempt: a scripted error is the turn's answer (retries: tests/failover.rs).
            "retries": 0,
            "match_rules": {"default": true}
        }]),
    );
    c["telemetry"] = telemetry;
    c
}

/// (trace id, parent id) of a `traceparent` header.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    (parts[1].to_owned(), parts[2].to_owned())
}

fn one<'a>(spans: &'a [Received], pred: impl Fn(&Received) -> bool, what: &str) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|s| pred(s)).collect();
    assert_eq!(found.len(), 1, "{what}: {spans:#?}");
    found[0]
}

fn shown(span: &Received) -> String {
    serde_json::to_string_pretty(&json!({
        "name": span.name,
        "kind": span.kind,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "status_code": span.status_code,
        "service.name": span.service,
        "attributes": span.attrs,
    }))
    .unwrap()
}

/// Sends SIGTERM and waits for the exit: the spans must be flushed by then.
fn stop(proxy: &mut ProxyProcess) {
    proxy.terminate();
    let status = proxy.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        proxy.context(format!("the proxy did not exit cleanly: {status:?}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_spans_carry_genai_attributes_and_the_client_trace() {
    let (spans, otlp_port) = grpc_receiver().await;
    let mock = MockUpstream::start().await;
    let mp = mock.port();
    let mut proxy = ProxyProcess::start_with(move |port, dir| {
        config(
            port,
            dir,
            mp,
            json!({"enabled": true, "service_name": "proxy-under-test",
                   "otlp_endpoint": format!("http://127.0.0.1:{otlp_port}")}),
        )
    })
    .await;

    // 1. A streamed turn inside the client's trace.
    let tp = client_traceparent();
    let resp = post_json(
        &proxy.url("/v1/responses"),
        &simple_request("deepseek-flash", "hi", true),
        &[("traceparent", tp.as_str()), ("tracestate", TRACESTATE)],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    check_lifecycle(&parse_sse(&resp.body));
    let up = mock.requests().pop().unwrap();
    let up_tp = up.header("traceparent").expect("traceparent upstream");
    let (up_trace, up_parent) = ids(up_tp);
    assert_eq!(
        up_trace, CLIENT_TRACE_ID,
        "the client's trace goes upstream"
    );
    assert_ne!(
        up_parent, CLIENT_SPAN_ID,
        "upstream, the parent is the proxy's span"
    );
    assert!(up_tp.ends_with("-01"), "sampled: {up_tp}");
    assert_eq!(up.header("tracestate"), Some(TRACESTATE));

    // 2. A provider error (429), non-streamed, no client trace: a trace of its own.
    mock.push(MockReply::error(
        429,
        "Rate limit reached, try again in 1s",
        "rate_limit_error",
        Some("rate_limit_exceeded"),
    ));
    let resp = post_json(
        &proxy.url("/v1/responses"),
        &simple_request("deepseek-flash", "again", false),
        &[],
    )
    .await;
    assert_eq!(resp.status, 429, "{}", resp.body);
    let up2 = mock.requests().pop().unwrap();
    let (up2_trace, up2_parent) = ids(up2.header("traceparent").unwrap());
    assert_ne!(up2_trace, CLIENT_TRACE_ID);
    assert_eq!(up2.header("tracestate"), None);

    // Flushed on shutdown: everything is there once the process is gone.
    stop(&mut proxy);
    let got = spans.wait_for(4, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 4, "two requests, two spans each: {got:#?}");

    // The server span of the first request: GenAI conventions, the client's trace.
    let server = one(
        &got,
        |s| s.kind == SPAN_KIND_SERVER && s.trace_id == CLIENT_TRACE_ID,
        "server span in the client's trace",
    );
    eprintln!("server span:\n{}", shown(server));
    assert_eq!(server.parent_span_id, CLIENT_SPAN_ID);
    assert_eq!(server.name, "chat deepseek-flash");
    assert_eq!(server.service.as_deref(), Some("proxy-under-test"));
    assert_eq!(server.attr("gen_ai.operation.name"), "chat");
    assert_eq!(server.attr("gen_ai.provider.name"), "deepseek");
    assert_eq!(server.attr("gen_ai.request.model"), "deepseek-flash");
    assert_eq!(server.attr("gen_ai.response.model"), MOCK_MODEL);
    assert_eq!(server.attr("gen_ai.usage.input_tokens"), PROMPT_TOKENS);
    assert_eq!(server.attr("gen_ai.usage.output_tokens"), COMPLETION_TOKENS);
    assert_eq!(
        server.attr("gen_ai.usage.cache_read.input_tokens"),
        CACHED_TOKENS
    );
    let ttft = server.attr("gen_ai.response.time_to_first_chunk");
    assert!(ttft.as_f64().is_some_and(|t| t > 0.0 && t < 30.0), "{ttft}");
    assert!(server
        .attr("gen_ai.response.id")
        .as_str()
        .unwrap()
        .starts_with("resp_"));
    assert_eq!(server.attr("http.request.method"), "POST");
    assert_eq!(server.attr("url.path"), "/v1/responses");
    assert_eq!(server.attr("http.response.status_code"), 200);
    assert_eq!(server.attr("codex_proxy.backend"), "deepseek");
    assert_eq!(server.attr("codex_proxy.stream"), true);
    assert_eq!(server.attr("error.type"), Value::Null);
    assert_ne!(server.status_code, STATUS_CODE_ERROR);

    // Its upstream child: CLIENT, the span whose id went upstream in traceparent.
    let client = one(
        &got,
        |s| s.kind == SPAN_KIND_CLIENT && s.trace_id == CLIENT_TRACE_ID,
        "upstream span in the client's trace",
    );
    eprintln!("upstream span:\n{}", shown(client));
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.span_id, up_parent);
    assert_eq!(client.name, "POST /v1/chat/completions");
    assert_eq!(client.attr("server.address"), "127.0.0.1");
    assert_eq!(client.attr("server.port"), mp);
    assert_eq!(
        client.attr("url.full"),
        format!("http://127.0.0.1:{mp}/v1/chat/completions").as_str()
    );
    assert_eq!(client.attr("http.response.status_code"), 200);
    assert_eq!(client.attr("gen_ai.provider.name"), "deepseek");

    // The failed request: error.type on both spans, status ERROR.
    let server2 = one(
        &got,
        |s| s.kind == SPAN_KIND_SERVER && s.trace_id == up2_trace,
        "server span of the 429",
    );
    assert_eq!(server2.parent_span_id, "", "a root span");
    assert_eq!(server2.attr("http.response.status_code"), 429);
    assert_eq!(server2.attr("error.type"), "rate_limit_exceeded");
    assert_eq!(server2.attr("codex_proxy.error_class"), "upstream_4xx");
    assert_eq!(server2.attr("codex_proxy.stream"), false);
    assert_eq!(server2.status_code, STATUS_CODE_ERROR);
    let client2 = one(
        &got,
        |s| s.kind == SPAN_KIND_CLIENT && s.trace_id == up2_trace,
        "upstream span of the 429",
    );
    assert_eq!(client2.span_id, up2_parent);
    assert_eq!(client2.parent_span_id, server2.span_id);
    assert_eq!(client2.attr("http.response.status_code"), 429);
    assert_eq!(client2.attr("error.type"), "429");

    // Never a secret in a span.
    let all = format!("{got:?}");
    assert!(!all.contains(UPSTREAM_KEY), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export() {
    let (spans, otlp_port) = http_receiver().await;
    let mock = MockUpstream::start().await;
    let mp = mock.port();
    let mut proxy = ProxyProcess::start_with(move |port, dir| {
        config(
            port,
            dir,
            mp,
            // the base endpoint: the exporter appends /v1/traces
            json!({"enabled": true, "protocol": "http",
                   "otlp_endpoint": format!("http://127.0.0.1:{otlp_port}")}),
        )
    })
    .await;
    let tp = client_traceparent();
    let resp = post_json(
        &proxy.url("/v1/responses"),
        &simple_request("deepseek-flash", "hi", false),
        &[("traceparent", tp.as_str())],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let (_, up_parent) = ids(mock
        .requests()
        .pop()
        .unwrap()
        .header("traceparent")
        .unwrap());
    stop(&mut proxy);
    let got = spans.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let server = one(&got, |s| s.kind == SPAN_KIND_SERVER, "server span");
    assert_eq!(server.trace_id, CLIENT_TRACE_ID);
    assert_eq!(server.parent_span_id, CLIENT_SPAN_ID);
    assert_eq!(server.service.as_deref(), Some("codex-convert-proxy"));
    assert_eq!(server.attr("gen_ai.operation.name"), "chat");
    assert_eq!(server.attr("gen_ai.response.model"), MOCK_MODEL);
    assert_eq!(server.attr("gen_ai.usage.input_tokens"), PROMPT_TOKENS);
    assert_eq!(server.attr("gen_ai.usage.output_tokens"), COMPLETION_TOKENS);
    assert_eq!(server.attr("codex_proxy.stream"), false);
    let client = one(&got, |s| s.kind == SPAN_KIND_CLIENT, "upstream span");
    assert_eq!(client.span_id, up_parent);
    assert_eq!(client.parent_span_id, server.span_id);
}

/// Off (the default): nothing exported, and the client's trace context passes upstream as is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_the_client_trace_context_passes_through() {
    let mock = MockUpstream::start().await;
    let mp = mock.port();
    let proxy = ProxyProcess::start_with(move |port, dir| {
        let mut c = config(port, dir, mp, json!({}));
        c.as_object_mut().unwrap().remove("telemetry");
        c
    })
    .await;
    let tp = client_traceparent();
    let resp = post_json(
        &proxy.url("/v1/responses"),
        &simple_request("deepseek-flash", "hi", true),
        &[("traceparent", tp.as_str()), ("tracestate", TRACESTATE)],
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let up = mock.requests().pop().unwrap();
    assert_eq!(up.header("traceparent"), Some(tp.as_str()));
    assert_eq!(up.header("tracestate"), Some(TRACESTATE));
    assert!(!proxy.logs().contains("OpenTelemetry"), "{}", proxy.logs());
}

/// One turn, two transports, one record: the same streamed request over HTTP and as a
/// WebSocket message gets the same access line, the same statistics class, a server span
/// with the same `gen_ai.*` attributes and a body log — for a clean turn, an upstream error,
/// and a reply cut by the backend's total timeout mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_is_recorded_the_same_over_http_and_websocket() {
    use common::ws::{ws_url, WsClient};
    let (spans, otlp_port) = grpc_receiver().await;
    let mock = MockUpstream::start().await;
    let mp = mock.port();
    let mut proxy = ProxyProcess::start_with(move |port, dir| {
        let mut c = config(
            port,
            dir,
            mp,
            json!({"enabled": true, "service_name": "parity",
                   "otlp_endpoint": format!("http://127.0.0.1:{otlp_port}")}),
        );
        c["log_format"] = json!("json");
        c["log_body"] = json!(true);
        c["backends"][0]["timeouts"] = json!({"total_ms": 1200});
        // One attempt: the upstream error is the turn's outcome on both transports (a
        // WebSocket turn would retry a 5xx; tests/failover.rs covers that).
        c["backends"][0]["retries"] = json!(0);
        c
    })
    .await;
    let slow = || MockReply::Sse {
        chunks: common::mock_upstream::sse_text("a reply that takes too long"),
        delay_ms: 500,
        cut_after: None,
    };
    type Case<'a> = (&'a str, Option<&'a dyn Fn() -> MockReply>, Option<&'a str>);
    let cases: [Case; 4] = [
        ("clean", Some(&|| MockReply::text("hello")), None),
        (
            "upstream error",
            Some(&|| MockReply::error(500, "boom", "server_error", None)),
            Some("upstream_5xx"),
        ),
        ("mid-stream timeout", Some(&slow), Some("timeout")),
        // Refused by the conversion: the provider is never called.
        ("rejected", None, Some("client")),
    ];
    let classes = |m: &str| -> BTreeMap<String, u64> {
        m.lines()
            .filter(|l| l.starts_with("ccp_errors_total{backend=\"deepseek\""))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    };
    let delta = |a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>| -> Vec<String> {
        b.iter()
            .filter(|(k, v)| a.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let good = json!({"model": "deepseek-flash", "input": "hi", "stream": true, "store": false});
    for (what, reply, class) in cases {
        let mut body = good.clone();
        if reply.is_none() {
            body["temperature"] = json!("hot");
        }
        let before = classes(&metrics_text(&proxy).await);
        if let Some(reply) = reply {
            mock.push(reply());
        }
        let resp = post_json(&proxy.url("/v1/responses"), &body, &[]).await;
        let expected = match class {
            None | Some("timeout") => 200,
            Some("client") => 400,
            _ => 502,
        };
        assert_eq!(resp.status, expected, "{what}: {}", resp.body);
        let after_http = classes(&metrics_text(&proxy).await);
        if let Some(reply) = reply {
            mock.push(reply());
        }
        let mut ws = WsClient::connect(&ws_url(proxy.port, "/v1/responses"), &[])
            .await
            .unwrap();
        let mut msg = body.clone();
        msg["type"] = json!("response.create");
        let frames = ws.create(&msg).await;
        assert!(!frames.is_empty(), "{what}");
        drop(ws);
        // The WebSocket turn is recorded when it ends; wait (bounded) for its class.
        let mut after_ws = classes(&metrics_text(&proxy).await);
        for _ in 0..50 {
            if class.is_none() || delta(&after_http, &after_ws).len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            after_ws = classes(&metrics_text(&proxy).await);
        }
        let (http_class, ws_class) = (delta(&before, &after_http), delta(&after_http, &after_ws));
        assert_eq!(http_class, ws_class, "{what}: the same statistics class");
        match class {
            None => assert!(http_class.is_empty(), "{what}: {http_class:?}"),
            Some(c) => assert_eq!(
                http_class,
                vec![format!(
                    "ccp_errors_total{{backend=\"deepseek\",class=\"{c}\"}}"
                )],
                "{what}"
            ),
        }
    }
    stop(&mut proxy);

    // The access lines, in pairs (HTTP, then WebSocket), equal but for method and path.
    let logs = proxy.logs();
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let access: Vec<&Value> = events
        .iter()
        .filter(|v| {
            // (not the upgrade's own line: GET, 101)
            v["target"] == "access" && (v["method"] == "POST" || v["method"] == "WS")
        })
        .collect();
    assert_eq!(access.len(), 8, "{access:#?}");
    let same = [
        "backend",
        "model",
        "stream",
        "status",
        "upstream_status",
        "tokens_in",
        "tokens_out",
        "tokens_cached",
        "error_code",
        "error",
    ];
    for pair in access.chunks(2) {
        assert_eq!(pair[0]["method"], "POST");
        assert_eq!(pair[1]["method"], "WS");
        for k in same {
            assert_eq!(pair[0][k], pair[1][k], "{k}: {} vs {}", pair[0], pair[1]);
        }
    }
    assert_eq!(access[4]["error"], "TotalTimeout", "{}", access[4]);
    assert_eq!(access[6]["error"], "HTTPStatus", "{}", access[6]);
    assert_eq!(access[6]["status"], 400, "{}", access[6]);
    // A body log for every turn.
    let responses = events
        .iter()
        .filter(|v| v["target"] == "body" && v["direction"] == "response")
        .count();
    assert_eq!(
        responses, 6,
        "a response body log per turn the provider answered"
    );

    // A server span per turn, with the same GenAI attributes per pair.
    let got = spans.wait_for(14, Duration::from_secs(2)).await;
    let mut servers: Vec<&Received> = got.iter().filter(|s| s.kind == SPAN_KIND_SERVER).collect();
    assert_eq!(servers.len(), 8, "{got:#?}");
    let http: Vec<&Received> = servers
        .iter()
        .copied()
        .filter(|s| s.attr("http.request.method") == "POST")
        .collect();
    servers.retain(|s| s.attr("http.request.method") == "WS");
    assert_eq!((http.len(), servers.len()), (4, 4));
    let key = |s: &Received| -> BTreeMap<String, Value> {
        s.attrs
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "gen_ai.response.id"
                        | "gen_ai.response.time_to_first_chunk"
                        | "http.request.method"
                        | "url.path"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut h: Vec<_> = http.iter().map(|s| key(s)).collect();
    let mut w: Vec<_> = servers.iter().map(|s| key(s)).collect();
    h.sort_by_key(|a| format!("{a:?}"));
    w.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(h, w, "the same span attributes over both transports");
    assert!(h
        .iter()
        .any(|a| a.get("gen_ai.usage.input_tokens").is_some()));
    // Each WebSocket turn's upstream request carried its own upstream span's context.
    let ws_ups: Vec<_> = mock
        .requests()
        .iter()
        .skip(1)
        .step_by(2)
        .map(|r| r.header("traceparent").map(str::to_owned))
        .collect();
    assert!(ws_ups.iter().all(Option::is_some), "{ws_ups:?}");
}
