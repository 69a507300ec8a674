//! Endpoints the proxy answers itself, and writing JSON responses.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::json;

use crate::config::Config;
use crate::providers::Quirks;

/// `(status, body, Allow header)` for a local endpoint, `None` when the request is for a backend.
pub fn serve_local(
    config: &Config,
    quirks: &[Quirks],
    method: &http::Method,
    path: &str,
) -> Option<(u16, Vec<u8>, Option<&'static str>)> {
    if path.trim_end_matches('/') != "/health" {
        return None;
    }
    if method != http::Method::GET && method != http::Method::HEAD {
        return Some((
            405,
            error_response(
                "Method not allowed on /health: use GET.",
                "method_not_allowed",
            ),
            Some("GET, HEAD"),
        ));
    }
    let backends: Vec<serde_json::Value> = config
        .backends
        .iter()
        .zip(quirks)
        .map(|(b, q)| {
            json!({"name": b.name, "provider": q.profile, "path_prefix": b.path_prefix,
                "default": b.is_default, "model": b.model})
        })
        .collect();
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "backends": config.backends.iter().map(|b| b.name.clone()).collect::<Vec<_>>(),
        "backend_details": backends,
    });
    Some((200, body.to_string().into_bytes(), None))
}

/// An OpenAI-shaped error body.
pub fn error_response(message: &str, code: &str) -> Vec<u8> {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})
        .to_string()
        .into_bytes()
}

pub async fn write_json(
    session: &mut Session,
    status: u16,
    body: &[u8],
    allow: Option<&str>,
) -> Result<()> {
    let mut h = ResponseHeader::build(status, Some(4))?;
    h.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    h.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    if let Some(a) = allow {
        h.insert_header(http::header::ALLOW, a)?;
    }
    session.write_response_header(Box::new(h), false).await?;
    session
        .write_response_body(Some(Bytes::copy_from_slice(body)), true)
        .await
}
