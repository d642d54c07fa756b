//! [`perf`]: performance degradation detection, a latency circuit breaker
//! (`#[cashews::perf]`).

use std::future::Future;
use std::time::Duration;

use super::invalid::{self, Invalid, Value};
use super::slice_rate_limit::now_ms;
use crate::Cache;
use crate::backend::Expiry;
use crate::error::{Error, Result, shorten};
use crate::observe::{Call, StrategyResult};

/// Options of the [`perf`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::PerfOptions;
/// const OPTIONS: PerfOptions = PerfOptions::new(Duration::from_secs(30))
///     .trace_size(20)
///     .window(Duration::from_secs(600));
/// assert_eq!((OPTIONS.trace_size, OPTIONS.window), (20, Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PerfOptions {
    /// How long calls are refused once a degradation is detected.
    pub ttl: Duration,
    /// How many recent latencies the trace holds; the condition is checked only once the
    /// trace is full (default 10).
    pub trace_size: u32,
    /// How old a latency may be and still count: older ones leave the trace, and a trace not
    /// written for this long expires (default one hour).
    pub window: Duration,
    /// Whether a latency means degradation, given the trace of the previous ones (oldest
    /// first, `trace_size` of them). Default: [`PerfOptions::twice_the_mean`].
    pub condition: fn(Duration, &[Duration]) -> bool,
}

impl PerfOptions {
    /// The prefix `#[cashews::perf]` puts before its keys unless told otherwise
    /// (`perf:<key>:trace`, `perf:<key>:lock`).
    ///
    /// Defined by [`Strategy::Perf`](crate::key::Strategy::Perf), with every default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::PerfOptions::DEFAULT_PREFIX, "perf");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::Perf.prefix();

    /// The default [`PerfOptions::window`]: one hour.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(cashews::strategy::PerfOptions::DEFAULT_WINDOW, Duration::from_secs(3600));
    /// ```
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(3600);

    /// Refuse calls for `ttl` once a call takes more than twice the mean of the 10 before it.
    ///
    /// Never fails: a zero `ttl` (it would mean "no expiry": refused forever) is reported by
    /// [`PerfOptions::validate`] (a compile error when the attribute macro builds the options,
    /// an error from [`perf`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::PerfOptions::new(Duration::from_secs(10));
    /// assert_eq!(options.trace_size, 10);
    /// ```
    #[must_use]
    pub const fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            trace_size: 10,
            window: Self::DEFAULT_WINDOW,
            condition: Self::twice_the_mean,
        }
    }

    /// Keeps `trace_size` latencies (Python cashews' `trace_size`).
    ///
    /// Never fails: a zero `trace_size` is reported by [`PerfOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::PerfOptions::new(Duration::from_secs(1)).trace_size(3);
    /// assert_eq!(options.trace_size, 3);
    /// ```
    #[must_use]
    pub const fn trace_size(mut self, trace_size: u32) -> Self {
        self.trace_size = trace_size;
        self
    }

    /// Forgets latencies older than `window`.
    ///
    /// Never fails: a zero `window` is reported by [`PerfOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::PerfOptions::new(Duration::from_secs(1))
    ///     .window(Duration::from_secs(60));
    /// assert_eq!(options.window, Duration::from_secs(60));
    /// ```
    #[must_use]
    pub const fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Decides degradation with `condition(latency, trace)` (Python cashews' `perf_condition`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::PerfOptions;
    /// fn over_a_second(latency: Duration, _trace: &[Duration]) -> bool {
    ///     latency > Duration::from_secs(1)
    /// }
    /// const OPTIONS: PerfOptions = PerfOptions::new(Duration::from_secs(5)).condition(over_a_second);
    /// assert!((OPTIONS.condition)(Duration::from_secs(2), &[]));
    /// ```
    #[must_use]
    pub const fn condition(mut self, condition: fn(Duration, &[Duration]) -> bool) -> Self {
        self.condition = condition;
        self
    }

    /// Checks the options however they were built (by the builders, or through the public
    /// fields): a `ttl` and a `window` longer than zero, a `trace_size` of at least 1. The strategy functions check their options with it;
    /// [`PerfOptions::problem`] is the same check as a `const fn`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option that cannot be used.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::PerfOptions;
    /// assert!(PerfOptions::new(Duration::from_secs(10)).validate().is_ok());
    /// let err = PerfOptions::new(Duration::from_secs(10)).trace_size(0).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value `0` for option `perf.trace_size`: expected at least 1");
    /// ```
    pub fn validate(&self) -> Result<()> {
        invalid::check(self.invalid())
    }

    /// [`PerfOptions::validate`] as a `const fn`: the first problem as a sentence, `None` when the
    /// options are usable. The attribute macro turns it into a compile error, and so can a
    /// constant of yours.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::PerfOptions;
    /// const OPTIONS: PerfOptions = PerfOptions::new(Duration::from_secs(30));
    /// const _: () = assert!(OPTIONS.problem().is_none());
    /// assert_eq!(
    ///     OPTIONS.window(Duration::ZERO).problem(),
    ///     Some("perf: the window must be longer than zero"),
    /// );
    /// ```
    #[must_use]
    pub const fn problem(&self) -> Option<&'static str> {
        invalid::message(self.invalid())
    }

    /// The first option that cannot be used.
    const fn invalid(&self) -> Option<Invalid> {
        Invalid::first([
            Invalid::when(
                self.ttl.is_zero(),
                "perf.ttl",
                Value::Duration(self.ttl),
                "a refusal time longer than zero (zero would mean no expiry: refused forever)",
                "perf: the ttl must be longer than zero",
            ),
            Invalid::when(
                self.trace_size == 0,
                "perf.trace_size",
                Value::Integer(self.trace_size as u64),
                "at least 1",
                "perf: trace_size must be at least 1",
            ),
            Invalid::when(
                self.window.is_zero(),
                "perf.window",
                Value::Duration(self.window),
                "a window longer than zero",
                "perf: the window must be longer than zero",
            ),
        ])
    }

    /// The default condition: `latency` is more than twice the mean of `trace` (never for an
    /// empty trace).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::PerfOptions;
    /// let trace = [Duration::from_millis(10), Duration::from_millis(30)];
    /// assert!(!PerfOptions::twice_the_mean(Duration::from_millis(40), &trace));
    /// assert!(PerfOptions::twice_the_mean(Duration::from_millis(41), &trace));
    /// ```
    #[must_use]
    pub fn twice_the_mean(latency: Duration, trace: &[Duration]) -> bool {
        if trace.is_empty() {
            return false;
        }
        let sum: u128 = trace.iter().map(Duration::as_nanos).sum();
        let len = u128::try_from(trace.len()).unwrap_or(u128::MAX);
        latency.as_nanos().saturating_mul(len) > sum.saturating_mul(2)
    }

    /// The refusal time, never zero (the fields are public, so a zero may have been written).
    fn refusal(&self) -> Duration {
        self.ttl.max(Duration::from_millis(1))
    }

    /// The window, never zero.
    fn span(&self) -> Duration {
        self.window.max(Duration::from_millis(1))
    }

    /// The trace size, never zero.
    fn size(&self) -> usize {
        usize::try_from(self.trace_size.max(1)).unwrap_or(usize::MAX)
    }
}

