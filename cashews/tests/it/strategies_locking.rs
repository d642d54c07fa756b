//! The locking family: `locked` / `locked_always` (one caller at a time per key),
//! `cache_locked` (`cache(lock = true)`) and `thunder_protection` (one shared run per key in
//! this process); and the wake-ups behind `Cache::lock`, `lock_wait` and `is_locked_wait`.
//!
//! Counts, never clocks: callers are lined up by watching their futures go pending, the
//! backend reads a manual clock that only moves when a test says so, and the tests that look
//! at elapsed time run on paused Tokio time, where a sleep that should not happen would show
//! as a jump to the lock's TTL.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::manual_cache as cache_on_manual_clock;
use cashews::backend::{BoxStream, Expiry, SetOptions};
use cashews::config::CacheConfig;
use cashews::strategy::{
    CacheOptions, Fallible, LockedOptions, Plain, cache_locked, locked, locked_always,
    thunder_protection,
};
use cashews::{Backend, Bytes, Cache, Clock, Command, Error, MemoryBackend, Ttl};
use tokio::sync::Notify;
use tokio::time::Instant;

const HOUR: Ttl = Ttl::secs(3_600);

/// The caller's own error type: refusals reach it through `From<cashews::Error>`.
#[derive(Debug, Clone, PartialEq)]
enum AppError {
    Locked(String),
    Cache(String),
    Upstream,
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::Locked { key } => Self::Locked(key),
            other => Self::Cache(other.to_string()),
        }
    }
}

/// Counts the callers whose future has gone pending once: for a waiter, that is when it
/// waits (for a lock, or for a run in flight); for the one running the origin, when the
/// origin waits. `all` resolves once `expected` have.
#[derive(Debug)]
struct LineUp {
    pending: AtomicUsize,
    expected: usize,
    all: Notify,
}

impl LineUp {
    fn new(expected: usize) -> Arc<Self> {
        Arc::new(Self {
            pending: AtomicUsize::new(0),
            expected,
            all: Notify::new(),
        })
    }

    /// Resolves once `expected` callers are pending (for any number of waiters).
    async fn all(&self) {
        loop {
            let notified = self.all.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.pending.load(Ordering::SeqCst) >= self.expected {
                return;
            }
            notified.await;
        }
    }

    /// `future`, counted when it first goes pending.
    fn join<F: Future>(self: &Arc<Self>, future: F) -> impl Future<Output = F::Output> + use<F> {
        let line = Arc::clone(self);
        let mut future = Box::pin(future);
        let mut counted = false;
        std::future::poll_fn(move |cx| {
            let poll = future.as_mut().poll(cx);
            if poll.is_pending() && !counted {
                counted = true;
                if line.pending.fetch_add(1, Ordering::SeqCst) + 1 == line.expected {
                    line.all.notify_waiters();
                }
            }
            poll
        })
    }
}

/// Counts origin runs, and the most that ran at the same time.
#[derive(Debug, Default)]
struct Bodies {
    runs: AtomicUsize,
    inside: AtomicUsize,
    max_inside: AtomicUsize,
}

impl Bodies {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn max_inside(&self) -> usize {
        self.max_inside.load(Ordering::SeqCst)
    }

    /// Enters a body; the returned guard leaves it.
    fn enter(self: &Arc<Self>) -> Inside {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_inside.fetch_max(now, Ordering::SeqCst);
        Inside(Arc::clone(self))
    }
}

struct Inside(Arc<Bodies>);

impl Drop for Inside {
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// A guard against a waiter that never wakes: generous, and never reached when all is well.
async fn in_time<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("a waiter was not woken")
}

// ----- locked ------------------------------------------------------------------------------

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

// ----- the lock primitive's wake-ups -------------------------------------------------------

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

// ----- cache(lock = true) ------------------------------------------------------------------

