//! MiniMax: rejects role `developer`; one leading `system` message only; content as a
//! string; reasoning as `<think>…</think>` inside `content`, which must come back unchanged;
//! `max_completion_tokens`.

use super::{EffortStyle, Passback, Quirks};

pub fn quirks() -> Quirks {
    Quirks {
        profile: "minimax",
        developer_role: "user",
        flatten_content: true,
        think_tags: true,
        max_tokens_field: "max_completion_tokens",
        passback: Passback::ThinkTags,
        effort: EffortStyle::Drop,
        json_schema: false,
        ..Quirks::openai()
    }
}
