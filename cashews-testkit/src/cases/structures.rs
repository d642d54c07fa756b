//! Bit fields, sliding windows and sets, alone and under concurrent callers.

use std::collections::BTreeSet;
use std::time::Duration;

use cashews::backend::SetOptions;
use cashews::{Backend, Error, Result};

use crate::Harness;

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// A missing key reads zeros at any index and width.
///
/// # Errors
///
/// A backend error.
pub async fn get_bits_missing<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("test");
    assert_eq!(b.get_bits(&key, &[0, 2, 10, 50_000], 1).await?, vec![0; 4]);
    assert_eq!(b.get_bits(&key, &[0, 1, 3], 15).await?, vec![0; 3]);
    assert!(
        !b.exists(&key).await?,
        "reading bits must not create the key"
    );
    Ok(())
}

/// `incr_bits` adds to each field and `get_bits` reads them back.
///
/// # Errors
///
/// A backend error.
pub async fn incr_bits_fields<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (one, five) = (h.key("one"), h.key("five"));
    assert_eq!(b.incr_bits(&one, &[0, 1, 4], 1, 1).await?, vec![1, 1, 1]);
    assert_eq!(
        b.get_bits(&one, &[0, 1, 2, 3, 4], 1).await?,
        vec![1, 1, 0, 0, 1]
    );
    assert_eq!(b.incr_bits(&five, &[0, 1, 4], 5, 3).await?, vec![3, 3, 3]);
    assert_eq!(
        b.get_bits(&five, &[0, 1, 2, 3, 4], 5).await?,
        vec![3, 3, 0, 0, 3]
    );
    let wide = h.key("wide");
    let big = (1_u64 << 62) + 12_345;
    let by = i64::try_from(big).unwrap_or(i64::MAX);
    assert_eq!(b.incr_bits(&wide, &[1], 63, by).await?, vec![big]);
    assert_eq!(b.get_bits(&wide, &[0, 1], 63).await?, vec![0, big]);
    Ok(())
}

/// Fields saturate at `2^size - 1` and at 0.
///
/// # Errors
///
/// A backend error.
pub async fn incr_bits_saturates<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("sat");
    assert_eq!(b.incr_bits(&key, &[0], 2, 5).await?, vec![3]);
    assert_eq!(b.incr_bits(&key, &[0], 2, -1).await?, vec![2]);
    assert_eq!(b.incr_bits(&key, &[0], 2, -10).await?, vec![0]);
    assert_eq!(b.incr_bits(&key, &[0], 2, i64::MAX).await?, vec![3]);
    assert_eq!(b.incr_bits(&key, &[0], 2, i64::MIN).await?, vec![0]);
    Ok(())
}

/// A field width outside 1..=63 is a clear error, not a panic, and writes nothing.
///
/// # Errors
///
/// A backend error.
pub async fn bits_bad_width<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("bits");
    for size in [0, 64, 255] {
        let err = b.incr_bits(&key, &[0], size, 1).await;
        assert!(
            matches!(err, Err(Error::InvalidOption { .. })),
            "size {size}: {err:?}"
        );
        let err = b.get_bits(&key, &[0], size).await;
        assert!(
            matches!(err, Err(Error::InvalidOption { .. })),
            "size {size}: {err:?}"
        );
    }
    assert!(!b.exists(&key).await?);
    Ok(())
}

/// A sliding window, step by step.
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_window<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("test");
    let steps: [(u64, u64, u64, u64); 8] = [
        (0, 5, 10, 1),
        (1, 6, 10, 2),
        (2, 7, 10, 3),
        (3, 8, 10, 4),
        (5, 10, 4, 4),
        (9, 11, 10, 1),
        (15, 20, 10, 1),
        (9, 11, 10, 1),
    ];
    for (start, end, max, want) in steps {
        let got = b.slice_incr(&key, start, end, max, HOUR).await?;
        assert_eq!(got, want, "slice_incr({start}, {end}, max {max})");
    }
    Ok(())
}

/// Events at the same instant are counted separately (Redis sorted sets collapse them when the
/// member is the timestamp: we must not).
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_same_instant<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("same");
    for want in 1..=5 {
        assert_eq!(b.slice_incr(&key, 100, 1_000, 10, HOUR).await?, want);
    }
    assert_eq!(b.slice_incr(&key, 100, 1_000, 5, HOUR).await?, 5, "at max");
    Ok(())
}

/// `slice_incr` sets the window's TTL; the window is gone after it.
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_ttl<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("w");
    assert_eq!(
        b.slice_incr(&key, 0, 10, 10, Some(Duration::from_secs(1)))
            .await?,
        1
    );
    assert_eq!(
        b.slice_incr(&key, 0, 10, 10, Some(Duration::from_secs(1)))
            .await?,
        2
    );
    h.advance(Duration::from_millis(1_500)).await;
    assert_eq!(
        b.slice_incr(&key, 0, 10, 10, HOUR).await?,
        1,
        "expired window"
    );
    Ok(())
}

