//! Generic OpenAI-compatible profile: Qwen/DashScope, OpenRouter, vLLM, Ollama, ...

use super::Quirks;

pub fn quirks() -> Quirks {
    Quirks::openai()
}
