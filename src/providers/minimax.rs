//! MiniMax: `https://api.minimax.io/v1` (or `api.minimaxi.com`) + `/chat/completions`.
//!
//! Provider docs:
//! - `temperature` and `top_p` in (0, 1]; `max_completion_tokens` —
//!   <https://platform.minimax.io/docs/api-reference/text-chat>;
//! - reasoning as `<think>…</think>` inside `content` (unless `reasoning_split`), and the whole
//!   assistant message, `<think>` included, must come back unchanged in multi-turn tool use —
//!   <https://platform.minimax.io/docs/api-reference/text-openai-api>;
//! - error codes in `base_resp.status_code` (1002 rate limit, 1004 auth, 1008 balance, 2013
//!   invalid params) — <https://platform.minimax.io/docs/api-reference/errorcode>;
//! - context windows (stored copy read 2026-12-01): MiniMax-M3 1,000,000 ("frontier
//!   multimodal"); MiniMax-M2.7, M2.7-highspeed, M2.5, M2.5-highspeed 204,800 —
//!   <https://platform.minimax.io/docs/guides/text-generation>.
//!
//! Second-hand: 400 "invalid params, chat content has invalid message role: system (2013)"
//! for a system message after the first, "invalid chat setting (2013)" for two system messages
//! (can1357/oh-my-pi#954, BigPizzaV3/CodexPlusPlus#267); `developer` rejected; content as a
//! string; no `strict` and no documented `tool_choice` / `parallel_tool_calls` (AgentScope's
//! MiniMax formatter); a stream ends with a full `chat.completion` frame (GCWing/OpenBitFun#792).

use crate::spend::Price;

use super::{
    EffortStyle, ErrorCode, InputModality, ModelDefaults, ModelFamily, NativeSearch, Passback,
    Profile, Quirks, Sampling, Spec,
};

/// The MiniMax profile: its error codes are in `base_resp` ([`base_resp_error`]), not in
/// an error body's `code`.
pub static SPEC: Spec = Spec {
    profile: Profile::MiniMax,
    name_hints: &["minimax"],
    quirks,
    families: FAMILIES,
    retired: &[],
    model_defaults,
    error_code: super::no_error_code,
    error_phrases: &[],
    web_search: (NativeSearch::None, false),
    prices: PRICES,
};
/// Shipped prices, USD per million tokens (input, cached input, output) —
/// <https://platform.minimax.io/docs/guides/pricing-paygo> as cited by GoModel#551
/// (2026-07-19) and pydantic/genai-prices#442 (2026-07-02): MiniMax-M2.7 0.30 / 0.06 / 1.20
/// (cache writes 0.375, not reported by the API, so not counted), MiniMax-M3 0.30 / 0.06 /
/// 1.20 up to 512K input (the whole request at 0.60 / 0.12 / 2.40 above: not modelled);
/// MiniMax-M2.5 0.30 / 0.03 / 1.20 second-hand.
pub const PRICES: &[(&str, Price)] = &[
    ("minimax-m2.7", Price::usd(0.30, 0.06, 1.20)),
    ("minimax-m2.5", Price::usd(0.30, 0.03, 1.20)),
    ("minimax-m3", Price::usd(0.30, 0.06, 1.20)),
];

/// Per-model differences from the profile's defaults (204,800 tokens: the M2.x window).
pub const FAMILIES: &[ModelFamily] = &[
    // 1M window and image input; 64K answer reserve (M3's output limit is 512K by a
    // second-hand API reference, 128K recommended). Image parts need array content, so a
    // backend whose `model` is M3 does not flatten content.
    ModelFamily::new("MiniMax-M3")
        .window(1_000_000, 65_536)
        .images(true),
];

pub fn quirks() -> Quirks {
    Quirks {
        profile: Profile::MiniMax,
        developer_role: "user",
        flatten_content: true,
        tool_choice_auto_only: true,
        strip_strict: true,
        think_tags: true,
        max_tokens_field: "max_completion_tokens",
        passback: Passback::ThinkTags,
        sampling: Sampling::UnitInterval,
        effort: EffortStyle::Drop,
        json_schema: false,
        ..Quirks::openai()
    }
}

/// Catalog defaults for a model of no known family (M2.x): reasoning in `<think>` tags,
/// always on; the effort is not forwarded, so no levels.
pub fn model_defaults() -> ModelDefaults {
    ModelDefaults {
        context_window: 204_800,
        max_output_tokens: 32_768,
        reasoning: true,
        default_effort: None,
        efforts: Vec::new(),
        input_modalities: vec![InputModality::Text],
        parallel_tool_calls: true,
    }
}

/// An error MiniMax reports inside a 200 body: `base_resp` with a non-zero `status_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRespError<'a> {
    pub status: i64,
    /// `status_msg` (`"MiniMax error"` when there is none).
    pub message: &'a str,
    /// What the status means, for the codes Codex reacts to: 1002 rate limit, 1008 balance
    /// used up.
    pub means: Option<ErrorCode>,
}

/// The error in a `base_resp` object; `None` for success (`status_code` 0) or no status.
pub fn base_resp_error(base_resp: &serde_json::Value) -> Option<BaseRespError<'_>> {
    let status = base_resp.get("status_code")?.as_i64()?;
    if status == 0 {
        return None;
    }
    let message = base_resp
        .get("status_msg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("MiniMax error");
    let means = match status {
        1002 => Some(ErrorCode::RateLimit),
        1008 => Some(ErrorCode::InsufficientQuota),
        _ => None,
    };
    Some(BaseRespError {
        status,
        message,
        means,
    })
}
