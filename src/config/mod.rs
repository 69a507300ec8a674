//! Proxy configuration: the validated [`Config`] and its loading.
//!
//! Configuration is loaded in stages, one module each:
//!
//! 1. `env`: the JSON text is parsed into a [`serde_json::Value`] and every string value
//!    has its `${VAR}` / `${VAR:-default}` references substituted;
//! 2. `raw`: the result is deserialized into private "raw" structs (all of them
//!    `deny_unknown_fields`, every field optional), the JSON path of a schema error tracked
//!    by `serde_path_to_error`;
//! 3. `validate`: the raw form is validated and normalized into [`Config`], with
//!    `models` for the model metadata of each backend (Codex's catalog).
//!
//! Every [`ConfigError`] (`error`) names the JSON path of the offending value, e.g.
//! `backends[1].api_key: environment variable KIMI_API_KEY is not set`.
//!
//! This file owns the public types (`Config`, `Backend`, …), the pipeline
//! ([`Config::from_json_str`]) and what the proxy asks of a loaded config (routing, warnings).

mod env;
mod error;
mod models;
mod raw;
mod validate;

#[cfg(test)]
mod testing;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

pub use crate::providers::{InputModality, ReasoningEffort};
pub use error::ConfigError;
pub use models::{ApplyPatch, ModelMetadata, ReasoningMetadata};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8280";
/// Default log directory.
pub const DEFAULT_LOG_DIR: &str = "logs";
/// Default log level.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Default graceful-shutdown grace period, in seconds.
pub const DEFAULT_GRACE_PERIOD_SECONDS: u64 = 5;
/// Default maximum request body size (32 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Default connect timeout, in milliseconds.
pub const DEFAULT_CONNECT_MS: u64 = 10_000;
/// Default time-to-first-byte timeout, in milliseconds.
pub const DEFAULT_FIRST_BYTE_MS: u64 = 300_000;
/// Default idle (between reads) timeout, in milliseconds.
pub const DEFAULT_IDLE_MS: u64 = 300_000;
/// Default total request timeout, in milliseconds.
pub const DEFAULT_TOTAL_MS: u64 = 1_800_000;
/// Default OpenTelemetry service name.
pub const DEFAULT_SERVICE_NAME: &str = "codex-convert-proxy";
/// Default OTLP endpoint (gRPC).
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://127.0.0.1:4317";
/// Default OTLP endpoint with `telemetry.protocol: "http"` (HTTP/protobuf).
pub const DEFAULT_OTLP_HTTP_ENDPOINT: &str = "http://127.0.0.1:4318";
/// Default cut of the bodies logged with `log_body` (64 KiB).
pub const DEFAULT_LOG_BODY_MAX_BYTES: usize = 64 * 1024;
/// The only supported upstream protocol.
pub const SUPPORTED_PROTOCOL: &str = "openai";
/// Paths served locally by the proxy; a `path_prefix` may not equal one of
/// these nor lie beneath one of them.
pub const RESERVED_PATHS: &[&str] = &[
    "/health",
    "/v1",
    "/responses",
    "/metrics",
    "/stats",
    "/models",
    "/dashboard",
];

/// Validated proxy configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub log_dir: PathBuf,
    pub log_body: bool,
    /// Bodies logged with `log_body` are cut at this many bytes.
    pub log_body_max_bytes: usize,
    pub log_level: String,
    /// `text` (human-readable lines) or `json` (one JSON object per line).
    pub log_format: LogFormat,
    pub threads: usize,
    pub grace_period_seconds: u64,
    pub max_body_bytes: usize,
    pub backends: Vec<Backend>,
    /// Index into `backends` of the default backend, if any. When `None`,
    /// every backend has a `path_prefix` and unmatched paths get a 404.
    pub default_backend: Option<usize>,
    pub telemetry: Telemetry,
    /// Client tokens: when non-empty, every request must carry one as
    /// `Authorization: Bearer <token>` (or `x-api-key`). From `auth_tokens` and the
    /// comma-separated environment variable `CODEX_PROXY_AUTH_TOKENS`.
    pub auth_tokens: Vec<String>,
    /// The named client keys (`auth_tokens` objects): spend is counted by their name, and a
    /// budget is kept. Their tokens are in `auth_tokens` too.
    pub clients: Vec<ClientKey>,
    /// Prices by model name (ASCII lowercase) over the profiles' shipped ones.
    pub prices: std::collections::BTreeMap<String, crate::spend::Price>,
    /// The WebSocket transport (`GET …/responses` with `Upgrade: websocket`).
    pub websocket: WebSocketConfig,
    /// Where stored responses are kept (`previous_response_id`, retrieve, delete).
    pub store: StoreConfig,
    /// The live page (`GET /dashboard`).
    pub dashboard: Dashboard,
}

