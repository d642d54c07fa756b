//! [`hit`] and [`dynamic`]: caching that recomputes after a number of hits
//! (`#[cashews::hit]`, `#[cashews::dynamic]`); [`hit_detached`] recomputes in a background
//! task.

use std::future::Future;
use std::time::Duration;

use futures_util::future::join;

use super::Outcome;
use super::StoreCondition;
use super::cache::admits;
use super::soft::store_options;
use crate::detect::{Extra, Served};
use crate::error::shorten;
use crate::observe::{Call, StrategyResult};
use crate::{Cache, IntoTtl, Ttl};

/// Options of the [`hit`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use cashews::strategy::HitOptions;
/// const OPTIONS: HitOptions = HitOptions::new(5).update_after(1);
/// assert_eq!((OPTIONS.cache_hits, OPTIONS.update_after), (5, Some(1)));
/// assert_eq!(HitOptions::dynamic(), HitOptions::new(3).update_after(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HitOptions {
    /// How many times a computed value is served from the cache before it is computed again
    /// (`cache_hits`).
    pub cache_hits: u64,
    /// Recompute ahead when a value is served for the `n`-th time (`update_after`); the
    /// caller still gets the stored value. `None`: never (the default).
    pub update_after: Option<u64>,
    /// Which results are stored.
    pub store_condition: StoreCondition,
    /// Store only results whose computation took longer than this (`time_condition`).
    pub time_condition: Option<Duration>,
    /// The key template the keys are rendered from, for [`detect`](crate::detect()) records
    /// (the attribute macros set it).
    pub template: Option<&'static str>,
}

impl HitOptions {
    /// The TTL of `#[cashews::dynamic]` when none is given: one day.
    pub const DYNAMIC_TTL: Ttl = Ttl::secs(86_400);

    /// Serve each computed value `cache_hits` times, then compute again.
    #[must_use]
    pub const fn new(cache_hits: u64) -> Self {
        Self {
            cache_hits,
            update_after: None,
            store_condition: StoreCondition::Always,
            time_condition: None,
            template: None,
        }
    }

    /// The options of [`dynamic`]: 3 hits, a recomputation at the first.
    #[must_use]
    pub const fn dynamic() -> Self {
        Self::new(3).update_after(1)
    }

    /// Recompute when the value is served for the `n`-th time; `0` means never.
    #[must_use]
    pub const fn update_after(mut self, n: u64) -> Self {
        self.update_after = if n == 0 { None } else { Some(n) };
        self
    }

    /// Recompute when at most `n` hits of the value's budget remain (`update_before`, the
    /// 2.x spelling): the `h`-th hit recomputes for the first `h` with `cache_hits - h <= n`,
    /// so this is [`update_after`](Self::update_after)`(cache_hits - n)`, and at the first hit
    /// when `n >= cache_hits`. The caller still gets the stored value.
    ///
    /// ```
    /// use cashews::strategy::HitOptions;
    /// assert_eq!(HitOptions::new(5).update_before(3), HitOptions::new(5).update_after(2));
    /// assert_eq!(HitOptions::new(5).update_before(0), HitOptions::new(5).update_after(5));
    /// assert_eq!(HitOptions::new(5).update_before(5), HitOptions::new(5).update_after(1));
    /// ```
    #[must_use]
    pub const fn update_before(mut self, n: u64) -> Self {
        let after = self.cache_hits.saturating_sub(n);
        self.update_after = Some(if after == 0 { 1 } else { after });
        self
    }

    /// What a hit records in a detect scope.
    fn served(&self, cache: &Cache, key: &str, ttl: Ttl) -> Served {
        Served::new(key, "hit")
            .with_backend(cache.backend_name(key))
            .with_ttl(ttl.duration())
            .with_template(self.template)
            .with_extra(Extra::hit(self.cache_hits))
    }
}

option_builders!(HitOptions = HitOptions::new(3); condition, time_condition, template);

