//! [`cache`]: the plain caching strategy (`#[cashews::cache]`).

use futures_util::future::Either;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Outcome;
use super::soft::Stamp;
use crate::coalesce::{self, Seen};
use crate::detect::Served;
use crate::error::shorten;
use crate::observe::{self, StrategyResult};
use crate::{Cache, IntoTtl, Ttl};

/// When a fresh result is stored (the `condition` of `#[cashews::cache]`).
///
/// ```
/// use cashews::strategy::StoreCondition;
/// assert_eq!(StoreCondition::default(), StoreCondition::Always);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreCondition {
    /// Store every result the shape allows (`Ok` values, `Some` and `None`, any `T`).
    #[default]
    Always,
    /// Do not store `None` (`condition = not_none`).
    NotNone,
}

/// Options of the [`cache`] strategy; the attribute macro builds them as a constant.
///
/// ```
/// use std::time::Duration;
/// use cashews::strategy::{CacheOptions, StoreCondition};
/// const OPTIONS: CacheOptions = CacheOptions::new()
///     .condition(StoreCondition::NotNone)
///     .time_condition(Duration::from_millis(100));
/// assert_eq!(OPTIONS.store_condition, StoreCondition::NotNone);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Which results are stored.
    pub store_condition: StoreCondition,
    /// Store only results whose computation took longer than this (`time_condition`).
    pub time_condition: Option<Duration>,
    /// Coalesce concurrent misses of one key in this process (`protected`, on by default).
    pub protected: bool,
    /// Do not store a result that an inner cached call served (`upper`): for a
    /// cache stacked over other cached functions. Ignores `protected`.
    pub upper: bool,
    /// The key template the keys are rendered from, for [`detect`](crate::detect()) records
    /// (the attribute macros set it).
    pub template: Option<&'static str>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheOptions {
    /// The defaults: store every storable result, however fast; coalesce concurrent misses.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            store_condition: StoreCondition::Always,
            time_condition: None,
            protected: true,
            upper: false,
            template: None,
        }
    }

    /// Skip storing results an inner cached call served (`upper`).
    #[must_use]
    pub const fn upper(mut self, upper: bool) -> Self {
        self.upper = upper;
        self
    }
}

option_builders!(CacheOptions = CacheOptions::new(); protected, condition, time_condition, template);

/// Returns the cached result for `key`, or runs `origin`, stores what `shape` says is
/// storable under `key` for `ttl`, and returns it.
///
/// This is what `#[cashews::cache]` expands to (in two halves, so that a memory hit builds no
/// future); call it directly for closures, trait methods or generic code.
///
/// # Errors and safe behaviour
///
/// The cache never breaks the function: a backend failure on read is a miss and on write is
/// skipped, each logged with `tracing::error!` (key and error, never the value); a value that
/// cannot be decoded (tampered, older schema, another type) is a miss, logged by the codec.
///
/// # Concurrent calls
///
/// With `protected` (the default), concurrent misses of one key in this process run `origin`
/// once: the first caller leads, the others wait for it and then read what it stored. When
/// the leader's result is not stored (an `Err`, a condition), each waiter runs its own
/// `origin`, so every caller gets a real result of its own and nothing needs to be `Clone`.
/// Without `protected`, each miss runs `origin`. A call from inside `origin` (the same task)
/// with the same key runs its own `origin` instead of waiting for itself. The rules are the
/// ones every coalescing strategy shares: see [Coalescing](super#coalescing).
///
/// # Cancellation
///
/// Dropping the returned future drops `origin` with it; nothing is stored. If it was leading,
/// one of the waiters leads next (none hangs).
///
/// # Panics
///
/// A panic in `origin` unwinds through the caller that ran it; its waiters are released and
/// one of them runs `origin` again.
///
/// ```
/// use cashews::strategy::{cache, CacheOptions, Fallible};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let shape = Fallible::<u32, String>::new();
/// let first = cache(&store, "answer", ttl, &CacheOptions::new(), shape, async { Ok(42) }).await;
/// let hit = cache(&store, "answer", ttl, &CacheOptions::new(), shape, async { Err("not run".to_owned()) }).await;
/// assert_eq!((first, hit), (Ok(42), Ok(42)));
/// # Ok(()) }
/// ```
pub fn cache<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: impl IntoTtl,
    options: &CacheOptions,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    let ttl = crate::ttl::strategy_ttl(ttl, key);
    // Not an `async fn`: its arguments would be held twice (see [`cache_after_lookup`]).
    async move {
        let Some(ttl) = ttl else {
            return Box::pin(origin).await;
        };
        let call = observe::Call::start("cache", options.template);
        let served = served(cache, key, ttl, options);
        let seen = cache.stored_flights().seen();
        if let Some(hit) = call.within(lookup(cache, key, &shape, &served)).await {
            call.finish(StrategyResult::Hit);
            return hit;
        }
        let computed = call
            .within(options.miss(cache, key, ttl, shape, origin, Some(seen)))
            .await;
        call.finish(StrategyResult::Miss);
        computed
    }
}

