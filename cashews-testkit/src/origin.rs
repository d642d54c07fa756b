//! [`CountingOrigin`]: a stand-in for the slow function a cache protects, that counts its calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A slow origin that counts how many times it ran, so tests assert counts, never timings.
///
/// ```
/// use std::time::Duration;
/// use cashews_testkit::CountingOrigin;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let origin = CountingOrigin::new(Duration::ZERO);
/// assert_eq!(origin.call(7).await, 7);
/// assert_eq!(origin.calls(), 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CountingOrigin {
    calls: Arc<AtomicUsize>,
    delay: Duration,
}

impl CountingOrigin {
    /// An origin that takes `delay` (real time) per call, to give concurrent callers time to
    /// pile up on a miss.
    #[must_use]
    pub fn new(delay: Duration) -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            delay,
        }
    }

    /// Runs the origin: counts the call, waits the delay, returns `value`.
    pub async fn call<T>(&self, value: T) -> T {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        value
    }

    /// How many times the origin ran.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}
