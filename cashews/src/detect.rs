//! Detect: which results of a piece of work came from the cache.
//!
//! [`detect`] runs a future inside a detection scope and returns, with its output, a
//! [`Detected`] holding one [`Served`] record per result a strategy served from the cache while
//! it ran (a miss records nothing): the key, the strategy, the TTL and key template it was
//! called with, the backend that served it ([`Served::backend`]), the value when the strategy
//! can keep it without copying, and the strategy's own details ([`Extra`]). This is also a per-call detector: run one
//! call under [`detect`] and read what served it.
//!
//! Scopes nest: a hit is recorded into the innermost scope and every enclosing one. A scope
//! belongs to the task running [`detect`]; a task started inside it with [`crate::spawn`]
//! inherits it and records into the same [`Detected`] (as Python's child tasks do), a task
//! started with plain `tokio::spawn` does not (see [`crate::context`]).
//!
//! # What each strategy records
//!
//! | Strategy | [`Served::strategy`] | [`Served::value`] | [`Served::extra`] |
//! |---|---|---|---|
//! | [`cache`](crate::strategy::cache()) | `simple` | shared hits ([`Shared`](crate::strategy::Shared) shapes): the shared object itself, not a copy; otherwise `None` | [`Extra::Empty`] |
//! | [`soft`](crate::strategy::soft()) | `soft` | [`Shared`](crate::strategy::Shared) shapes: one clone of the stored value | [`Extra::Soft`] |
//! | [`early`](crate::strategy::early()) | `early` | as `soft` | [`Extra::Early`] |
//! | [`hit`](crate::strategy::hit()), [`dynamic`](crate::strategy::dynamic()) | `hit` | as `soft` | [`Extra::Hit`] |
//! | [`failover`](crate::strategy::failover()) | `failover` | `None` (its value type need not be `Clone`) | [`Extra::Failover`] |
//! | [`iterator`](crate::strategy::iterator()) | `iterator` | [`Shared`](crate::strategy::Shared) shapes: a clone of the stored items, as `Vec<Stored>` | [`Extra::Empty`] |
//!
//! The attribute macros pick a [`Shared`](crate::strategy::Shared) shape whenever the stored
//! type is `Clone`, so decorated functions with a `Clone` result record their values. The
//! value is the *stored* part of the result ([`Outcome::Stored`](crate::strategy::Outcome)):
//! `T` for a `Result<T, E>` function, the whole `Option<T>` for an `Option<T>` one.
//!
//! # Cost
//!
//! While no scope is open anywhere in the process, a hit pays one relaxed atomic load; while
//! one is, a hit also pays one task-local lookup. The record (key, value, details) is built
//! only inside a scope.
//!
//! # Difference from Python
//!
//! Python clears a scope's records when its `with` block ends, so they must be read inside the
//! block. Here [`detect`] hands its [`Detected`] to the caller, who keeps the records for as
//! long as it holds it; a scope that has ended receives nothing more, except from tasks
//! spawned inside it with [`crate::spawn`] that are still running.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! #[cashews::cache(ttl = "1h", key = "answer")]
//! async fn answer() -> u32 { 42 }
//!
//! cashews::cache().setup("mem://")?;
//! let (_, first) = cashews::detect(answer()).await;
//! assert!(first.is_empty()); // computed
//! let (_, second) = cashews::detect(answer()).await;
//! assert_eq!(second.keys(), vec!["answer".to_owned()]);
//! let served = &second.served()[0];
//! assert_eq!(served.strategy, "simple");
//! assert_eq!(served.backend, Some("mem"));
//! assert_eq!(served.ttl, Some(std::time::Duration::from_secs(3600)));
//! assert_eq!(served.value::<u32>(), Some(&42));
//! # Ok(()) }
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::strategy::Outcome;