/// The first half of [`cache`] (for the attribute macro): its read when the cache answers
/// synchronously (a memory route), without a future. `Some(Some(result))` is a hit (recorded
/// for detect), `Some(None)` a miss, `None` when only an async read can tell. `seen` is set
/// to what the coalescer needs to know of the read, for [`cache_after_lookup`] after a miss
/// (an out-parameter: returned beside a hit, it measurably slowed the hit). The macro calls
/// this before it builds the origin's and the strategy's futures, so a memory hit builds no
/// future and moves no arguments; then it calls [`cache_after_lookup`].
///
/// ```
/// use cashews::__private::cache_lookup_now;
/// use cashews::strategy::{CacheOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let options = CacheOptions::new();
/// let mut seen = None;
/// let first = cache_lookup_now(&options, &store, "answer", ttl, &Plain::<u32>::new(), &mut seen);
/// assert_eq!(first, Some(None));
/// store.set("answer", &42_u32, "1h").await?;
/// let again = cache_lookup_now(&options, &store, "answer", ttl, &Plain::<u32>::new(), &mut seen);
/// assert_eq!(again, Some(Some(42)));
/// # Ok(()) }
/// ```
#[inline]
pub fn cache_lookup_now<R, S: Outcome<R>>(
    options: &CacheOptions,
    cache: &Cache,
    key: &str,
    ttl: Ttl,
    shape: &S,
    seen: &mut Option<Seen>,
) -> Option<Option<R>> {
    // Taken before the read: a flight that ends after it forces the coalescer's second read.
    *seen = Some(cache.stored_flights().seen());
    let found = lookup_now(cache, key, shape, &served(cache, key, ttl, options));
    if let Some(Some(_)) = &found {
        observe::hit_now("cache", options.template);
    }
    found
}

/// The second half of [`cache`], after [`cache_lookup_now`] found no hit: `known_miss` is
/// the `seen` it set when it answered `Some(None)` (a miss, not read again), `None` when it
/// answered `None` (the async read runs first). Behaves as [`cache`] from there on.
///
/// ```
/// use cashews::__private::{cache_after_lookup, cache_lookup_now};
/// use cashews::strategy::{CacheOptions, Plain};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// let ttl = cashews::Ttl::parse("1h")?;
/// let (options, shape) = (CacheOptions::new(), Plain::<u32>::new());
/// let mut seen = None;
/// let first = cache_lookup_now(&options, &store, "answer", ttl, &shape, &mut seen);
/// assert_eq!(first, Some(None));
/// let computed = cache_after_lookup(&options, &store, "answer", ttl, shape, async { 42 }, seen).await;
/// assert_eq!(computed, 42);
/// assert_eq!(store.get::<u32>("answer").await?, Some(42));
/// # Ok(()) }
/// ```
pub fn cache_after_lookup<R, S, F>(
    options: &CacheOptions,
    cache: &Cache,
    key: &str,
    ttl: Ttl,
    shape: S,
    origin: F,
    known_miss: Option<Seen>,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    // Not an `async fn`, whose arguments are moved into locals of its body: `origin` would
    // take its size twice in this future (once as the argument, once as the local held
    // across the read). Here it is held once; a hit allocates nothing.
    async move {
        let call = observe::Call::start("cache", options.template);
        let seen = match known_miss {
            Some(seen) => seen,
            None => {
                let seen = cache.stored_flights().seen();
                let served = served(cache, key, ttl, options);
                if let Some(hit) = call.within(lookup_async(cache, key, &shape, &served)).await {
                    call.finish(StrategyResult::Hit);
                    return hit;
                }
                seen
            }
        };
        let computed = call
            .within(options.miss(cache, key, ttl, shape, origin, Some(seen)))
            .await;
        call.finish(StrategyResult::Miss);
        computed
    }
}

