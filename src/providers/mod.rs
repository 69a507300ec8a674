//! Provider profiles: what each Chat Completions provider accepts and how it answers.
//!
//! [`Profile`] is the one list of the providers the proxy knows. Each one's data is in its
//! own file (`glm.rs`, `kimi.rs`, `deepseek.rs`, `minimax.rs`, `openai.rs`): its switches
//! ([`Quirks`], overridable per backend), the words of a backend name that pick it, its model
//! defaults and families for Codex's catalog, what it makes of a reasoning effort, and its
//! own error codes and phrases, all in one [`Spec`] per file. This file has the types and
//! the one dispatch by profile, [`Profile::spec`].
//! Pure: nothing here touches the network or Pingora.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use catalog::{InputModality, ModelDefaults, ReasoningEffort};

mod catalog;
pub mod deepseek;
pub mod glm;
pub mod kimi;
pub mod minimax;
pub mod openai;

/// How `reasoning.effort` is sent upstream (`quirks.reasoning_effort` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffortStyle {
    /// Not sent.
    Drop,
    /// `reasoning_effort: <effort>` as given.
    ReasoningEffort,
    /// DeepSeek: `reasoning_effort: high | max`; `none`/`minimal` → `thinking: {type: disabled}`.
    #[serde(rename = "deepseek")]
    DeepSeek,
    /// GLM: `thinking: {type: enabled | disabled}`.
    GlmThinking,
}