/// 1,000 callers on a cold key, lined up until every one waits; returns what they got.
async fn thousand_cache_locked_callers(protected: bool) -> (Cache, Arc<Bodies>, Vec<u32>) {
    const CALLERS: usize = 1_000;
    let (cache, _clock) = cache_on_manual_clock();
    let bodies = Bodies::new();
    let line = LineUp::new(CALLERS);
    let options = CacheOptions::new().protected(protected);
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let (cache, bodies, line2) = (cache.clone(), Arc::clone(&bodies), Arc::clone(&line));
        tasks.push(tokio::spawn(line.join(async move {
            cache_locked(&cache, "rates", HOUR, &options, Plain::new(), async {
                let _inside = bodies.enter();
                line2.all().await; // every other caller is waiting now
                42_u32
            })
            .await
        })));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.push(in_time(task).await.unwrap());
    }
    (cache, bodies, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lock_runs_a_cold_key_once_for_1000_callers_without_coalescing() {
    let (cache, bodies, got) = thousand_cache_locked_callers(false).await;
    assert_eq!(bodies.runs(), 1);
    assert!(got.iter().all(|v| *v == 42));
    assert_eq!(cache.get::<u32>("rates").await.unwrap(), Some(42));
    assert!(!cache.is_locked("lock:rates").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lock_runs_a_cold_key_once_for_1000_callers_with_coalescing() {
    let (cache, bodies, got) = thousand_cache_locked_callers(true).await;
    assert_eq!(bodies.runs(), 1);
    assert!(got.iter().all(|v| *v == 42));
    assert!(!cache.is_locked("lock:rates").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lock_excludes_other_processes_too() {
    for protected in [true, false] {
        // Two handles on one backend stand for two processes: no wake-up and no coalescing
        // between them, only the lock.
        let backend = MemoryBackend::with_clock(Default::default(), Clock::manual());
        let handles: Vec<Cache> = (0..2)
            .map(|_| {
                let cache = Cache::new();
                cache
                    .setup_backend("", backend.clone(), Default::default())
                    .unwrap();
                cache
            })
            .collect();
        let bodies = Bodies::new();
        let line = LineUp::new(20);
        let options = CacheOptions::new().protected(protected);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let cache = handles[i % 2].clone();
            let (bodies, line2) = (Arc::clone(&bodies), Arc::clone(&line));
            tasks.push(tokio::spawn(line.join(async move {
                cache_locked(&cache, "shared", HOUR, &options, Plain::new(), async {
                    let _inside = bodies.enter();
                    line2.all().await; // everyone else waits, here or "there"
                    "once".to_owned()
                })
                .await
            })));
        }
        for task in tasks {
            assert_eq!(in_time(task).await.unwrap(), "once");
        }
        assert_eq!(bodies.runs(), 1, "protected = {protected}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lock_hands_over_when_nothing_was_stored() {
    let (cache, _clock) = cache_on_manual_clock();
    let bodies = Bodies::new();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        tasks.push(tokio::spawn(async move {
            let options = CacheOptions::new().protected(false);
            cache_locked(&cache, "flaky", HOUR, &options, Fallible::new(), async {
                let _inside = bodies.enter();
                yields(2).await;
                Err::<u32, _>(AppError::Upstream)
            })
            .await
        }));
    }
    for task in tasks {
        assert_eq!(in_time(task).await.unwrap(), Err(AppError::Upstream));
    }
    // Errors are not stored: each caller ran its own, one at a time under the lock.
    assert_eq!((bodies.runs(), bodies.max_inside()), (5, 1));
    assert_eq!(cache.get::<u32>("flaky").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_cache_lock_holder_hands_over_to_a_waiter() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = CacheOptions::new().protected(false);
    let holder_in = Arc::new(Notify::new());
    let holder = tokio::spawn({
        let (cache, holder_in) = (cache.clone(), holder_in.clone());
        async move {
            cache_locked(&cache, "slow", HOUR, &options, Plain::new(), async {
                holder_in.notify_one();
                std::future::pending::<u32>().await
            })
            .await
        }
    });
    holder_in.notified().await;
    let bodies = Bodies::new();
    let line = LineUp::new(10);
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        waiters.push(tokio::spawn(line.join(async move {
            cache_locked(&cache, "slow", HOUR, &options, Plain::new(), async {
                let _inside = bodies.enter();
                7_u32
            })
            .await
        })));
    }
    line.all().await;
    holder.abort();
    assert!(holder.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        assert_eq!(in_time(waiter).await.unwrap(), 7);
    }
    assert_eq!(
        bodies.runs(),
        1,
        "one waiter took over, the others read its value"
    );
    assert_eq!(cache.get::<u32>("slow").await.unwrap(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_lock_call_inside_its_own_miss_computes_directly() {
    let (cache, _clock) = cache_on_manual_clock();
    let options = CacheOptions::new();
    let outer = in_time(cache_locked(
        &cache,
        "nested",
        HOUR,
        &options,
        Plain::new(),
        async {
            cache_locked(&cache, "nested", HOUR, &options, Plain::new(), async {
                1_u32
            })
            .await
                + 1
        },
    ))
    .await;
    assert_eq!(outer, 2);
    assert_eq!(cache.get::<u32>("nested").await.unwrap(), Some(2));
}

// ----- thunder_protection ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunder_protection_runs_once_for_1000_concurrent_callers() {
    const CALLERS: usize = 1_000;
    let cache = Cache::new(); // only scopes the runs: no backend needed
    let bodies = Bodies::new();
    let line = LineUp::new(CALLERS);
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let (cache, bodies, line2) = (cache.clone(), Arc::clone(&bodies), Arc::clone(&line));
        tasks.push(tokio::spawn(line.join(async move {
            thunder_protection(&cache, "hot", async {
                let _inside = bodies.enter();
                line2.all().await;
                Ok::<_, String>(format!("run by {i}"))
            })
            .await
        })));
    }
    let mut got = Vec::new();
    for task in tasks {
        got.push(in_time(task).await.unwrap().unwrap());
    }
    assert_eq!(bodies.runs(), 1);
    assert!(
        got.iter().all(|v| *v == got[0]),
        "every caller got the one result"
    );
    // The run is forgotten once it ends: the next call runs again.
    let again =
        thunder_protection(&cache, "hot", async { Ok::<_, String>("fresh".to_owned()) }).await;
    assert_eq!(again.as_deref(), Ok("fresh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thunder_protection_shares_errors_and_keeps_keys_and_caches_apart() {
    let cache = Cache::new();
    let other = Cache::new();
    let leaders = LineUp::new(3);
    let everyone = LineUp::new(4);
    let run =
        |line: &Arc<LineUp>, cache: &Cache, key: &'static str, result: Result<u32, String>| {
            let (cache, everyone, all) =
                (cache.clone(), Arc::clone(&everyone), Arc::clone(&everyone));
            tokio::spawn(line.join(everyone.join(async move {
                thunder_protection(&cache, key, async {
                    all.all().await;
                    result
                })
                .await
            })))
        };
    // One run per (cache, key): three leaders.
    let a = run(&leaders, &cache, "k", Err("down".to_owned()));
    let b = run(&leaders, &cache, "other", Ok(2));
    let c = run(&leaders, &other, "k", Ok(3));
    leaders.all().await;
    // The fourth call joins `a`'s run and gets its error, not its own result.
    let follower = run(&LineUp::new(1), &cache, "k", Ok(99));
    assert_eq!(in_time(a).await.unwrap(), Err("down".to_owned()));
    assert_eq!(in_time(b).await.unwrap(), Ok(2));
    assert_eq!(in_time(c).await.unwrap(), Ok(3));
    assert_eq!(in_time(follower).await.unwrap(), Err("down".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_thunder_leader_hands_over_to_a_follower() {
    let cache = Cache::new();
    let leader_in = Arc::new(Notify::new());
    let leader = tokio::spawn({
        let (cache, leader_in) = (cache.clone(), leader_in.clone());
        async move {
            thunder_protection(&cache, "k", async {
                leader_in.notify_one();
                std::future::pending::<u32>().await
            })
            .await
        }
    });
    leader_in.notified().await;
    let bodies = Bodies::new();
    let line = LineUp::new(10);
    let mut followers = Vec::new();
    for _ in 0..10 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        followers.push(tokio::spawn(line.join(async move {
            thunder_protection(&cache, "k", async {
                let _inside = bodies.enter();
                yields(2).await;
                7_u32
            })
            .await
        })));
    }
    line.all().await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let mut got = Vec::new();
    for follower in followers {
        got.push(in_time(follower).await.unwrap());
    }
    assert_eq!(got, vec![7; 10]);
    // One follower took over; the others shared its run, unless they arrived after it ended.
    assert!(bodies.runs() >= 1);
    assert_eq!(bodies.max_inside(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_thunder_leader_releases_its_followers_to_run_again() {
    let cache = Cache::new();
    let line = LineUp::new(5);
    let leader_in = Arc::new(Notify::new());
    let leader = tokio::spawn({
        let (cache, leader_in, line) = (cache.clone(), leader_in.clone(), Arc::clone(&line));
        async move {
            thunder_protection(&cache, "boom", async {
                leader_in.notify_one();
                line.all().await;
                boom()
            })
            .await
        }
    });
    leader_in.notified().await;
    let bodies = Bodies::new();
    let mut followers = Vec::new();
    for _ in 0..5 {
        let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
        followers.push(tokio::spawn(line.join(async move {
            thunder_protection(&cache, "boom", async {
                let _inside = bodies.enter();
                yields(2).await;
                1_u32
            })
            .await
        })));
    }
    assert!(leader.await.unwrap_err().is_panic());
    for follower in followers {
        assert_eq!(in_time(follower).await.unwrap(), 1);
    }
    assert!(bodies.runs() >= 1);
}

fn boom() -> u32 {
    panic!("the origin failed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thunder_call_inside_its_own_run_runs_at_once() {
    let cache = Cache::new();
    let outer = in_time(thunder_protection(&cache, "self", async {
        thunder_protection(&cache, "self", async { 1_u32 }).await + 1
    }))
    .await;
    assert_eq!(outer, 2);
}

// ----- SPEC §9 scenarios -------------------------------------------------------------------

/// SPEC §9 #95: `locked(wait=false)`, 2 rounds of 10 concurrent calls → 2 runs, the other
/// calls refused; `locked(wait=true)`, 2 rounds of 10 → 20 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_95_locked_without_and_with_wait() {
    let (cache, _clock) = cache_on_manual_clock();
    let bodies = Bodies::new();
    for _round in 0..2 {
        let refused = Arc::new(AtomicUsize::new(0));
        let all_refused = Arc::new(Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
            let (refused, all_refused) = (Arc::clone(&refused), Arc::clone(&all_refused));
            tasks.push(tokio::spawn(async move {
                let result: Result<(), AppError> = locked(
                    &cache,
                    "locked:key",
                    Ttl::secs(10),
                    &LockedOptions::new().no_wait(),
                    async {
                        let _inside = bodies.enter();
                        // Hold the lock until the nine others were refused.
                        all_refused.notified().await;
                        Ok(())
                    },
                )
                .await;
                if matches!(result, Err(AppError::Locked(_)))
                    && refused.fetch_add(1, Ordering::SeqCst) + 1 == 9
                {
                    all_refused.notify_one();
                }
                result
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match in_time(task).await.unwrap() {
                Ok(()) => ok += 1,
                Err(AppError::Locked(key)) => assert_eq!(key, "locked:key"),
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(ok, 1);
    }
    assert_eq!(bodies.runs(), 2);

    let bodies = Bodies::new();
    for _round in 0..2 {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
            tasks.push(tokio::spawn(async move {
                let result: Result<(), AppError> = locked(
                    &cache,
                    "locked:key",
                    Ttl::secs(1),
                    &LockedOptions::new(),
                    async {
                        let _inside = bodies.enter();
                        yields(2).await;
                        Ok(())
                    },
                )
                .await;
                result
            }));
        }
        for task in tasks {
            assert_eq!(in_time(task).await.unwrap(), Ok(()));
        }
    }
    assert_eq!((bodies.runs(), bodies.max_inside()), (20, 1));
}

/// SPEC §9 #96: 2 rounds of 2 concurrent locked calls → 4 runs and exactly 12 backend
/// commands. Per round: set_lock ✓, set_lock ✗, ping, unlock, set_lock ✓ (woken, not
/// polled), unlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_96_two_rounds_of_two_cost_twelve_commands() {
    let spy = Spy::new();
    let cache = spy.cache(false);
    let bodies = Bodies::new();
    for _round in 0..2 {
        let holder_in = Arc::new(Notify::new());
        let let_go = Arc::new(Notify::new());
        let first = tokio::spawn({
            let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
            let (holder_in, let_go) = (holder_in.clone(), let_go.clone());
            async move {
                let result: Result<(), AppError> = locked(
                    &cache,
                    "locked:k",
                    Ttl::secs(10),
                    &LockedOptions::new(),
                    async {
                        let _inside = bodies.enter();
                        holder_in.notify_one();
                        let_go.notified().await;
                        Ok(())
                    },
                )
                .await;
                result
            }
        });
        holder_in.notified().await;
        let line = LineUp::new(1);
        let second = tokio::spawn(line.join({
            let (cache, bodies) = (cache.clone(), Arc::clone(&bodies));
            async move {
                let result: Result<(), AppError> = locked(
                    &cache,
                    "locked:k",
                    Ttl::secs(10),
                    &LockedOptions::new(),
                    async {
                        let _inside = bodies.enter();
                        Ok(())
                    },
                )
                .await;
                result
            }
        }));
        line.all().await;
        let_go.notify_one();
        assert_eq!(in_time(first).await.unwrap(), Ok(()));
        assert_eq!(in_time(second).await.unwrap(), Ok(()));
    }
    assert_eq!(bodies.runs(), 4);
    assert_eq!(
        spy.commands(),
        12,
        "{:?}",
        spy.log.lock().unwrap().as_slice()
    );
}

/// SPEC §9 #97: `thunder_protection(key)`, 2 rounds of 10 concurrent calls → 2 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_97_thunder_protection_two_rounds_of_ten() {
    let cache = Cache::new();
    let bodies = Bodies::new();
    for round in 0..2_u32 {
        let line = LineUp::new(10);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, bodies, line2) = (cache.clone(), Arc::clone(&bodies), Arc::clone(&line));
            tasks.push(tokio::spawn(line.join(async move {
                thunder_protection(&cache, "key", async {
                    let _inside = bodies.enter();
                    line2.all().await;
                    round
                })
                .await
            })));
        }
        for task in tasks {
            assert_eq!(in_time(task).await.unwrap(), round);
        }
    }
    assert_eq!(bodies.runs(), 2);
}

/// SPEC §9 #77: `cache(ttl 3, lock=true, protected=false)`, 3 concurrent calls → 1 run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_77_cache_lock_without_protection_runs_once_for_three_calls() {
    let (cache, _clock) = cache_on_manual_clock();
    let bodies = Bodies::new();
    let line = LineUp::new(3);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (cache, bodies, line2) = (cache.clone(), Arc::clone(&bodies), Arc::clone(&line));
        tasks.push(tokio::spawn(line.join(async move {
            let options = CacheOptions::new().protected(false);
            cache_locked(&cache, "key", Ttl::secs(3), &options, Plain::new(), async {
                let _inside = bodies.enter();
                line2.all().await;
                "value".to_owned()
            })
            .await
        })));
    }
    for task in tasks {
        assert_eq!(in_time(task).await.unwrap(), "value");
    }
    assert_eq!(bodies.runs(), 1);
    assert_eq!(
        cache.get_expire("key").await.unwrap(),
        Expiry::In(Duration::from_secs(3))
    );
}

/// SPEC §9 #98: a lock on a backend whose ping fails, 10 concurrent callers → the callers
/// that find the lock held see that error (outside safe mode); in safe mode they run
/// without the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_98_a_failing_ping_reaches_the_callers() {
    for safe_mode in [false, true] {
        let spy = Spy::new();
        spy.ping_fails.store(true, Ordering::SeqCst);
        let cache = spy.cache(safe_mode);
        let holder = cache.lock("locked:p", "1h").await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                let result: Result<&str, AppError> =
                    locked(&cache, "locked:p", HOUR, &LockedOptions::new(), async {
                        Ok("ran")
                    })
                    .await;
                result
            }));
        }
        for task in tasks {
            let result = in_time(task).await.unwrap();
            if safe_mode {
                assert_eq!(result, Ok("ran"));
            } else {
                match result {
                    Err(AppError::Cache(message)) => assert!(message.contains("ping refused")),
                    other => panic!("{other:?}"),
                }
            }
        }
        holder.release().await.unwrap();
    }
}

// ----- a backend that counts commands ------------------------------------------------------

/// A memory backend (manual clock) that logs every command and can fail `ping`.
#[derive(Debug, Clone)]
struct Spy {
    inner: MemoryBackend,
    log: Arc<std::sync::Mutex<Vec<&'static str>>>,
    ping_fails: Arc<AtomicBool>,
}

impl Spy {
    fn new() -> Self {
        Self {
            inner: MemoryBackend::with_clock(Default::default(), Clock::manual()),
            log: Arc::default(),
            ping_fails: Arc::default(),
        }
    }

    fn cache(&self, safe_mode: bool) -> Cache {
        let cache = Cache::new();
        let mut config = CacheConfig::default();
        config.suppress = Some(safe_mode);
        cache.setup_backend("", self.clone(), config).unwrap();
        cache
    }

    fn commands(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn record(&self, command: &'static str) {
        self.log.lock().unwrap().push(command);
    }
}

impl Backend for Spy {
    fn name(&self) -> &'static str {
        "spy"
    }
    async fn get(&self, key: &str) -> cashews::Result<Option<Bytes>> {
        self.record("get");
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, options: SetOptions) -> cashews::Result<bool> {
        self.record("set");
        self.inner.set(key, value, options).await
    }
    async fn set_lock(&self, key: &str, token: &str, ttl: Duration) -> cashews::Result<bool> {
        self.record("set_lock");
        self.inner.set_lock(key, token, ttl).await
    }
    async fn delete(&self, key: &str) -> cashews::Result<bool> {
        self.record("delete");
        self.inner.delete(key).await
    }
    async fn exists(&self, key: &str) -> cashews::Result<bool> {
        self.record("exists");
        self.inner.exists(key).await
    }
    async fn expire(&self, key: &str, ttl: Duration) -> cashews::Result<bool> {
        self.record("expire");
        self.inner.expire(key, ttl).await
    }
    async fn get_expire(&self, key: &str) -> cashews::Result<Expiry> {
        self.record("get_expire");
        self.inner.get_expire(key).await
    }
    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> cashews::Result<i64> {
        self.record("incr");
        self.inner.incr(key, by, ttl).await
    }
    fn scan(&self, pattern: &str, batch_size: usize) -> BoxStream<cashews::Result<String>> {
        self.record("scan");
        self.inner.scan(pattern, batch_size)
    }
    async fn unlock(&self, key: &str, token: &str) -> cashews::Result<bool> {
        self.record("unlock");
        self.inner.unlock(key, token).await
    }
    async fn get_bits(&self, key: &str, indexes: &[u64], size: u8) -> cashews::Result<Vec<u64>> {
        self.record("get_bits");
        self.inner.get_bits(key, indexes, size).await
    }
    async fn incr_bits(
        &self,
        key: &str,
        indexes: &[u64],
        size: u8,
        by: i64,
    ) -> cashews::Result<Vec<u64>> {
        self.record("incr_bits");
        self.inner.incr_bits(key, indexes, size, by).await
    }
    async fn slice_incr(
        &self,
        key: &str,
        start: u64,
        end: u64,
        max: u64,
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.record("slice_incr");
        self.inner.slice_incr(key, start, end, max, ttl).await
    }
    async fn slice_incr_now(
        &self,
        key: &str,
        period: Duration,
        max: u64,
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.record("slice_incr_now");
        self.inner.slice_incr_now(key, period, max, ttl).await
    }
    async fn set_add(
        &self,
        key: &str,
        members: &[&str],
        ttl: Option<Duration>,
    ) -> cashews::Result<u64> {
        self.record("set_add");
        self.inner.set_add(key, members, ttl).await
    }
    async fn set_remove(&self, key: &str, members: &[&str]) -> cashews::Result<u64> {
        self.record("set_remove");
        self.inner.set_remove(key, members).await
    }
    async fn set_pop(&self, key: &str, count: usize) -> cashews::Result<Vec<String>> {
        self.record("set_pop");
        self.inner.set_pop(key, count).await
    }
    async fn ping(&self, message: &[u8]) -> cashews::Result<Bytes> {
        self.record("ping");
        if self.ping_fails.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                backend: "spy",
                command: Command::Ping,
                source: "ping refused".into(),
            });
        }
        self.inner.ping(message).await
    }
    async fn clear(&self) -> cashews::Result<()> {
        self.record("clear");
        self.inner.clear().await
    }
    async fn keys_count(&self) -> cashews::Result<u64> {
        self.record("keys_count");
        self.inner.keys_count().await
    }
    async fn get_size(&self, key: &str) -> cashews::Result<Option<u64>> {
        self.record("get_size");
        self.inner.get_size(key).await
    }
}
