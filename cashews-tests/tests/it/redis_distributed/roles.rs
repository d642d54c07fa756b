//! The child side: what a child process does for its role, with the decorated functions it
//! calls on a cache of its own.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cashews::Cache;
use cashews::strategy::{BloomOptions, SliceRateLimitOptions, slice_rate_limit};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

use super::{PREFIX, raw_conn};

/// Callers per child in the concurrent cases.
pub(super) const CALLERS: usize = 500;
/// The shared rate limit.
pub(super) const LIMIT: u64 = 37;
/// Calls per child against the shared rate limit (2 × CALLS > LIMIT).
pub(super) const CALLS: u64 = 40;
/// Rounds of the concurrent sliding-window case, each on a fresh key.
pub(super) const ROUNDS: usize = 30;
/// The sliding-window limit of the rounds: [`LIMIT`] calls a minute.
const SLICE_OPTIONS: SliceRateLimitOptions =
    SliceRateLimitOptions::new(LIMIT, Duration::from_secs(60));

/// The child's cache (set up from [`PREFIX`]) and a raw connection for records.
pub(super) struct Child {
    pub(super) cache: Cache,
    raw: tokio::sync::OnceCell<MultiplexedConnection>,
}

pub(super) static CHILD: LazyLock<Child> = LazyLock::new(|| Child {
    cache: Cache::new(),
    raw: tokio::sync::OnceCell::new(),
});

impl Child {
    async fn raw(&self) -> MultiplexedConnection {
        self.raw
            .get_or_init(|| async { raw_conn().await.unwrap() })
            .await
            .clone()
    }

    fn key(key: &str) -> String {
        format!("{}{key}", std::env::var(PREFIX).unwrap())
    }

    /// Counts one origin run in Redis.
    async fn ran(&self) {
        let _: i64 = self.raw().await.incr(Self::key("runs"), 1).await.unwrap();
    }

    /// Appends an event to the case's log.
    async fn log(&self, event: String) {
        let _: i64 = self
            .raw()
            .await
            .rpush(Self::key("log"), event)
            .await
            .unwrap();
    }

