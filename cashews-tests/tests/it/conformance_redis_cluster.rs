//! The shared conformance suite (`cashews-testkit`) on a Redis Cluster, at
//! `CASHEWS_REDIS_CLUSTER_URL` (default `redis://127.0.0.1:7000?cluster=true`, the cluster
//! `.ci/services.sh start` runs on 127.0.0.1:7000-7005), plus what only a cluster can get wrong:
//! batches over many slots, scans and counts over every primary, setup by URL.
//!
//! Isolation as on one server (`conformance_redis.rs`): cases touch only their harness's keys;
//! the exclusive cases (`clear`, `keys_count`) get a backend with a `key_prefix` of their own,
//! so nothing is ever flushed. The prefixes hold no `{…}` hash tag, so keys still spread over
//! every slot.
//!
//! When the cluster does not answer, each case prints why and is skipped; with `CI=true` it
//! fails.

use std::collections::{BTreeSet, HashMap, HashSet};

use cashews::backend::RedisBackend;
use cashews::config::{BackendConfig, CacheConfig, RedisOptions};
use cashews::{Backend, Bytes};
use cashews_testkit::{Harness, Setup, Time, skip_unless_ci};

use crate::support::unique_prefix;

fn url() -> String {
    std::env::var("CASHEWS_REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:7000?cluster=true".to_owned())
}

/// The options of the cluster URL.
fn cluster_options() -> Result<RedisOptions, String> {
    let config =
        CacheConfig::parse(&url()).map_err(|e| format!("bad CASHEWS_REDIS_CLUSTER_URL: {e}"))?;
    match config.backend {
        BackendConfig::Redis(options) if options.cluster => Ok(options),
        other => Err(format!(
            "CASHEWS_REDIS_CLUSTER_URL is not a `cluster=true` Redis URL: {other:?}"
        )),
    }
}

/// A cluster backend under `prefix` (or none), or the reason it is not there.
async fn backend(prefix: Option<String>) -> Result<RedisBackend, String> {
    let mut options = cluster_options()?;
    if let Some(prefix) = prefix {
        options = options.with_key_prefix(prefix);
    }
    let backend = RedisBackend::new(options).map_err(|e| e.to_string())?;
    match backend.ping(b"").await {
        Ok(pong) if pong == Bytes::from_static(b"PONG") => Ok(backend),
        other => Err(format!(
            "no Redis Cluster answers at {} ({other:?}); `.ci/services.sh start` starts one",
            url()
        )),
    }
}

async fn redis_cluster(setup: Setup) -> Option<Harness<RedisBackend>> {
    let prefix = setup.exclusive().then(|| unique_prefix("cl-ct"));
    match backend(prefix).await {
        Ok(backend) => Some(Harness::new(backend, Time::Real)),
        Err(reason) => skip_unless_ci(setup.case(), &reason),
    }
}

cashews_testkit::conformance_suite!(redis_cluster);

/// Inside one open, never committed transaction (fast mode) over the cluster.
mod transactional {
    use cashews::Clock;
    use cashews::backend::{TransactionMode, TransactionOptions, Transactional};
    use cashews_testkit::{Harness, Setup, Time};

    async fn redis_cluster(setup: Setup) -> Option<Harness<Transactional>> {
        let harness = super::redis_cluster(setup).await?;
        let options = TransactionOptions::new(TransactionMode::Fast);
        let tx = Transactional::new(harness.backend().clone(), Clock::system(), options);
        Some(Harness::new(tx, Time::Real))
    }

    cashews_testkit::conformance_suite!(redis_cluster);
}

/// The primaries of the cluster and a direct (non-cluster) connection to each, read from
/// `CLUSTER NODES` on the seed: a view independent of the backend's own discovery.
async fn primaries() -> Vec<(String, redis::aio::MultiplexedConnection)> {
    let options = cluster_options().unwrap();
    let seed = redis::Client::open(options.address.as_str()).unwrap();
    let mut conn = seed.get_multiplexed_async_connection().await.unwrap();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut primaries = Vec::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(address), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        // Serving slots (fields after the 8th) and not failed.
        if !flags.split(',').any(|f| f == "master") || flags.contains("fail") || fields.len() < 9 {
            continue;
        }
        let address = address.split('@').next().unwrap().to_owned();
        let client = redis::Client::open(format!("redis://{address}")).unwrap();
        primaries.push((
            address,
            client.get_multiplexed_async_connection().await.unwrap(),
        ));
    }
    primaries
}

/// How many keys under `prefix` each primary holds (SCAN on each node directly).
async fn keys_per_primary(prefix: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (address, mut conn) in primaries().await {
        let mut cursor = 0_u64;
        let mut keys = BTreeSet::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        counts.insert(address, keys.len());
    }
    counts
}

macro_rules! cluster_or_skip {
    ($case:literal, $prefix:expr) => {
        match backend($prefix).await {
            Ok(backend) => backend,
            Err(reason) => return skip_unless_ci::<()>($case, &reason).unwrap_or(()),
        }
    };
}

