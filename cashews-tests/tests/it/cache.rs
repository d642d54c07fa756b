//! `Cache`: routing, disable control, safe mode, limits, get_or_set single flight, locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::backend::Expiry;
use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, Command, Error, MemoryBackend};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

fn mem() -> Cache {
    let cache = Cache::new();
    cache.setup("mem://?size=10000").unwrap();
    cache
}

/// A cache on a manual clock, so TTL tests move time instead of sleeping.
fn mem_with_clock() -> (Cache, Clock) {
    let clock = Clock::manual();
    let cache = Cache::new();
    let backend = MemoryBackend::with_clock(MemoryOptions::with_size(10_000), clock.clone());
    cache
        .setup_backend("", backend, CacheConfig::default())
        .unwrap();
    (cache, clock)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[tokio::test]
async fn unconfigured_cache_says_to_run_setup() {
    let cache = Cache::new();
    let err = cache.get::<String>("test").await.unwrap_err();
    assert!(matches!(err, Error::NotConfigured { key: None }));
    assert!(err.to_string().contains("setup"));
    // disable on an unconfigured cache is a silent no-op
    cache.disable(&[]);
    assert!(!cache.is_full_disabled());
}

#[tokio::test]
async fn set_then_get_round_trips_typed_values() {
    let cache = mem();
    let user = User {
        id: 7,
        name: "ada".into(),
    };
    assert!(cache.set("k", &user, "1h").await.unwrap());
    assert_eq!(cache.get::<User>("k").await.unwrap(), Some(user));
    assert_eq!(cache.get::<User>("absent").await.unwrap(), None);
    // Text that looks like a number stays text; bytes stay bytes.
    cache.set("s", "1", 60).await.unwrap();
    assert_eq!(
        cache.get::<String>("s").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(cache.get::<i64>("s").await.unwrap(), None);
    cache
        .set("b", &serde_bytes::ByteBuf::from(b"10".to_vec()), 60)
        .await
        .unwrap();
    assert_eq!(
        cache
            .get::<serde_bytes::ByteBuf>("b")
            .await
            .unwrap()
            .map(|b| b.into_vec()),
        Some(b"10".to_vec())
    );
}

#[tokio::test]
async fn a_value_of_another_type_is_a_miss() {
    let cache = mem();
    cache.set("k", &vec![1, 2, 3], 60).await.unwrap();
    assert_eq!(cache.get::<User>("k").await.unwrap(), None);
    assert_eq!(
        cache.get::<Vec<i32>>("k").await.unwrap(),
        Some(vec![1, 2, 3])
    );
}

#[tokio::test]
async fn caller_mutation_after_set_does_not_reach_the_cache() {
    let cache = mem();
    let mut list = vec![1, 2, 3];
    cache.set("key", &list, 60).await.unwrap();
    list.push(4);
    assert_eq!(
        cache.get::<Vec<i32>>("key").await.unwrap(),
        Some(vec![1, 2, 3])
    );
}

#[tokio::test]
async fn integers_round_trip_including_negative_and_incr_reads_them() {
    let cache = mem();
    cache.set("neg", &-5i64, 60).await.unwrap();
    assert_eq!(cache.get::<i64>("neg").await.unwrap(), Some(-5));
    assert_eq!(cache.incr("n").await.unwrap(), 1);
    assert_eq!(cache.incr("n").await.unwrap(), 2);
    assert_eq!(cache.incr_by("n", 5, None::<u64>).await.unwrap(), 7);
    assert_eq!(cache.get::<i64>("n").await.unwrap(), Some(7));
    // A value set through the codec can be incremented.
    cache.set("counter", &10u32, 60).await.unwrap();
    assert_eq!(cache.incr("counter").await.unwrap(), 11);
}

#[tokio::test]
async fn incr_on_text_fails_and_keeps_the_value() {
    let cache = mem();
    cache.set("incr", "test", 60).await.unwrap();
    let err = cache.incr("incr").await.unwrap_err();
    assert!(err.is_backend(), "{err}");
    assert_eq!(
        cache.get::<String>("incr").await.unwrap().as_deref(),
        Some("test")
    );
}

#[tokio::test]
async fn safe_mode_turns_backend_failures_into_neutral_replies() {
    let cache = Cache::new();
    cache.setup("mem://?suppress=true").unwrap();
    cache.set("incr", "test", 60).await.unwrap();
    // A real failure of the memory backend (wrong type), swallowed: neutral 0, value intact.
    assert_eq!(cache.incr("incr").await.unwrap(), 0);
    assert_eq!(
        cache.get::<String>("incr").await.unwrap().as_deref(),
        Some("test")
    );
    // ping always reports, even in safe mode.
    assert_eq!(&cache.ping().await.unwrap()[..], b"PONG");
}

#[tokio::test]
async fn keys_route_to_the_longest_matching_prefix() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.setup_prefix("user", "mem://").unwrap();
    cache.setup_prefix("user:admin", "mem://").unwrap();
    for key in ["user:admin:1", "user:1", "users", "useradmin", "x"] {
        cache.set(key, key, 60).await.unwrap();
    }
    // Disabling a prefix shows which backend each key went to.
    cache.disable_prefix("user:admin", &[]).unwrap();
    assert_eq!(cache.get::<String>("user:admin:1").await.unwrap(), None);
    for key in ["user:1", "users", "useradmin", "x"] {
        assert_eq!(
            cache.get::<String>(key).await.unwrap().as_deref(),
            Some(key)
        );
    }
    cache.enable_prefix("user:admin", &[]).unwrap();
    cache.disable_prefix("user", &[]).unwrap();
    assert_eq!(
        cache
            .get::<String>("user:admin:1")
            .await
            .unwrap()
            .as_deref(),
        Some("user:admin:1")
    );
    for key in ["user:1", "users", "useradmin"] {
        assert_eq!(cache.get::<String>(key).await.unwrap(), None, "{key}");
    }
    assert_eq!(
        cache.get::<String>("x").await.unwrap().as_deref(),
        Some("x")
    );
}

#[tokio::test]
async fn get_many_and_set_many_span_backends_in_caller_order() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.setup_prefix("-", "mem://").unwrap();
    cache.set("key", "value", 60).await.unwrap();
    cache.set("-:key", "-value", 60).await.unwrap();
    assert_eq!(
        cache
            .get_many::<String>(&["-:key", "key", "none"])
            .await
            .unwrap(),
        vec![Some("-value".to_owned()), Some("value".to_owned()), None]
    );
    cache
        .set_many(&[("-:a", &1), ("b", &2)], "1m")
        .await
        .unwrap();
    assert_eq!(
        cache.get_many::<i32>(&["b", "-:a"]).await.unwrap(),
        vec![Some(2), Some(1)]
    );
    assert_eq!(cache.get_keys_count().await.unwrap(), 4);
    assert_eq!(cache.delete_many(&["-:a", "b", "zz"]).await.unwrap(), 2);
}