/// `dashboard`: the live page, off unless enabled. When the proxy checks client tokens, or
/// an `admin_token` is set, the page takes one of them (Bearer, or Basic with the token as
/// the password).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Dashboard {
    pub enabled: bool,
    pub admin_token: Option<String>,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("enabled", &self.enabled)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A named client key: its spend is counted by its name (never by its token), within its
/// budget.
#[derive(Clone, PartialEq)]
pub struct ClientKey {
    pub name: String,
    pub token: String,
    pub budget: Option<crate::spend::Budget>,
}

impl Eq for ClientKey {}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("token", &"<redacted>")
            .field("budget", &self.budget)
            .finish()
    }
}

/// `store`: the response store's kind and retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Stateless: `previous_response_id` over HTTP gets a 400; nothing is kept.
    None,
    /// In this process's memory, bounded, lost on restart.
    Memory { retention: crate::store::Retention },
    /// An append-only log in a directory on local disk (the default).
    Embedded {
        path: PathBuf,
        retention: crate::store::Retention,
    },
    /// A Redis server shared by several instances (`redis://` or `rediss://`).
    Redis {
        url: String,
        retention: crate::store::Retention,
    },
}

/// `websocket`: Codex's (and Open Responses') WebSocket mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// When off, an upgrade gets 426 (Codex then uses HTTP at once, silently).
    pub enabled: bool,
    /// A connection older than this is closed after its current turn
    /// (`websocket_connection_limit_reached`); the client opens a new one.
    pub max_connection_age: std::time::Duration,
    /// Memory one connection may hold: its remembered responses (for
    /// `previous_response_id`) and its queued messages.
    pub max_connection_bytes: usize,
    /// Largest message a client may send.
    pub max_message_bytes: usize,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            enabled: true,
            max_connection_age: std::time::Duration::from_secs(60 * 60),
            max_connection_bytes: 256 * 1024 * 1024,
            max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// One validated upstream backend.
#[derive(Clone, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    /// Base URL. Trailing slashes of the configured value are trimmed before
    /// parsing (a URL without a path still serializes with a single `/`).
    pub url: Url,
    /// The base URL as a string without any trailing `/`.
    pub base_url: String,
    /// API key; empty means "send no `Authorization` header".
    pub api_key: String,
    /// When set, replaces the request's model.
    pub model: Option<String>,
    /// The configured provider profile name, one of [`crate::providers::Profile::ALL`]'s (the profile in use,
    /// also picked by the backend's name, is `quirks.profile`).
    pub provider: Option<String>,
    /// Normalized path prefix (starts with `/`, no trailing `/`).
    pub path_prefix: Option<String>,
    pub is_default: bool,
    pub timeouts: Timeouts,
    /// `true` for `https` URLs.
    pub tls: bool,
    /// Host as written in the URL (IPv6 addresses keep their brackets, so
    /// `format!("{host}:{port}")` is a valid address).
    pub host: String,
    /// Explicit port, or 443 / 80 by scheme.
    pub port: u16,
    /// Backends (indices) tried, in order, when this one cannot be connected to.
    pub fallback: Vec<usize>,
    /// Extra connection attempts to this backend before failing over (default 1).
    pub retries: u32,
    /// When its circuit opens, and for how long (`circuit`).
    pub circuit: crate::turn::breaker::Circuit,
    /// The models this backend serves, with their metadata for Codex (defaults of the
    /// provider profile filled in): first `model` (if set), then the `models` entries.
    pub models: Vec<ModelMetadata>,
    /// `match_rules.model`: model names or globs (`*`, `?`) routed to this backend.
    pub match_models: Vec<String>,
    /// The provider profile's switches with this backend's `quirks` overrides applied.
    pub quirks: crate::providers::Quirks,
    /// Prices by model name (ASCII lowercase) for this backend, over the config's and the
    /// profile's.
    pub prices: std::collections::BTreeMap<String, crate::spend::Price>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret; an empty key is shown as such because it
        // carries no secret and is useful when debugging.
        let api_key: &str = if self.api_key.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("base_url", &self.base_url)
            .field("api_key", &api_key)
            .field("model", &self.model)
            .field("provider", &self.provider)
            .field("path_prefix", &self.path_prefix)
            .field("is_default", &self.is_default)
            .field("timeouts", &self.timeouts)
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("fallback", &self.fallback)
            .field("retries", &self.retries)
            .field("models", &self.models)
            .field("match_models", &self.match_models)
            .field("quirks", &self.quirks)
            .finish()
    }
}

