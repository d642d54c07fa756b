//! [`Clock`]: the time source of the memory backend and of time-window strategies.
//!
//! The system clock in production; a manual clock in tests, so they move time instead of
//! sleeping.
//!
//! # Reading the time on a cache hit
//!
//! Every memory hit on an entry with a TTL compares its deadline with the clock. A precise
//! monotonic reading (`CLOCK_MONOTONIC`) costs 20 to 40 ns on virtual machines, where the vDSO
//! has to read and scale a paravirtual time counter: a large share of a hit. Most deadlines
//! are minutes or hours away, and a cheaper reading is enough to prove that.
//!
//! On Linux the system clock therefore reads `CLOCK_MONOTONIC_COARSE` first
//! (`Clock::now_unless_before`): the same timeline as `CLOCK_MONOTONIC` (both count from
//! boot and are slewed alike), but the value the kernel stored at its last timekeeping update,
//! read from the vDSO data page without touching a counter (a few ns). It is never ahead of
//! the precise clock and lags it by at most one tick (1 to 10 ms) in normal operation. When
//! the coarse reading plus `COARSE_SLACK` (one second, two orders of magnitude above a tick,
//! so a stalled timekeeping CPU on a busy host is covered as well) is still before the
//! deadline, the precise clock is certainly before it too, and no precise reading is taken.
//! Otherwise the precise clock is read and compared exactly, as before, so an entry expires at
//! exactly its deadline, never later. Both readings, and the clock's origin, come from the
//! same call (`clock_gettime` through rustix), so they share one timeline; `std`'s `Instant`
//! is not used for the system clock on Linux. Other systems always read the precise clock;
//! the manual clock is exact by construction.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How far ahead of a coarse reading a deadline must be for the precise reading to be
/// skipped: far above the coarse clock's lag (one tick), see the [module docs](self).
pub(crate) const COARSE_SLACK: Duration = Duration::from_secs(1);

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
    System(Origin),
    Manual(Arc<AtomicU64>),
}

/// The system clock's origin: a `CLOCK_MONOTONIC` reading taken when the clock was made.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
struct Origin(Duration);

#[cfg(target_os = "linux")]
impl Origin {
    fn now() -> Self {
        Self(read(rustix::time::ClockId::Monotonic))
    }

    /// The precise time since the origin.
    fn elapsed(self) -> Duration {
        read(rustix::time::ClockId::Monotonic).saturating_sub(self.0)
    }

    /// The time since the origin on the coarse clock: never ahead of [`Origin::elapsed`],
    /// behind it by at most the coarse clock's lag.
    fn elapsed_coarse(self) -> Duration {
        read(rustix::time::ClockId::MonotonicCoarse).saturating_sub(self.0)
    }
}

/// One reading of a monotonic clock (never negative: both count from boot).
#[cfg(target_os = "linux")]
fn read(id: rustix::time::ClockId) -> Duration {
    let now = rustix::time::clock_gettime(id);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// The system clock's origin elsewhere: `std`'s monotonic `Instant`.
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Clone, Copy)]
struct Origin(std::time::Instant);

#[cfg(not(target_os = "linux"))]
impl Origin {
    fn now() -> Self {
        Self(std::time::Instant::now())
    }

    fn elapsed(self) -> Duration {
        self.0.elapsed()
    }
}

/// The reading a deadline check needs: `None` when the coarse reading proves the precise clock
/// is before `deadline` (see the [module docs](self)); otherwise the precise reading.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn reading_for(
    deadline: Duration,
    coarse: Duration,
    precise: impl FnOnce() -> Duration,
) -> Option<Duration> {
    if coarse.saturating_add(COARSE_SLACK) < deadline {
        None
    } else {
        Some(precise())
    }
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
            kind: Kind::System(Origin::now()),
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

    /// The time now, as [`Clock::now`], unless the clock is certainly before `deadline`: then
    /// `None`, possibly without a precise reading (see the [module docs](self)). A deadline
    /// check that gets `None` knows the deadline has not passed; with `Some(now)` it compares
    /// exactly as it would with [`Clock::now`].
    #[inline]
    pub(crate) fn now_unless_before(&self, deadline: Duration) -> Option<Duration> {
        match &self.kind {
            #[cfg(target_os = "linux")]
            Kind::System(origin) => {
                reading_for(deadline, origin.elapsed_coarse(), || origin.elapsed())
            }
            #[cfg(not(target_os = "linux"))]
            Kind::System(origin) => Some(origin.elapsed()),
            Kind::Manual(_) => Some(self.now()),
        }
    }

    /// The reading a new deadline `ttl` from now is counted from: [`Clock::now`], or for a
    /// TTL of [`COARSE_SLACK`] or more on the system clock the coarse reading (see the
    /// [module docs](self)), which is never ahead of the precise one and lags it by a tick:
    /// such an entry may expire up to a tick (1 to 10 ms) before its full TTL, never after.
    #[inline]
    pub(crate) fn now_for_deadline(&self, ttl: Duration) -> Duration {
        match &self.kind {
            #[cfg(target_os = "linux")]
            Kind::System(origin) if ttl >= COARSE_SLACK => origin.elapsed_coarse(),
            _ => self.now(),
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// Calls `reading_for` and reports whether it took the precise reading.
    fn decide(deadline: Duration, coarse: Duration, precise: Duration) -> (Option<Duration>, bool) {
        let mut read = false;
        let reading = reading_for(deadline, coarse, || {
            read = true;
            precise
        });
        (reading, read)
    }

    #[test]
    fn a_far_deadline_skips_the_precise_reading() {
        let coarse = 100 * SEC;
        let deadline = coarse + COARSE_SLACK + Duration::from_nanos(1);
        assert_eq!(decide(deadline, coarse, coarse), (None, false));
        assert_eq!(decide(3600 * SEC, coarse, coarse), (None, false));
    }

    #[test]
    fn a_near_deadline_reads_the_precise_clock() {
        let coarse = 100 * SEC;
        let precise = coarse + Duration::from_millis(4);
        for deadline in [
            coarse + COARSE_SLACK,
            coarse + Duration::from_millis(5),
            precise,
            coarse,
            coarse - SEC,
            Duration::ZERO,
        ] {
            assert_eq!(
                decide(deadline, coarse, precise),
                (Some(precise), true),
                "deadline {deadline:?}"
            );
        }
    }

    #[test]
    fn a_coarse_reading_near_the_end_of_time_reads_the_precise_clock() {
        assert_eq!(
            decide(Duration::MAX, Duration::MAX, Duration::MAX),
            (Some(Duration::MAX), true)
        );
    }

    #[test]
    fn the_manual_clock_always_gives_its_exact_time() {
        let clock = Clock::manual();
        clock.advance(5 * SEC);
        assert_eq!(clock.now_unless_before(3600 * SEC), Some(5 * SEC));
        assert_eq!(clock.now_unless_before(Duration::ZERO), Some(5 * SEC));
    }

    #[test]
    fn the_system_clock_reads_precisely_at_a_passed_deadline() {
        let clock = Clock::system();
        let before = clock.now();
        let reading = clock.now_unless_before(Duration::ZERO);
        assert!(reading.is_some_and(|now| now >= before));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_coarse_clock_is_on_the_precise_timeline() {
        let origin = Origin::now();
        let coarse = origin.elapsed_coarse();
        let precise = origin.elapsed();
        // Read first, on the same timeline: never ahead of the precise clock.
        assert!(coarse <= precise);
    }
}