/// One result served from the cache.
///
/// Strategies fill every field they know (see the [module docs](self)); [`Served::new`] and
/// the `with_*` builders make records by hand, e.g. to test code that reads them.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cashews::detect::Served;
///
/// let served = Served::new("user:7", "simple")
///     .with_ttl(Duration::from_secs(60))
///     .with_template("user:{id}")
///     .with_value(Arc::new(7_u64));
/// assert_eq!(served.key, "user:7");
/// assert_eq!(served.ttl, Some(Duration::from_secs(60)));
/// assert_eq!(served.template, Some("user:{id}"));
/// assert_eq!(served.value::<u64>(), Some(&7));
/// assert_eq!(served.value::<String>(), None); // another type
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Served {
    /// The key that served the result.
    pub key: String,
    /// The strategy: `simple` (cache), `failover`, `soft`, `early`, `hit`, `iterator`.
    pub strategy: &'static str,
    /// The TTL the strategy was called with; `None` for "no expiry" (and for records made
    /// by hand without one).
    pub ttl: Option<Duration>,
    /// The key template the key was rendered from, when the caller told the strategy
    /// (the options' `template`, set by the attribute macros).
    pub template: Option<&'static str>,
    /// The value served, when the strategy could keep it (see the [module docs](self));
    /// read it with [`Served::value`](Self::value()).
    pub value: Option<Arc<dyn Any + Send + Sync>>,
    /// The backend the key routes to, which served the value: `"mem"`, `"redis"` (also a
    /// cluster or the client-side tier) or `"disk"`, as the backend logs name it; `None` for
    /// records made by hand without one.
    pub backend: Option<&'static str>,
    /// What only this strategy knows.
    pub extra: Extra,
}

impl Served {
    /// A record of `key` served by `strategy`, with nothing else known.
    ///
    /// ```
    /// let served = cashews::detect::Served::new("k", "simple");
    /// assert_eq!((served.key.as_str(), served.strategy), ("k", "simple"));
    /// assert!(served.ttl.is_none() && served.template.is_none() && served.value.is_none());
    /// ```
    #[must_use]
    pub fn new(key: impl Into<String>, strategy: &'static str) -> Self {
        Self {
            key: key.into(),
            strategy,
            ttl: None,
            template: None,
            value: None,
            backend: None,
            extra: Extra::Empty,
        }
    }

    /// This record with the backend that served it (`None`: unknown).
    ///
    /// ```
    /// let served = cashews::detect::Served::new("k", "simple").with_backend("redis");
    /// assert_eq!(served.backend, Some("redis"));
    /// ```
    #[must_use]
    pub fn with_backend(mut self, backend: impl Into<Option<&'static str>>) -> Self {
        self.backend = backend.into();
        self
    }

    /// This record with the TTL the strategy was called with (`None`: no expiry).
    ///
    /// ```
    /// use std::time::Duration;
    /// let served = cashews::detect::Served::new("k", "simple").with_ttl(Duration::from_secs(5));
    /// assert_eq!(served.ttl, Some(Duration::from_secs(5)));
    /// ```
    #[must_use]
    pub fn with_ttl(mut self, ttl: impl Into<Option<Duration>>) -> Self {
        self.ttl = ttl.into();
        self
    }

    /// This record with the key template (`None`: unknown).
    ///
    /// ```
    /// let served = cashews::detect::Served::new("user:1", "simple").with_template("user:{id}");
    /// assert_eq!(served.template, Some("user:{id}"));
    /// ```
    #[must_use]
    pub fn with_template(mut self, template: impl Into<Option<&'static str>>) -> Self {
        self.template = template.into();
        self
    }

    /// This record with the value served.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let served = cashews::detect::Served::new("k", "simple").with_value(Arc::new("v".to_owned()));
    /// assert_eq!(served.value::<String>().map(String::as_str), Some("v"));
    /// ```
    #[must_use]
    pub fn with_value(mut self, value: Arc<dyn Any + Send + Sync>) -> Self {
        self.value = Some(value);
        self
    }

    /// This record with the strategy's details.
    ///
    /// ```
    /// use cashews::detect::{Extra, Served};
    /// let served = Served::new("k", "simple").with_extra(Extra::Empty);
    /// assert_eq!(served.extra, Extra::Empty);
    /// ```
    #[must_use]
    pub fn with_extra(mut self, extra: Extra) -> Self {
        self.extra = extra;
        self
    }

