//! The proxy's pure conversion core, compiled from the main crate's sources for fuzzing.
#![allow(dead_code)]

#[path = "../../src/convert/mod.rs"]
pub mod convert;
#[path = "../../src/providers/mod.rs"]
pub mod providers;
#[path = "../../src/redact.rs"]
pub mod redact;
#[path = "../../src/spend.rs"]
pub mod spend;
#[path = "../../src/sse.rs"]
pub mod sse;
#[path = "../../src/types/mod.rs"]
pub mod types;
