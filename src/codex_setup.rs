//! `codex-convert-proxy codex-setup`: Codex set-up generated from `config.json`.
//!
//! * A Codex model catalog (`codex-models.json`) with one entry per configured model, in the
//!   full schema Codex 0.169 requires (it refuses a file with a missing field). Without it,
//!   Codex warns "Model metadata for … not found", offers no `apply_patch` tool, sends no
//!   reasoning effort and compacts at a default context size. Every entry sets
//!   `use_responses_lite = false`: Codex's classic Responses dialect (top-level tools, no
//!   code mode), not the "responses lite" one of Codex's own models.
//! * One Codex model provider per reachable backend, `[model_providers.proxy-<backend>]` in
//!   `$CODEX_HOME/config.toml`, pointing at the proxy's listen address (`/<prefix>/v1`, or
//!   `/v1` for the default backend without a prefix), `wire_api = "responses"`, and
//!   `env_key = "CODEX_PROXY_TOKEN"` when the proxy checks client tokens.
//! * One Codex profile per backend, `$CODEX_HOME/<backend>.config.toml` (what
//!   `codex --profile <backend>` reads in Codex 0.169; legacy `[profiles.x]` tables in
//!   config.toml make Codex refuse `--profile x`): `model_provider`, `model`,
//!   `model_catalog_json`.
//!
//! Without `--write` the config is printed; with it, it is merged with `toml_edit`: only the
//! tables and keys listed above are added or replaced, everything else in the user's files
//! stays byte for byte, and running it again changes nothing. Upstream API keys are never
//! read here, so they cannot end up in Codex's files.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use toml_edit::{DocumentMut, Item, Table};

use crate::config::{ApplyPatch, Backend, Config, ConfigError, ModelMetadata, ReasoningEffort};
use crate::providers::Profile;

/// File name of the generated model catalog.
pub const CATALOG_FILE: &str = "codex-models.json";
/// Environment variable Codex reads the proxy's client token from (`env_key`).
pub const TOKEN_ENV: &str = "CODEX_PROXY_TOKEN";
/// Prefix of the Codex model provider ids this command owns.
pub const PROVIDER_PREFIX: &str = "proxy-";
/// Marks the tables this command wrote.
const MARKER: &str = "Managed by `codex-convert-proxy codex-setup`";

/// A Codex request recorded on the wire (Codex 0.169, a model without metadata): its first
/// developer message is Codex's default base prompt, which a catalog entry must repeat in
/// `base_instructions` (Codex uses that field instead of its own prompt).
const RECORDED_CODEX_REQUEST: &str = include_str!("../tests/fixtures/codex-0.169/turn1-text.json");

/// An error of the set-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An existing Codex file cannot be merged (invalid TOML, a conflicting entry, ...).
    #[error("{}: {message}", path.display())]
    Merge { path: PathBuf, message: String },
    /// The configuration cannot be turned into a Codex set-up.
    #[error("{0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SetupError + '_ {
    move |source| SetupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Options of `codex-setup`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory of `codex-models.json` (default: the Codex home).
    pub out_dir: Option<PathBuf>,
    /// Merge into the Codex home instead of printing.
    pub write: bool,
    /// The Codex home (default: `$CODEX_HOME`, else `~/.codex`).
    pub codex_home: Option<PathBuf>,
}

// ---------------------------------------------------------------------------
// Model catalog
// ---------------------------------------------------------------------------

/// Codex's default base prompt (see [`RECORDED_CODEX_REQUEST`]).
pub fn codex_base_instructions() -> Result<String, SetupError> {
    let bad = || SetupError::Invalid("the recorded Codex base prompt is unreadable".into());
    let request: Value = serde_json::from_str(RECORDED_CODEX_REQUEST).map_err(|_| bad())?;
    request
        .get("input")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find(|i| i["role"] == "developer"))
        .and_then(|item| item.pointer("/content/0/text"))
        .and_then(Value::as_str)
        .filter(|text| text.starts_with("You are a coding agent"))
        .map(str::to_owned)
        .ok_or_else(bad)
}

/// The provider profile of a backend.
pub fn profile_of(backend: &Backend) -> Profile {
    backend.quirks.profile
}

/// Codex's `effective_context_window_percent`: the part of the window usable for input.
fn effective_percent(model: &ModelMetadata) -> u64 {
    let usable = model.context_window.saturating_sub(model.max_output_tokens);
    (usable.saturating_mul(100) / model.context_window.max(1)).clamp(1, 95)
}

/// Codex's `auto_compact_token_limit`: compact at 90 % of the window, or earlier when the
/// answer's reserve needs more room.
fn auto_compact_limit(model: &ModelMetadata) -> u64 {
    let ninety = model.context_window / 10 * 9;
    ninety.min(model.context_window.saturating_sub(model.max_output_tokens))
}

