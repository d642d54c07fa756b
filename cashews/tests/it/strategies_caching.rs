//! The caching family of strategies: `failover`, `soft`, `early`, `hit` / `dynamic`.
//!
//! Every cache runs on a manual clock: tests move time instead of sleeping, and assert how
//! many times the origin ran, never how long anything took.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{manual_cache as mem, ms};
use cashews::strategy::{
    EarlyOptions, FailoverOptions, Fallible, HitOptions, Optional, Plain, SoftOptions,
    StoreCondition, any_error, dynamic, early, early_detached, failover, hit, hit_detached, soft,
    soft_when,
};
use cashews::{Cache, Ttl};
use tokio::sync::{Barrier, Notify};

fn ttl_ms(n: u64) -> Ttl {
    Ttl::new(ms(n))
}

#[derive(Debug, Clone, PartialEq)]
struct CustomError;

#[derive(Debug, Clone, PartialEq)]
struct OtherError;

/// Counts origin runs.
#[derive(Debug, Clone, Default)]
struct Runs(Arc<AtomicUsize>);

impl Runs {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// An origin returning `value`, counted when it runs.
    fn returning<T>(&self, value: T) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
    {
        let runs = Arc::clone(&self.0);
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            value
        }
    }
}

/// Waits (in real time, bounded) until `done` holds: for work spawned in the background.
async fn eventually(mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(ms(1)).await;
    }
    panic!("the background work did not finish");
}

// ----- failover ---------------------------------------------------------------------------

type Res = Result<String, CustomError>;

fn ok(s: &str) -> Res {
    Ok(s.to_owned())
}

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

// ----- soft -------------------------------------------------------------------------------

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

// ----- early ------------------------------------------------------------------------------

/// SPEC §9.87: early(ttl 0.02): ok; "notok" at once → ok; after 0.022 s, "notok" → notok.
#[tokio::test]
async fn early_expires_with_its_ttl() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new();
    let call = |v: &str| {
        early(
            &cache,
            "early:v2:key",
            ttl_ms(20),
            &options,
            Plain::new(),
            runs.returning(v.to_owned()),
        )
    };
    assert_eq!(call("ok").await, "ok");
    assert_eq!(call("notok").await, "ok");
    clock.advance(ms(22));
    assert_eq!(call("notok").await, "notok");
    assert_eq!(runs.count(), 2);
}

/// SPEC §9.88: 5 concurrent stale calls all get the old value, with exactly 1 refresh; later
/// calls get the new value; the lock key is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refreshes_once_while_others_get_the_stored_value() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(1);
    let first = early(
        &cache,
        "early:v2:k",
        ttl,
        &options,
        Plain::new(),
        runs.returning(0u32),
    );
    assert_eq!(first.await, 0);
    clock.advance(ms(350));
    // The refresh waits until the four other callers have returned.
    let release = Arc::new(Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (cache, runs, release) = (cache.clone(), runs.clone(), Arc::clone(&release));
        tasks.spawn(async move {
            let origin = runs.returning(1u32);
            early(
                &cache,
                "early:v2:k",
                ttl,
                &options,
                Plain::new(),
                async move {
                    release.notified().await;
                    origin.await
                },
            )
            .await
        });
    }
    for _ in 0..4 {
        assert_eq!(tasks.join_next().await.unwrap().unwrap(), 0);
    }
    release.notify_one();
    assert_eq!(
        tasks.join_next().await.unwrap().unwrap(),
        0,
        "the refresher too"
    );
    assert_eq!(runs.count(), 2, "exactly one refresh");
    clock.advance(ms(100));
    let next = early(
        &cache,
        "early:v2:k",
        ttl,
        &options,
        Plain::new(),
        runs.returning(9u32),
    );
    assert_eq!(next.await, 1);
    assert_eq!(runs.count(), 2);
    assert!(cache.exists("early:v2:k").await.unwrap());
    assert!(!cache.exists("early:v2:k:lock").await.unwrap());
}

