//! How much a strategy adds to the future it wraps: each strategy's future (runtime function
//! and attribute) holds its origin once, so it is at most the origin's size plus
//! [`OVERHEAD`]; and nine stacked attributes run on a thread with a 256 KiB stack, a miss (every
//! layer runs) and then a hit. Sizes are `std::mem::size_of_val` of unpolled futures. This
//! test crate sets no `#![recursion_limit]`: none is needed for nine attributes.

// The test origins are large on purpose.
#![allow(clippy::large_futures)]

use std::mem::size_of_val;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{Clocked, clocked, secs};
use cashews::strategy::LockedOptions;
use cashews::strategy::{
    BloomOptions, CacheOptions, CircuitBreakerOptions, DualBloomOptions, EarlyOptions,
    FailoverOptions, Fallible, HitOptions, PerfOptions, RateLimitOptions, SliceRateLimitOptions,
    SoftOptions, any_error, bloom, cache, cache_locked, circuit_breaker, dual_bloom, dynamic,
    early, early_detached, failover, hit, hit_detached, invalidate, locked, locked_always, perf,
    rate_limited, slice_rate_limited, soft, thunder_protection,
};
use cashews::{Cache, Error, Ttl};

/// What a strategy may add to its origin's future, in bytes.
const OVERHEAD: usize = 1024;

/// The bytes the test origins keep across an await: large against [`OVERHEAD`].
const BIG: usize = 16 * 1024;

/// The caller's error type: refusals reach it through `From<cashews::Error>`.
#[derive(Debug, Clone, PartialEq)]
enum AppError {
    Refused(String),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        Self::Refused(error.to_string())
    }
}

/// An origin that holds [`BIG`] bytes across an await.
async fn big() -> Result<u32, AppError> {
    let buffer = std::hint::black_box([7_u8; BIG]);
    tokio::task::yield_now().await;
    Ok(u32::from(buffer[BIG - 1]))
}

/// The same as a `bool` answer, for the Bloom strategies.
async fn big_bool() -> bool {
    big().await.is_ok()
}

/// Whether `wrapped` (a strategy's future around an origin of `origin` bytes) stays within
/// [`OVERHEAD`] of it; a line for the report otherwise.
fn check(name: &str, origin: usize, wrapped: usize) -> Option<String> {
    eprintln!(
        "{name}: {wrapped} bytes around {origin} (+{})",
        wrapped.saturating_sub(origin)
    );
    (wrapped > origin + OVERHEAD).then(|| {
        format!(
            "{name}: {wrapped} bytes around a {origin}-byte origin (+{}, {:.1}x)",
            wrapped - origin,
            wrapped as f64 / origin as f64
        )
    })
}

