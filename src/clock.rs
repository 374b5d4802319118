//! "Now", for everything that counts TTLs down.
//!
//! Real time by default. Tests and `demo` can move it forward, which is how
//! the story's claim is shown without waiting five minutes: advance the clock
//! past `www`'s 300 s TTL and the next lookup skips the root and `.com`,
//! because the two-day delegation is still cached.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock that can be advanced. Clones share the same time.
#[derive(Debug, Clone)]
pub struct Clock {
    start: Instant,
    /// Microseconds added by [`Clock::advance`].
    skew_us: Arc<AtomicU64>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
            skew_us: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Time since the clock was made, including every advance.
    pub fn now(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_add(Duration::from_micros(self.skew_us.load(Ordering::Relaxed)))
    }

    /// Move time forward by `by` for every clone of this clock. Time
    /// saturates rather than wrapping: it never goes backwards.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .skew_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |skew| {
                Some(skew.saturating_add(by))
            });
    }

    /// How far the clock has been moved ahead of real time.
    pub fn skew(&self) -> Duration {
        Duration::from_micros(self.skew_us.load(Ordering::Relaxed))
    }
}