/// Per-backend timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_millis(DEFAULT_CONNECT_MS),
            first_byte: Duration::from_millis(DEFAULT_FIRST_BYTE_MS),
            idle: Duration::from_millis(DEFAULT_IDLE_MS),
            total: Duration::from_millis(DEFAULT_TOTAL_MS),
        }
    }
}

/// Format of the log lines (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// OTLP transport (`telemetry.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC (port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318); `/v1/traces` is appended to the endpoint.
    Http,
}

/// Telemetry (OpenTelemetry) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telemetry {
    pub enabled: bool,
    pub service_name: String,
    pub otlp_endpoint: String,
    pub protocol: OtlpProtocol,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            enabled: false,
            service_name: DEFAULT_SERVICE_NAME.to_string(),
            otlp_endpoint: DEFAULT_OTLP_ENDPOINT.to_string(),
            protocol: OtlpProtocol::Grpc,
        }
    }
}

impl Config {
    /// The price of `model` on backend `idx`: the backend's `prices`, else the config's,
    /// else the profile's shipped price of the model's family (`None`: unknown, the turn's
    /// cost is not counted).
    pub fn price(&self, idx: usize, model: &str) -> Option<crate::spend::Price> {
        let b = self.backends.get(idx)?;
        let key = model.to_ascii_lowercase();
        b.prices
            .get(&key)
            .or_else(|| self.prices.get(&key))
            .copied()
            .or_else(|| b.quirks.profile.price(model))
    }

    /// The named client key of a request's token, if it is one.
    pub fn client_of(&self, token: &str) -> Option<&ClientKey> {
        self.clients
            .iter()
            .find(|c| crate::turn::route::same_token(c.token.as_bytes(), token.as_bytes()))
    }

    /// The size limit of the bodies a turn logs (`None`: `log_body` is off).
    pub fn body_log_limit(&self) -> Option<usize> {
        self.log_body.then_some(self.log_body_max_bytes)
    }

