//! Request statistics: per-backend counters and latency histograms, lock-free (atomics),
//! rendered as Prometheus text (`GET /metrics`) and JSON (`GET /stats`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Histogram bucket upper bounds, in seconds.
const BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BOUNDS.iter().enumerate() {
            if secs <= *b {
                self.buckets[i].fetch_add(1, Relaxed);
                break;
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn sum_secs(&self) -> f64 {
        self.sum_micros.load(Relaxed) as f64 / 1e6
    }

    /// An upper bound of the q-quantile from the buckets (seconds).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in BOUNDS.iter().enumerate() {
            seen += self.buckets[i].load(Relaxed);
            if seen >= rank {
                return Some(*b);
            }
        }
        Some(f64::INFINITY)
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        for (i, b) in BOUNDS.iter().enumerate() {
            cum += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cum}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_secs());
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Low-cardinality error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The client's fault: bad JSON, 404, 405, 413, 401 from the proxy, …
    Client,
    /// The provider answered 4xx.
    Upstream4xx,
    /// The provider answered 5xx.
    Upstream5xx,
    /// The provider could not be reached.
    Connect,
    /// A timeout.
    Timeout,
    /// The stream ended in `response.failed` after it started.
    StreamFailed,
    /// Anything else.
    Internal,
}

pub const ERROR_CLASSES: [ErrorClass; 7] = [
    ErrorClass::Client,
    ErrorClass::Upstream4xx,
    ErrorClass::Upstream5xx,
    ErrorClass::Connect,
    ErrorClass::Timeout,
    ErrorClass::StreamFailed,
    ErrorClass::Internal,
];

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Client => "client",
            ErrorClass::Upstream4xx => "upstream_4xx",
            ErrorClass::Upstream5xx => "upstream_5xx",
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::StreamFailed => "stream_failed",
            ErrorClass::Internal => "internal",
        }
    }

    fn index(self) -> usize {
        ERROR_CLASSES.iter().position(|c| *c == self).unwrap_or(0)
    }
}

#[derive(Default)]
pub struct BackendStats {
    pub requests: AtomicU64,
    pub streams: AtomicU64,
    errors: [AtomicU64; ERROR_CLASSES.len()],
    pub tokens_in: AtomicU64,
    pub tokens_out: AtomicU64,
    pub tokens_cached: AtomicU64,
    pub tokens_reasoning: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub latency: Histogram,
    pub ttft: Histogram,
}

/// What the access log knows about one finished request.
#[derive(Debug, Clone, Default)]
pub struct RequestRecord<'a> {
    pub backend: Option<usize>,
    pub stream: bool,
    pub error: Option<ErrorClass>,
    pub duration: Duration,
    pub ttft: Option<Duration>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub tokens_cached: u64,
    pub tokens_reasoning: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The model reported to the client (its own, or the backend's).
    pub model: Option<&'a str>,
    /// The name of the client's key, when it is a named one.
    pub client: Option<&'a str>,
    /// What the turn cost, micro-dollars (`None`: its model's price is unknown).
    pub cost_micro: Option<u64>,
}

/// Tokens of one (backend, model, client): input, cached input, output, and their cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ModelTokens {
    input: u64,
    cached: u64,
    output: u64,
    cost_micro: u64,
}

/// Distinct models counted per process at most: the names come from clients. Past it, a new
/// model is counted as `model="(other)"`.
const MAX_MODELS: usize = 256;
const OTHER_MODEL: &str = "(other)";
/// A model name is cut to this many bytes.
const MAX_MODEL_LEN: usize = 128;

/// Tokens and cost by backend name, then model, then client: looked up with the record's
/// borrowed names (a name is copied only the first time it is seen). By name, not by the
/// backend's place in the config, so a reloaded config's backends keep their books.
#[derive(Default)]
struct ModelBook {
    slots: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, ModelTokens>>,
    >,
    /// Distinct (backend, model, client) entries.
    entries: usize,
}

