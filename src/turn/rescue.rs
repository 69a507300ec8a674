//! One failure, classified once. A transport reports what broke as a [`Cause`] (the HTTP
//! hooks map Pingora's error type to it, the WebSocket session its own reads); from it come
//! the client's error before any reply went out (an OpenAI-shaped body, or a WebSocket error
//! frame from the same [`ClientError`]), the message of the terminal `response.failed` event
//! when the reply had started, and the error class the statistics and the span count.

use crate::convert::error::ClientError;
use crate::stats::ErrorClass;

/// What broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    pub kind: Kind,
    pub side: Side,
    /// The underlying error's name (Pingora's error type), for messages.
    pub name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Connecting took too long.
    ConnectTimeout,
    /// The provider did not answer, or stopped sending, in time.
    ReadTimeout,
    /// Another timeout (a write, the TLS handshake).
    OtherTimeout,
    /// The connection could not be made (refused, no route, TLS, handshake).
    Connect,
    /// The TLS handshake timed out: a connection failure for the client, a timeout in the
    /// statistics.
    TlsTimeout,
    /// The proxy refused the request with this status.
    Status(u16),
    /// The whole turn took longer than `timeouts.total`.
    TotalTimeout,
    /// Anything else.
    Other,
}

/// Whose side it was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Upstream,
    Downstream,
    Internal,
}

/// The name of the failure past a backend's total timeout (also the Pingora error type an
/// HTTP reply is ended with).
pub const TOTAL_TIMEOUT: &str = "TotalTimeout";

impl Cause {
    /// The turn took longer than the backend's `timeouts.total`.
    pub fn total_timeout() -> Self {
        Cause::new(Kind::TotalTimeout, Side::Upstream, TOTAL_TIMEOUT)
    }

    /// The proxy refused the request with `status` (the name is Pingora's for it).
    pub fn rejected(status: u16) -> Self {
        Cause::new(Kind::Status(status), Side::Internal, "HTTPStatus")
    }

    pub fn new(kind: Kind, side: Side, name: &'static str) -> Self {
        Cause { kind, side, name }
    }

    /// The client's error when nothing of the reply went out yet.
    pub fn before_head(self, backend: &str) -> ClientError {
        let name = self.name;
        let server = |status: u16, code: &str, message: String| {
            ClientError::new(status, "server_error", Some(code), message)
        };
        match self.kind {
            Kind::ConnectTimeout => server(
                504,
                "timeout",
                format!("Timed out connecting to the {backend} backend."),
            ),
            Kind::ReadTimeout => server(
                504,
                "timeout",
                format!("The {backend} backend did not answer in time."),
            ),
            Kind::TotalTimeout => server(
                504,
                "timeout",
                format!("The {backend} backend did not finish in time (total timeout)."),
            ),
            Kind::Connect | Kind::TlsTimeout => server(
                502,
                "server_error",
                format!("Cannot connect to the {backend} backend: {name}."),
            ),
            Kind::Status(code) => {
                ClientError::new(code, "invalid_request_error", None, format!("HTTP {code}"))
            }
            Kind::OtherTimeout | Kind::Other => match self.side {
                Side::Upstream => server(
                    502,
                    "server_error",
                    format!("The {backend} backend failed: {name}."),
                ),
                Side::Downstream => ClientError::new(
                    400,
                    "invalid_request_error",
                    None,
                    format!("Bad request: {name}."),
                ),
                Side::Internal => server(
                    500,
                    "server_error",
                    format!("Internal proxy error: {name}."),
                ),
            },
        }
    }

    /// The client went away (nothing to finish, not the backend's fault).
    pub fn client_gone(self) -> bool {
        self.side == Side::Downstream
    }

    /// The message of the `response.failed` that ends a reply already under way (its code
    /// is [`MID_STREAM_CODE`]).
    pub fn mid_stream(self, backend: &str) -> String {
        match self.kind {
            Kind::ReadTimeout => format!("The {backend} backend stopped sending (idle timeout)."),
            Kind::TotalTimeout => {
                format!("The {backend} backend did not finish in time (total timeout).")
            }
            _ => format!(
                "The {backend} backend connection failed mid-stream: {}",
                self.name
            ),
        }
    }

    /// The statistics' class of a turn that ended in this failure. `started`: the reply's
    /// head went out; `statuses`: (client, upstream) as far as they got.
    pub fn class(self, started: bool, statuses: (u16, u16)) -> ErrorClass {
        match self.kind {
            Kind::ConnectTimeout
            | Kind::ReadTimeout
            | Kind::OtherTimeout
            | Kind::TlsTimeout
            | Kind::TotalTimeout => ErrorClass::Timeout,
            Kind::Connect => ErrorClass::Connect,
            Kind::Status(s) if s < 500 => ErrorClass::Client,
            _ if started => ErrorClass::StreamFailed,
            _ if statuses == (502, 0) => ErrorClass::Connect,
            _ => ErrorClass::Internal,
        }
    }
}

/// A failure before any reply: the client's error and what caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: ClientError,
    pub cause: Cause,
}

