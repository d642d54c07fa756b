//! The client-side tier of the Redis backend (`client_side=true`): coherence with another
//! client's writes, write-through of our own, link drops, a server killed and restarted, and
//! option errors.
//!
//! Every test works under its own `key_prefix` (pid + salt), which is also its tracking
//! `PREFIX`, on the server at `CASHEWS_REDIS_URL`, except the kill test, which spawns its own
//! `redis-server` on a free loopback port. Ordering, not timing: after another client's write
//! is acknowledged, one `ping` through our tracking connection proves its invalidation arrived
//! (Redis queues it before later replies on that connection).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use cashews::backend::{Backend, ClientSideRedis, RedisBackend, SetOptions};
use cashews::config::{CacheConfig, RedisOptions};
use cashews::{Bytes, Cache, Error};

use crate::support::{SpawnedRedis, redis_url as url, unique_prefix};

/// Our client-side backend and another plain client, both under a fresh prefix, with the
/// tracking link up; `None` (skip) when Redis is missing outside CI.
async fn pair(case: &str) -> Option<(ClientSideRedis, RedisBackend)> {
    let options = RedisOptions::new(url()).with_key_prefix(unique_prefix("csit"));
    let ours = ClientSideRedis::new(options.clone()).unwrap();
    let other = RedisBackend::new(options).unwrap();
    if let Err(e) = other.ping(b"").await {
        return cashews_testkit::skip_unless_ci(case, &format!("no Redis at {}: {e}", url()));
    }
    ours.connect().await.unwrap();
    Some((ours, other))
}

fn text(value: Option<Bytes>) -> Option<String> {
    value.map(|v| String::from_utf8(v.to_vec()).unwrap())
}

/// Bounded polling of a condition (never a bare sleep): up to 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn cleanup(other: &RedisBackend) {
    other.clear().await.unwrap();
}

#[tokio::test]
async fn another_clients_write_is_never_served_stale() {
    let Some((ours, other)) = pair("another_clients_write_is_never_served_stale").await else {
        return;
    };
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    for key in &keys {
        other
            .set(key, "v0".into(), SetOptions::default())
            .await
            .unwrap();
    }
    for round in 1..=500_u32 {
        let key = keys[round as usize % keys.len()].as_str();
        // Cache the current value locally (a miss, or a hit from an earlier round), then a
        // local hit.
        let cached = text(ours.get(key).await.unwrap()).unwrap();
        let before = ours.stats().hits;
        assert_eq!(text(ours.get(key).await.unwrap()), Some(cached.clone()));
        assert_eq!(
            ours.stats().hits,
            before + 1,
            "round {round}: second read is local"
        );
        // Another client overwrites it; once acknowledged, a ping on our link is the barrier.
        let new = format!("v{round}");
        other
            .set(key, Bytes::from(new.clone()), SetOptions::default())
            .await
            .unwrap();
        ours.ping(b"").await.unwrap();
        assert_eq!(
            text(ours.get(key).await.unwrap()),
            Some(new),
            "round {round}: the old value `{cached}` was served after its invalidation"
        );
    }
    let stats = ours.stats();
    assert!(stats.invalidations >= 500, "{stats:?}");
    assert!(stats.linked && stats.links == 1, "{stats:?}");
    cleanup(&other).await;
}

