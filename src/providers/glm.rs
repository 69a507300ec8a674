//! GLM (Zhipu): `{base}/chat/completions` where the base carries `/api/paas/v4`; only
//! `tool_choice: "auto"`; no `strict`; `tool_stream: true` streams tool arguments;
//! `thinking: {type}` switches reasoning; `developer` is not a role it knows.

use super::{EffortStyle, Quirks};

pub fn quirks() -> Quirks {
    Quirks {
        profile: "glm",
        developer_role: "user",
        flatten_content: true,
        tool_choice_auto_only: true,
        strip_strict: true,
        tool_stream: true,
        effort: EffortStyle::GlmThinking,
        json_schema: false,
        ..Quirks::openai()
    }
}
