//! `incr`: sequences, negative numbers, wrong types, overflow, and 1,000 concurrent callers.

use std::time::Duration;

use cashews::backend::SetOptions;
use cashews::{Backend, Bytes, Error, Result};

use crate::Harness;

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// `incr` counts 1, 2, then by 5 to 7; the value reads back as decimal text.
///
/// # Errors
///
/// A backend error.
pub async fn incr_sequence<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("incr");
    assert_eq!(b.incr(&key, 1, HOUR).await?, 1);
    assert_eq!(b.incr(&key, 1, HOUR).await?, 2);
    assert_eq!(b.incr(&key, 5, HOUR).await?, 7);
    assert_eq!(b.get(&key).await?, Some(Bytes::from("7")));
    assert_eq!(b.incr(&key, 0, HOUR).await?, 7, "incr by 0 reads");
    Ok(())
}

/// `incr` works on a decimal value written by `set`, goes negative, and negative values
/// round-trip as text.
///
/// # Errors
///
/// A backend error.
pub async fn incr_negative<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("n");
    b.set(&key, "10".into(), SetOptions::ttl(HOUR)).await?;
    assert_eq!(b.incr(&key, 1, HOUR).await?, 11);
    assert_eq!(b.incr(&key, -20, HOUR).await?, -9);
    assert_eq!(b.get(&key).await?, Some(Bytes::from("-9")));
    assert_eq!(b.incr(&h.key("fresh"), -5, HOUR).await?, -5);
    Ok(())
}

/// `incr` on a value that is not a decimal integer fails with [`Error::WrongType`] and leaves
/// the value as it was.
///
/// # Errors
///
/// A backend error.
pub async fn incr_wrong_type<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    for (i, bad) in ["test", "1.5", " 1", "", "99999999999999999999"]
        .into_iter()
        .enumerate()
    {
        let key = h.key(&format!("bad{i}"));
        b.set(&key, Bytes::from(bad), SetOptions::ttl(HOUR)).await?;
        match b.incr(&key, 1, HOUR).await {
            Err(Error::WrongType { .. }) => {}
            other => panic!("incr on {bad:?} must be WrongType, got {other:?}"),
        }
        assert_eq!(
            b.get(&key).await?,
            Some(Bytes::from(bad)),
            "{bad:?} changed"
        );
    }
    Ok(())
}

/// `incr` past `i64::MAX` or below `i64::MIN` is an error and changes nothing.
///
/// # Errors
///
/// A backend error.
pub async fn incr_overflow<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("max");
    let max = i64::MAX.to_string();
    b.set(&key, Bytes::from(max.clone()), SetOptions::ttl(HOUR))
        .await?;
    assert!(b.incr(&key, 1, HOUR).await.is_err(), "overflow must fail");
    assert_eq!(b.get(&key).await?, Some(Bytes::from(max)));
    let low = h.key("min");
    assert_eq!(b.incr(&low, i64::MIN, HOUR).await?, i64::MIN);
    assert!(b.incr(&low, -1, HOUR).await.is_err(), "underflow must fail");
    assert_eq!(b.incr(&low, 0, HOUR).await?, i64::MIN);
    Ok(())
}

/// 1,000 concurrent `incr` calls on one key: the final value is 1,000 and every caller saw a
/// distinct value from 1 to 1,000.
///
/// # Errors
///
/// A backend error.
pub async fn incr_concurrent<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let key = h.key("hits");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let (b, key) = (h.backend().clone(), key.clone());
        tasks.spawn(async move { b.incr(&key, 1, HOUR).await });
    }
    let mut seen = Vec::with_capacity(1_000);
    while let Some(done) = tasks.join_next().await {
        seen.push(done.map_err(crate::join_error)??);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=1_000).collect::<Vec<i64>>());
    assert_eq!(h.backend().get(&key).await?, Some(Bytes::from("1000")));
    Ok(())
}