/// The largest origin a miss holds by value (the attribute macro's origin: the function's
/// arguments); a larger one is boxed on its own, so that the miss's box stays small.
const SMALL_ORIGIN: usize = 64;

impl CacheOptions {
    /// A miss: boxes the work around `origin` (coalescing, the write) with `origin` itself,
    /// so that the caller's future holds neither: a cached function stacked on others stays
    /// the size of what it wraps plus its own reads (one allocation per miss, beside the
    /// origin's work and a backend write; two for an origin larger than [`SMALL_ORIGIN`],
    /// which is boxed on its own).
    fn miss<R, S, F>(
        &self,
        cache: &Cache,
        key: &str,
        ttl: Ttl,
        shape: S,
        origin: F,
        seen: Option<Seen>,
    ) -> impl Future<Output = R>
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        // Decided at compile time: only one of the two is built.
        if size_of::<F>() <= SMALL_ORIGIN {
            Either::Left(self.boxed_miss(cache, key, ttl, shape, origin, seen))
        } else {
            Either::Right(self.boxed_miss(cache, key, ttl, shape, Box::pin(origin), seen))
        }
    }

    /// [`CacheOptions::miss`] with an origin small enough to hold by value.
    fn boxed_miss<R, S, F>(
        &self,
        cache: &Cache,
        key: &str,
        ttl: Ttl,
        shape: S,
        origin: F,
        seen: Option<Seen>,
    ) -> Either<Pin<Box<impl Future<Output = R>>>, Pin<Box<impl Future<Output = R>>>>
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        // Only the branch that runs is boxed: an unprotected miss does not allocate room for
        // the coalescer's state.
        if !self.protected || self.upper {
            let options = self;
            Either::Left(Box::pin(async move {
                compute(cache, key, ttl, options, &shape, None, origin)
                    .await
                    .0
            }))
        } else {
            Either::Right(Box::pin(
                self.coalesced(cache, key, ttl, shape, origin, seen),
            ))
        }
    }

    /// Runs `origin` once per key in this process (on the one coalescer), and stores what may
    /// be stored. Not an `async fn`, which would hold its arguments twice. `seen` was taken
    /// before the caller's read (see [`Seen`]).
    fn coalesced<R, S, F>(
        &self,
        cache: &Cache,
        key: &str,
        ttl: Ttl,
        shape: S,
        origin: F,
        seen: Option<Seen>,
    ) -> impl Future<Output = R>
    where
        S: Outcome<R>,
        F: Future<Output = R>,
    {
        let options = self;
        async move {
            let shape = &shape;
            let served = &served(cache, key, ttl, options);
            coalesce::run(
                cache.stored_flights(),
                key,
                (seen, None::<()>),
                // The read after taking the lead (another leader may have just stored): on a
                // memory route it is decided at once; another route's read is boxed, so that
                // the miss's one box stays small.
                move || match lookup_now(cache, key, shape, served) {
                    Some(decided) => Either::Left(std::future::ready(decided.ok_or(None))),
                    None => Either::Right(Box::pin(async move {
                        lookup_async(cache, key, shape, served).await.ok_or(None)
                    })),
                },
                move |_| compute(cache, key, ttl, options, shape, None, origin),
                coalesce::stored::share,
                coalesce::stored::then,
            )
            .await
        }
    }
}

/// What a hit of [`cache`] records in a detect scope; built only inside one.
fn served<'a>(
    cache: &'a Cache,
    key: &'a str,
    ttl: Ttl,
    options: &'a CacheOptions,
) -> impl Fn() -> Served + 'a {
    move || {
        Served::new(key, "simple")
            .with_ttl(ttl.duration())
            .with_template(options.template)
            .with_backend(cache.backend_name(key))
    }
}

