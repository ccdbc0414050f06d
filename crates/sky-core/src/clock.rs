//! The injectable clock: every "now" in cluster logic (launched_at, last_use, UP intervals, cost)
//! comes from a [`Clock`], so tests can pin or advance time instead of sleeping.
//!
//! What this module does not do: sleep or schedule. Waiting on real time is the caller's business
//! (and tests avoid it).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch. Whole seconds are precise enough for cost and idle time, and an
/// integer keeps SQLite columns exact.
pub type UnixSeconds = i64;

pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> UnixSeconds;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixSeconds {
        // A clock before 1970 is a broken machine; report the epoch rather than panic.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}
