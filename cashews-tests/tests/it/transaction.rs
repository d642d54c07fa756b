//! Transactions at the backend level (`cashews::backend::Transactional`) on the memory backend
//! with a manual clock: the overlay's semantics (the transaction scenarios of the command set:
//! commit, rollback, delete + set_many, delete_match, incr, expire), exact TTLs at commit, the
//! locks of locked and serializable transactions (released at commit, rollback and drop; a
//! clear error after the timeout), and `apply` through a middleware chain.

use std::time::Duration;

use cashews::backend::{
    Backend, Batch, Expiry, SetOptions, TransactionMode, TransactionOptions, Transactional,
};
use cashews::config::MemoryOptions;
use cashews::key::{SERIALIZABLE_LOCK_KEY, tx_lock_key};
use cashews::middleware::{self, Layered};
use cashews::{Bytes, Clock, Error, MemoryBackend, Result};
use futures_util::TryStreamExt;

const MODES: [TransactionMode; 3] = [
    TransactionMode::Fast,
    TransactionMode::Locked,
    TransactionMode::Serializable,
];

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

fn mem() -> (MemoryBackend, Clock) {
    let clock = Clock::manual();
    (
        MemoryBackend::with_clock(MemoryOptions::default(), clock.clone()),
        clock,
    )
}

fn open(mem: &MemoryBackend, clock: &Clock, mode: TransactionMode) -> Transactional {
    Transactional::new(mem.clone(), clock.clone(), TransactionOptions::new(mode))
}

fn v(s: &'static str) -> Option<Bytes> {
    Some(Bytes::from(s))
}

async fn scan<B: Backend>(b: &B, pattern: &str) -> Result<Vec<String>> {
    let mut keys: Vec<String> = b.scan(pattern, 100).try_collect().await?;
    keys.sort();
    Ok(keys)
}

/// No `:tx_lock:` or serializable lock is left on the backend.
async fn no_locks(mem: &MemoryBackend) -> Result<()> {
    assert_eq!(scan(mem, ":tx_lock:*").await?, Vec::<String>::new());
    assert!(!mem.exists(SERIALIZABLE_LOCK_KEY).await?);
    Ok(())
}

#[tokio::test]
async fn commit_shows_writes_inside_and_after() -> Result<()> {
    for mode in MODES {
        let (mem, clock) = mem();
        mem.set("key1", "value1".into(), SetOptions::ttl(secs(1)))
            .await?;
        mem.set("key2", "value2".into(), SetOptions::ttl(secs(2)))
            .await?;
        let tx = open(&mem, &clock, mode);
        tx.set("key1", "value2".into(), SetOptions::ttl(secs(3)))
            .await?;
        tx.set("key", "value".into(), SetOptions::default()).await?;
        let want = vec![v("value"), v("value2"), v("value2")];
        assert_eq!(
            tx.get_many(&["key", "key1", "key2"]).await?,
            want,
            "{mode:?}"
        );
        assert_eq!(
            mem.get("key").await?,
            None,
            "nothing reaches the backend before commit"
        );
        tx.commit().await?;
        assert_eq!(
            mem.get_many(&["key", "key1", "key2"]).await?,
            want,
            "{mode:?}"
        );
        assert_eq!(
            mem.get_expire("key1").await?,
            Expiry::In(Duration::from_secs(3))
        );
        no_locks(&mem).await?;
    }
    Ok(())
}

#[tokio::test]
async fn rollback_discards_everything() -> Result<()> {
    for mode in MODES {
        let (mem, clock) = mem();
        mem.set("key1", "value1".into(), SetOptions::ttl(secs(1)))
            .await?;
        mem.set("key2", "value2".into(), SetOptions::ttl(secs(2)))
            .await?;
        let tx = open(&mem, &clock, mode);
        tx.set("key1", "value2".into(), SetOptions::ttl(secs(3)))
            .await?;
        tx.set("key", "value".into(), SetOptions::default()).await?;
        tx.delete("key2").await?;
        tx.rollback().await?;
        let want = vec![None, v("value1"), v("value2")];
        assert_eq!(
            tx.get_many(&["key", "key1", "key2"]).await?,
            want,
            "{mode:?}"
        );
        assert_eq!(
            mem.get_many(&["key", "key1", "key2"]).await?,
            want,
            "{mode:?}"
        );
        assert!(tx.is_empty());
        no_locks(&mem).await?;
    }
    Ok(())
}

