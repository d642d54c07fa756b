//! Transactions across two OS processes sharing one disk cache (a `disk://` directory): both
//! sides of the cases (the parent's tests, and the children's roles, all named `tx_*`).
//!
//! The isolation scenario of `transaction_scope` (four concurrent transactions, the fourth
//! failing), split over two processes that run two transactions each, in every mode: fast
//! transactions lose updates (all four read the counter before any commits), locked and
//! serializable ones run one after the other through their locks in the shared SQLite
//! files, so every increment counts (the first to take the lock of its first write holds it
//! until all four have started: the others queue on it); then each `k*` key ends with the value of one and the
//! same transaction. A fast commit is atomic per shard only, so fast transactions committing
//! together may leave keys of different transactions: not asserted.
//!
//! And a key lock held by a transaction in one process refuses a transaction of the other
//! process after its timeout, and lets it through once the holder committed.
//!
//! The processes coordinate through files in the shared directory ([`meet`]): independent
//! of the backend under test, and outside any transaction.

use std::path::Path;
use std::time::{Duration, Instant};

use cashews::transaction::TransactionMode;
use cashews::{Cache, Error};
use futures_util::TryStreamExt;

use super::{spawn, temp_dir, wait_all};
use crate::tx_isolation::{self, Failure, LineUp};

/// The lock timeout of the transactions that are meant to get their locks: far above the
/// time four short transactions take, one after the other, on a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The timeout of the transaction meant to fail on a lock that is provably held.
const SHORT: Duration = Duration::from_millis(300);
/// The longest a party waits at a meeting point: a hang guard.
const MEET_LIMIT: Duration = Duration::from_secs(60);

/// A cache on the shared directory, as every process opens it.
fn cache(dir: &Path) -> Cache {
    let cache = Cache::new();
    cache
        .setup(&format!("disk://?directory={}&shards=8", dir.display()))
        .unwrap();
    cache
}

/// Waits until `n` parties (processes, or tasks in them) reached the meeting point `point`:
/// [`arrive`], then [`wait_for`].
async fn meet(dir: &Path, point: &str, n: usize) {
    arrive(dir, point);
    wait_for(dir, point, n).await;
}

/// Records one arrival at `point`: a file of its own, `meet-<point>-<pid>-<n>`.
fn arrive(dir: &Path, point: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static ARRIVALS: AtomicU64 = AtomicU64::new(0);
    let me = format!(
        "meet-{point}-{}-{}",
        std::process::id(),
        ARRIVALS.fetch_add(1, Ordering::Relaxed)
    );
    std::fs::write(dir.join(me), b"").unwrap();
}

