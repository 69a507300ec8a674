//! Generic OpenAI-compatible profile: Qwen/DashScope, OpenRouter, vLLM, Ollama, ...

use super::{InputModality, ModelDefaults, Quirks, ReasoningEffort};

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
