//! `mem://?max_bytes=…`: the byte budget holds for every command, and a value that cannot be
//! kept is an error, never reported stored (issue 13, items 4 and 5).
//!
//! The accounting is read through the public API: the sum of `get_size` (key, value and the
//! per-entry overhead, the bytes the budget counts) over every key.

use cashews::{Bytes, Cache, Error};
use futures_util::StreamExt;

const KIB: u64 = 1024;

fn cache(url: &str) -> Cache {
    let cache = Cache::new();
    cache.setup(url).unwrap();
    cache
}

/// The bytes the budget counts, over every key: (keys, bytes).
async fn accounted(cache: &Cache) -> (usize, u64) {
    let keys: Vec<String> = cache
        .scan("*")
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await;
    let mut bytes = 0;
    for key in &keys {
        bytes += cache.get_size(key).await.unwrap().unwrap_or(0);
    }
    (keys.len(), bytes)
}

/// Fills `count` keys `other:N` of `size` bytes each.
async fn fill_others(cache: &Cache, count: usize, size: usize) {
    for i in 0..count {
        let value = Bytes::from(vec![b'o'; size]);
        assert!(
            cache
                .set_raw(&format!("other:{i}"), value, None::<u64>)
                .await
                .unwrap()
        );
    }
}

async fn others_left(cache: &Cache, count: usize) -> usize {
    let mut left = 0;
    for i in 0..count {
        left += usize::from(cache.exists(&format!("other:{i}")).await.unwrap());
    }
    left
}

fn assert_over_budget(err: &Error, key: &str) {
    let Error::ValueOverBudget {
        key: named, option, ..
    } = err
    else {
        panic!("expected ValueOverBudget, got {err:?}");
    };
    assert_eq!(named, key);
    assert_eq!(*option, "max_bytes");
    let message = err.to_string();
    assert!(
        message.contains("larger than the cache's byte budget")
            && message.contains("raise `max_bytes`"),
        "{message}"
    );
}

/// Item 4: a 200 KB value under `max_bytes=64KiB` is an error through every kind of set, in
/// safe mode too (a refused call, as `max_value_size` is, not a failed backend), and the store
/// is left as it was: the key keeps its previous value, the other keys stay.
#[tokio::test]
async fn a_value_larger_than_the_byte_budget_is_an_error_not_stored() {
    for url in ["mem://?max_bytes=64KiB", "mem://?max_bytes=64KiB&safe=1"] {
        let cache = cache(url);
        fill_others(&cache, 10, 100).await;
        assert!(cache.set("k", "old", None::<u64>).await.unwrap());
        let big = "x".repeat(200_000);

        let err = cache.set("k", &big, None::<u64>).await.unwrap_err();
        assert_over_budget(&err, "k");
        let err = cache.set("fresh", &big, None::<u64>).await.unwrap_err();
        assert_over_budget(&err, "fresh");
        let err = cache
            .set_if_present("k", &big, None::<u64>)
            .await
            .unwrap_err();
        assert_over_budget(&err, "k");
        let err = cache
            .set_if_absent("fresh", &big, None::<u64>)
            .await
            .unwrap_err();
        assert_over_budget(&err, "fresh");
        let raw = Bytes::from(vec![b'x'; 200_000]);
        let err = cache.set_raw("k", raw, None::<u64>).await.unwrap_err();
        assert_over_budget(&err, "k");

        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("old"),
            "{url}"
        );
        assert!(!cache.exists("fresh").await.unwrap(), "{url}");
        assert_eq!(others_left(&cache, 10).await, 10, "{url}");
        let (_, bytes) = accounted(&cache).await;
        assert!(bytes <= 64 * KIB, "{url}: {bytes} bytes accounted");
    }
}

