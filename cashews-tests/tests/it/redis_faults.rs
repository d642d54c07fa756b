//! Safe mode against a Redis that fails: each test spawns its own `redis-server` on a free
//! loopback port (killed at the end, even on failure), then kills it mid-load, stalls it with
//! `DEBUG SLEEP`, restarts it, and checks that callers never see an error, that commands give
//! their neutral replies within the timeout, that the same `Cache` reconnects by itself, that
//! closing a cache leaves no connection and no task behind, and that lock waiters whose
//! release feed (pub/sub) breaks go back to backing off.
//!
//! No timing assertions: every wait is a bounded retry loop or a hang guard
//! (`tokio::time::timeout` around the whole test), and orderings are asserted instead.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cashews::Cache;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use crate::support::SpawnedRedis;

/// The hang guard of every test: far above a normal run.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// A `redis-server` of this test, on a loopback port, with `DEBUG` enabled; killed on drop.
struct Server {
    redis: SpawnedRedis,
}

impl Server {
    /// A server on a free port, or `None` (skipped outside CI) when none can be started.
    async fn start(case: &str) -> Option<Self> {
        let port = SpawnedRedis::free_port();
        let args = ["--port", &port.to_string(), "--enable-debug-command", "yes"].map(String::from);
        match SpawnedRedis::start(port, args) {
            Ok(redis) => Some(Self { redis }),
            Err(e) => cashews_testkit::skip_unless_ci(case, &e),
        }
    }

    /// Kills the server (SIGKILL) and reaps it.
    fn kill(&mut self) {
        self.redis.kill();
    }

    /// Kills the server and starts a new one on the same port (empty: no persistence).
    async fn restart(&mut self) {
        if let Err(e) = self.redis.restart() {
            panic!("restart failed: {e}");
        }
    }

    /// The cache URL with the safe-mode timeouts of these tests.
    fn url(&self) -> String {
        format!(
            "redis://127.0.0.1:{}/0?command_timeout=200ms&connect_timeout=200ms",
            self.redis.port
        )
    }

    /// A raw connection of the test's own, without a reply timeout.
    async fn raw(&self) -> redis::RedisResult<MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/0", self.redis.port))?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Clients connected to the server, as `INFO clients` counts them.
    async fn connected_clients(&self, conn: &mut MultiplexedConnection) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(conn)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap()
    }
}

/// A cache for one test's decorated function (set up once the test's server runs).
struct Holder {
    cache: Cache,
}

fn holder() -> Holder {
    Holder {
        cache: Cache::new(),
    }
}