#[tokio::test]
async fn a_disabled_prefix_backend_starts_empty_and_stays_separate() {
    // SPEC §9 scenario 9.
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.set("-:key", "value", 60).await.unwrap();
    cache.setup_prefix("-", "://").unwrap();
    assert!(!cache.is_disabled_prefix("", &[]).unwrap());
    assert!(cache.is_disabled_prefix("-", &[]).unwrap());
    cache.set("key", "value", 60).await.unwrap();
    cache.set("-:key", "new", 60).await.unwrap();
    assert_eq!(
        cache.get::<String>("key").await.unwrap().as_deref(),
        Some("value")
    );
    assert_eq!(cache.get::<String>("-:key").await.unwrap(), None);
    cache.enable_prefix("-", &[]).unwrap();
    assert_eq!(cache.get::<String>("-:key").await.unwrap(), None);
}

#[tokio::test]
async fn keys_count_and_clear_cover_every_backend() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.setup_prefix("a:", "mem://").unwrap();
    cache.setup_prefix("b:", "mem://").unwrap();
    for key in ["x", "a:1", "b:1"] {
        cache.set(key, "v", 60).await.unwrap();
    }
    assert_eq!(cache.get_keys_count().await.unwrap(), 3);
    cache.clear().await.unwrap();
    assert_eq!(cache.get_keys_count().await.unwrap(), 0);
}