/// A hit, restored and recorded for detect (`served`); `None` on a miss or a read failure
/// (logged).
pub(super) async fn lookup<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    shape: &S,
    served: &impl Fn() -> Served,
) -> Option<R> {
    match lookup_now(cache, key, shape, served) {
        Some(decided) => decided,
        None => lookup_async(cache, key, shape, served).await,
    }
}

/// The async part of [`lookup`]: what [`lookup_now`] could not decide.
async fn lookup_async<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    shape: &S,
    served: &impl Fn() -> Served,
) -> Option<R> {
    if S::SHARED {
        return read_shared(cache.get_shared::<S::Stored>(key).await, key, shape, served);
    }
    read(cache.get_boxed::<S::Stored>(key).await, key, shape, served)
}

/// [`lookup`] without a future, when the cache answers synchronously (a memory route): the
/// common hit is then one plain call chain. `None` when only the async read can tell.
#[inline]
pub(super) fn lookup_now<R, S: Outcome<R>>(
    cache: &Cache,
    key: &str,
    shape: &S,
    served: &impl Fn() -> Served,
) -> Option<Option<R>> {
    if S::SHARED {
        // Restored from the kept object in place: no `Arc` of it is cloned unless detect
        // records it. The result is written straight into `restored` rather than returned
        // through the read's nested `Option`s and `Result` (moving it at each level costs
        // more than the reference count saved).
        let mut restored = None;
        let result = cache.get_shared_now::<S::Stored, _>(key, |stored, object| {
            crate::detect::record_with(|| served().with_value(Arc::clone(object)));
            restored = shape.restore_shared(stored);
        })?;
        return Some(match result {
            Ok(_) => restored,
            Err(error) => read_failed(key, &error),
        });
    }
    let result = cache.get_now::<S::Stored>(key)?;
    Some(read(result, key, shape, served))
}

/// A shared read's hit restored and recorded for detect; `None` on a miss or a failure
/// (logged).
fn read_shared<R, S: Outcome<R>>(
    result: crate::Result<Option<Arc<S::Stored>>>,
    key: &str,
    shape: &S,
    served: &impl Fn() -> Served,
) -> Option<R> {
    match result {
        Ok(Some(stored)) => {
            // The shared object itself, not a copy.
            crate::detect::record_with(|| served().with_value(Arc::clone(&stored) as _));
            shape.restore_shared(&stored)
        }
        Ok(None) => None,
        Err(error) => read_failed(key, &error),
    }
}

/// An owned read's hit restored and recorded for detect; `None` on a miss or a failure
/// (logged).
fn read<R, S: Outcome<R>>(
    result: crate::Result<Option<S::Stored>>,
    key: &str,
    shape: &S,
    served: &impl Fn() -> Served,
) -> Option<R> {
    match result {
        Ok(Some(stored)) => Some(crate::detect::restore(shape, stored, served)),
        Ok(None) => None,
        Err(error) => read_failed(key, &error),
    }
}

#[cold]
fn read_failed<R>(key: &str, error: &crate::Error) -> Option<R> {
    tracing::error!(key = %shorten(key), %error, "cache read failed; running the function");
    None
}

/// The one "run the origin, store if admitted" step of the caching strategies (`cache`,
/// `cache_locked`, `early`, `soft`): runs `origin`, and stores the part `shape` says is
/// storable (inside the `stamp` of a timed strategy's entry, when given), when the options
/// admit it (store condition, time condition, `upper`) and the shape gives it a TTL. Returns
/// the result and whether it was stored; a failed write is logged, not returned.
///
/// Not an `async fn`, which would hold its arguments twice (see [`cache_after_lookup`]): the
/// coalesced miss holds this future inline.
pub(super) fn compute<R, S, F>(
    cache: &Cache,
    key: &str,
    ttl: Ttl,
    options: &CacheOptions,
    shape: &S,
    stamp: Option<Stamp>,
    origin: F,
) -> impl Future<Output = (R, bool)>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    async move {
        // The clock is read only for a `time_condition` (two readings are a visible share of
        // a miss on a virtual machine).
        let started = options.time_condition.map(|_| tokio::time::Instant::now());
        // `upper`: a result an inner cache served is not stored here.
        let (result, served_inside) = if options.upper {
            // Boxed: a detect scope is large, and rare.
            Box::pin(async move {
                let (result, inner) = crate::detect::detect(origin).await;
                (result, !inner.is_empty())
            })
            .await
        } else {
            (origin.await, false)
        };
        let mut stored = false;
        if let Some(value) = shape.stored(&result)
            && !served_inside
            && admits(options, shape, &result, || took(started))
            && let Some(ttl) = shape.store_ttl(value, ttl)
        {
            stored = match stamp {
                None => store(cache, key, value, ttl).await,
                Some(stamp) => {
                    let stamp = stamp.due_after(shape.stamp_after(value, stamp.due()));
                    store_stamped(cache, key, value, &stamp, ttl).await
                }
            };
        }
        (result, stored)
    }
}

