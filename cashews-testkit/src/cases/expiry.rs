//! TTLs: expiry on every command, `get_expire`, `expire`, TTL replacement.
//!
//! TTLs here are one second and time moves by 1.5 s, so a backend on real time (Redis, disk)
//! spends a few seconds in this group, and a backend on a manual clock none.

use std::time::Duration;

use cashews::backend::{Condition, Expiry, SetOptions};
use cashews::{Backend, Bytes, Result};
use futures_util::StreamExt;

use crate::Harness;

const SHORT: Duration = Duration::from_secs(1);
const PAST_SHORT: Duration = Duration::from_millis(1_500);

fn within(expiry: Expiry, low: Duration, high: Duration) -> bool {
    matches!(expiry, Expiry::In(left) if left > low && left <= high)
}

/// A value with a TTL reads back at once and is gone after it:
/// absent for get, exists and get_many, and a SET NX over it succeeds.
///
/// # Errors
///
/// A backend error.
pub async fn ttl_expires<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    b.set(&key, "v".into(), SetOptions::ttl(Some(SHORT)))
        .await?;
    assert_eq!(b.get(&key).await?, Some(Bytes::from("v")));
    h.advance(PAST_SHORT).await;
    assert_eq!(b.get(&key).await?, None);
    assert!(!b.exists(&key).await?);
    assert_eq!(b.get_many(&[&key]).await?, vec![None]);
    assert_eq!(b.get_expire(&key).await?, Expiry::Missing);
    let nx = SetOptions::ttl(None).condition(Condition::IfAbsent);
    assert!(
        b.set(&key, "new".into(), nx).await?,
        "NX over an expired key"
    );
    assert_eq!(b.get(&key).await?, Some(Bytes::from("new")));
    Ok(())
}

/// Every command treats an expired key as absent, purged or not.
///
/// # Errors
///
/// A backend error.
pub async fn expired_is_absent_everywhere<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let short = SetOptions::ttl(Some(SHORT));
    let names = ["counter", "lock", "deleted", "bits", "xx", "expire"];
    for name in names {
        b.set(&h.key(name), "7".into(), short).await?;
    }
    b.set_add(&h.key("set"), &["a"], Some(SHORT)).await?;
    h.advance(PAST_SHORT).await;
    assert_eq!(
        b.incr(&h.key("counter"), 1, None).await?,
        1,
        "incr restarts at 0"
    );
    assert!(b.set_lock(&h.key("lock"), "t", SHORT).await?);
    assert!(!b.delete(&h.key("deleted")).await?);
    assert_eq!(b.get_bits(&h.key("bits"), &[0, 1], 8).await?, vec![0, 0]);
    let xx = SetOptions::ttl(None).condition(Condition::IfPresent);
    assert!(!b.set(&h.key("xx"), "v".into(), xx).await?);
    assert!(!b.expire(&h.key("expire"), Some(SHORT)).await?);
    assert_eq!(b.set_add(&h.key("set"), &["a"], None).await?, 1);
    let scanned: Vec<_> = b.scan(&h.pattern("*"), 100).collect().await;
    let mut scanned = scanned.into_iter().collect::<Result<Vec<String>>>()?;
    scanned.sort();
    let mut live = vec![h.key("counter"), h.key("lock"), h.key("set")];
    live.sort();
    assert_eq!(scanned, live, "scan must skip expired keys");
    Ok(())
}

/// `get_expire`: missing, persistent, or the time left.
///
/// # Errors
///
/// A backend error.
pub async fn get_expire_states<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (persistent, timed) = (h.key("persistent"), h.key("timed"));
    assert_eq!(b.get_expire(&h.key("missing")).await?, Expiry::Missing);
    b.set(&persistent, "v".into(), SetOptions::ttl(None))
        .await?;
    assert_eq!(b.get_expire(&persistent).await?, Expiry::Persistent);
    b.set(
        &timed,
        "v".into(),
        SetOptions::ttl(Some(Duration::from_secs(60))),
    )
    .await?;
    let left = b.get_expire(&timed).await?;
    assert!(
        within(left, Duration::from_secs(55), Duration::from_secs(60)),
        "{left:?}"
    );
    assert_eq!(left.as_secs_rounded(), Some(60));
    b.delete(&persistent).await?;
    Ok(())
}

