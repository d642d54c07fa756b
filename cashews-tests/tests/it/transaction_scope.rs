//! `Cache::transaction`: the scenarios of cashews for Python's transaction tests, at the
//! cache level, in every mode and on every backend (memory, disk, Redis, Redis with
//! client-side caching, Redis cluster). Each case gets a fresh cache (its own key prefix on
//! Redis, its own directory on disk) per mode.

use std::time::Duration;

use cashews::transaction::TransactionMode;
use cashews::{Cache, Error};

use crate::tx_isolation::{self, Failure, LineUp};

/// The seconds left of an expiry (0 when it has none).
fn left(expiry: cashews::backend::Expiry) -> Duration {
    match expiry {
        cashews::backend::Expiry::In(left) => left,
        _ => Duration::ZERO,
    }
}

const MODES: [TransactionMode; 3] = [
    TransactionMode::Fast,
    TransactionMode::Locked,
    TransactionMode::Serializable,
];

/// Where a case runs.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Mem,
    #[cfg(feature = "disk")]
    Disk,
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "redis")]
    ClientSide,
    #[cfg(feature = "redis")]
    Cluster,
}

impl Backend {
    /// Whether one commit is applied all at once (not per slot or per shard).
    fn commits_at_once(self) -> bool {
        match self {
            Self::Mem => true,
            #[cfg(feature = "disk")]
            Self::Disk => false,
            #[cfg(feature = "redis")]
            Self::Redis | Self::ClientSide => true,
            #[cfg(feature = "redis")]
            Self::Cluster => false,
        }
    }
}

/// A fresh cache on `backend` (the directory of a disk cache lives as long as the guard), or
/// `None` when the server does not answer outside CI.
async fn fresh(backend: Backend) -> Option<(Cache, Option<tempfile::TempDir>)> {
    let cache = Cache::new();
    let mut dir = None;
    let url = match backend {
        Backend::Mem => "mem://".to_owned(),
        #[cfg(feature = "disk")]
        Backend::Disk => {
            let d = tempfile::tempdir().unwrap();
            let url = format!("disk://?directory={}&shards=4", d.path().display());
            dir = Some(d);
            url
        }
        #[cfg(feature = "redis")]
        Backend::Redis => format!(
            "{}?key_prefix={}",
            crate::support::redis_url(),
            crate::support::unique_prefix("tx")
        ),
        #[cfg(feature = "redis")]
        Backend::ClientSide => format!(
            "{}?client_side=true&key_prefix={}",
            crate::support::redis_url(),
            crate::support::unique_prefix("tx")
        ),
        #[cfg(feature = "redis")]
        Backend::Cluster => format!(
            "{}&key_prefix={}",
            std::env::var("CASHEWS_REDIS_CLUSTER_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:7000?cluster=true".to_owned()),
            crate::support::unique_prefix("tx")
        ),
    };
    cache.setup(&url).unwrap();
    match cache.ping().await {
        Ok(_) => Some((cache, dir)),
        Err(e) => cashews_testkit::skip_unless_ci("transaction_scope", &format!("{url}: {e}")),
    }
}

async fn get(cache: &Cache, key: &str) -> Option<String> {
    cache.get::<String>(key).await.unwrap()
}

async fn set(cache: &Cache, key: &str, value: &str, ttl: &str) {
    assert!(cache.set(key, value, ttl).await.unwrap());
}

