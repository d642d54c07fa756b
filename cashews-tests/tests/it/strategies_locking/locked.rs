//! `locked` / `locked_always`: one caller at a time per key; refusals, bounded waits,
//! cancelled holders and re-entrant calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cashews::Cache;
use cashews::strategy::{LockedOptions, locked, locked_always};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{AppError, Bodies, HOUR, LineUp, in_time, yields};
use crate::support::manual_cache as cache_on_manual_clock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_runs_100_callers_one_at_a_time() {
    let (cache, _clock) = cache_on_manual_clock();
    let bodies = Bodies::new();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        tasks.push(tokio::spawn(async move {
            let result: Result<usize, AppError> =
                locked(&cache, "locked:job", HOUR, &LockedOptions::new(), async {
                    let _inside = bodies.enter();
                    yields(3).await;
                    Ok(i)
                })
                .await;
            result
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), Ok(i));
    }
    assert_eq!(bodies.runs(), 100, "serialised, not deduplicated");
    assert_eq!(bodies.max_inside(), 1);
    assert!(!cache.is_locked("locked:job").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_always_runs_callers_one_at_a_time_with_any_result_type() {
    let (cache, _clock) = cache_on_manual_clock();
    let bodies = Bodies::new();
    let mut tasks = Vec::new();
    for i in 0..50_u32 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        tasks.push(tokio::spawn(async move {
            locked_always(&cache, "locked:plain", HOUR, async {
                let _inside = bodies.enter();
                yields(3).await;
                i * 2
            })
            .await
        }));
    }
    for (i, task) in (0_u32..).zip(tasks) {
        assert_eq!(task.await.unwrap(), i * 2);
    }
    assert_eq!((bodies.runs(), bodies.max_inside()), (50, 1));
}

#[tokio::test]
async fn locked_without_wait_refuses_through_the_callers_error_type() {
    let (cache, _clock) = cache_on_manual_clock();
    let held = cache.lock("locked:report", "1h").await.unwrap();
    let ran = AtomicBool::new(false);
    let refused: Result<u32, AppError> = locked(
        &cache,
        "locked:report",
        HOUR,
        &LockedOptions::new().no_wait(),
        async {
            ran.store(true, Ordering::SeqCst);
            Ok(1)
        },
    )
    .await;
    assert_eq!(refused, Err(AppError::Locked("locked:report".to_owned())));
    assert!(!ran.load(Ordering::SeqCst));
    // Once released, the same call runs.
    held.release().await.unwrap();
    let ran: Result<u32, AppError> = locked(
        &cache,
        "locked:report",
        HOUR,
        &LockedOptions::new().no_wait(),
        async { Ok(2) },
    )
    .await;
    assert_eq!(ran, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn locked_with_a_bounded_wait_is_refused_when_it_runs_out() {
    let (cache, _clock) = cache_on_manual_clock();
    let _held = cache.lock("locked:slow", "1h").await.unwrap();
    let started = Instant::now();
    let refused: Result<(), AppError> = locked(
        &cache,
        "locked:slow",
        HOUR,
        &LockedOptions::new().wait(Duration::from_millis(500)),
        async { Ok(()) },
    )
    .await;
    assert_eq!(refused, Err(AppError::Locked("locked:slow".to_owned())));
    // It waited its time (paused clock: exactly), not the holder's TTL.
    assert_eq!(started.elapsed(), Duration::from_millis(500));
}

#[tokio::test]
async fn locked_passes_the_callers_errors_and_other_lock_errors_through() {
    let (cache, _clock) = cache_on_manual_clock();
    let failed: Result<u32, AppError> =
        locked(&cache, "locked:e", HOUR, &LockedOptions::new(), async {
            Err(AppError::Upstream)
        })
        .await;
    assert_eq!(failed, Err(AppError::Upstream));
    assert!(!cache.is_locked("locked:e").await.unwrap(), "released");

    let unconfigured = Cache::new();
    let refused: Result<u32, AppError> = locked(
        &unconfigured,
        "locked:e",
        HOUR,
        &LockedOptions::new(),
        async { Ok(1) },
    )
    .await;
    assert!(matches!(refused, Err(AppError::Cache(_))), "{refused:?}");
    // The variant that never fails runs without the lock instead.
    assert_eq!(
        locked_always(&unconfigured, "locked:e", HOUR, async { 3 }).await,
        3
    );
}

#[tokio::test]
async fn locked_on_a_disabled_cache_runs_without_the_lock() {
    let cache = Cache::new();
    cache.setup("://").unwrap();
    let result: Result<u32, AppError> = locked(
        &cache,
        "locked:off",
        HOUR,
        &LockedOptions::new().no_wait(),
        async { Ok(5) },
    )
    .await;
    assert_eq!(result, Ok(5));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_wakes_when_the_holder_releases_not_when_the_ttl_lapses() {
    let (cache, _clock) = cache_on_manual_clock();
    let started = Instant::now();
    let holder_in = Arc::new(Notify::new());
    let let_go = Arc::new(Notify::new());
    let holder = tokio::spawn({
        let (cache, holder_in, let_go) = (cache.clone(), holder_in.clone(), let_go.clone());
        async move {
            let result: Result<&str, AppError> =
                locked(&cache, "locked:w", HOUR, &LockedOptions::new(), async {
                    holder_in.notify_one();
                    let_go.notified().await;
                    Ok("holder")
                })
                .await;
            result
        }
    });
    holder_in.notified().await;
    let line = LineUp::new(1);
    let waiter = tokio::spawn(line.join({
        let cache = cache.clone();
        async move {
            let result: Result<&str, AppError> =
                locked(&cache, "locked:w", HOUR, &LockedOptions::new(), async {
                    Ok("waiter")
                })
                .await;
            result
        }
    }));
    line.all().await;
    let_go.notify_one();
    assert_eq!(holder.await.unwrap(), Ok("holder"));
    assert_eq!(waiter.await.unwrap(), Ok("waiter"));
    // The manual clock never moved, so the lock never lapsed; and Tokio time barely did:
    // the waiter was woken by the release.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_holder_releases_the_lock_to_its_waiter() {
    let (cache, _clock) = cache_on_manual_clock();
    let started = Instant::now();
    let holder_in = Arc::new(Notify::new());
    let holder = tokio::spawn({
        let (cache, holder_in) = (cache.clone(), holder_in.clone());
        async move {
            let result: Result<(), AppError> =
                locked(&cache, "locked:c", HOUR, &LockedOptions::new(), async {
                    holder_in.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                })
                .await;
            result
        }
    });
    holder_in.notified().await;
    let line = LineUp::new(1);
    let waiter = tokio::spawn(line.join({
        let cache = cache.clone();
        async move { locked_always(&cache, "locked:c", HOUR, async { "took over" }).await }
    }));
    line.all().await;
    holder.abort();
    assert!(holder.await.unwrap_err().is_cancelled());
    assert_eq!(waiter.await.unwrap(), "took over");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_call_inside_its_own_lock_runs_at_once() {
    let (cache, _clock) = cache_on_manual_clock();
    let outer: Result<u32, AppError> = in_time(locked(
        &cache,
        "locked:r",
        HOUR,
        &LockedOptions::new(),
        async {
            let inner: Result<u32, AppError> = locked(
                &cache,
                "locked:r",
                HOUR,
                &LockedOptions::new().no_wait(),
                async { Ok(1) },
            )
            .await;
            let deeper = locked_always(&cache, "locked:r", HOUR, async { 2 }).await;
            Ok(inner? + deeper)
        },
    ))
    .await;
    assert_eq!(outer, Ok(3));
    // Another task still waits its turn.
    let held = cache.lock("locked:r", "1h").await.unwrap();
    let other = tokio::spawn({
        let cache = cache.clone();
        async move {
            let result: Result<u32, AppError> = locked(
                &cache,
                "locked:r",
                HOUR,
                &LockedOptions::new().no_wait(),
                async { Ok(0) },
            )
            .await;
            result
        }
    });
    assert!(matches!(other.await.unwrap(), Err(AppError::Locked(_))));
    held.release().await.unwrap();
}