impl EffortStyle {
    /// The Chat request's members for a Responses `reasoning.effort` (none for
    /// [`EffortStyle::Drop`]). The one place the encoding is written: the converter sends
    /// it, and codex-setup's catalog describes it ([`EffortStyle::describe`]).
    pub fn encode(self, effort: &str) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::{json, Value};
        let off = matches!(effort, "none" | "minimal");
        match self {
            EffortStyle::Drop => Vec::new(),
            EffortStyle::ReasoningEffort => {
                vec![("reasoning_effort", Value::String(effort.to_owned()))]
            }
            EffortStyle::DeepSeek if off => vec![("thinking", json!({"type": "disabled"}))],
            EffortStyle::DeepSeek => {
                let e = if matches!(effort, "xhigh" | "max") {
                    "max"
                } else {
                    "high"
                };
                vec![("reasoning_effort", Value::String(e.into()))]
            }
            EffortStyle::GlmThinking => {
                let t = if off { "disabled" } else { "enabled" };
                vec![("thinking", json!({ "type": t }))]
            }
        }
    }

    /// What [`EffortStyle::encode`] sends, in words (the level's description in Codex's
    /// catalog): `reasoning_effort: high`, `thinking: {type: disabled}`, or that nothing is
    /// sent.
    pub fn describe(self, effort: &str) -> String {
        let members = self.encode(effort);
        if members.is_empty() {
            return "not forwarded: the model decides".to_owned();
        }
        members
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                serde_json::Value::Object(o) => {
                    let inner: Vec<String> = o
                        .iter()
                        .map(|(ik, iv)| format!("{ik}: {}", iv.as_str().unwrap_or_default()))
                        .collect();
                    format!("{k}: {{{}}}", inner.join(", "))
                }
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What happens to `temperature` and `top_p` (`quirks.sampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Sent as given.
    Keep,
    /// Not sent: the provider fixes them (Kimi K2.x rejects any other value).
    Drop,
    /// Clamped into `(0, 1]` (MiniMax, GLM): above 1 → 1, zero or below → 0.01.
    UnitInterval,
}

impl Sampling {
    /// The value to send for a client's `temperature` / `top_p`.
    pub fn apply(self, value: Option<f64>) -> Option<f64> {
        let v = value.filter(|v| v.is_finite())?;
        match self {
            Sampling::Keep => Some(v),
            Sampling::Drop => None,
            Sampling::UnitInterval => Some(if v > 1.0 {
                1.0
            } else if v <= 0.0 {
                0.01
            } else {
                v
            }),
        }
    }
}

/// How the provider's reasoning must come back on assistant messages
/// (`quirks.reasoning_passback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Passback {
    /// Not sent back.
    None,
    /// `reasoning_content` on the assistant message.
    ReasoningContent,
    /// `<think>…</think>` at the start of the assistant content (MiniMax).
    ThinkTags,
}

/// A provider's own web search in its Chat API, offered in place of the Responses hosted
/// `web_search` tool (`Quirks::web_search`; the backend's `"web_search": "native" | "off"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NativeSearch {
    /// No search: the hosted tool is dropped (counted, warned once).
    #[default]
    None,
    /// GLM: `{"type": "web_search", "web_search": {...}}`; results in a top-level
    /// `web_search` array of the completion or chunk ([`glm`]).
    Glm,
    /// Kimi: the `$web_search` builtin function; the proxy answers its call itself and
    /// calls again ([`kimi`]).
    Kimi,
    /// DeepSeek: the `deepseek_web_search` server tool ([`deepseek`]).
    DeepSeek,
}

impl NativeSearch {
    /// The proxy runs a call loop (the provider's search comes back as a tool call).
    pub fn loops(self) -> bool {
        self == NativeSearch::Kimi
    }

    /// The tool object offered to the provider. `allowed_domains`: the Responses tool's
    /// `filters.allowed_domains` (GLM takes one domain: mapped only when there is one).
    pub fn tool(self, allowed_domains: &[String]) -> Option<serde_json::Value> {
        use serde_json::json;
        match self {
            NativeSearch::None => None,
            NativeSearch::Glm => {
                let mut ws = json!({
                    "enable": true,
                    "search_engine": glm::SEARCH_ENGINE,
                    "search_result": true,
                });
                if let ([domain], Some(o)) = (allowed_domains, ws.as_object_mut()) {
                    o.insert("search_domain_filter".into(), json!(domain));
                }
                Some(json!({"type": "web_search", "web_search": ws}))
            }
            NativeSearch::Kimi => Some(json!({
                "type": "builtin_function",
                "function": {"name": kimi::WEB_SEARCH},
            })),
            NativeSearch::DeepSeek => Some(json!({"type": deepseek::WEB_SEARCH})),
        }
    }
}

/// A provider profile. Serialized (and displayed) as its name: `glm`, `kimi`, `deepseek`,
/// `minimax`, `openai`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// GLM (Zhipu / Z.AI).
    Glm,
    /// Kimi (Moonshot).
    Kimi,
    DeepSeek,
    MiniMax,
    /// The generic OpenAI-compatible profile.
    OpenAi,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 5] = [
        Profile::Glm,
        Profile::Kimi,
        Profile::DeepSeek,
        Profile::MiniMax,
        Profile::OpenAi,
    ];

    /// The name (`provider` in the config, logs, `/health`, telemetry).
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::Glm => "glm",
            Profile::Kimi => "kimi",
            Profile::DeepSeek => "deepseek",
            Profile::MiniMax => "minimax",
            Profile::OpenAi => "openai",
        }
    }

    /// The profile of a name (`None` for an unknown one).
    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Pick the profile: an explicit `provider`, else a known name inside the backend name
    /// (ASCII case-insensitive, e.g. `my-moonshot` → kimi), else the generic profile.
    pub fn resolve(provider: Option<&str>, backend_name: &str) -> Profile {
        if let Some(p) = provider.and_then(Profile::parse) {
            return p;
        }
        let lower = backend_name.to_ascii_lowercase();
        Profile::ALL
            .into_iter()
            .find(|p| p.spec().name_hints.iter().any(|hint| lower.contains(hint)))
            .unwrap_or(Profile::OpenAi)
    }

    /// Everything the proxy knows of the profile: the one dispatch by profile.
    pub fn spec(self) -> &'static Spec {
        match self {
            Profile::Glm => &glm::SPEC,
            Profile::Kimi => &kimi::SPEC,
            Profile::DeepSeek => &deepseek::SPEC,
            Profile::MiniMax => &minimax::SPEC,
            Profile::OpenAi => &openai::SPEC,
        }
    }

    /// The profile's switches.
    pub fn quirks(self) -> Quirks {
        let spec = self.spec();
        let mut q = (spec.quirks)();
        if spec.web_search.1 {
            q.web_search = spec.web_search.0;
        }
        q
    }

    /// The model families the profile knows.
    pub fn families(self) -> &'static [ModelFamily] {
        self.spec().families
    }

    /// The family of `model`: the longest matching prefix.
    pub fn family(self, model: &str) -> Option<&'static ModelFamily> {
        self.families()
            .iter()
            .filter(|f| {
                model
                    .get(..f.prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(f.prefix))
            })
            .max_by_key(|f| f.prefix.len())
    }

    /// The shipped price of `model`: its longest matching prefix (ASCII case-insensitive).
    pub fn price(self, model: &str) -> Option<crate::spend::Price> {
        self.spec()
            .prices
            .iter()
            .filter(|(prefix, _)| {
                model
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, p)| *p)
    }

    /// The retirement of `model`, if the profile knows of one.
    pub fn retirement(self, model: &str) -> Option<&'static Retirement> {
        self.spec()
            .retired
            .iter()
            .find(|r| r.model.eq_ignore_ascii_case(model))
    }

    /// The default model metadata of the profile, for a model of no known family. An
    /// explicit `context_window` in the config is always better.
    pub fn model_defaults(self) -> ModelDefaults {
        (self.spec().model_defaults)()
    }

    /// The default model metadata of `model`: the profile's, with the values of the model's
    /// family (longest prefix) in their place.
    pub fn model_defaults_for(self, model: &str) -> ModelDefaults {
        let mut d = self.model_defaults();
        if let Some(f) = self.family(model) {
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

    /// What an error from this provider means, when it is one Codex reacts to: its own
    /// error `code` (an error body's `code`, ASCII lowercase), or a phrase of its own in the
    /// message.
    pub fn error_means(self, code: &str, message: &str, what: ErrorCode) -> bool {
        let spec = self.spec();
        (spec.error_code)(code) == Some(what)
            || spec
                .error_phrases
                .iter()
                .any(|(phrase, means)| *means == what && message.contains(phrase))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider's own error code means, for the errors Codex reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The prompt is too long for the model.
    ContextOverflow,
    /// The account's balance or quota is used up.
    InsufficientQuota,
    /// Too many requests.
    RateLimit,
    /// The provider is overloaded.
    Overloaded,
}

/// Everything the proxy knows of one provider, its data and its functions: one `static` in
/// each provider's file, reached by [`Profile::spec`].
pub struct Spec {
    pub profile: Profile,
    /// Words in a backend's name that pick this profile (lowercase).
    pub name_hints: &'static [&'static str],
    /// The profile's switches ([`Profile::quirks`]).
    pub quirks: fn() -> Quirks,
    /// The model families the profile knows.
    pub families: &'static [ModelFamily],
    /// The model names the profile knows to be retired.
    pub retired: &'static [Retirement],
    /// Catalog defaults for a model of no known family ([`Profile::model_defaults`]).
    pub model_defaults: fn() -> ModelDefaults,
    /// What the provider's own error `code` (ASCII lowercase) means.
    pub error_code: fn(&str) -> Option<ErrorCode>,
    /// Phrases of the provider's error messages (compared as written) and what they mean.
    pub error_phrases: &'static [(&'static str, ErrorCode)],
    /// The provider's own web search (`None`: it has none in its Chat API), and whether a
    /// backend offers it unless it says `"web_search": "off"` (else only with `"native"`).
    pub web_search: (NativeSearch, bool),
    /// Shipped prices by model-name prefix (the longest matching one wins), each from the
    /// provider's page named in its file.
    pub prices: &'static [(&'static str, crate::spend::Price)],
}

