//! Strategy options built at run time never panic: unusable values (a zero period, a
//! percentage of 100, …) are refused when a strategy runs, with an error naming the option,
//! before the origin runs or anything is counted; the `bool` strategies (bloom) run the
//! function without the filter instead. The attribute macros refuse the same values at
//! compile time (`cashews-macros/tests/ui/bad_strategy_options.rs`).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::strategy::{
    BloomOptions, CircuitBreakerOptions, DualBloomOptions, PerfOptions, RateLimitOptions,
    SliceRateLimitOptions, bloom, bloom_add, bloom_contains, bloom_set, circuit_breaker,
    dual_bloom, perf, rate_limit, rate_limited, slice_rate_limit, slice_rate_limited,
};
use cashews::{Cache, Error};

fn cache() -> Cache {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
}

fn option_of(error: &Error) -> &str {
    match error {
        Error::InvalidOption { option, .. } => option,
        other => panic!("expected an InvalidOption, got {other:?}"),
    }
}

/// Values only known at run time, so no constant evaluation catches them.
fn zero() -> Duration {
    black_box(Duration::ZERO)
}

#[tokio::test]
async fn rate_limits_refuse_unusable_options_without_counting() {
    let cache = cache();
    let runs = AtomicUsize::new(0);
    let origin = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Error>(())
    };
    let options = RateLimitOptions::new(black_box(5), zero());
    let error = rate_limit(&cache, "rl", &options).await.unwrap_err();
    assert_eq!(option_of(&error), "rate_limit.period");
    let error = rate_limited(&cache, "rl", &options, origin())
        .await
        .unwrap_err();
    assert_eq!(option_of(&error), "rate_limit.period");
    let banned_forever = RateLimitOptions::new(5, Duration::from_secs(1)).ttl(zero());
    let error = rate_limit(&cache, "rl", &banned_forever).await.unwrap_err();
    assert_eq!(option_of(&error), "rate_limit.ttl");
    // Set through the public field: the same check.
    let mut options = RateLimitOptions::new(5, Duration::from_secs(1));
    options.period = zero();
    assert_eq!(
        option_of(&options.validate().unwrap_err()),
        "rate_limit.period"
    );

    let options = SliceRateLimitOptions::new(black_box(5), zero());
    let error = slice_rate_limit(&cache, "srl", &options).await.unwrap_err();
    assert_eq!(option_of(&error), "slice_rate_limit.period");
    let error = slice_rate_limited(&cache, "srl", &options, origin())
        .await
        .unwrap_err();
    assert_eq!(option_of(&error), "slice_rate_limit.period");

    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        cache.get_keys_count().await.unwrap(),
        0,
        "nothing was counted"
    );
}

#[tokio::test]
async fn circuit_breaker_and_perf_refuse_unusable_options_before_the_origin() {
    let cache = cache();
    let runs = AtomicUsize::new(0);
    let origin = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, Error>(())
    };
    let (period, ttl) = (Duration::from_secs(1), Duration::from_secs(5));
    for (options, option) in [
        (
            CircuitBreakerOptions::new(black_box(0), period, ttl),
            "circuit_breaker.errors_rate",
        ),
        (
            CircuitBreakerOptions::new(black_box(100), period, ttl),
            "circuit_breaker.errors_rate",
        ),
        (
            CircuitBreakerOptions::new(50, zero(), ttl),
            "circuit_breaker.period",
        ),
        (
            CircuitBreakerOptions::new(50, period, zero()),
            "circuit_breaker.ttl",
        ),
        (
            CircuitBreakerOptions::new(50, period, ttl).half_open_ttl(zero()),
            "circuit_breaker.half_open_ttl",
        ),
        (
            CircuitBreakerOptions::new(50, period, ttl).half_open_share(black_box(101)),
            "circuit_breaker.half_open_share",
        ),
    ] {
        let error = circuit_breaker(&cache, "cb", &options, |_: &Error| true, origin())
            .await
            .unwrap_err();
        assert_eq!(option_of(&error), option);
        assert!(options.problem().is_some(), "{option}");
    }

    for (options, option) in [
        (PerfOptions::new(zero()), "perf.ttl"),
        (
            PerfOptions::new(ttl).trace_size(black_box(0)),
            "perf.trace_size",
        ),
        (PerfOptions::new(ttl).window(zero()), "perf.window"),
    ] {
        let error = perf(&cache, "perf", &options, origin()).await.unwrap_err();
        assert_eq!(option_of(&error), option);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(cache.get_keys_count().await.unwrap(), 0);
}

#[tokio::test]
async fn bloom_runs_the_function_without_an_unusable_filter() {
    let cache = cache();
    for (options, option) in [
        (BloomOptions::new(black_box(0)), "bloom.capacity"),
        (
            BloomOptions::new(100).false_positives(black_box(0.0)),
            "bloom.false_positives",
        ),
        (
            BloomOptions::new(100).false_positives(black_box(100.0)),
            "bloom.false_positives",
        ),
        // k would be 0: a member would set no bit.
        (
            BloomOptions::new(100).false_positives(black_box(80.0)),
            "bloom.false_positives",
        ),
        // More than 2^32 bits.
        (BloomOptions::new(black_box(u64::MAX / 4)), "bloom.capacity"),
    ] {
        assert_eq!(option_of(&options.validate().unwrap_err()), option);
        // The function answers, both ways; nothing is written.
        assert!(bloom_set(&cache, "b", "m", &options, async { true }).await);
        assert!(bloom(&cache, "b", "m", &options, async { true }).await);
        assert!(!bloom(&cache, "b", "m", &options, async { false }).await);
        let error = bloom_add(&cache, "b", "m", &options).await.unwrap_err();
        assert_eq!(option_of(&error), option);
        let error = bloom_contains(&cache, "b", "m", &options)
            .await
            .unwrap_err();
        assert_eq!(option_of(&error), option);
    }
    let options = DualBloomOptions::new(black_box(0));
    assert!(dual_bloom(&cache, "d", "m", &options, async { true }).await);
    assert!(!dual_bloom(&cache, "d", "m", &options, async { false }).await);
    assert_eq!(
        cache.get_keys_count().await.unwrap(),
        0,
        "no filter was written"
    );

    // Usable options still train and answer from the filter.
    let options = BloomOptions::new(black_box(100));
    assert!(bloom_set(&cache, "b", "m", &options, async { true }).await);
    assert!(bloom_contains(&cache, "b", "m", &options).await.unwrap());
}