/// SPEC §9.89 (background = false): the stale call waits for the refresh, returns the old
/// value; the next call returns the new one.
#[tokio::test]
async fn early_in_caller_refresh_returns_the_old_value() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(1);
    let call = |v: u32| {
        early(
            &cache,
            "early:v2:k",
            ttl,
            &options,
            Plain::new(),
            runs.returning(v),
        )
    };
    assert_eq!(call(0).await, 0);
    clock.advance(ms(350));
    assert_eq!(call(1).await, 0);
    assert_eq!(runs.count(), 2, "the refresh ran before the call returned");
    assert_eq!(call(2).await, 1);
    assert_eq!(runs.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_detached_refreshes_in_the_background() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(1);
    let first = early_detached(
        &cache,
        "early:v2:d",
        ttl,
        &options,
        Plain::new(),
        runs.returning(0u32),
    );
    assert_eq!(first.await, 0);
    clock.advance(ms(350));
    let release = Arc::new(Notify::new());
    let origin = {
        let (origin, release) = (runs.returning(1u32), Arc::clone(&release));
        async move {
            release.notified().await;
            origin.await
        }
    };
    // Returns while the refresh is still blocked: nobody waits for it.
    let stale = early_detached(&cache, "early:v2:d", ttl, &options, Plain::new(), origin);
    assert_eq!(stale.await, 0);
    assert!(cache.exists("early:v2:d:lock").await.unwrap());
    release.notify_one();
    eventually(|| runs.count() == 2).await;
    let check = cache.clone();
    for _ in 0..2_000 {
        if !check.exists("early:v2:d:lock").await.unwrap() {
            break;
        }
        tokio::time::sleep(ms(1)).await;
    }
    assert!(!cache.exists("early:v2:d:lock").await.unwrap());
    let next = early_detached(
        &cache,
        "early:v2:d",
        ttl,
        &options,
        Plain::new(),
        runs.returning(9u32),
    );
    assert_eq!(next.await, 1);
}

/// 100 concurrent callers on an entry past its early TTL: the origin runs exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_hundred_concurrent_stale_callers_refresh_once() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(10);
    early(
        &cache,
        "early:v2:h",
        ttl,
        &options,
        Plain::new(),
        runs.returning(0u32),
    )
    .await;
    clock.advance(ms(350));
    let start = Arc::new(Barrier::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (cache, runs, start) = (cache.clone(), runs.clone(), Arc::clone(&start));
        tasks.spawn(async move {
            start.wait().await;
            let origin = runs.returning(1u32);
            early(
                &cache,
                "early:v2:h",
                ttl,
                &options,
                Plain::new(),
                async move {
                    tokio::time::sleep(ms(5)).await;
                    origin.await
                },
            )
            .await
        });
    }
    while let Some(v) = tasks.join_next().await {
        let v = v.unwrap();
        assert!(v == 0 || v == 1, "old or new value, got {v}");
    }
    assert_eq!(runs.count(), 2, "the initial run plus exactly one refresh");
}

#[tokio::test]
async fn early_failed_refresh_keeps_serving_and_retries() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(1);
    let shape = Fallible::<String, CustomError>::new();
    let call = |r: Res| {
        early(
            &cache,
            "early:v2:f",
            ttl,
            &options,
            shape,
            runs.returning(r),
        )
    };
    assert_eq!(call(ok("old")).await, ok("old"));
    clock.advance(ms(350));
    assert_eq!(
        call(Err(CustomError)).await,
        ok("old"),
        "the error goes to nobody"
    );
    assert!(
        !cache.exists("early:v2:f:lock").await.unwrap(),
        "the lock is released"
    );
    assert_eq!(
        call(Err(CustomError)).await,
        ok("old"),
        "the next stale call retries"
    );
    assert_eq!(runs.count(), 3);
    assert_eq!(call(ok("new")).await, ok("old"));
    assert_eq!(call(ok("unused")).await, ok("new"));
    assert_eq!(runs.count(), 4);
}

