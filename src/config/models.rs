//! Model metadata for Codex's model catalog (see `codex_setup`): [`ModelMetadata`] and
//! [`ApplyPatch`], and the validation of a backend's `models` and model keys over the
//! defaults of its provider profile ([`Profile::model_defaults_for`]). The efforts and
//! modalities are the profiles' types (`providers::catalog`, re-exported by `config`).

use super::error::ConfigError;
use super::raw::RawModel;
use super::validate::non_empty;
use crate::providers::{InputModality, ModelDefaults, Profile, ReasoningEffort};

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

/// Builds the model list of a backend: its `model` (with the metadata keys written on the
/// backend, or its `models` entry) first, then the other `models` entries.
pub(super) fn validate_models(
    model: Option<&str>,
    backend_meta: RawModel,
    raw_models: Vec<RawModel>,
    profile: Profile,
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
            &profile.model_defaults_for(name),
            base,
        )?);
    }
    let listed_from = out.len();
    for (j, raw) in raw_models.into_iter().enumerate() {
        let path = format!("{base}.models[{j}]");
        let defaults = profile.model_defaults_for(raw.name.as_deref().unwrap_or_default());
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::*;
    use crate::providers::Profile;
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
            (Profile::Glm, 128_000),
            (Profile::Kimi, 262_144),
            (Profile::DeepSeek, 1_000_000),
            (Profile::MiniMax, 204_800),
            (Profile::OpenAi, 128_000),
        ] {
            let d = profile.model_defaults();
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
}