impl ModelBook {
    fn add(&mut self, backend: &str, model: &str, client: &str, r: &RequestRecord<'_>) {
        let full = self.entries >= MAX_MODELS;
        let models = match self.slots.get_mut(backend) {
            Some(m) => m,
            None => self.slots.entry(backend.to_owned()).or_default(),
        };
        let model = if full && !models.get(model).is_some_and(|c| c.contains_key(client)) {
            OTHER_MODEL
        } else {
            model
        };
        let clients = match models.get_mut(model) {
            Some(c) => c,
            None => models.entry(model.to_owned()).or_default(),
        };
        let t = match clients.get_mut(client) {
            Some(t) => t,
            None => {
                self.entries += 1;
                clients.entry(client.to_owned()).or_default()
            }
        };
        t.input += r.tokens_in;
        t.cached += r.tokens_cached;
        t.output += r.tokens_out;
        t.cost_micro += r.cost_micro.unwrap_or(0);
    }

    /// Every entry, in (backend, model, client) order.
    fn entries(&self) -> Vec<(&str, &str, &str, ModelTokens)> {
        let mut out = Vec::with_capacity(self.entries);
        for (backend, models) in &self.slots {
            for (model, clients) in models {
                for (client, t) in clients {
                    out.push((backend.as_str(), model.as_str(), client.as_str(), *t));
                }
            }
        }
        out
    }
}

/// The configuration's reloads: how many took, how many were refused and why.
#[derive(Default)]
pub struct Reloads {
    ok: AtomicU64,
    failed: AtomicU64,
    /// When the running configuration was loaded (Unix seconds).
    loaded_at: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Reloads {
    /// A reloaded configuration took effect.
    pub fn took(&self, now_secs: u64) {
        self.ok.fetch_add(1, Relaxed);
        self.loaded_at.store(now_secs, Relaxed);
    }

    /// A reload was refused (the running configuration stays): `why` names the file.
    pub fn refused(&self, why: String) {
        self.failed.fetch_add(1, Relaxed);
        let mut g = match self.last_error.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = Some(why);
    }

    fn json(&self) -> Value {
        let last = match self.last_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        json!({"reloads": self.ok.load(Relaxed), "failed_reloads": self.failed.load(Relaxed),
            "loaded_at": self.loaded_at.load(Relaxed), "last_error": last})
    }
}

/// What is open now: HTTP turns in flight, of them the streamed ones, WebSocket sessions.
#[derive(Default)]
pub struct Open {
    counts: [AtomicU64; 3],
}

/// One of [`Open`]'s gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    HttpTurns = 0,
    HttpStreams = 1,
    WebSocketSessions = 2,
}

impl Gauge {
    const ALL: [Gauge; 3] = [
        Gauge::HttpTurns,
        Gauge::HttpStreams,
        Gauge::WebSocketSessions,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Gauge::HttpTurns => "http_turns",
            Gauge::HttpStreams => "http_streams",
            Gauge::WebSocketSessions => "websocket_sessions",
        }
    }
}

/// Counted open until dropped.
pub struct Opened {
    open: Arc<Open>,
    gauge: Gauge,
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.open.counts[self.gauge as usize].fetch_sub(1, Relaxed);
    }
}

/// Today's spend ([`Stats::today`]), micro-dollars.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TodaySpend {
    /// `day:YYYY-MM-DD` (UTC).
    pub day: String,
    pub by_model: Vec<(String, u64)>,
    pub by_client: Vec<(String, u64)>,
}

/// Spend of the current UTC day in this process, by model and by client key.
#[derive(Default)]
struct Today {
    /// Days since the Unix epoch (UTC): a number compared per record, named when read.
    day: u64,
    by_model: std::collections::BTreeMap<String, u64>,
    by_client: std::collections::BTreeMap<String, u64>,
}

impl Today {
    fn add(&mut self, day: u64, model: &str, client: &str, micro: u64) {
        if self.day != day {
            *self = Today {
                day,
                ..Today::default()
            };
        }
        for (map, key) in [(&mut self.by_model, model), (&mut self.by_client, client)] {
            let key = if map.len() >= MAX_MODELS && !map.contains_key(key) {
                OTHER_MODEL
            } else {
                key
            };
            match map.get_mut(key) {
                Some(v) => *v += micro,
                None => {
                    map.insert(key.to_owned(), micro);
                }
            }
        }
    }
}