impl Failure {
    /// A failure the client hears about as `cause` says.
    pub fn caused(cause: Cause, backend: &str) -> Self {
        Failure {
            error: cause.before_head(backend),
            cause,
        }
    }

    /// The proxy's own refusal (its status says whose fault it was).
    pub fn refused(error: ClientError) -> Self {
        let cause = Cause::rejected(error.status);
        Failure { error, cause }
    }

    /// The statistics' class (nothing reached the client or came from the provider).
    pub fn class(&self) -> ErrorClass {
        self.cause.class(false, (self.error.status, 0))
    }
}

/// The code of the `response.failed` a broken reply ends with.
pub const MID_STREAM_CODE: &str = "server_error";

/// The statistics' class of a turn that ended without a transport failure: by the statuses
/// (client, upstream) and whether the reply reported an error (`failed`).
pub fn outcome_class(client_status: u16, upstream_status: u16, failed: bool) -> Option<ErrorClass> {
    match (upstream_status, client_status) {
        (0, s) if s >= 400 => Some(ErrorClass::Client),
        (u, _) if (400..500).contains(&u) => Some(ErrorClass::Upstream4xx),
        (u, _) if u >= 500 => Some(ErrorClass::Upstream5xx),
        _ if failed => Some(ErrorClass::StreamFailed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(kind: Kind) -> Cause {
        Cause::new(kind, Side::Upstream, "ConnectRefused")
    }

    #[test]
    fn before_the_head_each_cause_has_its_status_and_code() {
        let cases = [
            (
                up(Kind::ConnectTimeout),
                504,
                Some("timeout"),
                "Timed out connecting to the glm backend.",
            ),
            (
                up(Kind::ReadTimeout),
                504,
                Some("timeout"),
                "The glm backend did not answer in time.",
            ),
            (
                up(Kind::Connect),
                502,
                Some("server_error"),
                "Cannot connect to the glm backend: ConnectRefused.",
            ),
            (
                up(Kind::TlsTimeout),
                502,
                Some("server_error"),
                "Cannot connect to the glm backend: ConnectRefused.",
            ),
            (
                up(Kind::Other),
                502,
                Some("server_error"),
                "The glm backend failed: ConnectRefused.",
            ),
            (up(Kind::Status(413)), 413, None, "HTTP 413"),
            (
                Cause::new(Kind::Other, Side::Downstream, "ReadError"),
                400,
                None,
                "Bad request: ReadError.",
            ),
            (
                Cause::new(Kind::Other, Side::Internal, "InternalError"),
                500,
                Some("server_error"),
                "Internal proxy error: InternalError.",
            ),
        ];
        for (cause, status, code, message) in cases {
            let e = cause.before_head("glm");
            assert_eq!(
                (e.status, e.code.as_deref(), e.message.as_str()),
                (status, code, message),
                "{cause:?}"
            );
            assert!(e.body()["error"]["type"].is_string());
        }
    }

    #[test]
    fn mid_stream_messages_name_the_backend_and_what_broke() {
        assert_eq!(
            up(Kind::ReadTimeout).mid_stream("kimi"),
            "The kimi backend stopped sending (idle timeout)."
        );
        assert_eq!(
            up(Kind::Other).mid_stream("kimi"),
            "The kimi backend connection failed mid-stream: ConnectRefused"
        );
        assert!(up(Kind::TotalTimeout)
            .mid_stream("kimi")
            .contains("total timeout"));
        assert!(Cause::new(Kind::Other, Side::Downstream, "WriteError").client_gone());
        assert!(!up(Kind::Other).client_gone());
    }

    #[test]
    fn classes_for_the_statistics() {
        assert_eq!(
            up(Kind::TlsTimeout).class(false, (0, 0)),
            ErrorClass::Timeout
        );
        assert_eq!(
            up(Kind::Connect).class(false, (502, 0)),
            ErrorClass::Connect
        );
        assert_eq!(
            up(Kind::Status(400)).class(false, (400, 0)),
            ErrorClass::Client
        );
        assert_eq!(
            up(Kind::Other).class(true, (200, 200)),
            ErrorClass::StreamFailed
        );
        assert_eq!(up(Kind::Other).class(false, (502, 0)), ErrorClass::Connect);
        assert_eq!(
            up(Kind::Status(500)).class(false, (500, 0)),
            ErrorClass::Internal
        );
        let dns = Failure::refused(ClientError::new(502, "server_error", None, "no such host"));
        assert_eq!(dns.class(), ErrorClass::Connect);
        let slow = Failure::caused(up(Kind::ConnectTimeout), "glm");
        assert_eq!(
            (slow.error.status, slow.class()),
            (504, ErrorClass::Timeout)
        );
        assert_eq!(outcome_class(404, 0, false), Some(ErrorClass::Client));
        assert_eq!(
            outcome_class(429, 429, false),
            Some(ErrorClass::Upstream4xx)
        );
        assert_eq!(
            outcome_class(502, 503, false),
            Some(ErrorClass::Upstream5xx)
        );
        assert_eq!(
            outcome_class(200, 200, true),
            Some(ErrorClass::StreamFailed)
        );
        assert_eq!(outcome_class(200, 200, false), None);
    }
}