    /// The value served, if it was recorded and is a `T` (the stored type: `T` for a
    /// `Result<T, E>` function, see the [module docs](self)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let served = cashews::detect::Served::new("k", "simple").with_value(Arc::new(3_i32));
    /// assert_eq!(served.value::<i32>(), Some(&3));
    /// assert_eq!(served.value::<i64>(), None);
    /// ```
    #[must_use]
    pub fn value<T: Any>(&self) -> Option<&T> {
        self.value.as_deref()?.downcast_ref()
    }
}

/// What a strategy adds to a [`Served`] record beyond key, TTL, template and value.
///
/// Instants (`*_expire_at`) are in the clock of the stored entry: the time since the Unix
/// epoch (UTC), or the reading of the cache's manual [`Clock`](crate::Clock) in tests; `None`
/// means never.
///
/// ```
/// use cashews::detect::Extra;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// #[cashews::hit(ttl = "1h", cache_hits = 10, key = "popular")]
/// async fn popular() -> u32 { 1 }
///
/// cashews::cache().setup("mem://")?;
/// popular().await;
/// let (_, detected) = cashews::detect(popular()).await;
/// match detected.served()[0].extra {
///     Extra::Hit { cache_hits, .. } => assert_eq!(cache_hits, 10),
///     ref other => panic!("not a hit record: {other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Extra {
    /// Nothing more: `cache`, `iterator` and records made by hand.
    #[default]
    Empty,
    /// `early`: when the value is due for a refresh.
    #[non_exhaustive]
    Early {
        /// The early TTL in effect: the option, or a third of the TTL; `None` for never.
        early_ttl: Option<Duration>,
        /// When the served entry is due for a refresh (it may be past: the call refreshed).
        early_expire_at: Option<Duration>,
    },
    /// `soft`: when the value goes stale.
    #[non_exhaustive]
    Soft {
        /// The soft TTL in effect: the option, or a third of the TTL; `None` for never.
        soft_ttl: Option<Duration>,
        /// When the served entry goes stale.
        soft_expire_at: Option<Duration>,
    },
    /// `failover`: the function failed and the last good result answered.
    #[non_exhaustive]
    Failover {
        /// The type of the error that triggered the fallback (Python's `exc`), as
        /// [`std::any::type_name`] gives it. The error itself is not kept: `failover` does
        /// not require errors to be `Send + Sync + 'static`.
        error_type: &'static str,
    },
    /// `hit`: how often a computed value is served.
    #[non_exhaustive]
    Hit {
        /// The `cache_hits` option.
        cache_hits: u64,
    },
}

impl Extra {
    /// `early` details from the entry's stored instant (milliseconds, `u64::MAX` for never).
    pub(crate) fn early(early_ttl: Option<Duration>, expire_at_ms: u64) -> Self {
        Self::Early {
            early_ttl,
            early_expire_at: instant(expire_at_ms),
        }
    }

    /// `soft` details from the entry's stored instant (milliseconds, `u64::MAX` for never).
    pub(crate) fn soft(soft_ttl: Option<Duration>, expire_at_ms: u64) -> Self {
        Self::Soft {
            soft_ttl,
            soft_expire_at: instant(expire_at_ms),
        }
    }

    /// `failover` details for an error of type `E`.
    pub(crate) fn failover<E: ?Sized>() -> Self {
        Self::Failover {
            error_type: std::any::type_name::<E>(),
        }
    }

    /// `hit` details.
    pub(crate) fn hit(cache_hits: u64) -> Self {
        Self::Hit { cache_hits }
    }
}

/// A stored instant in milliseconds; `u64::MAX` means never.
fn instant(ms: u64) -> Option<Duration> {
    (ms != u64::MAX).then(|| Duration::from_millis(ms))
}

/// What one [`detect`] scope saw, in order. Cheap to clone (one shared list).
///
/// ```
/// let report = cashews::detect::Detected::default();
/// assert!(report.is_empty());
/// assert!(report.calls().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Detected {
    served: Arc<Mutex<Vec<Served>>>,
}