/// A UTC day, in seconds (as `spend::period` counts days).
const DAY_SECS: u64 = 86_400;

pub struct Stats {
    names: Vec<String>,
    backends: Vec<Arc<BackendStats>>,
    /// Requests that reached no backend (local endpoints excluded).
    unrouted: Arc<BackendStats>,
    /// Tokens and cost per (backend, model, client): the prompt-cache hit ratio of each
    /// model, the spend of each client key.
    models: Arc<std::sync::Mutex<ModelBook>>,
    /// Each backend's circuit.
    breakers: crate::turn::breaker::Breakers,
    reloads: Arc<Reloads>,
    open: Arc<Open>,
    today: Arc<std::sync::Mutex<Today>>,
    started: Instant,
}

impl Stats {
    pub fn new(names: Vec<String>) -> Self {
        let backends = names.iter().map(|_| Arc::default()).collect();
        let breakers = crate::turn::breaker::Breakers::new(names.len());
        let reloads = Reloads::default();
        reloads.loaded_at.store(crate::store::now_secs(), Relaxed);
        Stats {
            names,
            backends,
            unrouted: Arc::default(),
            models: Default::default(),
            breakers,
            reloads: Arc::new(reloads),
            open: Arc::default(),
            today: Arc::default(),
            started: Instant::now(),
        }
    }

