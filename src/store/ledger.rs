//! The spend ledger: micro-dollars spent per client key and period (`day:2026-12-03`,
//! `month:2026-12`), kept where the responses are — the embedded file (it survives a
//! restart), Redis (shared, atomically, by every instance), or this process's memory (the
//! `memory` and `none` stores).

use std::collections::HashMap;
use std::sync::Mutex;

use super::StoreError;

/// Periods are kept this long (a month's spend outlives its month by a few days).
pub const KEEP_SECS: u64 = 40 * 86_400;

/// Where spend is kept.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync {
    /// Add `micro` to `client`'s spend in each of `periods`.
    async fn add_spend(
        &self,
        client: &str,
        periods: &[String],
        micro: u64,
    ) -> Result<(), StoreError>;
    /// `client`'s spend in `period` (0 when none).
    async fn spend(&self, client: &str, period: &str) -> Result<u64, StoreError>;
}

/// The key of one client's spend in one period.
pub fn key(client: &str, period: &str) -> String {
    format!("{client}\u{1f}{period}")
}

/// This process's memory.
#[derive(Default)]
pub struct MemoryLedger {
    spent: Mutex<HashMap<String, u64>>,
}

impl MemoryLedger {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        match self.spent.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

#[async_trait::async_trait]
impl Ledger for MemoryLedger {
    async fn add_spend(
        &self,
        client: &str,
        periods: &[String],
        micro: u64,
    ) -> Result<(), StoreError> {
        let mut map = self.lock();
        for p in periods {
            let v = map.entry(key(client, p)).or_insert(0);
            *v = v.saturating_add(micro);
        }
        Ok(())
    }

    async fn spend(&self, client: &str, period: &str) -> Result<u64, StoreError> {
        Ok(self.lock().get(&key(client, period)).copied().unwrap_or(0))
    }
}

/// The ledger contract every kind meets (used by each kind's tests).
#[cfg(test)]
pub async fn contract(l: &dyn Ledger) {
    let day = "day:2026-12-03".to_owned();
    let month = "month:2026-12".to_owned();
    assert_eq!(l.spend("alice", &day).await.unwrap_or(1), 0);
    l.add_spend("alice", &[day.clone(), month.clone()], 1_500)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    l.add_spend("alice", std::slice::from_ref(&day), 500)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    l.add_spend("bob", std::slice::from_ref(&day), 7)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.spend("alice", &day).await.ok(), Some(2_000));
    assert_eq!(l.spend("alice", &month).await.ok(), Some(1_500));
    assert_eq!(l.spend("bob", &day).await.ok(), Some(7));
    assert_eq!(l.spend("alice", "day:2026-12-04").await.ok(), Some(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_ledger_contract() {
        contract(&MemoryLedger::default()).await;
    }
}
