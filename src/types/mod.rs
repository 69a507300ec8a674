//! Wire types of both APIs, owned by us.
//!
//! Every object we read and re-emit keeps unknown fields (`extra`), and value sets that grow
//! (item types, tool types, content part types) are open: an unknown `type` becomes an
//! `Other` variant holding the raw JSON, never a parse failure.

pub mod chat;
mod de;
pub mod responses;
pub mod text;