/// [`Cache::set`] for the strategies, started now: a memory route writes at once (the
/// returned future is ready); another route's write is boxed, so that the strategy's future
/// (and the coalesced miss holding it) stays small. Whether the value was written; a failure
/// is logged.
fn store<'a, T: serde::Serialize + ?Sized>(
    cache: &'a Cache,
    key: &'a str,
    value: &'a T,
    ttl: Ttl,
) -> Either<std::future::Ready<bool>, Pin<Box<impl Future<Output = bool> + 'a>>> {
    match cache.set_now(key, value, ttl) {
        Some(written) => Either::Left(std::future::ready(written_or_logged(key, written))),
        None => Either::Right(Box::pin(async move {
            written_or_logged(key, cache.set(key, value, ttl).await)
        })),
    }
}

/// [`store`] of `value` inside `stamp`'s entry (the timed strategies).
fn store_stamped<'a, T: serde::Serialize + ?Sized>(
    cache: &'a Cache,
    key: &'a str,
    value: &'a T,
    stamp: &Stamp,
    ttl: Ttl,
) -> Either<std::future::Ready<bool>, Pin<Box<impl Future<Output = bool> + 'a>>> {
    let entry = stamp.entry(cache, value);
    match cache.set_now(key, &entry, ttl) {
        Some(written) => Either::Left(std::future::ready(written_or_logged(key, written))),
        None => Either::Right(Box::pin(async move {
            written_or_logged(key, cache.set(key, &entry, ttl).await)
        })),
    }
}

/// Whether a write wrote; a failed one is logged.
fn written_or_logged(key: &str, written: crate::Result<bool>) -> bool {
    match written {
        Ok(written) => written,
        Err(error) => write_failed(key, &error),
    }
}

#[cold]
fn write_failed(key: &str, error: &crate::Error) -> bool {
    tracing::error!(key = %shorten(key), %error, "cache write failed; the result is returned unstored");
    false
}

/// Whether the options let this result be stored.
pub(crate) fn admits<R, S: Outcome<R>>(
    options: &CacheOptions,
    shape: &S,
    result: &R,
    took: impl FnOnce() -> Duration,
) -> bool {
    let condition = match options.store_condition {
        StoreCondition::Always => true,
        StoreCondition::NotNone => !shape.is_none(result),
    };
    condition
        && options
            .time_condition
            .is_none_or(|at_least| took() > at_least)
}

/// How long since `started` (zero when the clock was not read: no `time_condition`).
pub(crate) fn took(started: Option<tokio::time::Instant>) -> Duration {
    started.map_or(Duration::ZERO, |started| started.elapsed())
}

