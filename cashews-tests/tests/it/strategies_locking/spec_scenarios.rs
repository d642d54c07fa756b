//! The SPEC §9 locking scenarios, with a backend that counts the commands they send.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cashews::backend::{BoxStream, Expiry, SetOptions};
use cashews::config::CacheConfig;
use cashews::strategy::{
    CacheOptions, LockedOptions, Plain, cache_locked, locked, thunder_protection,
};
use cashews::{Backend, Bytes, Cache, Clock, Command, Error, MemoryBackend, Ttl};
use tokio::sync::Notify;

use super::{AppError, Bodies, HOUR, LineUp, in_time, yields};
use crate::support::manual_cache as cache_on_manual_clock;

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
    async fn expire(&self, key: &str, ttl: Option<Duration>) -> cashews::Result<bool> {
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
