//! `early` / `early_detached`: an entry past its early TTL is refreshed once, in the caller
//! or in the background, while the other callers get the stored value.

use std::sync::Arc;
use std::time::Duration;

use cashews::Ttl;
use cashews::strategy::{
    EarlyOptions, Fallible, Optional, Plain, SoftOptions, StoreCondition, early, early_detached,
    soft,
};
use tokio::sync::{Barrier, Notify};

use super::{CustomError, Res, Runs, eventually, ok, ttl_ms};
use crate::support::{manual_cache as mem, ms};

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
