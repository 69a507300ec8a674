//! DeepSeek: OpenAI compatible; `reasoning_content` must come back after tool calls in
//! thinking mode; `response_format` json_object only; no image input; cache-hit usage.

use super::{EffortStyle, Quirks};

pub fn quirks() -> Quirks {
    Quirks {
        profile: "deepseek",
        developer_role: "system",
        images: false,
        effort: EffortStyle::DeepSeek,
        json_schema: false,
        ..Quirks::openai()
    }
}
