//! What one turn did, recorded once whichever transport carried it: the access line, the
//! statistics, the request span and the body log.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::logger::BodyLog;
use crate::stats::{ErrorClass, RequestRecord, Stats};
use crate::telemetry::{Finish, RequestSpan};

/// A turn's accounting, filled in as it goes.
#[derive(Debug)]
pub struct Outcome {
    pub start: Instant,
    /// The backend that served it (after failover), if one was chosen.
    pub backend: Option<usize>,
    /// The model the client asked for.
    pub model: Option<String>,
    pub stream: bool,
    /// The status the client got (101 for an upgrade, 0 before any).
    pub status: u16,
    /// The provider's status (0: no reply).
    pub upstream_status: u16,
    /// Time to the provider's response head.
    pub first_byte: Option<Duration>,
    /// Time to the first output item (text, reasoning or tool call).
    pub ttft: Option<Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The OpenAI-style error code the client saw, if any.
    pub error_code: Option<String>,
    /// The Responses id the client got.
    pub response_id: Option<String>,
    /// The name of the client's key (`auth_tokens` objects): its spend.
    pub client: Option<String>,
}

impl Outcome {
    pub fn new(start: Instant) -> Self {
        Outcome {
            start,
            backend: None,
            model: None,
            stream: false,
            status: 0,
            upstream_status: 0,
            first_byte: None,
            ttft: None,
            bytes_in: 0,
            bytes_out: 0,
            error_code: None,
            response_id: None,
            client: None,
        }
    }
}

/// How the turn ended, beyond its outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ending<'a> {
    /// The access line's `method` and `path` (`WS` / `response.create` for a message).
    pub method: &'a str,
    pub path: &'a str,
    /// Tokens (input, output, cached input, reasoning) the provider reported.
    pub usage: (u64, u64, u64, u64),
    /// The statistics' class of the failure, if it failed.
    pub class: Option<ErrorClass>,
    /// The transport error's name, if one ended it.
    pub error: Option<&'a str>,
    /// Answered by the proxy itself (pages, stored responses, upgrades): not in the
    /// statistics.
    pub local: bool,
}

/// A named client's spend from one turn, for the ledger ([`Spend::keep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub client: String,
    pub micro: u64,
}

impl Spend {
    /// Add it to the client's spend of today and this month. Awaited before the turn's
    /// transport takes its next request: a key's next turn sees it.
    pub async fn keep(self, ledger: Option<&dyn crate::store::ledger::Ledger>) {
        let Some(ledger) = ledger else { return };
        let periods = crate::spend::periods(crate::store::now_secs());
        if let Err(e) = ledger.add_spend(&self.client, &periods, self.micro).await {
            tracing::warn!(client = %self.client, "spend not kept: {e}");
        }
    }
}

