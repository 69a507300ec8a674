//! A client key's budget: a key whose spend in the budget's period (today, this month, UTC)
//! reached its budget gets 429 `insufficient_quota` before any provider is called. A turn
//! in flight finishes; its spend counts. The spend is the ledger's (the store's: shared by
//! every instance on one Redis), so every instance refuses alike.

use crate::config::{ClientKey, Config};
use crate::convert::error::ClientError;
use crate::spend::{micro, period, resets_at, usd};
use crate::store::ledger::Ledger;

/// The refusal of a request whose key has used up its budget (`None`: go on). A ledger
/// that cannot be read lets the request through (logged): a budget is a guard, not a
/// reason to stop every turn when the store is down.
pub async fn over_budget(
    config: &Config,
    ledger: Option<&dyn Ledger>,
    token: &str,
    now: u64,
) -> Option<ClientError> {
    let key = config.client_of(token)?;
    let budget = key.budget?;
    let ledger = ledger?;
    let p = period(budget.per, now);
    let spent = match ledger.spend(&key.name, &p).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(client = %key.name, "budget not checked: {e}");
            return None;
        }
    };
    (spent >= micro(budget.usd)).then(|| refusal(key, spent, now))
}

fn refusal(key: &ClientKey, spent: u64, now: u64) -> ClientError {
    let Some(budget) = key.budget else {
        return ClientError::new(429, "insufficient_quota", Some("insufficient_quota"), "");
    };
    let per = budget.per.as_str();
    let this = match budget.per {
        crate::spend::Per::Day => "today",
        crate::spend::Per::Month => "this month",
    };
    ClientError::new(
        429,
        "insufficient_quota",
        Some("insufficient_quota"),
        format!(
            "The budget of client key {:?} is used up: ${} spent {this} of ${} per {per}. It resets at {}.",
            key.name,
            dollars(usd(spent)),
            dollars(budget.usd),
            resets_at(budget.per, now),
        ),
    )
}

/// Dollars as people write them: cents from a dollar on, else as many decimals as needed
/// (at most six).
fn dollars(x: f64) -> String {
    if x >= 1.0 {
        return format!("{x:.2}");
    }
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.')
        .map_or_else(|| s.to_owned(), |t| format!("{t}.00"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::ledger::MemoryLedger;

    fn config() -> Config {
        Config::from_json_str(
            r#"{"auth_tokens": ["plain", {"name": "alice", "token": "ta", "budget": {"usd": 1, "per": "day"}},
                {"name": "bob", "token": "tb"}],
              "backends": [{"name": "glm", "provider": "glm", "url": "http://127.0.0.1:1"}]}"#,
            &|_| None,
        )
        .unwrap()
    }

    /// Over its budget a key is refused until its period ends; other keys go on.
    #[tokio::test]
    async fn a_key_is_refused_once_its_budget_is_spent_and_again_served_the_next_day() {
        let c = config();
        let l = MemoryLedger::default();
        // 2026-12-03 14:00 UTC, then the next day.
        let (today, tomorrow) = (1_796_306_400, 1_796_306_400 + 86_400);
        assert!(over_budget(&c, Some(&l), "ta", today).await.is_none());
        l.add_spend("alice", &crate::spend::periods(today), 999_999)
            .await
            .unwrap();
        assert!(over_budget(&c, Some(&l), "ta", today).await.is_none());
        l.add_spend("alice", &crate::spend::periods(today), 1)
            .await
            .unwrap();
        let err = over_budget(&c, Some(&l), "ta", today).await.unwrap();
        assert_eq!(err.status, 429);
        assert_eq!(err.code.as_deref(), Some("insufficient_quota"));
        assert!(
            err.message.contains("\"alice\"")
                && err.message.contains("$1.00 spent today of $1.00 per day")
                && err.message.contains("2026-12-04 00:00 UTC"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains("ta\""),
            "never the token: {}",
            err.message
        );
        assert!(over_budget(&c, Some(&l), "ta", tomorrow).await.is_none());
        // No budget, no name, no ledger: never refused.
        l.add_spend("bob", &crate::spend::periods(today), u64::MAX)
            .await
            .unwrap();
        assert!(over_budget(&c, Some(&l), "tb", today).await.is_none());
        assert!(over_budget(&c, Some(&l), "plain", today).await.is_none());
        assert!(over_budget(&c, None, "ta", today).await.is_none());
    }
}
