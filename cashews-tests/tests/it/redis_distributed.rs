//! Strategies across two OS processes sharing one Redis (`CASHEWS_REDIS_URL`, default
//! `redis://127.0.0.1:6379/0`).
//!
//! Each case re-runs this test binary as child processes (libtest arguments
//! `--exact redis_distributed::child --nocapture`) with [`ROLE`] saying what the child does.
//! Without that variable the `child` test does nothing. A child prints one line
//! `CASHEWS-CHILD-RESULT {json}` with its counts; the parent checks exit statuses, those
//! counts and Redis itself. Concurrent children start together at a barrier: each increments
//! `ready`, then waits for the parent to set `go`.
//!
//! Every case runs on a key prefix unique to it (pid and a salt), given to the children's
//! backend as `key_prefix`, and deletes its keys at the end; the shared server is never
//! flushed.
//!
//! What holds across processes, and what is asserted: `cache(lock = true)` runs a cold origin
//! once in total; `rate_limit` and `slice_rate_limit` pass exactly `limit` calls in total; an
//! open circuit or a perf lock set by one process refuses calls in another, and the perf
//! trace is shared; a `locked` call in one process waits for the holder in another; tags and
//! bloom filters written by one process are seen by the other; `early` refreshes one at a time
//! (its refresh lock is in Redis). `soft` coalesces recomputations only within a process (its
//! docs say so), so across two processes a soft-expired value is recomputed at most once per
//! process, and that is what is asserted. Transactions: see [`transactions`].

mod roles;
mod transactions;

use std::collections::BTreeSet;
use std::time::Duration;

use cashews::Cache;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use serde_json::Value;

use crate::support::{redis_url as url, salt};

use self::roles::{CALLS, CHILD, LIMIT, ROUNDS, child_role};

/// The environment variable naming a child's role; unset in the parent.
const ROLE: &str = "CASHEWS_CHILD_ROLE";
/// The key prefix of the case, for the children.
const PREFIX: &str = "CASHEWS_CHILD_PREFIX";
/// The child's name (`a` or `b`), for the records it writes.
const NAME: &str = "CASHEWS_CHILD_NAME";
/// The tag of a child's result line.
const RESULT: &str = "CASHEWS-CHILD-RESULT ";
/// The longest a child may run: a hang guard, far above a normal run.
const CHILD_LIMIT: Duration = Duration::from_secs(25);

/// The URL of a backend storing every key under `prefix`.
///
/// With a command timeout far above the default 1 s: these cases count origin runs under
/// hundreds of concurrent callers in two processes, and on a loaded 2-core machine a read
/// that times out is (rightly) a miss that runs the origin, an extra run the count would
/// blame on the coordination under test. Timeouts have their own tests (`redis_faults`).
fn prefixed_url(prefix: &str) -> String {
    let url = url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}key_prefix={prefix}&command_timeout=20s")
}

// ----- the parent side ---------------------------------------------------------------------

/// One case: its key prefix and a raw connection to look at Redis.
struct Case {
    name: &'static str,
    prefix: String,
    conn: MultiplexedConnection,
}

