//! One turn, whichever transport carries it: prepare (parse → resolve the chain → convert),
//! reply (the provider's answer → Responses events or objects), and the chain a WebSocket
//! connection keeps. Nothing here touches Pingora or the network; `proxy/` drives these
//! from the HTTP hooks and from the WebSocket session alike.
//!
//! ```text
//!  HTTP POST …/responses ──▶ proxy (hooks) ─┐
//!                                           ├─▶ prepare ─▶ upstream ─▶ reply ─▶ SSE | JSON
//!  WS   GET  …/responses ──▶ proxy/websocket┘      ▲                     └────▶ frames
//!        (chain: previous_response_id ─▶ whole conversation)
//! ```

pub mod chain;
pub mod compact;
pub mod intern;
pub mod prepare;
pub mod reply;
pub mod stored;
