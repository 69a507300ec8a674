//! Merging the providers and profiles into the user's Codex files with `toml_edit`: only
//! our tables and keys change, everything else stays byte for byte.

use std::collections::BTreeSet;
use std::path::Path;

use toml_edit::{DocumentMut, Item};

use super::*;

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