/// Runs `origin` unless a degradation of `key` was detected less than `ttl` ago; measures
/// how long it took and, when the latency meets the condition (by default more than twice the
/// mean of the `trace_size` latencies before it), refuses the following calls for `ttl`.
///
/// This is what `#[cashews::perf]` expands to. Per call, with `K` the key as given (the macro
/// puts `perf:` before it):
///
/// 1. If `K:lock` exists, the call is refused with [`Error::PerformanceDegraded`],
///    `retry_after` being what is left of the lock; `origin` does not run.
/// 2. `origin` runs; its latency is measured with [`tokio::time::Instant`], whether it
///    returns `Ok` or `Err`.
/// 3. The trace `K:trace` holds the latest latencies (at most `trace_size`, none older than
///    `window` on the cache's [`clock`](Cache::clock)). If it is full and the condition
///    holds for this latency, `K:lock` is set for `ttl` (its value the latency in
///    microseconds) and the trace is cleared, so measuring starts afresh after the refusal;
///    otherwise the latency joins the trace, the oldest leaving it. The trace expires
///    `window` after its last write.
///
/// The call that detects the degradation still returns its own result; the calls after it
/// are refused. The trace lives in the cache, so processes sharing the backend share it
/// (cashews for Python kept it per process).
///
/// # Errors
///
/// `E::from(Error::PerformanceDegraded { .. })` when refused; `origin`'s result unchanged
/// otherwise. A failing backend never breaks the call: if the lock cannot be read, `origin`
/// runs unmeasured; if the latency cannot be recorded, `origin`'s result is still returned;
/// both are logged with `tracing::error!`. In safe mode and when the cache is disabled calls
/// are never refused (fully disabled: no command at all). Errors a retry cannot fix (no
/// backend configured, a bad key) come back through `E::from` without running `origin`.
///
/// # Concurrent calls
///
/// Calls run concurrently; each reads and rewrites the trace after its run, so two calls
/// finishing together may each drop the other's latency (the trace is a sample, not a count).
/// The lock is set only if absent, so one degradation refuses for `ttl` once. Calls already
/// past the check when the lock is set still run.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; a run dropped before it finishes is
/// not measured.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{perf, PerfOptions};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = PerfOptions::new(Duration::from_secs(60)).trace_size(3);
/// let search = |took: u64| {
///     perf(&cache, "perf:search", &options, async move {
///         tokio::time::sleep(Duration::from_millis(took)).await;
///         Ok::<_, cashews::Error>("results")
///     })
/// };
/// for _ in 0..3 {
///     search(10).await?; // the trace: 10 ms, 10 ms, 10 ms
/// }
/// assert_eq!(search(100).await?, "results"); // over twice the mean: degraded
/// let refused = search(10).await.unwrap_err();
/// assert!(matches!(refused, cashews::Error::PerformanceDegraded { retry_after: Some(_), .. }));
/// # Ok(()) }
/// ```
pub fn perf<T, E, F>(
    cache: &Cache,
    key: &str,
    options: &PerfOptions,
    origin: F,
) -> impl Future<Output = Result<T, E>>
where
    E: From<Error>,
    F: Future<Output = Result<T, E>>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        let call = Call::start("perf", None);
        if let Err(error) = options.validate() {
            call.finish(StrategyResult::Error);
            return Err(E::from(error));
        }
        if cache.is_full_disabled() {
            let result = call.within(Box::pin(origin)).await;
            call.finish(StrategyResult::Ok);
            return result;
        }
        let lock = format!("{key}:lock");
        match call.within(check(cache, key, &lock, options)).await {
            Ok(()) => {}
            Err(refused @ Error::PerformanceDegraded { .. }) => {
                call.finish(StrategyResult::Refused);
                return Err(E::from(refused));
            }
            Err(error) if error.is_backend() => {
                crate::error::log_swallowed!(error, key = %shorten(key), %error, "perf could not read its lock; the call runs unmeasured");
                let result = call.within(Box::pin(origin)).await;
                call.finish(StrategyResult::Ok);
                return result;
            }
            Err(error) => {
                call.finish(StrategyResult::Error);
                return Err(E::from(error));
            }
        }
        let started = tokio::time::Instant::now();
        let result = call.within(Box::pin(origin)).await;
        let latency = started.elapsed();
        if let Err(error) = call
            .within(record(cache, key, &lock, options, latency))
            .await
        {
            tracing::error!(key = %shorten(key), %error, "perf could not record a latency");
        }
        call.finish(StrategyResult::Ok);
        result
    }
}

