//! Transactions on Redis: a commit is one `MULTI`/`EXEC` pipeline (one round trip, counted by
//! the backend's health counters), keeps exact TTLs, wakes waiting transactions through the
//! lock release feed; on a cluster a commit spans many slots; on the client-side tier a commit
//! invalidates the local copies.

use std::time::Duration;

use cashews::backend::{
    Backend, ClientSideRedis, Expiry, RedisBackend, SetOptions, TransactionMode,
    TransactionOptions, Transactional,
};
use cashews::config::RedisOptions;
use cashews::key::tx_lock_key;
use cashews::{Bytes, Clock, Result};
use cashews_testkit::skip_unless_ci;

use crate::support::{redis_url, unique_prefix};

/// A backend under a prefix of its own, or `None` (skipped outside CI) without Redis.
async fn redis(case: &str) -> Option<RedisBackend> {
    let options = RedisOptions::new(redis_url()).with_key_prefix(unique_prefix("tx"));
    let backend = RedisBackend::new(options).ok()?;
    match backend.ping(b"").await {
        Ok(_) => Some(backend),
        Err(e) => skip_unless_ci(case, &format!("Redis does not answer: {e}")),
    }
}

fn sent(backend: &RedisBackend) -> u64 {
    backend.health().map_or(0, |health| health.commands_sent)
}

#[tokio::test]
async fn a_commit_of_ten_keys_is_one_round_trip() -> Result<()> {
    let Some(backend) = redis("a_commit_of_ten_keys_is_one_round_trip").await else {
        return Ok(());
    };
    for key in ["old1", "old2"] {
        backend.set(key, "x".into(), SetOptions::default()).await?;
    }
    let options = TransactionOptions::new(TransactionMode::Fast);
    let tx = Transactional::new(backend.clone(), Clock::system(), options);
    for i in 0..10 {
        let ttl = Some(Duration::from_millis(60_000 + i));
        tx.set(
            &format!("k{i}"),
            Bytes::from(i.to_string()),
            SetOptions::ttl(ttl),
        )
        .await?;
    }
    tx.delete_many(&["old1", "old2"]).await?;
    let before = sent(&backend);
    tx.commit().await?;
    assert_eq!(
        sent(&backend) - before,
        1,
        "one pipeline: MULTI, UNLINK, 10 SETs, EXEC"
    );
    for i in 0..10u64 {
        let key = format!("k{i}");
        assert_eq!(backend.get(&key).await?, Some(Bytes::from(i.to_string())));
        match backend.get_expire(&key).await? {
            Expiry::In(left) => {
                assert!(left <= Duration::from_millis(60_000 + i), "{key}: {left:?}");
                assert!(left > Duration::from_secs(50), "{key}: {left:?}");
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(!backend.exists("old1").await? && !backend.exists("old2").await?);
    backend.clear().await
}

#[tokio::test]
async fn a_waiting_transaction_wakes_when_the_lock_is_released() -> Result<()> {
    let Some(backend) = redis("a_waiting_transaction_wakes_when_the_lock_is_released").await else {
        return Ok(());
    };
    let options = TransactionOptions::new(TransactionMode::Locked);
    let first = Transactional::new(backend.clone(), Clock::system(), options);
    first
        .set("k", "first".into(), SetOptions::default())
        .await?;
    assert!(backend.exists(&tx_lock_key("k")).await?);
    let second = Transactional::new(backend.clone(), Clock::system(), options);
    let waiter = {
        let second = second.clone();
        tokio::spawn(async move {
            second.incr("n", 1, None).await?;
            second
                .set("k", "second".into(), SetOptions::default())
                .await
        })
    };
    first.commit().await?;
    assert!(waiter.await.expect("the waiter runs")?);
    second.commit().await?;
    assert_eq!(backend.get("k").await?, Some(Bytes::from("second")));
    assert_eq!(backend.get("n").await?, Some(Bytes::from("1")));
    assert!(!backend.exists(&tx_lock_key("k")).await?);
    backend.clear().await
}

#[tokio::test]
async fn a_commit_invalidates_client_side_copies() -> Result<()> {
    let case = "a_commit_invalidates_client_side_copies";
    let options = RedisOptions::new(redis_url()).with_key_prefix(unique_prefix("txcs"));
    let Ok(client) = ClientSideRedis::new(options) else {
        return Ok(());
    };
    if let Err(e) = client.connect().await {
        return skip_unless_ci(case, &format!("no tracking link: {e}")).unwrap_or(Ok(()));
    }
    client.set("k", "old".into(), SetOptions::default()).await?;
    assert_eq!(
        client.get("k").await?,
        Some(Bytes::from("old")),
        "now a local copy"
    );
    let tx = Transactional::new(
        client.clone(),
        Clock::system(),
        TransactionOptions::new(TransactionMode::Locked),
    );
    tx.set("k", "new".into(), SetOptions::default()).await?;
    tx.set("j", "new".into(), SetOptions::default()).await?;
    assert_eq!(client.get("k").await?, Some(Bytes::from("old")));
    tx.commit().await?;
    assert_eq!(
        client.get_many(&["k", "j"]).await?,
        vec![Some("new".into()), Some("new".into())]
    );
    client.clear().await
}

#[tokio::test]
async fn a_commit_spans_cluster_slots() -> Result<()> {
    let url = std::env::var("CASHEWS_REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:7000?cluster=true".to_owned());
    let config = cashews::config::CacheConfig::parse(&url)?;
    let cashews::config::BackendConfig::Redis(options) = config.backend else {
        panic!("CASHEWS_REDIS_CLUSTER_URL is not a Redis URL");
    };
    let backend = RedisBackend::new(options.with_key_prefix(unique_prefix("txcl")))?;
    if let Err(e) = backend.ping(b"").await {
        return skip_unless_ci("a_commit_spans_cluster_slots", &format!("no cluster: {e}"))
            .unwrap_or(Ok(()));
    }
    for i in 0..5 {
        backend
            .set(&format!("old{i}"), "x".into(), SetOptions::default())
            .await?;
    }
    let tx = Transactional::new(
        backend.clone(),
        Clock::system(),
        TransactionOptions::new(TransactionMode::Locked),
    );
    assert_eq!(tx.delete_match("old*").await?, 5);
    for i in 0..20 {
        let ttl = Some(Duration::from_secs(60));
        tx.set(&format!("new{i}"), "v".into(), SetOptions::ttl(ttl))
            .await?;
        tx.set(
            &format!("{{user}}:{i}"),
            "tagged".into(),
            SetOptions::default(),
        )
        .await?;
    }
    tx.commit().await?;
    assert_eq!(
        backend.keys_count().await?,
        40,
        "20 + 20 keys, no old key, no lock"
    );
    for i in 0..20 {
        assert!(matches!(
            backend.get_expire(&format!("new{i}")).await?,
            Expiry::In(_)
        ));
        assert_eq!(
            backend.get(&format!("{{user}}:{i}")).await?,
            Some(Bytes::from("tagged"))
        );
    }
    backend.clear().await
}
