//! Validation: the raw form ([`super::raw`]) checked and normalized into [`Config`] — listen
//! address, backends (names, URLs, path prefixes, defaults, fallbacks, quirks overrides),
//! store, WebSocket and telemetry settings. A backend's model metadata is validated by
//! [`super::models`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::error::ConfigError;
use super::models::validate_models;
use super::raw::{
    OneOrMany, RawBackend, RawCircuit, RawConfig, RawDashboard, RawModel, RawPrice, RawQuirks,
    RawStore, RawTelemetry, RawTimeouts, RawToken, RawWebSocket, StoreType, WebSearchSwitch,
};
use super::*;
use crate::providers::{NativeSearch, Profile};

pub(super) fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
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

    let threads = positive(raw.threads, "threads")?.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });

    let max_body_bytes =
        positive(raw.max_body_bytes, "max_body_bytes")?.unwrap_or(DEFAULT_MAX_BODY_BYTES);

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

    let (auth_tokens, clients) = validate_tokens(raw.auth_tokens)?;
    let telemetry = validate_telemetry(raw.telemetry.unwrap_or_default().0)?;
    let websocket = validate_websocket(raw.websocket.unwrap_or_default().0)?;
    let store = validate_store(raw.store.map(|s| s.0), Path::new(&log_dir))?;
    let dashboard = validate_dashboard(raw.dashboard.unwrap_or_default().0)?;
    let log_body_max_bytes = positive(raw.log_body_max_bytes, "log_body_max_bytes")?
        .unwrap_or(DEFAULT_LOG_BODY_MAX_BYTES);

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
        auth_tokens,
        clients,
        prices: validate_prices(raw.prices, "prices")?,
        dashboard,
    })
}

fn validate_dashboard(raw: RawDashboard) -> Result<Dashboard, ConfigError> {
    let admin_token = match raw.admin_token {
        Some(t) if t.trim().is_empty() => {
            return Err(ConfigError::invalid(
                "dashboard.admin_token",
                "is empty (a `${VAR}` that is not set?): leave it out, or give a token",
            ))
        }
        t => t,
    };
    Ok(Dashboard {
        enabled: raw.enabled.unwrap_or(false),
        admin_token,
    })
}

/// `auth_tokens`: the tokens, and the named client keys among them.
fn validate_tokens(
    raw: Option<Vec<RawToken>>,
) -> Result<(Vec<String>, Vec<ClientKey>), ConfigError> {
    let mut tokens = Vec::new();
    let mut clients: Vec<ClientKey> = Vec::new();
    for (i, t) in raw.unwrap_or_default().into_iter().enumerate() {
        let path = format!("auth_tokens[{i}]");
        match t {
            RawToken::Plain(t) => {
                if !t.is_empty() {
                    tokens.push(t);
                }
            }
            RawToken::Named(k) => {
                let name = k.name.unwrap_or_default();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c))
                {
                    return Err(ConfigError::invalid(
                        format!("{path}.name"),
                        format!("invalid client name {name:?}: must be non-empty and contain only [a-zA-Z0-9_.@-]"),
                    ));
                }
                if clients.iter().any(|c| c.name == name) {
                    return Err(ConfigError::invalid(
                        format!("{path}.name"),
                        format!("duplicate client name {name:?}"),
                    ));
                }
                let token = k.token.unwrap_or_default();
                if token.is_empty() {
                    return Err(ConfigError::invalid(
                        format!("{path}.token"),
                        "missing or empty token",
                    ));
                }
                let budget = match k.budget {
                    None => None,
                    Some(b) => {
                        let usd = b.usd.filter(|u| u.is_finite() && *u > 0.0).ok_or_else(|| {
                            ConfigError::invalid(
                                format!("{path}.budget.usd"),
                                "must be a number of dollars above 0",
                            )
                        })?;
                        let per = b.per.ok_or_else(|| {
                            ConfigError::invalid(
                                format!("{path}.budget.per"),
                                "missing: \"day\" or \"month\"",
                            )
                        })?;
                        Some(crate::spend::Budget { usd, per })
                    }
                };
                tokens.push(token.clone());
                clients.push(ClientKey {
                    name,
                    token,
                    budget,
                });
            }
        }
    }
    Ok((tokens, clients))
}

