//! Locks: set_lock, compare-and-delete unlock, expiry, and contention.

use std::time::Duration;

use cashews::{Backend, Bytes, Result};

use crate::Harness;

const TEN: Duration = Duration::from_secs(10);

/// `set_lock` takes a free lock once; `unlock` with another token leaves it; the right token
/// releases it.
///
/// # Errors
///
/// A backend error.
pub async fn set_lock_and_unlock<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("lock");
    assert!(b.set_lock(&key, "mine", TEN).await?);
    assert!(!b.set_lock(&key, "yours", TEN).await?, "a held lock");
    assert!(b.exists(&key).await?);
    assert!(!b.unlock(&key, "yours").await?, "someone else's token");
    assert_eq!(b.get(&key).await?, Some(Bytes::from("mine")));
    assert!(b.unlock(&key, "mine").await?);
    assert!(!b.exists(&key).await?);
    assert!(!b.unlock(&key, "mine").await?, "already released");
    assert!(b.set_lock(&key, "yours", TEN).await?, "free again");
    Ok(())
}

/// A lock expires with its TTL and can then be taken by another holder, whose lock the first
/// holder cannot release.
///
/// # Errors
///
/// A backend error.
pub async fn lock_expires<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("lock");
    assert!(b.set_lock(&key, "first", Duration::from_secs(1)).await?);
    h.advance(Duration::from_millis(1_500)).await;
    assert!(b.set_lock(&key, "second", TEN).await?);
    assert!(
        !b.unlock(&key, "first").await?,
        "a stale holder must not unlock"
    );
    assert_eq!(b.get(&key).await?, Some(Bytes::from("second")));
    Ok(())
}

/// 100 concurrent `set_lock` calls: exactly one wins.
///
/// # Errors
///
/// A backend error.
pub async fn set_lock_one_winner<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let key = h.key("lock");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (b, key) = (h.backend().clone(), key.clone());
        tasks.spawn(async move { b.set_lock(&key, &format!("t{i}"), TEN).await });
    }
    let mut winners = 0;
    while let Some(done) = tasks.join_next().await {
        winners += usize::from(done.map_err(crate::join_error)??);
    }
    assert_eq!(winners, 1);
    Ok(())
}

/// 100 concurrent `unlock` calls with wrong tokens, racing one with the right token: only the
/// right one releases, and none of the others deletes a lock re-taken after it.
///
/// # Errors
///
/// A backend error.
pub async fn unlock_wrong_token_concurrent<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let key = h.key("lock");
    assert!(h.backend().set_lock(&key, "owner", TEN).await?);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (b, key) = (h.backend().clone(), key.clone());
        tasks.spawn(async move { b.unlock(&key, &format!("intruder{i}")).await });
    }
    let mut released = 0;
    while let Some(done) = tasks.join_next().await {
        released += usize::from(done.map_err(crate::join_error)??);
    }
    assert_eq!(released, 0);
    assert_eq!(h.backend().get(&key).await?, Some(Bytes::from("owner")));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (b, key) = (h.backend().clone(), key.clone());
        tasks.spawn(async move {
            let token = if i == 25 {
                "owner".to_owned()
            } else {
                format!("x{i}")
            };
            b.unlock(&key, &token).await
        });
    }
    let mut released = 0;
    while let Some(done) = tasks.join_next().await {
        released += usize::from(done.map_err(crate::join_error)??);
    }
    assert_eq!(released, 1, "exactly the owner's unlock releases");
    assert!(!h.backend().exists(&key).await?);
    Ok(())
}