#[tokio::test]
async fn disabling_single_commands() {
    let cache = mem();
    cache.set("test", &10, 60).await.unwrap();
    cache.disable(&[Command::Incr]);
    assert_eq!(cache.incr("test").await.unwrap(), 0);
    assert_eq!(cache.get::<i64>("test").await.unwrap(), Some(10));
    cache.enable(&[Command::Incr]);
    assert_eq!(cache.incr("test").await.unwrap(), 11);

    cache.disable(&[Command::Get]);
    assert!(cache.is_disabled(&[]));
    assert!(cache.is_disabled(&[Command::Get]));
    assert!(!cache.is_disabled(&[Command::Set]));
    assert!(!cache.is_full_disabled());
    assert_eq!(cache.get::<i64>("test").await.unwrap(), None);
    cache.disable(&[]);
    assert!(cache.is_full_disabled());
    assert!(!cache.set("other", &1, 60).await.unwrap());
    cache.enable(&[Command::Get]);
    assert!(!cache.is_full_disabled());
    assert_eq!(cache.get::<i64>("test").await.unwrap(), Some(11));
    cache.enable(&[]);
    assert!(!cache.is_disabled(&[]));
}

#[tokio::test]
async fn disabled_get_many_returns_a_miss_per_key() {
    let cache = mem();
    cache.set("a", &1, 60).await.unwrap();
    cache.disable(&[Command::GetMany]);
    assert_eq!(
        cache.get_many::<i32>(&["a", "b"]).await.unwrap(),
        vec![None, None]
    );
}

#[tokio::test]
async fn a_disabling_scope_affects_only_its_task() {
    let cache = mem();
    let inner = cache.clone();
    tokio::spawn(async move {
        inner.set("test", "1", 60).await.unwrap();
        inner
            .disabling(&[Command::Set], async {
                assert!(!inner.set("test", "2", 60).await.unwrap());
                assert!(inner.is_disabled(&[Command::Set]));
            })
            .await;
    })
    .await
    .unwrap();
    assert!(!cache.is_disabled(&[]));
    assert_eq!(
        cache.get::<String>("test").await.unwrap().as_deref(),
        Some("1")
    );
    cache.set("test", "3", 60).await.unwrap();
    assert_eq!(
        cache.get::<String>("test").await.unwrap().as_deref(),
        Some("3")
    );
    // A scope around a get makes it miss; nesting adds commands.
    let (outer, nested) = cache
        .disabling(&[Command::Incr], async {
            let outer = cache.get::<String>("test").await.unwrap();
            let nested = cache
                .disabling(&[Command::Get], async {
                    cache.get::<String>("test").await.unwrap()
                })
                .await;
            (outer, nested)
        })
        .await;
    assert_eq!((outer.as_deref(), nested), (Some("3"), None));
}

#[tokio::test]
async fn key_and_value_limits_give_clear_errors() {
    let cache = Cache::new();
    cache
        .setup("mem://?max_key_length=16&max_value_size=64")
        .unwrap();
    let err = cache.set("", "v", 60).await.unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err}");
    let long = "k".repeat(17);
    let err = cache.get::<String>(&long).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyTooLong {
                len: 17,
                limit: 16,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("max_key_length"));
    let err = cache.set("big", &"x".repeat(100), 60).await.unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { limit: 64, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_value_size"));
    // Other keys are untouched by the failures.
    cache.set("ok", "small", 60).await.unwrap();
    assert_eq!(
        cache.get::<String>("ok").await.unwrap().as_deref(),
        Some("small")
    );
    assert_eq!(cache.get::<String>("big").await.unwrap(), None);
}