/// `expire` sets a new TTL on an existing key and reports a missing one.
///
/// # Errors
///
/// A backend error.
pub async fn expire_sets_ttl<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    b.set(&key, "v".into(), SetOptions::ttl(None)).await?;
    assert!(b.expire(&key, Some(SHORT)).await?);
    let left = b.get_expire(&key).await?;
    assert!(within(left, Duration::ZERO, SHORT), "{left:?}");
    assert!(
        b.expire(&key, Some(Duration::from_secs(100))).await?,
        "a TTL can grow"
    );
    assert!(
        within(
            b.get_expire(&key).await?,
            Duration::from_secs(95),
            Duration::from_secs(100)
        ),
        "expire must replace the TTL"
    );
    assert!(b.expire(&key, Some(SHORT)).await?);
    h.advance(PAST_SHORT).await;
    assert_eq!(b.get(&key).await?, None);
    assert!(!b.expire(&h.key("missing"), Some(SHORT)).await?);
    assert!(
        !b.exists(&h.key("missing")).await?,
        "expire must not create keys"
    );
    Ok(())
}

/// A set with a TTL replaces the previous TTL.
///
/// # Errors
///
/// A backend error.
pub async fn set_replaces_ttl<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    b.set(&key, "a".into(), SetOptions::ttl(Some(SHORT)))
        .await?;
    b.set(
        &key,
        "b".into(),
        SetOptions::ttl(Some(Duration::from_secs(60))),
    )
    .await?;
    h.advance(PAST_SHORT).await;
    assert_eq!(b.get(&key).await?, Some(Bytes::from("b")));
    b.delete(&key).await?;
    Ok(())
}

/// `incr` applies its TTL when it creates the key, never later.
///
/// # Errors
///
/// A backend error.
pub async fn incr_ttl_on_creation<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    assert_eq!(b.incr(&key, 1, Some(Duration::from_secs(10))).await?, 1);
    let first = b.get_expire(&key).await?;
    assert!(
        within(first, Duration::from_secs(5), Duration::from_secs(10)),
        "{first:?}"
    );
    assert_eq!(b.incr(&key, 1, Some(Duration::from_secs(100))).await?, 2);
    let second = b.get_expire(&key).await?;
    assert!(
        within(second, Duration::ZERO, Duration::from_secs(10)),
        "a second incr must not reset the TTL: {second:?}"
    );
    let plain = h.key("plain");
    b.incr(&plain, 1, None).await?;
    assert_eq!(b.get_expire(&plain).await?, Expiry::Persistent);
    b.delete(&plain).await?;
    Ok(())
}

/// `expire` with no TTL (`None`, what `Cache::expire(key, 0)` sends) keeps the value and
/// removes its TTL (as Redis `PERSIST`); a missing key answers `false` and is not created.
///
/// # Errors
///
/// A backend error.
pub async fn expire_none_persists<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    b.set(&key, "v".into(), SetOptions::ttl(Some(SHORT)))
        .await?;
    assert!(b.expire(&key, None).await?, "the key existed");
    assert_eq!(b.get_expire(&key).await?, Expiry::Persistent);
    h.advance(PAST_SHORT).await;
    assert_eq!(
        b.get(&key).await?,
        Some(Bytes::from("v")),
        "the TTL is gone"
    );
    assert!(
        b.expire(&key, None).await?,
        "a key without a TTL exists too"
    );
    assert_eq!(b.get_expire(&key).await?, Expiry::Persistent);
    let missing = h.key("missing");
    assert!(!b.expire(&missing, None).await?);
    assert!(!b.exists(&missing).await?, "expire must not create keys");
    b.delete(&key).await?;
    Ok(())
}

/// `expire` with a zero duration removes the key at once (as Redis `PEXPIRE k 0`). `Cache`
/// never sends one (a zero TTL is `None` there); this pins what a direct caller gets.
///
/// # Errors
///
/// A backend error.
pub async fn expire_zero_removes<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("k");
    b.set(&key, "v".into(), SetOptions::ttl(None)).await?;
    assert!(
        b.expire(&key, Some(Duration::ZERO)).await?,
        "the key existed"
    );
    assert_eq!(b.get(&key).await?, None);
    assert!(!b.exists(&key).await?);
    Ok(())
}