#[tokio::test]
async fn concurrent_readers_never_see_a_value_older_than_the_barrier() {
    let Some((ours, other)) =
        pair("concurrent_readers_never_see_a_value_older_than_the_barrier").await
    else {
        return;
    };
    // Readers hammer the key (racing fills against invalidations) while a writer bumps a
    // counter value; a read that starts after the barrier of version n must see at least n.
    other
        .set("hot", "0".into(), SetOptions::default())
        .await
        .unwrap();
    let confirmed = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (ours, confirmed) = (ours.clone(), Arc::clone(&confirmed));
        readers.push(tokio::spawn(async move {
            loop {
                let floor = confirmed.load(Ordering::SeqCst);
                let got: u64 = text(ours.get("hot").await.unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(
                    got >= floor,
                    "read {got} after version {floor} was confirmed"
                );
                if floor >= 300 {
                    return;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    for version in 1..=300_u64 {
        other
            .set(
                "hot",
                Bytes::from(version.to_string()),
                SetOptions::default(),
            )
            .await
            .unwrap();
        ours.ping(b"").await.unwrap();
        confirmed.store(version, Ordering::SeqCst);
    }
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(ours.stats().hits > 0, "{:?}", ours.stats());
    cleanup(&other).await;
}

#[tokio::test]
async fn own_writes_are_read_back_locally() {
    let Some((ours, other)) = pair("own_writes_are_read_back_locally").await else {
        return;
    };
    let before = ours.stats();
    ours.set(
        "a",
        "1".into(),
        SetOptions::ttl(Some(Duration::from_secs(60))),
    )
    .await
    .unwrap();
    ours.set_many(&[("b", "2".into()), ("c", "3".into())], None)
        .await
        .unwrap();
    assert_eq!(text(ours.get("a").await.unwrap()).as_deref(), Some("1"));
    let many = ours.get_many(&["b", "c"]).await.unwrap();
    assert_eq!(many, vec![Some("2".into()), Some("3".into())]);
    let after = ours.stats();
    assert_eq!(after.hits - before.hits, 3, "{after:?}");
    assert_eq!(
        after.misses, before.misses,
        "no read went to Redis: {after:?}"
    );
    assert!(ours.exists("c").await.unwrap());
    assert_eq!(
        ours.stats().hits,
        after.hits + 1,
        "exists is answered locally too"
    );
    // Redis has them too, with the TTL.
    assert_eq!(text(other.get("a").await.unwrap()).as_deref(), Some("1"));
    assert!(matches!(
        other.get_expire("a").await.unwrap(),
        cashews::backend::Expiry::In(_)
    ));
    // Our other writes drop the local copy, so the next read goes to Redis.
    assert_eq!(ours.incr("n", 2, None).await.unwrap(), 2);
    assert_eq!(text(ours.get("n").await.unwrap()).as_deref(), Some("2"));
    assert_eq!(ours.incr("n", 3, None).await.unwrap(), 5);
    assert_eq!(text(ours.get("n").await.unwrap()).as_deref(), Some("5"));
    assert!(ours.delete("a").await.unwrap());
    assert_eq!(ours.get("a").await.unwrap(), None);
    assert_eq!(ours.delete_match("b*").await.unwrap(), 1);
    assert_eq!(ours.get("b").await.unwrap(), None);
    assert_eq!(text(ours.get("c").await.unwrap()).as_deref(), Some("3"));
    // A failed conditional write leaves the value as Redis has it.
    assert!(
        !ours
            .set(
                "c",
                "x".into(),
                SetOptions::default().condition(cashews::backend::Condition::IfAbsent)
            )
            .await
            .unwrap()
    );
    assert_eq!(text(ours.get("c").await.unwrap()).as_deref(), Some("3"));
    cleanup(&other).await;
}

/// The Redis `CLIENT KILL ID` of our tracking connection, from another connection.
async fn kill_link(ours: &ClientSideRedis) {
    let id = ours.stats().link_client_id.unwrap();
    let client = redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 1);
}

#[tokio::test]
async fn a_dropped_link_flushes_the_tier_and_nothing_old_is_served() {
    let Some((ours, other)) =
        pair("a_dropped_link_flushes_the_tier_and_nothing_old_is_served").await
    else {
        return;
    };
    for i in 0..20 {
        let key = format!("k{i}");
        ours.set(&key, "old".into(), SetOptions::default())
            .await
            .unwrap();
        assert_eq!(text(ours.get(&key).await.unwrap()).as_deref(), Some("old"));
    }
    let before = ours.stats();
    assert_eq!(before.local_entries, 20, "{before:?}");
    kill_link(&ours).await;
    until("the link drop is noticed", || {
        ours.stats().flushes > before.flushes
    })
    .await;
    assert_eq!(ours.stats().local_entries, 0, "flushed: {:?}", ours.stats());
    // Another client writes while the link is down (or being reopened): its invalidations are
    // lost, but nothing old may shadow its values.
    for i in 0..20 {
        other
            .set(&format!("k{i}"), "new".into(), SetOptions::default())
            .await
            .unwrap();
    }
    let hits = ours.stats().hits;
    for i in 0..20 {
        assert_eq!(
            text(ours.get(&format!("k{i}")).await.unwrap()).as_deref(),
            Some("new")
        );
    }
    assert_eq!(
        ours.stats().hits,
        hits,
        "no read came from the flushed tier"
    );
    // The link comes back and values are cached again.
    ours.connect().await.unwrap();
    assert_eq!(text(ours.get("k0").await.unwrap()).as_deref(), Some("new"));
    let stats = ours.stats();
    assert!(stats.links >= 2 && stats.linked, "{stats:?}");
    assert_eq!(text(ours.get("k0").await.unwrap()).as_deref(), Some("new"));
    assert_eq!(ours.stats().hits, stats.hits + 1, "{:?}", ours.stats());
    // And invalidations flow on the new link.
    other
        .set("k0", "newer".into(), SetOptions::default())
        .await
        .unwrap();
    ours.ping(b"").await.unwrap();
    assert_eq!(
        text(ours.get("k0").await.unwrap()).as_deref(),
        Some("newer")
    );
    cleanup(&other).await;
}

#[tokio::test]
async fn dropping_the_backend_closes_the_tracking_connection() {
    let Some((ours, other)) = pair("dropping_the_backend_closes_the_tracking_connection").await
    else {
        return;
    };
    let id = ours.stats().link_client_id.unwrap();
    let clone = ours.clone();
    drop(ours);
    assert!(clone.stats().linked, "a clone keeps the link");
    drop(clone);
    let client = redis::Client::open(url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut gone = false;
    for _ in 0..1000 {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("ID")
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
        if list.trim().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "the tracking connection {id} outlived its backend");
    cleanup(&other).await;
}

#[tokio::test]
async fn a_server_killed_mid_load_and_restarted_serves_nothing_stale() {
    let port = SpawnedRedis::free_port();
    let mut server = match SpawnedRedis::start(port, ["--port".to_owned(), port.to_string()]) {
        Ok(server) => server,
        Err(e) => {
            let _: Option<()> = cashews_testkit::skip_unless_ci(
                "a_server_killed_mid_load_and_restarted_serves_nothing_stale",
                &e,
            );
            return;
        }
    };
    let server_url = format!("redis://127.0.0.1:{port}/0");
    let url = format!("{server_url}?client_side=true&connect_timeout=200ms&command_timeout=500ms");
    let config = CacheConfig::parse(&url).unwrap();
    let ours = match &config.backend {
        cashews::config::BackendConfig::Redis(options) => {
            assert!(options.client_side);
            ClientSideRedis::new(options.clone()).unwrap()
        }
        other => panic!("{other:?}"),
    };
    let cache = Cache::new();
    cache.setup_backend("", ours.clone(), config).unwrap();
    ours.connect().await.unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for key in &keys {
        cache.set(key, "old", 600).await.unwrap();
        assert_eq!(
            cache.get::<String>(key).await.unwrap().as_deref(),
            Some("old")
        );
    }
    // Load: readers keep reading through the kill and the restart. Phase 2 starts once the
    // new values are written and our barrier passed: from then on "old" must never show.
    let phase = Arc::new(AtomicU8::new(1));
    let mut readers = Vec::new();
    for r in 0..3 {
        let (cache, phase, keys) = (cache.clone(), Arc::clone(&phase), keys.clone());
        readers.push(tokio::spawn(async move {
            let mut reads = 0_u64;
            loop {
                let now = phase.load(Ordering::SeqCst);
                let key = &keys[(reads as usize + r) % keys.len()];
                // Safe mode: no error reaches us while the server is down.
                let got = cache.get::<String>(key).await.unwrap();
                if now >= 2 {
                    assert_ne!(got.as_deref(), Some("old"), "stale value after restart");
                }
                reads += 1;
                if now == 3 {
                    return reads;
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let before = ours.stats();
    server.kill();
    until("the link drop is noticed", || !ours.stats().linked).await;
    assert_eq!(ours.stats().local_entries, 0, "{:?}", ours.stats());
    let hits = ours.stats().hits;
    // While down: neutral answers, nothing from the tier.
    assert_eq!(cache.get::<String>("k0").await.unwrap(), None);
    assert_eq!(ours.stats().hits, hits, "{:?}", ours.stats());

    server.restart().unwrap();
    let other = RedisBackend::new(RedisOptions::new(server_url.clone())).unwrap();
    let codec_cache = Cache::new();
    codec_cache
        .setup_backend("", other.clone(), CacheConfig::parse(&server_url).unwrap())
        .unwrap();
    for key in &keys {
        // Written through a Cache so the value is encoded as ours reads it.
        assert!(codec_cache.set(key, "new", 600).await.unwrap());
    }
    // The barrier: over the link if it is back (then its invalidations are in), else the
    // pooled path, with the tier bypassed and flushed again when the link comes up.
    let _ = ours.ping(b"").await;
    phase.store(2, Ordering::SeqCst);
    ours.connect().await.unwrap();
    for key in &keys {
        assert_eq!(
            cache.get::<String>(key).await.unwrap().as_deref(),
            Some("new")
        );
        assert_eq!(
            cache.get::<String>(key).await.unwrap().as_deref(),
            Some("new")
        );
    }
    phase.store(3, Ordering::SeqCst);
    for reader in readers {
        assert!(reader.await.unwrap() > 0);
    }
    let after = ours.stats();
    assert!(after.links > before.links, "{after:?}");
    assert!(
        after.hits > hits,
        "values are cached again after the restart: {after:?}"
    );
    drop(server);
}

#[test]
fn bad_client_side_options_are_named() {
    let e = Cache::new()
        .setup("redis://127.0.0.1/0?client_side=maybe")
        .unwrap_err();
    assert!(matches!(e, Error::InvalidOption { .. }), "{e:?}");
    assert!(e.to_string().contains("client_side"), "{e}");
    let e = Cache::new()
        .setup("redis://127.0.0.1/0?client_side=true&client_side_size=0")
        .unwrap_err();
    assert!(e.to_string().contains("client_side_size"), "{e}");
    let e = Cache::new()
        .setup("redis://127.0.0.1/0?client_side=true&client_side_size=lots")
        .unwrap_err();
    assert!(e.to_string().contains("client_side_size"), "{e}");
    let e = Cache::new()
        .setup("redis://127.0.0.1/0?client_side=true&cluster=true")
        .unwrap_err();
    assert!(e.to_string().contains("not available on a cluster"), "{e}");
    let config =
        CacheConfig::parse("redis://127.0.0.1/0?client_side=1&client_side_size=5").unwrap();
    match config.backend {
        cashews::config::BackendConfig::Redis(options) => {
            assert!(options.client_side);
            assert_eq!(options.client_side_size, 5);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        Cache::new()
            .setup("redis://127.0.0.1/0?client_side=true")
            .is_ok()
    );
}

#[tokio::test]
async fn setup_by_url_builds_the_client_side_tier() {
    let prefix = unique_prefix("csit");
    let ours = Cache::new();
    ours.setup(&format!("{}?client_side=true&key_prefix={prefix}", url()))
        .unwrap();
    if let Err(e) = ours.ping().await {
        let _: Option<()> = cashews_testkit::skip_unless_ci(
            "setup_by_url_builds_the_client_side_tier",
            &e.to_string(),
        );
        return;
    }
    let other = Cache::new();
    other
        .setup(&format!("{}?key_prefix={prefix}", url()))
        .unwrap();
    // Whether or not the link is up yet, another client's acknowledged write followed by a
    // ping (over the link once it is up) is never shadowed by our earlier read.
    for round in 0..50 {
        let value = format!("v{round}");
        other.set("k", &value, 60).await.unwrap();
        ours.ping().await.unwrap();
        assert_eq!(ours.get::<String>("k").await.unwrap(), Some(value.clone()));
        assert_eq!(ours.get::<String>("k").await.unwrap(), Some(value));
    }
    other.delete("k").await.unwrap();
    ours.close().await.unwrap();
}

/// `Cache::get_shared` and `Cache::get` on a client-side route answer local hits from the tier
/// itself (the shared object decoded once, as on `mem://`), and never an old value once
/// another client's write is acknowledged and a ping went over the link.
#[tokio::test]
async fn typed_reads_hit_the_tier_and_are_never_stale() {
    let Some((ours, other)) = pair("typed_reads_hit_the_tier_and_are_never_stale").await else {
        return;
    };
    let cache = Cache::new();
    cache
        .setup_backend("", ours.clone(), CacheConfig::default())
        .unwrap();
    let writer = Cache::new();
    writer
        .setup_backend("", other.clone(), CacheConfig::default())
        .unwrap();
    for round in 0..100_u32 {
        let value = format!("v{round}");
        writer.set("k", &value, 60).await.unwrap();
        cache.ping().await.unwrap();
        // The first read fills the tier; the next ones are local hits, and the first local
        // hit decodes the object that the later ones share.
        let filled: Arc<String> = cache.get_shared("k").await.unwrap().unwrap();
        assert_eq!(*filled, value, "round {round}");
        let hits = ours.stats().hits;
        let first: Arc<String> = cache.get_shared("k").await.unwrap().unwrap();
        let again: Arc<String> = cache.get_shared("k").await.unwrap().unwrap();
        assert_eq!(*first, value, "round {round}");
        assert!(Arc::ptr_eq(&first, &again), "decoded once, round {round}");
        assert_eq!(cache.get::<String>("k").await.unwrap(), Some(value));
        assert_eq!(
            ours.stats().hits,
            hits + 3,
            "the reads after the fill were local, round {round}"
        );
    }
    cleanup(&other).await;
}
