//! Proxy configuration.
//!
//! Configuration is loaded in two stages:
//!
//! 1. The JSON text is parsed into a [`serde_json::Value`], every string value
//!    has its `${VAR}` / `${VAR:-default}` references substituted, and the
//!    result is deserialized into private "raw" structs (all of them
//!    `deny_unknown_fields`, every field optional).
//! 2. The raw form is validated and normalized into [`Config`].
//!
//! Every [`ConfigError`] names the JSON path of the offending value, e.g.
//! `backends[1].api_key: environment variable KIMI_API_KEY is not set`.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

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
/// Known provider profile names.
pub const KNOWN_PROVIDERS: &[&str] = &["glm", "kimi", "deepseek", "minimax", "openai"];
/// Paths served locally by the proxy; a `path_prefix` may not equal one of
/// these nor lie beneath one of them.
pub const RESERVED_PATHS: &[&str] = &[
    "/health",
    "/v1",
    "/responses",
    "/metrics",
    "/stats",
    "/models",
];

/// Display name used for the document root in error paths.
const ROOT_PATH: &str = "<root>";

/// A configuration error. The `Display` form always starts with the JSON path
/// of the offending value (or, for I/O and syntax errors, the file / the
/// line and column).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("{}: cannot read config file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A `${VAR}` reference names an unset environment variable.
    #[error("{path}: environment variable {var} is not set")]
    EnvVarNotSet { path: String, var: String },
    /// The JSON does not match the schema (unknown key, wrong type, ...).
    #[error("{path}: {message}")]
    Schema { path: String, message: String },
    /// A value is well-typed but invalid (bad URL, duplicate name, ...).
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl ConfigError {
    /// The JSON path the error refers to, if any (`None` for I/O and syntax
    /// errors).
    pub fn json_path(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::EnvVarNotSet { path, .. }
            | ConfigError::Schema { path, .. }
            | ConfigError::Invalid { path, .. } => Some(path),
        }
    }

    fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: display_path(path.into()),
            message: message.into(),
        }
    }
}

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
    /// The WebSocket transport (`GET …/responses` with `Upgrade: websocket`).
    pub websocket: WebSocketConfig,
    /// Where stored responses are kept (`previous_response_id`, retrieve, delete).
    pub store: StoreConfig,
}

/// `store`: the response store's kind and retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// Stateless: `previous_response_id` over HTTP gets a 400; nothing is kept.
    None,
    /// In this process's memory, bounded, lost on restart.
    Memory { retention: crate::store::Retention },
    /// A redb file on local disk (the default).
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

