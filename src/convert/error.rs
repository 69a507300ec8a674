//! Upstream errors → Responses errors with the codes Codex understands.
//!
//! Codex reacts to `context_length_exceeded` (no retry, "ran out of room"), `insufficient_quota`,
//! `rate_limit_exceeded` (retry, delay read from "try again in Ns"), `server_is_overloaded`
//! (no retry), and retries anything else; before the stream it reacts to the HTTP status.

use serde_json::{json, Value};

use crate::providers::{minimax, ErrorCode, Profile};

/// A request the client got wrong: becomes a 400 `invalid_request_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl InvalidRequest {
    pub(crate) fn new(message: impl Into<String>, param: Option<&str>) -> Self {
        InvalidRequest {
            message: message.into(),
            param: param.map(str::to_owned),
            code: None,
        }
    }
}

impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// An error for the client: HTTP status and OpenAI's `{"error": {...}}` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<String>,
    pub param: Option<String>,
}

impl ClientError {
    pub fn new(
        status: u16,
        kind: &'static str,
        code: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ClientError {
            status,
            message: message.into(),
            kind,
            code: code.map(str::to_owned),
            param: None,
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }

    pub fn body_bytes(&self) -> Vec<u8> {
        self.body().to_string().into_bytes()
    }

    /// The WebSocket error frame: `{"type": "error", "status": N, "error": {...}}`.
    /// The backend's key taken out of the provider's message (a provider may echo it).
    pub fn scrub_key(&mut self, api_key: &str) {
        if api_key.len() >= 4 {
            self.message = self.message.replace(api_key, "[REDACTED]");
        }
    }

    pub fn ws_frame(&self) -> String {
        json!({"type": "error", "status": self.status, "error": {
            "code": self.code.as_deref().unwrap_or(self.kind),
            "message": self.message,
            "type": self.kind,
            "param": self.param,
        }})
        .to_string()
    }

    /// The code used in `response.failed`.
    pub fn failed_code(&self) -> String {
        self.code
            .clone()
            .unwrap_or_else(|| "server_error".to_owned())
    }
}

/// The provider's message from an error body, in any of the shapes providers use, with
/// anything that looks like a key redacted (providers echo rejected keys).
pub fn provider_message(body: &[u8]) -> String {
    crate::redact::redact(&raw_provider_message(body))
}

fn raw_provider_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(m) = message_of(&v) {
            return m;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    truncate(text, 500)
}

fn message_of(v: &Value) -> Option<String> {
    let err = v.get("error").unwrap_or(v);
    match err {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("message")
            .or_else(|| o.get("msg"))
            .or_else(|| o.get("detail"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                v.get("base_resp")?
                    .get("status_msg")?
                    .as_str()
                    .map(str::to_owned)
            }),
        _ => None,
    }
}

fn provider_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let err = v.get("error").unwrap_or(&v);
    match err.get("code").or_else(|| err.get("type"))? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Does one of `profiles` know this error as meaning `what` (GLM's code 1261, its phrase
/// "超长": the prompt is too long)? `code` is ASCII lowercase.
fn provider_means(profiles: &[Profile], code: &str, message: &str, what: ErrorCode) -> bool {
    profiles.iter().any(|p| p.error_means(code, message, what))
}

/// The Codex code of a provider's error code.
fn codex_code(e: ErrorCode) -> &'static str {
    match e {
        ErrorCode::ContextOverflow => "context_length_exceeded",
        ErrorCode::InsufficientQuota => "insufficient_quota",
        ErrorCode::RateLimit => "rate_limit_exceeded",
        ErrorCode::Overloaded => "server_is_overloaded",
    }
}

/// Does this error of one of `profiles` say the prompt is too long?
fn is_context_length(profiles: &[Profile], message: &str, code: Option<&str>) -> bool {
    let m = message.to_ascii_lowercase();
    let code = code.unwrap_or("").to_ascii_lowercase();
    code.contains("context_length")
        || provider_means(profiles, &code, message, ErrorCode::ContextOverflow)
        || [
            "context length",
            "context_length",
            "context window",
            "maximum context",
            "prompt is too long",
            "too many tokens",
            "exceeded model token limit",
            "exceeds the model",
            "input length",
            "reduce the length",
            "token limit",
            "too long",
        ]
        .iter()
        .any(|p| m.contains(p))
}

fn is_quota(profiles: &[Profile], message: &str, code: Option<&str>) -> bool {
    let m = message.to_ascii_lowercase();
    let c = code.unwrap_or("").to_ascii_lowercase();
    c.contains("quota")
        || c.contains("balance")
        || provider_means(profiles, &c, message, ErrorCode::InsufficientQuota)
        || m.contains("insufficient")
        || m.contains("quota")
        || m.contains("balance")
}

fn is_overloaded(profiles: &[Profile], message: &str, code: Option<&str>) -> bool {
    let m = message.to_ascii_lowercase();
    let c = code.unwrap_or("").to_ascii_lowercase();
    c.contains("overload")
        || m.contains("overload")
        || m.contains("server is busy")
        || provider_means(profiles, &c, message, ErrorCode::Overloaded)
}

/// The client's status for an upstream error status. It depends on the status alone, since
/// the response header goes out before the error body is read.
pub fn client_status(upstream: u16) -> u16 {
    match upstream {
        401 | 403 => 401,
        402 => 429,
        422 => 400,
        503 | 529 => 503,
        500..=599 => 502,
        s if (400..500).contains(&s) => s,
        _ => 502,
    }
}

/// An upstream HTTP error (before the stream) → the client's status and error. Beside the
/// generic codes and phrases, only `profile`'s own count (the backend's provider).
pub fn map_http_error(
    profile: Profile,
    status: u16,
    body: &[u8],
    backend: &str,
    retry_after: Option<&str>,
) -> ClientError {
    let message = provider_message(body);
    let code = provider_code(body);
    let code = code.as_deref();
    let said = format!("{backend} backend: {message}");
    let profiles = &[profile];
    if is_context_length(profiles, &message, code) && status < 500 {
        let mut e = ClientError::new(
            client_status(status),
            "invalid_request_error",
            Some("context_length_exceeded"),
            format!("Your input exceeds the context window of this model. ({said})"),
        );
        e.param = Some("input".into());
        return e;
    }
    match status {
        401 | 403 => ClientError::new(
            401,
            "authentication_error",
            Some("invalid_api_key"),
            format!(
                "The {backend} backend rejected the proxy's credentials (HTTP {status}): {message}. \
                 Check the backend's api_key in the proxy configuration."
            ),
        ),
        402 => ClientError::new(429, "insufficient_quota", Some("insufficient_quota"), said),
        429 if is_quota(profiles, &message, code) && !message.to_ascii_lowercase().contains("rate") => {
            ClientError::new(429, "insufficient_quota", Some("insufficient_quota"), said)
        }
        429 => {
            let wait = retry_after
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|s| format!(" Please try again in {s}s."))
                .unwrap_or_default();
            ClientError::new(
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                format!("Rate limit reached: {said}.{wait}"),
            )
        }
        500..=599 if status == 503 || status == 529 || is_overloaded(profiles, &message, code) => {
            ClientError::new(
                client_status(status),
                "server_error",
                Some("server_is_overloaded"),
                format!("The {backend} backend is overloaded: {message}"),
            )
        }
        500..=599 => ClientError::new(
            502,
            "server_error",
            Some("server_error"),
            format!("The {backend} backend failed (HTTP {status}): {message}"),
        ),
        400 | 422 => ClientError::new(400, "invalid_request_error", None, said),
        404 => ClientError::new(404, "invalid_request_error", Some("model_not_found"), said),
        s if (400..500).contains(&s) => ClientError::new(s, "invalid_request_error", None, said),
        s => ClientError::new(502, "server_error", Some("server_error"), format!("{said} (HTTP {s})")),
    }
}

