//! Provider profiles: what each Chat Completions provider accepts and how it answers.
//!
//! Quirks are data (a struct of switches), chosen by profile and overridable per backend.
//! Pure: nothing here touches the network or Pingora.

pub mod deepseek;
pub mod glm;
pub mod kimi;
pub mod minimax;
pub mod openai;

/// How `reasoning.effort` is sent upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffortStyle {
    /// Not sent.
    Drop,
    /// `reasoning_effort: <effort>` as given.
    ReasoningEffort,
    /// DeepSeek: `reasoning_effort: high | max`.
    DeepSeek,
    /// GLM: `thinking: {type: enabled | disabled}`.
    GlmThinking,
}

/// How the provider's reasoning must come back on assistant messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passback {
    /// Not sent back.
    None,
    /// `reasoning_content` on the assistant message.
    ReasoningContent,
    /// `<think>…</think>` at the start of the assistant content (MiniMax).
    ThinkTags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// Profile name, for logs and `/health`.
    pub profile: &'static str,
    /// Role for `developer`/`system` messages that appear after the conversation started.
    pub developer_role: &'static str,
    /// Send every message content as a plain string.
    pub flatten_content: bool,
    /// Remove `tools` and `tool_choice` entirely.
    pub drop_tools: bool,
    /// Only `tool_choice: "auto"` is accepted.
    pub tool_choice_auto_only: bool,
    /// Remove `strict` from function definitions.
    pub strip_strict: bool,
    /// Reasoning arrives as `<think>…</think>` inside `content`.
    pub think_tags: bool,
    /// Name of the output-token limit key.
    pub max_tokens_field: &'static str,
    pub passback: Passback,
    /// The provider takes image parts.
    pub images: bool,
    /// GLM: `tool_stream: true` to stream tool arguments.
    pub tool_stream: bool,
    pub effort: EffortStyle,
    /// `response_format: json_schema` supported (else downgraded to `json_object`).
    pub json_schema: bool,
    /// Assistant messages with tool calls carry `content: ""` instead of no content.
    pub empty_content_with_tool_calls: bool,
}

impl Quirks {
    /// The generic OpenAI-compatible baseline.
    pub const fn openai() -> Self {
        Quirks {
            profile: "openai",
            developer_role: "system",
            flatten_content: false,
            drop_tools: false,
            tool_choice_auto_only: false,
            strip_strict: false,
            think_tags: false,
            max_tokens_field: "max_tokens",
            passback: Passback::ReasoningContent,
            images: true,
            tool_stream: false,
            effort: EffortStyle::ReasoningEffort,
            json_schema: true,
            empty_content_with_tool_calls: true,
        }
    }
}

/// Names of the known profiles.
pub const PROFILES: &[&str] = &["glm", "kimi", "deepseek", "minimax", "openai"];

/// The quirks of a profile by name (`None` for an unknown name).
pub fn quirks_for(profile: &str) -> Option<Quirks> {
    match profile {
        "glm" => Some(glm::quirks()),
        "kimi" => Some(kimi::quirks()),
        "deepseek" => Some(deepseek::quirks()),
        "minimax" => Some(minimax::quirks()),
        "openai" => Some(openai::quirks()),
        _ => None,
    }
}

/// Pick the profile: an explicit `provider`, else a known name inside the backend name, else
/// the generic profile.
pub fn resolve(provider: Option<&str>, backend_name: &str) -> Quirks {
    if let Some(q) = provider.and_then(quirks_for) {
        return q;
    }
    let lower = backend_name.to_ascii_lowercase();
    for name in ["glm", "zhipu", "kimi", "moonshot", "deepseek", "minimax"] {
        if lower.contains(name) {
            let profile = match name {
                "zhipu" => "glm",
                "moonshot" => "kimi",
                other => other,
            };
            if let Some(q) = quirks_for(profile) {
                return q;
            }
        }
    }
    openai::quirks()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_resolution() {
        assert_eq!(resolve(Some("minimax"), "x").profile, "minimax");
        assert_eq!(resolve(None, "my-kimi").profile, "kimi");
        assert_eq!(resolve(None, "Moonshot-CN").profile, "kimi");
        assert_eq!(resolve(None, "zhipu").profile, "glm");
        assert_eq!(resolve(None, "local-vllm").profile, "openai");
        assert_eq!(resolve(Some("unknown"), "deepseek").profile, "deepseek");
    }
}