/// Retention defaults: 30 days (as OpenAI's API), 1 GiB for the embedded store, 256 MiB in
/// memory.
const DEFAULT_STORE_TTL_DAYS: f64 = 30.0;
const DEFAULT_EMBEDDED_MAX_BYTES: u64 = 1 << 30;
const DEFAULT_MEMORY_MAX_BYTES: u64 = 256 << 20;

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
    /// Provider profile name, one of [`KNOWN_PROVIDERS`].
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
    /// The models this backend serves, with their metadata for Codex (defaults of the
    /// provider profile filled in): first `model` (if set), then the `models` entries.
    pub models: Vec<ModelMetadata>,
    /// `match_rules.model`: model names or globs (`*`, `?`) routed to this backend.
    pub match_models: Vec<String>,
    /// The provider profile's switches with this backend's `quirks` overrides applied.
    pub quirks: crate::providers::Quirks,
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
        let mut value: Value = serde_json::from_str(s).map_err(syntax_error)?;
        substitute_env(&mut value, "", env)?;
        let raw = deserialize_raw(&value)?;
        let mut config = validate(raw)?;
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
                let Some(r) = crate::providers::retirement(profile, &m.name) else {
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

// ---------------------------------------------------------------------------
// Raw (serde) form
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a configuration object")]
struct RawConfig {
    listen: Option<String>,
    log_dir: Option<String>,
    log_body: Option<bool>,
    log_body_max_bytes: Option<usize>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    threads: Option<usize>,
    grace_period_seconds: Option<u64>,
    max_body_bytes: Option<usize>,
    backends: Option<Vec<Object<RawBackend>>>,
    telemetry: Option<Object<RawTelemetry>>,
    auth_tokens: Option<Vec<String>>,
    websocket: Option<Object<RawWebSocket>>,
    store: Option<Object<RawStore>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a backend object")]
struct RawBackend {
    // `name` and `url` are required but optional here so that a missing one
    // is reported by validation with the backend's path.
    name: Option<String>,
    url: Option<String>,
    api_key: Option<String>,
    model: Option<String>,
    protocol: Option<String>,
    provider: Option<String>,
    timeouts: Option<Object<RawTimeouts>>,
    match_rules: Option<Object<RawMatchRules>>,
    fallback: Option<Vec<String>>,
    retries: Option<u32>,
    quirks: Option<Object<RawQuirks>>,
    // Model metadata for Codex: `models`, or the keys below for the single `model`.
    models: Option<Vec<Object<RawModel>>>,
    context_window: Option<i64>,
    max_output_tokens: Option<i64>,
    reasoning: Option<Object<RawReasoning>>,
    input_modalities: Option<Vec<String>>,
    parallel_tool_calls: Option<bool>,
    apply_patch: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a timeouts object")]
struct RawTimeouts {
    connect_ms: Option<u64>,
    first_byte_ms: Option<u64>,
    idle_ms: Option<u64>,
    total_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a match_rules object")]
struct RawMatchRules {
    path_prefix: Option<String>,
    default: Option<bool>,
    model: Option<OneOrMany>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Per-backend overrides of the provider profile's switches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a quirks object")]
struct RawQuirks {
    developer_role: Option<String>,
    flatten_content: Option<bool>,
    drop_tools: Option<bool>,
    tool_choice_auto_only: Option<bool>,
    tool_choice_required_to_auto: Option<bool>,
    strip_strict: Option<bool>,
    think_tags: Option<bool>,
    max_tokens_field: Option<String>,
    reasoning_passback: Option<String>,
    require_reasoning_content: Option<bool>,
    sampling: Option<String>,
    images: Option<bool>,
    tool_stream: Option<bool>,
    reasoning_effort: Option<String>,
    json_schema: Option<bool>,
    empty_content_with_tool_calls: Option<bool>,
}

fn apply_quirks(
    mut q: crate::providers::Quirks,
    raw: RawQuirks,
    base: &str,
) -> Result<crate::providers::Quirks, ConfigError> {
    use crate::providers::{EffortStyle, Passback, Sampling};
    let path = |k: &str| format!("{base}.quirks.{k}");
    if let Some(v) = raw.developer_role {
        q.developer_role = match v.as_str() {
            "system" => "system",
            "user" => "user",
            "developer" => "developer",
            _ => {
                return Err(ConfigError::invalid(
                    path("developer_role"),
                    format!("unknown role {v:?} (expected system, user or developer)"),
                ))
            }
        };
    }
    if let Some(v) = raw.max_tokens_field {
        q.max_tokens_field = match v.as_str() {
            "max_tokens" => "max_tokens",
            "max_completion_tokens" => "max_completion_tokens",
            _ => {
                return Err(ConfigError::invalid(
                    path("max_tokens_field"),
                    format!("unknown field {v:?} (expected max_tokens or max_completion_tokens)"),
                ))
            }
        };
    }
    if let Some(v) = raw.reasoning_passback {
        q.passback = match v.as_str() {
            "none" => Passback::None,
            "reasoning_content" => Passback::ReasoningContent,
            "think_tags" => Passback::ThinkTags,
            _ => {
                return Err(ConfigError::invalid(
                    path("reasoning_passback"),
                    format!("unknown value {v:?} (expected none, reasoning_content or think_tags)"),
                ))
            }
        };
    }
    if let Some(v) = raw.sampling {
        q.sampling = match v.as_str() {
            "keep" => Sampling::Keep,
            "drop" => Sampling::Drop,
            "unit_interval" => Sampling::UnitInterval,
            _ => {
                return Err(ConfigError::invalid(
                    path("sampling"),
                    format!("unknown value {v:?} (expected keep, drop or unit_interval)"),
                ))
            }
        };
    }
    if let Some(v) = raw.reasoning_effort {
        q.effort = match v.as_str() {
            "drop" => EffortStyle::Drop,
            "reasoning_effort" => EffortStyle::ReasoningEffort,
            "deepseek" => EffortStyle::DeepSeek,
            "glm_thinking" => EffortStyle::GlmThinking,
            _ => {
                return Err(ConfigError::invalid(
                    path("reasoning_effort"),
                    format!("unknown value {v:?} (expected drop, reasoning_effort, deepseek or glm_thinking)"),
                ))
            }
        };
    }
    let flags = [
        (raw.flatten_content, &mut q.flatten_content),
        (raw.drop_tools, &mut q.drop_tools),
        (raw.tool_choice_auto_only, &mut q.tool_choice_auto_only),
        (
            raw.tool_choice_required_to_auto,
            &mut q.tool_choice_required_to_auto,
        ),
        (
            raw.require_reasoning_content,
            &mut q.require_reasoning_content,
        ),
        (raw.strip_strict, &mut q.strip_strict),
        (raw.think_tags, &mut q.think_tags),
        (raw.images, &mut q.images),
        (raw.tool_stream, &mut q.tool_stream),
        (raw.json_schema, &mut q.json_schema),
        (
            raw.empty_content_with_tool_calls,
            &mut q.empty_content_with_tool_calls,
        ),
    ];
    for (value, slot) in flags {
        if let Some(v) = value {
            *slot = v;
        }
    }
    Ok(q)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a store object")]
struct RawStore {
    #[serde(rename = "type")]
    kind: Option<String>,
    path: Option<String>,
    ttl_days: Option<f64>,
    max_bytes: Option<u64>,
    url: Option<String>,
}

/// The embedded store's default file: `data/responses.redb` beside the log directory.
fn default_store_path(log_dir: &Path) -> PathBuf {
    log_dir
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join("data")
        .join("responses.redb")
}

fn validate_store(raw: Option<RawStore>, log_dir: &Path) -> Result<StoreConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let kind = raw.kind.as_deref().unwrap_or("embedded");
    let ttl_days = match raw.ttl_days {
        Some(d) if !(d > 0.0 && d.is_finite()) => {
            return Err(ConfigError::invalid(
                "store.ttl_days",
                "must be a number of days above 0 (fractions allowed)",
            ))
        }
        Some(d) => d.min(3650.0),
        None => DEFAULT_STORE_TTL_DAYS,
    };
    let ttl = std::time::Duration::from_secs_f64(ttl_days * 86_400.0);
    if raw.max_bytes == Some(0) {
        return Err(ConfigError::invalid(
            "store.max_bytes",
            "must be at least 1",
        ));
    }
    let retention = |default: u64| crate::store::Retention {
        ttl,
        max_bytes: raw.max_bytes.unwrap_or(default),
    };
    let only_embedded = |key: &str, present: bool| {
        if present {
            Err(ConfigError::invalid(
                format!("store.{key}"),
                format!("is a key of the embedded store, not of type {kind:?}"),
            ))
        } else {
            Ok(())
        }
    };
    if kind != "redis" && raw.url.is_some() {
        return Err(ConfigError::invalid(
            "store.url",
            format!("is a key of the redis store, not of type {kind:?}"),
        ));
    }
    match kind {
        "embedded" => Ok(StoreConfig::Embedded {
            path: raw
                .path
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| default_store_path(log_dir)),
            retention: retention(DEFAULT_EMBEDDED_MAX_BYTES),
        }),
        "redis" => {
            only_embedded("path", raw.path.is_some())?;
            if raw.max_bytes.is_some() {
                return Err(ConfigError::invalid(
                    "store.max_bytes",
                    "does not apply to redis: bound it with Redis's own maxmemory",
                ));
            }
            let url = raw.url.clone().unwrap_or_default();
            match Url::parse(&url) {
                Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some() => {}
                _ => {
                    return Err(ConfigError::invalid(
                        "store.url",
                        format!("{url:?} must be a redis:// or rediss:// URL with a host, e.g. \"redis://127.0.0.1:6379/0\""),
                    ))
                }
            }
            Ok(StoreConfig::Redis {
                url,
                retention: retention(0),
            })
        }
        "memory" => {
            only_embedded("path", raw.path.is_some())?;
            Ok(StoreConfig::Memory {
                retention: retention(DEFAULT_MEMORY_MAX_BYTES),
            })
        }
        "none" => {
            only_embedded("path", raw.path.is_some())?;
            Ok(StoreConfig::None)
        }
        other => Err(ConfigError::invalid(
            "store.type",
            format!("unknown store type {other:?}: expected \"embedded\" (the default), \"redis\", \"memory\" or \"none\""),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a websocket object")]
struct RawWebSocket {
    enabled: Option<bool>,
    max_connection_minutes: Option<f64>,
    max_connection_bytes: Option<usize>,
    max_message_bytes: Option<usize>,
}

fn validate_websocket(raw: RawWebSocket) -> Result<WebSocketConfig, ConfigError> {
    let d = WebSocketConfig::default();
    let positive = |v: Option<usize>, key: &str, default: usize| match v {
        Some(0) => Err(ConfigError::invalid(
            format!("websocket.{key}"),
            "must be at least 1",
        )),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let age = match raw.max_connection_minutes {
        Some(m) if !(m > 0.0 && m.is_finite()) => {
            return Err(ConfigError::invalid(
                "websocket.max_connection_minutes",
                "must be a number of minutes above 0 (fractions allowed, e.g. 0.5)",
            ))
        }
        Some(m) => std::time::Duration::from_secs_f64(m.min(7.0 * 24.0 * 60.0) * 60.0),
        None => d.max_connection_age,
    };
    Ok(WebSocketConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        max_connection_age: age,
        max_connection_bytes: positive(
            raw.max_connection_bytes,
            "max_connection_bytes",
            d.max_connection_bytes,
        )?,
        max_message_bytes: positive(
            raw.max_message_bytes,
            "max_message_bytes",
            d.max_message_bytes,
        )?,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a telemetry object")]
struct RawTelemetry {
    enabled: Option<bool>,
    service_name: Option<String>,
    otlp_endpoint: Option<String>,
    protocol: Option<OtlpProtocol>,
}

// ---------------------------------------------------------------------------
// Paths and error helpers
// ---------------------------------------------------------------------------

fn display_path(path: String) -> String {
    if path.is_empty() {
        ROOT_PATH.to_string()
    } else {
        path
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn syntax_error(err: serde_json::Error) -> ConfigError {
    let (line, column) = (err.line(), err.column());
    let full = err.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    ConfigError::Syntax {
        line,
        column,
        message,
    }
}

/// serde quotes names with backticks; use double quotes in our messages.
fn tidy_serde_message(message: &str) -> String {
    message.replace('`', "\"")
}

// ---------------------------------------------------------------------------
// Environment substitution
// ---------------------------------------------------------------------------

/// Replaces `${VAR}` and `${VAR:-default}` in every string value (not in
/// object keys) of `value`, in place.
fn substitute_env(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) => {
            if s.contains("${") {
                *s = substitute_str(s, path, env)?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_env(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                substitute_env(item, &join_key(path, key), env)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

fn substitute_str(
    input: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError::invalid(
                path,
                format!("unterminated \"${{\" in {input:?}"),
            ));
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "invalid environment reference \"${{{inner}}}\" \
                     (expected ${{NAME}} or ${{NAME:-default}})"
                ),
            ));
        }
        let found = env(name);
        match default {
            None => match found {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(ConfigError::EnvVarNotSet {
                        path: display_path(path.to_string()),
                        var: name.to_string(),
                    })
                }
            },
            Some(default) => match found {
                Some(v) if !v.is_empty() => out.push_str(&v),
                _ => out.push_str(default),
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Deserialization with error location
// ---------------------------------------------------------------------------

/// Deserializes the (substituted) document into the raw form. `serde_path_to_error` tracks
/// the JSON path of a schema error while deserializing, in one pass.
fn deserialize_raw(value: &Value) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize::<_, Object<RawConfig>>(value)
        .map(|raw| raw.0)
        .map_err(schema_error)
}

/// A schema error at its path, e.g. `backends[0].timeouts.idle_ms: invalid type: …`.
fn schema_error(err: serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    use serde_path_to_error::Segment;
    let message = tidy_serde_message(&err.inner().to_string());
    let mut segments: Vec<&Segment> = err.path().iter().collect();
    // The path of an unknown key ends with the key; name the object that has it.
    if message.starts_with("unknown field") && matches!(segments.last(), Some(Segment::Map { .. }))
    {
        segments.pop();
    }
    let mut path = String::new();
    for segment in segments {
        path = match segment {
            Segment::Seq { index } => format!("{path}[{index}]"),
            Segment::Map { key } => join_key(&path, key),
            Segment::Enum { variant } => join_key(&path, variant),
            Segment::Unknown => join_key(&path, "?"),
        };
    }
    ConfigError::Schema {
        path: display_path(path),
        message,
    }
}

/// A raw struct that only a JSON object deserializes into: serde's derived structs also
/// accept an array (the fields by position), which the configuration format does not. Other
/// wrong types get the struct's own message (`invalid type: integer `5`, expected a
/// timeouts object`).
#[derive(Debug, Default)]
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(MapOnly(deserializer)).map(Object)
    }
}

/// A deserializer that hands a struct's visitor only maps (see [`Object`]).
struct MapOnly<D>(D);

impl<'de, D: serde::Deserializer<'de>> serde::Deserializer<'de> for MapOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, MapOnly(visitor))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The struct's visitor, for maps only: anything else is an invalid type, with the struct's
/// `expecting`.
impl<'de, V: Visitor<'de>> Visitor<'de> for MapOnly<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(map)
    }
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let listen_str = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_str.parse().map_err(|e| {
        ConfigError::invalid(
            "listen",
            format!("invalid socket address {listen_str:?}: {e}"),
        )
    })?;

    let log_dir = raw.log_dir.unwrap_or_else(|| DEFAULT_LOG_DIR.to_string());
    if log_dir.is_empty() {
        return Err(ConfigError::invalid("log_dir", "must not be empty"));
    }

    let log_level = raw
        .log_level
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_string());
    if log_level.trim().is_empty() {
        return Err(ConfigError::invalid("log_level", "must not be empty"));
    }

    let threads = match raw.threads {
        Some(0) => return Err(ConfigError::invalid("threads", "must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };

    let max_body_bytes = match raw.max_body_bytes {
        Some(0) => {
            return Err(ConfigError::invalid(
                "max_body_bytes",
                "must be greater than 0",
            ))
        }
        Some(n) => n,
        None => DEFAULT_MAX_BODY_BYTES,
    };

    let raw_backends: Vec<RawBackend> = raw
        .backends
        .unwrap_or_default()
        .into_iter()
        .map(|b| b.0)
        .collect();
    let fallback_names: Vec<Option<Vec<String>>> =
        raw_backends.iter().map(|b| b.fallback.clone()).collect();
    if raw_backends.is_empty() {
        return Err(ConfigError::invalid(
            "backends",
            "at least one backend is required",
        ));
    }

    let mut backends: Vec<Backend> = Vec::with_capacity(raw_backends.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut prefixes: HashMap<String, usize> = HashMap::new();
    let mut explicit_default: Option<usize> = None;
    for (i, raw_backend) in raw_backends.into_iter().enumerate() {
        let base = format!("backends[{i}]");
        let backend = validate_backend(raw_backend, &base)?;
        if let Some(&first) = names.get(&backend.name) {
            return Err(ConfigError::invalid(
                format!("{base}.name"),
                format!(
                    "duplicate backend name {:?} (already used by backends[{first}])",
                    backend.name
                ),
            ));
        }
        names.insert(backend.name.clone(), i);
        if let Some(prefix) = &backend.path_prefix {
            if let Some(&first) = prefixes.get(prefix) {
                return Err(ConfigError::invalid(
                    format!("{base}.match_rules.path_prefix"),
                    format!("duplicate path prefix {prefix:?} (already used by backends[{first}])"),
                ));
            }
            prefixes.insert(prefix.clone(), i);
        }
        if backend.is_default {
            if let Some(first) = explicit_default {
                let first_name = backends
                    .get(first)
                    .map(|b| b.name.as_str())
                    .unwrap_or_default();
                return Err(ConfigError::invalid(
                    format!("{base}.match_rules.default"),
                    format!(
                        "backend {:?} cannot be the default: backend {first_name:?} \
                         (backends[{first}]) is already the default",
                        backend.name
                    ),
                ));
            }
            explicit_default = Some(i);
        }
        backends.push(backend);
    }

    let default_backend = match explicit_default {
        Some(i) => Some(i),
        None if backends.len() == 1 => {
            if let Some(only) = backends.first_mut() {
                only.is_default = true;
            }
            Some(0)
        }
        None => None,
    };

    // Fallbacks name other backends.
    let mut is_fallback = vec![false; backends.len()];
    for (i, names_opt) in fallback_names.into_iter().enumerate() {
        for (j, fb) in names_opt.unwrap_or_default().into_iter().enumerate() {
            let path = format!("backends[{i}].fallback[{j}]");
            let Some(&idx) = names.get(&fb) else {
                return Err(ConfigError::invalid(
                    path,
                    format!("no backend is named {fb:?}"),
                ));
            };
            if idx == i {
                return Err(ConfigError::invalid(
                    path,
                    "a backend cannot be its own fallback",
                ));
            }
            if let Some(b) = backends.get_mut(i) {
                if !b.fallback.contains(&idx) {
                    b.fallback.push(idx);
                }
            }
            is_fallback[idx] = true;
        }
    }

    // Every non-default backend must be reachable through a path prefix (or as a fallback).
    for (i, backend) in backends.iter().enumerate() {
        if Some(i) != default_backend
            && backend.path_prefix.is_none()
            && !is_fallback[i]
            && backend.match_models.is_empty()
        {
            let hint = if default_backend.is_none() {
                "with several backends and none marked match_rules.default, \
                 every backend needs a match_rules.path_prefix"
            } else {
                "it has no match_rules.path_prefix and is not the default, so no \
                 request could reach it"
            };
            return Err(ConfigError::invalid(
                format!("backends[{i}]"),
                format!("backend {:?} is unreachable: {hint}", backend.name),
            ));
        }
    }

    let telemetry = validate_telemetry(raw.telemetry.unwrap_or_default().0)?;
    let websocket = validate_websocket(raw.websocket.unwrap_or_default().0)?;
    let store = validate_store(raw.store.map(|s| s.0), Path::new(&log_dir))?;
    let log_body_max_bytes = match raw.log_body_max_bytes {
        Some(0) => {
            return Err(ConfigError::invalid(
                "log_body_max_bytes",
                "must be at least 1",
            ))
        }
        Some(n) => n,
        None => DEFAULT_LOG_BODY_MAX_BYTES,
    };

    Ok(Config {
        listen,
        log_dir: PathBuf::from(log_dir),
        log_body: raw.log_body.unwrap_or(false),
        log_body_max_bytes,
        log_level,
        log_format: raw.log_format.unwrap_or_default(),
        threads,
        grace_period_seconds: raw
            .grace_period_seconds
            .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS),
        max_body_bytes,
        backends,
        default_backend,
        telemetry,
        websocket,
        store,
        auth_tokens: raw
            .auth_tokens
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect(),
    })
}

/// Treats an empty string as absent (useful with `${VAR:-}`).
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn validate_backend(raw: RawBackend, base: &str) -> Result<Backend, ConfigError> {
    let name = raw
        .name
        .ok_or_else(|| ConfigError::invalid(base, "missing required field \"name\""))?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::invalid(
            format!("{base}.name"),
            format!(
                "invalid backend name {name:?}: must be non-empty and contain only [a-zA-Z0-9_-]"
            ),
        ));
    }

    let raw_url = raw
        .url
        .ok_or_else(|| ConfigError::invalid(base, "missing required field \"url\""))?;
    let parsed = parse_backend_url(&raw_url, &format!("{base}.url"))?;

    let protocol = raw
        .protocol
        .unwrap_or_else(|| SUPPORTED_PROTOCOL.to_string());
    if protocol != SUPPORTED_PROTOCOL {
        return Err(ConfigError::invalid(
            format!("{base}.protocol"),
            format!(
                "unsupported protocol {protocol:?} (only \"{SUPPORTED_PROTOCOL}\" is supported)"
            ),
        ));
    }

    let provider = non_empty(raw.provider);
    if let Some(p) = &provider {
        if !KNOWN_PROVIDERS.contains(&p.as_str()) {
            return Err(ConfigError::invalid(
                format!("{base}.provider"),
                format!(
                    "unknown provider {p:?} (expected one of {})",
                    KNOWN_PROVIDERS.join(", ")
                ),
            ));
        }
    }

    let timeouts = validate_timeouts(
        raw.timeouts.unwrap_or_default().0,
        &format!("{base}.timeouts"),
    )?;

    let rules = raw.match_rules.unwrap_or_default().0;
    let path_prefix = match non_empty(rules.path_prefix) {
        Some(p) => Some(normalize_prefix(
            &p,
            &format!("{base}.match_rules.path_prefix"),
        )?),
        None => None,
    };

    let mut resolved = crate::providers::resolve(provider.as_deref(), &name);
    let profile = resolved.profile;
    let model = non_empty(raw.model);
    // The backend's `model` replaces the client's, so its family's switches apply; the
    // config's `quirks` still win.
    if let Some(f) = model
        .as_deref()
        .and_then(|m| crate::providers::family(profile, m))
    {
        f.apply(&mut resolved);
    }
    let quirks = apply_quirks(resolved, raw.quirks.unwrap_or_default().0, base)?;
    let match_models: Vec<String> = match rules.model {
        None => Vec::new(),
        Some(OneOrMany::One(m)) => vec![m],
        Some(OneOrMany::Many(ms)) => ms,
    };
    for (j, m) in match_models.iter().enumerate() {
        if m.trim().is_empty() {
            return Err(ConfigError::invalid(
                format!("{base}.match_rules.model[{j}]"),
                "must not be empty",
            ));
        }
    }
    let backend_meta = RawModel {
        name: model.clone(),
        context_window: raw.context_window,
        max_output_tokens: raw.max_output_tokens,
        reasoning: raw.reasoning,
        input_modalities: raw.input_modalities,
        parallel_tool_calls: raw.parallel_tool_calls,
        apply_patch: raw.apply_patch,
    };
    let models = validate_models(
        model.as_deref(),
        backend_meta,
        raw.models
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.0)
            .collect(),
        profile,
        base,
    )?;

    Ok(Backend {
        name,
        url: parsed.url,
        base_url: parsed.base_url,
        api_key: raw.api_key.unwrap_or_default(),
        model,
        provider,
        path_prefix,
        is_default: rules.default.unwrap_or(false),
        timeouts,
        tls: parsed.tls,
        host: parsed.host,
        port: parsed.port,
        fallback: Vec::new(),
        retries: raw.retries.unwrap_or(1),
        models,
        match_models,
        quirks,
    })
}

struct ParsedUrl {
    url: Url,
    base_url: String,
    tls: bool,
    host: String,
    port: u16,
}

fn parse_backend_url(raw: &str, path: &str) -> Result<ParsedUrl, ConfigError> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(ConfigError::invalid(path, "must not be empty"));
    }
    let url = Url::parse(trimmed)
        .map_err(|e| ConfigError::invalid(path, format!("invalid URL {raw:?}: {e}")))?;
    let tls = match url.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(ConfigError::invalid(
                path,
                format!("unsupported URL scheme {other:?} in {raw:?} (expected http or https)"),
            ))
        }
    };
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => {
            return Err(ConfigError::invalid(
                path,
                format!("URL {raw:?} has no host"),
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::invalid(
            path,
            "credentials in the URL are not supported (use api_key)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::invalid(
            path,
            format!("URL {raw:?} must not have a query or fragment"),
        ));
    }
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let base_url = url.as_str().trim_end_matches('/').to_string();
    Ok(ParsedUrl {
        url,
        base_url,
        tls,
        host,
        port,
    })
}

fn validate_timeouts(raw: RawTimeouts, base: &str) -> Result<Timeouts, ConfigError> {
    let field = |value: Option<u64>, key: &str, default: u64| -> Result<Duration, ConfigError> {
        match value {
            Some(0) => Err(ConfigError::invalid(
                format!("{base}.{key}"),
                "must be greater than 0",
            )),
            Some(ms) => Ok(Duration::from_millis(ms)),
            None => Ok(Duration::from_millis(default)),
        }
    };
    Ok(Timeouts {
        connect: field(raw.connect_ms, "connect_ms", DEFAULT_CONNECT_MS)?,
        first_byte: field(raw.first_byte_ms, "first_byte_ms", DEFAULT_FIRST_BYTE_MS)?,
        idle: field(raw.idle_ms, "idle_ms", DEFAULT_IDLE_MS)?,
        total: field(raw.total_ms, "total_ms", DEFAULT_TOTAL_MS)?,
    })
}

fn normalize_prefix(raw: &str, path: &str) -> Result<String, ConfigError> {
    if !raw.starts_with('/') {
        return Err(ConfigError::invalid(
            path,
            format!("path prefix {raw:?} must start with '/'"),
        ));
    }
    if raw.contains(['?', '#']) {
        return Err(ConfigError::invalid(
            path,
            format!("path prefix {raw:?} must not contain '?' or '#'"),
        ));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            path,
            format!("path prefix {raw:?} must not contain whitespace or control characters"),
        ));
    }
    let prefix = raw.trim_end_matches('/');
    if prefix.is_empty() {
        return Err(ConfigError::invalid(
            path,
            format!("path prefix {raw:?} must not be \"/\" (omit path_prefix instead)"),
        ));
    }
    if prefix.contains("//") {
        return Err(ConfigError::invalid(
            path,
            format!("path prefix {raw:?} must not contain empty segments"),
        ));
    }
    for reserved in RESERVED_PATHS {
        let collides = prefix == *reserved
            || prefix
                .strip_prefix(reserved)
                .is_some_and(|rest| rest.starts_with('/'));
        if collides {
            return Err(ConfigError::invalid(
                path,
                format!("path prefix {raw:?} collides with the reserved local path {reserved:?}"),
            ));
        }
    }
    Ok(prefix.to_string())
}

fn validate_telemetry(raw: RawTelemetry) -> Result<Telemetry, ConfigError> {
    let service_name = raw
        .service_name
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    if service_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            "telemetry.service_name",
            "must not be empty",
        ));
    }
    let protocol = raw.protocol.unwrap_or_default();
    let otlp_endpoint = raw.otlp_endpoint.unwrap_or_else(|| {
        match protocol {
            OtlpProtocol::Grpc => DEFAULT_OTLP_ENDPOINT,
            OtlpProtocol::Http => DEFAULT_OTLP_HTTP_ENDPOINT,
        }
        .to_string()
    });
    match Url::parse(&otlp_endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        Ok(_) => {
            return Err(ConfigError::invalid(
                "telemetry.otlp_endpoint",
                format!("{otlp_endpoint:?} must be an http or https URL with a host"),
            ))
        }
        Err(e) => {
            return Err(ConfigError::invalid(
                "telemetry.otlp_endpoint",
                format!("invalid URL {otlp_endpoint:?}: {e}"),
            ))
        }
    }
    Ok(Telemetry {
        enabled: raw.enabled.unwrap_or(false),
        service_name,
        otlp_endpoint,
        protocol,
    })
}

