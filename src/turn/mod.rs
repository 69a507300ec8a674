//! One turn, whichever transport carries it. Nothing here holds a Pingora type; `proxy/`
//! drives these modules from the HTTP hooks and from the WebSocket session alike.
//!
//! ```text
//!              route ──▶ prepare ──▶ upstream ──▶ reply ──▶ record
//!   (pages, auth, checks,  (parse, chain,  (path, headers,  (events |     (access line,
//!    backend choice)        convert)        attempts)        object)       stats, span)
//!                             ▲                     └── rescue: one failure, classified once
//!              chain (WebSocket) / stored (the response store): previous_response_id
//! ```
//!
//! * `route`: where a request goes (pages, stored responses, upgrade, a turn and its backend).
//! * `pages`: the pages the proxy answers itself.
//! * `prepare`: the create body → the Chat body and the response context.
//! * `session`: a WebSocket connection's session (its messages, one turn at a time, its end).
//! * `chain`: a WebSocket connection's responses, for `previous_response_id`.
//! * `refs`: `item_reference` input items replaced by the items they name.
//! * `stored`: the response store's side of a turn (continue, keep, retrieve, delete).
//! * `breaker`: a backend that keeps failing is out of rotation for a while.
//! * `budget`: a client key over its budget is refused.
//! * `compact`: remote compaction v1 (`/responses/compact`).
//! * `converse`: a reply relayed by the proxy itself, and the provider's search calls answered.
//! * `upstream`: the Chat path, the provider's headers, retries and failover.
//! * `reply`: the provider's answer → Responses events or objects.
//! * `rescue`: what broke → the client's error, `response.failed`, the error class.
//! * `record`: the access line, the statistics, the span, once per turn.
//! * `intern`: identical echoed request fields shared between open requests.

pub mod breaker;
pub mod budget;
pub mod chain;
pub mod compact;
pub mod converse;
pub mod exchange;
pub mod guard;
pub mod intern;
pub mod pages;
pub mod prepare;
pub mod record;
pub mod refs;
pub mod reply;
pub mod rescue;
pub mod route;
pub mod session;
pub mod socket;
pub mod stored;
pub mod upstream;
