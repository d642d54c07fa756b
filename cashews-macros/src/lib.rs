//! The attribute macros of [cashews](https://docs.rs/cashews). Use them through the `cashews`
//! crate (`#[cashews::cache(...)]`), which documents them with runnable examples.
//!
//! This crate only parses, validates and expands: every macro becomes a call of a public
//! function of `cashews::strategy`, so all behaviour lives (and is tested) in the runtime.
//! Keys too: default prefixes and the default key of a function are `cashews::key::Strategy`'s
//! and `KeyBuf`'s, so a strategy called by hand with those keys stores what the attribute does.
//! TTL strings and key templates are checked here, at compile time, by `cashews-syntax`.

mod args;
mod key;
mod response;
mod signature;
mod strategy;
mod ttl;

use proc_macro::TokenStream;

use strategy::Kind;

macro_rules! attribute {
    ($(#[$doc:meta])* $name:ident => $kind:ident) => {
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(attr: TokenStream, item: TokenStream) -> TokenStream {
            strategy::expand(Kind::$kind, attr.into(), item.into()).into()
        }
    };
}

attribute! {
    /// Caches an async function's result: see the `cashews` crate (`cashews::cache`).
    ///
    /// On axum handlers, destructured extractors (`Path(id): Path<u64>`) give the key its
    /// values, `State` never does, and a `Json<T>` result is cached by its `T`; other
    /// responses fail to compile with the fix (`cashews::cache`, "On axum handlers").
    cache => Cache
}
attribute! {
    /// Serves the last good result when the function fails: see `cashews::failover`.
    failover => Failover
}
attribute! {
    /// Recomputes after a soft TTL, serving the stale value if that fails: see `cashews::soft`.
    soft => Soft
}
attribute! {
    /// Refreshes ahead of expiry, one caller at a time: see `cashews::early`.
    early => Early
}
attribute! {
    /// Recomputes after a number of hits: see `cashews::hit`.
    hit => Hit
}
attribute! {
    /// `hit` with dynamic defaults: see `cashews::dynamic`.
    dynamic => Dynamic
}
attribute! {
    /// At most `limit` calls per fixed window: see `cashews::rate_limit`.
    rate_limit => RateLimit
}
attribute! {
    /// At most `limit` calls in any sliding window: see `cashews::slice_rate_limit`.
    slice_rate_limit => SliceRateLimit
}
attribute! {
    /// Refuses calls while their error rate is high: see `cashews::circuit_breaker`.
    circuit_breaker => CircuitBreaker
}
attribute! {
    /// Deletes the matching keys after a successful call: see `cashews::invalidate`.
    invalidate => Invalidate
}
attribute! {
    /// Caches a stream's items: see `cashews::iterator`.
    iterator => Iterator
}
attribute! {
    /// Answers "definitely not" from a Bloom filter without calling: see `cashews::bloom`.
    bloom => Bloom
}
attribute! {
    /// Runs the function inside a transaction of the cache: see `cashews::transaction`.
    transaction => Transaction
}
attribute! {
    /// Two Bloom filters, for `true` and `false` answers: see `cashews::dual_bloom`.
    dual_bloom => DualBloom
}
attribute! {
    /// Refuses calls while the function is abnormally slow: see `cashews::perf`.
    perf => Perf
}
attribute! {
    /// One call at a time per key, across processes: see `cashews::locked`.
    locked => Locked
}
attribute! {
    /// Concurrent calls in this process share one run and its result: see
    /// `cashews::thunder_protection`.
    thunder_protection => ThunderProtection
}