// ---------------------------------------------------------------------------
// Model metadata (for Codex's model catalog, see `codex_setup`)
// ---------------------------------------------------------------------------

/// A reasoning effort as Codex names it (`model_reasoning_effort`, catalog levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

impl ReasoningEffort {
    /// Every effort, from the lightest to the heaviest.
    pub const ALL: [ReasoningEffort; 6] = [
        ReasoningEffort::None,
        ReasoningEffort::Minimal,
        ReasoningEffort::Low,
        ReasoningEffort::Medium,
        ReasoningEffort::High,
        ReasoningEffort::XHigh,
    ];

    /// The wire name (`"none"`, …, `"xhigh"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::XHigh => "xhigh",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// An input modality Codex may send to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InputModality {
    Text,
    Image,
}

impl InputModality {
    pub fn as_str(self) -> &'static str {
        match self {
            InputModality::Text => "text",
            InputModality::Image => "image",
        }
    }
}

/// How Codex offers its `apply_patch` tool for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyPatch {
    /// A `custom` (freeform, lark grammar) tool; the proxy sends it upstream as a function
    /// with one string parameter `input`. The default.
    Freeform,
    /// A JSON `function` tool.
    Function,
    /// No `apply_patch` tool (edits go through the shell).
    None,
}

impl ApplyPatch {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyPatch::Freeform => "freeform",
            ApplyPatch::Function => "function",
            ApplyPatch::None => "none",
        }
    }
}

