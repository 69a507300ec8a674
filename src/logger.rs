//! Logging: stderr plus files in `log_dir` — `codex-convert-proxy.log` (everything at the
//! configured level, rolled daily) and `error.log` (warnings and errors). `RUST_LOG` overrides
//! the level. Pingora's own debug output (which prints upstream request headers, including
//! Authorization) is never let through.

use std::path::Path;

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Keeps the file writers flushing; drop at exit.
pub struct LogGuards(#[allow(dead_code)] Vec<WorkerGuard>);

/// Pingora crates log request headers at debug level: cap them at info.
fn is_safe(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.target().starts_with("pingora") && *meta.level() > Level::INFO)
}

pub fn init(log_dir: &Path, level: &str) -> Result<LogGuards, String> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| format!("cannot create log_dir {}: {e}", log_dir.display()))?;
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let main_file = tracing_appender::rolling::daily(log_dir, "codex-convert-proxy.log");
    let (main_writer, g1) = tracing_appender::non_blocking(main_file);
    let err_file = tracing_appender::rolling::never(log_dir, "error.log");
    let (err_writer, g2) = tracing_appender::non_blocking(err_file);

    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter())
        .with_filter(filter_fn(is_safe));
    let main = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(main_writer)
        .with_filter(filter())
        .with_filter(filter_fn(is_safe));
    let errors = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(err_writer)
        .with_filter(LevelFilter::WARN)
        .with_filter(filter_fn(is_safe));
    tracing_subscriber::registry()
        .with(stderr)
        .with(main)
        .with(errors)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(LogGuards(vec![g1, g2]))
}

pub use crate::redact::{redact, redact_body};
