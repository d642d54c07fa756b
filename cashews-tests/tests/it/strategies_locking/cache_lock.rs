//! `cache_locked` (`cache(lock = true)`): a cold key is computed once, across callers and
//! processes, and handed over when its holder stores nothing or is cancelled.

use std::sync::{Arc, Mutex};

use cashews::config::CacheConfig;
use cashews::middleware::{self, Next, Request, Stage};
use cashews::strategy::{CacheOptions, Fallible, Plain, cache_locked};
use cashews::{Cache, Clock, Command, MemoryBackend};
use tokio::sync::Notify;

use super::{AppError, Bodies, HOUR, LineUp, in_time, yields};
use crate::support::manual_cache as cache_on_manual_clock;

/// 1,000 callers on a cold key, lined up until every one waits; returns what they got.
async fn thousand_cache_locked_callers(protected: bool) -> (Cache, Arc<Bodies>, Vec<u32>) {
    let (cache, _clock) = cache_on_manual_clock();
    let (bodies, got) = thousand_cache_locked_callers_on(&cache, protected).await;
    (cache, bodies, got)
}

/// 1,000 callers of `cache` on the cold key `rates`, lined up until every one waits; returns
/// the origin's runs and what the callers got.
async fn thousand_cache_locked_callers_on(
    cache: &Cache,
    protected: bool,
) -> (Arc<Bodies>, Vec<u32>) {
    const CALLERS: usize = 1_000;
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
    (bodies, got)
}

/// A middleware writing down every command that reaches the backend, in order.
fn recorder(log: &Arc<Mutex<Vec<Command>>>) -> Stage {
    let log = Arc::clone(log);
    middleware::from_fn(move |request: Request, next: Next| {
        log.lock().unwrap().push(request.command());
        next.run(request)
    })
}

/// What a coalesced cold storm may cost the backend: its leader's commands, whatever the
/// number of callers. The others wait for the leader and decode the value it hands over,
/// without reading it (1,000 callers used to cost 2,001 reads).
const LEADER_ONLY: [Command; 5] = [
    Command::Get,     // the leader's miss
    Command::SetLock, // it takes the lock
    Command::Get,     // nobody stored the value meanwhile
    Command::Set,     // the origin's value
    Command::Unlock,  // released
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_cold_storm_costs_the_backend_its_leaders_commands_only() {
    let backend = MemoryBackend::with_clock(Default::default(), Clock::manual());
    storm_costs_the_leaders_commands_only(backend).await;
}

/// Sends 1,000 lined-up cold callers through a cache on `backend` whose commands are
/// recorded: one origin run, every caller gets its value, the backend sees the leader's
/// commands only, and the value is stored and the lock released. Returns the cache.
async fn storm_costs_the_leaders_commands_only(backend: impl cashews::Backend) -> Cache {
    let log = Arc::new(Mutex::new(Vec::new()));
    let cache = Cache::new();
    cache
        .setup_backend_with("", backend, CacheConfig::default(), [recorder(&log)])
        .unwrap();
    let (bodies, got) = thousand_cache_locked_callers_on(&cache, true).await;
    assert_eq!(bodies.runs(), 1);
    assert!(got.iter().all(|v| *v == 42));
    assert_eq!(*log.lock().unwrap(), LEADER_ONLY);
    assert_eq!(cache.get::<u32>("rates").await.unwrap(), Some(42));
    assert!(!cache.is_locked("lock:rates").await.unwrap());
    cache
}

/// The same storm on Redis (the server at `CASHEWS_REDIS_URL`, under a prefix of its own).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_cold_storm_on_redis_costs_it_the_leaders_commands_only() {
    use cashews::backend::RedisBackend;
    use cashews::config::RedisOptions;

    use crate::support::{redis_url, unique_prefix};

    let options = RedisOptions::new(redis_url()).with_key_prefix(unique_prefix("storm"));
    let backend = RedisBackend::new(options).unwrap();
    if let Err(e) = cashews::Backend::ping(&backend, b"").await {
        let case = "a_coalesced_cold_storm_on_redis_costs_it_the_leaders_commands_only";
        cashews_testkit::skip_unless_ci::<()>(case, &format!("no Redis at {}: {e}", redis_url()));
        return;
    }
    let cache = storm_costs_the_leaders_commands_only(backend).await;
    cache.clear().await.unwrap();
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