    /// The statistics of a reloaded configuration whose backends are `names`: a backend
    /// of a name seen before keeps its counters and its circuit (the turns still running on
    /// the old configuration count into the same ones); a new name starts from zero; a
    /// backend no longer configured leaves `/metrics`. Tokens by model, the requests
    /// without a backend, the reloads and the uptime go on.
    pub fn carry(&self, names: Vec<String>) -> Stats {
        let from: Vec<Option<usize>> = names
            .iter()
            .map(|n| self.names.iter().position(|m| m == n))
            .collect();
        let backends = from
            .iter()
            .map(|i| {
                i.and_then(|i| self.backends.get(i))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        Stats {
            names,
            backends,
            unrouted: Arc::clone(&self.unrouted),
            models: Arc::clone(&self.models),
            breakers: self.breakers.carry(&from),
            reloads: Arc::clone(&self.reloads),
            open: Arc::clone(&self.open),
            today: Arc::clone(&self.today),
            started: self.started,
        }
    }

    /// Count one `gauge` open until the guard is dropped.
    pub fn open(&self, gauge: Gauge) -> Opened {
        self.open.counts[gauge as usize].fetch_add(1, Relaxed);
        Opened {
            open: Arc::clone(&self.open),
            gauge,
        }
    }

    /// How many `gauge` are open now.
    pub fn open_now(&self, gauge: Gauge) -> u64 {
        self.open.counts[gauge as usize].load(Relaxed)
    }

    /// Today's spend in this process (UTC day): by model and by client key (`-`: unnamed).
    pub fn today(&self, now_secs: u64) -> TodaySpend {
        let t = match self.today.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let list = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        let current = t.day == now_secs / DAY_SECS;
        TodaySpend {
            by_model: if current {
                list(&t.by_model)
            } else {
                Vec::new()
            },
            by_client: if current {
                list(&t.by_client)
            } else {
                Vec::new()
            },
            day: crate::spend::period(crate::spend::Per::Day, now_secs),
        }
    }

    /// The configuration's reloads.
    pub fn reloads(&self) -> &Reloads {
        &self.reloads
    }

    fn slot(&self, backend: Option<usize>) -> &BackendStats {
        backend
            .and_then(|i| self.backends.get(i))
            .unwrap_or(&self.unrouted)
    }

    pub fn record(&self, r: &RequestRecord) {
        let s = self.slot(r.backend);
        s.requests.fetch_add(1, Relaxed);
        if r.stream {
            s.streams.fetch_add(1, Relaxed);
        }
        if let Some(e) = r.error {
            s.errors[e.index()].fetch_add(1, Relaxed);
        }
        s.tokens_in.fetch_add(r.tokens_in, Relaxed);
        s.tokens_out.fetch_add(r.tokens_out, Relaxed);
        s.tokens_cached.fetch_add(r.tokens_cached, Relaxed);
        s.tokens_reasoning.fetch_add(r.tokens_reasoning, Relaxed);
        s.bytes_in.fetch_add(r.bytes_in, Relaxed);
        s.bytes_out.fetch_add(r.bytes_out, Relaxed);
        s.latency.observe(r.duration);
        if let Some(t) = r.ttft {
            s.ttft.observe(t);
        }
        if r.tokens_in + r.tokens_out > 0 {
            self.record_model(r);
        }
    }

    /// The backends' circuits.
    pub fn breakers(&self) -> &crate::turn::breaker::Breakers {
        &self.breakers
    }

    fn record_model(&self, r: &RequestRecord) {
        let backend = r
            .backend
            .and_then(|i| self.names.get(i))
            .map_or("-", String::as_str);
        let mut name = r.model.unwrap_or("-");
        let mut end = name.len().min(MAX_MODEL_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name = &name[..end];
        let mut book = match self.models.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        book.add(backend, name, r.client.unwrap_or("-"), r);
        drop(book);
        if let Some(micro) = r.cost_micro.filter(|m| *m > 0) {
            let day = crate::store::now_secs() / DAY_SECS;
            let mut t = match self.today.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            t.add(day, name, r.client.unwrap_or("-"), micro);
        }
    }

    fn each(&self) -> impl Iterator<Item = (&str, &BackendStats)> {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.backends.iter().map(|b| &**b))
            .chain(std::iter::once(("-", &*self.unrouted)))
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(8192);
        let counters: [Counter; 9] = [
            (
                "ccp_requests_total",
                "Requests handled, per backend (\"-\": no backend).",
                |s| s.requests.load(Relaxed),
            ),
            ("ccp_streams_total", "Streamed requests.", |s| {
                s.streams.load(Relaxed)
            }),
            (
                "ccp_tokens_input_total",
                "Input tokens reported by the provider.",
                |s| s.tokens_in.load(Relaxed),
            ),
            (
                "ccp_tokens_output_total",
                "Output tokens reported by the provider.",
                |s| s.tokens_out.load(Relaxed),
            ),
            (
                "ccp_tokens_cached_total",
                "Cached input tokens reported by the provider.",
                |s| s.tokens_cached.load(Relaxed),
            ),
            (
                "ccp_tokens_reasoning_total",
                "Reasoning tokens reported by the provider.",
                |s| s.tokens_reasoning.load(Relaxed),
            ),
            (
                "ccp_request_bytes_total",
                "Request body bytes received from clients.",
                |s| s.bytes_in.load(Relaxed),
            ),
            (
                "ccp_response_bytes_total",
                "Response body bytes sent to clients.",
                |s| s.bytes_out.load(Relaxed),
            ),
            (
                "ccp_errors_all_total",
                "Requests that ended in an error, any class.",
                |s| s.errors.iter().map(|e| e.load(Relaxed)).sum(),
            ),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (backend, s) in self.each() {
                let _ = writeln!(out, "{name}{{backend=\"{}\"}} {}", escape(backend), get(s));
            }
        }
        let _ = writeln!(out, "# HELP ccp_errors_total Requests that ended in an error, by class.\n# TYPE ccp_errors_total counter");
        for (backend, s) in self.each() {
            for c in ERROR_CLASSES {
                let _ = writeln!(
                    out,
                    "ccp_errors_total{{backend=\"{}\",class=\"{}\"}} {}",
                    escape(backend),
                    c.as_str(),
                    s.errors[c.index()].load(Relaxed)
                );
            }
        }
        for (name, help, pick) in [
            (
                "ccp_request_duration_seconds",
                "Time from request to the end of the response.",
                (|s: &BackendStats| &s.latency) as fn(&BackendStats) -> &Histogram,
            ),
            (
                "ccp_time_to_first_token_seconds",
                "Time from request to the first output token.",
                |s: &BackendStats| &s.ttft,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (backend, s) in self.each() {
                pick(s).render(&mut out, name, &format!("backend=\"{}\"", escape(backend)));
            }
        }
        self.render_models(&mut out);
        let _ = writeln!(
            out,
            "# HELP ccp_circuit_state Each backend's circuit: 0 closed, 1 half-open (probing), 2 open (out of rotation).\n# TYPE ccp_circuit_state gauge"
        );
        let now = Instant::now();
        for (i, name) in self.names.iter().enumerate() {
            let _ = writeln!(
                out,
                "ccp_circuit_state{{backend=\"{}\"}} {}",
                escape(name),
                self.breakers.state(i, now).gauge()
            );
        }
        crate::turn::guard::render(&mut out);
        let _ = writeln!(
            out,
            "# HELP ccp_open What is open now: HTTP turns in flight (http_turns), the streamed ones among them (http_streams), WebSocket sessions.\n# TYPE ccp_open gauge"
        );
        for g in Gauge::ALL {
            let _ = writeln!(
                out,
                "ccp_open{{kind=\"{}\"}} {}",
                g.as_str(),
                self.open_now(g)
            );
        }
        let r = &self.reloads;
        let _ = writeln!(
            out,
            "# HELP ccp_config_reloads_total Configuration reloads (SIGHUP), by result: ok took effect, error kept the running configuration.\n# TYPE ccp_config_reloads_total counter\nccp_config_reloads_total{{result=\"ok\"}} {}\nccp_config_reloads_total{{result=\"error\"}} {}",
            r.ok.load(Relaxed),
            r.failed.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ccp_config_loaded_timestamp_seconds When the running configuration was loaded, Unix time.\n# TYPE ccp_config_loaded_timestamp_seconds gauge\nccp_config_loaded_timestamp_seconds {}",
            r.loaded_at.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP ccp_uptime_seconds Seconds since start.\n# TYPE ccp_uptime_seconds gauge\nccp_uptime_seconds {}",
            self.started.elapsed().as_secs_f64()
        );
        out
    }

    /// `ccp_input_tokens_total`, `ccp_cached_tokens_total` and `ccp_output_tokens_total` by
    /// backend and model: cached / input is a model's prompt-cache hit ratio.
    fn render_models(&self, out: &mut String) {
        let map = match self.models.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let families: [ModelCounter; 3] = [
            (
                "ccp_input_tokens_total",
                "Input tokens reported by the provider, by backend and model.",
                |t| t.input,
            ),
            (
                "ccp_cached_tokens_total",
                "Cached input tokens reported by the provider, by backend and model (the prompt-cache hit ratio is this over ccp_input_tokens_total).",
                |t| t.cached,
            ),
            (
                "ccp_output_tokens_total",
                "Output tokens reported by the provider, by backend and model.",
                |t| t.output,
            ),
        ];
        // Tokens by (backend, model), whichever client.
        let mut by_model: std::collections::BTreeMap<(&str, &str), ModelTokens> =
            Default::default();
        let entries = map.entries();
        for (backend, model, _, t) in &entries {
            let m = by_model.entry((*backend, *model)).or_default();
            m.input += t.input;
            m.cached += t.cached;
            m.output += t.output;
        }
        for (name, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((backend, model), t) in &by_model {
                let _ = writeln!(
                    out,
                    "{name}{{backend=\"{}\",model=\"{}\"}} {}",
                    escape(backend),
                    escape(model),
                    get(t)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ccp_cost_usd_total What the turns cost at their models' prices, USD, by backend, model and client key (\"-\": unnamed).\n# TYPE ccp_cost_usd_total counter"
        );
        for (backend, model, client, t) in &entries {
            let _ = writeln!(
                out,
                "ccp_cost_usd_total{{backend=\"{}\",model=\"{}\",client=\"{}\"}} {}",
                escape(backend),
                escape(model),
                escape(client),
                crate::spend::usd(t.cost_micro)
            );
        }
    }

    /// Spend since start by client key (`-`: unnamed) and by model, USD.
    fn spend_json(&self) -> Value {
        let map = match self.models.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut clients: std::collections::BTreeMap<&str, u64> = Default::default();
        let mut models: std::collections::BTreeMap<&str, u64> = Default::default();
        for (_, model, client, t) in map.entries() {
            *clients.entry(client).or_default() += t.cost_micro;
            *models.entry(model).or_default() += t.cost_micro;
        }
        let usd = |m: std::collections::BTreeMap<&str, u64>| -> serde_json::Map<String, Value> {
            m.into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::json!(crate::spend::usd(v))))
                .collect()
        };
        serde_json::json!({"by_client": usd(clients), "by_model": usd(models)})
    }

    pub fn json(&self) -> Value {
        let now = Instant::now();
        let backends: Vec<Value> = self
            .each()
            .enumerate()
            .map(|(i, (name, s))| {
                let circuit = match self.breakers.state(i, now) {
                    crate::turn::breaker::State::Closed => "closed",
                    crate::turn::breaker::State::HalfOpen => "half_open",
                    crate::turn::breaker::State::Open => "open",
                };
                let errors: serde_json::Map<String, Value> = ERROR_CLASSES
                    .iter()
                    .map(|c| (c.as_str().to_owned(), Value::from(s.errors[c.index()].load(Relaxed))))
                    .collect();
                json!({
                    "backend": name,
                    "circuit": circuit,
                    "requests": s.requests.load(Relaxed),
                    "streams": s.streams.load(Relaxed),
                    "errors": errors,
                    "tokens": {"input": s.tokens_in.load(Relaxed), "output": s.tokens_out.load(Relaxed),
                        "cached": s.tokens_cached.load(Relaxed), "reasoning": s.tokens_reasoning.load(Relaxed)},
                    "bytes": {"in": s.bytes_in.load(Relaxed), "out": s.bytes_out.load(Relaxed)},
                    "latency_seconds": {"count": s.latency.count(), "p50_le": s.latency.quantile(0.5), "p99_le": s.latency.quantile(0.99)},
                    "ttft_seconds": {"count": s.ttft.count(), "p50_le": s.ttft.quantile(0.5), "p99_le": s.ttft.quantile(0.99)},
                })
            })
            .collect();
        json!({"uptime_seconds": self.started.elapsed().as_secs(), "backends": backends,
            "spend_usd": self.spend_json(), "config": self.reloads.json(),
            "open": Gauge::ALL.iter().map(|g| (g.as_str().to_owned(), Value::from(self.open_now(*g)))).collect::<serde_json::Map<_, _>>()})
    }

    /// One line for the periodic log summary.
    pub fn summary_line(&self) -> String {
        let mut parts = Vec::new();
        for (name, s) in self.each() {
            let n = s.requests.load(Relaxed);
            if n == 0 {
                continue;
            }
            let errors: u64 = s.errors.iter().map(|e| e.load(Relaxed)).sum();
            parts.push(format!(
                "{name}: {n} req, {errors} err, tokens in/out/cached {}/{}/{}, p50≤{:?}s",
                s.tokens_in.load(Relaxed),
                s.tokens_out.load(Relaxed),
                s.tokens_cached.load(Relaxed),
                s.latency.quantile(0.5).unwrap_or(0.0)
            ));
        }
        if parts.is_empty() {
            "no requests yet".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// (metric name, help, getter)
type Counter = (&'static str, &'static str, fn(&BackendStats) -> u64);
/// (metric name, help, getter) of the tokens by model.
type ModelCounter = (&'static str, &'static str, fn(&ModelTokens) -> u64);

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Today's spend starts again at midnight UTC; an open gauge counts until its guard goes.
    #[test]
    fn today_resets_with_the_day_and_gauges_follow_their_guards() {
        let mut t = Today::default();
        t.add(20_425, "glm-5", "alice", 5);
        t.add(20_425, "glm-5", "-", 2);
        assert_eq!(t.by_model["glm-5"], 7);
        assert_eq!((t.by_client["alice"], t.by_client["-"]), (5, 2));
        t.add(20_426, "kimi-k2.6", "alice", 1);
        assert_eq!(t.by_model.len(), 1, "yesterday's models are gone");
        assert_eq!(t.by_client["alice"], 1);

        let stats = Stats::new(vec!["a".into()]);
        let (one, two) = (stats.open(Gauge::HttpTurns), stats.open(Gauge::HttpTurns));
        let ws = stats.open(Gauge::WebSocketSessions);
        assert_eq!(stats.open_now(Gauge::HttpTurns), 2);
        drop(one);
        // A reloaded generation counts into the same gauges.
        let next = stats.carry(vec!["a".into()]);
        assert_eq!(next.open_now(Gauge::HttpTurns), 1);
        drop((two, ws));
        assert_eq!(
            next.json()["open"],
            json!({"http_turns": 0, "http_streams": 0, "websocket_sessions": 0})
        );
    }

    /// Tokens by backend and model: each model's cached share, a bounded number of models.
    #[test]
    fn tokens_by_backend_and_model() {
        let s = Stats::new(vec!["kimi".into()]);
        fn turn(model: &str, tin: u64, cached: u64) -> RequestRecord<'_> {
            RequestRecord {
                backend: Some(0),
                tokens_in: tin,
                tokens_cached: cached,
                tokens_out: 3,
                model: Some(model),
                ..RequestRecord::default()
            }
        }
        s.record(&turn("kimi-k2.6", 100, 60));
        s.record(&turn("kimi-k2.6", 100, 90));
        s.record(&turn("moonshot-v1-8k", 50, 0));
        // A refused request reported no tokens: no sample for its model.
        s.record(&RequestRecord {
            backend: Some(0),
            model: Some("never-answered"),
            ..RequestRecord::default()
        });
        let text = s.prometheus();
        for line in [
            "ccp_input_tokens_total{backend=\"kimi\",model=\"kimi-k2.6\"} 200",
            "ccp_cached_tokens_total{backend=\"kimi\",model=\"kimi-k2.6\"} 150",
            "ccp_output_tokens_total{backend=\"kimi\",model=\"kimi-k2.6\"} 6",
            "ccp_input_tokens_total{backend=\"kimi\",model=\"moonshot-v1-8k\"} 50",
            "ccp_cached_tokens_total{backend=\"kimi\",model=\"moonshot-v1-8k\"} 0",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(!text.contains("never-answered"), "{text}");
        for i in 0..(MAX_MODELS + 10) {
            s.record(&turn(&format!("m{i}"), 1, 0));
        }
        let text = s.prometheus();
        let samples = text
            .lines()
            .filter(|l| l.starts_with("ccp_input_tokens_total{"))
            .count();
        assert_eq!(samples, MAX_MODELS + 1, "bounded, plus (other)");
        assert!(text.contains("model=\"(other)\""), "{text}");
    }

    #[test]
    fn records_and_renders() {
        let s = Stats::new(vec!["glm".into(), "kimi".into()]);
        s.record(&RequestRecord {
            backend: Some(1),
            stream: true,
            duration: Duration::from_millis(120),
            ttft: Some(Duration::from_millis(30)),
            tokens_in: 10,
            tokens_out: 5,
            tokens_cached: 4,
            ..RequestRecord::default()
        });
        s.record(&RequestRecord {
            backend: None,
            error: Some(ErrorClass::Client),
            duration: Duration::from_millis(1),
            ..RequestRecord::default()
        });
        let text = s.prometheus();
        assert!(text.contains("ccp_requests_total{backend=\"kimi\"} 1"));
        assert!(text.contains("ccp_requests_total{backend=\"glm\"} 0"));
        assert!(text.contains("ccp_errors_total{backend=\"-\",class=\"client\"} 1"));
        assert!(text.contains("ccp_tokens_cached_total{backend=\"kimi\"} 4"));
        assert!(
            text.contains("ccp_request_duration_seconds_bucket{backend=\"kimi\",le=\"0.25\"} 1")
        );
        assert!(text.contains("ccp_request_duration_seconds_bucket{backend=\"kimi\",le=\"0.1\"} 0"));
        assert!(text.contains("ccp_time_to_first_token_seconds_count{backend=\"kimi\"} 1"));
        let j = s.json();
        assert_eq!(j["backends"][1]["tokens"]["input"], 10);
        assert_eq!(j["backends"][1]["latency_seconds"]["p50_le"], 0.25);
        assert!(s.summary_line().contains("kimi: 1 req"));
    }
}