/// One catalog entry (every field Codex 0.169 requires).
///
/// `use_responses_lite` is set, and `false`: Codex's classic Responses dialect (top-level
/// `tools`, `apply_patch` as a freeform tool, no code mode), what every Chat provider
/// handles best. Codex's own models have it `true` (see the README, "Codex's built-in
/// provider"); written out so that a change of Codex's default cannot switch the dialect.
pub fn catalog_entry(model: &ModelMetadata, backend: &Backend, base_instructions: &str) -> Value {
    let profile = profile_of(backend);
    let levels: Vec<Value> = model
        .reasoning
        .efforts
        .iter()
        .map(|e| json!({"effort": e.as_str(), "description": profile.effort_description(*e)}))
        .collect();
    let apply_patch = match model.apply_patch {
        ApplyPatch::Freeform => json!("freeform"),
        ApplyPatch::Function => json!("function"),
        ApplyPatch::None => Value::Null,
    };
    let modalities: Vec<&str> = model.input_modalities.iter().map(|m| m.as_str()).collect();
    json!({
        "slug": model.name,
        "display_name": model.name,
        "description": format!(
            "{} on backend {:?} ({profile} profile) via codex-convert-proxy",
            model.name, backend.name
        ),
        "priority": 50,
        "additional_speed_tiers": [],
        "service_tiers": [],
        "availability_nux": null,
        "upgrade": null,
        "default_reasoning_level": model.reasoning.default_effort.map(ReasoningEffort::as_str),
        "supported_reasoning_levels": levels,
        "shell_type": "shell_command",
        "visibility": "list",
        "supported_in_api": true,
        "supports_reasoning_summaries": model.reasoning.supported,
        "support_verbosity": false,
        "apply_patch_tool_type": apply_patch,
        "web_search_tool_type": "text",
        "supports_parallel_tool_calls": model.parallel_tool_calls,
        "supports_image_detail_original": false,
        "experimental_supported_tools": [],
        "supports_search_tool": false,
        "use_responses_lite": false,
        "context_window": model.context_window,
        "max_context_window": model.context_window,
        "effective_context_window_percent": effective_percent(model),
        "auto_compact_token_limit": auto_compact_limit(model),
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "input_modalities": modalities,
        "base_instructions": base_instructions,
    })
}

/// The catalog `{"models": [...]}` of every configured model, in config order. A model
/// configured on several backends appears once; it is an error when their metadata differ.
pub fn catalog(config: &Config) -> Result<Value, SetupError> {
    let base_instructions = codex_base_instructions()?;
    let mut entries: Vec<Value> = Vec::new();
    let mut seen: Vec<(&ModelMetadata, &Backend)> = Vec::new();
    for backend in &config.backends {
        for model in &backend.models {
            if let Some((other, other_backend)) = seen.iter().find(|(m, _)| m.name == model.name) {
                let same = ModelMetadata {
                    json_path: String::new(),
                    ..(*other).clone()
                } == ModelMetadata {
                    json_path: String::new(),
                    ..model.clone()
                } && profile_of(other_backend) == profile_of(backend);
                if !same {
                    return Err(SetupError::Invalid(format!(
                        "{}: model {:?} is also configured in {} with other metadata; \
                         a Codex catalog has one entry per model name",
                        model.json_path, model.name, other.json_path
                    )));
                }
                continue;
            }
            seen.push((model, backend));
            entries.push(catalog_entry(model, backend, &base_instructions));
        }
    }
    Ok(json!({ "models": entries }))
}

// ---------------------------------------------------------------------------
// Providers and profiles
// ---------------------------------------------------------------------------

/// One Codex model provider + profile, for one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPlan {
    /// The backend (and profile) name.
    pub backend: String,
    /// The provider id: `proxy-<backend>`.
    pub id: String,
    pub base_url: String,
    /// `CODEX_PROXY_TOKEN` when the proxy checks client tokens.
    pub env_key: Option<String>,
    /// The model the profile selects (the backend's first model), if any.
    pub model: Option<String>,
}

impl ProviderPlan {
    /// The `[model_providers.<id>]` key/values, in order. `supports_websockets`: Codex
    /// keeps one socket per session and sends each turn's new items only (the proxy
    /// rebuilds the conversation), instead of re-uploading the whole history every turn.
    /// Compaction stays Codex's own (local): see the README's "Use with Codex".
    fn provider_entries(&self) -> Vec<(&'static str, Entry)> {
        let mut v = vec![
            (
                "name",
                Entry::Str(format!("codex-convert-proxy: {}", self.backend)),
            ),
            ("base_url", Entry::Str(self.base_url.clone())),
            ("wire_api", Entry::Str("responses".to_string())),
            ("supports_websockets", Entry::Bool(true)),
        ];
        if let Some(k) = &self.env_key {
            v.push(("env_key", Entry::Str(k.clone())));
        }
        v
    }

    /// The profile's top-level keys, in order.
    fn profile_entries(&self, catalog_path: &Path) -> Vec<(&'static str, String)> {
        let mut v = vec![("model_provider", self.id.clone())];
        if let Some(m) = &self.model {
            v.push(("model", m.clone()));
        }
        v.push((
            "model_catalog_json",
            catalog_path.to_string_lossy().into_owned(),
        ));
        v
    }

    /// The profile's file name in the Codex home.
    pub fn profile_file(&self) -> String {
        format!("{}.config.toml", self.backend)
    }
}

/// `http://HOST:PORT` of the proxy as Codex reaches it (an unspecified listen address
/// becomes the loopback address of its family).
pub fn proxy_base_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

