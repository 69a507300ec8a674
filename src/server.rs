//! Builds the Pingora server from the validated config and runs it until SIGTERM/SIGINT.

use std::sync::Arc;

use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};

use crate::config::Config;
use crate::live::Live;
use crate::proxy::ConvertProxy;
use crate::telemetry::Telemetry;

/// Forwards Pingora's shutdown signal to the proxy's WebSocket sessions.
struct ShutdownRelay(tokio::sync::watch::Sender<bool>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for ShutdownRelay {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let _ = shutdown.changed().await;
        let _ = self.0.send(true);
    }
}

/// Reloads the configuration on each SIGHUP (`codex-convert-proxy reload` sends one).
struct Reloader(Arc<Live>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for Reloader {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP, reloads are off: {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    reload(&self.0);
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// One reload, logged: what took effect, or why the running configuration stays.
fn reload(live: &Live) {
    match live.reload() {
        Ok(r) => {
            tracing::info!(backends = ?r.backends, "configuration reloaded: new requests use it, those already open finish on the one they started with");
            if !r.kept.is_empty() {
                tracing::warn!(settings = ?r.kept, "changed in the configuration file but bound at start: they need a restart, the running values stay");
            }
            for w in &r.warnings {
                tracing::warn!("{w}");
            }
        }
        Err(why) => {
            tracing::error!("configuration reload refused: {why}; the running configuration stays")
        }
    }
}

/// Where a running proxy writes its process id (`codex-convert-proxy reload` reads it).
pub fn pid_file(log_dir: &std::path::Path) -> std::path::PathBuf {
    log_dir.join("codex-convert-proxy.pid")
}

/// The socket a proxy started with --upgrade receives the listening socket on.
pub fn upgrade_sock(log_dir: &std::path::Path) -> std::path::PathBuf {
    log_dir.join("codex-convert-proxy.upgrade.sock")
}

/// Interval of the statistics summary line in the log.
const SUMMARY_EVERY_SECS: u64 = 60;

/// The read buffer of each client connection. Pingora's default (64 KiB) is held by every
/// open connection for its whole life, an open stream's included, though only the request
/// head goes through it: the body is read into Pingora's own body buffer, which reads past
/// an empty read buffer straight from the socket. 8 KiB covers a request head.
const CLIENT_READ_BUFFER: usize = 8 * 1024;

/// Every client connection (a WebSocket session, an open stream) and every upstream one is
/// a file descriptor: the soft limit is raised to the hard one at start (the README says what
/// to set where the hard limit itself is low).
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 16_384 => tracing::warn!(
            limit = n,
            "open-file limit is {n}: about that many client connections at once (raise the hard limit, `ulimit -Hn` / LimitNOFILE)"
        ),
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Run the proxy on `config`, read from `path` (reloads read it again; `listen` is the
/// `--listen` override, kept over the file's).
pub fn run(
    config: Config,
    path: &std::path::Path,
    listen_override: Option<std::net::SocketAddr>,
    upgrade: bool,
) -> Result<(), String> {
    if upgrade && matches!(config.store, crate::config::StoreConfig::Embedded { .. }) {
        // The running proxy holds the store's file: this one could not open it, and would
        // have taken the listening socket before failing.
        return Err("--upgrade needs a store two processes can share or do without (\"redis\", \"memory\" or \"none\"): the embedded store's file is held by the running proxy; stop it (SIGTERM) and start this one instead".into());
    }
    let listen = config.listen.to_string();
    let mut conf = ServerConf {
        threads: config.threads.max(1),
        grace_period_seconds: Some(config.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(config.grace_period_seconds.max(1)),
        upstream_keepalive_pool_size: 256,
        ..ServerConf::default()
    };
    conf.work_stealing = true;
    // Pingora's graceful upgrade: on SIGQUIT this process sends its listening socket to the
    // one started with --upgrade, which waits for it here.
    conf.upgrade_sock = upgrade_sock(&config.log_dir).to_string_lossy().into_owned();
    let opt = pingora::server::configuration::Opt {
        upgrade,
        ..Default::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    for b in &config.backends {
        if b.api_key.is_empty() {
            tracing::warn!(backend = %b.name, "backend has no api_key: requests go upstream without Authorization");
        }
    }
    if !config.listen.ip().is_loopback() && config.auth_tokens.is_empty() {
        tracing::warn!(listen = %listen, "listening beyond loopback without auth_tokens: anyone who can reach this port can use the backends' API keys");
    }
    raise_open_file_limit();
    let names: Vec<&str> = config.backends.iter().map(|b| b.name.as_str()).collect();
    tracing::info!(listen = %listen, backends = ?names, threads = config.threads, "codex-convert-proxy {} starting", env!("CARGO_PKG_VERSION"));
    // OpenTelemetry: nothing is built when it is off.
    let telemetry = Telemetry::init(&config.telemetry)?.map(Arc::new);
    // The response store: opened before the listener (a store that cannot be opened — its
    // file locked by another instance, its directory not writable — stops the start-up).
    let (store, ledger) = open_store(&config.store).map_err(|e| e.to_string())?;
    let pid_path = pid_file(&config.log_dir);
    let live = Arc::new(Live::new(config).from_file(path, listen_override));
    let summary = Arc::clone(&live);
    // A periodic summary line in the log.
    std::thread::Builder::new()
        .name("stats-summary".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(SUMMARY_EVERY_SECS));
            tracing::info!(target: "stats", "{}", summary.current().stats.summary_line());
        })
        .map_err(|e| format!("cannot start the stats thread: {e}"))?;
    // Pingora tells its services when a graceful shutdown starts; WebSocket sessions learn
    // it through this channel and close with 1001 after their turn in flight.
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    server.add_service(pingora::services::background::background_service(
        "shutdown relay",
        ShutdownRelay(shutdown_tx),
    ));
    // SIGHUP's handler is installed before the server runs: from here on a SIGHUP reloads
    // (once the reloader listens) and never ends the process, as its default action would.
    hangup_handled()?;
    server.add_service(pingora::services::background::background_service(
        "config reload",
        Reloader(Arc::clone(&live)),
    ));
    if let Err(e) = std::fs::write(&pid_path, format!("{}\n", std::process::id())) {
        tracing::warn!(path = %pid_path.display(), "cannot write the pid file (`codex-convert-proxy reload` needs it; `kill -HUP` works): {e}");
    }
    let proxy = ConvertProxy::new(live)
        .with_telemetry(telemetry.clone())
        .with_shutdown(shutdown_rx)
        .with_store(store)
        .with_ledger(ledger);
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, proxy);
    service.add_listener(
        ListenerConfig::tcp(listen.as_str())
            .l4_buffer(L4BufferSettings::default().read(CLIENT_READ_BUFFER)),
    );
    server.add_service(service);
    server.run(RunArgs::default());
    // The pid file is this process's unless a successor (--upgrade) wrote its own.
    let mine = format!("{}\n", std::process::id());
    if std::fs::read_to_string(&pid_path).is_ok_and(|p| p == mine) {
        let _ = std::fs::remove_file(&pid_path);
    }
    // Flush the spans still buffered.
    if let Some(t) = &telemetry {
        t.shutdown();
    }
    tracing::info!("codex-convert-proxy stopped");
    Ok(())
}

/// Install the process's SIGHUP handler now (tokio keeps it for the process's life), on a
/// runtime of its own: Pingora's runtimes start later.
fn hangup_handled() -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map(drop)
    })
    .map_err(|e| format!("cannot handle SIGHUP: {e}"))
}

/// The store kind chosen in the config (here, at the composition root: the store knows
/// nothing of the config, the config only the store's `Retention`).
/// The spend ledger is the store's where it keeps things across restarts (embedded) or
/// instances (Redis), else this process's memory.
type Opened = (
    Option<Arc<dyn crate::store::Store>>,
    Arc<dyn crate::store::ledger::Ledger>,
);

fn open_store(kind: &crate::config::StoreConfig) -> Result<Opened, crate::store::StoreError> {
    use crate::config::StoreConfig as S;
    use crate::store::ledger::MemoryLedger;
    use crate::store::{embedded, memory, redis};
    Ok(match kind {
        S::None => (None, Arc::new(MemoryLedger::default())),
        S::Memory { retention } => (
            Some(Arc::new(memory::MemoryStore::new(*retention))),
            Arc::new(MemoryLedger::default()),
        ),
        S::Embedded { path, retention } => {
            let s = Arc::new(embedded::EmbeddedStore::open(path, *retention)?);
            (Some(s.clone()), s)
        }
        S::Redis { url, retention } => {
            let s = Arc::new(redis::RedisStore::new(url, *retention)?);
            (Some(s.clone()), s)
        }
    })
}