/// `set_many`, `get_many` and `delete_many` over 200 keys in many slots (on every primary):
/// everything written is read back, in the order asked, with misses in their places.
#[tokio::test]
async fn batches_over_many_slots_keep_their_order() {
    let prefix = unique_prefix("cl-batch");
    let backend = cluster_or_skip!("batches_over_many_slots", Some(prefix.clone()));
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let slots: HashSet<redis::cluster_routing::Slot> = keys
        .iter()
        .map(|k| redis::cluster_routing::Slot::for_key(format!("{prefix}{k}")))
        .collect();
    assert!(
        slots.len() > 150,
        "the keys span {} slots only",
        slots.len()
    );

    let pairs: Vec<(&str, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), Bytes::from(format!("value-{i}"))))
        .collect();
    backend
        .set_many(&pairs, Some(std::time::Duration::from_secs(60)))
        .await
        .unwrap();

    let per_primary = keys_per_primary(&prefix).await;
    assert!(
        per_primary.len() >= 3 && per_primary.values().all(|&n| n > 0),
        "every primary holds some of the keys: {per_primary:?}"
    );
    assert_eq!(per_primary.values().sum::<usize>(), 200, "{per_primary:?}");

    // Ask in reverse, with a missing key after every tenth.
    let mut asked: Vec<String> = Vec::new();
    for (i, key) in keys.iter().enumerate().rev() {
        asked.push(key.clone());
        if i % 10 == 0 {
            asked.push(format!("missing-{i}"));
        }
    }
    let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
    let got = backend.get_many(&refs).await.unwrap();
    assert_eq!(got.len(), asked.len());
    for (key, value) in asked.iter().zip(&got) {
        let expected = key
            .strip_prefix('k')
            .map(|i| Bytes::from(format!("value-{i}")));
        assert_eq!(value.as_ref(), expected.as_ref(), "{key}");
    }

    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    assert_eq!(backend.delete_many(&refs).await.unwrap(), 200);
    assert!(
        backend
            .get_many(&refs)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(backend.delete_many(&refs).await.unwrap(), 0);
}

/// `scan`, `keys_count`, `delete_match` and `clear` see the keys of every primary, not only
/// those of the node the seed address names.
#[tokio::test]
async fn scans_and_counts_cover_every_primary() {
    use futures_util::StreamExt;

    let prefix = unique_prefix("cl-scan");
    let backend = cluster_or_skip!("scans_and_counts_cover_every_primary", Some(prefix.clone()));
    let pairs: Vec<(String, Bytes)> = (0..90)
        .map(|i| {
            (
                format!("{}:{i}", if i % 3 == 0 { "a" } else { "b" }),
                Bytes::from("v"),
            )
        })
        .collect();
    let refs: Vec<(&str, Bytes)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    backend.set_many(&refs, None).await.unwrap();
    let per_primary = keys_per_primary(&prefix).await;
    assert!(
        per_primary.len() >= 3 && per_primary.values().all(|&n| n > 0),
        "the keys are spread over every primary: {per_primary:?}"
    );

    assert_eq!(backend.keys_count().await.unwrap(), 90);
    let scanned: Vec<String> = backend.scan("*", 7).map(|k| k.unwrap()).collect().await;
    let distinct: BTreeSet<&String> = scanned.iter().collect();
    assert_eq!(scanned.len(), 90, "each key once");
    assert_eq!(
        distinct,
        pairs.iter().map(|(k, _)| k).collect::<BTreeSet<_>>()
    );
    let a_keys = backend.scan("a:*", 1000).count().await;
    assert_eq!(a_keys, 30);

    assert_eq!(backend.delete_match("a:*").await.unwrap(), 30);
    assert_eq!(backend.keys_count().await.unwrap(), 60);
    backend.clear().await.unwrap();
    assert_eq!(backend.keys_count().await.unwrap(), 0);
    assert!(keys_per_primary(&prefix).await.values().all(|&n| n == 0));
}

/// `Cache::setup` with the cluster URL: typed values round-trip through the cluster.
#[tokio::test]
async fn setup_by_url_round_trips_values() -> cashews::Result<()> {
    let cache = cashews::Cache::new();
    cache.setup(&format!("{}&command_timeout=2s", url()))?;
    if let Err(e) = cache.ping().await {
        return skip_unless_ci("setup_by_url (cluster)", &e.to_string()).unwrap_or(Ok(()));
    }
    let prefix = unique_prefix("cl-setup");
    let key = |name: &str| format!("{prefix}{name}");
    let (text, number, list) = (key("text"), key("n"), key("list"));
    assert!(cache.set(&text, "héllo", 60).await?);
    assert_eq!(cache.get::<String>(&text).await?.as_deref(), Some("héllo"));
    cache.set(&list, &vec![1_u32, 2, 3], 60).await?;
    assert_eq!(cache.get::<Vec<u32>>(&list).await?, Some(vec![1, 2, 3]));
    assert_eq!(cache.incr_by(&number, 5, 60).await?, 5);
    assert_eq!(cache.incr_by(&number, -2, 60).await?, 3);
    let got: Vec<Option<String>> = cache.get_many(&[&text, &key("missing")]).await?;
    assert_eq!(got, vec![Some("héllo".to_owned()), None]);
    assert_eq!(cache.delete_many(&[&text, &number, &list]).await?, 3);
    assert_eq!(cache.get::<String>(&text).await?, None);
    cache.close().await
}

/// A cluster that does not answer: with safe mode (the default) commands answer their neutral
/// replies; without, they fail with a backend error.
#[tokio::test]
async fn cluster_down_is_a_backend_error() -> cashews::Result<()> {
    let cache = cashews::Cache::new();
    cache.setup(
        "redis://127.0.0.1:1?cluster=true&nodes=127.0.0.1:2&connect_timeout=200ms&command_timeout=200ms",
    )?;
    assert_eq!(cache.get::<String>("k").await?, None);
    assert!(!cache.set("k", "v", 60).await?);
    assert!(cache.ping().await.is_err());

    let strict = cashews::Cache::new();
    strict.setup("redis://127.0.0.1:1?cluster=true&connect_timeout=200ms&suppress=false")?;
    let e = strict.get::<String>("k").await.unwrap_err();
    assert!(matches!(e, cashews::Error::Backend { .. }), "{e:?}");
    Ok(())
}
