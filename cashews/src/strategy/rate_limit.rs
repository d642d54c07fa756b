//! [`rate_limit`] and [`rate_limited`]: the fixed-window rate limit (`#[cashews::rate_limit]`).

use std::future::Future;
use std::time::Duration;

use super::invalid::{self, Invalid, Value};
use crate::Cache;
use crate::backend::Expiry;
use crate::error::{Error, Result, shorten};
use crate::observe::{Call, StrategyResult};

/// Options of the [`rate_limit`] strategy; the attribute macro builds them as a constant.
///
/// At most `limit` calls pass per fixed window of `period`; with a ban (`ttl`), the first
/// refused call of a window refuses every call for `ttl` from then on.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::RateLimitOptions;
/// const OPTIONS: RateLimitOptions =
///     RateLimitOptions::new(100, Duration::from_secs(60)).ttl(Duration::from_secs(600));
/// assert_eq!(OPTIONS.limit, 100);
/// assert_eq!(OPTIONS.ttl, Some(Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimitOptions {
    /// How many calls pass per window (`0` refuses every call).
    pub limit: u64,
    /// The length of a window, counted from the first call of the window.
    pub period: Duration,
    /// The ban: on the first refused call of a window, the counter's lifetime becomes this
    /// long, so every call is refused until it ends. `None` (the default): refused calls wait
    /// only for the end of the current window.
    pub ttl: Option<Duration>,
}

impl RateLimitOptions {
    /// The prefix `#[cashews::rate_limit]` puts before its keys unless told otherwise
    /// (`rate_limit:<key>`).
    ///
    /// Defined by [`Strategy::RateLimit`](crate::key::Strategy::RateLimit), with every default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::RateLimitOptions::DEFAULT_PREFIX, "rate_limit");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::RateLimit.prefix();

    /// `limit` calls per `period`, no ban.
    ///
    /// Never fails: a zero `period` (the counter would never expire) is reported by
    /// [`RateLimitOptions::validate`] (a compile error when the attribute macro builds the
    /// options, an error from [`rate_limit`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = cashews::strategy::RateLimitOptions::new(10, Duration::from_secs(1));
    /// assert_eq!(options.ttl, None);
    /// ```
    #[must_use]
    pub const fn new(limit: u64, period: Duration) -> Self {
        Self {
            limit,
            period,
            ttl: None,
        }
    }

    /// With a ban of `ttl` starting at the first refused call of a window (Python cashews' `ttl`). A ban
    /// shorter than the rest of the window shortens the window.
    ///
    /// Never fails: a zero `ttl` (it would mean "no expiry": banned forever) is reported by
    /// [`RateLimitOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::RateLimitOptions;
    /// let options = RateLimitOptions::new(1, Duration::from_secs(1)).ttl(Duration::from_secs(3));
    /// assert_eq!(options.ttl, Some(Duration::from_secs(3)));
    /// ```
    #[must_use]
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Checks the options however they were built (by the builders, or through the public
    /// fields): a `period` longer than zero, and a ban (`ttl`), when given, longer than zero. The strategy functions check their options with it;
    /// [`RateLimitOptions::problem`] is the same check as a `const fn`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option that cannot be used.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::RateLimitOptions;
    /// assert!(RateLimitOptions::new(10, Duration::from_secs(1)).validate().is_ok());
    /// let err = RateLimitOptions::new(10, Duration::ZERO).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid value `0ns` for option `rate_limit.period`: expected a window longer than zero");
    /// ```
    pub fn validate(&self) -> Result<()> {
        invalid::check(self.invalid())
    }

    /// [`RateLimitOptions::validate`] as a `const fn`: the first problem as a sentence, `None` when the
    /// options are usable. The attribute macro turns it into a compile error, and so can a
    /// constant of yours.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::RateLimitOptions;
    /// const OPTIONS: RateLimitOptions = RateLimitOptions::new(100, Duration::from_secs(60));
    /// const _: () = assert!(OPTIONS.problem().is_none());
    /// assert_eq!(
    ///     OPTIONS.ttl(Duration::ZERO).problem(),
    ///     Some("rate_limit: the ban ttl must be longer than zero"),
    /// );
    /// ```
    #[must_use]
    pub const fn problem(&self) -> Option<&'static str> {
        invalid::message(self.invalid())
    }

