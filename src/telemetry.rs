//! OpenTelemetry tracing, from the `telemetry` block of the configuration.
//!
//! Off by default, and then it costs nothing: no exporter, no thread, no span — the proxy holds
//! an `Option<Telemetry>` that is `None` and every request's `Option<RequestSpan>` stays `None`.
//!
//! On, every converted request gets:
//!
//! - a SERVER span following the OpenTelemetry GenAI semantic conventions, named
//!   `chat {gen_ai.request.model}`: `gen_ai.operation.name` = `chat`, `gen_ai.provider.name`
//!   (the backend's provider profile), `gen_ai.request.model` (the model asked of the provider),
//!   `gen_ai.response.model` (the model the provider reported), `gen_ai.response.id`,
//!   `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
//!   `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.reasoning.output_tokens`,
//!   `gen_ai.response.time_to_first_chunk` (seconds, to the first output item), plus
//!   `http.request.method`, `url.path`, `http.response.status_code` and, on errors,
//!   `error.type`;
//! - a CLIENT child span for the upstream request (`POST {path}`: `server.address`,
//!   `server.port`, `url.full`, `http.response.status_code`), whose context goes upstream in
//!   the W3C `traceparent` (and `tracestate`) headers.
//!
//! A client's `traceparent`/`tracestate` make the server span a child of the client's span (same
//! trace id); the sampler follows the client's sampled flag (parent-based, else always on).
//! Spans are exported in batches over OTLP/gRPC (`protocol: "grpc"`, port 4317) or
//! OTLP/HTTP protobuf (`"http"`, port 4318, `/v1/traces` appended), and flushed by
//! [`Telemetry::shutdown`].

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::config::{self, OtlpProtocol};
use crate::stats::ErrorClass;

/// Time allowed for one export (and for the final flush).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream body bytes searched for the provider's `"model"`.
const MODEL_SNIFF_BYTES: usize = 16 * 1024;