/// Reasoning metadata of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasoningMetadata {
    /// The model reasons (Codex shows reasoning summaries, offers effort levels).
    pub supported: bool,
    /// The effort Codex sends when the user picks none; `None`: Codex sends no effort.
    pub default_effort: Option<ReasoningEffort>,
    /// The efforts Codex offers (the profile's, plus `default_effort`), lightest first.
    pub efforts: Vec<ReasoningEffort>,
}

/// Validated metadata of one model, with the provider profile's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMetadata {
    /// The model name Codex uses (its catalog `slug`).
    pub name: String,
    /// Tokens the model accepts (input + output).
    pub context_window: u64,
    /// Tokens reserved for the answer: Codex compacts the history before its input
    /// reaches `context_window - max_output_tokens`.
    pub max_output_tokens: u64,
    pub reasoning: ReasoningMetadata,
    /// Always contains [`InputModality::Text`] first.
    pub input_modalities: Vec<InputModality>,
    pub parallel_tool_calls: bool,
    pub apply_patch: ApplyPatch,
    /// Where the metadata was written: `backends[0]` (keys on the backend, for its
    /// `model`) or `backends[0].models[1]`.
    pub json_path: String,
}

/// Default model metadata of a provider profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDefaults {
    pub context_window: u64,
    pub max_output_tokens: u64,
    pub reasoning: bool,
    pub default_effort: Option<ReasoningEffort>,
    /// Efforts offered when reasoning is supported (what the profile can forward).
    pub efforts: Vec<ReasoningEffort>,
    pub input_modalities: Vec<InputModality>,
    pub parallel_tool_calls: bool,
}

/// The default model metadata of `model` under a provider profile: the profile's, with the
/// values of the model's family (providers/<profile>.rs, longest prefix) in their place.
pub fn model_defaults_for(profile: &str, model: &str) -> ModelDefaults {
    let mut d = model_defaults(profile);
    if let Some(f) = crate::providers::family(profile, model) {
        if let Some(cw) = f.context_window {
            d.context_window = cw;
        }
        if let Some(out) = f.max_output_tokens {
            d.max_output_tokens = out;
        }
        match f.images {
            Some(true) if !d.input_modalities.contains(&InputModality::Image) => {
                d.input_modalities.push(InputModality::Image);
                d.input_modalities.sort();
            }
            Some(false) => d.input_modalities.retain(|m| *m != InputModality::Image),
            _ => {}
        }
    }
    d
}

