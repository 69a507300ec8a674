//! The default store: a redb file on local disk. Every write is committed durably, so a
//! restart (or a crash) keeps every stored response; expired responses and, over the size
//! bound, the oldest ones are removed as new ones come in. redb is synchronous: each call
//! runs on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{now_secs, Retention, Store, StoreError, StoreStats, StoredResponse};

/// Page cache of the store file.
const CACHE_BYTES: usize = 16 << 20;

/// Under load, the least time between two commits of the writer (see [`writer`]).
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
/// The most writes one commit takes.
const MAX_BATCH: usize = 1024;

/// A file this much larger than twice its records is compacted at start.
const COMPACT_SLACK: u64 = 4 << 20;

/// id → the stored record.
const RESPONSES: TableDefinition<&str, &[u8]> = TableDefinition::new("responses");
/// (created_at, id) → record size: the order of eviction.
const BY_AGE: TableDefinition<(u64, &str), u64> = TableDefinition::new("by_age");
/// Output item id → the id of its response (what an `item_reference` names), written and
/// removed with the response. (A file from before this table has its responses unindexed:
/// their items cannot be referenced, they can still be continued.)
const ITEMS: TableDefinition<&str, &str> = TableDefinition::new("items");
/// Client key and period → micro-dollars spent (the spend ledger).
const SPEND: TableDefinition<&str, u64> = TableDefinition::new("spend");

pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    retention: Retention,
    stats: Arc<StoreStats>,
    count: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    writes: std::sync::Mutex<Option<std::sync::mpsc::Sender<WriteOp>>>,
    writer: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for EmbeddedStore {
    /// Let the writer finish what it has, then release the file.
    fn drop(&mut self) {
        if let Ok(mut w) = self.writes.lock() {
            w.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
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
        // redb caches up to 1 GiB of pages by default: bounded here, as the proxy's memory
        // should not grow with the store (the pages are on disk; lookups are by key).
        let mut db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| err(&format!("cannot open {}", path.display()), e))?;
        let shared = Shared {
            retention,
            stats: Arc::new(StoreStats::default()),
            count: Arc::new(AtomicU64::new(0)),
            bytes: Arc::new(AtomicU64::new(0)),
        };
        // Create the tables, count what is there, and apply the retention now (a shorter
        // TTL or a smaller bound than the last run's takes effect at once).
        let txn = db.begin_write().map_err(|e| err("begin", e))?;
        {
            let mut responses = txn
                .open_table(RESPONSES)
                .map_err(|e| err("open table", e))?;
            let mut age = txn.open_table(BY_AGE).map_err(|e| err("open table", e))?;
            let mut items = txn.open_table(ITEMS).map_err(|e| err("open table", e))?;
            let (mut count, mut bytes) = (0u64, 0u64);
            for row in age.iter().map_err(|e| err("scan", e))? {
                let (_, size) = row.map_err(|e| err("scan", e))?;
                count += 1;
                bytes += size.value();
            }
            shared.count.store(count, Ordering::Relaxed);
            shared.bytes.store(bytes, Ordering::Relaxed);
            let mut t = Tables {
                responses: &mut responses,
                age: &mut age,
                items: &mut items,
            };
            trim(&mut t, None, &shared)?;
        }
        txn.commit().map_err(|e| err("commit", e))?;
        // While the proxy runs, freed pages are reused but the file keeps its largest size;
        // at start, a file much larger than its records is compacted (nothing else has it
        // open yet).
        let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if file_len > 2 * shared.bytes.load(Ordering::Relaxed) + COMPACT_SLACK {
            match db.compact() {
                Ok(_) => {
                    let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    tracing::info!(path = %path.display(), before = file_len, after, "response store compacted");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "response store not compacted: {e}")
                }
            }
        }
        let db = Arc::new(db);
        let (tx, rx) = std::sync::mpsc::channel();
        let (wdb, wshared) = (Arc::clone(&db), shared.clone());
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(wdb, rx, wshared))
            .map_err(|e| err("writer thread", e))?;
        Ok(EmbeddedStore {
            db,
            path: path.to_owned(),
            retention,
            stats: shared.stats,
            count: shared.count,
            bytes: shared.bytes,
            writes: std::sync::Mutex::new(Some(tx)),
            writer: std::sync::Mutex::new(Some(handle)),
        })
    }

    fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        let tx = match self.writes.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(tx) = tx else {
            return Err(err("writer", "stopped"));
        };
        tx.send(op).map_err(|_| {
            self.stats.count(&self.stats.errors);
            err("writer", "stopped")
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

/// A write for the writer thread, with where to report its outcome.
enum WriteOp {
    Put(
        Arc<StoredResponse>,
        tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ),
    Delete(
        String,
        tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
    ),
    /// Add micro-dollars to ledger keys.
    Spend(
        Vec<String>,
        u64,
        tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ),
}

/// The writer thread: every write of the store goes through it, and the writes waiting
/// together are committed in one transaction (one fsync for many responses, and no pile of
/// blocked threads behind redb's single write lock).
fn writer(db: Arc<Database>, rx: std::sync::mpsc::Receiver<WriteOp>, shared: Shared) {
    // The start of the last commit: under load, commits are at least COMMIT_INTERVAL apart,
    // and what arrives meanwhile joins the next one (a commit costs the same for one record
    // or a hundred); an idle store commits a write at once.
    let mut last_commit: Option<std::time::Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let gather_until = last_commit.map(|t| t + COMMIT_INTERVAL);
        while batch.len() < MAX_BATCH {
            let next = match gather_until {
                Some(until) => {
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        rx.try_recv().ok()
                    } else {
                        rx.recv_timeout(left).ok()
                    }
                }
                None => rx.try_recv().ok(),
            };
            match next {
                Some(op) => batch.push(op),
                None => break,
            }
        }
        last_commit = Some(std::time::Instant::now());
        let mut outcomes: Vec<Result<bool, StoreError>> = Vec::with_capacity(batch.len());
        let result = (|| -> Result<(), StoreError> {
            let txn = db.begin_write().map_err(|e| err("begin", e))?;
            {
                let mut responses = txn.open_table(RESPONSES).map_err(|e| err("open", e))?;
                let mut age = txn.open_table(BY_AGE).map_err(|e| err("open", e))?;
                let mut items = txn.open_table(ITEMS).map_err(|e| err("open", e))?;
                let mut spend = txn.open_table(SPEND).map_err(|e| err("open", e))?;
                let mut t = Tables {
                    responses: &mut responses,
                    age: &mut age,
                    items: &mut items,
                };
                for op in &batch {
                    let outcome = match op {
                        WriteOp::Put(r, _) => put_in(&mut t, r, &shared).map(|()| true),
                        WriteOp::Delete(id, _) => remove_in(&mut t, id, &shared),
                        WriteOp::Spend(keys, micro, _) => add_spend_in(&mut spend, keys, *micro),
                    };
                    outcomes.push(outcome);
                }
                let last_put = batch.iter().rev().find_map(|op| match op {
                    WriteOp::Put(r, _) => Some(r.id.clone()),
                    WriteOp::Delete(..) | WriteOp::Spend(..) => None,
                });
                trim(&mut t, last_put.as_deref(), &shared)?;
            }
            txn.commit().map_err(|e| err("commit", e))
        })();
        for (op, outcome) in batch.into_iter().zip(
            outcomes
                .into_iter()
                .map(Some)
                .chain(std::iter::repeat_with(|| None)),
        ) {
            let outcome = match (&result, outcome) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), Some(o)) => o,
                (Ok(()), None) => Err(err("write", "not applied")),
            };
            if outcome.is_err() {
                shared.stats.count(&shared.stats.errors);
            }
            match op {
                WriteOp::Put(_, tx) => {
                    if outcome.is_ok() {
                        shared.stats.count(&shared.stats.writes);
                    }
                    let _ = tx.send(outcome.map(|_| ()));
                }
                WriteOp::Delete(_, tx) => {
                    let _ = tx.send(outcome);
                }
                WriteOp::Spend(_, _, tx) => {
                    let _ = tx.send(outcome.map(|_| ()));
                }
            }
        }
    }
}