/// The tracer and its exporter. `None` (never built) when telemetry is off.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// The gRPC exporter's I/O runs here (tonic needs a Tokio runtime; Pingora's are its own).
    runtime: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Builds the exporter and the tracer; `Ok(None)` when telemetry is disabled.
    pub fn init(cfg: &config::Telemetry) -> Result<Option<Telemetry>, String> {
        if !cfg.enabled {
            return Ok(None);
        }
        if cfg.otlp_endpoint.starts_with("https:") {
            // Built without TLS for OTLP (a collector or agent next to the proxy is the
            // usual set-up, and it keeps the binary lean).
            return Err(format!(
                "telemetry.otlp_endpoint {:?}: https is not supported; send to an \
                 OpenTelemetry Collector over http (e.g. http://127.0.0.1:4317)",
                cfg.otlp_endpoint
            ));
        }
        let resource = Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let err = |e: &dyn std::fmt::Display| format!("telemetry: {e}");
        let (provider, runtime) = match cfg.protocol {
            OtlpProtocol::Grpc => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-export")
                    .enable_all()
                    .build()
                    .map_err(|e| err(&e))?;
                let provider = {
                    let _in_runtime = runtime.enter();
                    let exporter = SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(cfg.otlp_endpoint.clone())
                        .with_timeout(EXPORT_TIMEOUT)
                        .build()
                        .map_err(|e| err(&e))?;
                    provider(exporter, resource)
                };
                (provider, Some(runtime))
            }
            OtlpProtocol::Http => {
                let exporter = SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(traces_url(&cfg.otlp_endpoint))
                    .with_timeout(EXPORT_TIMEOUT)
                    .build()
                    .map_err(|e| err(&e))?;
                (provider(exporter, resource), None)
            }
        };
        let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
        tracing::info!(
            endpoint = %cfg.otlp_endpoint,
            protocol = ?cfg.protocol,
            service_name = %cfg.service_name,
            "OpenTelemetry export on"
        );
        Ok(Some(Telemetry {
            provider,
            tracer,
            runtime: std::sync::Mutex::new(runtime),
        }))
    }

    /// The SERVER span of a request that started at `started`, a child of the client's span
    /// when `traceparent` (W3C) is valid.
    pub fn start_request(
        &self,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        method: &str,
        path: &str,
        started: Instant,
    ) -> RequestSpan {
        let parent = TraceContextPropagator::new().extract(&ClientHeaders {
            traceparent,
            tracestate,
        });
        let start = SystemTime::now()
            .checked_sub(started.elapsed())
            .unwrap_or_else(SystemTime::now);
        let builder = self
            .tracer
            .span_builder("chat")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("url.path", path.to_owned()),
            ]);
        let span = self.tracer.build_with_context(builder, &parent);
        RequestSpan {
            tracer: self.tracer.clone(),
            cx: parent.with_span(span),
            upstream: None,
            sniff: Some(Vec::new()),
            response_model: None,
        }
    }

    /// Exports what is buffered and stops the exporter (at shutdown, outside any async
    /// context: it blocks until the last batch is sent or [`EXPORT_TIMEOUT`]).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(EXPORT_TIMEOUT) {
            tracing::warn!("telemetry: flushing the spans failed: {e}");
        }
        let runtime = match self.runtime.lock() {
            Ok(mut rt) => rt.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(rt) = runtime {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

fn provider(exporter: SpanExporter, resource: Resource) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build()
}

/// The OTLP/HTTP traces URL of a base endpoint: `/v1/traces` appended unless already there.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

struct ClientHeaders<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for ClientHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The W3C headers for the upstream request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// What the proxy knows of a request when it ends.
#[derive(Debug, Default)]
pub struct Finish<'a> {
    /// The backend's name.
    pub backend: Option<&'a str>,
    /// The backend's provider profile.
    pub provider: Option<crate::providers::Profile>,
    /// The model asked of the provider.
    pub request_model: Option<&'a str>,
    pub stream: bool,
    /// Status sent to the client.
    pub status: u16,
    /// Status of the provider's reply (0: none).
    pub upstream_status: u16,
    /// Tokens (input, output, cached input, reasoning), when the provider reported usage.
    pub usage: Option<(u64, u64, u64, u64)>,
    /// Time to the first output item.
    pub ttft: Option<Duration>,
    /// The Responses id the client got.
    pub response_id: Option<&'a str>,
    /// The error's class, if the request failed.
    pub error_class: Option<ErrorClass>,
    /// The OpenAI-style error code, if any (`rate_limit_exceeded`, `timeout`, …).
    pub error_code: Option<&'a str>,
    /// What the turn cost, USD (its model's price known).
    pub cost_usd: Option<f64>,
}

/// The spans of one request. Ended by [`RequestSpan::finish`] (or when dropped).
pub struct RequestSpan {
    tracer: SdkTracer,
    /// The client's context with the SERVER span in it.
    cx: Context,
    /// The current upstream attempt's CLIENT span (in a context, child of `cx`).
    upstream: Option<Context>,
    /// The first upstream body bytes, until the provider's model is found in them.
    sniff: Option<Vec<u8>>,
    response_model: Option<String>,
}

impl std::fmt::Debug for RequestSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSpan")
            .field("span_context", self.cx.span().span_context())
            .finish_non_exhaustive()
    }
}

