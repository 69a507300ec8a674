//! Money: what a turn cost from its usage and its model's price, the periods spend is
//! counted in, and a client key's budget. Pure: the ledger that keeps the spend is the
//! store's ([`crate::store::Ledger`]).
//!
//! Amounts are kept as integer micro-dollars (`u64`): sums are exact, and a shared store
//! adds them atomically (Redis `INCRBY`).

use serde::Serialize;

/// A model's price, in micro-dollars per million tokens (USD 0.5 per million tokens is
/// `500_000`): integers, so that a configuration compares and costs add up exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Price {
    /// Input tokens not read from the provider's cache.
    pub input: u64,
    /// Input tokens read from the provider's cache.
    pub cached_input: u64,
    pub output: u64,
    /// Input tokens written to the cache, where the provider charges for it (none of the
    /// shipped profiles does: their caches are automatic). Not applied: no profile reports
    /// cache writes.
    pub cache_write: Option<u64>,
}

impl Price {
    /// A price from USD per million tokens.
    pub const fn usd(input: f64, cached_input: f64, output: f64) -> Self {
        Price {
            input: micro(input),
            cached_input: micro(cached_input),
            output: micro(output),
            cache_write: None,
        }
    }

    /// What a turn with this usage cost, in micro-dollars (rounded): the cached input at its
    /// price, the rest of the input at the input price, the output (reasoning included) at
    /// the output price. `input` counts every input token, cached ones included (as every
    /// profile reports it).
    pub fn cost_micro(&self, input: u64, cached: u64, output: u64) -> u64 {
        let cached = cached.min(input);
        let scaled = u128::from(input - cached) * u128::from(self.input)
            + u128::from(cached) * u128::from(self.cached_input)
            + u128::from(output) * u128::from(self.output);
        u64::try_from((scaled + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// Micro-dollars as dollars.
pub fn usd(micro: u64) -> f64 {
    micro as f64 / 1e6
}

/// Micro-dollars written as dollars with six decimals (`0.000384`), for the access line.
#[derive(Debug, Clone, Copy)]
pub struct Usd(pub u64);

impl std::fmt::Display for Usd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// Dollars as micro-dollars, rounded (a budget, a price per million tokens); 0 for
/// anything not a positive amount.
pub const fn micro(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e6 + 0.5) as u64
    } else {
        0
    }
}

/// How long a budget lasts before it starts again (UTC calendar days or months).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Day,
    Month,
}

impl Per {
    pub fn as_str(self) -> &'static str {
        match self {
            Per::Day => "day",
            Per::Month => "month",
        }
    }
}

/// A client key's budget: at most `usd` of spend per period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub usd: f64,
    pub per: Per,
}

/// The period a moment (seconds since the Unix epoch) falls in: `day:2026-12-03` or
/// `month:2026-12` — the ledger's keys.
pub fn period(per: Per, unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days((unix_secs / 86_400) as i64);
    match per {
        Per::Day => format!("day:{y:04}-{m:02}-{d:02}"),
        Per::Month => format!("month:{y:04}-{m:02}"),
    }
}

/// Both periods of a moment (what a turn's spend is added to).
pub fn periods(unix_secs: u64) -> [String; 2] {
    [period(Per::Day, unix_secs), period(Per::Month, unix_secs)]
}

/// When the period of `unix_secs` ends (the next one starts), as `YYYY-MM-DD 00:00 UTC`.
pub fn resets_at(per: Per, unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let (y, m, d) = match per {
        Per::Day => civil_from_days(days + 1),
        Per::Month => {
            let (y, m, _) = civil_from_days(days);
            if m == 12 {
                (y + 1, 1, 1)
            } else {
                (y, m + 1, 1)
            }
        }
    };
    format!("{y:04}-{m:02}-{d:02} 00:00 UTC")
}

/// (year, month, day) of a day count since 1970-01-01 (the proleptic Gregorian calendar;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_costs_its_tokens_at_their_prices() {
        let p = Price::usd(0.5, 0.05, 2.0);
        assert_eq!(p.input, 500_000);
        // 1M input of which 400k cached, 100k output: 0.3 + 0.02 + 0.2 = 0.52 USD.
        assert_eq!(p.cost_micro(1_000_000, 400_000, 100_000), 520_000);
        // Cached tokens never exceed the input.
        assert_eq!(p.cost_micro(10, 50, 0), 1);
        assert_eq!(p.cost_micro(0, 0, 0), 0);
        assert_eq!(usd(520_000), 0.52);
        assert_eq!(micro(20.0), 20_000_000);
        assert_eq!(micro(-1.0), 0);
    }

    #[test]
    fn periods_are_utc_days_and_months() {
        // 2026-12-03 14:00:00 UTC.
        let t = 1_796_306_400;
        assert_eq!(period(Per::Day, t), "day:2026-12-03");
        assert_eq!(period(Per::Month, t), "month:2026-12");
        assert_eq!(resets_at(Per::Day, t), "2026-12-04 00:00 UTC");
        assert_eq!(resets_at(Per::Month, t), "2027-01-01 00:00 UTC");
        // The last second of a day, the first of the next; leap years.
        assert_eq!(period(Per::Day, 1_796_342_399), "day:2026-12-03");
        assert_eq!(period(Per::Day, 1_796_342_400), "day:2026-12-04");
        assert_eq!(period(Per::Day, 951_782_400), "day:2000-02-29");
        assert_eq!(period(Per::Day, 0), "day:1970-01-01");
        assert_eq!(resets_at(Per::Month, 951_782_400), "2000-03-01 00:00 UTC");
    }
}