/// The providers (one per backend reachable by a path prefix or as the default) and notes
/// about the backends left out.
pub fn providers(config: &Config) -> (Vec<ProviderPlan>, Vec<String>) {
    let root = proxy_base_url(config.listen);
    let env_key = (!config.auth_tokens.is_empty()).then(|| TOKEN_ENV.to_string());
    let mut plans = Vec::new();
    let mut notes = Vec::new();
    for backend in &config.backends {
        let base_url = match (&backend.path_prefix, backend.is_default) {
            (Some(prefix), _) => format!("{root}{prefix}/v1"),
            (None, true) => format!("{root}/v1"),
            (None, false) => {
                notes.push(format!(
                    "backend {:?} has no match_rules.path_prefix and is not the default \
                     (only a fallback): no Codex provider for it",
                    backend.name
                ));
                continue;
            }
        };
        let model = backend.models.first().map(|m| m.name.clone());
        if model.is_none() {
            notes.push(format!(
                "backend {:?} has no \"model\" nor \"models\": its profile selects no model \
                 (pass one with `codex --profile {} -m MODEL`) and Codex has no metadata for it",
                backend.name, backend.name
            ));
        }
        plans.push(ProviderPlan {
            backend: backend.name.clone(),
            id: format!("{PROVIDER_PREFIX}{}", backend.name),
            base_url,
            env_key: env_key.clone(),
            model,
        });
    }
    (plans, notes)
}

fn marker_comment(plan: &ProviderPlan) -> String {
    format!(
        "# {MARKER} (backend {:?}): re-run it instead of editing.\n",
        plan.backend
    )
}

/// The `[model_providers.*]` tables as TOML text (what `--write` adds to config.toml).
pub fn config_toml_snippet(plans: &[ProviderPlan]) -> String {
    let mut doc = DocumentMut::new();
    let mut parent = Table::new();
    parent.set_implicit(true);
    for plan in plans {
        let mut table = Table::new();
        fill_table(&mut table, &plan.provider_entries());
        table
            .decor_mut()
            .set_prefix(format!("\n{}", marker_comment(plan)));
        parent.insert(&plan.id, Item::Table(table));
    }
    doc.insert("model_providers", Item::Table(parent));
    doc.to_string().trim_start_matches('\n').to_string()
}

fn profile_header(plan: &ProviderPlan) -> String {
    format!(
        "# Codex profile {:?} for codex-convert-proxy: `codex --profile {}`.\n\
         # {MARKER}; re-running it updates model_provider,\n\
         # model and model_catalog_json. Other settings you add here are kept.\n",
        plan.backend, plan.backend
    )
}

/// The profile file as TOML text.
pub fn profile_toml_snippet(plan: &ProviderPlan, catalog_path: &Path) -> String {
    let mut doc = DocumentMut::new();
    for (k, v) in plan.profile_entries(catalog_path) {
        doc.insert(k, toml_edit::value(v));
    }
    format!("{}{}", profile_header(plan), doc)
}

/// A value of a provider table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Str(String),
    Bool(bool),
}

impl Entry {
    fn item(&self) -> Item {
        match self {
            Entry::Str(s) => toml_edit::value(s.as_str()),
            Entry::Bool(b) => toml_edit::value(*b),
        }
    }

    fn matches(&self, item: &Item) -> bool {
        match self {
            Entry::Str(s) => item.as_str() == Some(s.as_str()),
            Entry::Bool(b) => item.as_bool() == Some(*b),
        }
    }
}

