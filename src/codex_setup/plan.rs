//! One Codex model provider and profile per reachable backend, and their TOML.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

use crate::config::Config;

use super::*;

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
    pub(super) fn provider_entries(&self) -> Vec<(&'static str, Entry)> {
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
    pub(super) fn profile_entries(&self, catalog_path: &Path) -> Vec<(&'static str, String)> {
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
pub(super) enum Entry {
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

pub(super) fn fill_table(table: &mut Table, entries: &[(&'static str, Entry)]) {
    for (k, v) in entries {
        table.insert(k, v.item());
    }
}

/// Whether `table` holds exactly `entries` (same keys, order and values).
pub(super) fn table_matches(table: &Table, entries: &[(&'static str, Entry)]) -> bool {
    table.len() == entries.len()
        && table
            .iter()
            .zip(entries)
            .all(|((k, item), (ek, ev))| k == *ek && ev.matches(item))
}
