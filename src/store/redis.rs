//! `{"type": "redis", "url": "redis://host:port/db"}`: the store shared by several proxy
//! instances behind a load balancer (`rediss://` for TLS). One key per response,
//! `ccp:resp:<id>`, and one per output item, `ccp:item:<item id>` → the response's id (what
//! an `item_reference` names), written together (MULTI) with the TTL as their expiry (Redis drops it by itself; its size is
//! bounded by Redis's own `maxmemory` policy). The connection is made on first use and
//! re-made by redis-rs's connection manager: with Redis down, what needs the store fails
//! fast (a 503 for the client), and it recovers by itself when Redis is back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::{Retention, Store, StoreError, StoreStats, StoredResponse};

const PREFIX: &str = "ccp:resp:";
/// Output item id → its response's id. A deleted response leaves its item keys to expire:
/// they name a response that is gone, which `get` says.
const ITEM_PREFIX: &str = "ccp:item:";
/// A command (or a connection attempt) that takes longer fails: the client gets a 503.
const TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisStore {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    retention: Retention,
    stats: StoreStats,
    /// Keys in the database — responses and their items' index keys — (refreshed by this
    /// instance's writes: `DBSIZE`, so give the store a database of its own) and bytes this
    /// instance wrote.
    count: AtomicU64,
    bytes: AtomicU64,
}

/// A command's reply within [`TIMEOUT`].
async fn within<T>(
    query: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(TIMEOUT, query)
        .await
        .map_err(|_| err("command", "timed out"))?
        .map_err(|e| err("command", e))
}

fn err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("response store (redis): {what}: {e}"))
}

impl RedisStore {
    /// Checks the URL; connects on first use.
    pub fn new(url: &str, retention: Retention) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| err("bad url", e))?;
        Ok(RedisStore {
            client,
            conn: Mutex::new(None),
            retention,
            stats: StoreStats::default(),
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let c = tokio::time::timeout(
            TIMEOUT * 2,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| err("connect", "timed out"))?
        .map_err(|e| err("connect", e))?;
        *guard = Some(c.clone());
        Ok(c)
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.counted(async {
            let mut c = self.conn().await?;
            within(cmd.query_async::<T>(&mut c)).await
        })
        .await
    }

    async fn run_pipe(&self, pipe: &redis::Pipeline) -> Result<(), StoreError> {
        self.counted(async {
            let mut c = self.conn().await?;
            within(pipe.query_async::<()>(&mut c)).await
        })
        .await
    }

    /// A store operation's result; a failure (connecting included) is counted.
    async fn counted<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let out = op.await;
        if out.is_err() {
            self.stats.count(&self.stats.errors);
        }
        out
    }
}

/// Spend by `INCRBY` on one key per client and period (atomic for every instance sharing
/// the server), each kept [`super::ledger::KEEP_SECS`].
#[async_trait::async_trait]
impl super::ledger::Ledger for RedisStore {
    async fn add_spend(
        &self,
        client: &str,
        periods: &[String],
        micro: u64,
    ) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        for p in periods {
            let k = spend_key(client, p);
            pipe.cmd("INCRBY").arg(&k).arg(micro).ignore();
            pipe.cmd("EXPIRE")
                .arg(&k)
                .arg(super::ledger::KEEP_SECS)
                .ignore();
        }
        self.run_pipe(&pipe).await
    }

    async fn spend(&self, client: &str, period: &str) -> Result<u64, StoreError> {
        let v: Option<u64> = self
            .run(redis::cmd("GET").arg(spend_key(client, period)))
            .await?;
        Ok(v.unwrap_or(0))
    }
}

fn spend_key(client: &str, period: &str) -> String {
    format!("ccp:spend:{client}:{period}")
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError> {
        self.put_shared(std::sync::Arc::new(r)).await
    }

    async fn put_shared(&self, r: std::sync::Arc<StoredResponse>) -> Result<(), StoreError> {
        let bytes = r.to_bytes();
        let ttl = self.retention.ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("SET")
            .arg(format!("{PREFIX}{}", r.id))
            .arg(&bytes)
            .arg("EX")
            .arg(ttl)
            .ignore();
        for item in r.output_ids() {
            pipe.cmd("SET")
                .arg(format!("{ITEM_PREFIX}{item}"))
                .arg(&r.id)
                .arg("EX")
                .arg(ttl)
                .ignore();
        }
        self.run_pipe(&pipe).await?;
        self.stats.count(&self.stats.writes);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if let Ok(n) = self.run::<u64>(&redis::cmd("DBSIZE")).await {
            self.count.store(n, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(format!("{PREFIX}{id}"));
        let v: Option<Vec<u8>> = self.run(&get).await?;
        let found = v.and_then(|b| StoredResponse::from_bytes(&b));
        Ok(self.stats.lookup(found))
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let mut del = redis::cmd("DEL");
        del.arg(format!("{PREFIX}{id}"));
        let n: u64 = self.run(&del).await?;
        Ok(n > 0)
    }

    async fn find_item(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        let mut get = redis::cmd("GET");
        get.arg(format!("{ITEM_PREFIX}{item_id}"));
        self.run(&get).await
    }

    fn size(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    fn stats(&self) -> &StoreStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_nothing_connects_up_front() {
        let r = Retention {
            ttl: Duration::from_secs(60),
            max_bytes: 1,
        };
        assert!(RedisStore::new("redis://127.0.0.1:1/0", r).is_ok());
        assert!(RedisStore::new("rediss://example.com:6380/2", r).is_ok());
        assert!(RedisStore::new("http://nope", r).is_err());
    }

    #[tokio::test]
    async fn a_store_that_is_down_fails_fast_with_an_error() {
        let r = Retention {
            ttl: Duration::from_secs(60),
            max_bytes: 1,
        };
        // Nothing listens on port 1.
        let s = RedisStore::new("redis://127.0.0.1:1/0", r).unwrap_or_else(|e| panic!("{e}"));
        let t = std::time::Instant::now();
        assert!(s.get("resp_x").await.is_err());
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(s.stats().errors.load(Ordering::Relaxed), 1);
    }
}
