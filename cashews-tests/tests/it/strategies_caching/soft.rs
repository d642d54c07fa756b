//! `soft` / `soft_when`: a value past its soft TTL is recomputed, and served stale when the
//! recomputation fails, until the hard TTL.

use std::time::Duration;

use cashews::Ttl;
use cashews::strategy::{Fallible, Plain, SoftOptions, soft, soft_when};

use super::{CustomError, Res, Runs, ok, ttl_ms};
use crate::support::{manual_cache as mem, ms};

fn soft_options() -> SoftOptions {
    SoftOptions::new().soft_ttl(ms(20))
}

/// SPEC §9.90: soft(ttl 0.08, soft_ttl 0.02).
#[tokio::test]
async fn soft_recomputes_after_the_soft_ttl() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = soft_options();
    let shape = Plain::<String>::new();
    let call = |v: &str| {
        soft(
            &cache,
            "soft:key",
            ttl_ms(80),
            &options,
            shape,
            runs.returning(v.to_owned()),
        )
    };
    assert_eq!(call("ok").await, "ok");
    assert_eq!(runs.count(), 1);
    assert_eq!(call("notok").await, "ok");
    assert_eq!(runs.count(), 1);
    clock.advance(ms(22));
    assert_eq!(call("notok").await, "notok");
    assert_eq!(runs.count(), 2);
    assert_eq!(
        call("again").await,
        "notok",
        "the new value has a new soft TTL"
    );
    assert_eq!(runs.count(), 2);
}

/// SPEC §9.91: past soft expiry a failure returns the stale value, until the hard TTL.
#[tokio::test]
async fn soft_serves_the_stale_value_when_the_function_fails() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = soft_options();
    let shape = Fallible::<String, CustomError>::new();
    let call = |r: Res| {
        soft(
            &cache,
            "soft:key",
            ttl_ms(80),
            &options,
            shape,
            runs.returning(r),
        )
    };
    assert_eq!(call(ok("ok")).await, ok("ok"));
    clock.advance(ms(22));
    assert_eq!(call(Err(CustomError)).await, ok("ok"));
    clock.advance(ms(22));
    assert_eq!(call(Err(CustomError)).await, ok("ok"));
    clock.advance(ms(60));
    assert_eq!(call(Err(CustomError)).await, Err(CustomError));
    assert_eq!(runs.count(), 4);
}

#[tokio::test]
async fn soft_without_a_stale_value_returns_the_real_error() {
    let (cache, _clock) = mem();
    let r: Res = soft(
        &cache,
        "soft:k",
        Ttl::secs(60),
        &soft_options(),
        Fallible::new(),
        async { Err(CustomError) },
    )
    .await;
    assert_eq!(r, Err(CustomError));
    assert!(!cache.exists("soft:k").await.unwrap());
}

#[tokio::test]
async fn soft_when_returns_the_failures_it_rejects() {
    let (cache, clock) = mem();
    let options = soft_options();
    let shape = Fallible::<u32, &str>::new();
    let transient = |r: &Result<u32, &str>| matches!(r, Err(e) if *e == "timeout");
    let ttl = Ttl::secs(60);
    let first = soft_when(&cache, "soft:k", ttl, &options, shape, transient, async {
        Ok(1)
    });
    assert_eq!(first.await, Ok(1));
    clock.advance(ms(30));
    let fatal = soft_when(&cache, "soft:k", ttl, &options, shape, transient, async {
        Err("denied")
    });
    assert_eq!(fatal.await, Err("denied"));
    let stale = soft_when(&cache, "soft:k", ttl, &options, shape, transient, async {
        Err("timeout")
    });
    assert_eq!(stale.await, Ok(1));
}

#[tokio::test]
async fn soft_ttl_defaults_to_a_third_of_the_ttl() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = SoftOptions::new();
    let call = || {
        soft(
            &cache,
            "soft:k",
            Ttl::secs(100),
            &options,
            Plain::new(),
            runs.returning(1),
        )
    };
    assert_eq!(call().await, 1);
    clock.advance(Duration::from_secs(32));
    call().await;
    assert_eq!(runs.count(), 1);
    clock.advance(Duration::from_secs(2));
    call().await;
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn soft_reads_a_value_of_another_shape_as_a_miss() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    cache.set("soft:k", "plain", 60).await.unwrap();
    let v = soft(
        &cache,
        "soft:k",
        Ttl::secs(60),
        &soft_options(),
        Plain::<String>::new(),
        runs.returning("fresh".to_owned()),
    )
    .await;
    assert_eq!((v.as_str(), runs.count()), ("fresh", 1));
    // A failure finds no stale value in an entry of another shape either.
    cache.set("soft:e", &(7u64, "x"), 60).await.unwrap();
    let r: Res = soft(
        &cache,
        "soft:e",
        Ttl::secs(60),
        &soft_options(),
        Fallible::new(),
        async { Err(CustomError) },
    )
    .await;
    assert_eq!(r, Err(CustomError));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_protected_renews_once_for_concurrent_stale_callers() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = soft_options();
    soft(
        &cache,
        "soft:k",
        Ttl::secs(60),
        &options,
        Plain::new(),
        runs.returning(0u32),
    )
    .await;
    clock.advance(ms(30));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (cache, runs) = (cache.clone(), runs.clone());
        tasks.spawn(async move {
            let origin = runs.returning(1u32);
            soft(
                &cache,
                "soft:k",
                Ttl::secs(60),
                &options,
                Plain::new(),
                async move {
                    tokio::time::sleep(ms(20)).await;
                    origin.await
                },
            )
            .await
        });
    }
    while let Some(v) = tasks.join_next().await {
        assert_eq!(v.unwrap(), 1, "every caller gets the renewed value");
    }
    assert_eq!(runs.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn soft_time_condition_stores_only_slow_results() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = soft_options().time_condition(ms(100));
    let ttl = Ttl::secs(60);
    let shape = Plain::<String>::new();
    let slow = |v: &'static str, took: u64| {
        let origin = runs.returning(v.to_owned());
        async move {
            tokio::time::sleep(ms(took)).await;
            origin.await
        }
    };
    assert_eq!(
        soft(&cache, "soft:t", ttl, &options, shape, slow("fast", 10)).await,
        "fast"
    );
    assert_eq!(
        soft(&cache, "soft:t", ttl, &options, shape, slow("fast", 10)).await,
        "fast"
    );
    assert_eq!(runs.count(), 2);
    assert_eq!(
        soft(&cache, "soft:t", ttl, &options, shape, slow("slow", 150)).await,
        "slow"
    );
    assert_eq!(
        soft(&cache, "soft:t", ttl, &options, shape, slow("fast", 10)).await,
        "slow"
    );
    assert_eq!(runs.count(), 3);
}