/// Retries `check` every 20 ms until it holds, at most `tries` times.
async fn eventually<F, Fut>(tries: u32, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..tries {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether a set then get of `key` round-trips on `cache`.
async fn round_trips(cache: &Cache, key: &str) -> bool {
    matches!(cache.set(key, "v", "1m").await, Ok(true))
        && matches!(cache.get::<String>(key).await, Ok(Some(v)) if v == "v")
}

static KILLED: LazyLock<Holder> = LazyLock::new(holder);
static KILLED_RUNS: AtomicU64 = AtomicU64::new(0);

#[cashews::cache(ttl = "1m", key = "item:{id}", cache = KILLED.cache)]
async fn item(id: u64) -> String {
    KILLED_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("item {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_load_then_restarted() {
    let Some(mut server) = Server::start("killed_mid_load").await else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let cache = &KILLED.cache;
        cache.setup(&server.url()).unwrap();
        for id in 0..5 {
            assert_eq!(item(id).await, format!("item {id}"));
        }
        for id in 0..5 {
            item(id).await;
        }
        assert_eq!(KILLED_RUNS.load(Ordering::SeqCst), 5, "warm: hits");

        // Load: tasks calling the decorated function until told to stop; every answer is
        // checked, so an error or a wrong value fails the task.
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let (stop, calls) = (Arc::clone(&stop), Arc::clone(&calls));
                tokio::spawn(async move {
                    let mut i = t;
                    while !stop.load(Ordering::SeqCst) {
                        let id = i % 5;
                        assert_eq!(item(id).await, format!("item {id}"));
                        calls.fetch_add(1, Ordering::SeqCst);
                        i += 1;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        assert!(eventually(250, || async { calls.load(Ordering::SeqCst) >= 50 }).await);

        server.kill();
        let (calls_at_kill, runs_at_kill) = (
            calls.load(Ordering::SeqCst),
            KILLED_RUNS.load(Ordering::SeqCst),
        );
        // Down: plain commands answer neutrally, the function answers from its origin.
        assert_eq!(cache.get::<String>("item:0").await.unwrap(), None);
        assert!(!cache.set("k", "v", "1m").await.unwrap());
        assert_eq!(cache.incr("n").await.unwrap(), 0);
        assert!(
            cache.ping().await.is_err(),
            "ping reports a backend that is down"
        );
        assert!(
            eventually(500, || async {
                calls.load(Ordering::SeqCst) >= calls_at_kill + 40
            })
            .await,
            "callers kept being answered while Redis was down"
        );
        assert!(
            KILLED_RUNS.load(Ordering::SeqCst) > runs_at_kill,
            "the origin answered while Redis was down"
        );

        server.restart().await;
        assert!(
            eventually(500, || round_trips(cache, "probe")).await,
            "the cache reconnected by itself"
        );
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.unwrap();
        }
        // Hits resume: a fresh key runs its origin once, then is served from Redis.
        let runs = KILLED_RUNS.load(Ordering::SeqCst);
        assert_eq!(item(77).await, "item 77");
        assert_eq!(item(77).await, "item 77");
        assert_eq!(
            KILLED_RUNS.load(Ordering::SeqCst),
            runs + 1,
            "the second call hit"
        );
        cache.close().await.unwrap();
    })
    .await
    .expect("hang guard: the test hung");
}

static SLEPT: LazyLock<Holder> = LazyLock::new(holder);
static SLEPT_RUNS: AtomicU64 = AtomicU64::new(0);

#[cashews::cache(ttl = "1m", key = "slow:{id}", cache = SLEPT.cache)]
async fn slow_item(id: u64) -> String {
    SLEPT_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("slow {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_sleep_past_the_timeout_gives_neutral_replies_first() {
    let Some(server) = Server::start("debug_sleep").await else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let cache = &SLEPT.cache;
        cache.setup(&server.url()).unwrap();
        assert!(cache.set("k", "v", "1m").await.unwrap());
        assert_eq!(slow_item(1).await, "slow 1");
        assert_eq!(slow_item(1).await, "slow 1");
        assert_eq!(SLEPT_RUNS.load(Ordering::SeqCst), 1);

        let woke = Arc::new(AtomicBool::new(false));
        let mut raw = server.raw().await.unwrap();
        let sleeper = {
            let woke = Arc::clone(&woke);
            tokio::spawn(async move {
                let reply: redis::RedisResult<String> = redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg(3)
                    .query_async(&mut raw)
                    .await;
                woke.store(true, Ordering::SeqCst);
                reply
            })
        };
        // Until the server sleeps, `get` still finds the value; the first neutral reply must
        // come before DEBUG SLEEP returns.
        let mut neutral = false;
        for _ in 0..200 {
            match cache.get::<String>("k").await.unwrap() {
                Some(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                None => {
                    neutral = true;
                    break;
                }
            }
        }
        assert!(neutral, "the server never stalled");
        assert!(
            !woke.load(Ordering::SeqCst),
            "the neutral reply came before DEBUG SLEEP returned"
        );
        // The decorated function answers from its origin while the server sleeps.
        assert_eq!(slow_item(2).await, "slow 2");
        assert_eq!(SLEPT_RUNS.load(Ordering::SeqCst), 2);
        assert!(
            !woke.load(Ordering::SeqCst),
            "the origin answered before DEBUG SLEEP returned"
        );

        assert_eq!(sleeper.await.unwrap().unwrap(), "OK");
        assert!(
            eventually(500, || round_trips(cache, "after")).await,
            "the cache works again after the stall"
        );
        cache.close().await.unwrap();
    })
    .await
    .expect("hang guard: the test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_cache_reconnects_after_a_restart() {
    let Some(mut server) = Server::start("reconnect").await else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let cache = Cache::new();
        cache.setup(&server.url()).unwrap();
        assert!(round_trips(&cache, "before").await);
        server.kill();
        assert_eq!(cache.get::<String>("before").await.unwrap(), None);
        server.restart().await;
        assert!(
            eventually(500, || round_trips(&cache, "after")).await,
            "the cache reconnected without a new setup"
        );
        assert_eq!(
            cache.get::<String>("before").await.unwrap(),
            None,
            "a new, empty server"
        );
        cache.close().await.unwrap();
    })
    .await
    .expect("hang guard: the test hung");
}

/// A connection the server closes while the cache is idle (`CLIENT KILL`, as its `timeout`
/// setting or a proxy would) costs no read: the next `get` finds it dropped and is answered on
/// a new connection (not a safe-mode miss), and the health counts no failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_while_idle_costs_no_read() {
    let Some(server) = Server::start("closed_while_idle").await else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let cache = Cache::new();
        cache.setup(&server.url()).unwrap();
        assert!(round_trips(&cache, "idle").await);
        let mut raw = server.raw().await.unwrap();
        for round in 0..3 {
            let killed: u64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .arg("SKIPME")
                .arg("yes")
                .query_async(&mut raw)
                .await
                .unwrap();
            assert_eq!(killed, 1, "round {round}: the cache's one connection");
            assert_eq!(
                cache.get::<String>("idle").await.unwrap().as_deref(),
                Some("v"),
                "round {round}: the read after the drop is answered"
            );
        }
        let health = cache.health("").unwrap().expect("redis tracks its health");
        assert_eq!(health.consecutive_failures, 0);
        assert!(!health.down);
        cache.close().await.unwrap();
    })
    .await
    .expect("hang guard: the test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_cache_leaves_no_connection_and_no_task() {
    let Some(server) = Server::start("no_leak").await else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let mut own = server.raw().await.unwrap();
        let alone = server.connected_clients(&mut own).await;
        let tasks_before = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let cache = Cache::new();
        cache
            .setup(&format!(
                "{}&max_connections=3&min_connections=3",
                server.url()
            ))
            .unwrap();
        for i in 0..30 {
            assert!(round_trips(&cache, &format!("k{i}")).await);
        }
        let _: i64 = own.incr("sanity", 1).await.unwrap();
        assert!(
            server.connected_clients(&mut own).await > alone,
            "the cache connected"
        );
        cache.close().await.unwrap();
        drop(cache);
        assert!(
            eventually(250, || async {
                server.connected_clients(&mut own.clone()).await == alone
            })
            .await,
            "the cache's connections closed"
        );
        assert!(
            eventually(250, || async {
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
                    <= tasks_before
            })
            .await,
            "the cache's tasks ended"
        );
    })
    .await
    .expect("hang guard: the test hung");
}

