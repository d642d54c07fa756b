//! What the attribute macros' expansions name: not a public API, may change in any release.
//!
//! Everything generated code calls lives behind `::cashews::__private`, so the expansion never
//! depends on what the user imported.

#[path = "private/response.rs"]
mod response;

use crate::IntoTtl;

pub use response::CachedResponse;

pub use crate::Ttl;
pub use crate::coalesce::Seen;
pub use crate::key::filter;
pub use crate::key::{KeyBuf, Strategy, render};
pub use crate::strategy::cache::{cache_after_lookup, cache_lookup_now};
pub use crate::strategy::outcome::{
    Mode, ModeDecoded, ModeShared, Shape, ShapeFallible, ShapeOptional, ShapePlain,
};
pub use crate::strategy::{
    BloomOptions, DualBloomOptions, IteratorOptions, PerfOptions, bloom, dual_bloom, iterator, perf,
};
pub use crate::strategy::{
    CacheOptions, CircuitBreakerOptions, EarlyOptions, FailoverOptions, HitOptions,
    RateLimitOptions, SliceRateLimitOptions, SoftOptions, StoreCondition, When, any_error, cache,
    circuit_breaker, dynamic, early, early_detached, failover, failover_if, hit, hit_detached,
    invalidate, rate_limit, rate_limited, slice_rate_limit, slice_rate_limited, soft, ttl_by,
};
pub use crate::strategy::{LockedOptions, cache_locked, locked, locked_always, thunder_protection};
pub use crate::tagged;
pub use crate::{
    __cashews_default_key as default_key, __cashews_function_key as function_key,
    __cashews_key_head as key_head, __cashews_key_template as key_template,
};
pub use futures_util::future::Either;

/// The item shape of a stream, for `iterator`'s shape selection (auto-ref on `Shape<Item>`).
#[must_use]
pub fn item_shape<St: futures_core::Stream>(_: &St) -> Shape<St::Item> {
    Shape::new()
}

/// Whether a rate limit's check refused the call (for `action`): a refusal is `true`; any
/// other error (a bad key, a configuration error) is logged and lets the call through.
#[must_use]
pub fn refused(check: crate::Result<()>) -> bool {
    match check {
        Ok(()) => false,
        Err(crate::Error::RateLimited { .. }) => true,
        Err(error) => {
            tracing::error!(%error, "rate limit check failed; the call is let through");
            false
        }
    }
}

/// The process-wide cache, used when no `cache = ...` argument is given.
#[must_use]
pub fn default_cache() -> &'static crate::Cache {
    crate::cache()
}

/// A TTL computed at run time; an invalid one is logged and the call is not cached.
pub fn runtime_ttl<T: IntoTtl>(ttl: T) -> Option<Ttl> {
    match ttl.into_ttl() {
        Ok(ttl) => Some(ttl),
        Err(error) => {
            tracing::error!(%error, "invalid TTL computed for a cached function; the call is not cached");
            None
        }
    }
}

/// `{x:hash(alg)}` with an algorithm known only at run time: an unknown one is logged and
/// renders empty.
#[must_use]
pub fn hash(text: &str, algorithm: &str) -> String {
    filter::hash(text, algorithm).unwrap_or_else(|error| {
        tracing::error!(%error, "key template filter `hash` failed; the part renders empty");
        String::new()
    })
}

/// A custom filter named in `filters = [...]`: one that is not registered is logged and
/// renders empty.
#[must_use]
pub fn custom_filter(name: &str, text: &str, args: &[&str]) -> String {
    filter::apply(name, text, args).unwrap_or_else(|error| {
        tracing::error!(filter = name, %error, "key template filter failed; the part renders empty");
        String::new()
    })
}

/// `{@:get(name)}`: a value of the task's key context.
#[must_use]
pub fn context_get(name: &str) -> Option<String> {
    crate::key::context::get(name)
}

/// `{a[0]}`: an element by position; out of range is `None` (renders empty).
pub trait KeyIndex {
    /// The element type.
    type Output: ?Sized;
    /// The element at `index`, if any.
    fn key_index(&self, index: usize) -> Option<&Self::Output>;
}

impl<T> KeyIndex for [T] {
    type Output = T;
    fn key_index(&self, index: usize) -> Option<&T> {
        self.get(index)
    }
}

impl<T, const N: usize> KeyIndex for [T; N] {
    type Output = T;
    fn key_index(&self, index: usize) -> Option<&T> {
        self.get(index)
    }
}

impl<T> KeyIndex for Vec<T> {
    type Output = T;
    fn key_index(&self, index: usize) -> Option<&T> {
        self.get(index)
    }
}

impl<T> KeyIndex for std::collections::VecDeque<T> {
    type Output = T;
    fn key_index(&self, index: usize) -> Option<&T> {
        self.get(index)
    }
}

impl<T: KeyIndex + ?Sized> KeyIndex for &T {
    type Output = T::Output;
    fn key_index(&self, index: usize) -> Option<&T::Output> {
        (**self).key_index(index)
    }
}

/// `{m[name]}` and `{m:get(name)}`: a map value by its string key; missing is `None`.
pub trait KeyLookup {
    /// The value type.
    type Output: ?Sized;
    /// The value under `key`, if any.
    fn key_lookup(&self, key: &str) -> Option<&Self::Output>;
}

impl<K, V, S> KeyLookup for std::collections::HashMap<K, V, S>
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    S: std::hash::BuildHasher,
{
    type Output = V;
    fn key_lookup(&self, key: &str) -> Option<&V> {
        self.get(key)
    }
}