/// Record a finished turn: statistics (unless local), the access line, then the body log
/// and the span when the turn had them. A named client's cost comes back, for the ledger.
pub fn record(
    config: &Config,
    stats: &Stats,
    o: &Outcome,
    end: &Ending<'_>,
    body_log: Option<BodyLog>,
    span: Option<RequestSpan>,
) -> Option<Spend> {
    let backend = o.backend.and_then(|i| config.backends.get(i));
    let duration = o.start.elapsed();
    let (tin, tout, tcached, treasoning) = end.usage;
    // The model asked of the provider is the one priced.
    let priced_model = backend
        .and_then(|b| b.model.as_deref())
        .or(o.model.as_deref());
    let cost = match (o.backend, priced_model) {
        (Some(i), Some(m)) if tin + tout > 0 => {
            config.price(i, m).map(|p| p.cost_micro(tin, tcached, tout))
        }
        _ => None,
    };
    if !end.local {
        stats.record(&RequestRecord {
            backend: backend.and(o.backend),
            stream: o.stream,
            error: end.class,
            duration,
            ttft: o.ttft,
            tokens_in: tin,
            tokens_out: tout,
            tokens_cached: tcached,
            tokens_reasoning: treasoning,
            bytes_in: o.bytes_in,
            bytes_out: o.bytes_out,
            model: o.model.as_deref(),
            client: o.client.as_deref(),
            cost_micro: cost,
        });
    }
    let name = backend.map(|b| b.name.as_str()).unwrap_or("-");
    tracing::info!(
        target: "access",
        method = %end.method,
        path = %end.path,
        backend = name,
        model = o.model.as_deref().unwrap_or("-"),
        stream = o.stream,
        status = o.status,
        upstream_status = o.upstream_status,
        duration_ms = duration.as_millis() as u64,
        ttfb_ms = o.first_byte.map(|d| d.as_millis() as u64),
        ttft_ms = o.ttft.map(|d| d.as_millis() as u64),
        tokens_in = tin,
        tokens_out = tout,
        tokens_cached = tcached,
        cost_usd = cost.map(|c| tracing::field::display(crate::spend::Usd(c))),
        client = o.client.as_deref().unwrap_or("-"),
        error_code = o.error_code.as_deref().unwrap_or("-"),
        error = end.error.unwrap_or("-"),
        "request"
    );
    if let Some(log) = body_log {
        log.log(name);
    }
    if let Some(span) = span {
        span.finish(&Finish {
            backend: backend.map(|b| b.name.as_str()),
            provider: backend.map(|b| b.quirks.profile),
            request_model: backend
                .and_then(|b| b.model.as_deref())
                .or(o.model.as_deref()),
            stream: o.stream,
            status: o.status,
            upstream_status: o.upstream_status,
            usage: (tin + tout > 0).then_some((tin, tout, tcached, treasoning)),
            ttft: o.ttft,
            response_id: o.response_id.as_deref(),
            error_class: end.class,
            error_code: o.error_code.as_deref(),
            cost_usd: cost.map(crate::spend::usd),
        });
    }
    match (&o.client, cost) {
        (Some(client), Some(micro)) if micro > 0 && !end.local => Some(Spend {
            client: client.clone(),
            micro,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        Config::from_json_str(
            r#"{"backends": [{"name": "glm", "provider": "glm", "url": "http://127.0.0.1:1"}]}"#,
            &|_| None,
        )
        .unwrap()
    }

    fn turn(backend: Option<usize>) -> Outcome {
        let mut o = Outcome::new(Instant::now());
        o.backend = backend;
        o.stream = true;
        o.status = 200;
        o.upstream_status = 200;
        o.bytes_in = 10;
        o.bytes_out = 20;
        o.ttft = Some(Duration::from_millis(5));
        o
    }

    #[test]
    fn a_turn_is_counted_once_under_its_backend() {
        let (c, stats) = (config(), Stats::new(vec!["glm".into()]));
        let end = Ending {
            method: "POST",
            path: "/v1/responses",
            usage: (7, 3, 2, 1),
            ..Ending::default()
        };
        record(&c, &stats, &turn(Some(0)), &end, None, None);
        let v = stats.json();
        let glm = &v["backends"][0];
        assert_eq!(glm["backend"], "glm", "{v}");
        assert_eq!(glm["requests"], 1, "{v}");
        assert_eq!(glm["streams"], 1, "{v}");
        assert_eq!(glm["tokens"]["input"], 7, "{v}");
        assert_eq!(glm["bytes"]["out"], 20, "{v}");
    }

    #[test]
    fn local_answers_are_not_counted_and_unknown_backends_are_unrouted() {
        let (c, stats) = (config(), Stats::new(vec!["glm".into()]));
        let local = Ending {
            method: "GET",
            path: "/health",
            local: true,
            ..Ending::default()
        };
        record(&c, &stats, &turn(Some(0)), &local, None, None);
        assert_eq!(stats.json()["backends"][0]["requests"], 0);
        let failed = Ending {
            method: "WS",
            path: "response.create",
            class: Some(ErrorClass::Client),
            ..Ending::default()
        };
        record(&c, &stats, &turn(Some(9)), &failed, None, None);
        let v = stats.json();
        assert_eq!(v["backends"][0]["requests"], 0, "{v}");
        assert_eq!(v["backends"][1]["backend"], "-", "{v}");
        assert_eq!(v["backends"][1]["requests"], 1, "{v}");
        assert_eq!(v["backends"][1]["errors"]["client"], 1, "{v}");
    }
}