#[test]
fn each_runtime_strategy_holds_its_origin_once() {
    let store = Cache::new();
    let ttl = Ttl::new(secs(3600));
    let origin = size_of_val(&big());
    let bool_origin = size_of_val(&big_bool());
    assert!(origin >= BIG, "the test origin keeps its buffer: {origin}");
    let shape = Fallible::<u32, AppError>::new();
    let breaker = CircuitBreakerOptions::new(50, secs(60), secs(60));
    let sizes = [
        (
            "cache",
            size_of_val(&cache(&store, "k", ttl, &CacheOptions::new(), shape, big())),
        ),
        (
            "cache (upper)",
            size_of_val(&cache(
                &store,
                "k",
                ttl,
                &CacheOptions::new().upper(true),
                shape,
                big(),
            )),
        ),
        (
            "cache_locked",
            size_of_val(&cache_locked(
                &store,
                "k",
                ttl,
                &CacheOptions::new(),
                shape,
                big(),
            )),
        ),
        (
            "soft",
            size_of_val(&soft(&store, "k", ttl, &SoftOptions::new(), shape, big())),
        ),
        (
            "early",
            size_of_val(&early(&store, "k", ttl, &EarlyOptions::new(), shape, big())),
        ),
        (
            "early_detached",
            size_of_val(&early_detached(
                &store,
                "k",
                ttl,
                &EarlyOptions::new(),
                shape,
                big(),
            )),
        ),
        (
            "hit_detached",
            size_of_val(&hit_detached(
                &store,
                "k",
                ttl,
                &HitOptions::new(3),
                shape,
                big(),
            )),
        ),
        (
            "hit",
            size_of_val(&hit(&store, "k", ttl, &HitOptions::new(3), shape, big())),
        ),
        (
            "dynamic",
            size_of_val(&dynamic(&store, "k", ttl, shape, big())),
        ),
        (
            "failover",
            size_of_val(&failover(
                &store,
                "k",
                ttl,
                &FailoverOptions::new(),
                any_error,
                big(),
            )),
        ),
        (
            "circuit_breaker",
            size_of_val(&circuit_breaker(
                &store,
                "k",
                &breaker,
                |_: &AppError| true,
                big(),
            )),
        ),
        (
            "rate_limited",
            size_of_val(&rate_limited(
                &store,
                "k",
                &RateLimitOptions::new(10, secs(60)),
                big(),
            )),
        ),
        (
            "slice_rate_limited",
            size_of_val(&slice_rate_limited(
                &store,
                "k",
                &SliceRateLimitOptions::new(10, secs(60)),
                big(),
            )),
        ),
        (
            "perf",
            size_of_val(&perf(&store, "k", &PerfOptions::new(secs(60)), big())),
        ),
        (
            "locked",
            size_of_val(&locked(
                &store,
                "k",
                ttl,
                &LockedOptions::new().no_wait(),
                big(),
            )),
        ),
        (
            "locked_always",
            size_of_val(&locked_always(&store, "k", ttl, big())),
        ),
        (
            "thunder_protection",
            size_of_val(&thunder_protection(&store, "k", big())),
        ),
        (
            "invalidate",
            size_of_val(&invalidate(&store, "k:*", shape, big())),
        ),
    ];
    let bool_sizes = [
        (
            "bloom",
            size_of_val(&bloom(
                &store,
                "k",
                "m",
                &BloomOptions::new(100),
                big_bool(),
            )),
        ),
        (
            "dual_bloom",
            size_of_val(&dual_bloom(
                &store,
                "k",
                "m",
                &DualBloomOptions::new(100),
                big_bool(),
            )),
        ),
    ];
    let over: Vec<String> = sizes
        .iter()
        .filter_map(|(name, size)| check(name, origin, *size))
        .chain(
            bool_sizes
                .iter()
                .filter_map(|(name, size)| check(name, bool_origin, *size)),
        )
        .collect();
    assert!(
        over.is_empty(),
        "over {OVERHEAD} bytes:\n{}",
        over.join("\n")
    );
}

static SINGLE: LazyLock<Clocked> = LazyLock::new(clocked);

/// The undecorated body every decorated function below has.
macro_rules! big_body {
    () => {{
        let buffer = std::hint::black_box([7_u8; BIG]);
        tokio::task::yield_now().await;
        Ok(u32::from(buffer[BIG - 1]))
    }};
}

async fn plain() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::cache(ttl = "1h", key = "size:cache", cache = SINGLE.cache)]
async fn with_cache() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::cache(ttl = "1h", key = "size:tagged", tags = ["size"], cache = SINGLE.cache)]
async fn with_cache_tagged() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::cache(ttl = "1h", key = "size:cache_locked", lock = true, cache = SINGLE.cache)]
async fn with_cache_locked() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::soft(ttl = "1h", soft_ttl = "1m", key = "size", cache = SINGLE.cache)]
async fn with_soft() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::early(ttl = "1h", key = "size", cache = SINGLE.cache)]
async fn with_early() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::hit(ttl = "1h", cache_hits = 3, key = "size", cache = SINGLE.cache)]
async fn with_hit() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::early(ttl = "1h", key = "size:bg", background = true, cache = SINGLE.cache)]
async fn with_early_background() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::hit(ttl = "1h", cache_hits = 3, update_after = 1, key = "size:bg", background = true, cache = SINGLE.cache)]
async fn with_hit_background() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::dynamic(key = "size", cache = SINGLE.cache)]
async fn with_dynamic() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::failover(ttl = "1h", key = "size", cache = SINGLE.cache)]
async fn with_failover() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", cache = SINGLE.cache)]
async fn with_circuit_breaker() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::rate_limit(limit = 10, period = "1m", cache = SINGLE.cache)]
async fn with_rate_limit() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::slice_rate_limit(limit = 10, period = "1m", cache = SINGLE.cache)]
async fn with_slice_rate_limit() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::perf(ttl = "1m", cache = SINGLE.cache)]
async fn with_perf() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::locked(ttl = "1m", cache = SINGLE.cache)]
async fn with_locked() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::locked(ttl = "1m", wait = false, cache = SINGLE.cache)]
async fn with_locked_no_wait() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::thunder_protection(cache = SINGLE.cache)]
async fn with_thunder_protection() -> Result<u32, AppError> {
    big_body!()
}

#[cashews::invalidate(key = "size:*", cache = SINGLE.cache)]
async fn with_invalidate() -> Result<u32, AppError> {
    big_body!()
}

