//! The default store: a redb file on local disk. Every write is committed durably, so a
//! restart (or a crash) keeps every stored response; expired responses and, over the size
//! bound, the oldest ones are removed as new ones come in. redb is synchronous: each call
//! runs on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{now_secs, Retention, Store, StoreError, StoreStats, StoredResponse};

/// id → the stored record.
const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");
/// (created_at, id) → record size: the order of eviction.
const BY_AGE: TableDefinition<(u64, &str), u64> = TableDefinition::new("by_age");

pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    retention: Retention,
    stats: Arc<StoreStats>,
    count: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

fn err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("response store: {what}: {e}"))
}

impl EmbeddedStore {
    /// Open (or create) the store file; its directory is created when missing.
    pub fn open(path: &Path, retention: Retention) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(&format!("cannot create {}", dir.display()), e))?;
        }
        let db = Database::create(path)
            .map_err(|e| err(&format!("cannot open {}", path.display()), e))?;
        // Create the tables and count what is there.
        let txn = db.begin_write().map_err(|e| err("begin", e))?;
        let (mut count, mut bytes) = (0u64, 0u64);
        {
            txn.open_table(RESPONSES)
                .map_err(|e| err("open table", e))?;
            let age = txn.open_table(BY_AGE).map_err(|e| err("open table", e))?;
            for row in age.iter().map_err(|e| err("scan", e))? {
                let (_, size) = row.map_err(|e| err("scan", e))?;
                count += 1;
                bytes += size.value();
            }
        }
        txn.commit().map_err(|e| err("commit", e))?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            path: path.to_owned(),
            retention,
            stats: Arc::new(StoreStats::default()),
            count: Arc::new(AtomicU64::new(count)),
            bytes: Arc::new(AtomicU64::new(bytes)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        let out = tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| err("worker", e))?;
        if out.is_err() {
            self.stats.count(&self.stats.errors);
        }
        out
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError> {
        let bytes = r.to_bytes();
        let retention = self.retention;
        let (count, total, stats) = (
            Arc::clone(&self.count),
            Arc::clone(&self.bytes),
            Arc::clone(&self.stats),
        );
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(|e| err("begin", e))?;
            {
                let mut responses = txn.open_table(RESPONSES).map_err(|e| err("open", e))?;
                let mut age = txn.open_table(BY_AGE).map_err(|e| err("open", e))?;
                let old = responses
                    .insert(r.id.as_str(), bytes.as_slice())
                    .map_err(|e| err("insert", e))?
                    .and_then(|v| StoredResponse::from_bytes(v.value()));
                if let Some(old) = old {
                    if let Some(size) = age
                        .remove((old.created_at, old.id.as_str()))
                        .map_err(|e| err("remove", e))?
                    {
                        total.fetch_sub(size.value(), Ordering::Relaxed);
                        count.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                age.insert((r.created_at, r.id.as_str()), bytes.len() as u64)
                    .map_err(|e| err("insert", e))?;
                count.fetch_add(1, Ordering::Relaxed);
                total.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                // Retention: the expired, then the oldest while over the bound.
                let now = now_secs();
                loop {
                    let first = age.first().map_err(|e| err("scan", e))?.map(|(k, v)| {
                        let (created, id) = k.value();
                        (created, id.to_owned(), v.value())
                    });
                    let Some((created, id, size)) = first else {
                        break;
                    };
                    let expired = created + retention.ttl.as_secs() < now;
                    if !expired && total.load(Ordering::Relaxed) <= retention.max_bytes {
                        break;
                    }
                    if id == r.id && !expired {
                        break; // never evict the response just written
                    }
                    age.remove((created, id.as_str()))
                        .map_err(|e| err("evict", e))?;
                    responses.remove(id.as_str()).map_err(|e| err("evict", e))?;
                    total.fetch_sub(size, Ordering::Relaxed);
                    count.fetch_sub(1, Ordering::Relaxed);
                    stats.count(&stats.evictions);
                }
            }
            txn.commit().map_err(|e| err("commit", e))?;
            stats.count(&stats.writes);
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let id = id.to_owned();
        let ttl = self.retention.ttl.as_secs();
        let found = self
            .blocking(move |db| {
                let txn = db.begin_read().map_err(|e| err("begin", e))?;
                let responses = txn.open_table(RESPONSES).map_err(|e| err("open", e))?;
                let v = responses.get(id.as_str()).map_err(|e| err("get", e))?;
                Ok(v.and_then(|v| StoredResponse::from_bytes(v.value()))
                    .filter(|r| r.created_at + ttl >= now_secs()))
            })
            .await?;
        self.stats.count(if found.is_some() {
            &self.stats.hits
        } else {
            &self.stats.misses
        });
        Ok(found)
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let (count, total) = (Arc::clone(&self.count), Arc::clone(&self.bytes));
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(|e| err("begin", e))?;
            let removed = {
                let mut responses = txn.open_table(RESPONSES).map_err(|e| err("open", e))?;
                let mut age = txn.open_table(BY_AGE).map_err(|e| err("open", e))?;
                let old = responses
                    .remove(id.as_str())
                    .map_err(|e| err("remove", e))?
                    .and_then(|v| StoredResponse::from_bytes(v.value()));
                match old {
                    Some(old) => {
                        if let Some(size) = age
                            .remove((old.created_at, old.id.as_str()))
                            .map_err(|e| err("remove", e))?
                        {
                            total.fetch_sub(size.value(), Ordering::Relaxed);
                            count.fetch_sub(1, Ordering::Relaxed);
                        }
                        true
                    }
                    None => false,
                }
            };
            txn.commit().map_err(|e| err("commit", e))?;
            Ok(removed)
        })
        .await
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
    #![allow(clippy::unwrap_used)]
    use super::super::tests::{contract, record};
    use super::*;
    use std::time::Duration;

    fn retention(ttl: u64, max_bytes: u64) -> Retention {
        Retention {
            ttl: Duration::from_secs(ttl),
            max_bytes,
        }
    }

    #[tokio::test]
    async fn embedded_store_contract_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/responses.redb");
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            contract(&s).await;
            s.put(record("resp_kept", None, now_secs(), "kept"))
                .await
                .unwrap();
        }
        // Reopened: what was stored is there, and counted.
        let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
        assert!(s.get("resp_kept").await.unwrap().is_some());
        assert_eq!(s.size().0, 2);
    }

    #[tokio::test]
    async fn expiry_and_eviction_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_secs();
        let s = EmbeddedStore::open(&dir.path().join("a.redb"), retention(60, 1 << 20)).unwrap();
        s.put(record("resp_old", None, now - 120, "x"))
            .await
            .unwrap();
        assert!(s.get("resp_old").await.unwrap().is_none());
        let one = record("resp_0", None, now, "x").to_bytes().len() as u64;
        let s = EmbeddedStore::open(&dir.path().join("b.redb"), retention(3600, one * 2)).unwrap();
        for i in 0..5 {
            s.put(record(&format!("resp_{i}"), None, now + i, "x"))
                .await
                .unwrap();
        }
        assert!(s.get("resp_0").await.unwrap().is_none());
        assert!(s.get("resp_4").await.unwrap().is_some());
        assert_eq!(s.size().0, 2);
        assert_eq!(s.stats().evictions.load(Ordering::Relaxed), 3);
    }
}
