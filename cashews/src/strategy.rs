//! Strategies: caching and resilience patterns as plain async functions.
//!
//! Each attribute macro (`#[cashews::cache]`, …) expands to one call of a function here, so
//! closures, trait methods and generic code use the same behaviour without macros. What a
//! result means for the cache (store `Ok`, skip `Err`, …) is an [`Outcome`].
//!
//! | Attribute | Function | Use it for |
//! |---|---|---|
//! | `#[cashews::cache]` | [`cache()`] | plain caching with a TTL |
//! | `#[cashews::failover]` | [`failover()`] | the last good result when the function fails |
//! | `#[cashews::soft]` | [`soft()`] ([`soft_when()`] chooses the failures) | recompute after a soft TTL, the stale value when that fails |
//! | `#[cashews::early]` | [`early()`] ([`early_detached()`] refreshes in the background) | refresh ahead: one caller recomputes, the others get the stored value |
//! | `#[cashews::hit]` | [`hit()`] ([`hit_detached()`] recomputes in the background) | recompute after a number of hits |
//! | `#[cashews::dynamic]` | [`dynamic()`] | [`hit()`] with [`HitOptions::dynamic()`]: refresh on every hit |
//! | `#[cashews::iterator]` | [`iterator()`] | a stream cached item by item, replayed once a full pass is stored |
//! | `#[cashews::rate_limit]` | [`rate_limited()`] ([`rate_limit()`] checks only) | at most `limit` calls per fixed window, optional ban |
//! | `#[cashews::slice_rate_limit]` | [`slice_rate_limited()`] ([`slice_rate_limit()`] checks only) | at most `limit` calls in any sliding window |
//! | `#[cashews::circuit_breaker]` | [`circuit_breaker()`] | refuse calls while their error rate is high |
//! | `#[cashews::locked]` | [`locked_always()`] ([`locked()`] refuses after `wait`) | one call at a time per key, across processes |
//! | `#[cashews::cache(lock = true)]` | [`cache_locked()`] | [`cache()`] whose misses run once across processes, under a lock |
//! | `#[cashews::thunder_protection]` | [`thunder_protection()`] | concurrent calls in this process share one run and its result |
//! | `#[cashews::bloom]` | [`bloom()`] ([`bloom_set()`] trains it; [`bloom_add()`] and [`bloom_contains()`] work without a function) | answer `false` without calling when a Bloom filter rules the argument out |
//! | `#[cashews::dual_bloom]` | [`dual_bloom()`] | answer repeated `bool` questions from two Bloom filters learnt from the calls |
//! | `#[cashews::perf]` | [`perf()`] | refuse calls for a while once their latency degrades |
//!
//! # Coalescing
//!
//! [`cache()`] and [`cache_locked()`] (with `protected`, the default), the cold misses of
//! [`early()`], the renewals of [`soft()`], [`thunder_protection()`] and
//! [`Cache::get_or_set`](crate::Cache::get_or_set) share one in-process coalescer, with one
//! set of rules:
//!
//! - **Concurrent calls.** Per cache (clones share, two caches never do) and per key, the
//!   first caller *leads*: it runs the origin; the callers that arrive meanwhile *follow*:
//!   they wait and do not run theirs. The caching strategies' followers then read what the
//!   leader stored (nothing needs to be `Clone`); if it stored nothing (an `Err`, a store
//!   condition, a write failure), each follower runs its own origin, so every caller gets a
//!   real result. `thunder_protection` followers get a clone of the leader's result, `Ok`
//!   or `Err`; `get_or_set` followers get the value it encoded. Once the leader ends, the
//!   next call leads again.
//! - **Cancellation.** The strategies run the origin in the leader's own future: dropping it
//!   drops the origin and wakes the followers, one of which leads in its place (it reads the
//!   cache first); none hangs. `get_or_set` runs its `'static` origin detached, in a task
//!   that owns the lead: the load survives the caller that started it. A dropped follower
//!   just stops waiting.
//! - **Panics.** A panic reaches only the caller whose origin panicked (a strategy's leader
//!   unwinds; `get_or_set` returns [`Error::OriginFailed`](crate::Error::OriginFailed)). Its
//!   followers are released as for a cancellation and one of them runs its origin.
//! - **Re-entry.** An origin that calls the same coalesced strategy with its own key, in the
//!   same task, does not wait for itself: the nested call runs its origin at once. The same
//!   marker lets a task that holds a lock through [`locked()`] or [`cache_locked()`] take it
//!   again without waiting.
//!
//! Only misses are coalesced: a hit never waits.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use cashews::strategy::{cache, CacheOptions, Plain};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! let store = cashews::Cache::new();
//! store.setup("mem://")?;
//! let (ttl, options, runs) = (cashews::Ttl::parse("1h")?, CacheOptions::new(), AtomicUsize::new(0));
//! let call = || cache(&store, "report", ttl, &options, Plain::<u32>::new(), async {
//!     runs.fetch_add(1, Ordering::SeqCst);
//!     tokio::task::yield_now().await; // a slow upstream
//!     7
//! });
//! assert_eq!(tokio::join!(call(), call(), call()), (7, 7, 7));
//! assert_eq!(runs.load(Ordering::SeqCst), 1);
//! # Ok(()) }
//! ```
//!
//! # Size
//!
//! Each function's future holds its `origin` once and adds at most about 1 KiB to it, so
//! strategies stack (the attribute macros' expansions hold the function's arguments, not its
//! body's future, and box the body when it runs). A hit allocates nothing; the call that runs
//! `origin` boxes it and, for the caching strategies, the work around it.