/// A `prices` object: model name (any case) → USD per million tokens.
fn validate_prices(
    raw: Option<std::collections::BTreeMap<String, super::raw::Object<RawPrice>>>,
    base: &str,
) -> Result<std::collections::BTreeMap<String, crate::spend::Price>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for (model, p) in raw.unwrap_or_default() {
        let p = p.0;
        let path = format!("{base}.{model}");
        let amount =
            |v: Option<f64>, key: &str, required: bool| -> Result<Option<u64>, ConfigError> {
                match v {
                    None if required => Err(ConfigError::invalid(
                        format!("{path}.{key}"),
                        "missing: USD per million tokens",
                    )),
                    None => Ok(None),
                    Some(x) if (0.0..1e6).contains(&x) => Ok(Some(crate::spend::micro(x))),
                    Some(_) => Err(ConfigError::invalid(
                        format!("{path}.{key}"),
                        "must be USD per million tokens, 0 or more",
                    )),
                }
            };
        let input = amount(p.input, "input", true)?.unwrap_or(0);
        let output = amount(p.output, "output", true)?.unwrap_or(0);
        // Without a cached price, cached input costs the input price.
        let cached_input = amount(p.cached_input, "cached_input", false)?.unwrap_or(input);
        let cache_write = amount(p.cache_write, "cache_write", false)?;
        out.insert(
            model.to_ascii_lowercase(),
            crate::spend::Price {
                input,
                cached_input,
                output,
                cache_write,
            },
        );
    }
    Ok(out)
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
        if Profile::parse(p).is_none() {
            return Err(ConfigError::invalid(
                format!("{base}.provider"),
                format!(
                    "unknown provider {p:?} (expected one of {})",
                    Profile::ALL.map(Profile::as_str).join(", ")
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

    let profile = Profile::resolve(provider.as_deref(), &name);
    let mut resolved = profile.quirks();
    let model = non_empty(raw.model);
    // The backend's `model` replaces the client's, so its family's switches apply; the
    // config's `quirks` still win.
    if let Some(f) = model.as_deref().and_then(|m| profile.family(m)) {
        f.apply(&mut resolved);
    }
    let mut quirks = apply_quirks(resolved, raw.quirks.unwrap_or_default().0);
    match raw.web_search {
        None => {}
        Some(WebSearchSwitch::Off) => quirks.web_search = NativeSearch::None,
        Some(WebSearchSwitch::Native) => match profile.spec().web_search.0 {
            NativeSearch::None => {
                return Err(ConfigError::invalid(
                    format!("{base}.web_search"),
                    format!("the {profile} profile has no web search of its own in its Chat API (use \"off\")"),
                ))
            }
            native => quirks.web_search = native,
        },
    }
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
        circuit: validate_circuit(raw.circuit.map(|c| c.0), base)?,
        models,
        match_models,
        quirks,
        prices: validate_prices(raw.prices, &format!("{base}.prices"))?,
    })
}

fn validate_circuit(
    raw: Option<RawCircuit>,
    base: &str,
) -> Result<crate::turn::breaker::Circuit, ConfigError> {
    let d = crate::turn::breaker::Circuit::default();
    let Some(raw) = raw else { return Ok(d) };
    let failures = match raw.failures {
        Some(0) => {
            return Err(ConfigError::invalid(
                format!("{base}.circuit.failures"),
                "must be at least 1 (failures in a row that open the circuit)",
            ))
        }
        Some(n) => n,
        None => d.trip_after,
    };
    let cool_down = match raw.cool_down_seconds {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            return Err(ConfigError::invalid(
                format!("{base}.circuit.cool_down_seconds"),
                "must be a number of seconds above 0 (fractions allowed)",
            ))
        }
        Some(s) => Duration::from_secs_f64(s.min(24.0 * 3600.0)),
        None => d.cool_down,
    };
    Ok(crate::turn::breaker::Circuit {
        trip_after: failures,
        cool_down,
    })
}

/// Treats an empty string as absent (useful with `${VAR:-}`).
pub(super) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
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

/// A count that must be at least 1 (`threads`, byte limits, timeouts in ms); `None` when
/// the config leaves it out.
fn positive<T: Copy + PartialEq + From<u8>>(
    value: Option<T>,
    path: impl Into<String>,
) -> Result<Option<T>, ConfigError> {
    match value {
        Some(v) if v == T::from(0) => Err(ConfigError::invalid(path, "must be at least 1")),
        v => Ok(v),
    }
}