/// The default model metadata of a provider profile (`glm`, `kimi`, `deepseek`, `minimax`,
/// anything else = the generic `openai` profile), for a model of no known family. An
/// explicit `context_window` in the config is always better.
pub fn model_defaults(profile: &str) -> ModelDefaults {
    use ReasoningEffort as E;
    let text = vec![InputModality::Text];
    match profile {
        // `reasoning.effort` becomes `thinking: {type: enabled | disabled}`.
        "glm" => ModelDefaults {
            context_window: 128_000,
            max_output_tokens: 16_384,
            reasoning: true,
            default_effort: Some(E::Medium),
            efforts: vec![E::None, E::Medium],
            input_modalities: text,
            parallel_tool_calls: true,
        },
        // Reasoning depends on the model; the effort is not forwarded.
        "kimi" => ModelDefaults {
            context_window: 262_144,
            max_output_tokens: 32_768,
            reasoning: true,
            default_effort: None,
            efforts: Vec::new(),
            input_modalities: text,
            parallel_tool_calls: true,
        },
        // V4: 1M window for every current model, thinking on by default (effort high);
        // `none` = `thinking: disabled`, `reasoning_effort: high | max`; no images (but
        // see the families in providers/deepseek.rs). 64K of the 384K output reserved.
        "deepseek" => ModelDefaults {
            context_window: 1_000_000,
            max_output_tokens: 65_536,
            reasoning: true,
            default_effort: None,
            efforts: vec![E::None, E::High, E::XHigh],
            input_modalities: text,
            parallel_tool_calls: true,
        },
        // `<think>` tags, always on; the effort is not forwarded.
        "minimax" => ModelDefaults {
            context_window: 204_800,
            max_output_tokens: 32_768,
            reasoning: true,
            default_effort: None,
            efforts: Vec::new(),
            input_modalities: text,
            parallel_tool_calls: true,
        },
        // Generic: `reasoning_effort` as given, images as parts.
        _ => ModelDefaults {
            context_window: 128_000,
            max_output_tokens: 16_384,
            reasoning: true,
            default_effort: None,
            efforts: vec![E::Low, E::Medium, E::High],
            input_modalities: vec![InputModality::Text, InputModality::Image],
            parallel_tool_calls: true,
        },
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a model object")]
struct RawModel {
    name: Option<String>,
    context_window: Option<i64>,
    max_output_tokens: Option<i64>,
    reasoning: Option<Object<RawReasoning>>,
    input_modalities: Option<Vec<String>>,
    parallel_tool_calls: Option<bool>,
    apply_patch: Option<String>,
}

impl RawModel {
    fn first_metadata_key(&self) -> Option<&'static str> {
        [
            ("context_window", self.context_window.is_some()),
            ("max_output_tokens", self.max_output_tokens.is_some()),
            ("reasoning", self.reasoning.is_some()),
            ("input_modalities", self.input_modalities.is_some()),
            ("parallel_tool_calls", self.parallel_tool_calls.is_some()),
            ("apply_patch", self.apply_patch.is_some()),
        ]
        .into_iter()
        .find(|(_, set)| *set)
        .map(|(key, _)| key)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a reasoning object")]
struct RawReasoning {
    supported: Option<bool>,
    default_effort: Option<String>,
}

/// Builds the model list of a backend: its `model` (with the metadata keys written on the
/// backend, or its `models` entry) first, then the other `models` entries.
fn validate_models(
    model: Option<&str>,
    backend_meta: RawModel,
    raw_models: Vec<RawModel>,
    profile: &str,
    base: &str,
) -> Result<Vec<ModelMetadata>, ConfigError> {
    let model_in_list =
        model.is_some_and(|m| raw_models.iter().any(|r| r.name.as_deref() == Some(m)));
    if let Some(key) = backend_meta.first_metadata_key() {
        match model {
            None => {
                return Err(ConfigError::invalid(
                    format!("{base}.{key}"),
                    "model metadata on a backend describes its \"model\", which is not set \
                     (set \"model\", or list the models in \"models\": [{\"name\": ...}])",
                ))
            }
            Some(name) if model_in_list => {
                return Err(ConfigError::invalid(
                    format!("{base}.{key}"),
                    format!(
                        "model {name:?} has metadata both on the backend and in \"models\"; \
                         keep one of them"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let mut out: Vec<ModelMetadata> = Vec::with_capacity(raw_models.len() + 1);
    if let Some(name) = model.filter(|_| !model_in_list) {
        out.push(validate_model(
            backend_meta,
            &model_defaults_for(profile, name),
            base,
        )?);
    }
    let listed_from = out.len();
    for (j, raw) in raw_models.into_iter().enumerate() {
        let path = format!("{base}.models[{j}]");
        let defaults = model_defaults_for(profile, raw.name.as_deref().unwrap_or_default());
        let meta = validate_model(raw, &defaults, &path)?;
        if let Some(other) = out
            .get(listed_from..)
            .and_then(|listed| listed.iter().find(|m| m.name == meta.name))
        {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                format!(
                    "duplicate model name {:?} (already in {})",
                    meta.name, other.json_path
                ),
            ));
        }
        out.push(meta);
    }
    // The backend's own model comes first (it is the one its Codex profile selects).
    if let Some(pos) = model.and_then(|m| out.iter().position(|x| x.name == m)) {
        let first = out.remove(pos);
        out.insert(0, first);
    }
    Ok(out)
}

/// Validates one model entry at `path`: `backends[i]` for the keys on a backend (the name
/// is its `model`, already validated) or `backends[i].models[j]`.
fn validate_model(
    raw: RawModel,
    defaults: &ModelDefaults,
    path: &str,
) -> Result<ModelMetadata, ConfigError> {
    let listed = path.contains(".models[");
    let name = match raw.name {
        Some(n) if !listed => n,
        Some(n) if n.trim().is_empty() => {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                "must not be empty",
            ))
        }
        Some(n) if n.trim() != n => {
            return Err(ConfigError::invalid(
                format!("{path}.name"),
                format!("model name {n:?} must not start or end with whitespace"),
            ))
        }
        Some(n) => n,
        None => {
            return Err(ConfigError::invalid(
                path,
                "missing required field \"name\"",
            ))
        }
    };

    let positive = |value: Option<i64>, key: &str, default: u64| -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(n) if n > 0 => Ok(n.unsigned_abs()),
            Some(n) => Err(ConfigError::invalid(
                format!("{path}.{key}"),
                format!("must be a positive number of tokens, got {n}"),
            )),
        }
    };
    let context_window = positive(
        raw.context_window,
        "context_window",
        defaults.context_window,
    )?;
    let max_output_tokens = match raw.max_output_tokens {
        // The profile default never takes more than a quarter of a smaller window.
        None => defaults.max_output_tokens.min(context_window / 4).max(1),
        some => positive(some, "max_output_tokens", defaults.max_output_tokens)?,
    };
    if max_output_tokens >= context_window {
        return Err(ConfigError::invalid(
            format!("{path}.max_output_tokens"),
            format!("{max_output_tokens} must be less than the context window ({context_window})"),
        ));
    }

    let raw_reasoning = raw.reasoning.unwrap_or_default().0;
    let supported = raw_reasoning.supported.unwrap_or(defaults.reasoning);
    let explicit_effort = match non_empty(raw_reasoning.default_effort) {
        None => None,
        Some(e) => Some(ReasoningEffort::parse(&e).ok_or_else(|| {
            ConfigError::invalid(
                format!("{path}.reasoning.default_effort"),
                format!(
                    "unknown reasoning effort {e:?} (expected one of {})",
                    ReasoningEffort::ALL.map(ReasoningEffort::as_str).join(", ")
                ),
            )
        })?),
    };
    let reasoning = if supported {
        let default_effort = explicit_effort.or(defaults.default_effort);
        let mut efforts = defaults.efforts.clone();
        if let Some(e) = default_effort {
            if !efforts.contains(&e) {
                efforts.push(e);
                efforts.sort();
            }
        }
        ReasoningMetadata {
            supported,
            default_effort,
            efforts,
        }
    } else {
        if explicit_effort.is_some() {
            return Err(ConfigError::invalid(
                format!("{path}.reasoning.default_effort"),
                "a default effort needs reasoning.supported = true",
            ));
        }
        ReasoningMetadata {
            supported,
            default_effort: None,
            efforts: Vec::new(),
        }
    };

    let input_modalities = match raw.input_modalities {
        None => defaults.input_modalities.clone(),
        Some(list) => {
            let key = format!("{path}.input_modalities");
            let mut out = Vec::new();
            for (k, m) in list.iter().enumerate() {
                let modality = match m.as_str() {
                    "text" => InputModality::Text,
                    "image" => InputModality::Image,
                    other => {
                        return Err(ConfigError::invalid(
                            format!("{key}[{k}]"),
                            format!(
                                "unknown input modality {other:?} (expected \"text\" or \"image\")"
                            ),
                        ))
                    }
                };
                if out.contains(&modality) {
                    return Err(ConfigError::invalid(
                        format!("{key}[{k}]"),
                        format!("duplicate input modality {m:?}"),
                    ));
                }
                out.push(modality);
            }
            if !out.contains(&InputModality::Text) {
                return Err(ConfigError::invalid(
                    key,
                    "must contain \"text\" (Codex always sends text)",
                ));
            }
            out.sort();
            out
        }
    };

    let apply_patch = match non_empty(raw.apply_patch).as_deref() {
        None | Some("freeform") => ApplyPatch::Freeform,
        Some("function") => ApplyPatch::Function,
        Some("none") => ApplyPatch::None,
        Some(other) => {
            return Err(ConfigError::invalid(
                format!("{path}.apply_patch"),
                format!(
                    "unknown apply_patch kind {other:?} (expected \"freeform\", \"function\" or \"none\")"
                ),
            ))
        }
    };

    Ok(ModelMetadata {
        name,
        context_window,
        max_output_tokens,
        reasoning,
        input_modalities,
        parallel_tool_calls: raw
            .parallel_tool_calls
            .unwrap_or(defaults.parallel_tool_calls),
        apply_patch,
        json_path: path.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod routing_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
        assert_eq!(k.profile, "kimi");
        assert!(k.flatten_content);
        assert_eq!(k.developer_role, "user");
        assert_eq!(k.passback, crate::providers::Passback::None);
        assert!(!k.tool_choice_required_to_auto && !k.require_reasoning_content);
        assert_eq!(k.sampling, crate::providers::Sampling::Keep);
        // The kimi profile's own defaults, before the overrides above.
        let d = crate::providers::quirks_for("kimi").unwrap();
        assert!(d.tool_choice_required_to_auto && d.require_reasoning_content);
        assert_eq!(d.sampling, crate::providers::Sampling::Drop);
        assert_eq!(c.backends[2].quirks.profile, "openai");
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
}

#[cfg(test)]
mod fallback_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "CODEX_PROXY_AUTH_TOKENS").then(|| " t2 , ,t3".to_owned())
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::io::Write;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json_str(json, &no_env)
    }

    fn ok(json: &str) -> Config {
        match parse(json) {
            Ok(c) => c,
            Err(e) => panic!("expected valid config, got error: {e}"),
        }
    }

    /// Asserts the config is rejected and the message contains every needle.
    fn err(json: &str, needles: &[&str]) -> ConfigError {
        match parse(json) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => {
                let msg = e.to_string();
                for needle in needles {
                    assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
                }
                e
            }
        }
    }

    const ONE: &str =
        r#"{"backends":[{"name":"glm","url":"https://open.bigmodel.cn/api/paas/v4/"}]}"#;

    fn with_backends(backends: &str) -> String {
        format!(r#"{{"backends":[{backends}]}}"#)
    }

    // ---- defaults ----------------------------------------------------------

    #[test]
    fn defaults_are_applied() {
        let c = ok(ONE);
        assert_eq!(c.listen, "127.0.0.1:8280".parse::<SocketAddr>().unwrap());
        assert_eq!(c.log_dir, PathBuf::from("logs"));
        assert!(!c.log_body);
        assert_eq!(c.log_level, "info");
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        assert_eq!(c.threads, cores);
        assert_eq!(c.grace_period_seconds, 5);
        assert_eq!(c.max_body_bytes, 33_554_432);
        assert_eq!(c.telemetry, Telemetry::default());
        assert!(!c.telemetry.enabled);
        assert_eq!(c.telemetry.service_name, "codex-convert-proxy");
        assert_eq!(c.telemetry.otlp_endpoint, "http://127.0.0.1:4317");

        let b = &c.backends[0];
        assert_eq!(b.name, "glm");
        assert_eq!(b.base_url, "https://open.bigmodel.cn/api/paas/v4");
        assert_eq!(b.url.as_str(), "https://open.bigmodel.cn/api/paas/v4");
        assert_eq!(b.api_key, "");
        assert_eq!(b.model, None);
        assert_eq!(b.provider, None);
        assert_eq!(b.path_prefix, None);
        assert!(b.tls);
        assert_eq!(b.host, "open.bigmodel.cn");
        assert_eq!(b.port, 443);
        assert_eq!(b.timeouts.connect, Duration::from_millis(10_000));
        assert_eq!(b.timeouts.first_byte, Duration::from_millis(300_000));
        assert_eq!(b.timeouts.idle, Duration::from_millis(300_000));
        assert_eq!(b.timeouts.total, Duration::from_millis(1_800_000));
        assert_eq!(b.timeouts, Timeouts::default());
        // A single backend is the default even if not marked.
        assert!(b.is_default);
        assert_eq!(c.default_backend, Some(0));
        assert_eq!(c.default_backend().map(|b| b.name.as_str()), Some("glm"));
    }

    #[test]
    fn full_config_is_parsed() {
        let c = ok(r#"{
            "listen": "0.0.0.0:9000",
            "log_dir": "/var/log/proxy",
            "log_body": true,
            "log_level": "debug,pingora=warn",
            "threads": 3,
            "grace_period_seconds": 0,
            "max_body_bytes": 1024,
            "backends": [
                {
                    "name": "glm",
                    "url": "https://open.bigmodel.cn/api/paas/v4",
                    "api_key": "k1",
                    "model": "glm-4.6",
                    "protocol": "openai",
                    "provider": "glm",
                    "timeouts": {"connect_ms": 1, "first_byte_ms": 2, "idle_ms": 3, "total_ms": 4},
                    "match_rules": {"path_prefix": "/glm/", "default": true}
                },
                {
                    "name": "local_llm-2",
                    "url": "http://[::1]:8081/",
                    "provider": "deepseek",
                    "timeouts": {"idle_ms": 7},
                    "match_rules": {"path_prefix": "/local"}
                }
            ],
            "telemetry": {"enabled": true, "service_name": "svc", "otlp_endpoint": "https://otel:4318"}
        }"#);
        assert_eq!(c.listen, "0.0.0.0:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(c.log_dir, PathBuf::from("/var/log/proxy"));
        assert!(c.log_body);
        assert_eq!(c.log_level, "debug,pingora=warn");
        assert_eq!(c.threads, 3);
        assert_eq!(c.grace_period_seconds, 0);
        assert_eq!(c.max_body_bytes, 1024);
        assert_eq!(c.default_backend, Some(0));
        assert_eq!(
            c.telemetry,
            Telemetry {
                enabled: true,
                service_name: "svc".into(),
                otlp_endpoint: "https://otel:4318".into(),
                protocol: OtlpProtocol::Grpc,
            }
        );

        let glm = &c.backends[0];
        assert_eq!(glm.api_key, "k1");
        assert_eq!(glm.model.as_deref(), Some("glm-4.6"));
        assert_eq!(glm.provider.as_deref(), Some("glm"));
        assert_eq!(glm.path_prefix.as_deref(), Some("/glm"));
        assert!(glm.is_default);
        assert_eq!(
            glm.timeouts,
            Timeouts {
                connect: Duration::from_millis(1),
                first_byte: Duration::from_millis(2),
                idle: Duration::from_millis(3),
                total: Duration::from_millis(4),
            }
        );

        let local = &c.backends[1];
        assert!(!local.is_default);
        assert!(!local.tls);
        assert_eq!(local.host, "[::1]");
        assert_eq!(local.port, 8081);
        assert_eq!(local.base_url, "http://[::1]:8081");
        assert_eq!(local.timeouts.idle, Duration::from_millis(7));
        assert_eq!(local.timeouts.connect, Duration::from_millis(10_000));
    }

    #[test]
    fn http_default_port_and_explicit_port() {
        let c = ok(&with_backends(r#"{"name":"a","url":"http://example.com"}"#));
        assert_eq!(c.backends[0].port, 80);
        assert!(!c.backends[0].tls);
        assert_eq!(c.backends[0].base_url, "http://example.com");
        let c = ok(&with_backends(
            r#"{"name":"a","url":"https://example.com:8443/v1///"}"#,
        ));
        assert_eq!(c.backends[0].port, 8443);
        assert_eq!(c.backends[0].base_url, "https://example.com:8443/v1");
    }

    #[test]
    fn empty_optional_strings_are_absent() {
        let c = ok(&with_backends(
            r#"{"name":"a","url":"http://h","model":"","provider":"","match_rules":{"path_prefix":""}}"#,
        ));
        assert_eq!(c.backends[0].model, None);
        assert_eq!(c.backends[0].provider, None);
        assert_eq!(c.backends[0].path_prefix, None);
    }

    #[test]
    fn all_known_providers_accepted() {
        for p in KNOWN_PROVIDERS {
            let c = ok(&with_backends(&format!(
                r#"{{"name":"a","url":"http://h","provider":"{p}"}}"#
            )));
            assert_eq!(c.backends[0].provider.as_deref(), Some(*p));
        }
    }

    // ---- env substitution --------------------------------------------------

    #[test]
    fn env_var_is_substituted() {
        let env = env_of(&[("GLM_API_KEY", "secret-1"), ("HOST", "example.org")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"glm","url":"https://${HOST}/v4","api_key":"Bearer-${GLM_API_KEY}-x"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "Bearer-secret-1-x");
        assert_eq!(c.backends[0].base_url, "https://example.org/v4");
    }

    #[test]
    fn unset_env_var_is_an_error_naming_the_path() {
        let env = env_of(&[("GLM_API_KEY", "k")]);
        let e = Config::from_json_str(
            r#"{"backends":[
                {"name":"glm","url":"http://a","api_key":"${GLM_API_KEY}","match_rules":{"default":true}},
                {"name":"kimi","url":"http://b","api_key":"${KIMI_API_KEY}","match_rules":{"path_prefix":"/kimi"}}
            ]}"#,
            &env,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "backends[1].api_key: environment variable KIMI_API_KEY is not set"
        );
        assert!(matches!(e, ConfigError::EnvVarNotSet { ref var, .. } if var == "KIMI_API_KEY"));
        assert_eq!(e.json_path(), Some("backends[1].api_key"));
    }

    #[test]
    fn set_but_empty_env_var_is_used_as_is() {
        let env = env_of(&[("EMPTY", "")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"${EMPTY}"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "");
    }

    #[test]
    fn default_syntax() {
        let env = env_of(&[("SET", "value"), ("EMPTY", "")]);
        let c = Config::from_json_str(
            r#"{"log_dir":"${UNSET:-/tmp/logs}","log_level":"${SET:-warn}",
                "backends":[{"name":"a","url":"http://h","api_key":"${EMPTY:-fallback}","model":"${UNSET:-}"}],
                "telemetry":{"service_name":"${UNSET:-a:-b}"}}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.log_dir, PathBuf::from("/tmp/logs"));
        assert_eq!(c.log_level, "value");
        assert_eq!(c.backends[0].api_key, "fallback");
        assert_eq!(c.backends[0].model, None);
        assert_eq!(c.telemetry.service_name, "a:-b");
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"a$$b$c$"}]}"#,
            &no_env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "a$$b$c$");
    }

    #[test]
    fn substituted_values_are_not_rescanned() {
        let env = env_of(&[("A", "${B}")]);
        let c = Config::from_json_str(
            r#"{"backends":[{"name":"a","url":"http://h","api_key":"${A}"}]}"#,
            &env,
        )
        .unwrap();
        assert_eq!(c.backends[0].api_key, "${B}");
    }

    #[test]
    fn bad_env_reference_syntax() {
        err(
            r#"{"log_dir":"${UNTERMINATED","backends":[]}"#,
            &["log_dir:", "unterminated"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","api_key":"${}"}"#),
            &["backends[0].api_key:", "invalid environment reference"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","api_key":"${A-b}"}"#),
            &["backends[0].api_key:", "${A-b}"],
        );
    }

    #[test]
    fn env_in_arrays_and_keys() {
        // Keys are never substituted (an unknown key stays unknown).
        err(
            r#"{"${X}":1,"backends":[]}"#,
            &["<root>", "unknown field \"${X}\""],
        );
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

    // ---- schema errors -----------------------------------------------------

    #[test]
    fn invalid_json_reports_line_and_column() {
        let e = err("{\n  \"listen\": ,\n}", &["invalid JSON at line 2, column"]);
        match e {
            ConfigError::Syntax { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        err("", &["invalid JSON", "EOF"]);
    }

    #[test]
    fn unknown_top_level_key() {
        err(
            r#"{"listen":"127.0.0.1:1","lisen":"x","backends":[]}"#,
            &["<root>: unknown field \"lisen\""],
        );
    }

    #[test]
    fn unknown_backend_key() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"default":true}},{"name":"b","url":"http://h","apikey":"x"}"#,
            ),
            &["backends[1]: unknown field \"apikey\""],
        );
    }

    #[test]
    fn unknown_nested_keys() {
        err(
            &with_backends(r#"{"name":"a","url":"http://h","match_rules":{"prefix":"/a"}}"#),
            &[
                "backends[0].match_rules: unknown field \"prefix\"",
                "path_prefix",
            ],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","timeouts":{"connect":1}}"#),
            &["backends[0].timeouts: unknown field \"connect\""],
        );
        err(
            r#"{"backends":[],"telemetry":{"endpoint":"x"}}"#,
            &["telemetry: unknown field \"endpoint\""],
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        err(r#"{"threads":"two"}"#, &["threads: invalid type"]);
        err(r#"{"threads":-1}"#, &["threads: invalid value"]);
        err(r#"{"log_body":"yes"}"#, &["log_body: invalid type"]);
        err(r#"{"listen":{"a":1}}"#, &["listen: invalid type: map"]);
        err(r#"{"backends":{}}"#, &["backends: invalid type: map"]);
        err(
            r#"{"backends":[1]}"#,
            &["backends[0]: invalid type: integer"],
        );
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h"},{"name":"b","url":"http://h","timeouts":{"idle_ms":"x"}}"#,
            ),
            &["backends[1].timeouts.idle_ms: invalid type: string \"x\""],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","timeouts":5}"#),
            &["backends[0].timeouts: invalid type: integer"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","match_rules":{"default":"yes"}}"#),
            &["backends[0].match_rules.default: invalid type"],
        );
        err("[]", &["<root>: invalid type: sequence"]);
        err(
            r#"{"backends":[["a","http://h"]]}"#,
            &["backends[0]: invalid type: sequence"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","timeouts":[1,2,3,4]}"#),
            &["backends[0].timeouts: invalid type: sequence"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","match_rules":["/a",true]}"#),
            &["backends[0].match_rules: invalid type: sequence"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"telemetry":[true]}"#,
            &["telemetry: invalid type: sequence"],
        );
        err("42", &["<root>: invalid type"]);
    }

    #[test]
    fn missing_required_backend_fields() {
        err(
            &with_backends(r#"{"url":"http://h"}"#),
            &["backends[0]: missing required field \"name\""],
        );
        err(
            &with_backends(r#"{"name":"a"}"#),
            &["backends[0]: missing required field \"url\""],
        );
    }

    // ---- validation errors -------------------------------------------------

    #[test]
    fn bad_listen_address() {
        err(
            r#"{"listen":"localhost","backends":[{"name":"a","url":"http://h"}]}"#,
            &["listen: invalid socket address \"localhost\""],
        );
    }

    #[test]
    fn bad_numbers() {
        err(
            r#"{"threads":0,"backends":[{"name":"a","url":"http://h"}]}"#,
            &["threads: must be at least 1"],
        );
        err(
            r#"{"max_body_bytes":0,"backends":[{"name":"a","url":"http://h"}]}"#,
            &["max_body_bytes: must be greater than 0"],
        );
        for key in ["connect_ms", "first_byte_ms", "idle_ms", "total_ms"] {
            err(
                &with_backends(&format!(
                    r#"{{"name":"a","url":"http://h","timeouts":{{"{key}":0}}}}"#
                )),
                &[&format!(
                    "backends[0].timeouts.{key}: must be greater than 0"
                )],
            );
        }
    }

    #[test]
    fn empty_strings_rejected() {
        err(
            r#"{"log_dir":"","backends":[{"name":"a","url":"http://h"}]}"#,
            &["log_dir: must not be empty"],
        );
        err(
            r#"{"log_level":" ","backends":[{"name":"a","url":"http://h"}]}"#,
            &["log_level: must not be empty"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"telemetry":{"service_name":""}}"#,
            &["telemetry.service_name: must not be empty"],
        );
    }

    #[test]
    fn store_options() {
        let c = ok(r#"{"log_dir":"/var/log/ccp","backends":[{"name":"a","url":"http://h"}]}"#);
        match &c.store {
            StoreConfig::Embedded { path, retention } => {
                assert_eq!(path, Path::new("/var/log/data/responses.redb"));
                assert_eq!(retention.ttl.as_secs(), 30 * 86_400);
                assert_eq!(retention.max_bytes, 1 << 30);
            }
            other => panic!("{other:?}"),
        }
        let c = ok(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"memory","ttl_days":0.5,"max_bytes":1000}}"#,
        );
        assert!(matches!(c.store, StoreConfig::Memory { retention }
            if retention.ttl.as_secs() == 43_200 && retention.max_bytes == 1000));
        let c = ok(r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"none"}}"#);
        assert_eq!(c.store, StoreConfig::None);
        let c =
            ok(r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"path":"/srv/r.redb"}}"#);
        assert!(
            matches!(&c.store, StoreConfig::Embedded { path, .. } if path == Path::new("/srv/r.redb"))
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"redis"}}"#,
            &["store.url", "redis://"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"redis","url":"http://h"}}"#,
            &["store.url"],
        );
        let c = ok(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"redis","url":"rediss://r.example:6380/1","ttl_days":1}}"#,
        );
        assert!(matches!(&c.store, StoreConfig::Redis { url, retention }
            if url == "rediss://r.example:6380/1" && retention.ttl.as_secs() == 86_400));
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"mongo"}}"#,
            &["store.type", "mongo"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"ttl_days":0}}"#,
            &["store.ttl_days"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"type":"memory","path":"x"}}"#,
            &["store.path"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"kind":"x"}}"#,
            &["store", "kind"],
        );
    }

    #[test]
    fn websocket_options() {
        let c = ok(ONE);
        assert_eq!(c.websocket, WebSocketConfig::default());
        assert!(c.websocket.enabled);
        assert_eq!(c.websocket.max_connection_age.as_secs(), 3600);
        let c = ok(
            r#"{"backends":[{"name":"a","url":"http://h"}],"websocket":{"enabled":false,
            "max_connection_minutes":0.5,"max_connection_bytes":1000,"max_message_bytes":10}}"#,
        );
        assert!(!c.websocket.enabled);
        assert_eq!(c.websocket.max_connection_age.as_secs(), 30);
        assert_eq!(c.websocket.max_connection_bytes, 1000);
        assert_eq!(c.websocket.max_message_bytes, 10);
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"websocket":{"max_connection_minutes":0}}"#,
            &["websocket.max_connection_minutes", "above 0"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"websocket":{"max_message_bytes":0}}"#,
            &["websocket.max_message_bytes", "at least 1"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"websocket":{"enable":true}}"#,
            &["websocket", "enable"],
        );
    }

    #[test]
    fn bad_telemetry_endpoint() {
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"telemetry":{"otlp_endpoint":"nope"}}"#,
            &["telemetry.otlp_endpoint: invalid URL"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h"}],"telemetry":{"otlp_endpoint":"ftp://h"}}"#,
            &["telemetry.otlp_endpoint:", "http or https"],
        );
    }

    #[test]
    fn telemetry_protocol_and_log_options() {
        let base = r#""backends":[{"name":"a","url":"http://h"}]"#;
        let c = ok(&format!("{{{base}}}"));
        assert_eq!(c.telemetry.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log_body_max_bytes, DEFAULT_LOG_BODY_MAX_BYTES);
        // "http" defaults to the OTLP/HTTP port; an explicit endpoint is kept.
        let c = ok(&format!(
            r#"{{{base},"telemetry":{{"enabled":true,"protocol":"http"}}}}"#
        ));
        assert_eq!(c.telemetry.protocol, OtlpProtocol::Http);
        assert_eq!(c.telemetry.otlp_endpoint, "http://127.0.0.1:4318");
        let c = ok(&format!(
            r#"{{{base},"telemetry":{{"protocol":"grpc","otlp_endpoint":"http://c:1"}}}}"#
        ));
        assert_eq!(c.telemetry.otlp_endpoint, "http://c:1");
        let c = ok(&format!(
            r#"{{{base},"log_format":"json","log_body_max_bytes":100}}"#
        ));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.log_body_max_bytes, 100);
        err(
            &format!(r#"{{{base},"telemetry":{{"protocol":"udp"}}}}"#),
            &["telemetry.protocol: unknown variant \"udp\""],
        );
        err(
            &format!(r#"{{{base},"log_format":"xml"}}"#),
            &["log_format: unknown variant \"xml\""],
        );
        err(
            &format!(r#"{{{base},"log_body_max_bytes":0}}"#),
            &["log_body_max_bytes: must be at least 1"],
        );
    }

    #[test]
    fn no_backends() {
        err("{}", &["backends: at least one backend is required"]);
        err(
            r#"{"backends":[]}"#,
            &["backends: at least one backend is required"],
        );
        err(
            r#"{"backends":null}"#,
            &["backends: at least one backend is required"],
        );
    }

    #[test]
    fn bad_backend_names() {
        for name in ["", "has space", "dot.name", "slash/x", "ümlaut"] {
            err(
                &with_backends(&format!(r#"{{"name":"{name}","url":"http://h"}}"#)),
                &["backends[0].name: invalid backend name"],
            );
        }
    }

    #[test]
    fn duplicate_backend_names() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"path_prefix":"/a"}},
                   {"name":"b","url":"http://h","match_rules":{"path_prefix":"/b"}},
                   {"name":"a","url":"http://h","match_rules":{"path_prefix":"/c"}}"#,
            ),
            &[
                "backends[2].name: duplicate backend name \"a\"",
                "backends[0]",
            ],
        );
    }

    #[test]
    fn bad_urls() {
        let cases = [
            ("not a url", "invalid URL"),
            ("ftp://example.com", "unsupported URL scheme \"ftp\""),
            ("unix:/tmp/sock", "unsupported URL scheme"),
            ("http://", "invalid URL"),
            ("", "must not be empty"),
            ("/", "must not be empty"),
            ("https://user:pw@example.com", "credentials"),
            ("https://example.com/v1?x=1", "query or fragment"),
            ("https://example.com/v1#frag", "query or fragment"),
        ];
        for (url, needle) in cases {
            let e = err(
                &with_backends(&format!(
                    r#"{{"name":"ok","url":"http://h","match_rules":{{"default":true}}}},{{"name":"a","url":"{url}"}}"#
                )),
                &["backends[1].url:", needle],
            );
            // The password must never appear in error messages built by us
            // beyond the raw value the user wrote; for credentials we omit it.
            if needle == "credentials" {
                assert!(!e.to_string().contains("pw"), "{e}");
            }
        }
    }

    #[test]
    fn bad_protocol() {
        err(
            &with_backends(r#"{"name":"a","url":"http://h","protocol":"anthropic"}"#),
            &["backends[0].protocol: unsupported protocol \"anthropic\""],
        );
    }

    #[test]
    fn bad_provider() {
        err(
            &with_backends(r#"{"name":"a","url":"http://h","provider":"qwen"}"#),
            &["backends[0].provider: unknown provider \"qwen\"", "kimi"],
        );
        err(
            &with_backends(r#"{"name":"a","url":"http://h","provider":"GLM"}"#),
            &["backends[0].provider:"],
        );
    }

    fn prefix_err(prefix: &str, needle: &str) {
        err(
            &with_backends(&format!(
                r#"{{"name":"a","url":"http://h","match_rules":{{"path_prefix":"{prefix}"}}}}"#
            )),
            &["backends[0].match_rules.path_prefix:", needle],
        );
    }

    #[test]
    fn bad_path_prefixes() {
        prefix_err("glm", "must start with '/'");
        prefix_err("/", "must not be \"/\"");
        prefix_err("//", "must not be \"/\"");
        prefix_err("/a?b", "'?' or '#'");
        prefix_err("/a#b", "'?' or '#'");
        prefix_err("/a b", "whitespace");
        prefix_err("/a//b", "empty segments");
        for reserved in RESERVED_PATHS {
            prefix_err(reserved, "reserved");
            prefix_err(&format!("{reserved}/"), "reserved");
            prefix_err(&format!("{reserved}/x"), "reserved");
        }
    }

    #[test]
    fn prefixes_near_reserved_paths_are_fine() {
        for prefix in ["/v1x", "/v", "/healthy", "/x/v1", "/model"] {
            let c = ok(&with_backends(&format!(
                r#"{{"name":"a","url":"http://h","match_rules":{{"path_prefix":"{prefix}"}}}}"#
            )));
            assert_eq!(c.backends[0].path_prefix.as_deref(), Some(prefix));
        }
    }

    #[test]
    fn trailing_slash_is_trimmed_from_prefix() {
        let c = ok(&with_backends(
            r#"{"name":"a","url":"http://h","match_rules":{"path_prefix":"/kimi/v2//"}}"#,
        ));
        assert_eq!(c.backends[0].path_prefix.as_deref(), Some("/kimi/v2"));
    }

    #[test]
    fn duplicate_path_prefixes_after_normalization() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"path_prefix":"/k"}},
                   {"name":"b","url":"http://h","match_rules":{"path_prefix":"/k/"}}"#,
            ),
            &[
                "backends[1].match_rules.path_prefix: duplicate path prefix \"/k\"",
                "backends[0]",
            ],
        );
    }

    #[test]
    fn more_than_one_default() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"default":true}},
                   {"name":"b","url":"http://h","match_rules":{"path_prefix":"/b","default":false}},
                   {"name":"c","url":"http://h","match_rules":{"path_prefix":"/c","default":true}}"#,
            ),
            &[
                "backends[2].match_rules.default:",
                "already the default",
                "\"a\"",
            ],
        );
    }

    #[test]
    fn several_backends_without_default_need_prefixes() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"path_prefix":"/a"}},
                   {"name":"b","url":"http://h"}"#,
            ),
            &["backends[1]:", "\"b\"", "unreachable", "path_prefix"],
        );
        // All prefixed and no default: valid, no default backend.
        let c = ok(&with_backends(
            r#"{"name":"a","url":"http://h","match_rules":{"path_prefix":"/a"}},
               {"name":"b","url":"http://h","match_rules":{"path_prefix":"/b"}}"#,
        ));
        assert_eq!(c.default_backend, None);
        assert!(c.default_backend().is_none());
        assert!(c.backends.iter().all(|b| !b.is_default));
    }

    #[test]
    fn non_default_backend_without_prefix_is_unreachable() {
        err(
            &with_backends(
                r#"{"name":"a","url":"http://h","match_rules":{"default":true}},
                   {"name":"b","url":"http://h"}"#,
            ),
            &["backends[1]:", "unreachable"],
        );
    }

    #[test]
    fn single_backend_with_prefix_is_default() {
        let c = ok(&with_backends(
            r#"{"name":"a","url":"http://h","match_rules":{"path_prefix":"/a","default":false}}"#,
        ));
        assert_eq!(c.default_backend, Some(0));
        assert!(c.backends[0].is_default);
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

    // ---- routing -----------------------------------------------------------

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

    // ---- Debug redaction ---------------------------------------------------

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
}

