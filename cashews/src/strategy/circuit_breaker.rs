//! [`circuit_breaker`]: refuse calls while their error rate is high
//! (`#[cashews::circuit_breaker]`).

use std::future::Future;
use std::time::Duration;

use super::invalid::{self, Invalid, Value};
use super::slice_rate_limit::window_length;
use crate::Cache;
use crate::backend::Expiry;
use crate::error::{Error, Result, shorten};
use crate::observe::{Call, StrategyResult};

/// The most calls (and failures) a window counts, unless `min_calls` needs more: it bounds
/// the memory a window takes. Past it, the error rate is measured on the calls counted.
const WINDOW_CAP: u64 = 9999;

/// Options of the [`circuit_breaker`] strategy; the attribute macro builds them as a
/// constant.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::CircuitBreakerOptions;
/// const OPTIONS: CircuitBreakerOptions =
///     CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30))
///         .min_calls(20)
///         .half_open_ttl(Duration::from_secs(5));
/// assert_eq!(OPTIONS.errors_rate, 50);
/// assert_eq!(OPTIONS.half_open_share, 50);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CircuitBreakerOptions {
    /// The error rate, in percent of the calls of the last `period`, that opens the circuit
    /// (strictly between 0 and 100).
    pub errors_rate: u8,
    /// The sliding window over which calls and failures are counted (millisecond resolution).
    pub period: Duration,
    /// How long the circuit stays open (every call refused).
    pub ttl: Duration,
    /// How long the circuit stays half-open after the open time: `None` (the default) closes
    /// it as soon as `ttl` ends.
    pub half_open_ttl: Option<Duration>,
    /// How many calls the window must hold before the error rate can open the circuit
    /// (default 1).
    pub min_calls: u64,
    /// The share of calls, in percent, let through while half-open (default 50: the coin flip
    /// of cashews for Python). `0` and `100` make the half-open state deterministic.
    pub half_open_share: u8,
    /// How many calls may probe the upstream at once while half-open (default 1): a call the
    /// draw lets through must also take one of these slots, counted atomically on the backend
    /// (`K:probes`), so concurrent callers in every process share them. The others are refused
    /// until a probe ends: a successful probe closes the circuit, a failed one opens it again.
    pub half_open_probes: u32,
}

impl CircuitBreakerOptions {
    /// The prefix `#[cashews::circuit_breaker]` puts before its keys unless told otherwise
    /// (`circuit_breaker:<key>:total`, …).
    ///
    /// Defined by [`Strategy::CircuitBreaker`](crate::key::Strategy::CircuitBreaker), with every
    /// default key.
    ///
    /// ```
    /// assert_eq!(cashews::strategy::CircuitBreakerOptions::DEFAULT_PREFIX, "circuit_breaker");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = crate::key::Strategy::CircuitBreaker.prefix();

    /// Opens for `ttl` when `errors_rate` percent of the calls of the last `period` failed;
    /// `min_calls` 1, no half-open state.
    ///
    /// Never fails: an `errors_rate` of 0 or of 100 and above, or a zero `period` or `ttl`, is
    /// reported by [`CircuitBreakerOptions::validate`] (a compile error when the attribute
    /// macro builds the options, an error from [`circuit_breaker`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(5, Duration::from_secs(1), Duration::from_secs(10));
    /// assert_eq!((options.min_calls, options.half_open_ttl), (1, None));
    /// ```
    #[must_use]
    pub const fn new(errors_rate: u8, period: Duration, ttl: Duration) -> Self {
        Self {
            errors_rate,
            period,
            ttl,
            half_open_ttl: None,
            min_calls: 1,
            half_open_share: 50,
            half_open_probes: 1,
        }
    }

    /// Requires `min_calls` calls in the window before the error rate can open the circuit
    /// (`0` behaves as `1`: a window with no call has no rate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(5, Duration::from_secs(1), Duration::from_secs(1))
    ///     .min_calls(10);
    /// assert_eq!(options.min_calls, 10);
    /// ```
    #[must_use]
    pub const fn min_calls(mut self, min_calls: u64) -> Self {
        self.min_calls = min_calls;
        self
    }

