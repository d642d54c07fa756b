//! The wake-ups behind `Cache::lock`, `lock_wait` and `is_locked_wait`: a waiter wakes on
//! release, or when the lock's TTL lapses.

use std::time::Duration;

use cashews::{Cache, Clock, MemoryBackend};
use tokio::time::Instant;

use super::LineUp;
use crate::support::manual_cache as cache_on_manual_clock;

#[tokio::test(start_paused = true)]
async fn lock_wait_and_is_locked_wait_wake_on_release() {
    let (cache, _clock) = cache_on_manual_clock();
    let started = Instant::now();
    let guard = cache.lock("job", "1h").await.unwrap();
    let line = LineUp::new(2);
    let taker = tokio::spawn(line.join({
        let cache = cache.clone();
        async move {
            cache
                .lock_wait("job", "1h", Duration::from_secs(600))
                .await
                .map(|g| g.is_degraded())
        }
    }));
    let watcher = tokio::spawn(line.join({
        let cache = cache.clone();
        async move { cache.is_locked_wait("job", Duration::from_secs(600)).await }
    }));
    line.all().await;
    drop(guard); // released from a spawned task, which wakes both
    assert!(!taker.await.unwrap().unwrap());
    // The watcher wakes at each release, and finds the lock free at the last one at least.
    assert!(!watcher.await.unwrap().unwrap());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_on_a_lock_held_here_sleeps_until_its_ttl_lapses() {
    let (cache, clock) = cache_on_manual_clock();
    let started = Instant::now();
    let _forgotten = cache.lock("lapse", "5s").await.unwrap(); // never released
    let line = LineUp::new(1);
    let taker = tokio::spawn(line.join({
        let cache = cache.clone();
        async move {
            cache
                .lock("lapse", "5s")
                .await
                .map(|g| g.token().to_owned())
        }
    }));
    line.all().await;
    clock.advance(Duration::from_secs(6)); // the backend lets the lock lapse
    assert!(taker.await.unwrap().is_ok());
    // One sleep, until the holder's TTL: no polling before it, no waiting past it.
    assert_eq!(started.elapsed(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_lock_held_by_another_process_is_taken_after_its_release_or_lapse() {
    // Two `Cache` handles on one backend stand for two processes: no wake-up between them.
    let clock = Clock::manual();
    let backend = MemoryBackend::with_clock(Default::default(), clock.clone());
    let here = Cache::new();
    here.setup_backend("", backend.clone(), Default::default())
        .unwrap();
    let there = Cache::new();
    there
        .setup_backend("", backend, Default::default())
        .unwrap();

    // Released there: taken here after at most one backoff.
    let started = Instant::now();
    let guard = there.lock("shared", "1h").await.unwrap();
    let line = LineUp::new(1);
    let taker = tokio::spawn(line.join({
        let here = here.clone();
        async move { here.lock("shared", "1h").await.map(|g| g.is_degraded()) }
    }));
    line.all().await;
    guard.release().await.unwrap();
    assert!(!taker.await.unwrap().unwrap());
    assert!(
        started.elapsed() <= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    // Never released there: taken here once it lapses, after at most one backoff.
    assert!(there.set_lock("lapsing", "other", "5s").await.unwrap());
    let line = LineUp::new(1);
    let taker = tokio::spawn(line.join({
        let here = here.clone();
        async move { here.lock("lapsing", "1h").await.map(|g| g.is_degraded()) }
    }));
    line.all().await;
    let lapsed_at = Instant::now();
    clock.advance(Duration::from_secs(6));
    assert!(!taker.await.unwrap().unwrap());
    assert!(
        lapsed_at.elapsed() <= Duration::from_millis(250),
        "{:?}",
        lapsed_at.elapsed()
    );
}