/// For a provider with no error codes of its own.
fn no_error_code(_: &str) -> Option<ErrorCode> {
    None
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// The profile, for logs and `/health` (`profile.as_str()`).
    pub profile: Profile,
    /// Role for `developer`/`system` messages that appear after the conversation started.
    pub developer_role: &'static str,
    /// Send every message content as a plain string.
    pub flatten_content: bool,
    /// Remove `tools` and `tool_choice` entirely.
    pub drop_tools: bool,
    /// Only `tool_choice: "auto"` is accepted.
    pub tool_choice_auto_only: bool,
    /// `tool_choice: "required"` or a named function become `"auto"` (Kimi rejects them
    /// while thinking, which is on by default); `"none"` stays.
    pub tool_choice_required_to_auto: bool,
    /// Remove `strict` from function definitions.
    pub strip_strict: bool,
    /// Reasoning arrives as `<think>…</think>` inside `content`.
    pub think_tags: bool,
    /// Name of the output-token limit key.
    pub max_tokens_field: &'static str,
    pub passback: Passback,
    /// With `reasoning_content` passback: every assistant message with tool calls carries
    /// `reasoning_content`, an empty string when the turn had no reasoning (DeepSeek and
    /// Kimi reject a tool-call message without the field while thinking).
    pub require_reasoning_content: bool,
    /// `temperature` / `top_p` handling.
    pub sampling: Sampling,
    /// The provider takes image parts.
    pub images: bool,
    /// GLM: `tool_stream: true` to stream tool arguments.
    pub tool_stream: bool,
    pub effort: EffortStyle,
    /// `response_format: json_schema` supported (else downgraded to `json_object`).
    pub json_schema: bool,
    /// Assistant messages with tool calls carry `content: ""` instead of no content.
    pub empty_content_with_tool_calls: bool,
    /// The provider's own web search, offered for the hosted `web_search` tool.
    pub web_search: NativeSearch,
}