    /// After the open time, stays half-open for `half_open_ttl`: a share of calls
    /// ([`CircuitBreakerOptions::half_open_share`]) is let through as trials, the rest
    /// refused.
    ///
    /// Never fails: a zero `half_open_ttl` is reported by
    /// [`CircuitBreakerOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(5, Duration::from_secs(1), Duration::from_secs(1))
    ///     .half_open_ttl(Duration::from_secs(2));
    /// assert_eq!(options.half_open_ttl, Some(Duration::from_secs(2)));
    /// ```
    #[must_use]
    pub const fn half_open_ttl(mut self, half_open_ttl: Duration) -> Self {
        self.half_open_ttl = Some(half_open_ttl);
        self
    }

    /// Lets `percent` of the calls through while half-open (default 50).
    ///
    /// Never fails: a `percent` above 100 is reported by [`CircuitBreakerOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(5, Duration::from_secs(1), Duration::from_secs(1))
    ///     .half_open_share(10);
    /// assert_eq!(options.half_open_share, 10);
    /// ```
    #[must_use]
    pub const fn half_open_share(mut self, percent: u8) -> Self {
        self.half_open_share = percent;
        self
    }

    /// Lets at most `probes` calls probe the upstream at once while half-open (default 1); `0`
    /// lets none through, so the circuit closes only when the half-open time ends.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(5, Duration::from_secs(1), Duration::from_secs(1))
    ///     .half_open_ttl(Duration::from_secs(2))
    ///     .half_open_probes(3);
    /// assert_eq!(options.half_open_probes, 3);
    /// assert_eq!(CircuitBreakerOptions::new(5, Duration::from_secs(1), Duration::from_secs(1)).half_open_probes, 1);
    /// ```
    #[must_use]
    pub const fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// Checks the options however they were built (by the builders, or through the public
    /// fields): `errors_rate` strictly between 0 and 100, a `period`, a `ttl` and a
    /// `half_open_ttl` (when given) longer than zero, a `half_open_share` of at most 100.
    /// [`circuit_breaker`] checks its options with it; [`CircuitBreakerOptions::problem`] is
    /// the same check as a `const fn`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidOption`] naming the first option that cannot be used
    /// (`circuit_breaker.errors_rate`, …).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let (period, ttl) = (Duration::from_secs(1), Duration::from_secs(10));
    /// assert!(CircuitBreakerOptions::new(5, period, ttl).validate().is_ok());
    /// let err = CircuitBreakerOptions::new(100, period, ttl).validate().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid value `100` for option `circuit_breaker.errors_rate`: expected a percentage strictly between 0 and 100",
    /// );
    /// ```
    pub fn validate(&self) -> Result<()> {
        invalid::check(self.invalid())
    }

    /// [`CircuitBreakerOptions::validate`] as a `const fn`: the first problem as a sentence,
    /// `None` when the options are usable. The attribute macro turns it into a compile error,
    /// and so can a constant of yours.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// const OPTIONS: CircuitBreakerOptions =
    ///     CircuitBreakerOptions::new(10, Duration::from_secs(1), Duration::from_secs(5));
    /// const _: () = assert!(OPTIONS.problem().is_none());
    /// assert_eq!(
    ///     OPTIONS.half_open_ttl(Duration::ZERO).problem(),
    ///     Some("circuit_breaker: half_open_ttl must be longer than zero"),
    /// );
    /// ```
    #[must_use]
    pub const fn problem(&self) -> Option<&'static str> {
        invalid::message(self.invalid())
    }

    /// The first option that cannot be used.
    const fn invalid(&self) -> Option<Invalid> {
        let half_open = match self.half_open_ttl {
            Some(ttl) => ttl,
            None => Duration::MAX,
        };
        Invalid::first([
            Invalid::when(
                self.errors_rate == 0 || self.errors_rate >= 100,
                "circuit_breaker.errors_rate",
                Value::Integer(self.errors_rate as u64),
                "a percentage strictly between 0 and 100",
                "circuit_breaker: errors_rate is a percentage strictly between 0 and 100",
            ),
            Invalid::when(
                self.period.is_zero(),
                "circuit_breaker.period",
                Value::Duration(self.period),
                "a period longer than zero",
                "circuit_breaker: the period must be longer than zero",
            ),
            Invalid::when(
                self.ttl.is_zero(),
                "circuit_breaker.ttl",
                Value::Duration(self.ttl),
                "an open time longer than zero",
                "circuit_breaker: the ttl must be longer than zero",
            ),
            Invalid::when(
                half_open.is_zero(),
                "circuit_breaker.half_open_ttl",
                Value::Duration(half_open),
                "a half-open time longer than zero, or none",
                "circuit_breaker: half_open_ttl must be longer than zero",
            ),
            Invalid::when(
                self.half_open_share > 100,
                "circuit_breaker.half_open_share",
                Value::Integer(self.half_open_share as u64),
                "a percentage of at most 100",
                "circuit_breaker: half_open_share is a percentage, at most 100",
            ),
        ])
    }

    /// The most events a window holds: enough for `min_calls` to be reachable.
    fn cap(&self) -> u64 {
        WINDOW_CAP.max(self.min_calls.saturating_add(1))
    }

    /// The half-open time, ignoring a zero written into the field.
    fn half_open(&self) -> Option<Duration> {
        self.half_open_ttl.filter(|d| !d.is_zero())
    }
}

