//! Endpoints the proxy answers itself (`/health`, `/metrics`, `/stats`, `/v1/models`), and
//! writing such responses.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::{json, Value};

use crate::config::Config;
use crate::stats::Stats;

pub struct LocalResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub allow: Option<&'static str>,
}

impl LocalResponse {
    fn json(status: u16, v: &Value) -> Self {
        LocalResponse {
            status,
            body: v.to_string().into_bytes(),
            content_type: "application/json",
            allow: None,
        }
    }

    fn method_not_allowed(path: &str) -> Self {
        LocalResponse {
            allow: Some("GET, HEAD"),
            ..Self::json(
                405,
                &error_json(
                    &format!("Method not allowed on {path}: use GET."),
                    "method_not_allowed",
                ),
            )
        }
    }
}

fn is_get(method: &http::Method) -> bool {
    method == http::Method::GET || method == http::Method::HEAD
}

/// `/health`, `/metrics`, `/stats`; `None` for anything else.
pub fn serve_local(
    config: &Config,
    stats: &Stats,
    store: Option<&dyn crate::store::Store>,
    method: &http::Method,
    path: &str,
) -> Option<LocalResponse> {
    let p = path.trim_end_matches('/');
    if !matches!(p, "/health" | "/metrics" | "/stats") {
        return None;
    }
    if !is_get(method) {
        return Some(LocalResponse::method_not_allowed(p));
    }
    Some(match p {
        "/health" => {
            let details: Vec<Value> = config
                .backends
                .iter()
                .map(|b| {
                    json!({"name": b.name, "provider": b.quirks.profile, "path_prefix": b.path_prefix,
                        "default": b.is_default, "model": b.model, "match_models": b.match_models})
                })
                .collect();
            LocalResponse::json(
                200,
                &json!({
                    "status": "ok",
                    "version": env!("CARGO_PKG_VERSION"),
                    "backends": config.backends.iter().map(|b| b.name.clone()).collect::<Vec<_>>(),
                    "backend_details": details,
                }),
            )
        }
        "/metrics" => LocalResponse {
            status: 200,
            body: {
                let mut text = stats.prometheus();
                if let Some(store) = store {
                    text.push_str(&store_metrics(store));
                }
                text.into_bytes()
            },
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            allow: None,
        },
        _ => LocalResponse::json(200, &stats.json()),
    })
}

/// The response store's gauges and counters, in Prometheus text.
fn store_metrics(store: &dyn crate::store::Store) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let (count, bytes) = store.size();
    let st = store.stats();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    metric(
        "ccp_store_responses",
        "gauge",
        "Responses held by the response store.",
        count,
    );
    metric(
        "ccp_store_bytes",
        "gauge",
        "Bytes held by the response store.",
        bytes,
    );
    metric(
        "ccp_store_hits_total",
        "counter",
        "Stored responses found.",
        st.hits.load(Relaxed),
    );
    metric(
        "ccp_store_misses_total",
        "counter",
        "Stored responses looked up and not found.",
        st.misses.load(Relaxed),
    );
    metric(
        "ccp_store_writes_total",
        "counter",
        "Responses written to the store.",
        st.writes.load(Relaxed),
    );
    metric(
        "ccp_store_evictions_total",
        "counter",
        "Responses evicted (size bound or expiry).",
        st.evictions.load(Relaxed),
    );
    metric(
        "ccp_store_errors_total",
        "counter",
        "Store operations that failed.",
        st.errors.load(Relaxed),
    );
    out
}

/// `GET /v1/models` (and `/models`): the configured models in OpenAI's list shape; under a
/// backend prefix, only that backend's.
pub fn serve_models(
    config: &Config,
    method: &http::Method,
    rest: &str,
    prefixed: Option<usize>,
) -> Option<LocalResponse> {
    let p = rest.trim_end_matches('/');
    if !matches!(p, "/v1/models" | "/models") {
        return None;
    }
    if !is_get(method) {
        return Some(LocalResponse::method_not_allowed(p));
    }
    let mut data: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, b) in config.backends.iter().enumerate() {
        if prefixed.is_some_and(|only| only != i) {
            continue;
        }
        let names = b
            .model
            .iter()
            .chain(b.models.iter().map(|m| &m.name))
            .chain(b.match_models.iter().filter(|m| !m.contains(['*', '?'])));
        for name in names {
            if seen.insert(name.clone()) {
                data.push(json!({"id": name, "object": "model", "created": 0, "owned_by": b.name}));
            }
        }
    }
    Some(LocalResponse::json(
        200,
        &json!({"object": "list", "data": data}),
    ))
}

/// An OpenAI-shaped error body.
pub fn error_json(message: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})
}

pub async fn write_body(session: &mut Session, resp: &LocalResponse) -> Result<()> {
    write(
        session,
        resp.status,
        &resp.body,
        resp.content_type,
        resp.allow,
        false,
    )
    .await
}

pub async fn write_json(
    session: &mut Session,
    status: u16,
    body: &[u8],
    allow: Option<&str>,
) -> Result<()> {
    write(session, status, body, "application/json", allow, false).await
}

/// An error body; `close`: with `Connection: close` (the connection cannot be reused).
pub async fn write_error(
    session: &mut Session,
    status: u16,
    body: &[u8],
    close: bool,
) -> Result<()> {
    if close {
        session.set_keepalive(None);
    }
    write(session, status, body, "application/json", None, close).await
}

async fn write(
    session: &mut Session,
    status: u16,
    body: &[u8],
    content_type: &str,
    allow: Option<&str>,
    close: bool,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, content_type)?;
    if close {
        h.insert_header(http::header::CONNECTION, "close")?;
    }
    h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    if let Some(a) = allow {
        h.insert_header(http::header::ALLOW, a)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session
        .write_response_body(Some(Bytes::copy_from_slice(body)), true)
        .await
}