// The functions that take an origin are written `fn … -> impl Future { async move { … } }`:
// an `async fn` moves its arguments into locals of its body, so an origin held across an
// await would take its size twice in the future.
#![allow(clippy::manual_async_fn)]

/// The builders the caching strategies' options share, one `const fn` per field: `condition`,
/// `time_condition`, `protected` and `template` (written once here, documented with an example
/// for each options type).
macro_rules! option_builders {
    ($options:ident = $new:expr; $($builder:ident),+ $(,)?) => {
        impl $options {
            $(option_builders!(@ $builder $options = $new);)+
        }
    };
    (@ condition $options:ident = $new:expr) => {
        #[doc = concat!(
            "With this store condition.\n\n```\nuse cashews::strategy::{", stringify!($options),
            ", StoreCondition};\nlet options = ", stringify!($new),
            ".condition(StoreCondition::NotNone);\nassert_eq!(options.store_condition, StoreCondition::NotNone);\n```"
        )]
        #[must_use]
        pub const fn condition(mut self, condition: StoreCondition) -> Self {
            self.store_condition = condition;
            self
        }
    };
    (@ time_condition $options:ident = $new:expr) => {
        #[doc = concat!(
            "Store only results that took longer than `at_least` to compute.\n\n```\nuse cashews::strategy::",
            stringify!($options), ";\nlet options = ", stringify!($new),
            ".time_condition(std::time::Duration::from_millis(100));\nassert!(options.time_condition.is_some());\n```"
        )]
        #[must_use]
        pub const fn time_condition(mut self, at_least: Duration) -> Self {
            self.time_condition = Some(at_least);
            self
        }
    };
    (@ protected $options:ident = $new:expr) => {
        #[doc = concat!(
            "With or without in-process coalescing of concurrent computations of one key.\n\n```\nuse cashews::strategy::",
            stringify!($options), ";\nlet options = ", stringify!($new),
            ".protected(false);\nassert!(!options.protected);\n```"
        )]
        #[must_use]
        pub const fn protected(mut self, protected: bool) -> Self {
            self.protected = protected;
            self
        }
    };
    (@ template $options:ident = $new:expr) => {
        #[doc = concat!(
            "Name the key template, for [`detect`](crate::detect()) records (the attribute macros set it).\n\n```\nuse cashews::strategy::",
            stringify!($options), ";\nlet options = ", stringify!($new),
            ".template(\"user:{id}\");\nassert_eq!(options.template, Some(\"user:{id}\"));\n```"
        )]
        #[must_use]
        pub const fn template(mut self, template: &'static str) -> Self {
            self.template = Some(template);
            self
        }
    };
}

mod bloom;
pub(crate) mod cache;
mod circuit_breaker;
mod early;
mod failover;
mod hit;
mod invalid;
mod iterator;
mod locked;
pub(crate) mod outcome;
mod perf;
pub(crate) mod rate_limit;
pub(crate) mod slice_rate_limit;
mod soft;
mod thunder;

pub use bloom::{
    BloomOptions, DualBloomOptions, bloom, bloom_add, bloom_contains, bloom_set, dual_bloom,
};
pub use cache::{CacheOptions, StoreCondition, cache, invalidate};
pub use circuit_breaker::{CircuitBreakerOptions, circuit_breaker};
pub use early::{EarlyOptions, early, early_detached};
pub use failover::{FailoverOptions, any_error, failover, failover_if};
pub use hit::{HitOptions, dynamic, hit, hit_detached};
pub use iterator::{IteratorOptions, iterator};
pub use locked::{LockedOptions, cache_locked, locked, locked_always};
pub use outcome::{
    Fallible, Optional, Outcome, Plain, Shared, TtlBy, TtlOf, When, WithErrors, ttl_by,
};
pub use perf::{PerfOptions, perf};
pub use rate_limit::{RateLimitOptions, rate_limit, rate_limited};
pub use slice_rate_limit::{SliceRateLimitOptions, slice_rate_limit, slice_rate_limited};
#[cfg(feature = "tower")]
pub(crate) use soft::now_ms;
pub use soft::{SoftOptions, soft, soft_when};
pub use thunder::thunder_protection;