impl Detected {
    /// Every result served from the cache, in order (`calls_list` in Python).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let ttl = cashews::Ttl::parse("1h")?;
    /// let shape = cashews::strategy::Plain::<u32>::new();
    /// let options = cashews::strategy::CacheOptions::new();
    /// let call = || cashews::strategy::cache(&cache, "k", ttl, &options, shape, async { 1 });
    /// call().await;
    /// let (_, detected) = cashews::detect(async { call().await + call().await }).await;
    /// assert_eq!(detected.served().len(), 2);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().clone()
    }

    /// The last record of each key that served results (`calls` in Python).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let ttl = cashews::Ttl::parse("1h")?;
    /// let shape = cashews::strategy::Plain::<u32>::new();
    /// let options = cashews::strategy::CacheOptions::new();
    /// let call = |key| cashews::strategy::cache(&cache, key, ttl, &options, shape, async { 1 });
    /// call("a").await;
    /// call("b").await;
    /// let (_, detected) = cashews::detect(async { call("a").await + call("b").await + call("a").await }).await;
    /// let calls = detected.calls();
    /// assert_eq!(calls.keys().collect::<Vec<_>>(), ["a", "b"]);
    /// assert_eq!(calls["a"].strategy, "simple");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn calls(&self) -> BTreeMap<String, Served> {
        self.served
            .lock()
            .iter()
            .map(|served| (served.key.clone(), served.clone()))
            .collect()
    }

    /// The distinct keys that served results, in first-served order.
    ///
    /// ```
    /// let report = cashews::detect::Detected::default();
    /// assert!(report.keys().is_empty());
    /// ```
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for served in self.served.lock().iter() {
            if !keys.contains(&served.key) {
                keys.push(served.key.clone());
            }
        }
        keys
    }

    /// Whether nothing was served from the cache.
    ///
    /// ```
    /// assert!(cashews::detect::Detected::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.served.lock().is_empty()
    }

    fn push(&self, served: Served) {
        self.served.lock().push(served);
    }
}

tokio::task_local! {
    /// The detect scopes of the current task, outermost first (never empty when set).
    static SCOPES: Vec<Detected>;
}

/// Scope futures alive in the process (made and not yet dropped). Every hit asks
/// [`active`], and a task-local lookup costs several nanoseconds on a ~100 ns hit, so
/// [`active`] reads this counter first and looks the task-local up only when some scope
/// exists somewhere (as `invalidate_further` does). The counter never undercounts: it is
/// raised before a scope's future is made and lowered when that future is dropped, and
/// `SCOPES` is set only while that future is polled. A task moved to another thread
/// carries the happens-before of the move, so a relaxed load sees the raise.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Counts one scope future as open until dropped (see [`OPEN`]).
struct Open;

