//! Transactions across two OS processes sharing one Redis: both sides of the cases (the
//! parent's tests, and the children's roles, all named `tx_*`).
//!
//! The isolation scenario of `transaction_scope` (four concurrent transactions, the fourth
//! failing), split over two processes that run two transactions each, in every mode: fast
//! transactions lose updates (all four read the counter before any commits: they meet in
//! Redis after their first `incr`), locked and serializable ones run one after the other,
//! through their locks in Redis, so every increment counts (the first to take the lock of
//! its first write holds it until all four have started: the others queue on it). On one Redis server every commit
//! is one `MULTI`/`EXEC`, so in every mode each `k*` key ends with the value of one and the
//! same transaction.
//!
//! And a key lock held by a transaction in one process refuses a transaction of the other
//! process after its timeout, and lets it through once the holder committed.

use std::time::Duration;

use cashews::transaction::TransactionMode;
use cashews::{Cache, Error};
use redis::AsyncCommands;
use serde_json::{Value, json};

use super::roles::CHILD;
use super::{Case, n, parent_cache};
use crate::tx_isolation::{self, Failure, LineUp};

/// The lock timeout of the transactions that are meant to get their locks: far above the
/// time four short transactions take, one after the other, on a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The timeout of the transaction meant to fail on a lock that is provably held.
const SHORT: Duration = Duration::from_millis(300);

// ----- the parent side ---------------------------------------------------------------------

/// Runs the isolation scenario in `mode` (its name, as `TransactionMode::parse` reads it)
/// across two processes and checks Redis afterwards.
async fn isolation(mode: &'static str, name: &'static str) {
    let Some(mut case) = Case::start(name).await else {
        return;
    };
    let cache = parent_cache(&case);
    assert!(cache.set("key2", "value2", "1h").await.unwrap());
    assert!(cache.set("key3", "init", "1h").await.unwrap());
    let (a, b) = case.run_pair(&format!("tx_isolation:{mode}")).await;
    assert_eq!(n(&a, "committed") + n(&b, "committed"), 3, "{a} {b}");
    assert_eq!(n(&a, "failed") + n(&b, "failed"), 1, "v4 failed: {a} {b}");
    let mode_value = TransactionMode::parse(mode).unwrap_or_else(|| panic!("no mode {mode}"));
    // One Redis server applies each commit at once: every key ends with one value.
    tx_isolation::check(&cache, mode_value, true).await;
    assert_no_locks(&case).await;
    drop(cache);
    case.cleanup().await;
}