fn fill_table(table: &mut Table, entries: &[(&'static str, Entry)]) {
    for (k, v) in entries {
        table.insert(k, v.item());
    }
}

/// Whether `table` holds exactly `entries` (same keys, order and values).
fn table_matches(table: &Table, entries: &[(&'static str, Entry)]) -> bool {
    table.len() == entries.len()
        && table
            .iter()
            .zip(entries)
            .all(|((k, item), (ek, ev))| k == *ek && ev.matches(item))
}

// ---------------------------------------------------------------------------
// Merging into existing files
// ---------------------------------------------------------------------------

/// What a merge did to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub unchanged: Vec<String>,
    /// Things the user may want to fix by hand (nothing of theirs is changed).
    pub warnings: Vec<String>,
}

fn parse_toml(text: &str, path: &Path) -> Result<DocumentMut, SetupError> {
    text.parse::<DocumentMut>().map_err(|e| SetupError::Merge {
        path: path.to_path_buf(),
        message: format!("not valid TOML, left unchanged: {e}"),
    })
}

/// Merges the provider tables into the text of `config.toml` (`path` only names it in
/// errors). Existing `[model_providers.proxy-*]` tables of these backends are replaced in
/// place when they differ; missing ones are appended at the end of the file, so the user's
/// text stays a byte-for-byte prefix; everything else is untouched.
pub fn merge_config_toml(
    existing: &str,
    plans: &[ProviderPlan],
    path: &Path,
) -> Result<(String, MergeReport), SetupError> {
    let conflict = |message: String| SetupError::Merge {
        path: path.to_path_buf(),
        message,
    };
    let mut doc = parse_toml(existing, path)?;
    let mut report = MergeReport::default();
    let mut to_append: Vec<ProviderPlan> = Vec::new();
    {
        let mut providers = match doc.get_mut("model_providers") {
            None => None,
            Some(Item::Table(t)) => Some(t),
            Some(_) => {
                return Err(conflict(
                    "model_providers is an inline table or a value; left unchanged \
                     (write it as [model_providers.<name>] tables, then re-run)"
                        .into(),
                ))
            }
        };
        for plan in plans {
            let entries = plan.provider_entries();
            let key = format!("model_providers.{}", plan.id);
            match providers.as_deref_mut().and_then(|p| p.get_mut(&plan.id)) {
                None => to_append.push(plan.clone()),
                Some(Item::Table(t)) if !t.is_dotted() => {
                    if table_matches(t, &entries) {
                        report.unchanged.push(key);
                    } else {
                        // Keep the table's place and the comments above it.
                        t.clear();
                        fill_table(t, &entries);
                        report.replaced.push(key);
                    }
                }
                Some(_) => {
                    return Err(conflict(format!(
                        "{key} exists but is not a [{key}] table; left unchanged \
                         (remove it, then re-run)"
                    )))
                }
            }
        }
        // Tables an earlier run wrote for backends that are gone.
        let current: BTreeSet<&str> = plans.iter().map(|p| p.id.as_str()).collect();
        if let Some(p) = providers {
            for (id, item) in p.iter() {
                let ours = id.starts_with(PROVIDER_PREFIX)
                    && item.as_table().is_some_and(|t| {
                        t.decor()
                            .prefix()
                            .and_then(|r| r.as_str())
                            .is_some_and(|s| s.contains(MARKER))
                    });
                if ours && !current.contains(id) {
                    report.warnings.push(format!(
                        "[model_providers.{id}] was written by an earlier codex-setup for a \
                         backend that is no longer configured; remove it by hand if unused"
                    ));
                }
            }
        }
    }
    legacy_profile_warnings(&doc, plans, &mut report);

    let mut text = doc.to_string();
    if !to_append.is_empty() {
        let block = config_toml_snippet(&to_append);
        if !text.is_empty() {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push('\n');
        }
        text.push_str(&block);
        report.added.extend(
            to_append
                .iter()
                .map(|p| format!("model_providers.{}", p.id)),
        );
    }

    // The result must parse and hold exactly what was planned.
    let check = text.parse::<DocumentMut>().map_err(|e| {
        conflict(format!(
            "cannot add the provider tables to this file ({e}); left unchanged"
        ))
    })?;
    for plan in plans {
        let ok = check
            .get("model_providers")
            .and_then(|p| p.get(&plan.id))
            .and_then(Item::as_table)
            .is_some_and(|t| table_matches(t, &plan.provider_entries()));
        if !ok {
            return Err(conflict(format!(
                "could not merge [model_providers.{}]; left unchanged",
                plan.id
            )));
        }
    }
    Ok((text, report))
}

fn legacy_profile_warnings(doc: &DocumentMut, plans: &[ProviderPlan], report: &mut MergeReport) {
    if doc.get("profile").is_some() {
        report.warnings.push(
            "config.toml sets the legacy `profile = ...` selector: Codex 0.169 refuses \
             `--profile NAME` while it is there; remove it"
                .into(),
        );
    }
    if let Some(profiles) = doc.get("profiles").and_then(Item::as_table_like) {
        for plan in plans {
            if profiles.contains_key(&plan.backend) {
                report.warnings.push(format!(
                    "config.toml has a legacy [profiles.{0}] table: Codex 0.169 refuses \
                     `--profile {0}` while it is there; move its settings into {0}.config.toml",
                    plan.backend
                ));
            }
        }
    }
}

/// Merges the profile keys into the text of a profile file (empty when it does not exist).
pub fn merge_profile_toml(
    existing: &str,
    plan: &ProviderPlan,
    catalog_path: &Path,
    path: &Path,
) -> Result<(String, MergeReport), SetupError> {
    if existing.trim().is_empty() {
        let mut report = MergeReport::default();
        let entries = plan.profile_entries(catalog_path);
        report
            .added
            .extend(entries.iter().map(|(k, _)| (*k).to_string()));
        return Ok((profile_toml_snippet(plan, catalog_path), report));
    }
    let mut doc = parse_toml(existing, path)?;
    let mut report = MergeReport::default();
    for (key, value) in plan.profile_entries(catalog_path) {
        match doc.get_mut(key) {
            None => {
                doc.insert(key, toml_edit::value(value));
                report.added.push(key.to_string());
            }
            Some(Item::Value(v)) => {
                if v.as_str() == Some(value.as_str()) {
                    report.unchanged.push(key.to_string());
                } else {
                    let decor = v.decor().clone();
                    *v = toml_edit::Value::from(value);
                    *v.decor_mut() = decor;
                    report.replaced.push(key.to_string());
                }
            }
            Some(_) => {
                return Err(SetupError::Merge {
                    path: path.to_path_buf(),
                    message: format!("{key} is a table, expected a string; left unchanged"),
                })
            }
        }
    }
    Ok((doc.to_string(), report))
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    Created,
    Updated,
    Unchanged,
}

impl FileChange {
    fn as_str(self) -> &'static str {
        match self {
            FileChange::Created => "created",
            FileChange::Updated => "updated",
            FileChange::Unchanged => "unchanged",
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, SetupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `content` to `path` unless it already holds exactly that. Replaces the file
/// atomically (temporary file + rename, keeping its permissions) and writes through a
/// symbolic link instead of replacing it.
pub fn write_if_changed(path: &Path, content: &str) -> Result<FileChange, SetupError> {
    let old = read_optional(path)?;
    if old.as_deref() == Some(content) {
        return Ok(FileChange::Unchanged);
    }
    let target = if old.is_some() {
        std::fs::canonicalize(path).map_err(io_err(path))?
    } else {
        path.to_path_buf()
    };
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "codex-setup".into());
    let tmp = target.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(content.as_bytes()).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        if old.is_some() {
            if let Ok(meta) = std::fs::metadata(&target) {
                std::fs::set_permissions(&tmp, meta.permissions()).map_err(io_err(&tmp))?;
            }
        }
        std::fs::rename(&tmp, &target).map_err(io_err(&target))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    Ok(if old.is_some() {
        FileChange::Updated
    } else {
        FileChange::Created
    })
}

/// The Codex home: `explicit`, else `$CODEX_HOME`, else `$HOME/.codex`.
pub fn resolve_codex_home(explicit: Option<&Path>) -> Result<PathBuf, SetupError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("CODEX_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".codex")),
        None => Err(SetupError::Invalid(
            "cannot find the Codex home: set CODEX_HOME or HOME, or pass --codex-home".into(),
        )),
    }
}

/// Creates `dir` if needed and returns it as an absolute path.
fn absolute_dir(dir: &Path) -> Result<PathBuf, SetupError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    std::fs::canonicalize(dir).map_err(io_err(dir))
}

// ---------------------------------------------------------------------------
// The command
// ---------------------------------------------------------------------------

/// Loads the proxy configuration for the set-up. An unset `${VAR}` in an `api_key` is
/// treated as empty: the set-up never uses upstream keys, and the shell that runs it
/// need not hold them. Returns the names of those variables.
pub fn load_config(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut blanked: Vec<String> = Vec::new();
    loop {
        let env = |name: &str| {
            if blanked.iter().any(|b| b == name) {
                Some(String::new())
            } else {
                std::env::var(name).ok()
            }
        };
        match Config::from_json_str(&text, &env) {
            Ok(c) => return Ok((c, blanked)),
            Err(ConfigError::EnvVarNotSet { path, var })
                if path.ends_with(".api_key") && !blanked.contains(&var) =>
            {
                blanked.push(var);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs the set-up for a loaded configuration, reporting to `out`.
pub fn run(config: &Config, opts: &Options, out: &mut dyn Write) -> Result<(), SetupError> {
    let out_err = |e: std::io::Error| SetupError::Io {
        path: PathBuf::from("<stdout>"),
        source: e,
    };
    let codex_home = resolve_codex_home(opts.codex_home.as_deref())?;
    let out_dir = absolute_dir(opts.out_dir.as_deref().unwrap_or(&codex_home))?;
    let catalog_path = out_dir.join(CATALOG_FILE);

    let catalog = catalog(config)?;
    let (plans, notes) = providers(config);
    if plans.is_empty() {
        return Err(SetupError::Invalid(
            "no backend is reachable by Codex (none is the default or has a path_prefix)".into(),
        ));
    }
    let mut catalog_text = serde_json::to_string_pretty(&catalog)
        .map_err(|e| SetupError::Invalid(format!("cannot serialize the catalog: {e}")))?;
    catalog_text.push('\n');

    // Merge everything before writing anything: a file that cannot be merged stops the
    // set-up with every file untouched.
    let mut warnings = notes;
    let mut merges: Vec<(PathBuf, String, MergeReport)> = Vec::new();
    if opts.write {
        let home = absolute_dir(&codex_home)?;
        let config_path = home.join("config.toml");
        let existing = read_optional(&config_path)?.unwrap_or_default();
        let (merged, report) = merge_config_toml(&existing, &plans, &config_path)?;
        merges.push((config_path, merged, report));
        for plan in &plans {
            let path = home.join(plan.profile_file());
            let existing = read_optional(&path)?.unwrap_or_default();
            let (merged, report) = merge_profile_toml(&existing, plan, &catalog_path, &path)?;
            merges.push((path, merged, report));
        }
    }

    let change = write_if_changed(&catalog_path, &catalog_text)?;
    let names: Vec<&str> = catalog["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["slug"].as_str())
        .collect();
    writeln!(
        out,
        "Codex model catalog {} ({}): {} model(s): {}",
        catalog_path.display(),
        change.as_str(),
        names.len(),
        names.join(", ")
    )
    .map_err(out_err)?;

    if opts.write {
        for (path, merged, report) in merges {
            let change = write_if_changed(&path, &merged)?;
            writeln!(
                out,
                "{} ({}){}",
                path.display(),
                change.as_str(),
                describe(&report)
            )
            .map_err(out_err)?;
            warnings.extend(report.warnings);
        }
    } else {
        let home = std::path::absolute(&codex_home).unwrap_or(codex_home.clone());
        writeln!(
            out,
            "\n# ---- add to {} ----\n{}",
            home.join("config.toml").display(),
            config_toml_snippet(&plans)
        )
        .map_err(out_err)?;
        for plan in &plans {
            writeln!(
                out,
                "# ---- {} ----\n{}",
                home.join(plan.profile_file()).display(),
                profile_toml_snippet(plan, &catalog_path)
            )
            .map_err(out_err)?;
        }
        writeln!(
            out,
            "Nothing but the catalog was written: re-run with --write to merge these into {} \
             (only these tables and keys are added or replaced).",
            home.display()
        )
        .map_err(out_err)?;
    }

    for w in &warnings {
        writeln!(out, "note: {w}").map_err(out_err)?;
    }
    let profiles: Vec<String> = plans
        .iter()
        .map(|p| format!("codex --profile {}", p.backend))
        .collect();
    writeln!(out, "\nWith the proxy running: {}", profiles.join("  |  ")).map_err(out_err)?;
    if !config.auth_tokens.is_empty() {
        writeln!(
            out,
            "The proxy checks client tokens: export {TOKEN_ENV}=<one of its auth_tokens> first."
        )
        .map_err(out_err)?;
    }
    Ok(())
}

fn describe(report: &MergeReport) -> String {
    let mut parts = Vec::new();
    for (what, list) in [
        ("added", &report.added),
        ("replaced", &report.replaced),
        ("unchanged", &report.unchanged),
    ] {
        if !list.is_empty() {
            parts.push(format!("{what} {}", list.join(", ")));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn config(json: &str) -> Config {
        Config::from_json_str(json, &|_| None).unwrap()
    }

    const FOUR: &str = r#"{
        "listen": "0.0.0.0:8280",
        "backends": [
            {"name": "glm", "url": "https://open.bigmodel.cn/api/paas/v4", "api_key": "sk-glm-secret",
             "model": "glm-5", "match_rules": {"path_prefix": "/glm", "default": true}},
            {"name": "kimi", "url": "https://api.moonshot.cn/v1", "model": "kimi-k2.6",
             "context_window": 200000, "match_rules": {"path_prefix": "/kimi"}},
            {"name": "deepseek", "url": "https://api.deepseek.com/v1",
             "models": [{"name": "deepseek-flash", "reasoning": {"supported": false}},
                        {"name": "deepseek-v4-pro", "reasoning": {"default_effort": "xhigh"}}],
             "match_rules": {"path_prefix": "/deepseek"}},
            {"name": "local", "url": "http://127.0.0.1:11434/v1", "model": "qwen3",
             "apply_patch": "function", "input_modalities": ["text"], "parallel_tool_calls": false,
             "reasoning": {"default_effort": "high"}, "max_output_tokens": 4000,
             "match_rules": {"path_prefix": "/local"}}
        ]}"#;

    fn fixture_entry() -> Value {
        let text = include_str!("../tests/fixtures/codex-0.169/model-catalog-example.json");
        let v: Value = serde_json::from_str(text).unwrap();
        v["models"][0].clone()
    }

    fn entry<'a>(catalog: &'a Value, slug: &str) -> &'a Value {
        catalog["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["slug"] == slug)
            .unwrap_or_else(|| panic!("no catalog entry {slug}"))
    }

    #[test]
    fn every_entry_has_every_field_of_the_codex_example() {
        let fixture = fixture_entry();
        let c = catalog(&config(FOUR)).unwrap();
        let models = c["models"].as_array().unwrap();
        assert_eq!(models.len(), 5);
        for m in models {
            for (key, value) in fixture.as_object().unwrap() {
                let got = m.get(key).unwrap_or_else(|| panic!("{key} missing in {m}"));
                // Same JSON type, except the nullable fields.
                if !value.is_null() && !got.is_null() {
                    assert_eq!(
                        std::mem::discriminant(value),
                        std::mem::discriminant(got),
                        "{key}: {value} vs {got}"
                    );
                }
            }
        }
    }

    #[test]
    fn catalog_values_follow_config_and_profile_defaults() {
        let c = catalog(&config(FOUR)).unwrap();
        let glm = entry(&c, "glm-5");
        // The glm-5 family's window, not the profile's 128000.
        assert_eq!(glm["context_window"], 200_000);
        assert_eq!(glm["max_context_window"], 200_000);
        assert_eq!(glm["apply_patch_tool_type"], "freeform");
        assert_eq!(glm["default_reasoning_level"], "medium");
        assert_eq!(glm["input_modalities"], json!(["text"]));
        assert_eq!(glm["supports_parallel_tool_calls"], true);
        assert_eq!(glm["supports_reasoning_summaries"], true);
        assert_eq!(
            glm["supported_reasoning_levels"],
            json!([{"effort": "none", "description": "thinking disabled"},
                   {"effort": "medium", "description": "thinking enabled"}])
        );
        // 200000 - 32768 reserved for the answer.
        assert_eq!(glm["auto_compact_token_limit"], 167_232);
        assert_eq!(glm["effective_context_window_percent"], 83);

        let kimi = entry(&c, "kimi-k2.6");
        assert_eq!(kimi["context_window"], 200_000);
        assert_eq!(kimi["default_reasoning_level"], Value::Null);
        assert_eq!(kimi["supported_reasoning_levels"], json!([]));

        let chat = entry(&c, "deepseek-flash");
        assert_eq!(chat["supports_reasoning_summaries"], false);
        assert_eq!(chat["supported_reasoning_levels"], json!([]));
        assert_eq!(chat["default_reasoning_level"], Value::Null);
        assert_eq!(chat["input_modalities"], json!(["text", "image"]));
        let reasoner = entry(&c, "deepseek-v4-pro");
        assert_eq!(reasoner["default_reasoning_level"], "xhigh");
        assert_eq!(reasoner["context_window"], 1_000_000);
        assert_eq!(reasoner["input_modalities"], json!(["text"]));
        assert_eq!(
            reasoner["supported_reasoning_levels"],
            json!([{"effort": "none", "description": "thinking: {type: disabled}"},
                   {"effort": "high", "description": "reasoning_effort: high"},
                   {"effort": "xhigh", "description": "reasoning_effort: max"}])
        );

        let local = entry(&c, "qwen3");
        assert_eq!(local["apply_patch_tool_type"], "function");
        assert_eq!(local["input_modalities"], json!(["text"]));
        assert_eq!(local["supports_parallel_tool_calls"], false);
        assert_eq!(local["default_reasoning_level"], "high");
        assert_eq!(
            local["supported_reasoning_levels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["effort"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["low", "medium", "high"]
        );
        assert_eq!(local["auto_compact_token_limit"], 115_200);
        assert_eq!(local["effective_context_window_percent"], 95);
    }

    #[test]
    fn every_entry_uses_the_classic_dialect() {
        let c = catalog(&config(FOUR)).unwrap();
        let models = c["models"].as_array().unwrap();
        assert_eq!(models.len(), 5);
        for m in models {
            assert_eq!(m.get("use_responses_lite"), Some(&json!(false)), "{m}");
        }
    }

    #[test]
    fn base_instructions_are_codex_default_prompt() {
        let prompt = codex_base_instructions().unwrap();
        assert!(prompt.starts_with("You are a coding agent running in the Codex CLI"));
        assert!(prompt.len() > 10_000, "{}", prompt.len());
        let c = catalog(&config(FOUR)).unwrap();
        assert_eq!(entry(&c, "glm-5")["base_instructions"], prompt.as_str());
    }

    #[test]
    fn apply_patch_none_is_null() {
        let c = catalog(&config(
            r#"{"backends":[{"name":"a","url":"http://h","model":"m","apply_patch":"none"}]}"#,
        ))
        .unwrap();
        assert_eq!(entry(&c, "m")["apply_patch_tool_type"], Value::Null);
    }

    #[test]
    fn no_secret_in_catalog_or_snippets() {
        let cfg = config(FOUR);
        let c = catalog(&cfg).unwrap().to_string();
        let (plans, _) = providers(&cfg);
        let snippet = config_toml_snippet(&plans);
        let profile = profile_toml_snippet(&plans[0], Path::new("/x/codex-models.json"));
        for text in [&c, &snippet, &profile] {
            assert!(!text.contains("sk-glm-secret"));
        }
    }

    #[test]
    fn same_model_on_two_backends() {
        // Same metadata: one entry.
        let cfg = config(
            r#"{"backends":[
                {"name":"a","url":"http://h","model":"m","fallback":["b"],"match_rules":{"default":true}},
                {"name":"b","url":"http://h2","model":"m"}]}"#,
        );
        let c = catalog(&cfg).unwrap();
        assert_eq!(c["models"].as_array().unwrap().len(), 1);
        let (plans, notes) = providers(&cfg);
        assert_eq!(plans.len(), 1);
        assert!(notes[0].contains("\"b\""), "{notes:?}");
        // Other metadata: an error naming both places.
        let cfg = config(
            r#"{"backends":[
                {"name":"a","url":"http://h","model":"m","match_rules":{"default":true}},
                {"name":"b","url":"http://h2","models":[{"name":"m","context_window":1000}],
                 "match_rules":{"path_prefix":"/b"}}]}"#,
        );
        let e = catalog(&cfg).unwrap_err().to_string();
        assert!(e.contains("backends[1].models[0]"), "{e}");
        assert!(e.contains("backends[0]"), "{e}");
    }

    #[test]
    fn providers_follow_routing() {
        let (plans, notes) = providers(&config(FOUR));
        assert!(notes.is_empty(), "{notes:?}");
        let urls: Vec<(&str, &str)> = plans
            .iter()
            .map(|p| (p.id.as_str(), p.base_url.as_str()))
            .collect();
        assert_eq!(
            urls,
            [
                ("proxy-glm", "http://127.0.0.1:8280/glm/v1"),
                ("proxy-kimi", "http://127.0.0.1:8280/kimi/v1"),
                ("proxy-deepseek", "http://127.0.0.1:8280/deepseek/v1"),
                ("proxy-local", "http://127.0.0.1:8280/local/v1"),
            ]
        );
        assert_eq!(plans[2].model.as_deref(), Some("deepseek-flash"));
        assert!(plans.iter().all(|p| p.env_key.is_none()));

        let cfg = Config::from_json_str(
            r#"{"listen":"[::]:9000","auth_tokens":["t"],"backends":[{"name":"x","url":"http://h"}]}"#,
            &|_| None,
        )
        .unwrap();
        let (plans, notes) = providers(&cfg);
        assert_eq!(plans[0].base_url, "http://[::1]:9000/v1");
        assert_eq!(plans[0].env_key.as_deref(), Some(TOKEN_ENV));
        assert_eq!(plans[0].model, None);
        assert!(notes[0].contains("no \"model\""), "{notes:?}");
    }

    #[test]
    fn snippets() {
        let (plans, _) = providers(&config(FOUR));
        let s = config_toml_snippet(&plans[..1]);
        assert_eq!(
            s,
            "# Managed by `codex-convert-proxy codex-setup` (backend \"glm\"): re-run it instead of editing.\n\
             [model_providers.proxy-glm]\n\
             name = \"codex-convert-proxy: glm\"\n\
             base_url = \"http://127.0.0.1:8280/glm/v1\"\n\
             wire_api = \"responses\"\n\
             supports_websockets = true\n"
        );
        let p = profile_toml_snippet(&plans[0], Path::new("/h/codex-models.json"));
        assert!(p.ends_with(
            "model_provider = \"proxy-glm\"\nmodel = \"glm-5\"\nmodel_catalog_json = \"/h/codex-models.json\"\n"
        ), "{p}");
        assert!(p.starts_with("# Codex profile \"glm\""), "{p}");
    }

    #[test]
    fn merge_into_empty_and_twice() {
        let (plans, _) = providers(&config(FOUR));
        let path = Path::new("config.toml");
        let (first, report) = merge_config_toml("", &plans, path).unwrap();
        assert_eq!(first, config_toml_snippet(&plans));
        assert_eq!(report.added.len(), 4);
        let (second, report) = merge_config_toml(&first, &plans, path).unwrap();
        assert_eq!(first, second);
        assert!(report.added.is_empty() && report.replaced.is_empty());
        assert_eq!(report.unchanged.len(), 4);
    }

    #[test]
    fn merge_replaces_only_owned_tables_in_place() {
        let (plans, _) = providers(&config(FOUR));
        let path = Path::new("config.toml");
        let user = "# mine\nmodel = \"o3\" # keep\n\n[model_providers.proxy-kimi]\nname = \"old\"\nbase_url = \"http://old/v1\"\nextra = 1\n\n[model_providers.other]\nname = \"x\"\n";
        let (merged, report) = merge_config_toml(user, &plans, path).unwrap();
        assert_eq!(report.replaced, ["model_providers.proxy-kimi"]);
        assert_eq!(report.added.len(), 3);
        assert!(merged.starts_with(
            "# mine\nmodel = \"o3\" # keep\n\n[model_providers.proxy-kimi]\nname = \"codex-convert-proxy: kimi\"\n"
        ), "{merged}");
        assert!(
            merged.contains("\n[model_providers.other]\nname = \"x\"\n"),
            "{merged}"
        );
        assert!(!merged.contains("extra"), "{merged}");
        let (again, _) = merge_config_toml(&merged, &plans, path).unwrap();
        assert_eq!(again, merged);
    }

    #[test]
    fn merge_refuses_what_it_cannot_merge() {
        let (plans, _) = providers(&config(FOUR));
        let path = Path::new("/h/config.toml");
        for bad in [
            "model_providers = { a = { name = \"x\" } }\n",
            "[model_providers]\nproxy-glm = { name = \"x\" }\n",
            "not toml [\n",
        ] {
            let e = merge_config_toml(bad, &plans, path)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("/h/config.toml: "), "{e}");
            assert!(e.contains("left unchanged"), "{e}");
        }
    }

    #[test]
    fn merge_warns_about_legacy_profiles_and_stale_tables() {
        let (plans, _) = providers(&config(FOUR));
        let path = Path::new("config.toml");
        let user = format!(
            "[profiles.kimi]\nmodel = \"x\"\n\n{}",
            config_toml_snippet(&[ProviderPlan {
                backend: "gone".into(),
                id: "proxy-gone".into(),
                base_url: "http://127.0.0.1:1/v1".into(),
                env_key: None,
                model: None,
            }])
        );
        let (merged, report) = merge_config_toml(&user, &plans, path).unwrap();
        assert!(merged.starts_with(&user));
        let w = report.warnings.join("\n");
        assert!(w.contains("[profiles.kimi]"), "{w}");
        assert!(w.contains("[model_providers.proxy-gone]"), "{w}");
    }

    #[test]
    fn profile_merge_keeps_user_settings() {
        let (plans, _) = providers(&config(FOUR));
        let cat = Path::new("/h/codex-models.json");
        let path = Path::new("glm.config.toml");
        let user = "# my glm profile\nmodel = \"glm-4.6\"   # older\napproval_policy = \"on-request\"\n\n[tui]\ntheme = \"dark\"\n";
        let (merged, report) = merge_profile_toml(user, &plans[0], cat, path).unwrap();
        assert_eq!(report.replaced, ["model"]);
        assert_eq!(report.added, ["model_provider", "model_catalog_json"]);
        assert_eq!(
            merged,
            "# my glm profile\nmodel = \"glm-5\"   # older\napproval_policy = \"on-request\"\n\
             model_provider = \"proxy-glm\"\nmodel_catalog_json = \"/h/codex-models.json\"\n\n[tui]\ntheme = \"dark\"\n"
        );
        let (again, report) = merge_profile_toml(&merged, &plans[0], cat, path).unwrap();
        assert_eq!(again, merged);
        assert_eq!(report.unchanged.len(), 3);
    }

    #[cfg(unix)]
    #[test]
    fn write_if_changed_is_idempotent_and_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.toml");
        assert_eq!(write_if_changed(&p, "a").unwrap(), FileChange::Created);
        assert_eq!(write_if_changed(&p, "a").unwrap(), FileChange::Unchanged);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(write_if_changed(&p, "b").unwrap(), FileChange::Updated);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Through a symlink: the link stays, its target changes.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(write_if_changed(&link, "c").unwrap(), FileChange::Updated);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "c");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