/// Waits until `n` arrivals at `point` are in the directory. Bounded by [`MEET_LIMIT`].
async fn wait_for(dir: &Path, point: &str, n: usize) {
    let tag = format!("meet-{point}-");
    let started = Instant::now();
    loop {
        let here = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(&tag))
            })
            .count();
        if here >= n {
            return;
        }
        assert!(
            started.elapsed() < MEET_LIMIT,
            "only {here} of {n} parties reached {point}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ----- the parent side ---------------------------------------------------------------------

/// Runs the isolation scenario in `mode` across two processes and checks the cache after.
async fn isolation(mode: &str) {
    let dir = temp_dir();
    let seed = cache(dir.path());
    assert!(seed.set("key2", "value2", "1h").await.unwrap());
    assert!(seed.set("key3", "init", "1h").await.unwrap());
    seed.close().await.unwrap();
    let role = format!("tx_isolation:{mode}");
    wait_all(vec![
        spawn(&role, dir.path(), "a"),
        spawn(&role, dir.path(), "b"),
    ]);
    let cache = cache(dir.path());
    let mode = TransactionMode::parse(mode).unwrap_or_else(|| panic!("no mode {mode}"));
    // Fast commits land per shard: keys may end with values of different transactions.
    tx_isolation::check(&cache, mode, mode != TransactionMode::Fast).await;
    assert_no_locks(&cache, &["key1", "key2", "key3", "incr"]).await;
    cache.close().await.unwrap();
}

/// No transaction lock is left in the shared directory.
async fn assert_no_locks(cache: &Cache, keys: &[&str]) {
    for key in keys {
        assert!(
            !cache.exists(&cashews::key::tx_lock_key(key)).await.unwrap(),
            "{key}"
        );
    }
    assert!(
        !cache
            .exists(cashews::key::SERIALIZABLE_LOCK_KEY)
            .await
            .unwrap()
    );
    let all: Vec<String> = cache.scan("*").try_collect().await.unwrap();
    let locks: Vec<&String> = all
        .iter()
        .filter(|k| k.contains(":tx_lock:") || k.contains(cashews::key::SERIALIZABLE_LOCK_KEY))
        .collect();
    assert!(locks.is_empty(), "locks left: {locks:?}");
}

#[tokio::test]
async fn fast_transactions_lose_updates_across_processes() {
    isolation("fast").await;
}

#[tokio::test]
async fn locked_transactions_run_one_at_a_time_across_processes() {
    isolation("locked").await;
}

#[tokio::test]
async fn serializable_transactions_run_one_at_a_time_across_processes() {
    isolation("serializable").await;
}

/// A holds `:tx_lock:held` in a locked transaction (it waits at a meeting point before
/// committing); B's transaction on the same key, with a short timeout, fails with
/// `TransactionLocked`; after A commits, B's retry succeeds. B checks its side itself.
#[tokio::test]
async fn a_key_locked_in_one_process_refuses_then_admits_another() {
    let dir = temp_dir();
    wait_all(vec![
        spawn("tx_hold", dir.path(), "a"),
        spawn("tx_contend", dir.path(), "b"),
    ]);
    let cache = cache(dir.path());
    assert_eq!(
        cache.get::<String>("held").await.unwrap().as_deref(),
        Some("b"),
        "B's retry committed after A"
    );
    assert_no_locks(&cache, &["held"]).await;
    cache.close().await.unwrap();
}

// ----- the child side ----------------------------------------------------------------------

/// A child's work for its `tx_*` role; `name` is `a` or `b`. Panics on any failure.
pub(super) async fn child_role(role: &str, dir: &Path, name: &str) {
    let cache = cache(dir);
    match role.split_once(':') {
        Some(("tx_isolation", mode)) => isolation_child(&cache, dir, mode, name).await,
        _ => match role {
            "tx_hold" => hold(&cache, dir).await,
            "tx_contend" => contend(&cache, dir).await,
            other => panic!("unknown child role {other}"),
        },
    }
    cache.close().await.unwrap();
}

/// Child `a` runs transactions v1 and v2, child `b` v3 and v4 (which fails), concurrently.
async fn isolation_child(cache: &Cache, dir: &Path, mode: &str, name: &str) {
    let mode = TransactionMode::parse(mode).unwrap_or_else(|| panic!("no mode {mode}"));
    let [first, second] = if name == "a" {
        ["v1", "v2"]
    } else {
        ["v3", "v4"]
    };
    meet(dir, "start", 2).await;
    let (x, y) = tokio::join!(
        isolated(cache, dir, mode, first),
        isolated(cache, dir, mode, second)
    );
    for (v, result) in [(first, x), (second, y)] {
        match result {
            Ok(()) => assert_ne!(v, "v4", "v4 fails"),
            Err(Failure::Raised) => assert_eq!(v, "v4"),
            Err(Failure::Cache(e)) => panic!("{mode:?} {v}: {e}"),
        }
    }
}

/// One transaction of the isolation scenario, writing `v`.
async fn isolated(
    cache: &Cache,
    dir: &Path,
    mode: TransactionMode,
    v: &str,
) -> Result<(), Failure> {
    let line_up = LineUp {
        entered: async { arrive(dir, "entered") },
        // All four transactions, in both processes, have read the counter.
        all_read: meet(dir, "read", 4),
        all_entered: wait_for(dir, "entered", 4),
    };
    tx_isolation::transaction(cache, mode, v, line_up).await
}

/// A: writes `held` in a locked transaction and keeps it open until B has tried.
async fn hold(cache: &Cache, dir: &Path) {
    cache
        .transaction()
        .mode(TransactionMode::Locked)
        // The lock lives as long as the timeout: longer than the case may run.
        .timeout(Duration::from_secs(300))
        .run(async {
            assert!(cache.set("held", "a", "1h").await?);
            meet(dir, "held", 2).await;
            meet(dir, "tried", 2).await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    meet(dir, "committed", 2).await;
}

/// B: once A holds the lock, tries with a short timeout (refused); once A committed, retries.
async fn contend(cache: &Cache, dir: &Path) {
    meet(dir, "held", 2).await;
    assert!(
        cache
            .exists(&cashews::key::tx_lock_key("held"))
            .await
            .unwrap(),
        "A holds the lock"
    );
    assert_eq!(
        cache.get::<String>("held").await.unwrap(),
        None,
        "A's write is pending"
    );
    let first = cache
        .transaction()
        .mode(TransactionMode::Locked)
        .timeout(SHORT)
        .run(async {
            cache.set("held", "b", "1h").await?;
            Ok::<_, Error>(())
        })
        .await;
    match first {
        Err(Error::TransactionLocked { key, waited }) => {
            assert!(key.ends_with(":tx_lock:held"), "{key}");
            assert_eq!(waited, SHORT);
        }
        other => panic!("expected TransactionLocked, got {other:?}"),
    }
    meet(dir, "tried", 2).await;
    meet(dir, "committed", 2).await;
    assert_eq!(
        cache.get::<String>("held").await.unwrap().as_deref(),
        Some("a"),
        "A committed"
    );
    cache
        .transaction()
        .mode(TransactionMode::Locked)
        .timeout(TIMEOUT)
        .run(async {
            assert!(cache.set("held", "b", "1h").await?);
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
}
