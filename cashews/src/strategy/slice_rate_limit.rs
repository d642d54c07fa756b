//! [`slice_rate_limit`] and [`slice_rate_limited`]: the sliding-window rate limit
//! (`#[cashews::slice_rate_limit]`).

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::invalid::{self, Invalid, Value};
use super::rate_limit::let_through;
use crate::Cache;
use crate::backend::Expiry;
use crate::error::{Error, Result, shorten};
use crate::observe::{Call, StrategyResult};

/// Options of the [`slice_rate_limit`] strategy; the attribute macro builds them as a
/// constant.
///
/// At most `limit` calls pass in any window of `period` ending now.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::SliceRateLimitOptions;
/// const OPTIONS: SliceRateLimitOptions = SliceRateLimitOptions::new(5, Duration::from_secs(10));
/// assert_eq!(OPTIONS.limit, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SliceRateLimitOptions {
    /// How many calls pass in any window (`0` refuses every call).
    pub limit: u64,
    /// The length of the sliding window (millisecond resolution).
    pub period: Duration,
}

impl SliceRateLimitOptions {
    /// The prefix `#[cashews::slice_rate_limit]` puts before its keys unless told otherwise
    /// (`srl:<key>`).
    ///
    /// Defined by [`Strategy::SliceRateLimit`](crate::key::Strategy::SliceRateLimit), with every
    /// default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::SliceRateLimitOptions::DEFAULT_PREFIX, "srl");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::SliceRateLimit.prefix();

    /// `limit` calls in any window of `period`.
    ///
    /// Never fails: a zero `period` is reported by [`SliceRateLimitOptions::validate`] (a
    /// compile error when the attribute macro builds the options, an error from
    /// [`slice_rate_limit`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::SliceRateLimitOptions::new(10, Duration::from_secs(1));
    /// assert_eq!(options.period, Duration::from_secs(1));
    /// ```
    #[must_use]
    pub const fn new(limit: u64, period: Duration) -> Self {
        Self { limit, period }
    }

    /// Checks the options however they were built (by the builders, or through the public
    /// fields): a `period` longer than zero. The strategy functions check their options with it;
    /// [`SliceRateLimitOptions::problem`] is the same check as a `const fn`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option that cannot be used.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::SliceRateLimitOptions;
    /// assert!(SliceRateLimitOptions::new(10, Duration::from_secs(1)).validate().is_ok());
    /// let err = SliceRateLimitOptions::new(10, Duration::ZERO).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value `0ns` for option `slice_rate_limit.period`: expected a window longer than zero");
    /// ```
    pub fn validate(&self) -> Result<()> {
        invalid::check(self.invalid())
    }

    /// [`SliceRateLimitOptions::validate`] as a `const fn`: the first problem as a sentence, `None` when the
    /// options are usable. The attribute macro turns it into a compile error, and so can a
    /// constant of yours.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::SliceRateLimitOptions;
    /// const _: () = assert!(SliceRateLimitOptions::new(5, Duration::from_secs(1)).problem().is_none());
    /// assert_eq!(
    ///     SliceRateLimitOptions::new(5, Duration::ZERO).problem(),
    ///     Some("slice_rate_limit: the period must be longer than zero"),
    /// );
    /// ```
    #[must_use]
    pub const fn problem(&self) -> Option<&'static str> {
        invalid::message(self.invalid())
    }

    /// The first option that cannot be used.
    const fn invalid(&self) -> Option<Invalid> {
        Invalid::when(
            self.period.is_zero(),
            "slice_rate_limit.period",
            Value::Duration(self.period),
            "a window longer than zero",
            "slice_rate_limit: the period must be longer than zero",
        )
    }
}

/// Counts one call against the sliding-window limit of `key`; `Ok(())` lets it through,
/// [`Error::RateLimited`] refuses it.
///
/// One atomic [`Cache::slice_incr_now`] per call: the key holds the times of the calls of
/// the last `period`, in milliseconds, and a call passes if fewer than `limit` lie in
/// `(now − period, now]`. Calls at the same millisecond count separately. The key is used
/// as given (`#[cashews::slice_rate_limit]` puts `srl:` before it).
///
/// "Now" is read by the backend while it counts: the memory backend's
/// [`Clock`](crate::Clock) (a manual one, given with
/// [`Cache::setup_with_clock`], lets tests move time without sleeping), the Redis server's
/// `TIME`, or the wall clock for disk.
///
/// As in cashews for Python, the first refused call of a full window is recorded too (the
/// window holds at most `limit + 1` events, so refusals cannot grow it); later refusals are
/// not. `retry_after` is the window key's remaining lifetime: by then every event now in it
/// has left it. It is an upper bound: a call may pass earlier, when the oldest events slide
/// out.
///
/// Use [`slice_rate_limited`] to wrap a call; call this one to answer a refusal differently.
///
/// # Errors
///
/// [`Error::RateLimited`] when over the limit; [`Error::InvalidOption`], without counting,
/// for options [`SliceRateLimitOptions::validate`] refuses. A failing backend lets calls through, logged
/// with `tracing::error!`, as in safe mode and when the cache is disabled; errors a retry
/// cannot fix (no backend configured, a bad key) are returned.
///
/// # Concurrent calls
///
/// Exact, across every process sharing the backend: counting, stamping and recording are
/// one atomic command, and the backend stamps each call when it runs it, so calls are
/// recorded in the order of their stamps and at most `limit` calls pass in any window of
/// `period`, however many callers race. (Stamps taken by each caller before sending, as
/// [`Cache::slice_incr`] takes them, could reach the backend out of order and let a few
/// extra calls through near the limit.)
///
/// # Cancellation
///
/// The call counts as soon as the command is done; dropping the future after that does not
/// give the slot back.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{slice_rate_limit, SliceRateLimitOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = SliceRateLimitOptions::new(1, Duration::from_secs(60));
/// slice_rate_limit(&cache, "srl:search", &options).await?;
/// let refused = slice_rate_limit(&cache, "srl:search", &options).await.unwrap_err();
/// assert!(matches!(refused, cashews::Error::RateLimited { .. }));
/// # Ok(()) }
/// ```
pub async fn slice_rate_limit(
    cache: &Cache,
    key: &str,
    options: &SliceRateLimitOptions,
) -> Result<()> {
    count(cache, key, options).await.map(|_| ())
}