/// Runs 200 concurrent `call`s (each one event on a window of 50 at `key`) and checks the
/// counts they saw: 1..=49 once each, and 50 for the other 151.
async fn window_callers<B, F, Fut>(h: &Harness<B>, key: &str, call: F) -> Result<()>
where
    B: Backend + Clone,
    F: Fn(B, String) -> Fut,
    Fut: Future<Output = Result<u64>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        tasks.spawn(call(h.backend().clone(), key.to_owned()));
    }
    let mut seen = Vec::with_capacity(200);
    while let Some(done) = tasks.join_next().await {
        seen.push(done.map_err(crate::join_error)??);
    }
    seen.sort_unstable();
    let mut want: Vec<u64> = (1..50).collect();
    want.extend(std::iter::repeat_n(50, 151));
    assert_eq!(seen, want);
    Ok(())
}

/// 200 concurrent callers on a window of 50: the counts seen are 1..=49 once each and 50 for
/// the other 151, and the window holds exactly 50 events.
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_concurrent<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let key = h.key("limit");
    window_callers(&h, &key, |b, key| async move {
        b.slice_incr(&key, 0, 1_000, 50, HOUR).await
    })
    .await?;
    assert_eq!(h.backend().slice_incr(&key, 0, 1_000, 51, HOUR).await?, 51);
    Ok(())
}

/// `slice_incr_now` counts like `slice_incr` over `(now − period, now]`, with `now` read by
/// the backend: calls under `max` answer 1, 2, …; calls at `max` answer `max` and record
/// nothing (one more slot then answers exactly `max + 1`); `max` 0 creates no key.
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_now_counts<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("now");
    let hour = Duration::from_secs(3600);
    for want in 1..=5 {
        assert_eq!(b.slice_incr_now(&key, hour, 5, HOUR).await?, want);
    }
    for _ in 0..3 {
        assert_eq!(b.slice_incr_now(&key, hour, 5, HOUR).await?, 5, "at max");
    }
    assert_eq!(
        b.slice_incr_now(&key, hour, 6, HOUR).await?,
        6,
        "refused calls recorded no event"
    );
    let none = h.key("none");
    assert_eq!(b.slice_incr_now(&none, hour, 0, HOUR).await?, 0);
    assert!(!b.exists(&none).await?, "max 0 must not create the key");
    Ok(())
}

/// Events older than `period` leave the window and are forgotten; the TTL, when given, is
/// reset by each recorded event and removes the window after it.
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_now_forgets<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (second, hour) = (Duration::from_secs(1), Duration::from_secs(3600));
    let key = h.key("slide");
    assert_eq!(b.slice_incr_now(&key, second, 10, HOUR).await?, 1);
    assert_eq!(b.slice_incr_now(&key, hour, 10, HOUR).await?, 2);
    h.advance(Duration::from_millis(1_500)).await;
    assert_eq!(
        b.slice_incr_now(&key, second, 10, HOUR).await?,
        1,
        "both events are older than the period"
    );
    assert_eq!(
        b.slice_incr_now(&key, hour, 10, HOUR).await?,
        2,
        "forgotten events are gone, even for a longer period"
    );

    let ttl = h.key("ttl");
    assert_eq!(b.slice_incr_now(&ttl, hour, 10, Some(second)).await?, 1);
    assert_eq!(b.slice_incr_now(&ttl, hour, 10, Some(second)).await?, 2);
    h.advance(Duration::from_millis(1_500)).await;
    assert_eq!(
        b.slice_incr_now(&ttl, hour, 10, HOUR).await?,
        1,
        "expired window"
    );
    Ok(())
}

/// 200 concurrent `slice_incr_now` callers on a window of 50: the counts seen are 1..=49 once
/// each and 50 for the other 151, and the window holds exactly 50 events.
///
/// # Errors
///
/// A backend error.
pub async fn slice_incr_now_concurrent<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let key = h.key("limit_now");
    let hour = Duration::from_secs(3600);
    window_callers(&h, &key, |b, key| async move {
        b.slice_incr_now(&key, hour, 50, HOUR).await
    })
    .await?;
    assert_eq!(h.backend().slice_incr_now(&key, hour, 51, HOUR).await?, 51);
    Ok(())
}

