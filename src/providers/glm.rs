//! GLM (Zhipu / Z.AI): `{base}/chat/completions` where the base carries `/api/paas/v4`.
//!
//! Provider docs:
//! - `tool_choice`: "默认为auto，当前仅支持auto" (only `auto`) — BigModel chat API reference
//!   <https://docs.bigmodel.cn/api-reference/模型-api/对话补全>;
//! - `tool_stream: true` streams tool-call arguments (GLM-4.6+, needs `stream: true`) —
//!   <https://docs.bigmodel.cn/cn/guide/capabilities/stream-tool>;
//! - `thinking: {type: enabled | disabled}`; with tools the `reasoning_content` must come back
//!   with the tool results (interleaved thinking) —
//!   <https://docs.bigmodel.cn/cn/guide/capabilities/thinking-mode>;
//! - `max_tokens`; `developer` is not one of its roles (system, user, assistant, tool);
//! - GLM-5 (and GLM-5-Turbo): 200K context, 128K max output — BigModel model pages
//!   <https://docs.bigmodel.cn/cn/guide/models/text/glm-5> (not in the store itself: as quoted
//!   by a provider-config audit citing it, and the stored GLM-5-Turbo page of the same site);
//! - GLM-5.2: "solid 1M-token context" — Z.ai's model repository
//!   <https://github.com/zai-org/GLM-5> (README, stored copy read 2026-12-01).
//!
//! Second-hand for the catalog: GLM-4.6 and GLM-4.7 200K (202,752 in the model config);
//! older GLM-4.5 128K.
//!
//! Second-hand: no `strict` in function schemas, temperature/top_p within (0, 1] (GLM
//! adapters of AgentScope, LangChain and Dify), `json_schema` not supported.

use crate::spend::Price;

use super::{
    EffortStyle, ErrorCode, InputModality, ModelDefaults, ModelFamily, NativeSearch, Profile,
    Quirks, ReasoningEffort, Sampling, Spec,
};

/// The GLM profile.
pub static SPEC: Spec = Spec {
    profile: Profile::Glm,
    name_hints: &["glm", "zhipu"],
    quirks,
    families: FAMILIES,
    retired: &[],
    model_defaults,
    error_code,
    error_phrases: PHRASES,
    web_search: (NativeSearch::Glm, true),
    prices: PRICES,
};
/// Shipped prices, USD per million tokens (input, cached input, output) — Z.ai's price
/// page <https://docs.z.ai/guides/overview/pricing>, stored copy read 2026-12-03: GLM-5
/// 1.00 / 0.20 / 3.20, GLM-4.7 and GLM-4.6 0.60 / 0.11 / 2.20 (cache storage free). GLM-5.2
/// 1.40 / 0.26 / 4.40 is second-hand (not on the stored page).
pub const PRICES: &[(&str, Price)] = &[
    ("glm-5", Price::usd(1.00, 0.20, 3.20)),
    ("glm-5.2", Price::usd(1.40, 0.26, 4.40)),
    ("glm-4.7", Price::usd(0.60, 0.11, 2.20)),
    ("glm-4.6", Price::usd(0.60, 0.11, 2.20)),
];

/// The search engine asked for: `search_std`, the basic engine of BigModel's chat
/// `web_search` tool (`search_pro`, `search_pro_sogou`, `search_pro_quark` cost more).
pub const SEARCH_ENGINE: &str = "search_std";

/// Per-model differences from the profile's defaults (128,000 tokens: GLM-4.5 and older).
/// Answer reserves: 32K of the 128K the models may write, 64K in a 1M window.
pub const FAMILIES: &[ModelFamily] = &[
    ModelFamily::new("glm-4.6").window(200_000, 32_768),
    // The vision models' windows are not in the stored docs: kept at the profile's.
    ModelFamily::new("glm-4.6v"),
    ModelFamily::new("glm-4.7").window(200_000, 32_768),
    ModelFamily::new("glm-5").window(200_000, 32_768),
    ModelFamily::new("glm-5.2").window(1_000_000, 65_536),
];

pub fn quirks() -> Quirks {
    Quirks {
        profile: Profile::Glm,
        developer_role: "user",
        flatten_content: true,
        tool_choice_auto_only: true,
        strip_strict: true,
        tool_stream: true,
        effort: EffortStyle::GlmThinking,
        json_schema: false,
        sampling: Sampling::UnitInterval,
        ..Quirks::openai()
    }
}

/// Catalog defaults for a model of no known family (GLM-4.5 and older): `reasoning.effort`
/// becomes `thinking: {type: enabled | disabled}`, so two levels.
pub fn model_defaults() -> ModelDefaults {
    ModelDefaults {
        context_window: 128_000,
        max_output_tokens: 16_384,
        reasoning: true,
        default_effort: Some(ReasoningEffort::Medium),
        efforts: vec![ReasoningEffort::None, ReasoningEffort::Medium],
        input_modalities: vec![InputModality::Text],
        parallel_tool_calls: true,
    }
}

/// GLM's error codes: 1261 the prompt is too long, 1113 the balance is used up.
pub fn error_code(code: &str) -> Option<ErrorCode> {
    match code {
        "1261" => Some(ErrorCode::ContextOverflow),
        "1113" => Some(ErrorCode::InsufficientQuota),
        _ => None,
    }
}

/// Chinese phrases of GLM's (and Kimi's) error messages: the prompt is too long, the
/// balance is used up, the service is busy.
pub const PHRASES: &[(&str, ErrorCode)] = &[
    ("超过最大长度", ErrorCode::ContextOverflow),
    ("上下文长度", ErrorCode::ContextOverflow),
    ("超长", ErrorCode::ContextOverflow),
    ("余额", ErrorCode::InsufficientQuota),
    ("繁忙", ErrorCode::Overloaded),
];
