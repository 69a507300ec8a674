//! Where a request goes, decided from its method, path and headers before any body is read:
//! the proxy's own pages, a stored response, a WebSocket upgrade, or a turn to convert (with
//! its backend: path prefix > model > default). Client auth and the header, method and
//! size checks live here too, so the HTTP hooks only carry the decision out.

use http::{HeaderMap, Method};

use crate::config::Config;
use crate::convert::error::ClientError;
use crate::turn::stored::{stored_path, StoredPath};

/// Larger request headers get 431 (Codex sends a few KB).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What the router looks at.
#[derive(Debug, Clone, Copy)]
pub struct Request<'p, 'h> {
    pub method: &'h Method,
    /// The path without the query string.
    pub path: &'p str,
    pub headers: &'h HeaderMap,
}

/// A page the proxy answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Health,
    Metrics,
    Stats,
    /// `GET /v1/models`; under a backend prefix only that backend's models.
    Models {
        only: Option<usize>,
    },
    /// One of the pages above with another method than GET/HEAD.
    NotAllowed(&'static str),
    /// `GET /dashboard` (when enabled, with a token when tokens are checked).
    Dashboard,
    /// The dashboard without a token it takes: 401 with a Basic challenge.
    Locked,
}

/// The decision.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Page(Page),
    /// `GET`/`DELETE …/responses/{id}` and `…/input_items`.
    Stored(StoredPath<'a>),
    /// A WebSocket upgrade on a responses path; `prefix_backend` when a path prefix chose one.
    WebSocket(WsRoute),
    /// A `POST …/responses` (or `…/responses/compact`) to convert.
    Convert(Convert),
}

/// Where a connection's messages go: the backend chosen by the path prefix, or (without a
/// prefix) per message by its model, else the default backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsRoute {
    pub prefix_backend: Option<usize>,
}

/// A turn to convert, as far as the headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Convert {
    /// The backend of the path's prefix, if it has one (else the model's or the default:
    /// [`choose_backend`]).
    pub prefix: Option<usize>,
    /// Read `model` from the body's first chunk and route by it (no prefix, model rules set).
    pub sniff: bool,
    /// Remote compaction v1 (`POST …/responses/compact`).
    pub compact: bool,
    /// The body's declared length (the buffer is sized once from it).
    pub declared_len: Option<usize>,
}

/// Decide where a request goes. Errors are the client's, in OpenAI's shape.
pub fn route<'p>(config: &Config, req: &Request<'p, '_>) -> Result<Route<'p>, ClientError> {
    if let Some(page) = own_page(req.method, req.path) {
        return Ok(Route::Page(page));
    }
    if config.dashboard.enabled && req.path.trim_end_matches('/') == "/dashboard" {
        return Ok(Route::Page(dashboard(config, req)));
    }
    if !config.auth_tokens.is_empty() && !authorized(req.headers, &config.auth_tokens) {
        return Err(ClientError::new(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Missing or invalid proxy token: send one of the proxy's auth_tokens as `Authorization: Bearer <token>`.",
        ));
    }
    let path = req.path;
    let routed = config.route(path);
    let rest = routed.map(|(_, rest)| rest).unwrap_or(path);
    let by_prefix = routed.is_some_and(|(_, rest)| rest.len() != path.len());
    let prefix_backend = routed.filter(|_| by_prefix).map(|(i, _)| i);
    let p = rest.trim_end_matches('/');
    if matches!(p, "/v1/models" | "/models") {
        return Ok(Route::Page(if is_get(req.method) {
            Page::Models {
                only: prefix_backend,
            }
        } else {
            Page::NotAllowed(if p == "/models" {
                "/models"
            } else {
                "/v1/models"
            })
        }));
    }
    if let Some(sp) = stored_path(rest) {
        return Ok(Route::Stored(sp));
    }
    let compact = is_compact_path(rest);
    if !(compact || matches!(p, "" | "/v1/responses" | "/responses")) {
        return Err(ClientError::new(
            404,
            "invalid_request_error",
            Some("not_found"),
            format!("Unknown path {path}: this proxy serves POST /v1/responses (also /responses and /, and the same under a backend prefix)."),
        ));
    }
    if req.method == Method::GET && !compact && is_upgrade(req.headers) {
        return Ok(Route::WebSocket(WsRoute { prefix_backend }));
    }
    if req.method != Method::POST {
        return Err(method_not_allowed(req.method, path));
    }
    let headers = req.headers;
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ClientError::new(
            431,
            "invalid_request_error",
            Some("request_header_fields_too_large"),
            format!("The request headers are too large ({header_bytes} bytes; the limit is {MAX_HEADER_BYTES})."),
        ));
    }
    if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.is_empty() && !ct.contains("json") {
            return Err(ClientError::new(
                415,
                "invalid_request_error",
                Some("unsupported_media_type"),
                format!("Content-Type {ct} is not supported: send application/json."),
            ));
        }
    }
    let declared_len = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared_len.is_some_and(|n| n > config.max_body_bytes) {
        return Err(too_large(config.max_body_bytes));
    }
    Ok(Route::Convert(Convert {
        prefix: prefix_backend,
        sniff: !by_prefix && config.has_model_rules(),
        compact,
        declared_len,
    }))
}