/// Add `micro` to each ledger key (in the writer's transaction).
fn add_spend_in(
    spend: &mut redb::Table<'_, &str, u64>,
    keys: &[String],
    micro: u64,
) -> Result<bool, StoreError> {
    for k in keys {
        let now = spend
            .get(k.as_str())
            .map_err(|e| err("read spend", e))?
            .map_or(0, |v| v.value());
        spend
            .insert(k.as_str(), now.saturating_add(micro))
            .map_err(|e| err("write spend", e))?;
    }
    Ok(true)
}

/// What the writer thread and the store share.
#[derive(Clone)]
struct Shared {
    retention: Retention,
    stats: Arc<StoreStats>,
    count: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

type Responses<'t> = redb::Table<'t, &'static str, &'static [u8]>;
type ByAge<'t> = redb::Table<'t, (u64, &'static str), u64>;
type Items<'t> = redb::Table<'t, &'static str, &'static str>;

/// The tables of one write transaction.
struct Tables<'a, 't> {
    responses: &'a mut Responses<'t>,
    age: &'a mut ByAge<'t>,
    items: &'a mut Items<'t>,
}

impl Tables<'_, '_> {
    /// Index `r`'s output items.
    fn index(&mut self, r: &StoredResponse) -> Result<(), StoreError> {
        for item in r.output_ids() {
            self.items
                .insert(item.as_str(), r.id.as_str())
                .map_err(|e| err("insert", e))?;
        }
        Ok(())
    }

    /// Forget the index of `old`'s output items (those still naming it).
    fn unindex(&mut self, old: &StoredResponse) -> Result<(), StoreError> {
        for item in old.output_ids() {
            let ours = self
                .items
                .get(item.as_str())
                .map_err(|e| err("get", e))?
                .is_some_and(|v| v.value() == old.id);
            if ours {
                self.items
                    .remove(item.as_str())
                    .map_err(|e| err("remove", e))?;
            }
        }
        Ok(())
    }
}

fn put_in(t: &mut Tables<'_, '_>, r: &StoredResponse, shared: &Shared) -> Result<(), StoreError> {
    let bytes = r.to_bytes();
    let old = t
        .responses
        .insert(r.id.as_str(), bytes.as_slice())
        .map_err(|e| err("insert", e))?
        .and_then(|v| StoredResponse::from_bytes(v.value()));
    if let Some(old) = old {
        t.unindex(&old)?;
        if let Some(size) = t
            .age
            .remove((old.created_at, old.id.as_str()))
            .map_err(|e| err("remove", e))?
        {
            shared.bytes.fetch_sub(size.value(), Ordering::Relaxed);
            shared.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
    t.index(r)?;
    t.age
        .insert((r.created_at, r.id.as_str()), bytes.len() as u64)
        .map_err(|e| err("insert", e))?;
    shared.count.fetch_add(1, Ordering::Relaxed);
    shared
        .bytes
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    Ok(())
}

fn remove_in(t: &mut Tables<'_, '_>, id: &str, shared: &Shared) -> Result<bool, StoreError> {
    let old = t
        .responses
        .remove(id)
        .map_err(|e| err("remove", e))?
        .and_then(|v| StoredResponse::from_bytes(v.value()));
    let Some(old) = old else {
        return Ok(false);
    };
    t.unindex(&old)?;
    if let Some(size) = t
        .age
        .remove((old.created_at, old.id.as_str()))
        .map_err(|e| err("remove", e))?
    {
        shared.bytes.fetch_sub(size.value(), Ordering::Relaxed);
        shared.count.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(true)
}

/// Retention: the expired, then the oldest while over the bound (never `keep`, the
/// response just written).
fn trim(t: &mut Tables<'_, '_>, keep: Option<&str>, shared: &Shared) -> Result<(), StoreError> {
    let now = now_secs();
    loop {
        let first = t.age.first().map_err(|e| err("scan", e))?.map(|(k, v)| {
            let (created, id) = k.value();
            (created, id.to_owned(), v.value())
        });
        let Some((created, id, size)) = first else {
            return Ok(());
        };
        let expired = created + shared.retention.ttl.as_secs() < now;
        let over = shared.bytes.load(Ordering::Relaxed) > shared.retention.max_bytes;
        if !expired && (!over || keep == Some(id.as_str())) {
            return Ok(());
        }
        t.age
            .remove((created, id.as_str()))
            .map_err(|e| err("evict", e))?;
        let old = t
            .responses
            .remove(id.as_str())
            .map_err(|e| err("evict", e))?
            .and_then(|v| StoredResponse::from_bytes(v.value()));
        if let Some(old) = old {
            t.unindex(&old)?;
        }
        shared.bytes.fetch_sub(size, Ordering::Relaxed);
        shared.count.fetch_sub(1, Ordering::Relaxed);
        shared.stats.count(&shared.stats.evictions);
    }
}

/// Spend in the store file's `spend` table, written by the writer thread with the responses.
#[async_trait::async_trait]
impl super::ledger::Ledger for EmbeddedStore {
    async fn add_spend(
        &self,
        client: &str,
        periods: &[String],
        micro: u64,
    ) -> Result<(), StoreError> {
        let keys = periods
            .iter()
            .map(|p| super::ledger::key(client, p))
            .collect();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(WriteOp::Spend(keys, micro, tx))?;
        rx.await.map_err(|_| err("writer", "stopped"))?
    }

    async fn spend(&self, client: &str, period: &str) -> Result<u64, StoreError> {
        let k = super::ledger::key(client, period);
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin", e))?;
            let table = match txn.open_table(SPEND) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                Err(e) => return Err(err("open", e)),
            };
            Ok(table
                .get(k.as_str())
                .map_err(|e| err("read spend", e))?
                .map_or(0, |v| v.value()))
        })
        .await
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError> {
        self.put_shared(Arc::new(r)).await
    }

    async fn put_shared(&self, r: Arc<StoredResponse>) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(WriteOp::Put(r, tx))?;
        rx.await.map_err(|e| err("writer", e))?
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
        Ok(self.stats.lookup(found))
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(WriteOp::Delete(id.to_owned(), tx))?;
        rx.await.map_err(|e| err("writer", e))?
    }

    async fn find_item(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        let item_id = item_id.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(|e| err("begin", e))?;
            let items = txn.open_table(ITEMS).map_err(|e| err("open", e))?;
            let v = items.get(item_id.as_str()).map_err(|e| err("get", e))?;
            Ok(v.map(|v| v.value().to_owned()))
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
    use super::super::tests::{contract, record, retention};
    use super::*;

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

    /// The spend ledger in the store file: the contract, and the spend is still there after
    /// a restart.
    #[tokio::test]
    async fn embedded_ledger_contract_and_restart() {
        use crate::store::ledger::{contract, Ledger};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("responses.redb");
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
            contract(&s).await;
        }
        let s = EmbeddedStore::open(&path, retention(3600, 1 << 20)).unwrap();
        assert_eq!(s.spend("alice", "day:2026-12-03").await.unwrap(), 2_000);
        s.add_spend("alice", &["day:2026-12-03".to_owned()], 1)
            .await
            .unwrap();
        assert_eq!(s.spend("alice", "day:2026-12-03").await.unwrap(), 2_001);
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
        // Its items went with it.
        assert!(s.find_item("msg_x").await.unwrap().is_none());
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

    #[tokio::test]
    async fn a_smaller_bound_applies_at_start_and_the_file_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        let now = now_secs();
        let body = "y".repeat(64 * 1024);
        {
            let s = EmbeddedStore::open(&path, retention(3600, 1 << 30)).unwrap();
            for i in 0..200 {
                s.put(record(&format!("resp_{i:03}"), None, now + i, &body))
                    .await
                    .unwrap();
            }
            assert_eq!(s.size().0, 200);
        }
        let big = std::fs::metadata(&path).unwrap().len();
        assert!(big > 12 << 20, "{big}");
        let one = record("resp_000", None, now, &body).to_bytes().len() as u64;
        let s = EmbeddedStore::open(&path, retention(3600, one * 3)).unwrap();
        // The newest three are kept; the file shrinks to what they need.
        assert_eq!(s.size().0, 3);
        assert!(s.get("resp_199").await.unwrap().is_some());
        assert!(s.get("resp_196").await.unwrap().is_none());
        let small = std::fs::metadata(&path).unwrap().len();
        assert!(small < big / 4, "{small} vs {big}");
    }
}