    /// The first option that cannot be used.
    const fn invalid(&self) -> Option<Invalid> {
        let ban = match self.ttl {
            Some(ban) => ban,
            None => Duration::MAX,
        };
        Invalid::first([
            Invalid::when(
                self.period.is_zero(),
                "rate_limit.period",
                Value::Duration(self.period),
                "a window longer than zero",
                "rate_limit: the period must be longer than zero",
            ),
            Invalid::when(
                ban.is_zero(),
                "rate_limit.ttl",
                Value::Duration(ban),
                "a ban longer than zero, or none (zero would mean no expiry: banned forever)",
                "rate_limit: the ban ttl must be longer than zero",
            ),
        ])
    }

    /// The period, never zero (the fields are public, so a zero may have been written).
    fn window(&self) -> Duration {
        self.period.max(Duration::from_millis(1))
    }

    /// The ban, ignoring a zero written into the field.
    fn ban(&self) -> Option<Duration> {
        self.ttl.filter(|ban| !ban.is_zero())
    }
}

/// Counts one call against the fixed-window limit of `key`; `Ok(())` lets it through,
/// [`Error::RateLimited`] refuses it.
///
/// One atomic `incr` per call: the counter at `key` is created with `period` as its TTL, so
/// the window starts at the first call and every backend sharing the key shares the limit.
/// The key is used as given (`#[cashews::rate_limit]` puts `rate_limit:` before it).
///
/// Refused calls keep counting. `retry_after` is when the counter expires: the rest of the
/// window, or the ban. On the first refused call of a window with a ban (`count == limit + 1`)
/// the counter's TTL becomes the ban. Without a ban the window is not extended.
///
/// Use [`rate_limited`] to wrap a call; call this one to answer a refusal differently (the
/// `action` of the macro).
///
/// # Errors
///
/// [`Error::RateLimited`] when over the limit; [`Error::InvalidOption`], without counting,
/// for options [`RateLimitOptions::validate`] refuses. A rate limiter whose store fails lets calls
/// through: a backend failure (connection, timeout, a key holding something other than a
/// counter) is logged with `tracing::error!` and the call passes, as in safe mode (where the
/// backend answers 0) and when the cache or `incr` is disabled. Errors that a retry cannot
/// fix are returned: no backend configured ([`Error::NotConfigured`]), an empty or too long
/// key.
///
/// # Concurrent calls
///
/// Exactly `limit` calls pass per window however many run at once, in this process or
/// others sharing the backend: the count is one atomic increment.
///
/// # Cancellation
///
/// The call counts as soon as the increment is done; dropping the future after that does
/// not give the slot back.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{rate_limit, RateLimitOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = RateLimitOptions::new(2, Duration::from_secs(60));
/// rate_limit(&cache, "rate_limit:login:ada", &options).await?;
/// rate_limit(&cache, "rate_limit:login:ada", &options).await?;
/// let refused = rate_limit(&cache, "rate_limit:login:ada", &options).await.unwrap_err();
/// assert!(matches!(refused, cashews::Error::RateLimited { retry_after: Some(_), limit: 2, .. }));
/// # Ok(()) }
/// ```
pub async fn rate_limit(cache: &Cache, key: &str, options: &RateLimitOptions) -> Result<()> {
    count(cache, key, options).await.map(|_| ())
}

