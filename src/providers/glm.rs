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
//! - `max_tokens`; `developer` is not one of its roles (system, user, assistant, tool).
//!
//! Second-hand: no `strict` in function schemas, temperature/top_p within (0, 1] (GLM
//! adapters of AgentScope, LangChain and Dify), `json_schema` not supported.

use super::{EffortStyle, Quirks, Sampling};

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
        sampling: Sampling::UnitInterval,
        ..Quirks::openai()
    }
}
