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
            body: stats.prometheus().into_bytes(),
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            allow: None,
        },
        _ => LocalResponse::json(200, &stats.json()),
    })
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
    )
    .await
}

pub async fn write_json(
    session: &mut Session,
    status: u16,
    body: &[u8],
    allow: Option<&str>,
) -> Result<()> {
    write(session, status, body, "application/json", allow).await
}

async fn write(
    session: &mut Session,
    status: u16,
    body: &[u8],
    content_type: &str,
    allow: Option<&str>,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, content_type)?;
    h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    if let Some(a) = allow {
        h.insert_header(http::header::ALLOW, a)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session
        .write_response_body(Some(Bytes::copy_from_slice(body)), true)
        .await
}
