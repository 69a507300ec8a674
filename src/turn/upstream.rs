//! The way to the provider, transport-free: the Chat path, the headers the provider gets,
//! and the connection attempts — retries of a backend with backoff, then its `fallback`
//! backends in order, never one twice. The HTTP hooks (`fail_to_connect`) and the WebSocket
//! session's sender both follow the same [`Attempts`].

use std::time::Duration;

use crate::config::{Backend, Config};

/// `{base path}/chat/completions`.
pub fn chat_path(backend: &Backend) -> String {
    format!(
        "{}/chat/completions",
        backend.url.path().trim_end_matches('/')
    )
}

/// The wait before connection attempt `attempt` (1-based): 50 ms, 100 ms, 200 ms, … ≤ 500 ms.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(4)).min(Duration::from_millis(500))
}

/// The client's headers the provider gets; every other one is dropped.
pub fn keeps_client_header(name: &str) -> bool {
    matches!(name, "user-agent" | "accept-language")
}

/// The headers the proxy sets for the provider, in order: Host, the backend's key (marked
/// sensitive by the caller), JSON in, SSE or JSON out. The length header is the caller's
/// (it knows whether the body goes out whole or chunked).
pub fn provider_headers(backend: &Backend) -> Vec<(http::HeaderName, String)> {
    let host = match (backend.tls, backend.port) {
        (true, 443) | (false, 80) => backend.host.clone(),
        (_, port) => format!("{}:{port}", backend.host),
    };
    let mut h = vec![(http::header::HOST, host)];
    if !backend.api_key.is_empty() {
        h.push((
            http::header::AUTHORIZATION,
            format!("Bearer {}", backend.api_key),
        ));
    }
    h.push((http::header::CONTENT_TYPE, "application/json".to_owned()));
    h.push((
        http::header::ACCEPT,
        "text/event-stream, application/json".to_owned(),
    ));
    h
}

/// The W3C trace context for the provider, one policy for both transports: the upstream
/// span's (a child of the turn's span) when telemetry is on, else the client's as it came.
pub fn trace_headers(
    span: Option<&mut crate::telemetry::RequestSpan>,
    client: &http::HeaderMap,
    backend: &Backend,
    path: &str,
) -> Vec<(&'static str, http::HeaderValue)> {
    let mut out = Vec::new();
    match span {
        Some(span) => {
            if let Some(h) =
                span.upstream_traceparent(&backend.host, backend.port, backend.tls, path)
            {
                if let Ok(v) = http::HeaderValue::from_str(&h.traceparent) {
                    out.push(("traceparent", v));
                }
                if let Some(v) = h
                    .tracestate
                    .and_then(|t| http::HeaderValue::from_str(&t).ok())
                {
                    out.push(("tracestate", v));
                }
            }
        }
        None => {
            for name in ["traceparent", "tracestate"] {
                if let Some(v) = client.get(name) {
                    out.push((name, v.clone()));
                }
            }
        }
    }
    out
}

/// The longest `Retry-After` the proxy waits for before trying the same backend again: a
/// longer one fails over at once (or, with no backend left, is the client's answer, with
/// its `Retry-After`).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Statuses that are worth another attempt before any byte went to the client: rate limits
/// and the provider's own failures (not a 501 or 505: trying again cannot help).
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// A `Retry-After` value: seconds, or an HTTP date (`now` the current Unix time).
pub fn retry_after(value: &str, now: u64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    let at = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// The connection attempts of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    backend: usize,
    /// Failed attempts on the current backend.
    failed: u32,
    /// Backends given up on.
    tried: Vec<usize>,
    /// The provider's `Retry-After` for the next attempt (in place of the backoff).
    wait: Option<Duration>,
}

/// What to do after a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try the same backend again (attempt `n`, after [`backoff`]).
    Retry(u32),
    /// Fail over to backend `to`.
    Failover { to: usize },
    /// No backend left: the failure is the client's answer.
    GiveUp,
}

impl Attempts {
    pub fn new(backend: usize) -> Self {
        Attempts {
            backend,
            failed: 0,
            tried: Vec::new(),
            wait: None,
        }
    }

    /// The backend the next attempt goes to.
    pub fn backend(&self) -> usize {
        self.backend
    }

    /// The wait before the next attempt (none for a backend's first): the provider's
    /// `Retry-After`, else the backoff.
    pub fn delay(&self) -> Option<Duration> {
        (self.failed > 0).then(|| self.wait.unwrap_or_else(|| backoff(self.failed)))
    }

    /// The first `fallback` of the current backend not tried yet.
    pub fn next_fallback(&self, config: &Config) -> Option<usize> {
        let backend = config.backends.get(self.backend)?;
        backend
            .fallback
            .iter()
            .copied()
            .find(|i| !self.tried.contains(i) && *i != self.backend)
    }

    /// Skip the current backend (its circuit is open) for its fallback `to`.
    pub fn skip_to(&mut self, to: usize) {
        self.tried.push(self.backend);
        self.backend = to;
        self.failed = 0;
        self.wait = None;
    }