/// Runs `origin` unless the circuit of `key` is open; counts its failures (the errors `when`
/// accepts) and opens the circuit when they reach `errors_rate` percent of the calls of the
/// last `period`, with at least `min_calls` calls.
///
/// This is what `#[cashews::circuit_breaker]` expands to; `when` is its `exceptions` filter
/// (`|_| true` counts every error). Errors `when` rejects count as calls, not failures.
///
/// Per call, with `K` the key as given (the macro puts `circuit_breaker:` before it):
///
/// 1. If `K:open` exists, the call is refused with [`Error::CircuitOpen`], `retry_after`
///    being what is left of the open time.
/// 2. If `K:halfopen` exists, the call is refused with `retry_after: None` unless it wins the
///    draw ([`CircuitBreakerOptions::half_open_share`], ½ by default) and then takes a probe
///    slot: `K:probes` is incremented (atomically, created for `half_open_ttl`) and must not
///    exceed [`CircuitBreakerOptions::half_open_probes`] (1 by default).
/// 3. The call is counted in the sliding window `K:total` (times in milliseconds, stamped by
///    the backend as it counts: see [`Cache::slice_incr_now`]), then `origin` runs.
/// 4. On an error `when` accepts, the call is counted in `K:fails`; if the window holds at
///    least `min_calls` calls and `fails × 100 ≥ errors_rate × total`, the circuit opens:
///    `K:open` is set for `ttl` (NX) and, with `half_open_ttl`, `K:halfopen` for
///    `ttl + half_open_ttl` and `K:probes` is deleted (the next half-open state has fresh
///    slots). A probe that fails opens the circuit again; a probe that ends otherwise closes
///    it: `K:halfopen` and `K:probes` are deleted.
///
/// Differences from cashews for Python, on purpose: the half-open time starts when the open
/// time ends (Python starts it at the first refused call, so a `half_open_ttl` shorter than
/// `ttl` often gave no half-open state at all); a failure while half-open re-opens the
/// circuit at once, whatever `min_calls` says; the share let through is configurable; once
/// a window holds 9999 calls (or `min_calls`), further calls count neither as calls nor as
/// failures, so a busy window measures the rate on a sample instead of reporting 100 %.
/// Half-open admits a bounded number of probes at once (Python lets every caller that wins
/// the coin flip through, so a burst of callers all reached a failing upstream); the first
/// successful probe closes the circuit.
///
/// # Errors
///
/// `E::from(Error::CircuitOpen { .. })` when refused; `E::from(Error::InvalidOption { .. })`,
/// without running `origin`, for options [`CircuitBreakerOptions::validate`] refuses;
/// `origin`'s result unchanged otherwise.
/// A failing backend never breaks the call: if the state cannot be read, the call runs
/// unchecked; if a failure cannot be recorded, `origin`'s result is still returned; both are
/// logged with `tracing::error!`. In safe mode and when the cache is disabled the circuit
/// never opens. Errors a retry cannot fix (no backend configured, a bad key) come back
/// through `E::from` without running `origin`.
///
/// # Concurrent calls
///
/// Counting is atomic per window and stamped by the backend when it counts, so concurrent
/// calls, in this process or others sharing the backend, are all counted, each window holds
/// at most its cap, and every count covers exactly the calls of the last `period`; the
/// circuit opens once (the open flag is set only if absent).
/// Calls already past the check when the circuit opens still run. While half-open, at most
/// `half_open_probes` calls run at once, in all processes together; the others are refused
/// until a probe ends.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; a call dropped while `origin` runs
/// is counted as a call, not as a failure. A probe dropped while it runs keeps its slot until
/// the half-open time ends (then the circuit closes).
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{circuit_breaker, CircuitBreakerOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let options = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30));
/// let call = |ok: bool| {
///     circuit_breaker(&cache, "circuit_breaker:payments", &options, |_: &cashews::Error| true, async move {
///         if ok { Ok("paid") } else { Err(cashews::Error::Locked { key: "upstream".into() }) }
///     })
/// };
/// assert_eq!(call(true).await?, "paid");
/// assert!(call(false).await.is_err()); // 1 failure in 2 calls: 50 %, the circuit opens
/// assert!(matches!(call(true).await, Err(cashews::Error::CircuitOpen { retry_after: Some(_) })));
/// # Ok(()) }
/// ```
pub fn circuit_breaker<T, E, W, F>(
    cache: &Cache,
    key: &str,
    options: &CircuitBreakerOptions,
    when: W,
    origin: F,
) -> impl Future<Output = Result<T, E>>
where
    E: From<Error>,
    W: Fn(&E) -> bool,
    F: Future<Output = Result<T, E>>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future. Here it is held once, and boxed as it runs.
    async move {
        options.validate()?;
        let call = Call::start("circuit_breaker", None);
        let mut keys = Keys::new(key);
        let admitted = match call.within(admit(cache, &mut keys, options)).await {
            Ok(Admission::Refused(retry_after)) => {
                crate::observe::refused("circuit_breaker");
                call.finish(StrategyResult::Refused);
                return Err(E::from(Error::CircuitOpen { retry_after }));
            }
            Ok(Admission::Admitted(admitted)) => admitted,
            Err(error) if error.is_backend() => {
                crate::error::log_swallowed!(error, key = %shorten(key), %error, "circuit_breaker could not read its state; the call runs unchecked");
                let result = call.within(Box::pin(origin)).await;
                call.finish(StrategyResult::Ok);
                return result;
            }
            Err(error) => {
                call.finish(StrategyResult::Error);
                return Err(E::from(error));
            }
        };
        let result = call.within(Box::pin(origin)).await;
        match &result {
            Err(failure) if when(failure) => {
                if let Err(error) = record_failure(cache, &mut keys, options, admitted).await {
                    tracing::error!(key = %shorten(key), %error, "circuit_breaker could not record a failure");
                }
            }
            // A probe that did not fail closes the circuit.
            _ if admitted.trial => {
                if let Err(error) = close(cache, &mut keys).await {
                    tracing::error!(key = %shorten(key), %error, "circuit_breaker could not close after a successful probe");
                }
            }
            _ => {}
        }
        call.finish(StrategyResult::Ok);
        result
    }
}