#[tokio::test]
async fn bad_ttls_are_rejected_before_touching_the_backend() {
    let cache = mem();
    for bad in ["1m10", "", "1.5s", "5x", "m"] {
        let err = cache.set("k", "v", bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidTtl(_)), "{bad:?}: {err}");
        assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
    }
    let err = cache.set("k", "v", -1).await.unwrap_err();
    assert!(err.to_string().contains("non-negative"), "{err}");
    assert!(!cache.exists("k").await.unwrap());
}

#[tokio::test]
async fn ttls_expire_on_the_manual_clock() {
    let (cache, clock) = mem_with_clock();
    cache.set("key", "v", "50ms").await.unwrap();
    assert_eq!(
        cache.get::<String>("key").await.unwrap().as_deref(),
        Some("v")
    );
    clock.advance(Duration::from_millis(60));
    assert_eq!(cache.get::<String>("key").await.unwrap(), None);
    assert!(!cache.exists("key").await.unwrap());
    // Expired counts as absent for NX too (PORT of SPEC §2.4).
    assert!(cache.set_if_absent("key", "again", 60).await.unwrap());

    cache.set("m", "v", "1m").await.unwrap();
    assert_eq!(
        cache.get_expire("m").await.unwrap().as_secs_rounded(),
        Some(60)
    );
    assert_eq!(cache.get_expire("absent").await.unwrap(), Expiry::Missing);
    cache.set("p", "v", None::<u64>).await.unwrap();
    assert_eq!(cache.get_expire("p").await.unwrap(), Expiry::Persistent);
    assert!(cache.expire("p", 1).await.unwrap());
    assert_eq!(
        cache.get_expire("p").await.unwrap().as_secs_rounded(),
        Some(1)
    );
    clock.advance(Duration::from_secs(2));
    assert!(!cache.exists("p").await.unwrap());
}

#[tokio::test]
async fn incr_applies_ttl_only_when_it_creates_the_key() {
    let (cache, clock) = mem_with_clock();
    assert_eq!(cache.incr_by("key", 1, 10).await.unwrap(), 1);
    assert_eq!(
        cache.get_expire("key").await.unwrap().as_secs_rounded(),
        Some(10)
    );
    clock.advance(Duration::from_secs(3));
    cache.incr_by("key", 1, 100).await.unwrap();
    let left = cache
        .get_expire("key")
        .await
        .unwrap()
        .as_secs_rounded()
        .unwrap();
    assert!(left <= 10, "{left}");
}

#[tokio::test]
async fn patterns_are_redis_globs() {
    let cache = mem();
    for key in [
        "pref:test:test",
        "pref:value:test",
        "pref:-:test",
        "pref:*:test",
        "ppref:test:test",
        "pref:test:tests",
    ] {
        cache.set(key, key, 60).await.unwrap();
    }
    let mut keys: Vec<String> = cache
        .scan("pref:*:test")
        .map(|k| k.unwrap())
        .collect()
        .await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "pref:*:test",
            "pref:-:test",
            "pref:test:test",
            "pref:value:test"
        ]
    );
    let mut pairs: Vec<(String, String)> = cache
        .get_match("pref:*:test")
        .map(|p| p.unwrap())
        .collect()
        .await;
    pairs.sort();
    assert!(pairs.iter().all(|(k, v)| k == v));
    assert_eq!(pairs.len(), 4);
    assert_eq!(cache.get_match::<String>("not_exists:*").count().await, 0);
    assert_eq!(cache.delete_match("pref:*:test").await.unwrap(), 4);
    assert_eq!(cache.get_keys_count().await.unwrap(), 2);
}

