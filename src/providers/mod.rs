//! Provider profiles: what each Chat Completions provider accepts and how it answers.
//!
//! Quirks are data (a struct of switches), chosen by profile and overridable per backend.
//! Pure: nothing here touches the network or Pingora.

use serde::Deserialize;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// Profile name, for logs and `/health`.
    pub profile: &'static str,
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
}

impl Quirks {
    /// The generic OpenAI-compatible baseline.
    pub const fn openai() -> Self {
        Quirks {
            profile: "openai",
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

/// The model families a profile knows (empty for an unknown profile).
pub fn families(profile: &str) -> &'static [ModelFamily] {
    match profile {
        "glm" => glm::FAMILIES,
        "kimi" => kimi::FAMILIES,
        "deepseek" => deepseek::FAMILIES,
        "minimax" => minimax::FAMILIES,
        _ => &[],
    }
}

/// The model names a profile knows to be retired.
pub fn retirements(profile: &str) -> &'static [Retirement] {
    match profile {
        "deepseek" => deepseek::RETIRED,
        _ => &[],
    }
}

/// The family of `model` under `profile`: the longest matching prefix.
pub fn family(profile: &str, model: &str) -> Option<&'static ModelFamily> {
    families(profile)
        .iter()
        .filter(|f| {
            model
                .get(..f.prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(f.prefix))
        })
        .max_by_key(|f| f.prefix.len())
}

/// The retirement of `model` under `profile`, if the profile knows of one.
pub fn retirement(profile: &str, model: &str) -> Option<&'static Retirement> {
    retirements(profile)
        .iter()
        .find(|r| r.model.eq_ignore_ascii_case(model))
}

/// Names of the known profiles.
pub const PROFILES: &[&str] = &["glm", "kimi", "deepseek", "minimax", "openai"];

/// The quirks of a profile by name (`None` for an unknown name).
pub fn quirks_for(profile: &str) -> Option<Quirks> {
    match profile {
        "glm" => Some(glm::quirks()),
        "kimi" => Some(kimi::quirks()),
        "deepseek" => Some(deepseek::quirks()),
        "minimax" => Some(minimax::quirks()),
        "openai" => Some(openai::quirks()),
        _ => None,
    }
}

/// Pick the profile: an explicit `provider`, else a known name inside the backend name, else
/// the generic profile.
pub fn resolve(provider: Option<&str>, backend_name: &str) -> Quirks {
    if let Some(q) = provider.and_then(quirks_for) {
        return q;
    }
    let lower = backend_name.to_ascii_lowercase();
    for name in ["glm", "zhipu", "kimi", "moonshot", "deepseek", "minimax"] {
        if lower.contains(name) {
            let profile = match name {
                "zhipu" => "glm",
                "moonshot" => "kimi",
                other => other,
            };
            if let Some(q) = quirks_for(profile) {
                return q;
            }
        }
    }
    openai::quirks()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn profile_resolution() {
        assert_eq!(resolve(Some("minimax"), "x").profile, "minimax");
        assert_eq!(resolve(None, "my-kimi").profile, "kimi");
        assert_eq!(resolve(None, "Moonshot-CN").profile, "kimi");
        assert_eq!(resolve(None, "zhipu").profile, "glm");
        assert_eq!(resolve(None, "local-vllm").profile, "openai");
        assert_eq!(resolve(Some("unknown"), "deepseek").profile, "deepseek");
    }

    /// Each profile's model families: the longest prefix wins, case does not matter, an
    /// unknown model or profile has none.
    #[test]
    fn model_families_per_provider() {
        let window = |profile: &str, model: &str| {
            family(profile, model).map(|f| (f.prefix, f.context_window, f.images))
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
        assert!(families("kimi")
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
        for p in PROFILES {
            let fams = families(p);
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
        family("minimax", "MiniMax-M3").unwrap().apply(&mut q);
        assert!(q.images && !q.flatten_content);
        let mut q = quirks_for("kimi").unwrap();
        family("kimi", "moonshot-v1-32k").unwrap().apply(&mut q);
        assert_eq!(q.sampling, Sampling::Keep);
        let mut q = quirks_for("deepseek").unwrap();
        family("deepseek", "deepseek-flash").unwrap().apply(&mut q);
        assert!(q.images && !q.flatten_content);

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
        let req = parse_request(body.to_string().as_bytes()).unwrap();
        let opts = RequestOptions {
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
