//! The pure conversion core: Responses request → Chat request, Chat stream/JSON → Responses
//! events/object. Nothing here touches Pingora or the network.

pub mod error;
pub mod events;
pub mod freeform;
pub mod ids;
mod messages;
pub mod request;
pub mod response;
pub mod sniff;
pub mod streaming;
pub mod think;
pub mod tools;

use std::sync::Arc;

use crate::providers::Quirks;

/// What a request held that the proxy does not convert: the dialect guard counts each in
/// `ccp_unconverted_total{kind, type}` and logs it once per type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unconverted {
    pub kind: UnconvertedKind,
    /// The item, part or tool type, or the member's name.
    pub ty: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnconvertedKind {
    Item,
    Part,
    Tool,
    Member,
}

impl UnconvertedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnconvertedKind::Item => "item",
            UnconvertedKind::Part => "part",
            UnconvertedKind::Tool => "tool",
            UnconvertedKind::Member => "member",
        }
    }
}

impl Unconverted {
    pub fn new(kind: UnconvertedKind, ty: impl Into<String>) -> Self {
        Unconverted {
            kind,
            ty: ty.into(),
        }
    }
}
use tools::ToolCatalog;

/// What the response side needs to know about the request: echoed fields, the tool
/// catalogue (to restore namespace and custom calls), the provider's quirks.
#[derive(Debug, Clone)]
pub struct ResponseContext {
    pub response_id: String,
    pub created_at: u64,
    /// The model name to report (the client's, or the backend's override).
    pub model: String,
    pub stream: bool,
    pub catalog: Arc<ToolCatalog>,
    pub quirks: Quirks,
    /// Emit the raw reasoning text as item `content` (the request's `include` lists
    /// `"reasoning.text"`).
    pub include_reasoning_text: bool,
    /// Request fields echoed on the Response object (OpenAI and Open Responses require them),
    /// rendered once as JSON members (see [`response::echo_members`]). Shared: `tools` and
    /// `instructions` alone can be tens of KB, and every Response object of a turn has them.
    pub echo: Arc<str>,
    /// Seed for item ids (fixed in tests for reproducible output).
    pub id_seed: u64,
    /// A fixed clock for `completed_at` (tests); the system clock otherwise.
    pub fixed_now: Option<u64>,
    /// Remote compaction: the reply's text becomes one `compaction` item.
    pub compaction: bool,
    /// The request's `previous_response_id` (echoed).
    pub previous_response_id: Option<String>,
}

impl ResponseContext {
    /// A context with fixed defaults (ids, clock, generic quirks), for tests.
    pub fn for_tests(model: &str, stream: bool) -> Self {
        ResponseContext {
            response_id: "resp_test".to_owned(),
            created_at: 1_700_000_000,
            model: model.to_owned(),
            stream,
            catalog: Arc::default(),
            quirks: Quirks::openai(),
            include_reasoning_text: false,
            echo: Arc::from(response::echo_members(&Default::default(), None)),
            id_seed: 1,
            fixed_now: Some(1_700_000_001),
            compaction: false,
            previous_response_id: None,
        }
    }
}

impl ResponseContext {
    pub fn now(&self) -> u64 {
        self.fixed_now.unwrap_or_else(now_secs)
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