/// Scenario 131: writes are seen inside and committed after.
async fn commit(cache: &Cache, mode: TransactionMode) {
    set(cache, "key1", "value1", "10s").await;
    set(cache, "key2", "value2", "20s").await;
    cache
        .transaction()
        .mode(mode)
        .run(async {
            set(cache, "key1", "value2", "30s").await;
            set(cache, "key", "value", "1h").await;
            assert_eq!(get(cache, "key").await.as_deref(), Some("value"));
            assert_eq!(get(cache, "key1").await.as_deref(), Some("value2"));
            assert_eq!(get(cache, "key2").await.as_deref(), Some("value2"));
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(get(cache, "key").await.as_deref(), Some("value"));
    assert_eq!(get(cache, "key1").await.as_deref(), Some("value2"));
    assert_eq!(get(cache, "key2").await.as_deref(), Some("value2"));
    // The TTL written is the transaction's (30 s), not the old one (10 s).
    let left = left(cache.get_expire("key1").await.unwrap());
    assert!(left > Duration::from_secs(20), "{left:?}");
}

/// Scenario 132: an explicit rollback and an error both leave the backend as it was.
async fn rollback(cache: &Cache, mode: TransactionMode) {
    set(cache, "key1", "value1", "1h").await;
    cache
        .transaction()
        .mode(mode)
        .run_with(|tx| async move {
            set(cache, "key1", "value2", "1h").await;
            set(cache, "key", "value", "1h").await;
            tx.rollback().await?;
            assert_eq!(get(cache, "key").await, None);
            assert_eq!(get(cache, "key1").await.as_deref(), Some("value1"));
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(get(cache, "key").await, None);
    assert_eq!(get(cache, "key1").await.as_deref(), Some("value1"));

    let failed = cache
        .transaction()
        .mode(mode)
        .run(async {
            set(cache, "key1", "value2", "1h").await;
            set(cache, "key", "value", "1h").await;
            Err::<(), _>(Failure::Raised)
        })
        .await;
    assert!(
        matches!(failed, Err(Failure::Raised)),
        "the error propagates"
    );
    assert_eq!(get(cache, "key").await, None);
    assert_eq!(get(cache, "key1").await.as_deref(), Some("value1"));
    assert_no_locks(cache).await;
}

/// `get_or_set` inside stores in the transaction; a rollback undoes it.
async fn get_or_set(cache: &Cache, mode: TransactionMode) {
    set(cache, "key1", "value1", "1h").await;
    let tx = cache.transaction().mode(mode);
    tx.clone()
        .run(async {
            let value: String = cache
                .get_or_set("key", "1h", || async { "value".to_owned() })
                .await?;
            assert_eq!(value, "value");
            assert_eq!(get(cache, "key").await.as_deref(), Some("value"));
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(get(cache, "key").await.as_deref(), Some("value"));
    assert_eq!(get(cache, "key1").await.as_deref(), Some("value1"));
    tx.run_with(|tx| async move {
        let value: String = cache
            .get_or_set("other", "1h", || async { "computed".to_owned() })
            .await?;
        assert_eq!(value, "computed");
        tx.rollback().await
    })
    .await
    .unwrap();
    assert_eq!(get(cache, "other").await, None);
}

/// Scenario 133: delete, set_many, delete_many.
async fn delete_and_set_many(cache: &Cache, mode: TransactionMode) {
    set(cache, "key", "value", "1h").await;
    set(cache, "key1", "old", "1h").await;
    set(cache, "key2", "old", "1h").await;
    let check = || async {
        let got: Vec<Option<String>> = cache.get_many(&["key", "key1", "key2"]).await.unwrap();
        assert_eq!(
            got,
            [None, Some("value1".to_owned()), Some("value2".to_owned())]
        );
        assert_eq!(get(cache, "key3").await, None);
    };
    cache
        .transaction()
        .mode(mode)
        .run(async {
            assert!(cache.delete("key1").await?);
            cache
                .set_many(&[("key1", &"value1"), ("key3", &"value3")], "1h")
                .await?;
            cache.delete("key").await?;
            cache.delete_many(&["key2", "key3"]).await?;
            assert_eq!(get(cache, "key1").await.as_deref(), Some("value1"));
            assert_eq!(get(cache, "key2").await, None);
            assert_eq!(get(cache, "key3").await, None);
            set(cache, "key2", "value2", "1h").await;
            check().await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    check().await;
}

/// Scenario 134: delete_match over the backend's keys and the transaction's own.
async fn delete_match(cache: &Cache, mode: TransactionMode) {
    set(cache, "kek", "value", "1h").await;
    set(cache, "key1", "old", "1h").await;
    set(cache, "key2", "old", "1h").await;
    cache
        .transaction()
        .mode(mode)
        .run(async {
            set(cache, "key1", "value1", "1h").await;
            set(cache, "key3", "value3", "1h").await;
            cache.delete_match("key*").await?;
            for key in ["key1", "key2", "key3"] {
                assert_eq!(get(cache, key).await, None, "{key}");
            }
            set(cache, "key2", "value2", "1h").await;
            let got: Vec<Option<String>> = cache.get_many(&["kek", "key1", "key2"]).await?;
            assert_eq!(got, [Some("value".into()), None, Some("value2".into())]);
            let mut matched: Vec<String> = match_keys(cache, "k*").await;
            matched.sort();
            assert_eq!(matched, ["kek", "key2"]);
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(get(cache, "key1").await, None);
    assert_eq!(get(cache, "key2").await.as_deref(), Some("value2"));
    assert_eq!(get(cache, "key3").await, None);
    assert_eq!(get(cache, "kek").await.as_deref(), Some("value"));
}

async fn match_keys(cache: &Cache, pattern: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    let pairs: Vec<(String, String)> = cache.get_match(pattern).try_collect().await.unwrap();
    pairs.into_iter().map(|(key, _)| key).collect()
}

/// Scenario 135: incr from the backend's value, and from 0 after a delete.
async fn incr(cache: &Cache, mode: TransactionMode) {
    for key in ["key1", "key3", "key4"] {
        assert_eq!(cache.incr(key).await.unwrap(), 1);
    }
    cache
        .transaction()
        .mode(mode)
        .run(async {
            assert_eq!(cache.incr("key1").await?, 2);
            assert_eq!(cache.incr("key1").await?, 3);
            assert_eq!(cache.incr("key2").await?, 1);
            cache.delete("key3").await?;
            assert_eq!(cache.incr("key3").await?, 1);
            assert_eq!(cache.incr("key4").await?, 2);
            cache.delete("key4").await?;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(cache.incr("key1").await.unwrap(), 4);
    assert_eq!(cache.incr("key2").await.unwrap(), 2);
    assert_eq!(cache.incr("key3").await.unwrap(), 2);
    assert_eq!(cache.incr("key4").await.unwrap(), 1);
}

/// Scenario 136: expire and get_expire, inside and after.
async fn expire(cache: &Cache, mode: TransactionMode) {
    for key in ["key1", "key3", "key4"] {
        set(cache, key, "value", "0").await;
    }
    let check = || async {
        assert!(left(cache.get_expire("key1").await.unwrap()) >= Duration::from_secs(10));
        assert!(left(cache.get_expire("key2").await.unwrap()) >= Duration::from_secs(11));
        assert_eq!(
            cache.get_expire("key3").await.unwrap(),
            cashews::backend::Expiry::Missing
        );
    };
    cache
        .transaction()
        .mode(mode)
        .run(async {
            cache.delete("key3").await?;
            set(cache, "key2", "value", "100s").await;
            assert!(cache.expire("key1", "11s").await?);
            assert!(cache.expire("key2", "12s").await?);
            assert!(
                !cache.expire("key3", "13s").await?,
                "deleted keys stay deleted"
            );
            check().await;
            assert_eq!(
                cache.get_expire("key4").await?,
                cashews::backend::Expiry::Persistent
            );
            assert_eq!(
                cache.get_expire("key5").await?,
                cashews::backend::Expiry::Missing
            );
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    check().await;
}

/// exists and scan see the merged view.
async fn exists_and_scan(cache: &Cache, mode: TransactionMode) {
    use futures_util::TryStreamExt;
    for key in ["key1", "key3"] {
        set(cache, key, "value", "1h").await;
    }
    let check = || async {
        let mut keys: Vec<String> = cache.scan("k*").try_collect().await.unwrap();
        keys.sort();
        assert_eq!(keys, ["key1", "key2"]);
        assert!(cache.exists("key2").await.unwrap());
        assert!(!cache.exists("key3").await.unwrap());
    };
    cache
        .transaction()
        .mode(mode)
        .run(async {
            cache.delete("key3").await?;
            set(cache, "key2", "value", "1h").await;
            check().await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    check().await;
}

/// Scenario 138: a nested scope is the outer transaction.
async fn nested(cache: &Cache, mode: TransactionMode) {
    set(cache, "key1", "value1", "1h").await;
    set(cache, "key2", "value2", "1h").await;
    cache
        .transaction()
        .mode(mode)
        .run_with(|tx| async move {
            cache.delete("key2").await?;
            set(cache, "key1", "value2", "1h").await;
            cache
                .transaction()
                .mode(TransactionMode::Fast)
                .run_with(|inner| async move {
                    assert_eq!(inner.options().mode, mode, "the outer transaction's");
                    set(cache, "key1", "value3", "1h").await;
                    Ok::<_, Error>(())
                })
                .await?;
            // The inner scope did not commit.
            assert_eq!(get(cache, "key1").await.as_deref(), Some("value3"));
            tx.rollback().await
        })
        .await
        .unwrap();
    assert_eq!(get(cache, "key1").await.as_deref(), Some("value1"));
    assert_eq!(get(cache, "key2").await.as_deref(), Some("value2"));
}

/// Scenario 139: tasks spawned with `cashews::spawn` inside write into the transaction.
async fn spawned(cache: &Cache, mode: TransactionMode) {
    set(cache, "key2", "value2", "1h").await;
    let outside = cache.clone();
    cache
        .transaction()
        .mode(mode)
        .run(async {
            let tasks = [
                ("set", "value3"),
                ("set", "value4"),
                ("delete", ""),
                ("incr", ""),
            ]
            .map(|(what, value)| {
                let cache = cache.clone();
                cashews::spawn(async move {
                    match what {
                        "set" => set(&cache, "key1", value, "1h").await,
                        "delete" => assert!(cache.delete("key2").await.unwrap()),
                        _ => assert_eq!(cache.incr("key3").await.unwrap(), 1),
                    }
                })
            });
            for task in tasks {
                task.await.unwrap();
            }
            // Not committed yet: a task outside the transaction sees nothing.
            let seen = tokio::spawn(async move { outside.exists("key1").await })
                .await
                .unwrap()?;
            assert!(!seen);
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    let key1 = get(cache, "key1").await;
    assert!(
        matches!(key1.as_deref(), Some("value3" | "value4")),
        "{key1:?}"
    );
    assert_eq!(get(cache, "key2").await, None);
    assert_eq!(cache.get::<i64>("key3").await.unwrap(), Some(1));
}

/// Scenario 137: four concurrent transactions, the fourth failing. Fast mode loses updates
/// (every transaction read the counter before any committed: a gate holds them there);
/// locked and serializable modes serialize the writers, so every increment counts.
///
/// Every `k*` key ends with the value of one transaction when the writers are serialized
/// (locked, serializable), or when each commit is applied at once; fast transactions
/// committing together on a cluster or a sharded disk may interleave per slot or shard.
async fn isolation(cache: &Cache, mode: TransactionMode, backend: Backend) {
    set(cache, "key2", "value2", "1h").await;
    set(cache, "key3", "init", "1h").await;
    let gate =
        (mode == TransactionMode::Fast).then(|| std::sync::Arc::new(tokio::sync::Barrier::new(4)));
    let run = |v: &'static str| {
        let cache = cache.clone();
        let gate = gate.clone();
        async move {
            let line_up = LineUp {
                entered: async {},
                all_read: async {
                    if let Some(gate) = &gate {
                        gate.wait().await;
                    }
                },
                all_entered: async {},
            };
            tx_isolation::transaction(&cache, mode, v, line_up).await
        }
    };
    let (a, b, c, d) = tokio::join!(run("v1"), run("v2"), run("v3"), run("v4"));
    for ok in [a, b, c] {
        ok.unwrap();
    }
    assert!(matches!(d, Err(Failure::Raised)));
    let one_value = mode != TransactionMode::Fast || backend.commits_at_once();
    tx_isolation::check(cache, mode, one_value).await;
    assert_no_locks(cache).await;
}

/// No transaction lock is left on the backend.
async fn assert_no_locks(cache: &Cache) {
    for key in ["key", "key1", "key2", "key3", "incr"] {
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
}

macro_rules! cases {
    ($backend:ident, isolation) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn isolation() {
            for mode in MODES {
                let Some((cache, _dir)) = fresh(Backend::$backend).await else {
                    return;
                };
                super::isolation(&cache, mode, Backend::$backend).await;
            }
        }
    };
    ($backend:ident, $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                for mode in MODES {
                    let Some((cache, _dir)) = fresh(Backend::$backend).await else {
                        return;
                    };
                    super::$case(&cache, mode).await;
                }
            }
        )*
    };
}

macro_rules! backend {
    ($module:ident, $backend:ident $(, $feature:literal)?) => {
        $(#[cfg(feature = $feature)])?
        mod $module {
            use super::{Backend, MODES, fresh};
            cases!(
                $backend, commit, rollback, get_or_set, delete_and_set_many, delete_match, incr,
                expire, exists_and_scan, nested, spawned,
            );
            cases!($backend, isolation);
        }
    };
}

backend!(mem, Mem);
backend!(disk, Disk, "disk");
backend!(redis, Redis, "redis");
backend!(client_side, ClientSide, "redis");
backend!(cluster, Cluster, "redis");

/// A locked transaction waits for another's key lock up to its timeout, then fails naming a
/// likely deadlock; the first commits unharmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_the_timeout_fails_the_waiting_transaction() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    let (holding_tx, holding) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .transaction()
                .run(async {
                    set(&cache, "key", "first", "1h").await;
                    holding_tx.send(()).unwrap();
                    release.await.unwrap();
                    Ok::<_, Error>(())
                })
                .await
        })
    };
    holding.await.unwrap();
    let second = cache
        .transaction()
        .timeout(Duration::from_millis(100))
        .run(async {
            cache.set("key", "second", "1h").await?;
            Ok::<_, Failure>(())
        })
        .await;
    // `set` in a transaction reports the lock timeout as its error (not swallowed by safe
    // mode): the scope returned it.
    match second {
        Err(Failure::Cache(Error::TransactionLocked { key, .. })) => {
            assert!(key.ends_with("key"), "{key}");
        }
        other => panic!("expected TransactionLocked, got {other:?}"),
    }
    release_tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(get(&cache, "key").await.as_deref(), Some("first"));
}

/// A transaction whose future is dropped mid-way commits nothing and leaves no lock: the
/// next locked transaction on the same key runs at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_commits_nothing_and_releases_its_locks() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    let (wrote_tx, wrote) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .transaction()
                .run(async {
                    set(&cache, "key", "dropped", "1h").await;
                    wrote_tx.send(()).unwrap();
                    std::future::pending::<()>().await;
                    Ok::<_, Error>(())
                })
                .await
        })
    };
    wrote.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(get(&cache, "key").await, None);
    // Waits (at most the default 10 s) for the lock the dropped transaction held.
    cache
        .transaction()
        .run(async {
            set(&cache, "key", "next", "1h").await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(get(&cache, "key").await.as_deref(), Some("next"));
    assert_no_locks(&cache).await;
}

/// A panic inside the scope rolls back and releases the locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_transaction_rolls_back() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    let task = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .transaction()
                .run(async {
                    set(&cache, "key", "lost", "1h").await;
                    panic!("the scope fails");
                    #[allow(unreachable_code)]
                    Ok::<_, Error>(())
                })
                .await
        })
    };
    assert!(task.await.unwrap_err().is_panic());
    cache
        .transaction()
        .run(async {
            assert_eq!(get(&cache, "key").await, None);
            set(&cache, "key", "next", "1h").await;
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(get(&cache, "key").await.as_deref(), Some("next"));
}

/// A task spawned inside that outlives the scope writes to the cache directly afterwards:
/// nothing lands in a transaction nobody commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_outliving_its_transaction_writes_directly() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let child = cache
        .transaction()
        .mode(TransactionMode::Fast)
        .run(async {
            let cache = cache.clone();
            Ok::<_, Error>(cashews::spawn(async move {
                go.await.unwrap();
                set(&cache, "late", "written", "1h").await;
            }))
        })
        .await
        .unwrap();
    go_tx.send(()).unwrap();
    child.await.unwrap();
    assert_eq!(get(&cache, "late").await.as_deref(), Some("written"));
}

/// The strategies' stores join the transaction: a `#[cashews::cache]` function computed
/// inside is stored at the commit, not before; a rollback forgets it.
#[tokio::test]
async fn strategies_inside_a_transaction_store_at_the_commit() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(|| {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        cache
    });
    #[cashews::cache(ttl = "1h", key = "square:{n}", cache = CACHE)]
    async fn square(n: u64) -> u64 {
        RUNS.fetch_add(1, Ordering::SeqCst);
        n * n
    }
    let cache = &*CACHE;
    cache
        .transaction()
        .run_with(|tx| async move {
            assert_eq!(square(3).await, 9);
            assert_eq!(square(3).await, 9, "a hit on the transaction's own store");
            assert_eq!(RUNS.load(Ordering::SeqCst), 1);
            let outside = cache.clone();
            let seen = tokio::spawn(async move { outside.exists("square:3").await })
                .await
                .unwrap()?;
            assert!(!seen, "not stored before the commit");
            tx.commit().await?;
            assert_eq!(square(4).await, 16);
            tx.rollback().await
        })
        .await
        .unwrap();
    assert!(cache.exists("square:3").await.unwrap());
    assert!(!cache.exists("square:4").await.unwrap(), "rolled back");
    assert_eq!(square(3).await, 9);
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);
}

/// Defaults per cache.
#[test]
fn a_cache_sets_its_transaction_defaults() {
    use cashews::transaction::TransactionOptions;
    let cache = Cache::new();
    assert_eq!(cache.transaction().options(), TransactionOptions::default());
    cache.set_transaction_options(
        TransactionOptions::new(TransactionMode::Serializable).timeout(Duration::from_secs(3)),
    );
    let options = cache.transaction().options();
    assert_eq!(
        (options.mode, options.timeout),
        (TransactionMode::Serializable, Duration::from_secs(3))
    );
    assert_eq!(
        Cache::new().transaction().options().mode,
        TransactionMode::Locked,
        "per cache"
    );
}

mod attribute {
    use std::sync::LazyLock;
    use std::time::Duration;

    use cashews::{Cache, Error};

    static CACHE: LazyLock<Cache> = LazyLock::new(|| {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        cache
    });

    #[cashews::transaction(cache = CACHE)]
    async fn move_item(from: &str, to: &str, fail: bool) -> Result<(), Error> {
        let item: Option<String> = CACHE.get(from).await?;
        let Some(item) = item else {
            return Err(Error::Locked {
                key: from.to_owned(),
            });
        };
        CACHE.delete(from).await?;
        CACHE.set(to, &item, "1h").await?;
        if fail {
            return Err(Error::Locked { key: to.to_owned() });
        }
        Ok(())
    }

    #[cashews::transaction(mode = "serializable", cache = CACHE)]
    async fn move_twice(fail_second: bool) -> Result<(), Error> {
        move_item("box:a", "box:b", false).await?; // joins this transaction
        move_item("box:b", "box:c", fail_second).await
    }

    #[cashews::transaction(mode = "locked", timeout = "100ms", cache = CACHE)]
    async fn write_key(value: &str) -> Result<(), Error> {
        CACHE.set("held", value, "1h").await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_attribute_commits_on_ok_and_rolls_back_on_err() {
        CACHE.set("box:a", "apple", "1h").await.unwrap();
        assert!(move_twice(true).await.is_err());
        // Both moves were one transaction: the first is rolled back with the second.
        assert_eq!(
            CACHE.get::<String>("box:a").await.unwrap().as_deref(),
            Some("apple")
        );
        assert!(!CACHE.exists("box:b").await.unwrap());
        move_twice(false).await.unwrap();
        assert!(!CACHE.exists("box:a").await.unwrap());
        assert_eq!(
            CACHE.get::<String>("box:c").await.unwrap().as_deref(),
            Some("apple")
        );

        // `timeout`: a lock held by another transaction fails the call after 100 ms.
        let (holding_tx, holding) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release) = tokio::sync::oneshot::channel::<()>();
        let holder = tokio::spawn(async move {
            CACHE
                .transaction()
                .run(async {
                    CACHE.set("held", "first", "1h").await?;
                    holding_tx.send(()).unwrap();
                    release.await.unwrap();
                    Ok::<_, Error>(())
                })
                .await
        });
        holding.await.unwrap();
        match write_key("second").await {
            Err(Error::TransactionLocked { waited, .. }) => {
                assert_eq!(waited, Duration::from_millis(100));
            }
            other => panic!("expected TransactionLocked, got {other:?}"),
        }
        release_tx.send(()).unwrap();
        holder.await.unwrap().unwrap();
        write_key("third").await.unwrap();
        assert_eq!(
            CACHE.get::<String>("held").await.unwrap().as_deref(),
            Some("third")
        );
    }
}

/// SPEC §6.7: a stack of strategies under `#[cashews::transaction]` answers correctly twice;
/// the first call's stores are committed with it, so the second call hits.
mod stacked {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use cashews::{Cache, Error};

    static CACHE: LazyLock<Cache> = LazyLock::new(|| {
        let cache = Cache::new();
        cache.setup("mem://").unwrap();
        cache
    });
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    #[cashews::transaction(mode = "locked", cache = CACHE)]
    #[cashews::failover(ttl = "1h", cache = CACHE)]
    #[cashews::cache(ttl = "1h", cache = CACHE)]
    #[cashews::soft(ttl = "1h", soft_ttl = "10m", cache = CACHE)]
    #[cashews::early(ttl = "1h", cache = CACHE)]
    #[cashews::hit(ttl = "1h", cache_hits = 10, cache = CACHE)]
    #[cashews::slice_rate_limit(limit = 10, period = "1m", cache = CACHE)]
    #[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "1m", cache = CACHE)]
    async fn price(item: u32) -> Result<u32, Error> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Ok(item * 100)
    }

    #[cashews::invalidate(key = "*price*", cache = CACHE)]
    #[cashews::transaction(cache = CACHE)]
    async fn reprice() -> Result<(), Error> {
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stack_of_strategies_in_a_transaction_answers_twice() {
        assert_eq!(price(3).await.unwrap(), 300);
        assert_eq!(price(3).await.unwrap(), 300);
        assert_eq!(RUNS.load(Ordering::SeqCst), 1, "the second call hits");
        reprice().await.unwrap();
        assert_eq!(price(3).await.unwrap(), 300);
        assert_eq!(
            RUNS.load(Ordering::SeqCst),
            2,
            "invalidated, computed again"
        );
        assert!(
            !CACHE
                .exists(&cashews::key::tx_lock_key("anything"))
                .await
                .unwrap()
        );
    }
}

/// The commit writes each key's exact remaining TTL, on the cache's clock (a manual clock
/// here): 10 s written, 5.5 s spent inside the transaction, 4.5 s left after the commit.
#[tokio::test]
async fn a_commit_keeps_the_exact_remaining_ttl_on_the_caches_clock() {
    let (cache, clock) = crate::support::manual_cache();
    cache
        .transaction()
        .run(async {
            set(&cache, "key", "value", "10s").await;
            clock.advance(Duration::from_millis(3_500));
            assert_eq!(
                cache.get_expire("key").await?,
                cashews::backend::Expiry::In(Duration::from_millis(6_500))
            );
            set(&cache, "short", "value", "1s").await;
            clock.advance(Duration::from_secs(2));
            assert_eq!(get(&cache, "short").await, None, "expired inside");
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert_eq!(
        cache.get_expire("key").await.unwrap(),
        cashews::backend::Expiry::In(Duration::from_millis(4_500))
    );
    assert!(
        !cache.exists("short").await.unwrap(),
        "not written as no expiry"
    );
}

/// Disable switches act on the cache's routes also when flipped inside a transaction, and a
/// transaction sees switches flipped outside.
#[tokio::test]
async fn disable_switches_are_the_caches_inside_a_transaction() {
    use cashews::Command;
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    set(&cache, "key", "value", "1h").await;
    cache
        .transaction()
        .run(async {
            cache.disable(&[Command::Get]);
            assert_eq!(get(&cache, "key").await, None, "disabled inside");
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert!(cache.is_disabled(&[Command::Get]), "and outside");
    cache
        .transaction()
        .run(async {
            assert_eq!(get(&cache, "key").await, None);
            cache.enable(&[Command::Get]);
            assert_eq!(get(&cache, "key").await.as_deref(), Some("value"));
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
    assert!(!cache.is_disabled(&[Command::Get]));
}