#[tokio::test]
async fn delete_then_set_many_then_delete_many() -> Result<()> {
    for mode in MODES {
        let (mem, clock) = mem();
        for key in ["key", "key1", "key2"] {
            mem.set(key, "old".into(), SetOptions::default()).await?;
        }
        let tx = open(&mem, &clock, mode);
        assert!(tx.delete("key1").await?);
        tx.set_many(
            &[("key1", "value1".into()), ("key3", "value3".into())],
            None,
        )
        .await?;
        assert!(tx.delete("key").await?);
        assert!(!tx.delete("key").await?, "a second delete finds nothing");
        assert_eq!(tx.delete_many(&["key2", "key3", "key3", "nope"]).await?, 2);
        tx.set("key2", "value2".into(), SetOptions::default())
            .await?;
        let want = vec![None, v("value1"), v("value2")];
        assert_eq!(tx.get_many(&["key", "key1", "key2"]).await?, want);
        assert_eq!(tx.get("key3").await?, None);
        tx.commit().await?;
        assert_eq!(
            mem.get_many(&["key", "key1", "key2"]).await?,
            want,
            "{mode:?}"
        );
        assert_eq!(mem.get("key3").await?, None);
    }
    Ok(())
}

#[tokio::test]
async fn delete_match_hides_backend_and_pending_keys() -> Result<()> {
    for mode in MODES {
        let (mem, clock) = mem();
        for key in ["kek", "key1", "key2"] {
            mem.set(key, "value".into(), SetOptions::default()).await?;
        }
        let tx = open(&mem, &clock, mode);
        tx.set("key1", "mine".into(), SetOptions::default()).await?;
        tx.set("key3", "mine".into(), SetOptions::default()).await?;
        assert_eq!(tx.delete_match("key*").await?, 3);
        assert_eq!(
            tx.get_many(&["key1", "key2", "key3"]).await?,
            vec![None, None, None]
        );
        tx.set("key2", "value2".into(), SetOptions::default())
            .await?;
        let want = vec![v("value"), None, v("value2")];
        assert_eq!(tx.get_many(&["kek", "key1", "key2"]).await?, want);
        assert_eq!(scan(&tx, "k*").await?, ["kek", "key2"]);
        tx.commit().await?;
        assert_eq!(
            mem.get_many(&["kek", "key1", "key2"]).await?,
            want,
            "{mode:?}"
        );
        assert_eq!(scan(&mem, "k*").await?, ["kek", "key2"]);
    }
    Ok(())
}

#[tokio::test]
async fn incr_copies_the_backend_value_and_restarts_after_delete() -> Result<()> {
    for mode in MODES {
        let (mem, clock) = mem();
        for key in ["key1", "key3", "key4"] {
            mem.set(key, "1".into(), SetOptions::ttl(secs(60))).await?;
        }
        let tx = open(&mem, &clock, mode);
        assert_eq!(tx.incr("key1", 1, None).await?, 2);
        assert_eq!(tx.incr("key1", 1, None).await?, 3);
        assert_eq!(tx.incr("key2", 1, None).await?, 1);
        tx.delete("key3").await?;
        assert_eq!(tx.incr("key3", 1, None).await?, 1);
        assert_eq!(tx.incr("key4", 1, None).await?, 2);
        tx.delete("key4").await?;
        assert_eq!(mem.get("key1").await?, v("1"), "the backend is untouched");
        tx.commit().await?;
        assert_eq!(
            mem.get_expire("key1").await?,
            Expiry::In(Duration::from_secs(60))
        );
        assert_eq!(mem.get_expire("key3").await?, Expiry::Persistent);
        assert_eq!(mem.incr("key1", 1, None).await?, 4, "{mode:?}");
        assert_eq!(mem.incr("key2", 1, None).await?, 2);
        assert_eq!(mem.incr("key3", 1, None).await?, 2);
        assert_eq!(mem.incr("key4", 1, None).await?, 1);
    }
    Ok(())
}