/// A refresh dropped midway (the caller timed out) releases its lock, so the next stale call
/// refreshes instead of waiting for the lock to expire.
#[tokio::test]
async fn early_cancelled_refresh_releases_its_lock() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(10);
    early(
        &cache,
        "early:v2:x",
        ttl,
        &options,
        Plain::new(),
        runs.returning(0u32),
    )
    .await;
    clock.advance(ms(350));
    let stuck = early(&cache, "early:v2:x", ttl, &options, Plain::new(), async {
        std::future::pending::<u32>().await
    });
    let mut stuck = Box::pin(stuck);
    let first_poll =
        std::future::poll_fn(|cx| std::task::Poll::Ready(stuck.as_mut().poll(cx).is_pending()));
    assert!(first_poll.await, "the refresh is under way");
    assert!(cache.exists("early:v2:x:lock").await.unwrap());
    drop(stuck);
    for _ in 0..2_000 {
        if !cache.exists("early:v2:x:lock").await.unwrap() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!cache.exists("early:v2:x:lock").await.unwrap());
    let v = early(
        &cache,
        "early:v2:x",
        ttl,
        &options,
        Plain::new(),
        runs.returning(1u32),
    )
    .await;
    assert_eq!((v, runs.count()), (0, 2), "the next stale call refreshed");
}

#[tokio::test]
async fn early_cold_failure_is_returned_and_not_stored() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new();
    let shape = Fallible::<String, CustomError>::new();
    for _ in 0..2 {
        let r = early(
            &cache,
            "early:v2:e",
            Ttl::secs(10),
            &options,
            shape,
            runs.returning(Err(CustomError)),
        );
        assert_eq!(r.await, Err(CustomError));
    }
    assert_eq!(runs.count(), 2, "errors are not cached");
    assert!(!cache.exists("early:v2:e").await.unwrap());
}

#[tokio::test]
async fn early_leaves_the_refresh_to_whoever_holds_the_lock() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().early_ttl(ms(300));
    let ttl = Ttl::secs(1);
    early(
        &cache,
        "early:v2:l",
        ttl,
        &options,
        Plain::new(),
        runs.returning(0u32),
    )
    .await;
    clock.advance(ms(350));
    assert!(
        cache
            .set_lock("early:v2:l:lock", "another process", 10)
            .await
            .unwrap()
    );
    let v = early(
        &cache,
        "early:v2:l",
        ttl,
        &options,
        Plain::new(),
        runs.returning(1u32),
    )
    .await;
    assert_eq!((v, runs.count()), (0, 1));
}

#[tokio::test]
async fn early_ttl_defaults_to_a_third_of_the_ttl() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new();
    let call = |v: u32| {
        early(
            &cache,
            "early:v2:t",
            Ttl::secs(100),
            &options,
            Plain::new(),
            runs.returning(v),
        )
    };
    call(0).await;
    clock.advance(Duration::from_secs(32));
    assert_eq!((call(1).await, runs.count()), (0, 1));
    clock.advance(Duration::from_secs(2));
    assert_eq!((call(2).await, runs.count()), (0, 2));
    assert_eq!(call(3).await, 2);
}