/// `Ok` when calls may run; the refusal while the lock is held.
async fn check(cache: &Cache, key: &str, lock: &str, options: &PerfOptions) -> Result<()> {
    let retry_after = match cache.get_expire(lock).await? {
        Expiry::Missing => return Ok(()),
        Expiry::In(left) => Some(left),
        Expiry::Persistent => {
            // A lock without expiry (written by something else) would refuse forever: give
            // it a lifetime again.
            let heal = options.refusal();
            matches!(cache.expire(lock, heal).await, Ok(true)).then_some(heal)
        }
    };
    crate::observe::refused("perf");
    Err(Error::PerformanceDegraded {
        key: shorten(key),
        retry_after,
    })
}

/// One latency in the trace: when it was recorded (milliseconds on the cache's clock) and
/// how long the call took (microseconds).
type Sample = (u64, u64);

/// Adds `latency` to the trace, or sets the lock when it means degradation.
async fn record(
    cache: &Cache,
    key: &str,
    lock: &str,
    options: &PerfOptions,
    latency: Duration,
) -> Result<()> {
    let trace_key = format!("{key}:trace");
    let now = now_ms(cache);
    let window = u64::try_from(options.span().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut trace: Vec<Sample> = cache.get_boxed(&trace_key).await?.unwrap_or_default();
    trace.retain(|&(at, _)| now.saturating_sub(at) < window);
    let size = options.size();
    if trace.len() > size {
        trace.drain(..trace.len() - size);
    }
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    if trace.len() == size {
        let previous: Vec<Duration> = trace
            .iter()
            .map(|&(_, took)| Duration::from_micros(took))
            .collect();
        if (options.condition)(Duration::from_micros(micros), &previous) {
            let ttl = options.refusal();
            if cache.set_lock(lock, &micros.to_string(), ttl).await? {
                tracing::warn!(key = %shorten(key), latency_us = micros, refused_for_ms = ttl.as_millis(), "performance degraded; calls are refused");
            }
            cache.delete(&trace_key).await?;
            return Ok(());
        }
        trace.remove(0);
    }
    trace.push((now, micros));
    cache.set(&trace_key, &trace, options.span()).await?;
    Ok(())
}