impl Quirks {
    /// The generic OpenAI-compatible baseline.
    pub const fn openai() -> Self {
        Quirks {
            profile: Profile::OpenAi,
            developer_role: "system",
            flatten_content: false,
            drop_tools: false,
            tool_choice_auto_only: false,
            tool_choice_required_to_auto: false,
            strip_strict: false,
            think_tags: false,
            max_tokens_field: "max_tokens",
            passback: Passback::ReasoningContent,
            require_reasoning_content: false,
            sampling: Sampling::Keep,
            images: true,
            tool_stream: false,
            effort: EffortStyle::ReasoningEffort,
            json_schema: true,
            empty_content_with_tool_calls: true,
            web_search: NativeSearch::None,
        }
    }
}

/// What a profile knows of one model family, matched by prefix on the model name (ASCII
/// case-insensitive; the longest matching prefix wins, wholly). `None` keeps the profile's
/// value. Kept as data next to each profile; the `models` metadata in the config still
/// overrides the catalog values, and `quirks` the switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFamily {
    pub prefix: &'static str,
    /// Tokens the model accepts (Codex's catalog `context_window`).
    pub context_window: Option<u64>,
    /// Tokens reserved for the answer in Codex's catalog (not the provider's output limit:
    /// Codex compacts before the input reaches `context_window - max_output_tokens`).
    pub max_output_tokens: Option<u64>,
    /// The family takes images: the catalog offers image input, and a backend whose `model`
    /// is of this family sends image parts (`images` on, `flatten_content` off).
    pub images: Option<bool>,
    /// `temperature` / `top_p` for a backend whose `model` is of this family.
    pub sampling: Option<Sampling>,
}

impl ModelFamily {
    /// A family with nothing overridden.
    pub const fn new(prefix: &'static str) -> Self {
        ModelFamily {
            prefix,
            context_window: None,
            max_output_tokens: None,
            images: None,
            sampling: None,
        }
    }

    /// Catalog window and answer reserve.
    pub const fn window(mut self, context_window: u64, max_output_tokens: u64) -> Self {
        self.context_window = Some(context_window);
        self.max_output_tokens = Some(max_output_tokens);
        self
    }

    pub const fn images(mut self, images: bool) -> Self {
        self.images = Some(images);
        self
    }

    pub const fn sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = Some(sampling);
        self
    }

    /// The switches of a backend whose `model` is of this family.
    pub fn apply(&self, q: &mut Quirks) {
        if let Some(images) = self.images {
            q.images = images;
            if images {
                q.flatten_content = false;
            }
        }
        if let Some(s) = self.sampling {
            q.sampling = s;
        }
    }
}

/// A model name the provider no longer serves as such.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    /// The exact model name (ASCII case-insensitive).
    pub model: &'static str,
    /// Since when (provider's date).
    pub since: &'static str,
    /// `true`: requests still answered, by another model (a legacy alias); `false`: the
    /// provider rejects the name.
    pub still_answered: bool,
    /// What to configure instead.
    pub instead: &'static str,
}

/// The quirks of a profile by name (`None` for an unknown name).
pub fn quirks_for(profile: &str) -> Option<Quirks> {
    Profile::parse(profile).map(Profile::quirks)
}