    /// The provider answered `status` (with `retry_after`, if it said) before anything went
    /// to the client, or (`status` 0) gave no head in time: the same as a failed connection
    /// for a status worth another attempt — the same backend again within its `retries`
    /// (after its `Retry-After`, when that is at most [`MAX_RETRY_AFTER`]; a longer one skips
    /// to the fallbacks), then its `fallback` backends; any other status is the answer.
    pub fn refused(&mut self, config: &Config, status: u16, retry_after: Option<Duration>) -> Next {
        if status != 0 && !retryable_status(status) {
            return Next::GiveUp;
        }
        self.wait = None;
        match retry_after {
            Some(d) if d > MAX_RETRY_AFTER => {
                // Not worth waiting for here: the next backend, if there is one.
                if let Some(b) = config.backends.get(self.backend) {
                    self.failed = self.failed.max(b.retries);
                }
                self.connect_failed(config)
            }
            Some(d) => {
                let next = self.connect_failed(config);
                if matches!(next, Next::Retry(_)) {
                    self.wait = Some(d);
                }
                next
            }
            None => self.connect_failed(config),
        }
    }

    /// A connection to the current backend failed (nothing was sent): retry it while its
    /// `retries` allow, then fail over to the first of its `fallback` backends not tried yet.
    pub fn connect_failed(&mut self, config: &Config) -> Next {
        let Some(backend) = config.backends.get(self.backend) else {
            return Next::GiveUp;
        };
        self.failed += 1;
        if self.failed <= backend.retries {
            return Next::Retry(self.failed);
        }
        self.wait = None;
        self.tried.push(self.backend);
        let next = backend
            .fallback
            .iter()
            .copied()
            .find(|i| !self.tried.contains(i));
        match next {
            Some(to) => {
                self.backend = to;
                self.failed = 0;
                Next::Failover { to }
            }
            None => Next::GiveUp,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert!(backoff(2) > backoff(1));
        assert_eq!(backoff(30), Duration::from_millis(500));
    }

    fn config() -> Config {
        Config::from_json_str(
            r#"{"backends": [
                {"name": "a", "url": "https://api.example.com/v4", "api_key": "sk-key-123", "retries": 1, "fallback": ["b", "c"], "match_rules": {"default": true}},
                {"name": "b", "url": "http://127.0.0.1:8080", "retries": 0, "fallback": ["a"]},
                {"name": "c", "url": "http://10.0.0.1", "retries": 0}
            ]}"#,
            &|_| None,
        )
        .unwrap()
    }

    #[test]
    fn retries_then_fallbacks_in_order_never_twice() {
        let c = config();
        let mut a = Attempts::new(0);
        assert_eq!(a.delay(), None);
        assert_eq!(a.connect_failed(&c), Next::Retry(1));
        assert_eq!(a.delay(), Some(backoff(1)));
        assert_eq!(a.connect_failed(&c), Next::Failover { to: 1 });
        assert_eq!((a.backend(), a.delay()), (1, None));
        // b's only fallback is a, already tried.
        assert_eq!(a.connect_failed(&c), Next::GiveUp);
        let mut from_b = Attempts::new(1);
        assert_eq!(from_b.connect_failed(&c), Next::Failover { to: 0 });
        assert_eq!(from_b.connect_failed(&c), Next::Retry(1));
        // From a: b was tried, so c.
        assert_eq!(from_b.connect_failed(&c), Next::Failover { to: 2 });
        assert_eq!(from_b.connect_failed(&c), Next::GiveUp);
    }

    /// A 429 or 5xx before the first byte: the backend again (after a short Retry-After),
    /// then its fallbacks; a long Retry-After skips to the fallback; a 400 is the answer.
    #[test]
    fn refusals_worth_another_attempt_retry_then_fail_over() {
        let c = config();
        let mut a = Attempts::new(0);
        assert_eq!(a.refused(&c, 400, None), Next::GiveUp);
        assert_eq!(a.refused(&c, 503, None), Next::Retry(1));
        assert_eq!(a.delay(), Some(backoff(1)));
        let mut a = Attempts::new(0);
        assert_eq!(
            a.refused(&c, 429, Some(Duration::from_secs(2))),
            Next::Retry(1)
        );
        assert_eq!(a.delay(), Some(Duration::from_secs(2)));
        assert_eq!(a.refused(&c, 429, None), Next::Failover { to: 1 });
        assert_eq!(a.delay(), None);
        // A timeout before the head counts as a refusal.
        assert_eq!(a.refused(&c, 0, None), Next::GiveUp);
        // Too long to wait for: the fallback at once.
        let mut a = Attempts::new(0);
        assert_eq!(
            a.refused(&c, 429, Some(MAX_RETRY_AFTER + Duration::from_secs(1))),
            Next::Failover { to: 1 }
        );
        assert!(!retryable_status(501) && retryable_status(529));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after("3", 0), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 0.5 ", 0), Some(Duration::from_millis(500)));
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777.
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_770),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", 0), None);
        assert_eq!(retry_after("-1", 0), None);
    }

    #[test]
    fn the_provider_gets_its_host_and_key() {
        let c = config();
        assert_eq!(chat_path(&c.backends[0]), "/v4/chat/completions");
        let h = provider_headers(&c.backends[0]);
        assert_eq!(h[0], (http::header::HOST, "api.example.com".to_owned()));
        assert_eq!(
            h[1],
            (http::header::AUTHORIZATION, "Bearer sk-key-123".to_owned())
        );
        let b = provider_headers(&c.backends[1]);
        assert_eq!(b[0].1, "127.0.0.1:8080");
        assert!(b.iter().all(|(n, _)| n != http::header::AUTHORIZATION));
        assert!(keeps_client_header("user-agent") && !keeps_client_header("x-codex-turn-metadata"));
    }
}