/// [`rate_limit`], telling how many calls the window has counted (this one included) when
/// the call passes, `None` when it passes unchecked (a failing backend, safe mode, a disabled
/// cache).
pub(crate) async fn count(
    cache: &Cache,
    key: &str,
    options: &RateLimitOptions,
) -> Result<Option<u64>> {
    options.validate()?;
    let count = match cache.incr_by(key, 1, options.window()).await {
        Ok(count) => count,
        Err(error) => return let_through("rate_limit", key, error).map(|()| None),
    };
    let limit = i64::try_from(options.limit).unwrap_or(i64::MAX);
    if count <= limit {
        // 0: the cache swallowed the command (safe mode, disabled): nothing was counted.
        return Ok(u64::try_from(count).ok().filter(|&n| n > 0));
    }
    let first_refusal = count - 1 == limit;
    let retry_after = match options.ban() {
        Some(ban) if first_refusal => start_ban(cache, key, ban).await,
        _ => remaining(cache, key, options).await,
    };
    crate::observe::refused("rate_limit");
    Err(Error::RateLimited {
        retry_after,
        limit: options.limit,
        remaining: 0,
        reset: retry_after,
    })
}

/// Runs `origin` if the fixed-window limit of `key` lets the call through; otherwise returns
/// [`Error::RateLimited`] converted into the caller's error type, without running `origin`.
///
/// This is what `#[cashews::rate_limit]` expands to (without `action`); see [`rate_limit`]
/// for the counting, the ban and `retry_after`.
///
/// # Errors
///
/// `E::from(Error::RateLimited { .. })` when refused; `origin`'s own errors unchanged. A
/// failing backend lets the call through, as described on [`rate_limit`]; its
/// configuration errors come back through `E::from`.
///
/// # Concurrent calls
///
/// Exactly `limit` calls run `origin` per window, across every process sharing the backend.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; a call counted before the drop stays
/// counted.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{rate_limited, RateLimitOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = RateLimitOptions::new(1, Duration::from_secs(60));
/// let first: cashews::Result<u32> = rate_limited(&cache, "k", &options, async { Ok(1) }).await;
/// let second: cashews::Result<u32> = rate_limited(&cache, "k", &options, async { Ok(2) }).await;
/// assert_eq!(first?, 1);
/// assert!(matches!(second, Err(cashews::Error::RateLimited { .. })));
/// # Ok(()) }
/// ```
pub fn rate_limited<T, E, F>(
    cache: &Cache,
    key: &str,
    options: &RateLimitOptions,
    origin: F,
) -> impl Future<Output = Result<T, E>>
where
    E: From<Error>,
    F: Future<Output = Result<T, E>>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        let call = Call::start("rate_limit", None);
        if let Err(error) = call.within(rate_limit(cache, key, options)).await {
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

/// Starts the ban: the counter now lives `ban` from this call on.
async fn start_ban(cache: &Cache, key: &str, ban: Duration) -> Option<Duration> {
    match cache.expire(key, ban).await {
        Ok(true) => Some(ban),
        Ok(false) => None,
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "rate_limit could not start the ban; the call is refused until the window ends");
            None
        }
    }
}

/// How long the counter still lives: when a call may pass again.
async fn remaining(cache: &Cache, key: &str, options: &RateLimitOptions) -> Option<Duration> {
    match cache.get_expire(key).await {
        Ok(Expiry::In(left)) => Some(left),
        Ok(Expiry::Persistent) => {
            // A counter without expiry (written by something else) would refuse forever: give
            // it a lifetime again.
            let heal = options.ban().unwrap_or_else(|| options.window());
            matches!(cache.expire(key, heal).await, Ok(true)).then_some(heal)
        }
        Ok(Expiry::Missing) => None,
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "rate_limit could not read the window's expiry; refused without retry_after");
            None
        }
    }
}

/// A refusal strategy met `error` before deciding: a failing backend lets the call through
/// (logged), anything else (configuration, key) is returned.
pub(super) fn let_through(strategy: &'static str, key: &str, error: Error) -> Result<()> {
    if error.is_backend() {
        crate::error::log_swallowed!(error, strategy, key = %shorten(key), %error, "cache backend failed; the call is let through unchecked");
        Ok(())
    } else {
        Err(error)
    }
}