/// The backend of a turn, for both transports: the path prefix's, else the model's
/// (`match_rules.model`), else the default; `None` when none serves it.
pub fn choose_backend(
    config: &Config,
    prefix: Option<usize>,
    model: Option<&str>,
) -> Option<usize> {
    prefix
        .or_else(|| {
            model
                .filter(|_| config.has_model_rules())
                .and_then(|m| config.route_model(m))
        })
        .or(config.default_backend)
}

/// No backend serves the request.
pub fn no_backend(path: &str) -> ClientError {
    let what = if path.is_empty() {
        "this request".to_owned()
    } else {
        path.to_owned()
    };
    ClientError::new(
        404,
        "invalid_request_error",
        Some("not_found"),
        format!("No backend serves {what}: it matches no path_prefix, no match_rules.model and no default backend is configured."),
    )
}

/// The body is larger than `max_body_bytes`.
pub fn too_large(limit: usize) -> ClientError {
    ClientError::new(
        413,
        "invalid_request_error",
        Some("request_too_large"),
        format!(
            "The request body is larger than this proxy's limit of {limit} bytes (max_body_bytes)."
        ),
    )
}

fn method_not_allowed(method: &Method, path: &str) -> ClientError {
    ClientError::new(
        405,
        "invalid_request_error",
        Some("method_not_allowed"),
        format!("Method {method} is not allowed on {path}: use POST."),
    )
}

/// `/health`, `/metrics`, `/stats` (before auth: probes carry no token).
fn own_page(method: &Method, path: &str) -> Option<Page> {
    let page = match path.trim_end_matches('/') {
        "/health" => Page::Health,
        "/metrics" => Page::Metrics,
        "/stats" => Page::Stats,
        _ => return None,
    };
    Some(if is_get(method) {
        page
    } else {
        Page::NotAllowed(match page {
            Page::Health => "/health",
            Page::Metrics => "/metrics",
            _ => "/stats",
        })
    })
}

fn is_get(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// Remote compaction v1 (`POST …/responses/compact`).
fn is_compact_path(rest: &str) -> bool {
    matches!(
        rest.trim_end_matches('/'),
        "/v1/responses/compact" | "/responses/compact"
    )
}

/// Is this an HTTP/1.1 WebSocket upgrade request?
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(http::header::UPGRADE, "websocket") && has(http::header::CONNECTION, "upgrade")
}

/// The `Sec-WebSocket-Key` of a valid upgrade (version 13), else the client's error.
pub fn websocket_key(headers: &HeaderMap) -> Result<String, ClientError> {
    let key = headers
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let version_ok = headers
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "13");
    match key.filter(|_| version_ok) {
        Some(k) => Ok(k.to_owned()),
        None => Err(ClientError::new(
            400,
            "invalid_request_error",
            Some("invalid_websocket_handshake"),
            "A WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13.",
        )),
    }
}

/// The client's token: `Authorization: Bearer …`, else `x-api-key`.
pub fn client_token(headers: &HeaderMap) -> &str {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .unwrap_or("")
        .trim()
}

/// The name of the request's client key, when it carries a named one (`auth_tokens`
/// objects): what its spend is counted under.
pub fn client_name(config: &Config, headers: &HeaderMap) -> Option<String> {
    if config.clients.is_empty() {
        return None;
    }
    config
        .client_of(client_token(headers))
        .map(|c| c.name.clone())
}