    /// Reports ready and waits for the parent's go.
    pub(super) async fn barrier(&self) {
        let mut raw = self.raw().await;
        let _: i64 = raw.incr(Self::key("ready"), 1).await.unwrap();
        for _ in 0..4_000 {
            let go: bool = raw.exists(Self::key("go")).await.unwrap();
            if go {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("no go from the parent");
    }

    /// Waits until both children reached the meeting point `point`.
    pub(super) async fn meet(&self, point: &str) {
        self.meet_n(point, 2).await;
    }

    /// Waits until `n` parties (children, or tasks in them) reached the meeting point
    /// `point`: [`arrive`](Self::arrive), then [`wait_for`](Self::wait_for).
    pub(super) async fn meet_n(&self, point: &str, n: i64) {
        self.arrive(point).await;
        self.wait_for(point, n).await;
    }

    /// Counts one arrival at `point` in Redis.
    pub(super) async fn arrive(&self, point: &str) {
        let _: i64 = self.raw().await.incr(Self::key(point), 1).await.unwrap();
    }

    /// Waits until `n` arrivals at `point` were counted. Bounded: panics after about 20 s.
    pub(super) async fn wait_for(&self, point: &str, n: i64) {
        let mut raw = self.raw().await;
        let key = Self::key(point);
        for _ in 0..20_000 {
            let here: i64 = raw.get(&key).await.unwrap();
            if here >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("only some of the {n} parties reached {point}");
    }
}

#[derive(Debug)]
enum Failure {
    Upstream,
    Refused(cashews::Error),
}

impl From<cashews::Error> for Failure {
    fn from(error: cashews::Error) -> Self {
        Self::Refused(error)
    }
}

#[cashews::cache(ttl = "1m", key = "cold", lock = true, cache = CHILD.cache)]
async fn cold() -> String {
    CHILD.ran().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    format!("computed by {}", std::process::id())
}

#[cashews::rate_limit(limit = 37, period = "1m", key = "rl", cache = CHILD.cache)]
async fn limited() -> Result<(), Failure> {
    CHILD.ran().await;
    Ok(())
}

#[cashews::slice_rate_limit(limit = 37, period = "1m", key = "srl", cache = CHILD.cache)]
async fn slice_limited() -> Result<(), Failure> {
    Ok(())
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", min_calls = 4,
    key = "cb", cache = CHILD.cache)]
async fn upstream(fail: bool) -> Result<&'static str, Failure> {
    CHILD.ran().await;
    if fail {
        Err(Failure::Upstream)
    } else {
        Ok("ok")
    }
}

#[cashews::locked(ttl = "20s", key = "job", cache = CHILD.cache)]
async fn job(name: String) -> u32 {
    CHILD.log(format!("{name}-start")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    CHILD.log(format!("{name}-end")).await;
    1
}

#[cashews::cache(ttl = "1h", key = "post:{id}", tags = ["posts"], cache = CHILD.cache)]
async fn post(id: u64) -> String {
    CHILD.ran().await;
    format!("post {id}")
}

#[cashews::bloom(capacity = 1000, name = "{id}", cache = CHILD.cache)]
async fn known(id: u64) -> bool {
    CHILD.ran().await;
    id < 50
}

/// The filter key of `known` (the attribute's `bloom:<module path>:<function>`).
const FILTER: &str = concat!("bloom:", module_path!(), ":known");

#[cashews::early(ttl = "1h", early_ttl = "1h", key = "report", cache = CHILD.cache)]
async fn report() -> String {
    LOCAL_RUNS.fetch_add(1, Ordering::SeqCst);
    CHILD.ran().await;
    CHILD.log("start".to_owned()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    CHILD.log("end".to_owned()).await;
    "new".to_owned()
}

#[cashews::soft(ttl = "1h", soft_ttl = "1h", key = "rate", cache = CHILD.cache)]
async fn rate() -> String {
    LOCAL_RUNS.fetch_add(1, Ordering::SeqCst);
    CHILD.ran().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    "new".to_owned()
}

#[cashews::perf(ttl = "1m", key = "search", trace_size = 3, cache = CHILD.cache)]
async fn search(slow: bool) -> Result<u32, Failure> {
    if slow {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(1)
}

/// Runs `calls` concurrent calls of `f` and collects their results.
async fn together<F, Fut, T>(calls: usize, f: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..calls).map(|_| tokio::spawn(f())).collect();
    let mut out = Vec::with_capacity(calls);
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// A child's work for its role; returns its result.
pub(super) async fn child_role(role: &str, name: &str) -> Value {
    let child = &*CHILD;
    match role {
        "cold" => {
            child.barrier().await;
            let values = together(CALLERS, cold).await;
            json!({ "calls": values.len(), "values": values })
        }
        "rate_limit" | "slice_rate_limit" => {
            child.barrier().await;
            let results = if role == "rate_limit" {
                together(CALLS as usize, limited).await
            } else {
                together(CALLS as usize, slice_limited).await
            };
            let passed = results.iter().filter(|r| r.is_ok()).count();
            let refused = results
                .iter()
                .filter(|r| matches!(r, Err(Failure::Refused(cashews::Error::RateLimited { .. }))))
                .count();
            json!({ "passed": passed, "refused": refused })
        }
        "slice_rate_limit_rounds" => {
            child.barrier().await;
            let mut passed = Vec::with_capacity(ROUNDS);
            for round in 0..ROUNDS {
                let key = format!("srl:round:{round}");
                child.meet(&format!("round:{round}")).await;
                let results = together(CALLS as usize, || {
                    let key = key.clone();
                    async move { slice_rate_limit(&CHILD.cache, &key, &SLICE_OPTIONS).await }
                })
                .await;
                passed.push(results.iter().filter(|r| r.is_ok()).count());
            }
            json!({ "passed": passed })
        }
        "slice_first" => {
            let results = together(20, slice_limited).await;
            json!({ "passed": results.iter().filter(|r| r.is_ok()).count() })
        }
        "slice_second" => {
            let (mut passed, mut refused) = (0, 0);
            for _ in 0..CALLS {
                match slice_limited().await {
                    Ok(()) => passed += 1,
                    Err(Failure::Refused(cashews::Error::RateLimited { .. })) => refused += 1,
                    Err(other) => panic!("{other:?}"),
                }
            }
            json!({ "passed": passed, "refused": refused })
        }
        "breaker_fail" => {
            let mut failed = 0;
            for _ in 0..4 {
                if matches!(upstream(true).await, Err(Failure::Upstream)) {
                    failed += 1;
                }
            }
            json!({ "failed": failed })
        }
        "breaker_call" => {
            let refused = matches!(
                upstream(false).await,
                Err(Failure::Refused(cashews::Error::CircuitOpen { .. }))
            );
            json!({ "refused": u32::from(refused) })
        }
        "locked_first" | "locked_second" => json!({ "ran": job(name.to_owned()).await }),
        "tags_read" => {
            let before: i64 = child.cache.get("runs").await.unwrap().unwrap_or(0);
            assert_eq!(Box::pin(post(1)).await, "post 1");
            assert_eq!(Box::pin(post(2)).await, "post 2");
            let after: i64 = child.cache.get("runs").await.unwrap().unwrap_or(0);
            json!({ "runs": after - before })
        }
        "tags_delete" => json!({ "deleted": child.cache.delete_tags(&["posts"]).await.unwrap() }),
        "bloom_add" => {
            let options = BloomOptions::new(1000);
            for id in 0..50 {
                cashews::strategy::bloom_add(&child.cache, FILTER, &id.to_string(), &options)
                    .await
                    .unwrap();
            }
            json!({ "added": 50 })
        }
        "bloom_check" => {
            let mut found = 0;
            for id in 0..50 {
                found += u32::from(known(id).await);
            }
            let member_runs: i64 = child.cache.get("runs").await.unwrap().unwrap_or(0);
            let mut ruled_out = 0;
            for id in 1_000..1_100 {
                ruled_out += u32::from(!known(id).await);
            }
            let runs: i64 = child.cache.get("runs").await.unwrap().unwrap_or(0);
            json!({
                "members_found": found,
                "member_runs": member_runs,
                "strangers_ruled_out": ruled_out,
                "stranger_runs": runs - member_runs,
            })
        }
        "early" | "soft" => {
            child.barrier().await;
            let values = if role == "early" {
                together(200, report).await
            } else {
                together(200, rate).await
            };
            // This process's own runs (the shared counter is in Redis).
            json!({ "values": values, "runs": LOCAL_RUNS.load(Ordering::SeqCst) })
        }
        "perf_fast" => {
            let mut ran = 0;
            let mut refused = 0;
            for _ in 0..3 {
                match search(false).await {
                    Ok(_) => ran += 1,
                    Err(Failure::Refused(cashews::Error::PerformanceDegraded { .. })) => {
                        refused += 1;
                    }
                    Err(other) => panic!("{other:?}"),
                }
            }
            json!({ "ran": ran, "refused": refused })
        }
        "perf_slow" => json!({ "ran": u32::from(search(true).await.is_ok()) }),
        tx if tx.starts_with("tx_") => Box::pin(super::transactions::child_role(tx, name)).await,
        other => panic!("unknown child role {other}"),
    }
}

/// The origin runs of `report` and `rate` in this process.
static LOCAL_RUNS: AtomicU64 = AtomicU64::new(0);