/// Item 5, sets: 3,000 `set_add` of 400-byte members on one key under `max_bytes=1MiB` (1.27
/// MB of members): the accounted bytes never pass the budget; the set's growth evicts the
/// other keys, and once the set alone would pass what one entry may take, `set_add` is refused.
#[tokio::test]
async fn a_growing_set_evicts_others_then_is_refused_and_the_budget_holds() {
    let cache = cache("mem://?max_bytes=1MiB");
    fill_others(&cache, 400, 1000).await;
    let (_, before) = accounted(&cache).await;
    assert!(before > 400 * 1000, "the others are all in: {before}");
    let (mut added, mut refused) = (0u64, 0u64);
    for i in 0..3_000 {
        let member = format!("{i:0>400}");
        match cache.set_add("set", &[member.as_str()], None::<u64>).await {
            Ok(n) => added += n,
            Err(err) => {
                assert_over_budget(&err, "set");
                refused += 1;
            }
        }
        if i % 250 == 0 {
            let (_, bytes) = accounted(&cache).await;
            assert!(
                bytes <= 1 << 20,
                "after {i} set_add: {bytes} bytes accounted"
            );
        }
    }
    let (_, bytes) = accounted(&cache).await;
    assert!(bytes <= 1 << 20, "{bytes} bytes accounted");
    assert!(refused > 0, "the set grew past what one entry may take");
    assert_eq!(added + refused, 3_000);
    // An other weighs 2 of the 1000 units, the set up to 970: at most 15 others fit beside it.
    let left = others_left(&cache, 400).await;
    assert!(
        left <= 15,
        "the set's growth evicted the others: {left} left"
    );
    let set = cache.get_size("set").await.unwrap().unwrap();
    assert!(
        set > 900 * KIB && set <= 1 << 20,
        "the set is kept: {set} bytes"
    );
}

/// Item 5, sliding windows: a hot rate-limit key recording 20,000 events (160 KB) under
/// `max_bytes=64KiB`: the budget holds at every step, the window's growth evicts the others,
/// and an event that would take the window past what one entry may take is refused.
#[tokio::test]
async fn a_growing_window_evicts_others_then_is_refused_and_the_budget_holds() {
    let cache = cache("mem://?max_bytes=64KiB");
    fill_others(&cache, 50, 500).await;
    let mut refused = 0;
    for i in 0..20_000u64 {
        match cache.slice_incr("hot", 0, i, u64::MAX, None::<u64>).await {
            Ok(count) => assert_eq!(count, i + 1, "no event was lost"),
            Err(err) => {
                assert_over_budget(&err, "hot");
                refused += 1;
            }
        }
        if i % 1000 == 0 {
            let (_, bytes) = accounted(&cache).await;
            assert!(
                bytes <= 64 * KIB,
                "after {i} events: {bytes} bytes accounted"
            );
        }
    }
    let (_, bytes) = accounted(&cache).await;
    assert!(bytes <= 64 * KIB, "{bytes} bytes accounted");
    assert!(refused > 10_000, "refused {refused}");
    // An other weighs 9 of the 1000 units, the window up to 970: at most 3 fit beside it.
    let left = others_left(&cache, 50).await;
    assert!(
        left <= 3,
        "the window's growth evicted the others: {left} left"
    );
    let window = cache.get_size("hot").await.unwrap().unwrap();
    assert!(window > 60 * KIB, "the window is kept: {window} bytes");
}

/// Item 5, bit fields and counters: `incr_bits` growing a field evicts others, a field past
/// what one entry may take is refused (the field keeps its bits), and the budget holds.
#[tokio::test]
async fn growing_bit_fields_evict_others_or_are_refused_and_the_budget_holds() {
    let cache = cache("mem://?max_bytes=64KiB");
    fill_others(&cache, 50, 500).await;
    assert_eq!(cache.incr_bits("bits", &[8], 1, 1).await.unwrap(), vec![1]);
    // 50,000 bytes of bits: fits one entry, not beside the others.
    let grown = cache.incr_bits("bits", &[400_000], 1, 1).await.unwrap();
    assert_eq!(grown, vec![1]);
    let (_, bytes) = accounted(&cache).await;
    assert!(bytes <= 64 * KIB, "{bytes} bytes accounted");
    assert!(
        others_left(&cache, 50).await < 50,
        "the field's growth evicted others"
    );
    // 125,000 bytes of bits: more than one entry may take.
    let err = cache
        .incr_bits("bits", &[1_000_000], 1, 1)
        .await
        .unwrap_err();
    assert_over_budget(&err, "bits");
    let kept = cache
        .get_bits("bits", &[8, 400_000, 1_000_000], 1)
        .await
        .unwrap();
    assert_eq!(kept, vec![1, 1, 0]);
    let (_, bytes) = accounted(&cache).await;
    assert!(bytes <= 64 * KIB, "{bytes} bytes accounted");
}
