//! A Redis `Cache` that outlives the Tokio runtime it first ran on (a `static` cache shared by
//! several `#[tokio::test]`s, each with its own runtime): redis-rs drives connections from
//! tasks of the runtime that opened them, so those connections die with it. The next runtime
//! must get working commands at once (not errors, not misses in safe mode), and the
//! client-side tier must not serve values it can no longer hear invalidations for.
//!
//! Each test builds two runtimes by hand, one after the other, and uses `suppress=false` so
//! that a failing command is an error here rather than a neutral reply.

use cashews::Cache;
use cashews::backend::{Backend, ClientSideRedis, RedisBackend, SetOptions};
use cashews::config::{CacheConfig, RedisOptions};

use crate::support::{redis_url as url, unique_prefix};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Whether Redis answers (on a runtime of its own); prints the skip reason when not.
fn redis_up(case: &str) -> bool {
    let up = runtime().block_on(async {
        RedisBackend::new(RedisOptions::new(url()))
            .unwrap()
            .ping(b"")
            .await
    });
    match up {
        Ok(_) => true,
        Err(e) => {
            cashews_testkit::skip_unless_ci::<()>(case, &format!("no Redis at {}: {e}", url()));
            false
        }
    }
}

#[test]
fn the_pool_reconnects_on_the_next_runtime_at_once() {
    if !redis_up("the_pool_reconnects_on_the_next_runtime_at_once") {
        return;
    }
    let prefix = unique_prefix("rt");
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?suppress=false&key_prefix={prefix}&max_connections=2",
            url()
        ))
        .unwrap();
    let first = runtime();
    first.block_on(async {
        assert!(cache.set("k", &1_u32, "1m").await.unwrap());
        assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
    });
    drop(first);
    // A new runtime: the first commands must work (before the fix they failed with a dropped
    // connection until the managers noticed).
    runtime().block_on(async {
        for i in 0..20_u32 {
            assert!(cache.set("k", &i, "1m").await.unwrap(), "set {i}");
            assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(i), "get {i}");
        }
        cache.clear().await.unwrap();
    });
}

#[test]
fn the_client_side_tier_serves_nothing_stale_on_the_next_runtime() {
    if !redis_up("the_client_side_tier_serves_nothing_stale_on_the_next_runtime") {
        return;
    }
    let prefix = unique_prefix("rt");
    let cache = Cache::new();
    let tier =
        ClientSideRedis::new(RedisOptions::new(url()).with_key_prefix(prefix.clone())).unwrap();
    let config: CacheConfig = "mem://?suppress=false".parse().unwrap();
    cache.setup_backend("", tier.clone(), config).unwrap();
    let first = runtime();
    first.block_on(async {
        tier.connect().await.unwrap();
        cache.set_raw("k", "old".into(), 60).await.unwrap();
        let hits = tier.stats().hits;
        assert_eq!(
            cache.get_raw("k").await.unwrap().as_deref(),
            Some(&b"old"[..])
        );
        assert_eq!(
            tier.stats().hits,
            hits + 1,
            "our own write is served locally"
        );
    });
    drop(first);
    runtime().block_on(async {
        // Another client changes the key; its invalidation could only reach the link of the
        // dead runtime.
        let other =
            RedisBackend::new(RedisOptions::new(url()).with_key_prefix(prefix.clone())).unwrap();
        other
            .set("k", "new".into(), SetOptions::default())
            .await
            .unwrap();
        assert_eq!(
            cache.get_raw("k").await.unwrap().as_deref(),
            Some(&b"new"[..]),
            "the tier served a value whose invalidation it could not hear"
        );
        cache.clear().await.unwrap();
    });
}
