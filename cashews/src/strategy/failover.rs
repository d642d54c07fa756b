//! [`failover`]: serve the last good result when the function fails (`#[cashews::failover]`).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::detect::{Extra, Served};
use crate::error::shorten;
use crate::observe::{Call, StrategyResult};
use crate::{Cache, IntoTtl};

/// Options of the [`failover`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::FailoverOptions;
/// const OPTIONS: FailoverOptions = FailoverOptions::new().time_condition(Duration::from_millis(50));
/// assert_eq!(OPTIONS.time_condition, Some(Duration::from_millis(50)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FailoverOptions {
    /// Store only results whose computation took longer than this (`time_condition`).
    pub time_condition: Option<Duration>,
    /// The key template the keys are rendered from, for [`detect`](crate::detect()) records
    /// (the attribute macros set it).
    pub template: Option<&'static str>,
}

impl FailoverOptions {
    /// The defaults: store every `Ok`, however fast.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            time_condition: None,
            template: None,
        }
    }
}

option_builders!(FailoverOptions = FailoverOptions::new(); time_condition, template);

/// The default `when` of [`failover`]: every error falls back.
///
/// ```
/// assert!(cashews::strategy::any_error(&"any error"));
/// ```
#[must_use]
pub fn any_error<E: ?Sized>(error: &E) -> bool {
    let _ = error;
    true
}

/// Runs `origin` on every call: an `Ok` is stored under `key` for `ttl` and returned; an
/// `Err` for which `when` holds returns the last stored value as `Ok` if there is one, else
/// the error itself; any other `Err` is returned as it is (and never stored).
///
/// This is what `#[cashews::failover]` expands to: the caller passes the full key, and the
/// macro adds the `fail:` prefix to it (key `fail:<key>`). Pass [`any_error`] as `when` to
/// fall back on every error. Serving the fallback refreshes nothing: its TTL runs from the
/// last success.
///
/// # Storage
///
/// `key` holds the last `Ok` value itself, as [`cache`](super::cache()) stores it, for
/// `ttl`. A value that does not decode as `T` is no fallback.
///
/// # Errors
///
/// The function's own error: when `when` rejects it, or when no fallback is stored. The cache
/// never adds one: a backend failure on write is skipped, and on the fallback read returns
/// the function's error, each logged with `tracing::error!`.
///
/// # Concurrent calls
///
/// Every call runs `origin`, concurrently; the last success to be written is the fallback.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is stored.
///
/// ```
/// use cashews::strategy::{any_error, failover, FailoverOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = FailoverOptions::new();
/// let ok: Result<u32, String> = failover(&store, "fail:rate", ttl, &options, any_error, async { Ok(7) }).await;
/// let down = failover(&store, "fail:rate", ttl, &options, any_error, async { Err("down".to_owned()) }).await;
/// assert_eq!((ok, down), (Ok(7), Ok(7)));
/// // A predicate chooses which errors fall back.
/// let fatal: Result<u32, String> = failover(&store, "fail:rate", ttl, &options, |e: &String| e != "fatal", async { Err("fatal".to_owned()) }).await;
/// assert_eq!(fatal, Err("fatal".to_owned()));
/// # Ok(()) }
/// ```
pub fn failover<T, E, W, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &FailoverOptions,
    when: W,
    origin: F,
) -> impl Future<Output = Result<T, E>>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    W: FnOnce(&E) -> bool,
    F: Future<Output = Result<T, E>>,
{
    failover_if(cache, key, ttl, options, when, |_: &T| true, origin)
}

/// [`failover`] with a store condition over the successful values (`condition = my_fn` on
/// `#[cashews::failover]`): an `Ok` for which `keep` is false is returned but not
/// kept as the fallback.
///
/// # Errors
///
/// As [`failover`]: the function's own error, when `when` rejects it or no fallback is
/// stored.
///
/// ```
/// use cashews::strategy::{any_error, failover_if, FailoverOptions};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = FailoverOptions::new();
/// // An empty list is a poor fallback: keep only non-empty ones.
/// let keep = |items: &Vec<u32>| !items.is_empty();
/// let _ = failover_if(&store, "fail:items", ttl, &options, any_error, keep, async { Ok::<_, String>(vec![]) }).await;
/// let down = failover_if(&store, "fail:items", ttl, &options, any_error, keep, async { Err::<Vec<u32>, _>("down".to_owned()) }).await;
/// assert_eq!(down, Err("down".to_owned()));
/// # Ok(()) }
/// ```
pub fn failover_if<T, E, W, K, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &FailoverOptions,
    when: W,
    keep: K,
    origin: F,
) -> impl Future<Output = Result<T, E>>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    W: FnOnce(&E) -> bool,
    K: FnOnce(&T) -> bool,
    F: Future<Output = Result<T, E>>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice. Here it is held once, and boxed as it runs, so that the futures
    // below hold a pointer to it.
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let call = Call::start("failover", options.template);
        let started = tokio::time::Instant::now();
        // Failover always behaves as `upper`: a result an inner cache served is
        // not stored again here.
        let (result, inner) = call.within(crate::detect::detect(Box::pin(origin))).await;
        // `ok` when the function's result is returned, `hit` when the stored fallback
        // answers, `miss` when an accepted error finds no fallback.
        let (result, outcome) = match result {
            Ok(value) => {
                if inner.is_empty()
                    && keep(&value)
                    && options
                        .time_condition
                        .is_none_or(|at_least| started.elapsed() > at_least)
                    && let Err(error) = call.within(cache.set(key, &value, ttl)).await
                {
                    tracing::error!(key = %shorten(key), %error, "cache write failed; the result is returned unstored");
                }
                (Ok(value), StrategyResult::Ok)
            }
            Err(failure) if when(&failure) => match call.within(cache.get_boxed::<T>(key)).await {
                Ok(Some(fallback)) => {
                    // No value: `T` need not be `Clone`; the error is named by its type.
                    crate::detect::record_with(|| {
                        Served::new(key, "failover")
                            .with_ttl(ttl.duration())
                            .with_template(options.template)
                            .with_extra(Extra::failover::<E>())
                            .with_backend(cache.backend_name(key))
                    });
                    tracing::debug!(key = %shorten(key), "the function failed; serving the last good result");
                    (Ok(fallback), StrategyResult::Hit)
                }
                Ok(None) => (Err(failure), StrategyResult::Miss),
                Err(error) => {
                    tracing::error!(key = %shorten(key), %error, "cache read failed; returning the function's error");
                    (Err(failure), StrategyResult::Miss)
                }
            },
            Err(failure) => (Err(failure), StrategyResult::Ok),
        };
        call.finish(outcome);
        result
    }
}
