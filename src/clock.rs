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
        self.start.elapsed() + Duration::from_micros(self.skew_us.load(Ordering::Relaxed))
    }

    /// Move time forward by `by` for every clone of this clock.
    pub fn advance(&self, by: Duration) {
        self.skew_us
            .fetch_add(by.as_micros() as u64, Ordering::Relaxed);
    }

    /// How far the clock has been moved ahead of real time.
    pub fn skew(&self) -> Duration {
        Duration::from_micros(self.skew_us.load(Ordering::Relaxed))
    }
}
