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
//!   <https://platform.kimi.ai/docs/api/chat>.
//!
//! Second-hand (issue threads, other bridges):
//! - 400 "thinking is enabled but reasoning_content is missing in assistant tool call message
//!   at index N" (QuantumNous/new-api#3121);
//! - 400 "tool_choice specified is incompatible with thinking enabled" for `required` or a
//!   named function (can1357/oh-my-pi#1077; OpenClaw's Moonshot notes);
//! - 400 "invalid temperature: only 1 is allowed for this model" (CherryHQ/cherry-studio#14573);
//! - streamed usage sits in `choices[0].usage` of the finish chunk (higress-group/higress#1568,
//!   earendil-works/pi#2017).

use super::{EffortStyle, Quirks, Sampling};

pub fn quirks() -> Quirks {
    Quirks {
        profile: "kimi",
        developer_role: "system",
        tool_choice_required_to_auto: true,
        max_tokens_field: "max_completion_tokens",
        require_reasoning_content: true,
        sampling: Sampling::Drop,
        effort: EffortStyle::Drop,
        ..Quirks::openai()
    }
}
