//! Generic OpenAI-compatible profile: Qwen/DashScope, OpenRouter, vLLM, Ollama, ...

use super::{InputModality, ModelDefaults, NativeSearch, Profile, Quirks, ReasoningEffort, Spec};

/// The generic profile: picked by no name, no models or error codes of its own.
pub static SPEC: Spec = Spec {
    profile: Profile::OpenAi,
    name_hints: &[],
    quirks,
    families: &[],
    retired: &[],
    model_defaults,
    error_code: super::no_error_code,
    error_phrases: &[],
    web_search: (NativeSearch::None, false),
    prices: &[],
};

pub fn quirks() -> Quirks {
    Quirks::openai()
}

/// Catalog defaults: `reasoning_effort` sent as given (three levels), images as parts.
pub fn model_defaults() -> ModelDefaults {
    ModelDefaults {
        context_window: 128_000,
        max_output_tokens: 16_384,
        reasoning: true,
        default_effort: None,
        efforts: vec![
            ReasoningEffort::Low,
            ReasoningEffort::Medium,
            ReasoningEffort::High,
        ],
        input_modalities: vec![InputModality::Text, InputModality::Image],
        parallel_tool_calls: true,
    }
}
