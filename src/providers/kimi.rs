//! Kimi (Moonshot): OpenAI compatible; `reasoning_content` must come back on assistant
//! tool-call messages while thinking; usage may sit in `choices[0].usage`.

use super::{EffortStyle, Quirks};

pub fn quirks() -> Quirks {
    Quirks {
        profile: "kimi",
        developer_role: "system",
        effort: EffortStyle::Drop,
        ..Quirks::openai()
    }
}
