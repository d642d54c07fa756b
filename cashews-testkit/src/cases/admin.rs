//! Whole-keyspace commands: `get_size`, `keys_count`, `clear`. The last two run on a backend
//! of their own ([`Setup::exclusive`](crate::Setup::exclusive)).

use std::time::Duration;

use cashews::backend::SetOptions;
use cashews::{Backend, Result};

use crate::Harness;

/// `get_size` gives a positive size for a stored key and 0 for a missing one, or `None` on
/// every key when the backend cannot tell.
///
/// # Errors
///
/// A backend error.
pub async fn get_size<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("test");
    b.set(
        &key,
        "1".into(),
        SetOptions::ttl(Some(Duration::from_secs(60))),
    )
    .await?;
    match (
        b.get_size(&key).await?,
        b.get_size(&h.key("missing")).await?,
    ) {
        (Some(stored), Some(missing)) => {
            assert!(stored > 0, "a stored key has a size");
            assert_eq!(missing, 0);
        }
        (None, None) => {}
        other => panic!("get_size must be known for both or neither: {other:?}"),
    }
    Ok(())
}

/// `keys_count` counts keys; `clear` removes every one.
///
/// # Errors
///
/// A backend error.
pub async fn keys_count_and_clear<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    b.clear().await?;
    assert_eq!(b.keys_count().await?, 0);
    b.set(&h.key("test"), "1".into(), SetOptions::ttl(None))
        .await?;
    assert_eq!(b.keys_count().await?, 1);
    for i in 0..9 {
        b.set(&h.key(&format!("k{i}")), "1".into(), SetOptions::ttl(None))
            .await?;
    }
    b.set_add(&h.key("set"), &["a"], None).await?;
    assert_eq!(b.keys_count().await?, 11);
    b.clear().await?;
    assert_eq!(b.keys_count().await?, 0);
    assert_eq!(b.get(&h.key("test")).await?, None);
    Ok(())
}
