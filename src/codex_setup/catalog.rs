//! The Codex model catalog (`codex-models.json`): one entry per configured model, in the
//! full schema Codex requires.

use serde_json::{json, Value};

use crate::config::{ApplyPatch, Backend, Config, ModelMetadata, ReasoningEffort};
use crate::providers::Profile;

use super::*;

/// A Codex request recorded on the wire (Codex 0.169, a model without metadata): its first
/// developer message is Codex's default base prompt, which a catalog entry must repeat in
/// `base_instructions` (Codex uses that field instead of its own prompt).
const RECORDED_CODEX_REQUEST: &str =
    include_str!("../../tests/fixtures/codex-0.169/turn1-text.json");

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
        .map(|e| json!({"effort": e.as_str(), "description": backend.quirks.effort.describe(e.as_str())}))
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