/// An `{"error": ...}` object inside the stream of a `profile` backend → (code, message)
/// for `response.failed`: the profile's own codes and phrases, as for an HTTP error.
pub fn code_for_stream_error(profile: Profile, err: &Value) -> (String, String) {
    let profiles = &[profile];
    let wrapped = json!({ "error": err });
    let bytes = wrapped.to_string();
    let message = provider_message(bytes.as_bytes());
    let code = provider_code(bytes.as_bytes());
    let code = code.as_deref();
    let mapped = if is_context_length(profiles, &message, code) {
        "context_length_exceeded"
    } else if is_quota(profiles, &message, code) {
        "insufficient_quota"
    } else if is_overloaded(profiles, &message, code) {
        "server_is_overloaded"
    } else if message.to_ascii_lowercase().contains("rate limit") || code == Some("429") {
        "rate_limit_exceeded"
    } else {
        "server_error"
    };
    (mapped.to_owned(), message)
}

/// MiniMax's `base_resp` with a non-zero `status_code` (an error reported inside a 200
/// body, read by [`minimax::base_resp_error`]) → (code, message) for `response.failed`;
/// `None` for success or no `base_resp`.
pub fn base_resp_error(base_resp: Option<&Value>) -> Option<(String, String)> {
    let e = minimax::base_resp_error(base_resp?)?;
    let message =
        crate::redact::redact(&format!("{} (MiniMax status_code {})", e.message, e.status));
    let code = match e.means {
        Some(means) => codex_code(means).to_owned(),
        None => code_for_stream_error(Profile::MiniMax, &json!({"message": e.message})).0,
    };
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_statuses_and_codes() {
        let e = map_http_error(
            Profile::Kimi,
            400,
            br#"{"error":{"message":"This model's maximum context length is 131072 tokens"}}"#,
            "kimi",
            None,
        );
        assert_eq!(
            (e.status, e.code.as_deref()),
            (400, Some("context_length_exceeded"))
        );
        let e = map_http_error(
            Profile::Glm,
            401,
            br#"{"error":{"message":"bad key sk-abc"}}"#,
            "glm",
            None,
        );
        assert_eq!(e.status, 401);
        assert!(e.message.contains("glm backend"));
        let e = map_http_error(
            Profile::DeepSeek,
            429,
            br#"{"error":{"message":"slow down"}}"#,
            "ds",
            Some("3"),
        );
        assert_eq!(
            (e.status, e.code.as_deref()),
            (429, Some("rate_limit_exceeded"))
        );
        assert!(e.message.contains("try again in 3s"));
        let e = map_http_error(Profile::DeepSeek, 500, b"oops", "ds", None);
        assert_eq!((e.status, e.code.as_deref()), (502, Some("server_error")));
        let e = map_http_error(Profile::DeepSeek, 503, b"{}", "ds", None);
        assert_eq!(e.code.as_deref(), Some("server_is_overloaded"));
        let e = map_http_error(
            Profile::MiniMax,
            400,
            br#"{"base_resp":{"status_code":2013,"status_msg":"invalid params"}}"#,
            "mm",
            None,
        );
        assert_eq!(e.status, 400);
        assert!(e.message.contains("invalid params"));
        let body = e.body();
        assert!(body["error"].get("param").is_some() && body["error"].get("type").is_some());
    }

    /// The providers' own codes and phrases (providers/glm.rs, providers/minimax.rs): only
    /// the backend's provider's count, before the stream and in it.
    #[test]
    fn provider_error_codes() {
        let body = br#"{"error":{"code":"1261","message":"Prompt exceeds max length"}}"#;
        let e = map_http_error(Profile::Glm, 400, body, "glm", None);
        assert_eq!(e.code.as_deref(), Some("context_length_exceeded"));
        let e = map_http_error(Profile::Kimi, 400, body, "kimi", None);
        assert_eq!(e.code, None);
        let busy = r#"{"error":{"message":"服务繁忙"}}"#.as_bytes();
        let e = map_http_error(Profile::Glm, 500, busy, "glm", None);
        assert_eq!(e.code.as_deref(), Some("server_is_overloaded"));
        let e = map_http_error(Profile::DeepSeek, 500, busy, "ds", None);
        assert_eq!(e.code.as_deref(), Some("server_error"));
        let (c, _) = code_for_stream_error(Profile::Kimi, &json!({"message": "余额不足"}));
        assert_eq!(c, "insufficient_quota");
        let glm_quota = json!({"code": 1113, "message": "x"});
        let (c, _) = code_for_stream_error(Profile::Glm, &glm_quota);
        assert_eq!(c, "insufficient_quota");
        // Another provider's code means nothing from this one.
        let (c, _) = code_for_stream_error(Profile::Kimi, &glm_quota);
        assert_eq!(c, "server_error");
        let (c, _) = code_for_stream_error(Profile::Glm, &json!({"code": 1114, "message": "x"}));
        assert_eq!(c, "server_error");
        let b =
            |status: i64| base_resp_error(Some(&json!({"status_code": status, "status_msg": "m"})));
        let code = |status: i64| b(status).map(|(c, _)| c);
        assert_eq!(code(1002).as_deref(), Some("rate_limit_exceeded"));
        assert_eq!(code(1008).as_deref(), Some("insufficient_quota"));
        assert_eq!(code(2013).as_deref(), Some("server_error"));
        assert_eq!(b(0), None);
    }

    #[test]
    fn stream_error_codes() {
        let (c, m) = code_for_stream_error(
            Profile::OpenAi,
            &json!({"message": "context length exceeded", "code": 400}),
        );
        assert_eq!(c, "context_length_exceeded");
        assert!(m.contains("context length"));
        let (c, _) = code_for_stream_error(Profile::OpenAi, &json!("upstream exploded"));
        assert_eq!(c, "server_error");
    }
}