#[tokio::test]
async fn get_match_skips_counters_of_other_types_and_bits() {
    let cache = mem();
    cache.incr("key").await.unwrap();
    cache.incr_bits("key2", &[0], 1, 1).await.unwrap();
    let pairs: Vec<(String, i64)> = cache.get_match("*").map(|p| p.unwrap()).collect().await;
    assert_eq!(pairs, vec![("key".to_owned(), 1)]);
    assert_eq!(
        cache.get_many::<i64>(&["key", "key2"]).await.unwrap(),
        vec![Some(1), None]
    );
}

#[tokio::test]
async fn memory_eviction_keeps_recently_read_keys() {
    // SPEC §9 scenario 33, in spirit: with size 10, reading key:0..4 then adding 5 new keys
    // keeps key:0..4. (Our policy is S3-FIFO-like, not strict LRU: chosen for hit ratio.)
    let cache = Cache::new();
    cache.setup("mem://?size=10").unwrap();
    for i in 0..10 {
        cache
            .set(&format!("key:{i}"), &i, None::<u64>)
            .await
            .unwrap();
    }
    for i in 0..5 {
        assert_eq!(
            cache.get::<i32>(&format!("key:{i}")).await.unwrap(),
            Some(i)
        );
    }
    for i in 10..15 {
        cache
            .set(&format!("key:{i}"), &i, None::<u64>)
            .await
            .unwrap();
    }
    assert!(cache.get_keys_count().await.unwrap() <= 10);
    for i in 0..5 {
        assert_eq!(
            cache.get::<i32>(&format!("key:{i}")).await.unwrap(),
            Some(i),
            "key:{i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_or_set_runs_the_origin_once_for_1000_concurrent_callers() {
    let cache = mem();
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(1000));
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (cache, runs, barrier) = (cache.clone(), runs.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            cache
                .get_or_set("cold", "1m", move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    42u32
                })
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 42);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get::<u32>("cold").await.unwrap(), Some(42));
}

#[tokio::test]
async fn get_or_set_survives_the_first_caller_being_cancelled() {
    let cache = mem();
    let runs = Arc::new(AtomicUsize::new(0));
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let r = runs.clone();
    let first = cache.get_or_set("k", "1m", move || async move {
        r.fetch_add(1, Ordering::SeqCst);
        let _ = wait.await;
        7u8
    });
    // The first caller gives up (timeout) while the load is in flight.
    assert!(
        tokio::time::timeout(Duration::from_millis(20), first)
            .await
            .is_err()
    );
    let r = runs.clone();
    let second = cache.get_or_set("k", "1m", move || async move {
        r.fetch_add(1, Ordering::SeqCst);
        0u8
    });
    release.send(()).unwrap();
    assert_eq!(second.await.unwrap(), 7);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(7));
}

#[tokio::test]
async fn get_or_set_reports_a_panicking_origin_and_retries_next_time() {
    let cache = mem();
    let err = cache
        .get_or_set("k", "1m", || async {
            if true {
                panic!("origin exploded");
            }
            1u8
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OriginFailed { .. }), "{err}");
    let v = cache.get_or_set("k", "1m", || async { 2u8 }).await.unwrap();
    assert_eq!(v, 2);
}

#[tokio::test]
async fn get_or_set_keeps_an_existing_value() {
    let cache = mem();
    cache.set("key", "V", 60).await.unwrap();
    let v: String = cache
        .get_or_set("key", 60, || async { "other".to_owned() })
        .await
        .unwrap();
    assert_eq!(v, "V");
}