    /// Reads and validates the configuration file at `path`, substituting
    /// environment variables from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_json_str(&text, &|name: &str| std::env::var(name).ok())
    }

    /// Parses and validates a configuration from JSON text, looking up
    /// `${VAR}` references with `env`.
    pub fn from_json_str(
        s: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut value: Value = serde_json::from_str(s).map_err(error::syntax_error)?;
        env::substitute_env(&mut value, "", env)?;
        let raw = raw::deserialize_raw(&value)?;
        let mut config = validate::validate(raw)?;
        if let Some(extra) = env("CODEX_PROXY_AUTH_TOKENS") {
            config.auth_tokens.extend(
                extra
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        Ok(config)
    }

    /// What is wrong but not invalid: a backend naming a model that its provider profile
    /// knows to be retired (`--check` prints these; the proxy logs them at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.backends {
            let profile = b.quirks.profile;
            for m in &b.models {
                let Some(r) = profile.retirement(&m.name) else {
                    continue;
                };
                let key = if m.json_path.contains(".models[") {
                    "name"
                } else {
                    "model"
                };
                let what = if r.still_answered {
                    "is a legacy name (still answered, by another model)"
                } else {
                    "is retired (requests fail)"
                };
                out.push(format!(
                    "{}.{key}: {profile} model {:?} {what} since {}; use {}",
                    m.json_path, m.name, r.since, r.instead
                ));
            }
        }
        out
    }

    /// Does any backend route by model?
    pub fn has_model_rules(&self) -> bool {
        self.backends.iter().any(|b| !b.match_models.is_empty())
    }

    /// The backend whose `match_rules.model` matches: exact names first, then globs, each in
    /// config order.
    pub fn route_model(&self, model: &str) -> Option<usize> {
        let exact = self
            .backends
            .iter()
            .position(|b| b.match_models.iter().any(|m| m == model));
        exact.or_else(|| {
            self.backends.iter().position(|b| {
                b.match_models
                    .iter()
                    .any(|m| crate::convert::sniff::glob_match(m, model))
            })
        })
    }

    /// The default backend, if any.
    pub fn default_backend(&self) -> Option<&Backend> {
        self.default_backend.and_then(|i| self.backends.get(i))
    }

    /// Routes a request path (without query string) to a backend.
    ///
    /// Returns the backend index and the remainder of the path after the
    /// matched prefix (`""` or starting with `/`). The longest `path_prefix`
    /// matching on a segment boundary wins; otherwise the default backend
    /// receives the whole path; otherwise `None`.
    pub fn route<'p>(&self, path: &'p str) -> Option<(usize, &'p str)> {
        let mut best: Option<(usize, usize)> = None; // (index, prefix length)
        for (i, backend) in self.backends.iter().enumerate() {
            let Some(prefix) = backend.path_prefix.as_deref() else {
                continue;
            };
            let Some(rest) = path.strip_prefix(prefix) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('/')) {
                continue;
            }
            if best.is_none_or(|(_, len)| prefix.len() > len) {
                best = Some((i, prefix.len()));
            }
        }
        if let Some((i, len)) = best {
            return path.get(len..).map(|rest| (i, rest));
        }
        self.default_backend.map(|i| (i, path))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::testing::*;
    use super::*;
    use crate::providers::Profile;
    use std::io::Write;
    fn env(name: &str) -> Option<String> {
        (name == "CODEX_PROXY_AUTH_TOKENS").then(|| " t2 , ,t3".to_owned())
    }

    #[test]
    fn model_rules_quirks_and_errors() {
        let c = Config::from_json_str(
            r#"{"backends": [
                {"name": "glm", "url": "http://h/v4", "match_rules": {"default": true}},
                {"name": "kimi", "url": "http://h/v1", "match_rules": {"model": ["kimi-*", "moonshot-v1"]},
                 "quirks": {"flatten_content": true, "developer_role": "user", "reasoning_passback": "none",
                            "tool_choice_required_to_auto": false, "require_reasoning_content": false,
                            "sampling": "keep"}},
                {"name": "ds", "url": "http://h/v1", "match_rules": {"model": "deepseek-chat"}}
            ]}"#,
            &|_| None,
        )
        .unwrap();
        assert!(c.has_model_rules());
        assert_eq!(c.route_model("kimi-k2.6"), Some(1));
        assert_eq!(c.route_model("moonshot-v1"), Some(1));
        assert_eq!(c.route_model("deepseek-chat"), Some(2));
        assert_eq!(c.route_model("glm-5"), None);
        let k = &c.backends[1].quirks;
        assert_eq!(k.profile, Profile::Kimi);
        assert!(k.flatten_content);
        assert_eq!(k.developer_role, "user");
        assert_eq!(k.passback, crate::providers::Passback::None);
        assert!(!k.tool_choice_required_to_auto && !k.require_reasoning_content);
        assert_eq!(k.sampling, crate::providers::Sampling::Keep);
        // The kimi profile's own defaults, before the overrides above.
        let d = crate::providers::quirks_for("kimi").unwrap();
        assert!(d.tool_choice_required_to_auto && d.require_reasoning_content);
        assert_eq!(d.sampling, crate::providers::Sampling::Drop);
        assert_eq!(c.backends[2].quirks.profile, Profile::OpenAi);
        for (json, path) in [
            (
                r#"{"backends": [{"name": "a", "url": "http://h", "quirks": {"bogus": 1}}]}"#,
                "backends[0].quirks",
            ),
            (
                r#"{"backends": [{"name": "a", "url": "http://h", "quirks": {"developer_role": "boss"}}]}"#,
                "backends[0].quirks.developer_role",
            ),
            (
                r#"{"backends": [{"name": "a", "url": "http://h", "quirks": {"sampling": "clamp"}}]}"#,
                "backends[0].quirks.sampling",
            ),
            (
                r#"{"backends": [{"name": "a", "url": "http://h", "quirks": {"tool_choice_required_to_auto": "yes"}}]}"#,
                "backends[0].quirks",
            ),
            (
                r#"{"backends": [{"name": "a", "url": "http://h", "match_rules": {"model": 5}}]}"#,
                "backends[0].match_rules.model",
            ),
            (
                r#"{"backends": [{"name": "a", "url": "http://h", "match_rules": {"model": [""]}}]}"#,
                "backends[0].match_rules.model[0]",
            ),
        ] {
            let e = Config::from_json_str(json, &|_| None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(path), "{e}");
        }
    }

    #[test]
    fn fallback_and_tokens() {
        let c = Config::from_json_str(
            r#"{"auth_tokens": ["t1", ""], "backends": [
                {"name": "a", "url": "http://127.0.0.1:1/v1", "fallback": ["b"], "retries": 2, "match_rules": {"default": true}},
                {"name": "b", "url": "http://127.0.0.1:2/v1"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].fallback, vec![1]);
        assert_eq!(c.backends[0].retries, 2);
        assert_eq!(c.backends[1].retries, 1);
        assert_eq!(c.auth_tokens, vec!["t1", "t2", "t3"]);
        let e = Config::from_json_str(
            r#"{"backends": [{"name": "a", "url": "http://h", "fallback": ["zz"]}]}"#,
            &|_| None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("backends[0].fallback[0]"), "{e}");
    }

    #[test]
    fn load_reads_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(ONE.as_bytes()).unwrap();
        let c = Config::load(f.path()).unwrap();
        assert_eq!(c.backends[0].name, "glm");
    }

    #[test]
    fn load_missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.json");
        let e = Config::load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Io { .. }));
        assert!(e.to_string().contains("missing.json"), "{e}");
    }

    #[test]
    fn errors_never_panic_on_odd_input() {
        for input in [
            "null",
            "true",
            "\"${X}\"",
            "{\"backends\":[null]}",
            "{\"backends\":[[]]}",
            "{\"backends\":[{\"name\":null,\"url\":null}]}",
            "{\"backends\":[{\"name\":1}]}",
            "{\"telemetry\":[]}",
            "{\"max_body_bytes\":1e100}",
            "{\"grace_period_seconds\":18446744073709551616}",
        ] {
            let e = parse(input).unwrap_err();
            assert!(!e.to_string().is_empty());
        }
        let e = parse("\"${X}\"").unwrap_err();
        assert_eq!(e.to_string(), "<root>: environment variable X is not set");
    }

    fn routing_config(with_default: bool) -> Config {
        let default = if with_default { "true" } else { "false" };
        ok(&with_backends(&format!(
            r#"{{"name":"glm","url":"http://g","match_rules":{{"path_prefix":"/glm","default":{default}}}}},
               {{"name":"kimi","url":"http://k","match_rules":{{"path_prefix":"/kimi"}}}},
               {{"name":"kimi2","url":"http://k2","match_rules":{{"path_prefix":"/kimi/v2"}}}}"#
        )))
    }

    #[test]
    fn route_by_prefix_on_segment_boundary() {
        let c = routing_config(false);
        assert_eq!(c.route("/kimi"), Some((1, "")));
        assert_eq!(c.route("/kimi/"), Some((1, "/")));
        assert_eq!(c.route("/kimi/v1/responses"), Some((1, "/v1/responses")));
        assert_eq!(c.route("/glm/v1/responses"), Some((0, "/v1/responses")));
        assert_eq!(c.route("/kimix/v1/responses"), None);
        assert_eq!(c.route("/kim"), None);
    }

    #[test]
    fn route_longest_prefix_wins() {
        let c = routing_config(false);
        assert_eq!(c.route("/kimi/v2"), Some((2, "")));
        assert_eq!(c.route("/kimi/v2/responses"), Some((2, "/responses")));
        assert_eq!(c.route("/kimi/v2x/responses"), Some((1, "/v2x/responses")));
    }

    #[test]
    fn route_default_fallback_and_none() {
        let c = routing_config(true);
        assert_eq!(c.route("/v1/responses"), Some((0, "/v1/responses")));
        assert_eq!(c.route("/kimix"), Some((0, "/kimix")));
        assert_eq!(c.route(""), Some((0, "")));
        assert_eq!(c.route("/kimi/x"), Some((1, "/x")));

        let c = routing_config(false);
        assert_eq!(c.route("/v1/responses"), None);
        assert_eq!(c.route("/"), None);
        assert_eq!(c.route(""), None);

        let c = ok(ONE);
        assert_eq!(c.route("/v1/responses"), Some((0, "/v1/responses")));
    }

    #[test]
    fn debug_redacts_api_key() {
        let env = env_of(&[("KEY", "sk-very-secret-value")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"${KEY}"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "sk-very-secret-value");
        let backend_dbg = format!("{:?}", c.backends[0]);
        let config_dbg = format!("{c:?}");
        let pretty = format!("{c:#?}");
        for s in [&backend_dbg, &config_dbg, &pretty] {
            assert!(!s.contains("sk-very-secret-value"), "{s}");
            assert!(s.contains("<redacted>"), "{s}");
        }
        assert!(backend_dbg.contains("name: \"a\""), "{backend_dbg}");
        assert!(
            backend_dbg.contains("base_url: \"http://h\""),
            "{backend_dbg}"
        );
    }

    #[test]
    fn debug_shows_empty_api_key_as_empty() {
        let c = ok(ONE);
        let dbg = format!("{:?}", c.backends[0]);
        assert!(dbg.contains("api_key: \"\""), "{dbg}");
    }

    #[test]
    fn debug_shows_models_not_secrets() {
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"sk-secret","model":"m"}]}"#,
            &|_| None,
        )
        .unwrap();
        let dbg = format!("{:?}", c.backends[0]);
        assert!(dbg.contains("models: [ModelMetadata"), "{dbg}");
        assert!(!dbg.contains("sk-secret"), "{dbg}");
    }
}