impl<K: std::borrow::Borrow<str> + Ord, V> KeyLookup for std::collections::BTreeMap<K, V> {
    type Output = V;
    fn key_lookup(&self, key: &str) -> Option<&V> {
        self.get(key)
    }
}

impl<T: KeyLookup + ?Sized> KeyLookup for &T {
    type Output = T::Output;
    fn key_lookup(&self, key: &str) -> Option<&T::Output> {
        (**self).key_lookup(key)
    }
}

/// The result of a refusal strategy (rate limit, circuit breaker): a `Result` whose error can
/// carry a [`crate::Error`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a cashews refusal",
    label = "this function's result",
    note = "return `Result<T, E>` with `impl From<cashews::Error> for E`: a rate limit or an open circuit reaches the caller as that error"
)]
pub trait CarriesRefusal {}

impl<T, E: From<crate::Error>> CarriesRefusal for Result<T, E> {}

/// A compile-time check that `R` can carry a refusal (expanded by the refusal attributes).
pub const fn assert_refusal<R: CarriesRefusal>() {}

/// A compile-time check of a strategy's options, for `const _: () = …` items only: the
/// attribute macros build their options as a constant and pass its `problem()` here, so
/// unusable options (a zero period, a percentage of 100, …) fail the build with the
/// problem's sentence. Evaluated at run time it would panic; the expansions never do that.
#[allow(clippy::panic)] // const evaluation only: the panic is the compile error.
pub const fn assert_options(problem: Option<&'static str>) {
    if let Some(problem) = problem {
        panic!("{}", problem);
    }
}

// ----- transactions ----------------------------------------------------------

pub use crate::transaction::TransactionMode;

/// `#[cashews::transaction]`: runs `origin` inside a transaction of `cache`, with the cache's
/// defaults unless the attribute gave a mode or a timeout.
pub fn transaction<T, E, F>(
    cache: &crate::Cache,
    mode: Option<TransactionMode>,
    timeout: Option<std::time::Duration>,
    origin: F,
) -> impl std::future::Future<Output = Result<T, E>>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: From<crate::Error>,
{
    let mut transaction = cache.transaction();
    if let Some(mode) = mode {
        transaction = transaction.mode(mode);
    }
    if let Some(timeout) = timeout {
        transaction = transaction.timeout(timeout);
    }
    transaction.run(origin)
}

// ----- tag registration ------------------------------------------------------

/// Registers each of `tags` against the strategy's full `key_template` on `cache`, so deleting
/// a key takes it out of its tag sets. Called on every decorated call: after the first call of
/// a call site on a cache, it is a lookup in that cache's call-site table (a few plain loads, no
/// lock, no write; about 3 ns). A template that does not parse is logged once and skipped.
///
/// ```
/// let cache = cashews::Cache::new();
/// cashews::__private::register_tags(&cache, "user:{id}", &["users", "user:{id}"]);
/// cashews::__private::register_tags(&cache, "user:{id}", &["users", "user:{id}"]);
/// assert_eq!(cache.get_key_tags("user:7"), ["users", "user:7"]);
/// ```
#[inline]
pub fn register_tags(
    cache: &crate::Cache,
    key_template: &'static str,
    tags: &'static [&'static str],
) {
    cache.register_static_tags(key_template, tags);
}

/// A decorated function's body as the strategy's origin, built only when first polled.
///
/// The strategies hold their origin until they know whether it runs (a hit never runs it).
/// Holding the body's future there would make each attribute's future as large as everything
/// it wraps, stacked attributes the sum of them all (and, in unoptimised builds, each poll
/// frame as well). Holding the closure that builds it (the function's arguments) keeps every
/// layer small; the body's future is built and boxed when the origin first runs.
pub struct Origin<C, F> {
    state: OriginState<C, F>,
}

enum OriginState<C, F> {
    /// Not polled yet: the closure that builds the body's future.
    Ready(C),
    /// The body's future, on the heap.
    Running(std::pin::Pin<Box<F>>),
    /// Between the two (never seen by a poll).
    Taken,
}

// The closure is never pinned (it is moved out, then called) and the body's future is pinned
// in its box, so the origin itself may move.
impl<C, F> Unpin for Origin<C, F> {}

impl<C, F> Origin<C, F>
where
    C: FnOnce() -> F,
    F: Future,
{
    /// The origin `build()` makes.
    #[must_use]
    pub const fn new(build: C) -> Self {
        Self {
            state: OriginState::Ready(build),
        }
    }
}

impl<C, F> Future for Origin<C, F>
where
    C: FnOnce() -> F,
    F: Future,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.get_mut();
        if let OriginState::Ready(_) = this.state
            && let OriginState::Ready(build) =
                std::mem::replace(&mut this.state, OriginState::Taken)
        {
            this.state = OriginState::Running(Box::pin(build()));
        }
        match &mut this.state {
            OriginState::Running(body) => body.as_mut().poll(cx),
            // Not reachable: `Ready` became `Running` above.
            OriginState::Ready(_) | OriginState::Taken => std::task::Poll::Pending,
        }
    }
}

impl<C, F> std::fmt::Debug for Origin<C, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            OriginState::Ready(_) => "ready",
            OriginState::Running(_) => "running",
            OriginState::Taken => "taken",
        };
        f.debug_struct("Origin").field("state", &state).finish()
    }
}