#[test]
fn each_attribute_holds_the_body_once() {
    let body = size_of_val(&plain());
    assert!(body >= BIG, "the test body keeps its buffer: {body}");
    let sizes = [
        ("cache", size_of_val(&with_cache())),
        ("cache(tags = ..)", size_of_val(&with_cache_tagged())),
        ("cache(lock = true)", size_of_val(&with_cache_locked())),
        ("soft", size_of_val(&with_soft())),
        ("early", size_of_val(&with_early())),
        ("hit", size_of_val(&with_hit())),
        (
            "early(background = true)",
            size_of_val(&with_early_background()),
        ),
        (
            "hit(background = true)",
            size_of_val(&with_hit_background()),
        ),
        ("dynamic", size_of_val(&with_dynamic())),
        ("failover", size_of_val(&with_failover())),
        ("circuit_breaker", size_of_val(&with_circuit_breaker())),
        ("rate_limit", size_of_val(&with_rate_limit())),
        ("slice_rate_limit", size_of_val(&with_slice_rate_limit())),
        ("perf", size_of_val(&with_perf())),
        ("locked", size_of_val(&with_locked())),
        ("locked(wait = false)", size_of_val(&with_locked_no_wait())),
        (
            "thunder_protection",
            size_of_val(&with_thunder_protection()),
        ),
        ("invalidate", size_of_val(&with_invalidate())),
    ];
    let over: Vec<String> = sizes
        .iter()
        .filter_map(|(name, size)| check(name, body, *size))
        .collect();
    assert!(
        over.is_empty(),
        "over {OVERHEAD} bytes:\n{}",
        over.join("\n")
    );
}

static STACKED: LazyLock<Clocked> = LazyLock::new(clocked);
static STACKED_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Nine different attributes on one function. The first listed expands first, so it wraps
/// the body directly: at run time `perf` is the outermost layer and `cache` the innermost.
#[cashews::cache(ttl = "1h", key = "stacked", cache = STACKED.cache)]
#[cashews::early(ttl = "1h", key = "stacked", cache = STACKED.cache)]
#[cashews::soft(ttl = "1h", soft_ttl = "1m", key = "stacked", cache = STACKED.cache)]
#[cashews::failover(ttl = "1h", key = "stacked", cache = STACKED.cache)]
#[cashews::hit(ttl = "1h", cache_hits = 3, key = "stacked", cache = STACKED.cache)]
#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", cache = STACKED.cache)]
#[cashews::locked(ttl = "1m", cache = STACKED.cache)]
#[cashews::rate_limit(limit = 10, period = "1m", cache = STACKED.cache)]
#[cashews::perf(ttl = "1m", cache = STACKED.cache)]
async fn stacked(n: u32) -> Result<u32, AppError> {
    STACKED_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    Ok(n + 1)
}

/// The same nine attributes, around a body that keeps [`BIG`] bytes across an await.
#[cashews::cache(ttl = "1h", key = "stacked_big", cache = STACKED.cache)]
#[cashews::early(ttl = "1h", key = "stacked_big", cache = STACKED.cache)]
#[cashews::soft(ttl = "1h", soft_ttl = "1m", key = "stacked_big", cache = STACKED.cache)]
#[cashews::failover(ttl = "1h", key = "stacked_big", cache = STACKED.cache)]
#[cashews::hit(ttl = "1h", cache_hits = 3, key = "stacked_big", cache = STACKED.cache)]
#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", cache = STACKED.cache)]
#[cashews::locked(ttl = "1m", cache = STACKED.cache)]
#[cashews::rate_limit(limit = 10, period = "1m", cache = STACKED.cache)]
#[cashews::perf(ttl = "1m", cache = STACKED.cache)]
async fn stacked_big() -> Result<u32, AppError> {
    big_body!()
}

#[test]
fn nine_stacked_attributes_add_at_most_their_overheads() {
    let body = size_of_val(&plain());
    let size = size_of_val(&stacked_big());
    eprintln!("nine attributes: {size} bytes around a {body}-byte body");
    assert!(
        size <= body + 9 * OVERHEAD,
        "nine attributes: {size} bytes around a {body}-byte body"
    );
}

#[test]
fn nine_stacked_attributes_run_on_a_256_kib_stack() {
    let thread = std::thread::Builder::new()
        .name("small-stack".to_owned())
        .stack_size(256 * 1024)
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let miss = stacked(41).await;
                let hit = stacked(41).await;
                (miss, hit, STACKED_RUNS.load(Ordering::SeqCst))
            })
        })
        .unwrap();
    // An overflow aborts the whole test process (Rust's guard page handler), which fails it.
    let (miss, hit, runs) = thread.join().unwrap();
    assert_eq!((miss, hit), (Ok(42), Ok(42)));
    assert_eq!(runs, 1, "the second call was a hit");
}
