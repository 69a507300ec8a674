//! Read-your-writes in front of any store. A finished response is written in the background
//! (the reply never waits for the store), yet a client may continue it the moment it has the
//! reply: until its write is done, the response is served from memory here. A write that
//! fails drops it (as if it had never been stored); a delete while it is being written wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Store, StoreError, StoreStats, StoredResponse};

pub struct Staged {
    inner: Arc<dyn Store>,
    /// Responses being written.
    writing: Mutex<HashMap<String, Arc<StoredResponse>>>,
}

impl Staged {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Staged {
            inner,
            writing: Mutex::new(HashMap::new()),
        }
    }

    fn writing(&self) -> MutexGuard<'_, HashMap<String, Arc<StoredResponse>>> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep `r`: readable here at once, written in the background (a failed write is
    /// logged and counted by the store, never turned into a failed response).
    pub fn keep(self: &Arc<Self>, r: StoredResponse) {
        let id = r.id.clone();
        let r = Arc::new(r);
        self.writing().insert(id.clone(), Arc::clone(&r));
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = this.inner.put_shared(r).await {
                tracing::warn!("could not store a response: {e}");
            }
            let deleted_meanwhile = this.writing().remove(&id).is_none();
            if deleted_meanwhile {
                let _ = this.inner.delete(&id).await;
            }
        });
    }

    /// Responses being written now.
    pub fn in_flight(&self) -> usize {
        self.writing().len()
    }
}

#[async_trait::async_trait]
impl Store for Staged {
    async fn put(&self, r: StoredResponse) -> Result<(), StoreError> {
        self.inner.put(r).await
    }

    async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let staged = self.writing().get(id).map(|r| StoredResponse::clone(r));
        match staged {
            Some(r) => Ok(self.inner.stats().lookup(Some(r))),
            None => self.inner.get(id).await,
        }
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let staged = self.writing().remove(id).is_some();
        let stored = self.inner.delete(id).await?;
        Ok(staged || stored)
    }

    /// A response being written is searched here first (its items are not indexed below
    /// until its write is done).
    async fn find_item(&self, item_id: &str) -> Result<Option<String>, StoreError> {
        let staged = self
            .writing()
            .values()
            .find(|r| r.output_item(item_id).is_some())
            .map(|r| r.id.clone());
        match staged {
            Some(id) => Ok(Some(id)),
            None => self.inner.find_item(item_id).await,
        }
    }

    fn size(&self) -> (u64, u64) {
        self.inner.size()
    }

    fn stats(&self) -> &StoreStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::memory::MemoryStore;
    use super::super::now_secs;
    use super::super::tests::{record, retention};
    use super::*;
    use std::time::Duration;

    fn staged() -> Arc<Staged> {
        let inner = MemoryStore::new(retention(3600, 1 << 20));
        Arc::new(Staged::new(Arc::new(inner)))
    }

    async fn settle(s: &Staged) {
        for _ in 0..100 {
            if s.in_flight() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the background write never finished");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_kept_response_is_readable_before_its_write_runs() {
        let s = staged();
        s.keep(record("resp_a", None, now_secs(), "a"));
        // The write task has not run yet on this one-thread runtime.
        assert_eq!(s.in_flight(), 1);
        assert!(s.get("resp_a").await.unwrap().is_some());
        assert!(s.inner.find_item("msg_a").await.unwrap().is_none());
        assert_eq!(
            s.find_item("msg_a").await.unwrap().as_deref(),
            Some("resp_a")
        );
        settle(&s).await;
        assert_eq!(
            s.find_item("msg_a").await.unwrap().as_deref(),
            Some("resp_a")
        );
        assert!(s.inner.get("resp_a").await.unwrap().is_some());
        assert!(s.get("resp_a").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_delete_while_writing_wins() {
        let s = staged();
        s.keep(record("resp_b", None, now_secs(), "b"));
        assert!(s.delete("resp_b").await.unwrap());
        settle(&s).await;
        assert!(s.get("resp_b").await.unwrap().is_none());
        assert!(s.inner.get("resp_b").await.unwrap().is_none());
    }
}