/// Returns the stored value for `key` up to `cache_hits` times after it was computed, then
/// runs `origin` again; a miss runs `origin`, stores what `shape` allows for `ttl` and returns
/// it. With `update_after = n`, the `n`-th hit also recomputes the value (and the caller
/// still gets the stored one).
///
/// This is what `#[cashews::hit]` expands to (the macro adds the `hit:` prefix to the key).
/// The `update_after` recomputation runs in the caller, which waits for it (`background =
/// false`): `origin` may borrow the function's arguments. [`hit_detached`] spawns it instead.
///
/// # Storage
///
/// `key` holds the value itself, as [`cache`](super::cache()) stores it, for `ttl`;
/// `<key>:counter` counts the calls since the last store (its TTL, `ttl`, is set when a call
/// creates it, never extended). Every call adds one to the counter; a value is served while
/// `0 < hits ≤ cache_hits`. Storing a value deletes the counter.
///
/// # Errors and safe behaviour
///
/// The cache never breaks the function: a backend failure on either read runs `origin`, a
/// failed write is skipped, each logged with `tracing::error!`. A counter that is not an
/// integer counts as a failed read, and the next store deletes it.
///
/// # Concurrent calls
///
/// Hits are counted atomically, so each hit number is seen by one caller: one recomputation
/// per `update_after`. Concurrent misses each run `origin` (hit has no in-process
/// coalescing); races between the counter and the value can cost an extra run, never a
/// wrong value.
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is stored (the hit was
/// counted).
///
/// ```
/// use cashews::strategy::{hit, HitOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = HitOptions::new(2);
/// let shape = Plain::<u32>::new();
/// let mut seen = Vec::new();
/// for n in 0..4 {
///     seen.push(hit(&store, "hit:n", ttl, &options, shape, async move { n }).await);
/// }
/// assert_eq!(seen, [0, 0, 0, 3]); // computed, served twice, computed again
/// # Ok(()) }
/// ```
pub fn hit<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &HitOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice. Here it is held once; when it is about to run, it and the write
    // after it are boxed (two allocations), so that this future holds neither (a hit
    // allocates nothing).
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let counter = format!("{key}:counter");
        let call = Call::start("hit", options.template);
        match call
            .within(served::<R, S>(cache, key, &counter, ttl, options))
            .await
        {
            Serve::Stored(value) => {
                call.finish(StrategyResult::Hit);
                crate::detect::restore(&shape, value, || options.served(cache, key, ttl))
            }
            Serve::Update(value) => {
                // Served from the cache too: recorded like any hit.
                let old = crate::detect::restore(&shape, value, || options.served(cache, key, ttl));
                let (result, _) = call
                    .within(boxed_compute(
                        cache, key, &counter, ttl, options, &shape, origin,
                    ))
                    .await;
                if shape.stored(&result).is_none() {
                    tracing::warn!(key = %shorten(key), "hit recomputation failed; the stored value is served");
                }
                call.finish(StrategyResult::Hit);
                old
            }
            Serve::Compute => {
                let computed = call
                    .within(boxed_compute(
                        cache, key, &counter, ttl, options, &shape, origin,
                    ))
                    .await
                    .0;
                call.finish(StrategyResult::Miss);
                computed
            }
        }
    }
}

/// [`hit`] with the `update_after` recomputation in a background Tokio task, so the caller
/// that triggers it gets the stored value at once.
///
/// This is `background = true` of `#[cashews::hit]`, for functions whose future is `Send` and
/// `'static` (it borrows nothing: owned arguments, no `&self`). Outside a Tokio runtime the
/// recomputation runs in the caller, as in [`hit`]. A miss runs `origin` in the caller.
///
/// # Concurrent calls
///
/// As [`hit`], except that no caller waits for an `update_after` recomputation.
///
/// # Cancellation
///
/// A spawned recomputation runs to its end even if the caller is dropped.
///
/// ```
/// use cashews::strategy::{hit_detached, HitOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = HitOptions::new(5).update_after(1);
/// let shape = Plain::<u32>::new();
/// assert_eq!(hit_detached(&store, "hit:n", ttl, &options, shape, async { 1 }).await, 1);
/// // The first hit returns the stored value and spawns the recomputation.
/// assert_eq!(hit_detached(&store, "hit:n", ttl, &options, shape, async { 2 }).await, 1);
/// # Ok(()) }
/// ```
pub fn hit_detached<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &HitOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    R: Send + 'static,
    S: Outcome<R> + Send + Sync + 'static,
    F: Future<Output = R> + Send + 'static,
{
    // Held once, boxed when it is about to run, as in [`hit`].
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let counter = format!("{key}:counter");
        let call = Call::start("hit", options.template);
        match call
            .within(served::<R, S>(cache, key, &counter, ttl, options))
            .await
        {
            Serve::Stored(value) => {
                call.finish(StrategyResult::Hit);
                crate::detect::restore(&shape, value, || options.served(cache, key, ttl))
            }
            Serve::Update(value) => {
                // Served from the cache too: recorded like any hit.
                let old = crate::detect::restore(&shape, value, || options.served(cache, key, ttl));
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        let cache = cache.clone();
                        let key = key.to_owned();
                        let options = *options;
                        // The recomputation runs with the caller's context, as a task it
                        // spawned, and in this call's span.
                        runtime.spawn(call.detached(crate::context::Context::current().scope(async move {
                            let (result, _) =
                                compute(&cache, &key, &counter, ttl, &options, &shape, Box::pin(origin)).await;
                            if shape.stored(&result).is_none() {
                                tracing::warn!(key = %shorten(&key), "hit recomputation failed; the stored value is served");
                            }
                        })));
                    }
                    Err(_) => {
                        call.within(boxed_compute(
                            cache, key, &counter, ttl, options, &shape, origin,
                        ))
                        .await;
                    }
                }
                call.finish(StrategyResult::Hit);
                old
            }
            Serve::Compute => {
                let computed = call
                    .within(boxed_compute(
                        cache, key, &counter, ttl, options, &shape, origin,
                    ))
                    .await
                    .0;
                call.finish(StrategyResult::Miss);
                computed
            }
        }
    }
}