#[tokio::test]
async fn early_reads_a_value_of_another_shape_as_a_miss() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new();
    let ttl = Ttl::secs(60);
    // As `cache` would store it, an integer, a pair, a map of other fields, a soft entry.
    cache.set("early:v2:a", "plain", 60).await.unwrap();
    cache.set("early:v2:b", &42u32, 60).await.unwrap();
    cache.set("early:v2:c", &(u64::MAX, "x"), 60).await.unwrap();
    let mut other = std::collections::BTreeMap::new();
    other.insert("refresh_at_ms", "1");
    other.insert("valeur", "x");
    cache.set("early:v2:d", &other, 60).await.unwrap();
    soft(
        &cache,
        "early:v2:e",
        ttl,
        &SoftOptions::new(),
        Plain::new(),
        async { "x".to_owned() },
    )
    .await;
    for key in [
        "early:v2:a",
        "early:v2:b",
        "early:v2:c",
        "early:v2:d",
        "early:v2:e",
    ] {
        let v = early(
            &cache,
            key,
            ttl,
            &options,
            Plain::<String>::new(),
            runs.returning("fresh".to_owned()),
        );
        assert_eq!(v.await, "fresh", "{key}");
        let again = early(
            &cache,
            key,
            ttl,
            &options,
            Plain::<String>::new(),
            runs.returning("unused".to_owned()),
        );
        assert_eq!(again.await, "fresh", "{key} now holds an early entry");
    }
    assert_eq!(runs.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_cold_misses_are_coalesced_unless_unprotected() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let ttl = Ttl::secs(60);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (cache, runs) = (cache.clone(), runs.clone());
        tasks.spawn(async move {
            let origin = runs.returning(7u32);
            early(
                &cache,
                "early:v2:p",
                ttl,
                &EarlyOptions::new(),
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
        assert_eq!(v.unwrap(), 7);
    }
    assert_eq!(runs.count(), 1);

    // Unprotected: all five run (each waits for the others inside its origin).
    let runs = Runs::default();
    let together = Arc::new(Barrier::new(5));
    for _ in 0..5 {
        let (cache, runs, together) = (cache.clone(), runs.clone(), Arc::clone(&together));
        tasks.spawn(async move {
            let origin = runs.returning(8u32);
            let options = EarlyOptions::new().protected(false);
            early(
                &cache,
                "early:v2:u",
                ttl,
                &options,
                Plain::new(),
                async move {
                    together.wait().await;
                    origin.await
                },
            )
            .await
        });
    }
    let all = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(v) = tasks.join_next().await {
            assert_eq!(v.unwrap(), 8);
        }
    });
    all.await.unwrap();
    assert_eq!(runs.count(), 5);
}

/// SPEC §9.81 for early: only results slower than `time_condition` are stored.
#[tokio::test(start_paused = true)]
async fn early_time_condition_stores_only_slow_results() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().time_condition(ms(100));
    let ttl = Ttl::secs(60);
    let slow = |v: &'static str, took: u64| {
        let origin = runs.returning(v.to_owned());
        async move {
            tokio::time::sleep(ms(took)).await;
            origin.await
        }
    };
    let shape = Plain::<String>::new();
    assert_eq!(
        early(&cache, "early:v2:t", ttl, &options, shape, slow("fast", 10)).await,
        "fast"
    );
    assert_eq!(
        early(&cache, "early:v2:t", ttl, &options, shape, slow("fast", 10)).await,
        "fast"
    );
    assert_eq!(
        early(
            &cache,
            "early:v2:t",
            ttl,
            &options,
            shape,
            slow("slow", 150)
        )
        .await,
        "slow"
    );
    assert_eq!(
        early(&cache, "early:v2:t", ttl, &options, shape, slow("fast", 10)).await,
        "slow"
    );
    assert_eq!(runs.count(), 3);
}

#[tokio::test]
async fn early_condition_not_none_skips_none() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = EarlyOptions::new().condition(StoreCondition::NotNone);
    for _ in 0..2 {
        let r = early(
            &cache,
            "early:v2:n",
            Ttl::secs(60),
            &options,
            Optional::<u8>::new(),
            runs.returning(None),
        );
        assert_eq!(r.await, None);
    }
    assert_eq!(runs.count(), 2);
}

// ----- hit / dynamic ----------------------------------------------------------------------

/// SPEC §9.84: hit(cache_hits 3), arguments 0..8 → 0,0,0,0,4,4,4,4,8 (3 runs).
#[tokio::test]
async fn hit_recomputes_after_cache_hits() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(3);
    let mut seen = Vec::new();
    for n in 0..9u32 {
        seen.push(
            hit(
                &cache,
                "hit:k",
                Ttl::secs(60),
                &options,
                Plain::new(),
                runs.returning(n),
            )
            .await,
        );
    }
    assert_eq!(seen, [0, 0, 0, 0, 4, 4, 4, 4, 8]);
    assert_eq!(runs.count(), 3);
}

