//! Kimi (Moonshot): OpenAI compatible.
//!
//! Provider docs:
//! - thinking models (`kimi-k2.6`, `kimi-k2.5` by default, `kimi-k2-thinking` always) return
//!   `reasoning_content`, which must stay in the context for multi-step tool use —
//!   <https://platform.kimi.ai/docs/guide/use-kimi-k2-thinking-model>;
//! - `temperature`, `top_p` "cannot be modified" on kimi-k2.6 (fixed 1.0 thinking / 0.6
//!   otherwise on k2.5) — <https://platform.kimi.ai/docs/api/models-overview>,
//!   <https://platform.kimi.ai/docs/guide/migrating-from-openai-to-kimi>;
//! - `max_tokens` is deprecated for `max_completion_tokens` —
//!   <https://platform.kimi.ai/docs/api/chat>;
//! - parameter table (stored copy read 2026-12-01): kimi-k2.6 `temperature`, `top_p` (0.95),
//!   `n`, penalties "不可修改" (fixed), `thinking` supported; kimi-k2 0.6, kimi-k2-thinking 1.0,
//!   moonshot-v1 0.0 by default and modifiable —
//!   <https://platform.kimi.com/docs/api/models-overview>.
//!
//! Second-hand for the catalog: kimi-k2.6 has a 262,144-token window and takes images
//! (MoonViT encoder; model card and API write-ups); moonshot-v1-{8k,32k,128k} windows follow
//! the model names.
//!
//! Second-hand (issue threads, other bridges):
//! - 400 "thinking is enabled but reasoning_content is missing in assistant tool call message
//!   at index N" (QuantumNous/new-api#3121);
//! - 400 "tool_choice specified is incompatible with thinking enabled" for `required` or a
//!   named function (can1357/oh-my-pi#1077; OpenClaw's Moonshot notes);
//! - 400 "invalid temperature: only 1 is allowed for this model" (CherryHQ/cherry-studio#14573);
//! - streamed usage sits in `choices[0].usage` of the finish chunk (higress-group/higress#1568,
//!   earendil-works/pi#2017).

use crate::spend::Price;

use super::{
    EffortStyle, InputModality, ModelDefaults, ModelFamily, NativeSearch, Profile, Quirks,
    Sampling, Spec,
};

/// The Kimi profile. No error codes of its own; its Chinese error text uses GLM's phrases.
pub static SPEC: Spec = Spec {
    profile: Profile::Kimi,
    name_hints: &["kimi", "moonshot"],
    quirks,
    families: FAMILIES,
    retired: &[],
    model_defaults,
    error_code: super::no_error_code,
    error_phrases: super::glm::PHRASES,
    web_search: (NativeSearch::Kimi, true),
    prices: PRICES,
};
/// Shipped prices, USD per million tokens (input, cached input, output) —
/// <https://platform.kimi.ai/docs/pricing/chat-k26> and `…/chat-k3` as cited by
/// simonw/llm-prices#60 (2026-05-20) and BerriAI/litellm#35592 (2026-08-02); the stored
/// pages themselves held no table: kimi-k2.6 0.95 / 0.16 / 4.00, kimi-k3 3.00 / 0.30 /
/// 15.00; kimi-k2.5 0.60 / 0.10 / 3.00 second-hand.
pub const PRICES: &[(&str, Price)] = &[
    ("kimi-k2.6", Price::usd(0.95, 0.16, 4.00)),
    ("kimi-k2.5", Price::usd(0.60, 0.10, 3.00)),
    ("kimi-k3", Price::usd(3.00, 0.30, 15.00)),
];

/// The builtin search function's name; its call is answered by sending its arguments back
/// unchanged as the tool message.
pub const WEB_SEARCH: &str = "$web_search";

/// Per-model differences from the profile's defaults (262,144 tokens, text, sampling fixed).
pub const FAMILIES: &[ModelFamily] = &[
    ModelFamily::new("kimi-k2.6").images(true),
    // The older generation takes sampling parameters; its window is in its name (`-auto`
    // picks one: the smallest is assumed).
    ModelFamily::new("moonshot-v1")
        .window(8_192, 2_048)
        .sampling(Sampling::Keep),
    ModelFamily::new("moonshot-v1-32k")
        .window(32_768, 8_192)
        .sampling(Sampling::Keep),
    ModelFamily::new("moonshot-v1-128k")
        .window(131_072, 16_384)
        .sampling(Sampling::Keep),
];

pub fn quirks() -> Quirks {
    Quirks {
        profile: Profile::Kimi,
        developer_role: "system",
        tool_choice_required_to_auto: true,
        max_tokens_field: "max_completion_tokens",
        require_reasoning_content: true,
        sampling: Sampling::Drop,
        effort: EffortStyle::Drop,
        ..Quirks::openai()
    }
}

/// Catalog defaults for a model of no known family: reasoning depends on the model, and the
/// effort is not forwarded, so no levels.
pub fn model_defaults() -> ModelDefaults {
    ModelDefaults {
        context_window: 262_144,
        max_output_tokens: 32_768,
        reasoning: true,
        default_effort: None,
        efforts: Vec::new(),
        input_modalities: vec![InputModality::Text],
        parallel_tool_calls: true,
    }
}
