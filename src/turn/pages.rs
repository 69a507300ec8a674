//! The pages the proxy answers itself (`/health`, `/metrics`, `/stats`, `/v1/models`),
//! rendered from the configuration, the statistics and the store's counters.

use serde_json::{json, Value};

use crate::config::Config;
use crate::stats::Stats;
use crate::turn::route::Page;

pub struct LocalResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Further headers (`Allow` on a 405, the dashboard's challenge and policy).
    pub headers: &'static [(&'static str, &'static str)],
}

/// The live page: one self-contained file (no CDN, no build step), its script polling
/// `/stats`.
const DASHBOARD: &str = include_str!("dashboard.html");

/// The dashboard's own headers: not cached, and nothing loaded from elsewhere.
const DASHBOARD_HEADERS: &[(&str, &str)] = &[
    ("cache-control", "no-store"),
    (
        "content-security-policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    ),
    ("x-content-type-options", "nosniff"),
];

/// A 401 the browser answers with its password prompt.
const CHALLENGE: &[(&str, &str)] = &[(
    "www-authenticate",
    "Basic realm=\"codex-convert-proxy dashboard\", charset=\"UTF-8\"",
)];

/// What the pages show that is read before rendering (the ledger is async).
#[derive(Debug, Default)]
pub struct Readings {
    /// Today's spend of each named key in the ledger (every instance's, across restarts).
    pub keys_today: Vec<(String, u64)>,
}

impl LocalResponse {
    fn json(status: u16, v: &Value) -> Self {
        LocalResponse {
            status,
            body: v.to_string().into_bytes(),
            content_type: "application/json",
            headers: &[],
        }
    }

    fn method_not_allowed(path: &str) -> Self {
        LocalResponse {
            headers: &[("allow", "GET, HEAD")],
            ..Self::json(
                405,
                &error_json(
                    &format!("Method not allowed on {path}: use GET."),
                    "method_not_allowed",
                ),
            )
        }
    }
}

/// The page's response. `Models` lists the configured models in OpenAI's list shape
/// (under a backend prefix, only that backend's).
pub fn render(
    page: Page,
    config: &Config,
    stats: &Stats,
    store: Option<&dyn crate::store::Store>,
    readings: &Readings,
) -> LocalResponse {
    match page {
        Page::NotAllowed(path) => LocalResponse::method_not_allowed(path),
        Page::Health => {
            let details: Vec<Value> = config
                .backends
                .iter()
                .map(|b| {
                    json!({"name": b.name, "provider": b.quirks.profile, "path_prefix": b.path_prefix,
                        "default": b.is_default, "model": b.model, "match_models": b.match_models})
                })
                .collect();
            LocalResponse::json(
                200,
                &json!({
                    "status": "ok",
                    "version": env!("CARGO_PKG_VERSION"),
                    "backends": config.backends.iter().map(|b| b.name.clone()).collect::<Vec<_>>(),
                    "backend_details": details,
                }),
            )
        }
        Page::Metrics => LocalResponse {
            status: 200,
            body: {
                let mut text = stats.prometheus();
                if let Some(store) = store {
                    text.push_str(&store_metrics(store));
                }
                text.into_bytes()
            },
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            headers: &[],
        },
        Page::Stats => LocalResponse::json(200, &stats_json(stats, store, readings)),
        Page::Dashboard => LocalResponse {
            status: 200,
            body: DASHBOARD.as_bytes().to_vec(),
            content_type: "text/html; charset=utf-8",
            headers: DASHBOARD_HEADERS,
        },
        Page::Locked => LocalResponse {
            headers: CHALLENGE,
            ..LocalResponse::json(
                401,
                &error_json(
                    "The dashboard takes one of the proxy's tokens: `Authorization: Bearer <token>`, or Basic with the token as the password.",
                    "invalid_api_key",
                ),
            )
        },
        Page::Models { only } => models(config, only),
    }
}

/// `/stats`: the statistics, today's spend (named keys from the ledger, the rest and the
/// models from this process), the store's size.
fn stats_json(
    stats: &Stats,
    store: Option<&dyn crate::store::Store>,
    readings: &Readings,
) -> Value {
    let mut v = stats.json();
    let crate::stats::TodaySpend {
        day,
        by_model,
        by_client: here,
    } = stats.today(crate::store::now_secs());
    let usd = |m: Vec<(String, u64)>| -> serde_json::Map<String, Value> {
        m.into_iter()
            .map(|(k, micro)| (k, json!(crate::spend::usd(micro))))
            .collect()
    };
    let mut by_client = readings.keys_today.clone();
    // Unnamed keys are this process's count; a named key's is the ledger's.
    by_client.extend(here.into_iter().filter(|(k, _)| k == "-"));
    v["spend_today_usd"] =
        json!({"day": day, "by_model": usd(by_model), "by_client": usd(by_client)});
    v["store"] = match store {
        Some(s) => {
            let (responses, bytes) = s.size();
            json!({"responses": responses, "bytes": bytes})
        }
        None => Value::Null,
    };
    v
}

/// The response store's gauges and counters, in Prometheus text.
fn store_metrics(store: &dyn crate::store::Store) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let (count, bytes) = store.size();
    let st = store.stats();
    let rows = [
        (
            "ccp_store_responses",
            "gauge",
            "Responses held by the response store.",
            count,
        ),
        (
            "ccp_store_bytes",
            "gauge",
            "Bytes held by the response store.",
            bytes,
        ),
        (
            "ccp_store_hits_total",
            "counter",
            "Stored responses found.",
            st.hits.load(Relaxed),
        ),
        (
            "ccp_store_misses_total",
            "counter",
            "Stored responses looked up and not found.",
            st.misses.load(Relaxed),
        ),
        (
            "ccp_store_writes_total",
            "counter",
            "Responses written to the store.",
            st.writes.load(Relaxed),
        ),
        (
            "ccp_store_evictions_total",
            "counter",
            "Responses evicted (size bound or expiry).",
            st.evictions.load(Relaxed),
        ),
        (
            "ccp_store_errors_total",
            "counter",
            "Store operations that failed.",
            st.errors.load(Relaxed),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, v) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    out
}

fn models(config: &Config, only: Option<usize>) -> LocalResponse {
    let mut data: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, b) in config.backends.iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let names = b
            .model
            .iter()
            .chain(b.models.iter().map(|m| &m.name))
            .chain(b.match_models.iter().filter(|m| !m.contains(['*', '?'])));
        for name in names {
            if seen.insert(name.clone()) {
                data.push(json!({"id": name, "object": "model", "created": 0, "owned_by": b.name}));
            }
        }
    }
    LocalResponse::json(200, &json!({"object": "list", "data": data}))
}