/// SPEC §9.85: hit(ttl 10, cache_hits 5, update_after 1).
#[tokio::test]
async fn hit_update_after_recomputes_and_returns_the_stored_value() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(5).update_after(1);
    let call = |n: u32| {
        hit(
            &cache,
            "hit:u",
            Ttl::secs(10),
            &options,
            Plain::new(),
            runs.returning(n),
        )
    };
    assert_eq!((call(1).await, runs.count()), (1, 1));
    assert_eq!((call(2).await, runs.count()), (1, 2));
    assert_eq!((call(3).await, runs.count()), (2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hit_detached_recomputes_in_the_background() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(5).update_after(1);
    let ttl = Ttl::secs(10);
    let first = hit_detached(
        &cache,
        "hit:d",
        ttl,
        &options,
        Plain::new(),
        runs.returning(1u32),
    );
    assert_eq!(first.await, 1);
    let release = Arc::new(Notify::new());
    let origin = {
        let (origin, release) = (runs.returning(2u32), Arc::clone(&release));
        async move {
            release.notified().await;
            origin.await
        }
    };
    assert_eq!(
        hit_detached(&cache, "hit:d", ttl, &options, Plain::new(), origin).await,
        1
    );
    assert_eq!(
        runs.count(),
        1,
        "the caller did not wait for the recomputation"
    );
    release.notify_one();
    eventually(|| runs.count() == 2).await;
    let check = cache.clone();
    for _ in 0..2_000 {
        if check.get::<u32>("hit:d").await.unwrap() == Some(2) {
            break;
        }
        tokio::time::sleep(ms(1)).await;
    }
    let v = hit_detached(
        &cache,
        "hit:d",
        ttl,
        &options,
        Plain::new(),
        runs.returning(3u32),
    );
    assert_eq!(v.await, 2);
}

/// SPEC §9.86: dynamic, arguments 0..5 → 0,0,1,2,3,4.
#[tokio::test]
async fn dynamic_refreshes_on_every_hit() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let mut seen = Vec::new();
    for n in 0..6u32 {
        let v = dynamic(
            &cache,
            "dynamic:k",
            HitOptions::DYNAMIC_TTL,
            Plain::new(),
            runs.returning(n),
        );
        seen.push(v.await);
    }
    assert_eq!(seen, [0, 0, 1, 2, 3, 4]);
    assert_eq!(runs.count(), 6);
    assert_eq!(
        cache
            .get_expire("dynamic:k")
            .await
            .unwrap()
            .as_secs_rounded(),
        Some(86_400)
    );
}

#[tokio::test]
async fn hit_keeps_a_counter_beside_the_value() {
    let (cache, clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(10);
    let ttl = ttl_ms(500);
    let call = |n: u32| {
        hit(
            &cache,
            "hit:c",
            ttl,
            &options,
            Plain::new(),
            runs.returning(n),
        )
    };
    call(0).await;
    assert!(
        !cache.exists("hit:c:counter").await.unwrap(),
        "a store resets the counter"
    );
    assert_eq!(cache.get::<u32>("hit:c").await.unwrap(), Some(0));
    call(1).await;
    call(2).await;
    assert_eq!(cache.get::<i64>("hit:c:counter").await.unwrap(), Some(2));
    clock.advance(ms(600));
    assert_eq!(call(3).await, 3, "the value expires with the TTL");
    assert_eq!(runs.count(), 2);
}

#[tokio::test]
async fn hit_does_not_store_errors() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(10);
    for _ in 0..2 {
        let r = hit(
            &cache,
            "hit:e",
            Ttl::secs(60),
            &options,
            Fallible::<String, _>::new(),
            runs.returning(Err(CustomError)),
        );
        assert_eq!(r.await, Err(CustomError));
    }
    assert_eq!(runs.count(), 2);
    assert!(!cache.exists("hit:e").await.unwrap());
}