#[tokio::test]
async fn expire_copies_and_skips_deleted_keys() -> Result<()> {
    for mode in MODES {
        let (mem, clock) = mem();
        for key in ["key1", "key3", "key4"] {
            mem.set(key, "v".into(), SetOptions::default()).await?;
        }
        let tx = open(&mem, &clock, mode);
        tx.delete("key3").await?;
        tx.set("key2", "v".into(), SetOptions::ttl(secs(100)))
            .await?;
        assert!(tx.expire("key1", secs(11)).await?);
        assert!(tx.expire("key2", secs(12)).await?);
        assert!(
            !tx.expire("key3", secs(13)).await?,
            "a deleted key stays deleted"
        );
        assert_eq!(mem.get_expire("key1").await?, Expiry::Persistent, "not yet");
        let check = |expiries: Vec<Expiry>| {
            assert_eq!(
                expiries,
                [
                    Expiry::In(Duration::from_secs(11)),
                    Expiry::In(Duration::from_secs(12)),
                    Expiry::Missing,
                    Expiry::Persistent,
                    Expiry::Missing,
                ],
                "{mode:?}"
            );
        };
        let keys = ["key1", "key2", "key3", "key4", "key5"];
        let mut inside = Vec::new();
        for key in keys {
            inside.push(tx.get_expire(key).await?);
        }
        check(inside);
        tx.commit().await?;
        let mut after = Vec::new();
        for key in keys {
            after.push(mem.get_expire(key).await?);
        }
        check(after);
    }
    Ok(())
}

#[tokio::test]
async fn expire_none_persists_a_pending_value() -> Result<()> {
    let (mem, clock) = mem();
    mem.set("k", "v".into(), SetOptions::ttl(secs(5))).await?;
    let tx = open(&mem, &clock, TransactionMode::Fast);
    assert!(tx.expire("k", None).await?);
    assert_eq!(tx.get_expire("k").await?, Expiry::Persistent);
    tx.commit().await?;
    assert_eq!(mem.get_expire("k").await?, Expiry::Persistent);
    Ok(())
}

#[tokio::test]
async fn commit_writes_the_exact_remaining_ttl_and_drops_expired_values() -> Result<()> {
    let (mem, clock) = mem();
    mem.set("short", "old".into(), SetOptions::default())
        .await?;
    let tx = open(&mem, &clock, TransactionMode::Fast);
    tx.set("long", "v".into(), SetOptions::ttl(secs(10)))
        .await?;
    tx.set("short", "new".into(), SetOptions::ttl(secs(2)))
        .await?;
    clock.advance(Duration::from_millis(3_500));
    assert_eq!(
        tx.get("short").await?,
        None,
        "an expired pending value hides the old one"
    );
    let pending = tx.pending();
    assert_eq!(pending.deletes(), ["short"]);
    assert_eq!(
        pending.writes()[0].ttl(),
        Some(Duration::from_millis(6_500))
    );
    tx.commit().await?;
    assert_eq!(
        mem.get_expire("long").await?,
        Expiry::In(Duration::from_millis(6_500))
    );
    assert_eq!(
        mem.get("short").await?,
        None,
        "not written back as persistent, not kept old"
    );
    Ok(())
}

#[tokio::test]
async fn conditional_sets_see_pending_and_backend_keys() -> Result<()> {
    let (mem, clock) = mem();
    mem.set("there", "v".into(), SetOptions::default()).await?;
    let tx = open(&mem, &clock, TransactionMode::Fast);
    let nx = SetOptions::default().condition(cashews::backend::Condition::IfAbsent);
    let xx = SetOptions::default().condition(cashews::backend::Condition::IfPresent);
    assert!(
        !tx.set("there", "x".into(), nx).await?,
        "present on the backend"
    );
    assert!(tx.set("there", "x".into(), xx).await?);
    assert!(!tx.set("fresh", "x".into(), xx).await?);
    assert!(tx.set("fresh", "x".into(), nx).await?);
    assert!(
        !tx.set("fresh", "y".into(), nx).await?,
        "present in the transaction"
    );
    tx.delete("there").await?;
    assert!(
        tx.set("there", "z".into(), nx).await?,
        "deleted in the transaction"
    );
    tx.commit().await?;
    assert_eq!(
        mem.get_many(&["there", "fresh"]).await?,
        vec![v("z"), v("x")]
    );
    Ok(())
}