/// Subscribers of the channel the Redis `unlock` announces lock releases on.
async fn release_subscribers(conn: &mut MultiplexedConnection) -> u64 {
    let reply: (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("cashews:lock-released")
        .query_async(conn)
        .await
        .unwrap();
    reply.1
}

/// A waiter subscribed to lock releases whose subscription is killed goes back to backing
/// off at once: it still takes the lock soon after a release nobody can announce to it (the
/// 1 s marker outlives that), rather than after its subscribed pause of 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_release_feed_falls_back_to_backoff() {
    let Some(server) = Server::start("broken_feed").await else {
        return;
    };
    tokio::time::timeout(HANG_GUARD, async {
        let mut own = server.raw().await.unwrap();
        let (a, b) = (Cache::new(), Cache::new());
        a.setup(&server.url()).unwrap();
        b.setup(&server.url()).unwrap();
        let held = a.lock("job", "30s").await.unwrap();
        let waiter = tokio::spawn(async move {
            let guard = b.lock("job", "30s").await.unwrap();
            (guard, b)
        });
        assert!(
            eventually(500, || async {
                release_subscribers(&mut own.clone()).await == 1
            })
            .await,
            "the waiter subscribed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async::<i64>(&mut own)
            .await
            .map(drop)
            .unwrap();
        assert_eq!(release_subscribers(&mut own).await, 0);
        let _: () = redis::cmd("SET")
            .arg("marker")
            .arg(1)
            .arg("PX")
            .arg(1_000)
            .query_async(&mut own)
            .await
            .unwrap();
        assert!(held.release().await.unwrap());
        let (guard, _b) = waiter.await.unwrap();
        let marker_ttl: i64 = own.pttl("marker").await.unwrap();
        assert!(
            marker_ttl > 0,
            "the waiter backed off instead of trusting a dead feed (marker TTL {marker_ttl} ms)"
        );
        assert!(guard.release().await.unwrap());
    })
    .await
    .expect("hang guard: the test hung");
}

/// A cache used from two runtimes (a `static` cache across `#[tokio::test]`s): its release
/// feed died with the first runtime, so waiters on the second must not trust it. They back off
/// (or subscribe again) and take the lock soon after the release: the 1 s marker outlives
/// that, but not the subscribed pause of 2 s a stale "live" feed would cause.
#[test]
fn a_feed_whose_runtime_ended_is_not_trusted() {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let Some(server) = first.block_on(Server::start("feed_runtime")) else {
        return;
    };
    let (a, b) = (Cache::new(), Cache::new());
    a.setup(&server.url()).unwrap();
    b.setup(&server.url()).unwrap();
    // On the first runtime: B waits for A's lock, which opens B's feed there.
    first.block_on(async {
        tokio::time::timeout(HANG_GUARD, async {
            let own = server.raw().await.unwrap();
            let held = a.lock("job", "30s").await.unwrap();
            let b = b.clone();
            let waiter = tokio::spawn(async move { b.lock("job", "30s").await.unwrap() });
            assert!(
                eventually(500, || async {
                    release_subscribers(&mut own.clone()).await == 1
                })
                .await,
                "the waiter subscribed"
            );
            assert!(held.release().await.unwrap());
            assert!(waiter.await.unwrap().release().await.unwrap());
        })
        .await
        .expect("hang guard: the test hung");
    });
    drop(first);
    // On a second runtime, the same caches. Their connections died with the first runtime:
    // the first commands fail (neutral replies) until the connections are opened again.
    runtime().block_on(async {
        tokio::time::timeout(HANG_GUARD, async {
            let mut own = server.raw().await.unwrap();
            assert!(eventually(500, || round_trips(&a, "a")).await);
            assert!(eventually(500, || round_trips(&b, "b")).await);
            let held = a.lock("job", "30s").await.unwrap();
            assert!(!held.is_degraded());
            let waiter = tokio::spawn(async move { b.lock("job", "30s").await.unwrap() });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _: () = redis::cmd("SET")
                .arg("marker")
                .arg(1)
                .arg("PX")
                .arg(1_000)
                .query_async(&mut own)
                .await
                .unwrap();
            assert!(held.release().await.unwrap());
            let guard = waiter.await.unwrap();
            let marker_ttl: i64 = own.pttl("marker").await.unwrap();
            assert!(
                marker_ttl > 0,
                "the waiter did not trust the dead feed (marker TTL {marker_ttl} ms)"
            );
            assert!(guard.release().await.unwrap());
        })
        .await
        .expect("hang guard: the test hung");
    });
}

// ---------------------------------------------------------------------------------------------
// Backend health: a server that is down costs callers nothing but their origin
// ---------------------------------------------------------------------------------------------

static DOWN: LazyLock<Holder> = LazyLock::new(holder);
static DOWN_RUNS: AtomicU64 = AtomicU64::new(0);

#[cashews::cache(ttl = "1m", key = "down:{task}:{id}", cache = DOWN.cache)]
async fn down_item(task: u64, id: u64) -> String {
    DOWN_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("item {task}/{id}")
}

/// The load of the health test: tasks calling `down_item`.
const TASKS: u64 = 32;
/// Calls each task makes while the backend is known to be down, after its first one.
const DOWN_CALLS: u64 = 20;

/// The phases of the health test, as the load tasks see them.
const PHASE_UP: u8 = 0;
const PHASE_DOWN: u8 = 1;
const PHASE_BACK: u8 = 2;

/// Every WARN and ERROR event of cashews, with whether it came inside the quiet window.
#[derive(Clone, Default)]
struct Log {
    events: Arc<std::sync::Mutex<Vec<(tracing::Level, String, bool)>>>,
    quiet: Arc<AtomicBool>,
}

impl Log {
    fn count(&self, level: tracing::Level, text: &str) -> usize {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(l, message, _)| *l == level && message.contains(text))
            .count()
    }

    fn errors_in_quiet_window(&self) -> Vec<String> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|(l, _, quiet)| *l == tracing::Level::ERROR && *quiet)
            .map(|(_, message, _)| message.clone())
            .collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Log {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let level = *event.metadata().level();
        if level > tracing::Level::WARN || !event.metadata().target().starts_with("cashews") {
            return;
        }
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        let quiet = self.quiet.load(Ordering::SeqCst);
        self.events.lock().unwrap().push((level, text.0, quiet));
    }
}

