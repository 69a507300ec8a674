//! DeepSeek: OpenAI compatible.
//!
//! Provider docs:
//! - thinking mode: `reasoning_content` of a turn with tool calls must be passed back in all
//!   later requests (400 otherwise); `thinking: {type: enabled | disabled}` (default enabled);
//!   `reasoning_effort` high / max; temperature and top_p are ignored while thinking —
//!   <https://api-docs.deepseek.com/guides/thinking_mode>;
//! - `response_format` is `{type: json_object}` only, and the prompt must say "json" —
//!   <https://api-docs.deepseek.com/guides/json_mode>;
//! - usage carries `prompt_cache_hit_tokens` / `prompt_cache_miss_tokens` —
//!   <https://api-docs.deepseek.com/guides/kv_cache>;
//! - models (stored copy of the pricing page, read 2026-12-01): `deepseek-flash`
//!   (DeepSeek-V4.1-Flash, image understanding) and `deepseek-v4-pro` (DeepSeek-V4-Pro, no
//!   images), both 1M context, up to 384K output, thinking on by default (effort `high`);
//!   the old name `deepseek-v4-flash` is still answered, by V4.1-Flash —
//!   <https://api-docs.deepseek.com/zh-cn/quick_start/pricing>. The catalog defaults (1M
//!   window, 64K answer reserve, efforts none / high / xhigh) are in [`model_defaults`].
//!
//! `deepseek-chat` and `deepseek-reasoner` stopped on 2026-07-24 15:59 UTC (DeepSeek's V4
//! release note, <https://api-docs.deepseek.com/news/news260424>, not in the store: as quoted
//! by the issue and by other projects' migration notes).
//!
//! Second-hand: an assistant tool-call message whose turn had no reasoning still needs
//! `reasoning_content` (an empty string) while thinking (deepseek-ai/deepseek-harness#739,
//! #1850). Images are off for the profile and on for the `deepseek-flash` family only; the
//! image part format (OpenAI `image_url`) is assumed, not verified.

use crate::spend::Price;

use super::{
    EffortStyle, InputModality, ModelDefaults, ModelFamily, NativeSearch, Profile, Quirks,
    ReasoningEffort, Retirement, Spec,
};

/// The DeepSeek profile (no error codes of its own).
pub static SPEC: Spec = Spec {
    profile: Profile::DeepSeek,
    name_hints: &["deepseek"],
    quirks,
    families: FAMILIES,
    retired: RETIRED,
    model_defaults,
    error_code: super::no_error_code,
    error_phrases: &[],
    web_search: (NativeSearch::DeepSeek, false),
    prices: PRICES,
};
/// Shipped prices, USD per million tokens (input, cached input, output) — DeepSeek's price
/// page <https://api-docs.deepseek.com/quick_start/pricing> (versions DeepSeek-V4-Pro-0813
/// and V4.1-Flash-1017), stored copy read 2026-12-03. DeepSeek charges half off peak
/// (weekdays outside 01:00–04:00 and 06:00–10:00 UTC, weekends, Chinese holidays): the
/// proxy counts the peak price, so a budget errs on the safe side (set `prices` to the
/// off-peak figures — Pro 0.66 / 0.022 / 1.98, Flash 0.15 / 0.003 / 0.60 — to count those).
pub const PRICES: &[(&str, Price)] = &[
    ("deepseek-v4-pro", Price::usd(1.32, 0.044, 3.96)),
    ("deepseek-flash", Price::usd(0.30, 0.006, 1.20)),
    // The older name, answered (and billed) by V4.1-Flash.
    ("deepseek-v4-flash", Price::usd(0.30, 0.006, 1.20)),
];

/// The server tool's type. Its Chat Completions form is not in the stored docs (only the
/// Messages example, `{"type": "deepseek_web_search", "name": ...}`): offered only to a
/// backend that says `"web_search": "native"`.
pub const WEB_SEARCH: &str = "deepseek_web_search";

/// Per-model differences from the profile's defaults (one window for all current models).
pub const FAMILIES: &[ModelFamily] = &[
    // V4.1-Flash takes images; V4-Pro does not (pricing page, "图像理解").
    ModelFamily::new("deepseek-flash").images(true),
];

/// Names DeepSeek no longer serves as such (`--check` warns).
pub const RETIRED: &[Retirement] = &[
    Retirement {
        model: "deepseek-chat",
        since: "2026-07-24",
        still_answered: false,
        instead: "deepseek-flash (reasoning effort none = thinking off)",
    },
    Retirement {
        model: "deepseek-reasoner",
        since: "2026-07-24",
        still_answered: false,
        instead: "deepseek-flash or deepseek-v4-pro (thinking is on by default)",
    },
    Retirement {
        model: "deepseek-v4-flash",
        since: "2026-10 (pricing page)",
        still_answered: true,
        instead: "deepseek-flash (the model now answering this name)",
    },
    Retirement {
        model: "deepseek-v4-flash-vision-exp",
        since: "2026-10 (pricing page)",
        still_answered: true,
        instead: "deepseek-flash (the model now answering this name)",
    },
];

pub fn quirks() -> Quirks {
    Quirks {
        profile: Profile::DeepSeek,
        developer_role: "system",
        images: false,
        require_reasoning_content: true,
        effort: EffortStyle::DeepSeek,
        json_schema: false,
        ..Quirks::openai()
    }
}

/// Catalog defaults (V4): a 1M window for every current model, thinking on by default
/// (effort high); `none` = `thinking: disabled`, `reasoning_effort: high | max`; no images
/// (but see [`FAMILIES`]). 64K of the 384K output reserved.
pub fn model_defaults() -> ModelDefaults {
    ModelDefaults {
        context_window: 1_000_000,
        max_output_tokens: 65_536,
        reasoning: true,
        default_effort: None,
        efforts: vec![
            ReasoningEffort::None,
            ReasoningEffort::High,
            ReasoningEffort::XHigh,
        ],
        input_modalities: vec![InputModality::Text],
        parallel_tool_calls: true,
    }
}