#[tokio::test]
async fn locks_are_taken_per_key_and_released_at_commit_and_rollback() -> Result<()> {
    let (mem, clock) = mem();
    let tx = open(&mem, &clock, TransactionMode::Locked);
    tx.get("read").await?;
    assert_eq!(
        scan(&mem, ":tx_lock:*").await?,
        Vec::<String>::new(),
        "reads take no lock"
    );
    tx.set("a", "1".into(), SetOptions::default()).await?;
    tx.incr("b", 1, None).await?;
    tx.delete("c").await?;
    assert_eq!(
        scan(&mem, ":tx_lock:*").await?,
        [tx_lock_key("a"), tx_lock_key("b"), tx_lock_key("c")]
    );
    assert_eq!(
        mem.get(&tx_lock_key("a")).await?,
        Some(Bytes::from(tx.id().to_owned()))
    );
    tx.commit().await?;
    no_locks(&mem).await?;
    tx.set("a", "2".into(), SetOptions::default()).await?;
    assert!(
        mem.exists(&tx_lock_key("a")).await?,
        "a commit leaves the transaction usable"
    );
    tx.rollback().await?;
    no_locks(&mem).await?;

    let serial = open(&mem, &clock, TransactionMode::Serializable);
    serial.set("a", "1".into(), SetOptions::default()).await?;
    serial.set("b", "1".into(), SetOptions::default()).await?;
    assert!(mem.exists(SERIALIZABLE_LOCK_KEY).await?);
    assert_eq!(scan(&mem, ":tx_lock:*").await?, Vec::<String>::new());
    serial.rollback().await?;
    no_locks(&mem).await
}

#[tokio::test]
async fn a_lock_held_past_the_timeout_fails_with_a_deadlock_hint() -> Result<()> {
    for mode in [TransactionMode::Locked, TransactionMode::Serializable] {
        let (mem, clock) = mem();
        let first = open(&mem, &clock, mode);
        first
            .set("a", "first".into(), SetOptions::default())
            .await?;
        let options = TransactionOptions::new(mode).timeout(Duration::from_millis(150));
        let second = Transactional::new(mem.clone(), clock.clone(), options);
        let err = second
            .set("a", "second".into(), SetOptions::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::TransactionLocked { .. }), "{err:?}");
        assert!(
            text.contains("probably a deadlock or a long running transaction"),
            "{text}"
        );
        let lock = match mode {
            TransactionMode::Locked => tx_lock_key("a"),
            _ => SERIALIZABLE_LOCK_KEY.to_owned(),
        };
        assert!(text.contains(&lock), "{text}");
        assert!(second.is_empty(), "the refused write is not pending");
        first.commit().await?;
        assert_eq!(mem.get("a").await?, v("first"));
        no_locks(&mem).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_waiting_transaction_proceeds_once_the_lock_is_released() -> Result<()> {
    let (mem, clock) = mem();
    let first = open(&mem, &clock, TransactionMode::Locked);
    first
        .set("a", "first".into(), SetOptions::default())
        .await?;
    let second = open(&mem, &clock, TransactionMode::Locked);
    let waiter = {
        let second = second.clone();
        tokio::spawn(async move {
            second
                .set("a", "second".into(), SetOptions::default())
                .await
        })
    };
    first.commit().await?;
    assert!(waiter.await.expect("the waiter runs")?);
    second.commit().await?;
    assert_eq!(mem.get("a").await?, v("second"));
    no_locks(&mem).await
}

/// Four transactions increment one counter at once, each twice: with locks, no update is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_transactions_lose_no_update() -> Result<()> {
    for mode in [TransactionMode::Locked, TransactionMode::Serializable] {
        let (mem, clock) = mem();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(4));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let tx = open(&mem, &clock, mode);
            let barrier = std::sync::Arc::clone(&barrier);
            tasks.spawn(async move {
                barrier.wait().await;
                tx.incr("incr", 1, None).await?;
                tokio::task::yield_now().await;
                tx.incr("incr", 1, None).await?;
                tx.commit().await
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("a transaction task")?;
        }
        assert_eq!(mem.get("incr").await?, v("8"), "{mode:?}");
        no_locks(&mem).await?;
    }
    Ok(())
}