impl Open {
    fn new() -> Self {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `fut` in a new detection scope; returns its output and what the cache served.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (value, detected) = cashews::detect(async { 1 }).await;
/// assert_eq!(value, 1);
/// assert!(detected.is_empty());
/// # }
/// ```
pub async fn detect<F: Future>(fut: F) -> (F::Output, Detected) {
    let _open = Open::new();
    let detected = Detected::default();
    let mut scopes = SCOPES.try_with(Clone::clone).unwrap_or_default();
    scopes.push(detected.clone());
    let output = SCOPES.scope(scopes, fut).await;
    (output, detected)
}

/// Whether the current task is inside a detect scope: one relaxed load when no scope is open
/// anywhere in the process, the task-local lookup only when one is.
#[inline]
pub(crate) fn active() -> bool {
    OPEN.load(Ordering::Relaxed) != 0 && in_scope()
}

#[cold]
#[inline(never)]
fn in_scope() -> bool {
    SCOPES
        .try_with(|scopes| !scopes.is_empty())
        .unwrap_or(false)
}

// The hit paths call `record_with` and `restore`: outside a scope they cost `active()` and a
// branch; everything else sits out of line, in `#[cold]` functions, so that recording adds
// no code to the hot path.

/// Records what `served` builds into every scope of this task; builds it only inside a scope.
#[inline]
pub(crate) fn record_with(served: impl FnOnce() -> Served) {
    if active() {
        record_built(served);
    }
}

/// A hit read as an owned stored value, restored by `shape`. Inside a detect scope it is
/// recorded, with the value when the shape reads shared objects (its stored type is `Clone`):
/// the result is then restored from a clone, and the record keeps the original. Outside a
/// scope this is `shape.restore(stored)` after one task-local lookup.
#[inline]
pub(crate) fn restore<R, S: Outcome<R>>(
    shape: &S,
    stored: S::Stored,
    served: impl FnOnce() -> Served,
) -> R {
    if active() {
        return restore_recorded(shape, stored, served);
    }
    shape.restore(stored)
}

#[cold]
#[inline(never)]
fn record_built(served: impl FnOnce() -> Served) {
    record(served());
}

#[cold]
#[inline(never)]
fn restore_recorded<R, S: Outcome<R>>(
    shape: &S,
    stored: S::Stored,
    served: impl FnOnce() -> Served,
) -> R {
    if S::SHARED
        && let Some(result) = shape.restore_shared(&stored)
    {
        record(served().with_value(Arc::new(stored)));
        return result;
    }
    record(served());
    shape.restore(stored)
}

/// Pushes `served` into every scope of this task, innermost last.
fn record(served: Served) {
    let _ = SCOPES.try_with(|scopes| {
        if let Some((innermost, enclosing)) = scopes.split_last() {
            for scope in enclosing {
                scope.push(served.clone());
            }
            innermost.push(served);
        }
    });
}

// ----- Inherited at spawn (crate::context) ------------------------------------------------

/// The current task's detect scopes, for [`Context::current`](crate::context::Context::current);
/// `None` outside any scope.
pub(crate) fn capture() -> Option<Vec<Detected>> {
    if OPEN.load(Ordering::Relaxed) == 0 {
        return None;
    }
    SCOPES
        .try_with(|scopes| (!scopes.is_empty()).then(|| scopes.clone()))
        .ok()
        .flatten()
}

/// Runs `fut` inside captured detect scopes: its hits are recorded into the same
/// [`Detected`] lists as the task that captured them. Counted as open (see [`OPEN`]) from
/// this call until the returned future completes or is dropped.
pub(crate) fn scope_captured<F: Future>(
    scopes: Vec<Detected>,
    fut: F,
) -> impl Future<Output = F::Output> {
    let open = Open::new();
    futures_util::FutureExt::map(SCOPES.scope(scopes, fut), move |output| {
        drop(open);
        output
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test runs in its own process under nextest (the suite's runner, `.ci/test.sh`), so
    // `OPEN` counts this test's scopes only: without the count held by the captured scope,
    // the late hit would not be seen. (Under `cargo test`, another test's open scope in the
    // same process could hide such a regression here, never make this test fail wrongly.)
    #[tokio::test]
    #[expect(
        clippy::async_yields_async,
        reason = "the child is awaited after its parent's scope returned, on purpose"
    )]
    async fn a_task_spawned_in_a_scope_records_into_it_after_the_scope_returned() {
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (child, detected) = detect(async move {
            crate::spawn(async move {
                let _ = wait.await;
                record_with(|| Served::new("late", "simple"));
            })
        })
        .await;
        assert!(detected.is_empty());
        assert!(!active(), "no scope is open in this task any more");
        let _ = go.send(());
        assert!(child.await.is_ok());
        assert_eq!(detected.keys(), ["late"]);
    }

    #[tokio::test]
    async fn outside_every_scope_nothing_is_recorded_and_inside_it_is() {
        record_with(|| Served::new("outside", "simple"));
        let ((), detected) = detect(async {
            assert!(active());
            record_with(|| Served::new("inside", "simple"));
        })
        .await;
        assert!(!active());
        assert_eq!(detected.keys(), ["inside"]);
    }
}
