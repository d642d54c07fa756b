//! `hit` / `hit_detached` / `dynamic`: a value recomputed after a number of cache hits.

use std::sync::Arc;

use cashews::Ttl;
use cashews::strategy::{Fallible, HitOptions, Plain, dynamic, hit, hit_detached};
use tokio::sync::Notify;

use super::{CustomError, Runs, eventually, ttl_ms};
use crate::support::{manual_cache as mem, ms};

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