/// The keys of one breaker, each rendered when needed: a call that passes
/// renders `K:open` and `K:total` only (`K:halfopen` with a half-open time, `K:fails` on a
/// failure). `K` is written once into a buffer sized for the longest suffix and each suffix
/// replaces the previous one: one allocation per call, where four `format!`s made eight and
/// cost as much as a backend command.
struct Keys {
    buf: String,
    base: usize,
}

const OPEN: &str = ":open";
const HALF_OPEN: &str = ":halfopen";
const TOTAL: &str = ":total";
const FAILS: &str = ":fails";
const PROBES: &str = ":probes";

impl Keys {
    fn new(key: &str) -> Self {
        let mut buf = String::with_capacity(key.len() + HALF_OPEN.len());
        buf.push_str(key);
        Self {
            buf,
            base: key.len(),
        }
    }

    /// `K` followed by `suffix`, borrowed until the next suffix is written.
    fn with(&mut self, suffix: &str) -> &str {
        self.buf.truncate(self.base);
        self.buf.push_str(suffix);
        &self.buf
    }
}

enum Admission {
    /// Refused, with the time the circuit stays open if known.
    Refused(Option<Duration>),
    Admitted(Admitted),
}

/// What the check learnt about an admitted call.
#[derive(Clone, Copy)]
struct Admitted {
    /// The circuit was half-open: this call is a probe (it holds a slot).
    trial: bool,
    /// The calls in the window, this one included.
    total: u64,
    /// Whether this call was counted (the window was not full), so its failure may be.
    counted: bool,
}

