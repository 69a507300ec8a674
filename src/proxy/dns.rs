//! Asynchronous DNS with a short cache (Pingora's `HttpPeer::new("host:port")` resolves
//! blocking and panics on failure).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, u16), (SocketAddr, Instant)>>,
}

impl Resolver {
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_owned(), port);
        if let Ok(cache) = self.cache.lock() {
            if let Some((addr, at)) = cache.get(&key) {
                if at.elapsed() < TTL {
                    return Ok(*addr);
                }
            }
        }
        let addr = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| "no address found".to_owned())?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (addr, Instant::now()));
        }
        Ok(addr)
    }
}