/// [`slice_rate_limit`], telling how many calls the window holds (this one included) when
/// the call passes, `None` when it passes unchecked (a failing backend, safe mode, a disabled
/// cache).
pub(crate) async fn count(
    cache: &Cache,
    key: &str,
    options: &SliceRateLimitOptions,
) -> Result<Option<u64>> {
    options.validate()?;
    let period = window_length(options.period);
    let max = options.limit.saturating_add(1);
    let count = match cache.slice_incr_now(key, period, max, period).await {
        Ok(count) => count,
        Err(error) => return let_through("slice_rate_limit", key, error).map(|()| None),
    };
    if count <= options.limit {
        // 0: the cache swallowed the command (safe mode, disabled): nothing was counted.
        return Ok(Some(count).filter(|&n| n > 0));
    }
    let retry_after = match cache.get_expire(key).await {
        Ok(Expiry::In(left)) => Some(left),
        Ok(Expiry::Persistent | Expiry::Missing) => None,
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "slice_rate_limit could not read the window's expiry; refused without retry_after");
            None
        }
    };
    crate::observe::refused("slice_rate_limit");
    Err(Error::RateLimited {
        retry_after,
        limit: options.limit,
        remaining: 0,
        reset: retry_after,
    })
}

/// Runs `origin` if the sliding-window limit of `key` lets the call through; otherwise
/// returns [`Error::RateLimited`] converted into the caller's error type, without running
/// `origin`.
///
/// This is what `#[cashews::slice_rate_limit]` expands to (without `action`); see
/// [`slice_rate_limit`] for the window and `retry_after`.
///
/// # Errors
///
/// `E::from(Error::RateLimited { .. })` when refused; `origin`'s own errors unchanged. A
/// failing backend lets the call through, as described on [`slice_rate_limit`].
///
/// # Concurrent calls
///
/// As on [`slice_rate_limit`]: exact, whatever the number of callers and processes.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; a call counted before the drop stays
/// counted.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{slice_rate_limited, SliceRateLimitOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = SliceRateLimitOptions::new(1, Duration::from_secs(60));
/// let first: cashews::Result<&str> = slice_rate_limited(&cache, "k", &options, async { Ok("ran") }).await;
/// let second: cashews::Result<&str> = slice_rate_limited(&cache, "k", &options, async { Ok("ran") }).await;
/// assert_eq!(first?, "ran");
/// assert!(matches!(second, Err(cashews::Error::RateLimited { .. })));
/// # Ok(()) }
/// ```
pub fn slice_rate_limited<T, E, F>(
    cache: &Cache,
    key: &str,
    options: &SliceRateLimitOptions,
    origin: F,
) -> impl Future<Output = Result<T, E>>
where
    E: From<Error>,
    F: Future<Output = Result<T, E>>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        let call = Call::start("slice_rate_limit", None);
        if let Err(error) = call.within(slice_rate_limit(cache, key, options)).await {
            call.finish(match error {
                Error::RateLimited { .. } => StrategyResult::Refused,
                _ => StrategyResult::Error,
            });
            return Err(E::from(error));
        }
        let result = call.within(Box::pin(origin)).await;
        call.finish(StrategyResult::Ok);
        result
    }
}

/// A window length usable as a TTL and in milliseconds: at least 1 ms (the fields are
/// public, so a zero may have been written).
pub(super) fn window_length(period: Duration) -> Duration {
    period.max(Duration::from_millis(1))
}

/// Event time in milliseconds, for strategies that stamp on the caller's side (`perf`; the
/// sliding windows here are stamped by the backend): the cache's manual clock when it has
/// one, otherwise Unix time (the system clock's origin is per process, so it cannot order
/// events that several processes record in one backend).
pub(super) fn now_ms(cache: &Cache) -> u64 {
    let clock = cache.clock();
    let now = if clock.is_manual() {
        clock.now()
    } else {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    };
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}