#[tokio::test]
async fn hit_survives_a_counter_of_the_wrong_type() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(10);
    cache.set("hit:w", &5u32, 60).await.unwrap();
    cache
        .set("hit:w:counter", "not a number", 60)
        .await
        .unwrap();
    let call = |n: u32| {
        hit(
            &cache,
            "hit:w",
            Ttl::secs(60),
            &options,
            Plain::new(),
            runs.returning(n),
        )
    };
    assert_eq!(call(1).await, 1, "an unreadable counter runs the function");
    assert_eq!(call(2).await, 1, "and the store repaired it");
    assert_eq!(runs.count(), 1);
}

/// SPEC §3.3: 1 call plus 10 concurrent calls → 1 or 2 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hit_concurrent_calls_mostly_hit() {
    let (cache, _clock) = mem();
    let runs = Runs::default();
    let options = HitOptions::new(10);
    let ttl = Ttl::secs(1000);
    hit(
        &cache,
        "hit:p",
        ttl,
        &options,
        Plain::new(),
        runs.returning(0u32),
    )
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=10u32 {
        let (cache, runs) = (cache.clone(), runs.clone());
        tasks.spawn(async move {
            hit(
                &cache,
                "hit:p",
                ttl,
                &options,
                Plain::new(),
                runs.returning(n),
            )
            .await
        });
    }
    while let Some(v) = tasks.join_next().await {
        v.unwrap();
    }
    assert!((1..=2).contains(&runs.count()), "{} runs", runs.count());
}

// ----- all of them --------------------------------------------------------------------------

/// A cache failure never fails the call: with no backend at all, every strategy runs the
/// function and returns its own result.
#[tokio::test]
async fn a_broken_cache_never_fails_the_call() {
    let cache = Cache::new(); // not configured: every command fails
    let ttl = Ttl::secs(60);
    let runs = Runs::default();
    let r: Res = failover(
        &cache,
        "fail:k",
        ttl,
        &FailoverOptions::new(),
        any_error,
        runs.returning(ok("f")),
    )
    .await;
    assert_eq!(r, ok("f"));
    let r: Res = failover(
        &cache,
        "fail:k",
        ttl,
        &FailoverOptions::new(),
        any_error,
        runs.returning(Err(CustomError)),
    )
    .await;
    assert_eq!(r, Err(CustomError));
    let shape = Fallible::<String, CustomError>::new();
    assert_eq!(
        soft(
            &cache,
            "soft:k",
            ttl,
            &SoftOptions::new(),
            shape,
            runs.returning(ok("s"))
        )
        .await,
        ok("s")
    );
    assert_eq!(
        early(
            &cache,
            "early:v2:k",
            ttl,
            &EarlyOptions::new(),
            shape,
            runs.returning(ok("e"))
        )
        .await,
        ok("e")
    );
    assert_eq!(
        hit(
            &cache,
            "hit:k",
            ttl,
            &HitOptions::new(3),
            shape,
            runs.returning(ok("h"))
        )
        .await,
        ok("h")
    );
    assert_eq!(runs.count(), 5);
}

/// The strategies' futures are `Send` when their inputs are, so they run in spawned tasks
/// and web handlers.
#[test]
fn strategy_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let cache = Cache::new();
    let ttl = Ttl::secs(1);
    let shape = Plain::<u32>::new();
    let (soft_opts, early_opts) = (SoftOptions::new(), EarlyOptions::new());
    let (hit_opts, failover_opts) = (HitOptions::new(1), FailoverOptions::new());
    let f = soft(&cache, "k", ttl, &soft_opts, shape, async { 1 });
    send(&f);
    let f = early(&cache, "k", ttl, &early_opts, shape, async { 1 });
    send(&f);
    let f = early_detached(&cache, "k", ttl, &early_opts, shape, async { 1 });
    send(&f);
    let f = hit(&cache, "k", ttl, &hit_opts, shape, async { 1 });
    send(&f);
    let f = hit_detached(&cache, "k", ttl, &hit_opts, shape, async { 1 });
    send(&f);
    let f = failover(&cache, "k", ttl, &failover_opts, any_error, async {
        Ok::<u32, String>(1)
    });
    send(&f);
}
