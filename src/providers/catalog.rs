//! What a provider profile offers Codex's model catalog: the reasoning efforts and input
//! modalities (as Codex names them) and a profile's default model metadata. Also the value
//! types of the config's model metadata (`crate::config` re-exports them).

/// A reasoning effort as Codex names it (`model_reasoning_effort`, catalog levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

impl ReasoningEffort {
    /// Every effort, from the lightest to the heaviest.
    pub const ALL: [ReasoningEffort; 6] = [
        ReasoningEffort::None,
        ReasoningEffort::Minimal,
        ReasoningEffort::Low,
        ReasoningEffort::Medium,
        ReasoningEffort::High,
        ReasoningEffort::XHigh,
    ];

    /// The wire name (`"none"`, …, `"xhigh"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::XHigh => "xhigh",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// An input modality Codex may send to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InputModality {
    Text,
    Image,
}

impl InputModality {
    pub fn as_str(self) -> &'static str {
        match self {
            InputModality::Text => "text",
            InputModality::Image => "image",
        }
    }
}

/// Default model metadata of a provider profile (Codex's catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDefaults {
    pub context_window: u64,
    pub max_output_tokens: u64,
    pub reasoning: bool,
    pub default_effort: Option<ReasoningEffort>,
    /// Efforts offered when reasoning is supported (what the profile can forward).
    pub efforts: Vec<ReasoningEffort>,
    pub input_modalities: Vec<InputModality>,
    pub parallel_tool_calls: bool,
}