/// [`hit`] with the options of `#[cashews::dynamic]`: [`HitOptions::dynamic`] (3 hits, a
/// recomputation at the first, so every hit after a computation refreshes the value).
/// The macro's default TTL is [`HitOptions::DYNAMIC_TTL`] (one day) and its prefix
/// `dynamic:`; to change the options, call [`hit`] with `HitOptions::dynamic()` adjusted.
///
/// # Concurrent calls
///
/// As [`hit`].
///
/// # Cancellation
///
/// As [`hit`].
///
/// ```
/// use cashews::strategy::{dynamic, HitOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let shape = Plain::<u32>::new();
/// let mut seen = Vec::new();
/// for n in 0..4 {
///     seen.push(dynamic(&store, "dynamic:n", HitOptions::DYNAMIC_TTL, shape, async move { n }).await);
/// }
/// assert_eq!(seen, [0, 0, 1, 2]); // each call serves the value the previous one computed
/// # Ok(()) }
/// ```
pub fn dynamic<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    const DYNAMIC: HitOptions = HitOptions::dynamic();
    hit(cache, key, ttl, &DYNAMIC, shape, origin)
}

/// What a call does, after reading the value and counting the hit.
enum Serve<T> {
    /// Return the stored value.
    Stored(T),
    /// Return the stored value and recompute (`update_after`).
    Update(T),
    /// Run the origin and store (a miss, or past `cache_hits`).
    Compute,
}

async fn served<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    counter: &str,
    ttl: Ttl,
    options: &HitOptions,
) -> Serve<S::Stored> {
    let (value, hits) = join(
        cache.get_boxed::<S::Stored>(key),
        cache.incr_by(counter, 1, ttl),
    )
    .await;
    let value = match value {
        Ok(value) => value,
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "cache read failed; running the function");
            None
        }
    };
    let hits = match hits {
        Ok(hits) => u64::try_from(hits).unwrap_or(0),
        Err(error) => {
            tracing::error!(key = %shorten(counter), %error, "hit counter failed; running the function");
            0
        }
    };
    match value {
        Some(value) if 0 < hits && hits <= options.cache_hits => {
            if options.update_after == Some(hits) {
                Serve::Update(value)
            } else {
                Serve::Stored(value)
            }
        }
        _ => Serve::Compute,
    }
}

/// Runs the origin; a result that may be stored is stored while the counter is deleted.
/// Returns the result and whether it was stored.
/// [`compute`] with `origin`, both boxed, so the future of the caller holds neither (a hit
/// never builds them).
fn boxed_compute<'a, R, S, F>(
    cache: &'a Cache,
    key: &'a str,
    counter: &'a str,
    ttl: Ttl,
    options: &'a HitOptions,
    shape: &'a S,
    origin: F,
) -> std::pin::Pin<Box<impl Future<Output = (R, bool)> + 'a>>
where
    R: 'a,
    S: Outcome<R>,
    F: Future<Output = R> + 'a,
{
    Box::pin(compute(
        cache,
        key,
        counter,
        ttl,
        options,
        shape,
        Box::pin(origin),
    ))
}

async fn compute<R, S, F>(
    cache: &Cache,
    key: &str,
    counter: &str,
    ttl: Ttl,
    options: &HitOptions,
    shape: &S,
    origin: F,
) -> (R, bool)
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    let started = options.time_condition.map(|_| tokio::time::Instant::now());
    let result = origin.await;
    let store = store_options(options.store_condition, options.time_condition);
    let Some(value) = shape.stored(&result) else {
        return (result, false);
    };
    if !admits(&store, shape, &result, || super::cache::took(started)) {
        return (result, false);
    }
    let Some(ttl) = shape.store_ttl(value, ttl) else {
        return (result, false);
    };
    let (deleted, written) = join(cache.delete(counter), cache.set(key, value, ttl)).await;
    if let Err(error) = deleted {
        tracing::error!(key = %shorten(counter), %error, "hit counter reset failed");
    }
    let stored = match written {
        Ok(written) => written,
        Err(error) => {
            tracing::error!(key = %shorten(key), %error, "cache write failed; the result is returned unstored");
            false
        }
    };
    (result, stored)
}
