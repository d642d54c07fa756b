//! `failover`: the last good result stands in for a failure until its TTL, and which
//! failures and results the options let through.

use cashews::Ttl;
use cashews::strategy::{FailoverOptions, any_error, failover};

use super::{CustomError, OtherError, Res, Runs, ok, ttl_ms};
use crate::support::{manual_cache as mem, ms};

/// SPEC §9.82: ok; fail → "ok" from the cache; after the TTL, fail raises.
#[tokio::test]
async fn failover_serves_the_last_good_result_until_its_ttl() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = FailoverOptions::new();
    let call = |result: Res| {
        failover(
            &cache,
            "fail:key",
            ttl_ms(20),
            &options,
            |e: &CustomError| *e == CustomError,
            runs.returning(result),
        )
    };
    assert_eq!(call(ok("ok")).await, ok("ok"));
    assert_eq!(call(Err(CustomError)).await, ok("ok"));
    clock.advance(ms(40));
    assert_eq!(call(Err(CustomError)).await, Err(CustomError));
    assert_eq!(runs.count(), 3, "failover runs the function on every call");
}

#[tokio::test]
async fn failover_without_a_stored_value_returns_the_real_error() {
    let (cache, _clock) = mem();
    let options = FailoverOptions::new();
    let result: Res = failover(
        &cache,
        "fail:k",
        Ttl::secs(60),
        &options,
        any_error,
        async { Err(CustomError) },
    )
    .await;
    assert_eq!(result, Err(CustomError));
    assert!(
        !cache.exists("fail:k").await.unwrap(),
        "errors are never stored"
    );
}

#[tokio::test]
async fn failover_returns_errors_the_predicate_rejects_even_with_a_fallback() {
    let (cache, _clock) = mem();
    let options = FailoverOptions::new();
    let ttl = Ttl::secs(60);
    let first: Result<u32, OtherError> = failover(
        &cache,
        "fail:k",
        ttl,
        &options,
        |_: &OtherError| false,
        async { Ok(1) },
    )
    .await;
    assert_eq!(first, Ok(1));
    let rejected: Result<u32, OtherError> = failover(
        &cache,
        "fail:k",
        ttl,
        &options,
        |_: &OtherError| false,
        async { Err(OtherError) },
    )
    .await;
    assert_eq!(rejected, Err(OtherError));
    let accepted: Result<u32, OtherError> =
        failover(&cache, "fail:k", ttl, &options, any_error, async {
            Err(OtherError)
        })
        .await;
    assert_eq!(accepted, Ok(1));
}

#[tokio::test]
async fn failover_keeps_the_latest_success() {
    let (cache, _clock) = mem();
    let options = FailoverOptions::new();
    let ttl = Ttl::secs(60);
    for value in ["a", "b"] {
        let r: Res = failover(&cache, "fail:k", ttl, &options, any_error, async {
            ok(value)
        })
        .await;
        assert_eq!(r, ok(value));
    }
    let r: Res = failover(&cache, "fail:k", ttl, &options, any_error, async {
        Err(CustomError)
    })
    .await;
    assert_eq!(r, ok("b"));
    assert_eq!(
        cache.get::<String>("fail:k").await.unwrap().as_deref(),
        Some("b")
    );
}

#[tokio::test]
async fn failover_ignores_a_stored_value_of_another_type() {
    let (cache, _clock) = mem();
    cache.set("fail:k", "not a number", 60).await.unwrap();
    let r: Result<u32, CustomError> = failover(
        &cache,
        "fail:k",
        Ttl::secs(60),
        &FailoverOptions::new(),
        any_error,
        async { Err(CustomError) },
    )
    .await;
    assert_eq!(r, Err(CustomError));
}

#[tokio::test(start_paused = true)]
async fn failover_time_condition_stores_only_slow_results() {
    let (cache, _clock) = mem();
    let options = FailoverOptions::new().time_condition(ms(100));
    let ttl = Ttl::secs(60);
    let fast: Res = failover(&cache, "fail:k", ttl, &options, any_error, async {
        ok("fast")
    })
    .await;
    assert_eq!(fast, ok("fast"));
    assert!(!cache.exists("fail:k").await.unwrap());
    let slow: Res = failover(&cache, "fail:k", ttl, &options, any_error, async {
        tokio::time::sleep(ms(150)).await;
        ok("slow")
    })
    .await;
    assert_eq!(slow, ok("slow"));
    let r: Res = failover(&cache, "fail:k", ttl, &options, any_error, async {
        Err(CustomError)
    })
    .await;
    assert_eq!(r, ok("slow"));
}