async fn admit(
    cache: &Cache,
    keys: &mut Keys,
    options: &CircuitBreakerOptions,
) -> Result<Admission> {
    match cache.get_expire(keys.with(OPEN)).await? {
        Expiry::In(left) => return Ok(Admission::Refused(Some(left))),
        Expiry::Persistent => return Ok(Admission::Refused(None)),
        Expiry::Missing => {}
    }
    let trial = options.half_open().is_some() && cache.exists(keys.with(HALF_OPEN)).await?;
    if trial {
        if !rand::random_ratio(u32::from(options.half_open_share.min(100)), 100) {
            return Ok(Admission::Refused(None));
        }
        // A probe slot, taken atomically on the backend so that callers in every process
        // share the bound. (0: the cache swallowed the command, in safe mode or disabled.)
        let half_open = options.half_open().unwrap_or(options.ttl);
        let taken = cache.incr_by(keys.with(PROBES), 1, half_open).await?;
        if taken > i64::from(options.half_open_probes) {
            return Ok(Admission::Refused(None));
        }
    }
    let period = window_length(options.period);
    let cap = options.cap();
    let total = cache
        .slice_incr_now(keys.with(TOTAL), period, cap, period)
        .await?;
    Ok(Admission::Admitted(Admitted {
        trial,
        total,
        // A full window answers `cap` without recording; the call that filled it answers
        // `cap` too and is left out of the failures, a negligible bias.
        counted: total > 0 && total < cap,
    }))
}

async fn record_failure(
    cache: &Cache,
    keys: &mut Keys,
    options: &CircuitBreakerOptions,
    admitted: Admitted,
) -> Result<()> {
    let fails = if admitted.counted {
        let period = window_length(options.period);
        cache
            .slice_incr_now(keys.with(FAILS), period, options.cap(), period)
            .await?
    } else {
        0
    };
    let min_calls = options.min_calls.max(1);
    let rate_reached = admitted.total >= min_calls
        && u128::from(fails) * 100 >= u128::from(options.errors_rate) * u128::from(admitted.total);
    if admitted.trial || rate_reached {
        open(cache, keys, options).await?;
    }
    Ok(())
}

/// Opens the circuit for `ttl`, then half-open for `half_open_ttl`, unless another call
/// opened it first.
async fn open(cache: &Cache, keys: &mut Keys, options: &CircuitBreakerOptions) -> Result<()> {
    let ttl = window_length(options.ttl);
    let open = keys.with(OPEN);
    if !cache.set_lock(open, "1", ttl).await? {
        return Ok(());
    }
    tracing::warn!(key = %shorten(open), open_for_ms = ttl.as_millis(), "circuit breaker opened");
    if let Some(half_open) = options.half_open() {
        cache
            .set(keys.with(HALF_OPEN), &1u8, ttl.saturating_add(half_open))
            .await?;
        cache.delete(keys.with(PROBES)).await?;
    }
    Ok(())
}

/// Closes a half-open circuit after a successful probe.
async fn close(cache: &Cache, keys: &mut Keys) -> Result<()> {
    let half_open = keys.with(HALF_OPEN).to_owned();
    cache.delete_many(&[&half_open, keys.with(PROBES)]).await?;
    tracing::info!(key = %shorten(&half_open), "circuit breaker closed after a successful probe");
    Ok(())
}
