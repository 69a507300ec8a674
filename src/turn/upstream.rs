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

/// The connection attempts of one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempts {
    backend: usize,
    /// Failed attempts on the current backend.
    failed: u32,
    /// Backends given up on.
    tried: Vec<usize>,
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
        }
    }

    /// The backend the next attempt goes to.
    pub fn backend(&self) -> usize {
        self.backend
    }

    /// The wait before the next attempt (none for a backend's first).
    pub fn delay(&self) -> Option<Duration> {
        (self.failed > 0).then(|| backoff(self.failed))
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