fn validate_timeouts(raw: RawTimeouts, base: &str) -> Result<Timeouts, ConfigError> {
    let field = |value: Option<u64>, key: &str, default: u64| -> Result<Duration, ConfigError> {
        let ms = positive(value, format!("{base}.{key}"))?.unwrap_or(default);
        Ok(Duration::from_millis(ms))
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

/// The backend's `quirks` over the profile's switches `q`.
fn apply_quirks(mut q: crate::providers::Quirks, raw: RawQuirks) -> crate::providers::Quirks {
    if let Some(v) = raw.developer_role {
        q.developer_role = v.as_str();
    }
    if let Some(v) = raw.max_tokens_field {
        q.max_tokens_field = v.as_str();
    }
    if let Some(v) = raw.reasoning_passback {
        q.passback = v;
    }
    if let Some(v) = raw.sampling {
        q.sampling = v;
    }
    if let Some(v) = raw.reasoning_effort {
        q.effort = v;
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
    q
}

/// Retention defaults: 30 days (as OpenAI's API), 1 GiB for the embedded store, 256 MiB in
/// memory.
const DEFAULT_STORE_TTL_DAYS: f64 = 30.0;

const DEFAULT_EMBEDDED_MAX_BYTES: u64 = 1 << 30;

const DEFAULT_MEMORY_MAX_BYTES: u64 = 256 << 20;

/// The embedded store's default directory: `data/responses` beside the log directory.
fn default_store_path(log_dir: &Path) -> PathBuf {
    log_dir
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join("data")
        .join("responses")
}

fn validate_store(raw: Option<RawStore>, log_dir: &Path) -> Result<StoreConfig, ConfigError> {
    let raw = raw.unwrap_or_default();
    let kind = raw.kind.unwrap_or_default();
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
    let max_bytes = positive(raw.max_bytes, "store.max_bytes")?;
    let retention = |default: u64| crate::store::Retention {
        ttl,
        max_bytes: max_bytes.unwrap_or(default),
    };
    let only_embedded = |key: &str, present: bool| {
        if present {
            Err(ConfigError::invalid(
                format!("store.{key}"),
                format!(
                    "is a key of the embedded store, not of type {:?}",
                    kind.as_str()
                ),
            ))
        } else {
            Ok(())
        }
    };
    if kind != StoreType::Redis && raw.url.is_some() {
        return Err(ConfigError::invalid(
            "store.url",
            format!(
                "is a key of the redis store, not of type {:?}",
                kind.as_str()
            ),
        ));
    }
    match kind {
        StoreType::Embedded => Ok(StoreConfig::Embedded {
            path: raw
                .path
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| default_store_path(log_dir)),
            retention: retention(DEFAULT_EMBEDDED_MAX_BYTES),
        }),
        StoreType::Redis => {
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
        StoreType::Memory => {
            only_embedded("path", raw.path.is_some())?;
            Ok(StoreConfig::Memory {
                retention: retention(DEFAULT_MEMORY_MAX_BYTES),
            })
        }
        StoreType::None => {
            only_embedded("path", raw.path.is_some())?;
            Ok(StoreConfig::None)
        }
    }
}

fn validate_websocket(raw: RawWebSocket) -> Result<WebSocketConfig, ConfigError> {
    let d = WebSocketConfig::default();
    let count = |v: Option<usize>, key: &str, default: usize| {
        positive(v, format!("websocket.{key}")).map(|v| v.unwrap_or(default))
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
        max_connection_bytes: count(
            raw.max_connection_bytes,
            "max_connection_bytes",
            d.max_connection_bytes,
        )?,
        max_message_bytes: count(
            raw.max_message_bytes,
            "max_message_bytes",
            d.max_message_bytes,
        )?,
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::testing::*;
    use super::super::*;
    use crate::providers::Profile;
    use std::net::SocketAddr;

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
        for p in Profile::ALL.map(Profile::as_str) {
            let c = ok(&with_backends(&format!(
                r#"{{"name":"a","url":"http://h","provider":"{p}"}}"#
            )));
            assert_eq!(c.backends[0].provider.as_deref(), Some(p));
        }
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
            &["max_body_bytes: must be at least 1"],
        );
        for key in ["connect_ms", "first_byte_ms", "idle_ms", "total_ms"] {
            err(
                &with_backends(&format!(
                    r#"{{"name":"a","url":"http://h","timeouts":{{"{key}":0}}}}"#
                )),
                &[&format!("backends[0].timeouts.{key}: must be at least 1")],
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
                assert_eq!(path, Path::new("/var/log/data/responses"));
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
            ok(r#"{"backends":[{"name":"a","url":"http://h"}],"store":{"path":"/srv/responses"}}"#);
        assert!(
            matches!(&c.store, StoreConfig::Embedded { path, .. } if path == Path::new("/srv/responses"))
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
            &["store.type: unknown variant \"mongo\", expected one of \"embedded\", \"redis\", \"memory\", \"none\""],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h","quirks":{"developer_role":"admin"}}]}"#,
            &["backends[0].quirks.developer_role: unknown variant \"admin\", expected one of \"system\", \"user\", \"developer\""],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h","quirks":{"max_tokens_field":"n"}}]}"#,
            &["backends[0].quirks.max_tokens_field: unknown variant \"n\", expected \"max_tokens\" or \"max_completion_tokens\""],
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
    fn circuit_settings() {
        let c = ok(ONE);
        assert_eq!(
            c.backends[0].circuit,
            crate::turn::breaker::Circuit::default()
        );
        let c = ok(
            r#"{"backends":[{"name":"a","url":"http://h","circuit":{"failures":2,"cool_down_seconds":0.5}}]}"#,
        );
        assert_eq!(c.backends[0].circuit.trip_after, 2);
        assert_eq!(c.backends[0].circuit.cool_down.as_millis(), 500);
        err(
            r#"{"backends":[{"name":"a","url":"http://h","circuit":{"failures":0}}]}"#,
            &["backends[0].circuit.failures", "at least 1"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h","circuit":{"cool_down_seconds":-1}}]}"#,
            &["backends[0].circuit.cool_down_seconds"],
        );
        err(
            r#"{"backends":[{"name":"a","url":"http://h","circuit":{"open":true}}]}"#,
            &["backends[0].circuit", "open"],
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
}