/// Runs `origin`; when its result is a success (`shape` would store it: not an `Err`),
/// deletes every key matching `pattern`. Returns the result either way.
///
/// This is what `#[cashews::invalidate(key = ...)]` expands to; the macro renders the
/// pattern with argument values escaped, so user input never widens the delete. A failure
/// to delete is logged with `tracing::error!` and does not fail the call.
///
/// ```
/// use cashews::strategy::{Plain, invalidate};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let store = cashews::Cache::new();
/// store.setup("mem://")?;
/// store.set("items:page:1", "a", "1h").await?;
/// store.set("items:page:2", "b", "1h").await?;
/// invalidate(&store, "items:page:*", Plain::<()>::new(), async {}).await;
/// assert_eq!(store.get_keys_count().await?, 0);
/// # Ok(()) }
/// ```
pub fn invalidate<R, S, F>(
    cache: &Cache,
    pattern: &str,
    shape: S,
    origin: F,
) -> impl Future<Output = R>
where
    S: Outcome<R>,
    F: Future<Output = R>,
{
    // Boxed once, so that this future holds the origin once (see [`cache`]).
    async move {
        let call = observe::Call::start("invalidate", None);
        let result = call.within(Box::pin(origin)).await;
        if shape.stored(&result).is_some()
            && let Err(error) = call.within(cache.delete_match(pattern)).await
        {
            tracing::error!(pattern = %shorten(pattern), %error, "invalidation failed; stale keys may remain");
        }
        call.finish(StrategyResult::Ok);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Plain;

    /// A coalesced miss allocates its future in one box (an origin larger than
    /// [`SMALL_ORIGIN`] in a second one): each must stay under the allocator's per-thread
    /// cache limit (1,032 bytes in glibc), beyond which every miss pays a large-bin search
    /// that consolidates freed chunks first (about a tenth of a miss).
    #[tokio::test]
    async fn a_coalesced_miss_boxes_stay_under_a_kibibyte() {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        let (options, ttl) = (CacheOptions::new(), Ttl::secs(3600));
        // The attribute macro's origin, held by value: its arguments (here a `String`).
        let argument = "k".to_owned();
        let origin = crate::__private::Origin::new(move || async move { argument.len() as u64 });
        assert!(size_of_val(&origin) <= SMALL_ORIGIN);
        let small = options.coalesced(&cache, "k", ttl, Plain::<u64>::new(), origin, None);
        // A large origin, in its own box.
        let large = [0_u8; 2048];
        let boxed = options.coalesced(
            &cache,
            "l",
            ttl,
            Plain::<u64>::new(),
            Box::pin(async move { u64::from(large[7]) }),
            None,
        );
        let (small_size, boxed_size) = (size_of_val(&small), size_of_val(&boxed));
        assert!(
            small_size < 1000 && boxed_size < 1000,
            "coalesced {small_size} B, with a boxed origin {boxed_size} B"
        );
        assert_eq!((small.await, boxed.await), (1, 0));
    }

    /// The leader of a miss reads the cache again only when a flight ended after the
    /// caller's own read (that flight may have stored the value): counted as the route's
    /// `get` commands.
    #[tokio::test]
    async fn a_leader_reads_again_only_when_a_flight_ended_after_the_callers_read() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let gets = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&gets);
        let store = Cache::new();
        store
            .setup_with(
                "mem://",
                [crate::middleware::observe(move |event| {
                    if event.command == crate::Command::Get {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                })],
            )
            .unwrap();
        let (options, ttl, shape) = (CacheOptions::new(), Ttl::secs(3600), Plain::<u64>::new());

        // Nobody stored between the caller's read and its turn: one read.
        assert_eq!(
            cache(&store, "a", ttl, &options, shape, async { 1 }).await,
            1
        );
        assert_eq!(
            gets.swap(0, Ordering::Relaxed),
            1,
            "an uncontended miss reads once"
        );
        assert_eq!(store.get::<u64>("a").await.unwrap(), Some(1));

        // A caller reads a miss; another caller's flight stores the value and ends before the
        // first takes its turn: the first reads again and gets that value.
        let mut seen = None;
        let first = cache_lookup_now(&options, &store, "b", ttl, &shape, &mut seen);
        assert_eq!(
            first,
            Some(None),
            "a miss on a memory route is decided at once"
        );
        assert_eq!(
            cache(&store, "b", ttl, &options, shape, async { 2 }).await,
            2
        );
        gets.store(0, Ordering::Relaxed);
        let ran = AtomicBool::new(false);
        let late = cache_after_lookup(
            &options,
            &store,
            "b",
            ttl,
            shape,
            async {
                ran.store(true, Ordering::Relaxed);
                3
            },
            seen,
        );
        assert_eq!(late.await, 2, "the value the other flight stored");
        assert!(!ran.load(Ordering::Relaxed), "not computed again");
        assert_eq!(gets.load(Ordering::Relaxed), 1, "read again once");
    }
}
