//! codex-convert-proxy: the OpenAI Responses API in front of Chat Completions providers.
//!
//! `convert/`, `types/`, `providers/` and `sse` are the pure core (no Pingora, no I/O);
//! `proxy/` and `server` are the thin Pingora shell around it.

pub mod cli;
pub mod codex_setup;
pub mod config;
pub mod convert;
pub mod live;
pub mod logger;
pub mod providers;
pub mod proxy;
pub mod redact;
pub mod server;
pub mod spend;
pub mod sse;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod turn;
pub mod types;
