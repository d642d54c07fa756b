//! [`Clock`]: the time source of the memory backend and of time-window strategies.
//!
//! The system clock in production; a manual clock in tests, so they move time instead of
//! sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A time source: the system's monotonic clock, or a manual one that tests advance.
///
/// Cheap to clone; clones of a manual clock share its time.
///
/// ```
/// use std::time::Duration;
/// use cashews::Clock;
/// let clock = Clock::manual();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - t0, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    System(Instant),
    Manual(Arc<AtomicU64>),
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system's monotonic clock.
    ///
    /// ```
    /// let clock = cashews::Clock::system();
    /// assert!(clock.now() <= clock.now());
    /// ```
    #[must_use]
    pub fn system() -> Self {
        Self {
            kind: Kind::System(Instant::now()),
        }
    }

    /// A clock that only moves when [`Clock::advance`] is called.
    ///
    /// ```
    /// let clock = cashews::Clock::manual();
    /// assert_eq!(clock.now(), clock.now());
    /// ```
    #[must_use]
    pub fn manual() -> Self {
        Self {
            kind: Kind::Manual(Arc::new(AtomicU64::new(0))),
        }
    }

    /// Time elapsed since the clock was created.
    ///
    /// ```
    /// let _elapsed = cashews::Clock::system().now();
    /// ```
    #[must_use]
    pub fn now(&self) -> Duration {
        match &self.kind {
            Kind::System(origin) => origin.elapsed(),
            Kind::Manual(nanos) => Duration::from_nanos(nanos.load(Ordering::Acquire)),
        }
    }

    /// Moves a manual clock forward; does nothing on the system clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = cashews::Clock::manual();
    /// clock.advance(Duration::from_millis(10));
    /// assert_eq!(clock.now(), Duration::from_millis(10));
    /// ```
    pub fn advance(&self, by: Duration) {
        if let Kind::Manual(nanos) = &self.kind {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            nanos.fetch_add(by, Ordering::AcqRel);
        }
    }

    /// Whether this is a manual clock.
    ///
    /// ```
    /// assert!(cashews::Clock::manual().is_manual());
    /// ```
    #[must_use]
    pub fn is_manual(&self) -> bool {
        matches!(self.kind, Kind::Manual(_))
    }
}