/// The dashboard, its 401, or a 405: it takes the client tokens and the admin token when
/// either is set (else it is as open as `/stats`).
fn dashboard(config: &Config, req: &Request<'_, '_>) -> Page {
    if !is_get(req.method) {
        return Page::NotAllowed("/dashboard");
    }
    let admin = config.dashboard.admin_token.as_deref();
    if config.auth_tokens.is_empty() && admin.is_none() {
        return Page::Dashboard;
    }
    let given = page_token(req.headers);
    let ok = one_of(&given, &config.auth_tokens)
        | admin.is_some_and(|a| constant_time_eq(a.as_bytes(), given.as_bytes()));
    if ok && !given.is_empty() {
        Page::Dashboard
    } else {
        Page::Locked
    }
}

/// A browser's token: `Authorization: Basic` with the token as the password (what its
/// prompt sends), else the client token ([`client_token`]).
fn page_token(headers: &HeaderMap) -> String {
    use base64::Engine as _;
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let v = v.trim();
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    match basic {
        Some(pair) => match pair.split_once(':') {
            Some((_, password)) => password.to_owned(),
            None => pair,
        },
        None => client_token(headers).to_owned(),
    }
}

/// The owner a stored response gets: the client token's hash when tokens are checked.
pub fn owner_of(config: &Config, headers: &HeaderMap) -> Option<String> {
    (!config.auth_tokens.is_empty()).then(|| crate::store::owner_hash(client_token(headers)))
}

/// Does the request carry one of the proxy's client tokens? Compared in constant time.
fn authorized(headers: &HeaderMap, tokens: &[String]) -> bool {
    one_of(client_token(headers), tokens)
}

/// Is `given` one of `tokens`? Every token is checked (no early exit), each comparison in
/// constant time.
fn one_of(given: &str, tokens: &[String]) -> bool {
    tokens.iter().fold(false, |ok, t| {
        ok | constant_time_eq(t.as_bytes(), given.as_bytes())
    })
}

