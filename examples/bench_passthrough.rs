//! The framework's limit for `make loadtest`: a minimal Pingora `ProxyHttp` that forwards
//! every request and its body untouched to one upstream, with the same server settings as
//! codex-convert-proxy (worker threads, keep-alive pool, work stealing, the client
//! connections' read buffer).
//!
//! ```text
//! bench_passthrough --listen 127.0.0.1:18310 --upstream 127.0.0.1:18301 [--threads 2]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server};
use pingora::Result;

/// The proxy's client read buffer (`CLIENT_READ_BUFFER` in src/server.rs).
const CLIENT_READ_BUFFER: usize = 8 * 1024;

struct PassThrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for PassThrough {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        peer.options.idle_timeout = Some(Duration::from_secs(30));
        Ok(Box::new(peer))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:18310".into());
    let upstream: SocketAddr = arg(&args, "--upstream")
        .unwrap_or_else(|| "127.0.0.1:18301".into())
        .parse()
        .expect("--upstream HOST:PORT");
    let threads = arg(&args, "--threads")
        .map(|t| t.parse().expect("--threads N"))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut conf = ServerConf {
        threads,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: 256,
        ..ServerConf::default()
    };
    conf.work_stealing = true;
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service =
        pingora::proxy::http_proxy_service(&server.configuration, PassThrough { upstream });
    service.add_listener(
        ListenerConfig::tcp(listen.as_str())
            .l4_buffer(L4BufferSettings::default().read(CLIENT_READ_BUFFER)),
    );
    server.add_service(service);
    println!("pass-through {listen} -> {upstream}, {threads} threads");
    server.run(RunArgs::default());
}