/// An OpenAI-shaped error body.
pub fn error_json(message: &str, code: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        let text = r#"{"backends": [
            {"name": "glm", "provider": "glm", "url": "http://127.0.0.1:1", "model": "glm-5",
             "match_rules": {"path_prefix": "/glm", "default": true, "model": ["glm-*", "glm-4.7"]}},
            {"name": "kimi", "provider": "kimi", "url": "http://127.0.0.1:2",
             "match_rules": {"path_prefix": "/kimi"}, "models": [{"name": "kimi-k2.6"}, {"name": "glm-5"}]}
        ]}"#;
        Config::from_json_str(text, &|_| None).unwrap()
    }

    fn body(r: &LocalResponse) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn models_are_listed_once_and_by_prefix() {
        let (c, stats) = (config(), Stats::new(vec!["glm".into(), "kimi".into()]));
        let all = render(
            Page::Models { only: None },
            &c,
            &stats,
            None,
            &Readings::default(),
        );
        let ids: Vec<String> = body(&all)["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        // Globs are not models; a name two backends serve is listed once (the first).
        assert_eq!(ids, ["glm-5", "glm-4.7", "kimi-k2.6"]);
        let kimi = render(
            Page::Models { only: Some(1) },
            &c,
            &stats,
            None,
            &Readings::default(),
        );
        assert_eq!(body(&kimi)["data"][0]["owned_by"], "kimi");
        assert_eq!(body(&kimi)["data"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn health_names_each_backend_and_its_profile() {
        let (c, stats) = (config(), Stats::new(vec!["glm".into(), "kimi".into()]));
        let h = render(Page::Health, &c, &stats, None, &Readings::default());
        assert_eq!((h.status, h.content_type), (200, "application/json"));
        let v = body(&h);
        assert_eq!(v["backends"], serde_json::json!(["glm", "kimi"]));
        assert_eq!(v["backend_details"][1]["provider"], "kimi");
        assert_eq!(v["backend_details"][0]["default"], true);
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let (c, stats) = (config(), Stats::new(vec!["glm".into(), "kimi".into()]));
        let r = render(
            Page::NotAllowed("/metrics"),
            &c,
            &stats,
            None,
            &Readings::default(),
        );
        assert_eq!((r.status, r.headers), (405, &[("allow", "GET, HEAD")][..]));
        assert_eq!(body(&r)["error"]["code"], "method_not_allowed");
        let m = render(Page::Metrics, &c, &stats, None, &Readings::default());
        assert!(m.content_type.starts_with("text/plain"));
    }
}