impl RequestSpan {
    /// Starts the CLIENT span of an upstream attempt (ending a previous attempt's) and returns
    /// the `traceparent`/`tracestate` to send upstream: the client's trace id, this span's id.
    pub fn upstream_traceparent(
        &mut self,
        address: &str,
        port: u16,
        tls: bool,
        path: &str,
    ) -> Option<TraceHeaders> {
        if let Some(previous) = self.upstream.take() {
            previous.span().end();
        }
        let scheme = if tls { "https" } else { "http" };
        let builder = self
            .tracer
            .span_builder(format!("POST {path}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("server.address", address.to_owned()),
                KeyValue::new("server.port", i64::from(port)),
                KeyValue::new("url.full", format!("{scheme}://{address}:{port}{path}")),
                KeyValue::new("gen_ai.operation.name", "chat"),
            ]);
        let span = self.tracer.build_with_context(builder, &self.cx);
        let cx = self.cx.with_span(span);
        let mut headers: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut headers);
        self.upstream = Some(cx);
        Some(TraceHeaders {
            traceparent: headers.remove("traceparent")?,
            tracestate: headers.remove("tracestate").filter(|s| !s.is_empty()),
        })
    }

    /// Looks at the provider's reply for the model it reports (`gen_ai.response.model`);
    /// stops looking once found or after the first few KiB.
    pub fn observe_upstream_body(&mut self, chunk: &[u8]) {
        let Some(buf) = self.sniff.as_mut() else {
            return;
        };
        let room = MODEL_SNIFF_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if let Some(model) = find_model(buf) {
            self.response_model = Some(model);
            self.sniff = None;
        } else if buf.len() >= MODEL_SNIFF_BYTES {
            self.sniff = None;
        }
    }

    /// Sets the attributes and ends the spans.
    pub fn finish(self, f: &Finish<'_>) {
        let mut attrs: Vec<KeyValue> = Vec::with_capacity(16);
        // The profile names are the semantic conventions' well-known values where those
        // exist (`openai`, `deepseek`); `glm`, `kimi` and `minimax` have none.
        if let Some(p) = f.provider {
            attrs.push(KeyValue::new("gen_ai.provider.name", p.as_str()));
        }
        if let Some(m) = f.request_model {
            attrs.push(KeyValue::new("gen_ai.request.model", m.to_owned()));
        }
        let ok_reply = (200..300).contains(&f.upstream_status);
        if let Some(m) = self.response_model.as_ref().filter(|_| ok_reply) {
            attrs.push(KeyValue::new("gen_ai.response.model", m.clone()));
        }
        let error_type = f
            .error_class
            .map(|c| f.error_code.unwrap_or(c.as_str()).to_owned());
        let failed = f.error_class.is_some_and(|c| c != ErrorClass::Client);

        if let Some(up) = &self.upstream {
            let span = up.span();
            span.set_attributes(attrs.iter().cloned());
            if f.upstream_status > 0 {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(f.upstream_status),
                ));
            }
            if f.upstream_status >= 400 {
                span.set_attribute(KeyValue::new("error.type", f.upstream_status.to_string()));
                span.set_status(Status::error(format!("HTTP {}", f.upstream_status)));
            } else if failed {
                if let Some(t) = &error_type {
                    span.set_attribute(KeyValue::new("error.type", t.clone()));
                }
                span.set_status(Status::error(error_type.clone().unwrap_or_default()));
            }
            span.end();
        }

        let span = self.cx.span();
        if let Some(id) = f.response_id {
            attrs.push(KeyValue::new("gen_ai.response.id", id.to_owned()));
        }
        if let Some((input, output, cached, reasoning)) = f.usage {
            attrs.push(KeyValue::new("gen_ai.usage.input_tokens", as_i64(input)));
            attrs.push(KeyValue::new("gen_ai.usage.output_tokens", as_i64(output)));
            attrs.push(KeyValue::new(
                "gen_ai.usage.cache_read.input_tokens",
                as_i64(cached),
            ));
            attrs.push(KeyValue::new(
                "gen_ai.usage.reasoning.output_tokens",
                as_i64(reasoning),
            ));
        }
        if let Some(cost) = f.cost_usd {
            attrs.push(KeyValue::new("gen_ai.usage.cost", cost));
        }
        if let Some(t) = f.ttft {
            attrs.push(KeyValue::new(
                "gen_ai.response.time_to_first_chunk",
                t.as_secs_f64(),
            ));
        }
        if f.status > 0 {
            attrs.push(KeyValue::new(
                "http.response.status_code",
                i64::from(f.status),
            ));
        }
        if let Some(b) = f.backend {
            attrs.push(KeyValue::new("codex_proxy.backend", b.to_owned()));
        }
        attrs.push(KeyValue::new("codex_proxy.stream", f.stream));
        if let Some(t) = &error_type {
            attrs.push(KeyValue::new("error.type", t.clone()));
        }
        if let Some(c) = f.error_class {
            attrs.push(KeyValue::new("codex_proxy.error_class", c.as_str()));
        }
        span.set_attributes(attrs);
        if let Some(m) = f.request_model {
            span.update_name(format!("chat {m}"));
        }
        if failed {
            span.set_status(Status::error(error_type.unwrap_or_default()));
        }
        span.end();
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The value of the first `"model": "…"` in a provider's reply (a JSON object or SSE
/// `data:` lines), if it is complete in `bytes`.
fn find_model(bytes: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"model\"";
    let mut from = 0;
    while let Some(pos) = bytes.get(from..)?.windows(KEY.len()).position(|w| w == KEY) {
        let mut i = from + pos + KEY.len();
        from = i;
        let skip_ws = |i: &mut usize| {
            while bytes.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if bytes.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        skip_ws(&mut i);
        if bytes.get(i) != Some(&b'"') {
            continue;
        }
        let start = i;
        i += 1;
        loop {
            match bytes.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        return serde_json::from_slice::<String>(bytes.get(start..=i)?)
            .ok()
            .filter(|m| !m.is_empty());
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn model_found_in_sse_and_json() {
        let sse = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\": \"glm-5\",\"choices\":[]}\n\n";
        assert_eq!(find_model(sse).as_deref(), Some("glm-5"));
        let json = br#"{"error":{"param":"model"},"model":"a\"b"}"#;
        assert_eq!(find_model(json).as_deref(), Some("a\"b"));
        assert_eq!(find_model(b"data: {\"model\":\"cut-of"), None);
        assert_eq!(find_model(b"{\"models\":1}"), None);
    }

    #[test]
    fn otlp_http_url() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c/otlp/v1/traces"),
            "http://c/otlp/v1/traces"
        );
    }

    #[test]
    fn disabled_builds_nothing() {
        assert!(Telemetry::init(&config::Telemetry::default())
            .ok()
            .flatten()
            .is_none());
    }

    #[test]
    fn https_is_refused_with_a_clear_message() {
        let cfg = config::Telemetry {
            enabled: true,
            otlp_endpoint: "https://otel.example:4317".into(),
            ..config::Telemetry::default()
        };
        let e = Telemetry::init(&cfg).err().unwrap_or_default();
        assert!(e.contains("https is not supported"), "{e}");
    }

    #[test]
    fn spans_follow_the_client_trace() {
        // A provider with no exporter: the ids and the propagation alone.
        let provider = SdkTracerProvider::builder().build();
        let t = Telemetry {
            tracer: provider.tracer("test"),
            provider,
            runtime: std::sync::Mutex::new(None),
        };
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut span = t.start_request(
            Some(tp),
            Some("congo=t61rcWkgMzE"),
            "POST",
            "/v1/responses",
            Instant::now(),
        );
        let server = span.cx.span().span_context().clone();
        assert_eq!(
            server.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let h = span
            .upstream_traceparent("127.0.0.1", 8080, false, "/v1/chat/completions")
            .unwrap();
        let parts: Vec<&str> = h.traceparent.split('-').collect();
        assert_eq!(parts[1], "0af7651916cd43dd8448eb211c80319c");
        assert_ne!(parts[2], "b7ad6b7169203331");
        assert_ne!(parts[2], server.span_id().to_string());
        assert_eq!(parts[3], "01");
        assert_eq!(h.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        span.finish(&Finish::default());
        // No traceparent: a new trace.
        let mut span = t.start_request(None, None, "POST", "/v1/responses", Instant::now());
        let h = span.upstream_traceparent("h", 443, true, "/p").unwrap();
        assert!(!h.traceparent.contains("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(h.tracestate, None);
    }
}