/// Two tokens compared in constant time (for their length).
pub fn same_token(a: &[u8], b: &[u8]) -> bool {
    constant_time_eq(a, b)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(extra: serde_json::Value) -> Config {
        let mut v = serde_json::json!({
            "backends": [
                {"name": "glm", "provider": "glm", "url": "http://127.0.0.1:1", "api_key": "k",
                 "match_rules": {"path_prefix": "/glm", "default": true}},
                {"name": "kimi", "provider": "kimi", "url": "http://127.0.0.1:2", "api_key": "k",
                 "match_rules": {"path_prefix": "/kimi", "model": "kimi-*"}}
            ],
            "max_body_bytes": 1000
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in e {
                o.insert(k.clone(), val.clone());
            }
        }
        Config::from_json_str(&v.to_string(), &|_| None).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn go<'a>(
        config: &Config,
        method: &'a Method,
        path: &'a str,
        h: &'a HeaderMap,
    ) -> Result<Route<'a>, ClientError> {
        route(
            config,
            &Request {
                method,
                path,
                headers: h,
            },
        )
    }

    #[test]
    fn pages_come_before_auth_and_refuse_other_methods() {
        let c = config(serde_json::json!({"auth_tokens": ["t"]}));
        let h = HeaderMap::new();
        assert_eq!(
            go(&c, &Method::GET, "/health/", &h),
            Ok(Route::Page(Page::Health))
        );
        assert_eq!(
            go(&c, &Method::HEAD, "/metrics", &h),
            Ok(Route::Page(Page::Metrics))
        );
        assert_eq!(
            go(&c, &Method::POST, "/stats", &h),
            Ok(Route::Page(Page::NotAllowed("/stats")))
        );
        // Models need the token.
        assert_eq!(
            go(&c, &Method::GET, "/v1/models", &h).unwrap_err().status,
            401
        );
    }

    #[test]
    fn tokens_are_checked_from_bearer_or_x_api_key() {
        let c = config(serde_json::json!({"auth_tokens": ["secret", "other"]}));
        let ok = headers(&[("authorization", "Bearer other")]);
        let alt = headers(&[("x-api-key", "secret")]);
        let bad = headers(&[("authorization", "Bearer secre")]);
        assert!(matches!(
            go(&c, &Method::POST, "/v1/responses", &ok),
            Ok(Route::Convert(_))
        ));
        assert!(matches!(
            go(&c, &Method::POST, "/v1/responses", &alt),
            Ok(Route::Convert(_))
        ));
        let e = go(&c, &Method::POST, "/v1/responses", &bad).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (401, Some("invalid_api_key"))
        );
        assert_eq!(owner_of(&c, &ok), Some(crate::store::owner_hash("other")));
        assert_eq!(owner_of(&config(serde_json::json!({})), &ok), None);
    }

    #[test]
    fn prefix_then_model_then_default() {
        let c = config(serde_json::json!({}));
        let h = HeaderMap::new();
        let Ok(Route::Convert(by_prefix)) = go(&c, &Method::POST, "/kimi/v1/responses", &h) else {
            panic!("not a conversion");
        };
        assert_eq!((by_prefix.prefix, by_prefix.sniff), (Some(1), false));
        let Ok(Route::Convert(bare)) = go(&c, &Method::POST, "/v1/responses", &h) else {
            panic!("not a conversion");
        };
        // No prefix, model rules exist: the default unless the model says otherwise.
        assert_eq!((bare.prefix, bare.sniff, bare.compact), (None, true, false));
        // Prefix > model > default, for both transports.
        assert_eq!(choose_backend(&c, bare.prefix, Some("kimi-k2")), Some(1));
        assert_eq!(choose_backend(&c, bare.prefix, Some("glm-5")), Some(0));
        assert_eq!(choose_backend(&c, None, None), Some(0));
        assert_eq!(choose_backend(&c, Some(0), Some("kimi-k2")), Some(0));
    }

    #[test]
    fn paths_methods_and_sizes() {
        let c = config(serde_json::json!({}));
        let h = HeaderMap::new();
        let Ok(Route::Convert(cv)) = go(&c, &Method::POST, "/glm/responses/compact", &h) else {
            panic!("not a conversion");
        };
        assert!(cv.compact);
        assert_eq!(
            go(
                &c,
                &Method::GET,
                "/kimi/v1/responses/resp_1/input_items",
                &h
            ),
            Ok(Route::Stored(StoredPath::InputItems("resp_1")))
        );
        assert_eq!(
            go(&c, &Method::GET, "/kimi/v1/models", &h),
            Ok(Route::Page(Page::Models { only: Some(1) }))
        );
        assert_eq!(
            go(&c, &Method::GET, "/v1/models", &h),
            Ok(Route::Page(Page::Models { only: None }))
        );
        assert_eq!(go(&c, &Method::GET, "/nope", &h).unwrap_err().status, 404);
        let e = go(&c, &Method::GET, "/v1/responses", &h).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (405, Some("method_not_allowed"))
        );
        let up = headers(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
        ]);
        assert_eq!(
            go(&c, &Method::GET, "/kimi/v1/responses", &up),
            Ok(Route::WebSocket(WsRoute {
                prefix_backend: Some(1)
            }))
        );
        // No upgrade on the compaction path.
        assert_eq!(
            go(&c, &Method::GET, "/v1/responses/compact", &up)
                .unwrap_err()
                .status,
            405
        );
        let text = headers(&[("content-type", "text/plain")]);
        assert_eq!(
            go(&c, &Method::POST, "/v1/responses", &text)
                .unwrap_err()
                .status,
            415
        );
        let big = headers(&[("content-length", "1001")]);
        assert_eq!(
            go(&c, &Method::POST, "/v1/responses", &big)
                .unwrap_err()
                .status,
            413
        );
        let fits = headers(&[
            ("content-length", "1000"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        let Ok(Route::Convert(cv)) = go(&c, &Method::POST, "/v1/responses", &fits) else {
            panic!("not a conversion");
        };
        assert_eq!(cv.declared_len, Some(1000));
        let long = "x".repeat(MAX_HEADER_BYTES);
        let huge = headers(&[("x-big", long.as_str())]);
        assert_eq!(
            go(&c, &Method::POST, "/v1/responses", &huge)
                .unwrap_err()
                .status,
            431
        );
    }

    #[test]
    fn websocket_handshake_needs_key_and_version_13() {
        assert_eq!(
            websocket_key(&headers(&[
                ("sec-websocket-key", " abc "),
                ("sec-websocket-version", "13")
            ])),
            Ok("abc".to_owned())
        );
        let e = websocket_key(&headers(&[
            ("sec-websocket-key", "abc"),
            ("sec-websocket-version", "8"),
        ]));
        assert_eq!(
            e.unwrap_err().code.as_deref(),
            Some("invalid_websocket_handshake")
        );
        assert!(websocket_key(&headers(&[("sec-websocket-version", "13")])).is_err());
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
