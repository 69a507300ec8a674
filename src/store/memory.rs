//! `{"type": "memory"}`: responses in this process's memory, bounded (oldest first), lost on
//! restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{now_secs, Retention, Store, StoreError, StoreStats, StoredResponse};

pub struct MemoryStore {
    inner: Mutex<Inner>,
    retention: Retention,
    stats: StoreStats,
}

#[derive(Default)]
struct Inner {
    /// id → (record, created_at, its output item ids).
    by_id: HashMap<String, (Vec<u8>, u64, Vec<String>)>,
    /// Output item id → its response's id.
    items: HashMap<String, String>,
    /// (created_at, id), oldest first.
    order: VecDeque<(u64, String)>,
    bytes: u64,
}

impl MemoryStore {
    pub fn new(retention: Retention) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            retention,
            stats: StoreStats::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

impl Inner {
    fn remove(&mut self, id: &str) -> bool {
        match self.by_id.remove(id) {
            Some((bytes, _, items)) => {
                self.bytes -= bytes.len() as u64;
                for item in items {
                    if self.items.get(&item).is_some_and(|r| r == id) {
                        self.items.remove(&item);
                    }
                }
                true
            }
            None => false,
        }
    }

    /// Drop expired entries and, over the byte bound, the oldest ones; the number evicted.
    fn trim(&mut self, retention: Retention, now: u64) -> u64 {
        let mut evicted = 0;
        while let Some((created, id)) = self.order.front().cloned() {
            let live = self.by_id.get(&id).is_some_and(|(_, c, _)| *c == created);
            let expired = created + retention.ttl.as_secs() < now;
            if !live {
                self.order.pop_front();
            } else if expired || self.bytes > retention.max_bytes {
                self.order.pop_front();
                self.remove(&id);
                evicted += 1;
            } else {
                break;
            }
        }
        evicted
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError> {
        let bytes = r.to_bytes();
        let items = r.output_ids();
        let mut g = self.lock();
        g.remove(&r.id);
        g.bytes += bytes.len() as u64;
        g.order.push_back((r.created_at, r.id.clone()));
        for item in &items {
            g.items.insert(item.clone(), r.id.clone());
        }
        g.by_id.insert(r.id, (bytes, r.created_at, items));
        let evicted = g.trim(self.retention, now_secs());
        drop(g);
        self.stats
            .evictions
            .fetch_add(evicted, std::sync::atomic::Ordering::Relaxed);
        self.stats.count(&self.stats.writes);
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let g = self.lock();
        let found = g.by_id.get(id).and_then(|(b, created, _)| {
            (created + self.retention.ttl.as_secs() >= now_secs())
                .then(|| StoredResponse::from_bytes(b))
                .flatten()
        });
        drop(g);
        Ok(self.stats.lookup(found))
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().remove(id))
    }

    async fn find_item(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().items.get(item_id).cloned())
    }

    fn size(&self) -> (u64, u64) {
        let g = self.lock();
        (g.by_id.len() as u64, g.bytes)
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
    async fn memory_store_contract() {
        contract(&MemoryStore::new(retention(3600, 1 << 20))).await;
    }

    #[tokio::test]
    async fn expired_and_oldest_go_first() {
        let s = MemoryStore::new(retention(60, 1 << 20));
        let now = now_secs();
        s.put(record("resp_old", None, now - 120, "x"))
            .await
            .unwrap();
        assert!(s.get("resp_old").await.unwrap().is_none());
        // Its items went with it.
        assert!(s.find_item("msg_x").await.unwrap().is_none());
        let one = record("resp_1", None, now, "x").to_bytes().len() as u64;
        let s = MemoryStore::new(retention(3600, one * 2));
        for i in 0..5 {
            s.put(record(&format!("resp_{i}"), None, now, "x"))
                .await
                .unwrap();
        }
        assert!(s.get("resp_0").await.unwrap().is_none());
        assert!(s.get("resp_4").await.unwrap().is_some());
        assert!(s.size().1 <= one * 2);
        assert_eq!(
            s.stats()
                .evictions
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
    }
}