/// Percentile `p` (0 to 100) of sorted durations.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let index = (sorted.len().saturating_sub(1) * p) / 100;
    sorted.get(index).copied().unwrap_or_default()
}

/// Redis killed (SIGKILL) under 32 tasks doing cached calls: after `down_after` connection
/// failures the backend is marked down, and from then on every call answers from its origin
/// without a single command or connection attempt reaching the network (counted by the
/// backend), with one warning for the transition and no error line per call. A cache with
/// `suppress=false` gets a fast `BackendDown` error saying so. Restarted on the same port, the
/// probe marks it up and hits resume. Latencies are printed, not asserted (a busy 2-core
/// machine), but for a generous sanity bound on the median.
#[test]
fn a_backend_that_is_down_answers_at_once_then_recovers() {
    use tracing_subscriber::layer::SubscriberExt;
    let log = Log::default();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(log.clone()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start({
            let dispatch = dispatch.clone();
            // Every worker records into `log` (a thread-local default, kept for the thread).
            move || std::mem::forget(tracing::dispatcher::set_default(&dispatch))
        })
        .build()
        .unwrap();
    let _main = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(async {
        tokio::time::timeout(HANG_GUARD, down_then_back(log))
            .await
            .expect("hang guard: the test hung");
    });
}

async fn down_then_back(log: Log) {
    let Some(mut server) = Server::start("backend_down").await else {
        return;
    };
    let cache = &DOWN.cache;
    cache.setup(&server.url()).unwrap();
    let health = || cache.health("").unwrap().expect("redis tracks its health");
    for task in 0..TASKS {
        for id in 0..5 {
            down_item(task, id).await;
        }
    }
    assert!(!health().down);

    let phase = Arc::new(std::sync::atomic::AtomicU8::new(PHASE_UP));
    let stop = Arc::new(AtomicBool::new(false));
    let in_down: Arc<Vec<AtomicU64>> = Arc::new((0..TASKS).map(|_| AtomicU64::new(0)).collect());
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (phase, stop, in_down) =
                (Arc::clone(&phase), Arc::clone(&stop), Arc::clone(&in_down));
            tokio::spawn(async move {
                // The cost of each call made wholly while the backend was known to be down.
                let mut costs = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = i % 5;
                    let before = phase.load(Ordering::SeqCst);
                    let started = std::time::Instant::now();
                    let value = down_item(task, id).await;
                    let cost = started.elapsed();
                    assert_eq!(value, format!("item {task}/{id}"));
                    if before == PHASE_DOWN && phase.load(Ordering::SeqCst) == PHASE_DOWN {
                        costs.push(cost);
                        if let Some(count) = in_down.get(usize::try_from(task).unwrap()) {
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    i += 1;
                    tokio::task::yield_now().await;
                }
                costs
            })
        })
        .collect();
    let counts = {
        let in_down = Arc::clone(&in_down);
        move || -> Vec<u64> { in_down.iter().map(|c| c.load(Ordering::SeqCst)).collect() }
    };
    // Whether every task has made `n` more calls than in `base`.
    let every_task_did = |base: Vec<u64>, n: u64| {
        let counts = counts.clone();
        move || {
            let done = counts()
                .iter()
                .zip(&base)
                .all(|(now, then)| *now >= then + n);
            async move { done }
        }
    };

    server.kill();
    let killed = std::time::Instant::now();
    assert!(
        eventually(500, || async { health().down }).await,
        "the backend was marked down after connection failures"
    );
    let to_down = killed.elapsed();
    phase.store(PHASE_DOWN, Ordering::SeqCst);
    // Every call in flight when the backend went down has ended once each task has finished
    // a call it started afterwards; from here on, nothing may reach the network.
    assert!(eventually(1000, every_task_did(vec![0; TASKS as usize], 1)).await);
    let (before, runs_before, base) = (health(), DOWN_RUNS.load(Ordering::SeqCst), counts());
    log.quiet.store(true, Ordering::SeqCst);
    // The call each task has in flight now may have run its origin already; the next
    // DOWN_CALLS run theirs inside the window.
    assert!(eventually(1000, every_task_did(base, 1 + DOWN_CALLS)).await);
    log.quiet.store(false, Ordering::SeqCst);
    let after = health();
    assert!(after.down, "still down: the server is dead");
    assert_eq!(
        after.commands_sent, before.commands_sent,
        "no command reached a connection while the backend was down"
    );
    assert_eq!(
        after.connection_attempts, before.connection_attempts,
        "no command tried to connect while the backend was down"
    );
    assert!(
        DOWN_RUNS.load(Ordering::SeqCst) >= runs_before + TASKS * DOWN_CALLS,
        "every call answered from its origin"
    );
    assert_eq!(
        log.errors_in_quiet_window(),
        Vec::<String>::new(),
        "no error line per call while down"
    );

    // Outside safe mode a caller gets the error, fast, and it says what is going on.
    let strict = Cache::new();
    strict
        .setup(&format!("{}&suppress=false", server.url()))
        .unwrap();
    let mut refused = None;
    for _ in 0..10 {
        match strict.get::<String>("k").await {
            Err(e) if e.is_down() => {
                refused = Some(e);
                break;
            }
            Err(e) => assert!(e.is_backend(), "{e}"),
            Ok(v) => panic!("the server is dead, yet get answered {v:?}"),
        }
    }
    let refused = refused.expect("suppress=false: marked down after down_after failures");
    let message = refused.to_string();
    assert!(
        message.contains("is down") && message.contains("probe"),
        "{message}"
    );
    let sent = strict.health("").unwrap().unwrap().commands_sent;
    let started = std::time::Instant::now();
    let again = strict.get::<String>("k").await.unwrap_err();
    let strict_cost = started.elapsed();
    assert!(again.is_down(), "{again}");
    assert_eq!(strict.health("").unwrap().unwrap().commands_sent, sent);
    // Closed, it stops probing: only the first cache comes back below.
    strict.close().await.unwrap();

    server.restart().await;
    let restarted = std::time::Instant::now();
    phase.store(PHASE_BACK, Ordering::SeqCst);
    assert!(
        eventually(500, || async { !health().down }).await,
        "the probe marked the backend up again"
    );
    let to_up = restarted.elapsed();
    // Hits resume: a fresh key runs its origin once, then is served from Redis.
    let mut fresh = 1000;
    assert!(
        eventually(500, || {
            fresh += 1;
            let id = fresh;
            async move {
                let runs = DOWN_RUNS.load(Ordering::SeqCst);
                down_item(999, id).await;
                down_item(999, id).await;
                DOWN_RUNS.load(Ordering::SeqCst) == runs + 1
            }
        })
        .await,
        "hits resumed"
    );
    let to_hits = restarted.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut costs = Vec::new();
    for task in tasks {
        costs.extend(task.await.unwrap());
    }
    costs.sort();
    let (p50, p99, max) = (
        percentile(&costs, 50),
        percentile(&costs, 99),
        costs.last().copied().unwrap_or_default(),
    );
    eprintln!(
        "backend down: marked down {to_down:?} after the kill; {} cached calls while down: \
         p50 {p50:?}, p99 {p99:?}, max {max:?}; suppress=false refusal {strict_cost:?}; \
         up {to_up:?} and hits {to_hits:?} after the restart; probes {}",
        costs.len(),
        health().probes
    );
    assert!(
        p50 < Duration::from_millis(50),
        "a cached call while down costs its origin, not a network wait (p50 {p50:?})"
    );
    assert_eq!(health().downs, 1, "one outage, one transition down");
    assert_eq!(
        log.count(tracing::Level::WARN, "is down"),
        2,
        "one warning per backend going down (the cache's and the strict one's)"
    );
    assert_eq!(
        log.count(tracing::Level::WARN, "up again"),
        1,
        "one warning coming back"
    );
    cache.close().await.unwrap();
}
