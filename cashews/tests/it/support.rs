//! Fixtures shared by the test modules.

use std::time::Duration;

use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, MemoryBackend};

/// A cache on a memory backend with a manual clock, which the cache's strategies read too.
pub(crate) fn manual_cache() -> (Cache, Clock) {
    let clock = Clock::manual();
    let cache = Cache::new();
    cache
        .setup_backend(
            "",
            MemoryBackend::with_clock(MemoryOptions::default(), clock.clone()),
            CacheConfig::default(),
        )
        .unwrap();
    (cache, clock)
}

/// Milliseconds.
pub(crate) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub(crate) const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A cache and the manual clock its backend and strategies read (for `static`s in tests).
pub(crate) struct Clocked {
    pub(crate) cache: Cache,
    pub(crate) clock: Clock,
}

/// A [`Clocked`] on a fresh memory backend.
pub(crate) fn clocked() -> Clocked {
    let (cache, clock) = manual_cache();
    Clocked { cache, clock }
}
