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
//!
//! `catalog`: the model catalog; `plan`: the providers and profiles and their TOML; `merge`:
//! merging them into the user's files; here the command (files, `run`).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};

mod catalog;
mod merge;
mod plan;

pub use catalog::*;
pub use merge::*;
pub use plan::*;

/// File name of the generated model catalog.
pub const CATALOG_FILE: &str = "codex-models.json";
/// Environment variable Codex reads the proxy's client token from (`env_key`).
pub const TOKEN_ENV: &str = "CODEX_PROXY_TOKEN";
/// Prefix of the Codex model provider ids this command owns.
pub const PROVIDER_PREFIX: &str = "proxy-";
/// Marks the tables this command wrote.
const MARKER: &str = "Managed by `codex-convert-proxy codex-setup`";

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
    use serde_json::{json, Value};

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
        let text = include_str!("../../tests/fixtures/codex-0.169/model-catalog-example.json");
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

    /// The levels' descriptions come from the encoding the backend really uses: a backend
    /// that overrides its profile's (`quirks.reasoning_effort`) is described as it sends.
    #[test]
    fn effort_descriptions_follow_a_backend_override() {
        let c = catalog(&config(
            r#"{"backends": [{"name": "deepseek", "url": "https://api.deepseek.com/v1",
                "model": "deepseek-v4-pro", "quirks": {"reasoning_effort": "reasoning_effort"},
                "match_rules": {"default": true}}]}"#,
        ))
        .unwrap();
        let levels = entry(&c, "deepseek-v4-pro")["supported_reasoning_levels"].clone();
        let descriptions: Vec<&str> = levels
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["description"].as_str().unwrap())
            .collect();
        assert!(!descriptions.is_empty());
        for (l, d) in levels.as_array().unwrap().iter().zip(&descriptions) {
            assert_eq!(
                *d,
                format!("reasoning_effort: {}", l["effort"].as_str().unwrap())
            );
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
            json!([{"effort": "none", "description": "thinking: {type: disabled}"},
                   {"effort": "medium", "description": "thinking: {type: enabled}"}])
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