/// No transaction lock of the case is left in Redis.
async fn assert_no_locks(case: &Case) {
    let keys: Vec<String> = case
        .conn
        .clone()
        .keys(format!("{}*", case.prefix))
        .await
        .unwrap();
    let locks: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains(":tx_lock:") || k.ends_with(cashews::key::SERIALIZABLE_LOCK_KEY))
        .collect();
    assert!(locks.is_empty(), "{}: locks left: {locks:?}", case.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_transactions_lose_updates_across_processes() {
    isolation("fast", "tx_fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_transactions_run_one_at_a_time_across_processes() {
    isolation("locked", "tx_locked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_transactions_run_one_at_a_time_across_processes() {
    isolation("serializable", "tx_serializable").await;
}

/// A holds `:tx_lock:held` in a locked transaction (it waits at a meeting point before
/// committing); B's transaction on the same key, with a short timeout, fails with
/// `TransactionLocked`; after A commits, B's retry succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_locked_in_one_process_refuses_then_admits_another() {
    let Some(case) = Case::start("tx_contend").await else {
        return;
    };
    let a = case.spawn("tx_hold", "a");
    let b = case.spawn("tx_contend", "b");
    let (a, b) = tokio::join!(case.finish(a), case.finish(b));
    assert_eq!(n(&a, "committed"), 1, "{a}");
    assert_eq!(n(&b, "lock_seen"), 1, "A held the lock when B tried: {b}");
    assert_eq!(n(&b, "refused"), 1, "{b}");
    assert_eq!(
        b["before_commit"],
        Value::Null,
        "A's write was pending: {b}"
    );
    assert_eq!(b["after_commit"], "a", "{b}");
    assert_eq!(n(&b, "retried"), 1, "{b}");
    let cache = parent_cache(&case);
    assert_eq!(
        cache.get::<String>("held").await.unwrap().as_deref(),
        Some("b")
    );
    assert_no_locks(&case).await;
    drop(cache);
    case.cleanup().await;
}

// ----- the child side ----------------------------------------------------------------------

/// A child's work for its `tx_*` role.
pub(super) async fn child_role(role: &str, name: &str) -> Value {
    match role.split_once(':') {
        Some(("tx_isolation", mode)) => Box::pin(isolation_child(mode, name)).await,
        _ => match role {
            "tx_hold" => hold().await,
            "tx_contend" => contend().await,
            other => panic!("unknown child role {other}"),
        },
    }
}

/// Child `a` runs transactions v1 and v2, child `b` v3 and v4 (which fails), concurrently.
async fn isolation_child(mode: &str, name: &str) -> Value {
    let mode = TransactionMode::parse(mode).unwrap_or_else(|| panic!("no mode {mode}"));
    let [first, second] = if name == "a" {
        ["v1", "v2"]
    } else {
        ["v3", "v4"]
    };
    CHILD.barrier().await;
    let (x, y) = tokio::join!(isolated(mode, first), isolated(mode, second));
    let (mut committed, mut failed) = (0, 0);
    for result in [x, y] {
        match result {
            Ok(()) => committed += 1,
            Err(Failure::Raised) => failed += 1,
            Err(Failure::Cache(e)) => panic!("{mode:?}: {e}"),
        }
    }
    json!({ "committed": committed, "failed": failed })
}

/// One transaction of the isolation scenario, writing `v`.
async fn isolated(mode: TransactionMode, v: &str) -> Result<(), Failure> {
    let line_up = LineUp {
        entered: CHILD.arrive("tx_entered"),
        // All four transactions, in both processes, have read the counter.
        all_read: CHILD.meet_n("tx_read", 4),
        all_entered: CHILD.wait_for("tx_entered", 4),
    };
    Box::pin(tx_isolation::transaction(&CHILD.cache, mode, v, line_up)).await
}

/// A: writes `held` in a locked transaction and keeps it open until B has tried.
async fn hold() -> Value {
    let cache: &Cache = &CHILD.cache;
    cache
        .transaction()
        .mode(TransactionMode::Locked)
        // The lock lives as long as the timeout: longer than the case may run.
        .timeout(Duration::from_secs(60))
        .run(async {
            assert!(cache.set("held", "a", "1h").await?);
            CHILD.meet("tx_held").await;
            CHILD.meet("tx_tried").await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    CHILD.meet("tx_committed").await;
    json!({ "committed": 1 })
}

/// B: once A holds the lock, tries with a short timeout (refused); once A committed, retries.
async fn contend() -> Value {
    let cache: &Cache = &CHILD.cache;
    CHILD.meet("tx_held").await;
    let lock_seen = cache
        .exists(&cashews::key::tx_lock_key("held"))
        .await
        .unwrap();
    let before_commit: Option<String> = cache.get("held").await.unwrap();
    let first = cache
        .transaction()
        .mode(TransactionMode::Locked)
        .timeout(SHORT)
        .run(async {
            cache.set("held", "b", "1h").await?;
            Ok::<_, Error>(())
        })
        .await;
    let refused = match first {
        Err(Error::TransactionLocked { key, waited }) => {
            assert!(key.ends_with(":tx_lock:held"), "{key}");
            assert_eq!(waited, SHORT);
            true
        }
        other => panic!("expected TransactionLocked, got {other:?}"),
    };
    CHILD.meet("tx_tried").await;
    CHILD.meet("tx_committed").await;
    let after_commit: Option<String> = cache.get("held").await.unwrap();
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
    json!({
        "lock_seen": u32::from(lock_seen),
        "refused": u32::from(refused),
        "before_commit": before_commit,
        "after_commit": after_commit,
        "retried": 1,
    })
}