#[tokio::test]
async fn locks_are_exclusive_and_released_by_their_holder_only() {
    let cache = mem();
    let guard = cache.lock("lock", "10s").await.unwrap();
    assert!(cache.is_locked("lock").await.unwrap());
    let err = cache.try_lock("lock", "10s").await.unwrap_err();
    assert!(matches!(err, Error::Locked { .. }));
    assert!(!cache.unlock("lock", "not-the-token").await.unwrap());
    assert!(cache.is_locked("lock").await.unwrap());
    assert!(guard.release().await.unwrap());
    assert!(!cache.is_locked("lock").await.unwrap());
    assert!(
        !cache
            .is_locked_wait("nolock", Duration::from_millis(200))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_dropped_guard_releases_its_lock() {
    let cache = mem();
    {
        let _guard = cache.lock("job", "10s").await.unwrap();
    }
    // Released by a background task: wait for it with a bounded poll.
    assert!(
        !cache
            .is_locked_wait("job", Duration::from_secs(2))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_serialises_concurrent_holders() {
    let cache = mem();
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (cache, inside, max_inside) = (cache.clone(), inside.clone(), max_inside.clone());
        tasks.push(tokio::spawn(async move {
            let guard = cache.lock("serial", "10s").await.unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            max_inside.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            inside.fetch_sub(1, Ordering::SeqCst);
            guard.release().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(max_inside.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn lock_on_a_disabled_cache_runs_degraded() {
    let cache = Cache::new();
    cache.setup("://").unwrap();
    let guard = cache.lock("job", "10s").await.unwrap();
    assert!(guard.is_degraded());
}

#[tokio::test]
async fn the_default_cache_is_shared() {
    cashews::cache().setup("mem://").unwrap();
    cashews::cache().set("shared:key", "v", 60).await.unwrap();
    let other_handle = cashews::cache().clone();
    assert_eq!(
        other_handle
            .get::<String>("shared:key")
            .await
            .unwrap()
            .as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn bits_windows_and_sets_through_the_cache() {
    let cache = mem();
    assert_eq!(
        cache
            .get_bits("test", &[0, 2, 10, 50_000], 1)
            .await
            .unwrap(),
        vec![0; 4]
    );
    cache.incr_bits("test", &[0, 1, 4], 1, 1).await.unwrap();
    assert_eq!(
        cache.get_bits("test", &[0, 1, 2, 3, 4], 1).await.unwrap(),
        vec![1, 1, 0, 0, 1]
    );
    assert_eq!(cache.incr_bits("sat", &[0], 2, 5).await.unwrap(), vec![3]);
    assert_eq!(cache.incr_bits("sat", &[0], 2, -1).await.unwrap(), vec![2]);
    let steps = [
        ((0, 5, 10), 1),
        ((1, 6, 10), 2),
        ((2, 7, 10), 3),
        ((3, 8, 10), 4),
        ((5, 10, 4), 4),
        ((9, 11, 10), 1),
        ((15, 20, 10), 1),
        ((9, 11, 10), 1),
    ];
    for ((start, end, max), want) in steps {
        assert_eq!(
            cache
                .slice_incr("w", start, end, max, None::<u64>)
                .await
                .unwrap(),
            want,
            "({start},{end},{max})"
        );
    }
    assert_eq!(
        cache
            .set_add("S", &["1", "2", "3"], None::<u64>)
            .await
            .unwrap(),
        3
    );
    let two = cache.set_pop("S", 2).await.unwrap();
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    assert_eq!(cache.set_pop("S", 100).await.unwrap().len(), 1);
    assert!(cache.set_pop("S", 100).await.unwrap().is_empty());
}

/// A recursive origin that asks for its own key must not wait on itself (cachebox#54).
fn recursive(cache: Cache, depth: u32) -> futures_util::future::BoxFuture<'static, u32> {
    Box::pin(async move {
        if depth == 0 {
            return 0;
        }
        let c = cache.clone();
        cache
            .get_or_set("recursive", "1m", move || async move {
                recursive(c, depth - 1).await + 1
            })
            .await
            .unwrap()
    })
}

#[tokio::test]
async fn get_or_set_reentry_with_the_same_key_does_not_deadlock() {
    let cache = mem();
    let value = tokio::time::timeout(Duration::from_secs(5), recursive(cache.clone(), 3))
        .await
        .expect("re-entrant get_or_set deadlocked");
    assert_eq!(value, 3);
}