impl Case {
    /// A case on a fresh prefix, or `None` (skipped) when Redis does not answer outside CI.
    async fn start(name: &'static str) -> Option<Self> {
        let conn = match raw_conn().await {
            Ok(conn) => conn,
            Err(e) => {
                return cashews_testkit::skip_unless_ci(
                    name,
                    &format!("Redis does not answer at {}: {e}", url()),
                );
            }
        };
        let prefix = format!("cashews-dist:{}-{:016x}:", std::process::id(), salt());
        Some(Self { name, prefix, conn })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Starts a child with `role`, named `name`.
    fn spawn(&self, role: &str, name: &str) -> tokio::process::Child {
        let exe = std::env::current_exe().unwrap();
        tokio::process::Command::new(exe)
            .args(["--exact", "redis_distributed::child", "--nocapture"])
            .env(ROLE, role)
            .env(PREFIX, &self.prefix)
            .env(NAME, name)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// Waits for a child (killed if it outlives [`CHILD_LIMIT`]), checks it succeeded and
    /// returns its result line.
    async fn finish(&self, child: tokio::process::Child) -> Value {
        let output = tokio::time::timeout(CHILD_LIMIT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{}: a child hung and was killed", self.name))
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{}: child failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.name,
            output.status
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(RESULT))
            .unwrap_or_else(|| {
                panic!(
                    "{}: the child printed no result (was the test filter right?)\n{stdout}",
                    self.name
                )
            });
        serde_json::from_str(line).unwrap()
    }

    /// Runs one child to its end.
    async fn run(&self, role: &str, name: &str) -> Value {
        let child = self.spawn(role, name);
        self.finish(child).await
    }

    /// Runs two children of `role` together, released at once from the barrier.
    async fn run_pair(&mut self, role: &str) -> (Value, Value) {
        let a = self.spawn(role, "a");
        let b = self.spawn(role, "b");
        let ready = self.key("ready");
        let released = async {
            for _ in 0..5_000 {
                let n: Option<u64> = self.conn.clone().get(&ready).await.unwrap();
                if n == Some(2) {
                    let _: () = self.conn.clone().set(self.key("go"), 1).await.unwrap();
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        };
        let released = released.await;
        let (a, b) = tokio::join!(self.finish(a), self.finish(b));
        assert!(released, "{}: the children never got ready", self.name);
        (a, b)
    }

    async fn int(&self, key: &str) -> i64 {
        let n: Option<i64> = self.conn.clone().get(self.key(key)).await.unwrap();
        n.unwrap_or(0)
    }

    /// Deletes every key of the case.
    async fn cleanup(mut self) {
        let pattern = format!("{}*", self.prefix);
        let keys: Vec<String> = self.conn.keys(pattern).await.unwrap();
        if !keys.is_empty() {
            let _: () = self.conn.del(keys).await.unwrap();
        }
    }
}

async fn raw_conn() -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(url())?;
    let conn = tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    Ok(conn)
}

fn n(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no count `{field}` in {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_lock_runs_a_cold_origin_once_across_processes() {
    let Some(mut case) = Case::start("cache_lock").await else {
        return;
    };
    let (a, b) = case.run_pair("cold").await;
    assert_eq!(case.int("runs").await, 1, "the origin ran once in total");
    let values: BTreeSet<&str> = [&a, &b]
        .iter()
        .flat_map(|r| r["values"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        values.len(),
        1,
        "every caller got the same value: {values:?}"
    );
    assert_eq!(n(&a, "calls") + n(&b, "calls"), 1_000);
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_shared_across_processes() {
    let Some(mut case) = Case::start("rate_limit").await else {
        return;
    };
    let (a, b) = case.run_pair("rate_limit").await;
    assert_eq!(n(&a, "passed") + n(&b, "passed"), LIMIT);
    assert_eq!(n(&a, "refused") + n(&b, "refused"), 2 * CALLS - LIMIT);
    assert_eq!(
        case.int("runs").await,
        LIMIT as i64,
        "refused calls ran nothing"
    );
    case.cleanup().await;
}

/// A window filled by one process refuses the other's calls past the limit. B's calls are
/// sequential: see the next test for why concurrent calls near the limit are not exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slice_rate_limit_is_shared_across_processes() {
    let Some(case) = Case::start("slice_rate_limit").await else {
        return;
    };
    let a = case.run("slice_first", "a").await;
    assert_eq!(n(&a, "passed"), 20, "below the limit: all pass");
    let b = case.run("slice_second", "b").await;
    assert_eq!(n(&b, "passed"), LIMIT - 20, "{b}");
    assert_eq!(n(&b, "refused"), CALLS - (LIMIT - 20));
    case.cleanup().await;
}

/// Two processes, 40 concurrent calls each, against one limit of 37 a minute, in
/// [`ROUNDS`] rounds on fresh keys (the children meet before each round): exactly 37 pass in
/// every round. This test found a bug (43 of 37 passed): each call stamped its event with its
/// own `now`, read before the command, and a command reaching Redis after a later-stamped one
/// did not count that event. `slice_rate_limit` now uses `slice_incr_now`, whose Lua script
/// stamps the event with the server's `TIME` inside the script, so events are recorded in
/// stamp order on one clock and none can be missed. The rounds give the race many chances:
/// with caller-side stamps, most runs of this test fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slice_rate_limit_is_exact_under_concurrency_across_processes() {
    let Some(mut case) = Case::start("slice_rate_limit_concurrent").await else {
        return;
    };
    let (a, b) = case.run_pair("slice_rate_limit_rounds").await;
    let passed = |child: &Value| -> Vec<u64> {
        child["passed"]
            .as_array()
            .unwrap_or_else(|| panic!("no `passed` rounds in {child}"))
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    let (a, b) = (passed(&a), passed(&b));
    assert_eq!((a.len(), b.len()), (ROUNDS, ROUNDS));
    let totals: Vec<u64> = a.iter().zip(&b).map(|(a, b)| a + b).collect();
    assert_eq!(
        totals,
        vec![LIMIT; ROUNDS],
        "passed per round: a {a:?}, b {b:?}"
    );
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_refuses_another_process() {
    let Some(case) = Case::start("circuit_breaker").await else {
        return;
    };
    let a = case.run("breaker_fail", "a").await;
    assert_eq!(n(&a, "failed"), 4, "four failures, the circuit opens");
    let b = case.run("breaker_call", "b").await;
    assert_eq!(n(&b, "refused"), 1, "{b}");
    assert_eq!(case.int("runs").await, 4, "b's origin never ran");
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_waits_for_the_holder_in_another_process() {
    let Some(case) = Case::start("locked").await else {
        return;
    };
    let a = case.spawn("locked_first", "a");
    // B starts once A is inside the lock.
    let log = case.key("log");
    let mut started = false;
    for _ in 0..2_000 {
        let events: Vec<String> = case.conn.clone().lrange(&log, 0, -1).await.unwrap();
        if events.first().map(String::as_str) == Some("a-start") {
            started = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let b = case.spawn("locked_second", "b");
    let (a, b) = tokio::join!(case.finish(a), case.finish(b));
    assert!(started, "a never took the lock");
    assert_eq!(n(&a, "ran") + n(&b, "ran"), 2);
    let events: Vec<String> = case.conn.clone().lrange(&log, 0, -1).await.unwrap();
    assert_eq!(events, ["a-start", "a-end", "b-start", "b-end"]);
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_deleted_by_one_process_miss_in_another() {
    let Some(case) = Case::start("tags").await else {
        return;
    };
    let first = case.run("tags_read", "a").await;
    assert_eq!(n(&first, "runs"), 2, "two cold posts");
    let again = case.run("tags_read", "a").await;
    assert_eq!(n(&again, "runs"), 0, "both cached, across processes too");
    let deleted = case.run("tags_delete", "b").await;
    assert_eq!(n(&deleted, "deleted"), 2);
    let after = case.run("tags_read", "a").await;
    assert_eq!(n(&after, "runs"), 2, "both deleted by the other process");
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bloom_members_added_by_one_process_are_seen_by_another() {
    let Some(case) = Case::start("bloom").await else {
        return;
    };
    let a = case.run("bloom_add", "a").await;
    assert_eq!(n(&a, "added"), 50);
    let b = case.run("bloom_check", "b").await;
    assert_eq!(n(&b, "members_found"), 50, "{b}");
    assert_eq!(
        n(&b, "member_runs"),
        50,
        "a member is confirmed by the origin"
    );
    // 100 strangers at 1 % false positives: a few may pass as "maybe".
    assert!(n(&b, "strangers_ruled_out") >= 95, "{b}");
    assert_eq!(
        n(&b, "stranger_runs"),
        100 - n(&b, "strangers_ruled_out"),
        "a stranger ruled out never runs the origin"
    );
    case.cleanup().await;
}

/// The stored entry of `early` (its documented layout), due for a refresh.
#[derive(Serialize)]
#[serde(rename = "EarlyEntry")]
struct EarlyEntry<'a> {
    refresh_at_ms: u64,
    value: &'a str,
}

/// The stored entry of `soft` (its documented layout), soft-expired.
#[derive(Serialize)]
#[serde(rename = "SoftEntry")]
struct SoftEntry<'a> {
    soft_expire_at_ms: u64,
    value: &'a str,
}

/// A cache on the case's prefix, in the parent (to seed entries).
fn parent_cache(case: &Case) -> Cache {
    let cache = Cache::new();
    cache.setup(&prefixed_url(&case.prefix)).unwrap();
    cache
}

/// Seeds an `early` entry due for a refresh, releases 200 callers in each of two processes,
/// and returns their results.
async fn early_pair(case: &mut Case) -> (Value, Value) {
    let seed = parent_cache(case);
    let entry = EarlyEntry {
        refresh_at_ms: 1,
        value: "old",
    };
    assert!(seed.set("early:v2:report", &entry, "1h").await.unwrap());
    let (a, b) = case.run_pair("early").await;
    for r in [&a, &b] {
        assert!(
            r["values"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v.as_str() == Some("old") || v.as_str() == Some("new")),
            "{r}"
        );
    }
    (a, b)
}

/// What `early` guarantees across processes: refreshes never overlap (the refresh lock is in
/// Redis), every caller gets the old or the new value, and at least one refresh runs. See
/// the next test for why not exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refreshes_one_at_a_time_across_processes() {
    let Some(mut case) = Case::start("early").await else {
        return;
    };
    early_pair(&mut case).await;
    let runs = case.int("runs").await;
    assert!(runs >= 1, "the entry was due");
    let events: Vec<String> = case
        .conn
        .clone()
        .lrange(case.key("log"), 0, -1)
        .await
        .unwrap();
    let expected: Vec<&str> = (0..runs).flat_map(|_| ["start", "end"]).collect();
    assert_eq!(events, expected, "refreshes never overlap");
    case.cleanup().await;
}

/// Found by this test once: a caller that read the due entry before the refresh stored the
/// new one, and took the refresh lock after the refresher released it, refreshed again. The
/// refresh lock now re-reads the entry's stamp once taken and lets go when it is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_refreshes_exactly_once_across_processes() {
    let Some(mut case) = Case::start("early_once").await else {
        return;
    };
    early_pair(&mut case).await;
    assert_eq!(
        case.int("runs").await,
        1,
        "one refresh across both processes"
    );
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_recomputes_at_most_once_per_process() {
    let Some(mut case) = Case::start("soft").await else {
        return;
    };
    let seed = parent_cache(&case);
    let entry = SoftEntry {
        soft_expire_at_ms: 1,
        value: "old",
    };
    assert!(seed.set("soft:rate", &entry, "1h").await.unwrap());
    let (a, b) = case.run_pair("soft").await;
    assert!(n(&a, "runs") <= 1 && n(&b, "runs") <= 1, "{a} {b}");
    assert!(n(&a, "runs") + n(&b, "runs") >= 1, "the value was stale");
    assert_eq!(case.int("runs").await as u64, n(&a, "runs") + n(&b, "runs"));
    for r in [&a, &b] {
        assert!(
            r["values"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v.as_str() == Some("new")),
            "a soft-expired value is never served while the recomputation succeeds: {r}"
        );
    }
    case.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_trace_and_lock_are_shared_across_processes() {
    let Some(case) = Case::start("perf").await else {
        return;
    };
    let fast = case.run("perf_fast", "a").await;
    assert_eq!(n(&fast, "ran"), 3, "three fast calls fill a's trace");
    let slow = case.run("perf_slow", "b").await;
    assert_eq!(
        n(&slow, "ran"),
        1,
        "b's slow call runs and is compared with a's trace"
    );
    let refused = case.run("perf_fast", "a").await;
    assert_eq!(n(&refused, "refused"), 3, "{refused}");
    assert_eq!(n(&refused, "ran"), 0);
    case.cleanup().await;
}

/// Subscribers of the channel the Redis `unlock` announces releases on.
async fn release_subscribers(conn: &mut MultiplexedConnection) -> u64 {
    let reply: (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("cashews:lock-released")
        .query_async(conn)
        .await
        .unwrap();
    reply.1
}

/// Cross-process wake-ups: two `Cache`s on one Redis have separate in-process slots, so only
/// the release published by `unlock` can wake B at once. Without it B would sleep its pause
/// of 2 s (it is subscribed, so it does not back off), and the 1 s marker set just before the
/// release would be gone by the time B holds the lock; the lock's TTL is 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_in_another_cache_wakes_the_waiter_through_pub_sub() {
    let Some(case) = Case::start("release_feed").await else {
        return;
    };
    let mut conn = case.conn.clone();
    let before = release_subscribers(&mut conn).await;
    let a = parent_cache(&case);
    let b = parent_cache(&case);
    let held = a.lock("job", "30s").await.unwrap();
    let waiter = tokio::spawn(async move {
        let guard = b.lock("job", "30s").await.unwrap();
        (guard, b)
    });
    let mut subscribed = false;
    for _ in 0..1_000 {
        if release_subscribers(&mut conn).await > before {
            subscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(subscribed, "the waiter subscribed to lock releases");
    // Let B finish its short backoffs and settle into its (long) subscribed pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "B waits while A holds the lock");
    let marker = case.key("marker");
    let _: () = redis::cmd("SET")
        .arg(&marker)
        .arg(1)
        .arg("PX")
        .arg(1_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(held.release().await.unwrap(), "A held the lock until now");
    let (guard, b) = tokio::time::timeout(CHILD_LIMIT, waiter)
        .await
        .expect("hang guard")
        .unwrap();
    let marker_ttl: i64 = conn.pttl(&marker).await.unwrap();
    assert!(
        marker_ttl > 0,
        "B was woken by the release, not by its pause (marker TTL {marker_ttl} ms)"
    );
    assert!(!guard.is_degraded());
    assert!(guard.release().await.unwrap());
    // The listener ends with the cache: its subscription goes away.
    drop(b);
    drop(a);
    let mut unsubscribed = false;
    for _ in 0..1_000 {
        if release_subscribers(&mut conn).await <= before {
            unsubscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(unsubscribed, "dropping the cache closed its subscription");
    case.cleanup().await;
}

// ----- the child side (its roles: `roles.rs`) ---------------------------------------------

/// The entry point of the child processes; does nothing in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let name = std::env::var(NAME).unwrap();
    let prefix = std::env::var(PREFIX).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async {
        CHILD.cache.setup(&prefixed_url(&prefix)).unwrap();
        Box::pin(child_role(&role, &name)).await
    });
    println!("{RESULT}{result}");
}
