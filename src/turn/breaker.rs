//! A circuit breaker per backend: a backend that keeps failing before its first byte
//! (connections refused, 429s and 5xx, no head in time) is taken out of rotation for a
//! cool-down — its turns go to its fallbacks — then one turn probes it (half-open): an
//! answer closes the circuit, a failure opens it again. Without a fallback to go to, a turn
//! still tries the open backend (a refusal of the proxy's own would help no one).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures in a row that open a backend's circuit, by default.
pub const TRIP_AFTER: u32 = 5;
/// How long an open circuit keeps its backend out of rotation, by default.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

/// A backend's circuit settings (`backends[].circuit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Circuit {
    /// Failures in a row that open it.
    pub trip_after: u32,
    /// How long it stays open before a probe.
    pub cool_down: Duration,
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            trip_after: TRIP_AFTER,
            cool_down: COOL_DOWN,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// Cooled down: one turn probes the backend.
    HalfOpen {
        probing: bool,
    },
}

/// A circuit's state, as `/metrics` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    HalfOpen,
    Open,
}

impl State {
    /// `ccp_circuit_state`'s value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> u8 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }
}

/// The circuits of every backend (by index).
pub struct Breakers {
    circuits: Vec<Arc<Mutex<Phase>>>,
}

fn closed() -> Arc<Mutex<Phase>> {
    Arc::new(Mutex::new(Phase::Closed { failures: 0 }))
}

impl Breakers {
    pub fn new(backends: usize) -> Self {
        Breakers {
            circuits: (0..backends).map(|_| closed()).collect(),
        }
    }

    /// The circuits of a reloaded configuration: backend `i` shares the circuit of this
    /// one's `from[i]` (the same backend), or starts closed.
    pub fn carry(&self, from: &[Option<usize>]) -> Self {
        Breakers {
            circuits: from
                .iter()
                .map(|i| {
                    i.and_then(|i| self.circuits.get(i))
                        .cloned()
                        .unwrap_or_else(closed)
                })
                .collect(),
        }
    }

    fn with<T>(&self, i: usize, f: impl FnOnce(&mut Phase) -> T) -> Option<T> {
        let m = self.circuits.get(i)?;
        let mut g = match m.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Some(f(&mut g))
    }

    /// May a turn try backend `i` now? An open circuit says no until its cool-down ends;
    /// then the first turn to ask probes it, and the others wait for the probe's outcome.
    pub fn allow(&self, i: usize, now: Instant) -> bool {
        self.with(i, |p| match *p {
            Phase::Closed { .. } => true,
            Phase::Open { until } if now < until => false,
            Phase::Open { .. } | Phase::HalfOpen { probing: false } => {
                *p = Phase::HalfOpen { probing: true };
                true
            }
            Phase::HalfOpen { probing: true } => false,
        })
        .unwrap_or(true)
    }

    /// Backend `i` answered (any status not worth another attempt): its circuit closes.
    pub fn success(&self, i: usize) {
        self.with(i, |p| {
            if !matches!(p, Phase::Closed { failures: 0 }) {
                if !matches!(p, Phase::Closed { .. }) {
                    tracing::info!(backend = i, "circuit closed: the backend answers again");
                }
                *p = Phase::Closed { failures: 0 };
            }
        });
    }

    /// Backend `i` failed before its first byte: `c.trip_after` in a row (or a failed
    /// probe) open its circuit for `c.cool_down`. `true` when this failure opened it.
    pub fn failure(&self, i: usize, now: Instant, c: &Circuit) -> bool {
        self.with(i, |p| {
            let open = match *p {
                Phase::Closed { failures } if failures + 1 < c.trip_after => {
                    *p = Phase::Closed {
                        failures: failures + 1,
                    };
                    false
                }
                Phase::Open { .. } => false,
                _ => true,
            };
            if open {
                *p = Phase::Open {
                    until: now + c.cool_down,
                };
            }
            open
        })
        .unwrap_or(false)
    }

    /// Backend `i`'s state now.
    pub fn state(&self, i: usize, now: Instant) -> State {
        self.with(i, |p| match *p {
            Phase::Closed { .. } => State::Closed,
            Phase::Open { until } if now < until => State::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => State::HalfOpen,
        })
        .unwrap_or(State::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_probes_after_the_cool_down_and_closes_on_an_answer() {
        let b = Breakers::new(2);
        let c = Circuit::default();
        let t0 = Instant::now();
        for _ in 0..TRIP_AFTER - 1 {
            assert!(!b.failure(0, t0, &c));
        }
        // An answer in between starts the count again.
        b.success(0);
        for _ in 0..TRIP_AFTER - 1 {
            b.failure(0, t0, &c);
        }
        assert!(b.allow(0, t0) && b.state(0, t0) == State::Closed);
        assert!(b.failure(0, t0, &c), "the fifth in a row opens it");
        assert_eq!(b.state(0, t0), State::Open);
        assert!(!b.allow(0, t0 + COOL_DOWN / 2));
        assert!(b.allow(1, t0), "another backend's circuit is its own");
        // Cooled down: one probe at a time.
        let later = t0 + COOL_DOWN;
        assert_eq!(b.state(0, later), State::HalfOpen);
        assert!(b.allow(0, later));
        assert!(!b.allow(0, later), "one probe at a time");
        // A failed probe opens it again; an answer closes it.
        assert!(b.failure(0, later, &c));
        assert!(!b.allow(0, later + Duration::from_secs(1)));
        let again = later + COOL_DOWN;
        assert!(b.allow(0, again));
        b.success(0);
        assert_eq!(b.state(0, again), State::Closed);
        assert!(b.allow(0, again) && b.allow(0, again));
        assert_eq!((State::Closed.gauge(), State::Open.gauge()), (0, 2));
    }
}
