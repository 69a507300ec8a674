//! The running configuration, replaced whole by a reload (`SIGHUP`, `codex-convert-proxy
//! reload`) without a restart.
//!
//! A request takes the [`Generation`] current when it arrives and keeps it to its end: a
//! turn, an SSE stream or a WebSocket session already open finishes on the configuration it
//! started with; the next request, the next socket, takes the new one. A file that does not
//! load or validate changes nothing: the running configuration stays, the error is logged
//! with the file's path and counted (`ccp_config_reloads_total{result="error"}`).
//!
//! What is bound at start — the listen address, the threads, the store, the logs, the
//! telemetry exporter, the grace period — is kept as it runs; a reload that changes one of
//! them says so in the log ("needs a restart") and applies the rest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::stats::Stats;

/// One configuration and the statistics of its backends (shared with the generations
/// before it by backend name: see [`Stats::carry`]).
pub struct Generation {
    pub config: Config,
    pub stats: Stats,
}

impl Generation {
    /// Backend `idx`'s name (`?`: none such).
    pub fn backend_name(&self, idx: usize) -> &str {
        self.config
            .backends
            .get(idx)
            .map_or("?", |b| b.name.as_str())
    }
}

/// The current generation, swapped atomically.
pub struct Live {
    current: ArcSwap<Generation>,
    /// Where the configuration is read from on a reload (`None`: built in memory, as in
    /// unit tests — nothing to reload from).
    path: Option<PathBuf>,
    /// `--listen`, which overrides the file's `listen`.
    listen: Option<std::net::SocketAddr>,
}

impl Live {
    pub fn new(config: Config) -> Self {
        let stats = Stats::new(config.backends.iter().map(|b| b.name.clone()).collect());
        Live {
            current: ArcSwap::from_pointee(Generation { config, stats }),
            path: None,
            listen: None,
        }
    }

    /// Reloads read `path` (with `--listen` kept over the file's).
    pub fn from_file(mut self, path: &Path, listen: Option<std::net::SocketAddr>) -> Self {
        self.path = Some(path.to_path_buf());
        self.listen = listen;
        self
    }

    /// The generation a new request starts on.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Re-read the file and, when it is valid, make it the configuration of every request
    /// from now on. `Err`: the reason (naming the file); the running configuration stays.
    pub fn reload(&self) -> Result<Reloaded, String> {
        let Some(path) = self.path.as_deref() else {
            return Err("no configuration file to reload from".into());
        };
        let loaded = Config::load(path)
            .map_err(|e| format!("invalid configuration {}: {e}", path.display()));
        let old = self.current();
        let mut config = match loaded {
            Ok(c) => c,
            Err(why) => {
                old.stats.reloads().refused(why.clone());
                return Err(why);
            }
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        let kept = keep_bound_at_start(&old.config, &mut config);
        let warnings = config.warnings();
        let stats = old
            .stats
            .carry(config.backends.iter().map(|b| b.name.clone()).collect());
        stats.reloads().took(crate::store::now_secs());
        let backends = config.backends.iter().map(|b| b.name.clone()).collect();
        self.current.store(Arc::new(Generation { config, stats }));
        Ok(Reloaded {
            kept,
            warnings,
            backends,
        })
    }
}

/// What a reload that took effect reports.
#[derive(Debug)]
pub struct Reloaded {
    /// Settings the file changed that only a restart applies (kept as they run).
    pub kept: Vec<&'static str>,
    /// The new configuration's warnings ([`Config::warnings`]).
    pub warnings: Vec<String>,
    pub backends: Vec<String>,
}

/// Keep in `new` the settings bound at start from `old`; the names of those `new` changed.
pub fn keep_bound_at_start(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut kept = Vec::new();
    macro_rules! keep {
        ($($field:ident),*) => {$(
            if new.$field != old.$field {
                kept.push(stringify!($field));
                new.$field = old.$field.clone();
            }
        )*};
    }
    keep!(
        listen,
        threads,
        store,
        log_dir,
        log_level,
        log_format,
        telemetry,
        grace_period_seconds
    );
    kept
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(url: &str, listen: &str, price: bool) -> String {
        let prices = if price {
            r#","prices":{"m":{"input":1,"output":2}}"#
        } else {
            ""
        };
        format!(
            r#"{{"listen":"{listen}","backends":[{{"name":"a","url":"{url}","api_key":"k","model":"m","match_rules":{{"default":true}}}}]{prices}}}"#
        )
    }

    /// A live configuration read from a file (backend on port 1, listen 9000).
    fn live() -> (tempfile::TempDir, PathBuf, Live) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            config("http://127.0.0.1:1/v1", "127.0.0.1:9000", false),
        )
        .unwrap();
        let live = Live::new(Config::load(&path).unwrap()).from_file(&path, None);
        (dir, path, live)
    }

    #[test]
    fn a_valid_file_replaces_the_generation_and_keeps_what_needs_a_restart() {
        let (_dir, path, live) = live();
        let before = live.current();
        before.stats.record(&crate::stats::RequestRecord {
            backend: Some(0),
            ..Default::default()
        });
        std::fs::write(
            &path,
            config("http://127.0.0.1:2/v1", "127.0.0.1:9001", true),
        )
        .unwrap();
        let r = live.reload().unwrap();
        assert_eq!(r.kept, vec!["listen"]);
        let after = live.current();
        assert_eq!(after.config.backends[0].port, 2);
        assert_eq!(
            after.config.listen.port(),
            9000,
            "the listen address needs a restart"
        );
        assert!(after.config.prices.contains_key("m"));
        // The old generation is still whole for the requests on it.
        assert_eq!(before.config.backends[0].port, 1);
        // Backend `a` keeps its counters.
        assert!(after
            .stats
            .prometheus()
            .contains("ccp_requests_total{backend=\"a\"} 1"));
        assert!(after
            .stats
            .prometheus()
            .contains("ccp_config_reloads_total{result=\"ok\"} 1"));
    }

    #[test]
    fn an_invalid_file_keeps_the_running_configuration_and_is_counted() {
        let (_dir, path, live) = live();
        std::fs::write(&path, "{\"backends\": [").unwrap();
        let why = live.reload().unwrap_err();
        assert!(why.contains(&path.display().to_string()), "{why}");
        let now = live.current();
        assert_eq!(now.config.backends[0].port, 1);
        let m = now.stats.prometheus();
        assert!(
            m.contains("ccp_config_reloads_total{result=\"error\"} 1"),
            "{m}"
        );
        assert_eq!(now.stats.json()["config"]["last_error"], why.as_str());
    }
}