/// The switches of the profile [`Profile::resolve`] picks.
pub fn resolve(provider: Option<&str>, backend_name: &str) -> Quirks {
    Profile::resolve(provider, backend_name).quirks()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// One name per profile: parsed back, displayed and serialized (`/health`) as such.
    #[test]
    fn profile_names() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.as_str()), Some(p));
            assert_eq!(p.to_string(), p.as_str());
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert_eq!(p.quirks().profile, p);
            assert_eq!(p.spec().profile, p);
        }
        assert_eq!(Profile::parse("GLM"), None);
        assert_eq!(quirks_for("nope"), None);
    }

    /// Each profile's own error codes, and how an effort is described to Codex.
    #[test]
    fn error_codes_and_effort_descriptions() {
        assert!(Profile::Glm.error_means("1261", "", ErrorCode::ContextOverflow));
        assert!(Profile::Glm.error_means("1113", "", ErrorCode::InsufficientQuota));
        assert!(!Profile::Kimi.error_means("1261", "", ErrorCode::ContextOverflow));
        assert!(Profile::Kimi.error_means("", "余额不足", ErrorCode::InsufficientQuota));
        assert!(!Profile::DeepSeek.error_means("", "余额不足", ErrorCode::InsufficientQuota));
        let base_resp = |status: i64| {
            let v = serde_json::json!({"status_code": status});
            minimax::base_resp_error(&v).map(|e| (e.message.to_owned(), e.means))
        };
        assert_eq!(
            base_resp(1002),
            Some(("MiniMax error".to_owned(), Some(ErrorCode::RateLimit)))
        );
        assert_eq!(
            base_resp(1008).unwrap().1,
            Some(ErrorCode::InsufficientQuota)
        );
        assert_eq!(base_resp(2013).unwrap().1, None);
        assert_eq!(base_resp(0), None);
        // The description is derived from the encoding the converter sends.
        let d = |p: Profile, e: ReasoningEffort| p.quirks().effort.describe(e.as_str());
        assert_eq!(
            d(Profile::Glm, ReasoningEffort::None),
            "thinking: {type: disabled}"
        );
        assert_eq!(
            d(Profile::Glm, ReasoningEffort::High),
            "thinking: {type: enabled}"
        );
        assert_eq!(
            d(Profile::DeepSeek, ReasoningEffort::Minimal),
            "thinking: {type: disabled}"
        );
        assert_eq!(
            d(Profile::DeepSeek, ReasoningEffort::XHigh),
            "reasoning_effort: max"
        );
        assert_eq!(
            d(Profile::DeepSeek, ReasoningEffort::Low),
            "reasoning_effort: high"
        );
        for p in [Profile::Kimi, Profile::MiniMax] {
            assert_eq!(
                d(p, ReasoningEffort::High),
                "not forwarded: the model decides"
            );
        }
        assert_eq!(
            d(Profile::OpenAi, ReasoningEffort::Minimal),
            "reasoning_effort: minimal"
        );
    }

    #[test]
    fn profile_resolution() {
        assert_eq!(resolve(Some("minimax"), "x").profile, Profile::MiniMax);
        assert_eq!(resolve(None, "my-kimi").profile, Profile::Kimi);
        assert_eq!(resolve(None, "Moonshot-CN").profile, Profile::Kimi);
        assert_eq!(resolve(None, "zhipu").profile, Profile::Glm);
        assert_eq!(resolve(None, "local-vllm").profile, Profile::OpenAi);
        assert_eq!(
            resolve(Some("unknown"), "deepseek").profile,
            Profile::DeepSeek
        );
    }

    /// Each profile's model families: the longest prefix wins, case does not matter, an
    /// unknown model or profile has none.
    #[test]
    fn model_families_per_provider() {
        let window = |profile: &str, model: &str| {
            Profile::parse(profile)
                .and_then(|p| p.family(model))
                .map(|f| (f.prefix, f.context_window, f.images))
        };
        // GLM: 200K from GLM-4.6 on, 1M for GLM-5.2; the vision models keep the profile's.
        assert_eq!(window("glm", "glm-5"), Some(("glm-5", Some(200_000), None)));
        assert_eq!(window("glm", "GLM-5.1").unwrap().1, Some(200_000));
        assert_eq!(window("glm", "glm-5.2").unwrap().1, Some(1_000_000));
        assert_eq!(window("glm", "glm-4.7").unwrap().1, Some(200_000));
        assert_eq!(window("glm", "glm-4.6v").unwrap(), ("glm-4.6v", None, None));
        assert_eq!(window("glm", "glm-4.5"), None);
        // Kimi: K2.6 takes images; moonshot-v1 windows by name, sampling kept.
        assert_eq!(window("kimi", "kimi-k2.6").unwrap().2, Some(true));
        assert_eq!(window("kimi", "kimi-k2.5"), None);
        assert_eq!(window("kimi", "moonshot-v1-8k").unwrap().1, Some(8_192));
        assert_eq!(window("kimi", "moonshot-v1-32k").unwrap().1, Some(32_768));
        assert_eq!(window("kimi", "moonshot-v1-128k").unwrap().1, Some(131_072));
        assert!(Profile::Kimi
            .families()
            .iter()
            .filter(|f| f.prefix.starts_with("moonshot-v1"))
            .all(|f| f.sampling == Some(Sampling::Keep)));
        // DeepSeek: one window for all (the profile's); images on V4.1-Flash only.
        assert_eq!(
            window("deepseek", "deepseek-flash"),
            Some(("deepseek-flash", None, Some(true)))
        );
        assert_eq!(window("deepseek", "deepseek-v4-pro"), None);
        // MiniMax: M3 1M with images; M2.x keep the profile's 204,800.
        assert_eq!(
            window("minimax", "minimax-m3"),
            Some(("MiniMax-M3", Some(1_000_000), Some(true)))
        );
        assert_eq!(window("minimax", "MiniMax-M2.7"), None);
        // Unknown profiles and models.
        assert_eq!(window("openai", "glm-5"), None);
        assert_eq!(window("nope", "glm-5"), None);
        assert_eq!(window("glm", ""), None);
        assert_eq!(window("glm", "glm-"), None);
        // Every table: prefixes unique, reserves inside their windows.
        for p in Profile::ALL {
            let fams = p.families();
            for (i, f) in fams.iter().enumerate() {
                assert!(
                    fams[..i]
                        .iter()
                        .all(|g| !g.prefix.eq_ignore_ascii_case(f.prefix)),
                    "{p}: {}",
                    f.prefix
                );
                if let (Some(cw), Some(out)) = (f.context_window, f.max_output_tokens) {
                    assert!(out < cw, "{p}: {}", f.prefix);
                }
            }
        }
    }

    #[test]
    fn family_switches_and_retirements() {
        let mut q = quirks_for("minimax").unwrap();
        Profile::MiniMax.family("MiniMax-M3").unwrap().apply(&mut q);
        assert!(q.images && !q.flatten_content);
        let mut q = quirks_for("kimi").unwrap();
        Profile::Kimi
            .family("moonshot-v1-32k")
            .unwrap()
            .apply(&mut q);
        assert_eq!(q.sampling, Sampling::Keep);
        let mut q = quirks_for("deepseek").unwrap();
        Profile::DeepSeek
            .family("deepseek-flash")
            .unwrap()
            .apply(&mut q);
        assert!(q.images && !q.flatten_content);

        let retirement = |p: &str, model: &str| Profile::parse(p).and_then(|p| p.retirement(model));
        let r = retirement("deepseek", "DeepSeek-Chat").unwrap();
        assert_eq!((r.since, r.still_answered), ("2026-07-24", false));
        assert!(
            !retirement("deepseek", "deepseek-reasoner")
                .unwrap()
                .still_answered
        );
        assert!(
            retirement("deepseek", "deepseek-v4-flash")
                .unwrap()
                .still_answered
        );
        assert_eq!(retirement("deepseek", "deepseek-flash"), None);
        assert_eq!(retirement("deepseek", "deepseek-v4-pro"), None);
        assert_eq!(retirement("openai", "deepseek-chat"), None);
    }

    #[test]
    fn sampling_policies() {
        assert_eq!(Sampling::Keep.apply(Some(1.7)), Some(1.7));
        assert_eq!(Sampling::Drop.apply(Some(1.0)), None);
        assert_eq!(Sampling::UnitInterval.apply(Some(1.7)), Some(1.0));
        assert_eq!(Sampling::UnitInterval.apply(Some(0.0)), Some(0.01));
        assert_eq!(Sampling::UnitInterval.apply(Some(0.4)), Some(0.4));
        assert_eq!(Sampling::UnitInterval.apply(None), None);
        assert_eq!(Sampling::Keep.apply(Some(f64::NAN)), None);
    }

    /// The switches of each profile, as documented in the README's table.
    #[test]
    fn profile_defaults() {
        let glm = quirks_for("glm").unwrap();
        assert!(glm.tool_choice_auto_only && glm.strip_strict && glm.tool_stream);
        assert_eq!(glm.sampling, Sampling::UnitInterval);
        let kimi = quirks_for("kimi").unwrap();
        assert!(kimi.tool_choice_required_to_auto && kimi.require_reasoning_content);
        assert_eq!(
            (kimi.max_tokens_field, kimi.sampling),
            ("max_completion_tokens", Sampling::Drop)
        );
        let ds = quirks_for("deepseek").unwrap();
        assert!(ds.require_reasoning_content && !ds.images);
        assert_eq!(ds.effort, EffortStyle::DeepSeek);
        let mm = quirks_for("minimax").unwrap();
        assert!(mm.tool_choice_auto_only && mm.strip_strict && mm.think_tags);
        assert_eq!(
            (mm.passback, mm.sampling),
            (Passback::ThinkTags, Sampling::UnitInterval)
        );
        assert_eq!(quirks_for("openai").unwrap(), Quirks::openai());
    }

    fn convert(body: serde_json::Value, q: &Quirks) -> serde_json::Value {
        use crate::convert::request::{convert_request, parse_request, RequestOptions};
        let body = body.to_string();
        let req = parse_request(body.as_bytes()).unwrap();
        let opts = RequestOptions {
            tools: None,
            quirks: q,
            model_override: None,
            id_seed: Some(1),
            chain_resolved: false,
        };
        serde_json::to_value(convert_request(req, &opts).unwrap().chat).unwrap()
    }

    #[test]
    fn profile_request_switches() {
        use serde_json::json;
        let tools = json!([{"type": "function", "name": "f", "strict": true,
            "parameters": {"type": "object", "properties": {}}}]);
        let body = |choice: serde_json::Value| {
            json!({"model": "m", "input": "hi", "stream": true, "tools": tools,
                "tool_choice": choice, "temperature": 1.5, "top_p": 0.0,
                "max_output_tokens": 64})
        };
        // Kimi: required / named → auto, none kept; sampling dropped; max_completion_tokens.
        let kimi = quirks_for("kimi").unwrap();
        let chat = convert(body(json!("required")), &kimi);
        assert_eq!(chat["tool_choice"], "auto");
        assert!(chat.get("temperature").is_none() && chat.get("top_p").is_none());
        assert_eq!(chat["max_completion_tokens"], 64);
        let chat = convert(body(json!({"type": "function", "name": "f"})), &kimi);
        assert_eq!(chat["tool_choice"], "auto");
        assert_eq!(convert(body(json!("none")), &kimi)["tool_choice"], "none");
        // The generic profile passes everything through.
        let chat = convert(body(json!("required")), &Quirks::openai());
        assert_eq!(chat["tool_choice"], "required");
        assert_eq!(
            (chat["temperature"].clone(), chat["top_p"].clone()),
            (json!(1.5), json!(0.0))
        );
        // MiniMax: (0, 1], auto only, no strict, no parallel_tool_calls.
        let chat = convert(body(json!("required")), &quirks_for("minimax").unwrap());
        assert_eq!(
            (chat["temperature"].clone(), chat["top_p"].clone()),
            (json!(1.0), json!(0.01))
        );
        assert_eq!(chat["tool_choice"], "auto");
        assert!(chat["tools"][0]["function"].get("strict").is_none());
        assert!(chat.get("parallel_tool_calls").is_none());
        // DeepSeek: effort none → thinking disabled; xhigh → max.
        let ds = quirks_for("deepseek").unwrap();
        let chat = convert(
            json!({"model": "m", "input": "hi", "reasoning": {"effort": "none"}}),
            &ds,
        );
        assert_eq!(chat["thinking"], json!({"type": "disabled"}));
        assert!(chat.get("reasoning_effort").is_none());
        let chat = convert(
            json!({"model": "m", "input": "hi", "reasoning": {"effort": "xhigh"}}),
            &ds,
        );
        assert_eq!(chat["reasoning_effort"], "max");
    }

    #[test]
    fn reasoning_content_required_on_tool_calls() {
        use serde_json::json;
        // A tool-call turn without any reasoning item.
        let body = json!({"model": "m", "input": [
            {"type": "message", "role": "user", "content": "go"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"}]});
        for (profile, expect) in [
            ("deepseek", true),
            ("kimi", true),
            ("openai", false),
            ("glm", false),
        ] {
            let chat = convert(body.clone(), &quirks_for(profile).unwrap());
            let asst = &chat["messages"][1];
            assert_eq!(asst["role"], "assistant");
            assert_eq!(
                asst.get("reasoning_content") == Some(&json!("")),
                expect,
                "{profile}"
            );
        }
        // With passback switched off nothing is added.
        let mut q = quirks_for("deepseek").unwrap();
        q.passback = Passback::None;
        assert!(convert(body, &q)["messages"][1]
            .get("reasoning_content")
            .is_none());
    }
}