/// 300 concurrent `incr_bits` by 1: an 8-bit field saturates at 255, a 16-bit one reaches 300.
///
/// # Errors
///
/// A backend error.
pub async fn incr_bits_concurrent<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let (narrow, wide) = (h.key("narrow"), h.key("wide"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        let (b, narrow, wide) = (h.backend().clone(), narrow.clone(), wide.clone());
        tasks.spawn(async move {
            b.incr_bits(&narrow, &[3], 8, 1).await?;
            b.incr_bits(&wide, &[0, 2], 16, 1).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(crate::join_error)??;
    }
    let b = h.backend();
    assert_eq!(b.get_bits(&narrow, &[3], 8).await?, vec![255]);
    assert_eq!(b.get_bits(&wide, &[0, 1, 2], 16).await?, vec![300, 0, 300]);
    Ok(())
}

/// Sets: add counts new members, pop returns distinct members until empty,
/// remove counts removed ones.
///
/// # Errors
///
/// A backend error.
pub async fn set_add_remove_pop<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("S");
    assert_eq!(b.set_add(&key, &["1", "2", "3"], HOUR).await?, 3);
    assert_eq!(b.set_add(&key, &["3", "4"], HOUR).await?, 1);
    assert_eq!(b.set_remove(&key, &["4", "9"]).await?, 1);
    let two = b.set_pop(&key, 2).await?;
    let distinct: BTreeSet<&String> = two.iter().collect();
    assert_eq!((two.len(), distinct.len()), (2, 2), "{two:?}");
    let last = b.set_pop(&key, 1).await?;
    assert_eq!(last.len(), 1);
    let mut all: BTreeSet<String> = two.into_iter().collect();
    all.extend(last);
    assert_eq!(
        all,
        ["1", "2", "3"].iter().map(|s| (*s).to_owned()).collect()
    );
    assert!(b.set_pop(&key, 1).await?.is_empty());
    assert!(b.set_pop(&h.key("missing"), 5).await?.is_empty());
    assert_eq!(b.set_remove(&h.key("missing"), &["a"]).await?, 0);
    assert!(
        !b.exists(&key).await?,
        "an emptied set is deleted, as in Redis"
    );
    Ok(())
}

/// `set_add` with a TTL expires the set; `set_remove` keeps the TTL.
///
/// # Errors
///
/// A backend error.
pub async fn set_ttl<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let key = h.key("S");
    b.set_add(&key, &["a", "b"], Some(Duration::from_secs(1)))
        .await?;
    b.set_remove(&key, &["b"]).await?;
    assert!(matches!(
        b.get_expire(&key).await?,
        cashews::backend::Expiry::In(_)
    ));
    h.advance(Duration::from_millis(1_500)).await;
    assert!(b.set_pop(&key, 10).await?.is_empty());
    Ok(())
}

/// Commands on a key of another type fail with [`Error::WrongType`] and change nothing.
///
/// # Errors
///
/// A backend error.
pub async fn wrong_type<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let b = h.backend();
    let (text, set) = (h.key("text"), h.key("set"));
    b.set(&text, "hello".into(), SetOptions::ttl(HOUR)).await?;
    b.set_add(&set, &["m"], HOUR).await?;
    let is_wrong = |r: &Result<_>| matches!(r, Err(Error::WrongType { .. }));
    assert!(is_wrong(&b.set_add(&text, &["x"], HOUR).await.map(|_| ())));
    assert!(is_wrong(&b.set_pop(&text, 1).await.map(|_| ())));
    assert!(is_wrong(&b.incr(&set, 1, HOUR).await.map(|_| ())));
    assert!(is_wrong(&b.incr_bits(&set, &[0], 4, 1).await.map(|_| ())));
    assert!(is_wrong(
        &b.slice_incr(&set, 0, 1, 5, HOUR).await.map(|_| ())
    ));
    assert!(is_wrong(
        &b.slice_incr_now(&set, Duration::from_secs(1), 5, HOUR)
            .await
            .map(|_| ())
    ));
    assert_eq!(b.get(&text).await?, Some("hello".into()));
    assert_eq!(b.set_pop(&set, 5).await?, vec!["m".to_owned()]);
    Ok(())
}

/// 100 concurrent adds of distinct members count 100; 100 adds of one member count 1; 20
/// concurrent pops of 10 share 200 members without a duplicate.
///
/// # Errors
///
/// A backend error.
pub async fn set_concurrent<B: Backend + Clone>(h: Harness<B>) -> Result<()> {
    let key = h.key("S");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (b, key) = (h.backend().clone(), key.clone());
        tasks.spawn(async move {
            let member = if i < 100 {
                format!("m{i}")
            } else {
                "same".to_owned()
            };
            b.set_add(&key, &[&member], HOUR).await
        });
    }
    let mut added = 0;
    while let Some(done) = tasks.join_next().await {
        added += done.map_err(crate::join_error)??;
    }
    assert_eq!(added, 101);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (b, key) = (h.backend().clone(), key.clone());
        tasks.spawn(async move { b.set_pop(&key, 10).await });
    }
    let mut popped = Vec::new();
    while let Some(done) = tasks.join_next().await {
        popped.extend(done.map_err(crate::join_error)??);
    }
    let distinct: BTreeSet<&String> = popped.iter().collect();
    assert_eq!((popped.len(), distinct.len()), (101, 101));
    Ok(())
}