#[cfg(test)]
mod model_metadata_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(backends: &str) -> Result<Config, ConfigError> {
        Config::from_json_str(&format!(r#"{{"backends":[{backends}]}}"#), &|_| None)
    }

    fn ok(backends: &str) -> Config {
        parse(backends).unwrap_or_else(|e| panic!("expected a valid config: {e}"))
    }

    fn err(backends: &str, needles: &[&str]) {
        let e = parse(backends).expect_err("expected an error").to_string();
        for n in needles {
            assert!(e.contains(n), "{e:?} does not contain {n:?}");
        }
    }

    #[test]
    fn no_model_no_metadata() {
        let c = ok(r#"{"name":"a","url":"http://h"}"#);
        assert!(c.backends[0].models.is_empty());
    }

    #[test]
    fn profile_defaults_by_name_and_provider() {
        let c = ok(r#"{"name":"my-kimi","url":"http://h","model":"k2"}"#);
        let m = &c.backends[0].models[0];
        assert_eq!(m.name, "k2");
        assert_eq!(m.json_path, "backends[0]");
        assert_eq!(m.context_window, 262_144);
        assert_eq!(m.max_output_tokens, 32_768);
        assert!(m.reasoning.supported);
        assert_eq!(m.reasoning.default_effort, None);
        assert_eq!(m.input_modalities, [InputModality::Text]);
        assert!(m.parallel_tool_calls);
        assert_eq!(m.apply_patch, ApplyPatch::Freeform);

        // `provider` wins over the name.
        let c = ok(r#"{"name":"kimi","provider":"glm","url":"http://h","model":"g"}"#);
        let m = &c.backends[0].models[0];
        assert_eq!(m.context_window, 128_000);
        assert_eq!(m.reasoning.default_effort, Some(ReasoningEffort::Medium));
        assert_eq!(
            m.reasoning.efforts,
            [ReasoningEffort::None, ReasoningEffort::Medium]
        );

        let c = ok(r#"{"name":"vllm","url":"http://h","model":"q"}"#);
        let m = &c.backends[0].models[0];
        assert_eq!(
            m.input_modalities,
            [InputModality::Text, InputModality::Image]
        );
        assert_eq!(m.reasoning.default_effort, None);
        assert_eq!(m.reasoning.efforts.len(), 3);

        for (profile, cw) in [
            ("glm", 128_000),
            ("kimi", 262_144),
            ("deepseek", 1_000_000),
            ("minimax", 204_800),
            ("openai", 128_000),
        ] {
            let d = model_defaults(profile);
            assert_eq!(d.context_window, cw, "{profile}");
            assert!(d.max_output_tokens < d.context_window);
            if let Some(e) = d.default_effort {
                assert!(d.efforts.contains(&e), "{profile}");
            }
        }
    }

    /// The model families of each profile reach the catalog and the backend's switches;
    /// the config's metadata and `quirks` still win.
    #[test]
    fn family_defaults_per_provider() {
        let c = ok(r#"{"name":"glm","url":"http://h","model":"glm-5",
            "models":[{"name":"glm-5.2"},{"name":"glm-4.5"},{"name":"glm-4.6v"}]}"#);
        let windows: Vec<(u64, u64)> = c.backends[0]
            .models
            .iter()
            .map(|m| (m.context_window, m.max_output_tokens))
            .collect();
        assert_eq!(
            windows,
            [
                (200_000, 32_768),
                (1_000_000, 65_536),
                (128_000, 16_384),
                (128_000, 16_384)
            ]
        );

        let c = ok(r#"{"name":"kimi","url":"http://h","model":"kimi-k2.6",
            "models":[{"name":"moonshot-v1-128k"}]}"#);
        let b = &c.backends[0];
        assert_eq!(b.models[0].context_window, 262_144);
        assert_eq!(
            b.models[0].input_modalities,
            [InputModality::Text, InputModality::Image]
        );
        assert_eq!(b.models[1].context_window, 131_072);
        assert_eq!(b.models[1].input_modalities, [InputModality::Text]);
        // The backend's model decides the switches: K2.6 fixes sampling.
        assert_eq!(b.quirks.sampling, crate::providers::Sampling::Drop);
        let c = ok(r#"{"name":"kimi","url":"http://h","model":"moonshot-v1-32k"}"#);
        assert_eq!(c.backends[0].models[0].context_window, 32_768);
        assert_eq!(c.backends[0].models[0].max_output_tokens, 8_192);
        assert_eq!(
            c.backends[0].quirks.sampling,
            crate::providers::Sampling::Keep
        );
        let c = ok(
            r#"{"name":"kimi","url":"http://h","model":"moonshot-v1-32k",
            "quirks":{"sampling":"drop"}}"#,
        );
        assert_eq!(
            c.backends[0].quirks.sampling,
            crate::providers::Sampling::Drop
        );

        let c = ok(
            r#"{"name":"deepseek","url":"http://h","model":"deepseek-flash",
            "models":[{"name":"deepseek-v4-pro"}]}"#,
        );
        let b = &c.backends[0];
        assert_eq!(
            (b.models[0].context_window, b.models[0].max_output_tokens),
            (1_000_000, 65_536)
        );
        assert_eq!(
            b.models[0].input_modalities,
            [InputModality::Text, InputModality::Image]
        );
        assert_eq!(b.models[1].context_window, 1_000_000);
        assert_eq!(b.models[1].input_modalities, [InputModality::Text]);
        assert!(b.quirks.images);
        let c = ok(r#"{"name":"deepseek","url":"http://h","model":"deepseek-v4-pro"}"#);
        assert!(!c.backends[0].quirks.images);
        assert_eq!(
            c.backends[0].models[0].reasoning.efforts,
            [
                ReasoningEffort::None,
                ReasoningEffort::High,
                ReasoningEffort::XHigh
            ]
        );

        let c = ok(r#"{"name":"minimax","url":"http://h","model":"MiniMax-M3",
            "models":[{"name":"MiniMax-M2.7"},{"name":"MiniMax-M3-custom","context_window":500000,
                       "input_modalities":["text"]}]}"#);
        let b = &c.backends[0];
        assert_eq!(
            (b.models[0].context_window, b.models[0].max_output_tokens),
            (1_000_000, 65_536)
        );
        assert_eq!(
            b.models[0].input_modalities,
            [InputModality::Text, InputModality::Image]
        );
        assert!(b.quirks.images && !b.quirks.flatten_content);
        assert_eq!(b.models[1].context_window, 204_800);
        assert_eq!(b.models[1].input_modalities, [InputModality::Text]);
        // Config metadata over the family's.
        assert_eq!(
            (b.models[2].context_window, b.models[2].max_output_tokens),
            (500_000, 65_536)
        );
        assert_eq!(b.models[2].input_modalities, [InputModality::Text]);
        let c = ok(r#"{"name":"minimax","url":"http://h","model":"MiniMax-M2.7"}"#);
        assert!(c.backends[0].quirks.flatten_content);
        let c = ok(r#"{"name":"minimax","url":"http://h","model":"MiniMax-M3",
            "quirks":{"flatten_content":true}}"#);
        assert!(c.backends[0].quirks.flatten_content);
    }

    /// A retired model is a warning, not an error.
    #[test]
    fn retired_models_are_warnings() {
        let c = ok(
            r#"{"name":"deepseek","url":"http://h","model":"deepseek-chat",
            "models":[{"name":"deepseek-flash"},{"name":"deepseek-v4-flash"}]}"#,
        );
        let w = c.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("backends[0].model: deepseek model \"deepseek-chat\" is retired (requests fail) since 2026-07-24; use deepseek-flash"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with(
                "backends[0].models[1].name: deepseek model \"deepseek-v4-flash\" is a legacy name"
            ),
            "{w:?}"
        );
        // Only where the profile knows of the retirement.
        assert!(
            ok(r#"{"name":"vllm","url":"http://h","model":"deepseek-chat"}"#)
                .warnings()
                .is_empty()
        );
        assert!(
            ok(r#"{"name":"deepseek","url":"http://h","model":"deepseek-v4-pro"}"#)
                .warnings()
                .is_empty()
        );
    }

    #[test]
    fn metadata_on_the_backend_and_in_models() {
        let c = ok(
            r#"{"name":"deepseek","url":"http://h","model":"deepseek-v4-pro",
            "context_window":64000,"max_output_tokens":4000,"input_modalities":["image","text"],
            "reasoning":{"default_effort":"low"},"parallel_tool_calls":false,"apply_patch":"function",
            "models":[{"name":"deepseek-flash","reasoning":{"supported":false},"apply_patch":"none"}]}"#,
        );
        let models = &c.backends[0].models;
        assert_eq!(models.len(), 2);
        let chat = &models[0];
        assert_eq!(chat.name, "deepseek-v4-pro");
        assert_eq!(chat.context_window, 64_000);
        assert_eq!(chat.max_output_tokens, 4_000);
        assert_eq!(
            chat.input_modalities,
            [InputModality::Text, InputModality::Image]
        );
        assert_eq!(chat.reasoning.default_effort, Some(ReasoningEffort::Low));
        // The profile's efforts plus the configured default, lightest first.
        assert_eq!(
            chat.reasoning.efforts,
            [
                ReasoningEffort::None,
                ReasoningEffort::Low,
                ReasoningEffort::High,
                ReasoningEffort::XHigh
            ]
        );
        assert!(!chat.parallel_tool_calls);
        assert_eq!(chat.apply_patch, ApplyPatch::Function);
        let reasoner = &models[1];
        assert_eq!(reasoner.json_path, "backends[0].models[0]");
        assert!(!reasoner.reasoning.supported);
        assert!(reasoner.reasoning.efforts.is_empty());
        assert_eq!(reasoner.apply_patch, ApplyPatch::None);
        assert_eq!(reasoner.context_window, 1_000_000);
        assert_eq!(reasoner.max_output_tokens, 65_536);
    }

    #[test]
    fn backend_model_listed_in_models_comes_first() {
        let c = ok(r#"{"name":"a","url":"http://h","model":"m2",
            "models":[{"name":"m1"},{"name":"m2","context_window":5000}]}"#);
        let names: Vec<&str> = c.backends[0]
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(names, ["m2", "m1"]);
        let m2 = &c.backends[0].models[0];
        assert_eq!(m2.context_window, 5_000);
        // The default answer reserve shrinks with a small window.
        assert_eq!(m2.max_output_tokens, 1_250);
        assert_eq!(m2.json_path, "backends[0].models[1]");
    }

    #[test]
    fn bad_numbers_name_the_path() {
        err(
            r#"{"name":"a","url":"http://h","model":"m","context_window":-5}"#,
            &["backends[0].context_window: must be a positive number of tokens, got -5"],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":"x"},{"name":"m","context_window":0}]}"#,
            &["backends[0].models[1].context_window: must be a positive number of tokens, got 0"],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","max_output_tokens":0}"#,
            &["backends[0].max_output_tokens: must be a positive"],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","context_window":1000,"max_output_tokens":1000}"#,
            &[
                "backends[0].max_output_tokens:",
                "less than the context window (1000)",
            ],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","context_window":"big"}"#,
            &["backends[0].context_window: invalid type: string"],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":"m","context_window":1.5e5}]}"#,
            &["backends[0].models[0].context_window: invalid type: floating point"],
        );
    }

    #[test]
    fn bad_modalities_efforts_and_apply_patch_name_the_path() {
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":"m","input_modalities":["text","audio"]}]}"#,
            &[
                "backends[0].models[0].input_modalities[1]: unknown input modality \"audio\"",
                "\"text\" or \"image\"",
            ],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","input_modalities":["image"]}"#,
            &["backends[0].input_modalities: must contain \"text\""],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","input_modalities":["text","text"]}"#,
            &["backends[0].input_modalities[1]: duplicate input modality"],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","reasoning":{"default_effort":"extreme"}}"#,
            &[
                "backends[0].reasoning.default_effort: unknown reasoning effort \"extreme\"",
                "none, minimal, low, medium, high, xhigh",
            ],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","reasoning":{"supported":false,"default_effort":"low"}}"#,
            &["backends[0].reasoning.default_effort: a default effort needs reasoning.supported"],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","apply_patch":"diff"}"#,
            &["backends[0].apply_patch: unknown apply_patch kind \"diff\""],
        );
    }

    #[test]
    fn bad_shapes_name_the_path() {
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":"m","ctx":1}]}"#,
            &["backends[0].models[0]: unknown field \"ctx\""],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":"m","reasoning":{"effort":"low"}}]}"#,
            &["backends[0].models[0].reasoning: unknown field \"effort\""],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[["m"]]}"#,
            &["backends[0].models[0]: invalid type: sequence"],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","reasoning":[true]}"#,
            &["backends[0].reasoning: invalid type: sequence"],
        );
        err(
            r#"{"name":"a","url":"http://h","models":{"name":"m"}}"#,
            &["backends[0].models: invalid type: map"],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[{"context_window":1000}]}"#,
            &["backends[0].models[0]: missing required field \"name\""],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":" m"}]}"#,
            &["backends[0].models[0].name:", "whitespace"],
        );
        err(
            r#"{"name":"a","url":"http://h","models":[{"name":"m"},{"name":"m"}]}"#,
            &[
                "backends[0].models[1].name: duplicate model name \"m\"",
                "backends[0].models[0]",
            ],
        );
    }

    #[test]
    fn metadata_must_belong_to_one_model() {
        err(
            r#"{"name":"a","url":"http://h","context_window":1000}"#,
            &["backends[0].context_window:", "\"model\", which is not set"],
        );
        err(
            r#"{"name":"a","url":"http://h","model":"m","apply_patch":"none","models":[{"name":"m"}]}"#,
            &[
                "backends[0].apply_patch:",
                "both on the backend and in \"models\"",
            ],
        );
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