/// Polls (bounded) until the backend holds no transaction lock.
async fn wait_unlocked(mem: &MemoryBackend) -> Result<()> {
    for _ in 0..500 {
        if scan(mem, ":tx_lock:*").await?.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the dropped transaction's locks were not released");
}

#[tokio::test]
async fn dropping_a_transaction_releases_its_locks_and_commits_nothing() -> Result<()> {
    let (mem, clock) = mem();
    let tx = open(&mem, &clock, TransactionMode::Locked);
    tx.set("a", "1".into(), SetOptions::default()).await?;
    assert!(mem.exists(&tx_lock_key("a")).await?);
    drop(tx);
    wait_unlocked(&mem).await?;
    assert!(!mem.exists("a").await?);
    Ok(())
}

#[tokio::test]
async fn a_cancelled_task_leaves_no_lock_and_nothing_committed() -> Result<()> {
    let (mem, clock) = mem();
    let (wrote, mut written) = tokio::sync::mpsc::channel(1);
    let task = {
        let tx = open(&mem, &clock, TransactionMode::Locked);
        tokio::spawn(async move {
            tx.set("a", "1".into(), SetOptions::default()).await?;
            tx.incr("b", 1, None).await?;
            let _ = wrote.send(()).await;
            std::future::pending::<()>().await;
            tx.commit().await
        })
    };
    written.recv().await.expect("the task wrote");
    assert_eq!(scan(&mem, ":tx_lock:*").await?.len(), 2);
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    wait_unlocked(&mem).await?;
    assert_eq!(mem.get_many(&["a", "b"]).await?, vec![None, None]);
    Ok(())
}

#[tokio::test]
async fn keys_count_and_clear_follow_the_transaction() -> Result<()> {
    let (mem, clock) = mem();
    mem.set("old", "v".into(), SetOptions::default()).await?;
    mem.set("gone", "v".into(), SetOptions::default()).await?;
    let tx = open(&mem, &clock, TransactionMode::Fast);
    tx.set("new", "v".into(), SetOptions::default()).await?;
    tx.set("old", "w".into(), SetOptions::default()).await?;
    tx.delete("gone").await?;
    assert_eq!(tx.keys_count().await?, 2);
    assert_eq!(mem.keys_count().await?, 2);
    tx.clear().await?;
    assert_eq!((tx.keys_count().await?, mem.keys_count().await?), (0, 0));
    assert!(
        tx.is_empty(),
        "clear is not transactional: pending writes go too"
    );
    Ok(())
}

#[tokio::test]
async fn apply_reaches_the_backend_through_middlewares() -> Result<()> {
    let (mem, _clock) = mem();
    mem.set("p!old", "x".into(), SetOptions::default()).await?;
    let layered = Layered::new(
        mem.clone(),
        [middleware::add_prefix("p!"), middleware::size_limit(..=4)],
    );
    let mut batch = Batch::new();
    batch
        .delete("old")
        .set("new", "v".into(), secs(60))
        .set("big", "too large".into(), None);
    layered.apply(&batch).await?;
    assert!(!mem.exists("p!old").await?);
    assert_eq!(mem.get("p!new").await?, v("v"));
    assert_eq!(
        mem.get_expire("p!new").await?,
        Expiry::In(Duration::from_secs(60))
    );
    assert!(
        !mem.exists("p!big").await?,
        "size_limit drops the oversized write"
    );

    // A transaction over the chain commits through it too.
    let (mem, clock) = self::mem();
    let layered = Layered::new(mem.clone(), [middleware::add_prefix("q!")]);
    let tx = Transactional::new(
        layered,
        clock,
        TransactionOptions::new(TransactionMode::Locked),
    );
    tx.set("k", "v".into(), SetOptions::default()).await?;
    assert!(mem.exists(&format!("q!{}", tx_lock_key("k"))).await?);
    tx.commit().await?;
    assert_eq!(mem.get("q!k").await?, v("v"));
    assert_eq!(mem.keys_count().await?, 1, "the lock is gone");
    Ok(())
}
