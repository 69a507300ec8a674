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
//!   <https://api-docs.deepseek.com/guides/kv_cache>.
//!
//! Second-hand: an assistant tool-call message whose turn had no reasoning still needs
//! `reasoning_content` (an empty string) while thinking (deepseek-ai/deepseek-harness#739,
//! #1850); no image input.

use super::{EffortStyle, Quirks};

pub fn quirks() -> Quirks {
    Quirks {
        profile: "deepseek",
        developer_role: "system",
        images: false,
        require_reasoning_content: true,
        effort: EffortStyle::DeepSeek,
        json_schema: false,
        ..Quirks::openai()
    }
}
