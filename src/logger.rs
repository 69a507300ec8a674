//! Logging: stderr plus files in `log_dir` — `codex-convert-proxy.log` (everything at the
//! configured level, rolled daily) and `error.log` (warnings and errors). `RUST_LOG` overrides
//! the level. Pingora's own debug output (which prints upstream request headers, including
//! Authorization) is never let through.
//!
//! `log_format: "json"` writes every output as one JSON object per line, the event's fields at
//! the top level (`timestamp`, `level`, `target`, `message`, then the fields).
//!
//! `log_body: true` logs the upstream request body and the response body sent to the client
//! (target `body`), each with secrets redacted and cut at `log_body_max_bytes`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::config::LogFormat;

/// Keeps the file writers flushing; drop at exit.
pub struct LogGuards(#[allow(dead_code)] Vec<WorkerGuard>);

/// The JSON format is on (bodies keep their newlines, JSON escapes them).
static JSON: AtomicBool = AtomicBool::new(false);

/// Pingora crates log request headers at debug level: cap them at info.
fn is_safe(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.target().starts_with("pingora") && *meta.level() > Level::INFO)
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// One output in the chosen format.
fn output<W>(writer: W, ansi: bool, format: LogFormat) -> BoxedLayer
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    }
}

pub fn init(log_dir: &Path, level: &str, format: LogFormat) -> Result<LogGuards, String> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| format!("cannot create log_dir {}: {e}", log_dir.display()))?;
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let main_file = tracing_appender::rolling::daily(log_dir, "codex-convert-proxy.log");
    let (main_writer, g1) = tracing_appender::non_blocking(main_file);
    let err_file = tracing_appender::rolling::never(log_dir, "error.log");
    let (err_writer, g2) = tracing_appender::non_blocking(err_file);
    // stderr too is written by a worker thread: a request never waits for a terminal or a
    // pipe (a write per access line was a syscall on every request's path). Not lossy: a
    // full buffer makes the logger wait rather than drop lines.
    let (stderr_writer, g3) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());

    let layers: Vec<BoxedLayer> = vec![
        output(stderr_writer, std::io::stderr().is_terminal(), format)
            .with_filter(filter())
            .with_filter(filter_fn(is_safe))
            .boxed(),
        output(main_writer, false, format)
            .with_filter(filter())
            .with_filter(filter_fn(is_safe))
            .boxed(),
        output(err_writer, false, format)
            .with_filter(LevelFilter::WARN)
            .with_filter(filter_fn(is_safe))
            .boxed(),
    ];
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(LogGuards(vec![g1, g2, g3]))
}

pub use crate::redact::{redact, redact_body};

/// Bytes kept past the cut before redacting, so that a secret straddling the cut is still
/// recognised (and replaced) as a whole.
const REDACT_SLACK: usize = 1024;

/// `body`, redacted, then cut at `max` bytes (on a character boundary). The flag says whether
/// anything was cut.
pub fn redact_and_cut(body: &[u8], max: usize) -> (String, bool) {
    let kept = &body[..body.len().min(max.saturating_add(REDACT_SLACK))];
    let mut text = redact_body(kept);
    let mut cut = kept.len() < body.len();
    if text.len() > max {
        let mut end = max;
        while end > 0 && !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        cut = true;
    }
    (text, cut)
}

/// A body as a log field: in the text format its newlines are escaped, so that one event
/// stays one line (the JSON format escapes them itself).
fn one_line(text: String) -> String {
    if JSON.load(Ordering::Relaxed) || !text.contains(['\n', '\r']) {
        text
    } else {
        text.replace('\r', "\\r").replace('\n', "\\n")
    }
}

/// Logs a body (`log_body`): redacted, cut at `max` bytes. `direction` is `request` (what
/// went upstream) or `response` (what the client got).
pub fn log_body(direction: &str, backend: &str, body: &[u8], max: usize) {
    let (text, truncated) = redact_and_cut(body, max);
    emit(direction, backend, body.len() as u64, truncated, text);
}

fn emit(direction: &str, backend: &str, bytes: u64, truncated: bool, text: String) {
    tracing::info!(
        target: "body",
        direction,
        backend,
        bytes,
        truncated,
        body = %one_line(text),
        "{direction} body"
    );
}

/// The response body of one request for `log_body`, accumulated chunk by chunk in the body
/// filter: only the first `max` bytes (plus a little, for redaction) are kept.
#[derive(Debug)]
pub struct BodyLog {
    buf: Vec<u8>,
    total: u64,
    max: usize,
}

impl BodyLog {
    pub fn new(max: usize) -> Self {
        BodyLog {
            buf: Vec::new(),
            total: 0,
            max,
        }
    }

    /// Adds a chunk sent to the client.
    pub fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = self
            .max
            .saturating_add(REDACT_SLACK)
            .saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// Logs what was kept (redacted, cut), once the request is over.
    pub fn log(self, backend: &str) {
        let (text, cut) = redact_and_cut(&self.buf, self.max);
        let truncated = cut || (self.buf.len() as u64) < self.total;
        emit("response", backend, self.total, truncated, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_after_redaction() {
        let key = "sk-abcdefghijklmnopqrstuvwxyz";
        let body = format!("{} {key} tail", "x".repeat(10));
        // the cut falls inside the key: the key is still redacted, not half shown
        let (text, cut) = redact_and_cut(body.as_bytes(), 16);
        assert!(cut);
        assert!(text.len() <= 16, "{text}");
        assert!(!text.contains("abc"), "{text}");
        let (text, cut) = redact_and_cut(body.as_bytes(), 1000);
        assert!(!cut);
        assert_eq!(text, format!("{} sk-[REDACTED] tail", "x".repeat(10)));
        // a cut never splits a character
        let (text, cut) = redact_and_cut("ééé".as_bytes(), 3);
        assert!(cut);
        assert_eq!(text, "é");
    }

    #[test]
    fn body_log_keeps_a_bounded_prefix() {
        let mut log = BodyLog::new(10);
        for _ in 0..1000 {
            log.push(&[b'a'; 100]);
        }
        assert_eq!(log.total, 100_000);
        assert_eq!(log.buf.len(), 10 + REDACT_SLACK);
    }

    #[test]
    fn newlines_are_escaped_in_text_format() {
        assert_eq!(one_line("a\nb".into()), "a\\nb");
    }
}
