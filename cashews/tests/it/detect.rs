//! Detect (SPEC §6.3) and `upper` (§3.0.1): what the cache served, and stacked caches.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::{Cache, Clock, detect};

use crate::support::manual_cache;

static CACHES: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "10s", key = "key", cache = CACHES.0)]
async fn simple() -> u32 {
    1
}

#[cashews::cache(ttl = "10s", key = "other", cache = CACHES.0)]
async fn other() -> u32 {
    2
}

#[tokio::test]
async fn a_scope_sees_hits_not_misses_and_nested_scopes_see_their_own() {
    let (_, first) = detect(simple()).await;
    assert!(first.is_empty(), "a miss records nothing");
    let (_, second) = detect(simple()).await;
    assert_eq!(second.keys(), vec!["key".to_owned()]);
    assert_eq!(second.served()[0].strategy, "simple");
    CACHES.1.advance(Duration::from_secs(11));
    let (_, third) = detect(async {
        simple().await;
        simple().await
    })
    .await;
    assert_eq!(
        third.served().len(),
        1,
        "after expiry: a recompute, then one hit"
    );

    other().await;
    let (inner, outer) = detect(async {
        let (_, inner) = detect(simple()).await;
        other().await;
        inner
    })
    .await;
    assert_eq!(inner.keys(), vec!["key".to_owned()]);
    assert_eq!(
        outer.keys(),
        vec!["key".to_owned(), "other".to_owned()],
        "enclosing scopes see inner hits"
    );
}

static STACK: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);
static INNER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1h", key = "key2", cache = STACK.0)]
async fn inner() -> String {
    INNER_RUNS.fetch_add(1, Ordering::SeqCst);
    "fresh".to_owned()
}

#[cashews::cache(ttl = "1h", key = "key1", upper = true, cache = STACK.0)]
async fn outer() -> String {
    inner().await
}

#[tokio::test]
async fn upper_does_not_store_what_an_inner_cache_served() {
    STACK.0.set("key2", "test2", "1h").await.unwrap();
    assert_eq!(outer().await, "test2");
    assert!(
        !STACK.0.exists("key1").await.unwrap(),
        "served by the inner cache: not stored"
    );
    STACK.0.delete("key2").await.unwrap();
    assert_eq!(outer().await, "fresh");
    assert!(STACK.0.exists("key1").await.unwrap(), "computed: stored");
    assert_eq!(INNER_RUNS.load(Ordering::SeqCst), 1);
}

static FAILOVER: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);

#[cashews::cache(ttl = "1h", key = "source", cache = FAILOVER.0)]
async fn source() -> u32 {
    5
}

#[cashews::failover(ttl = "1h", key = "wrapped", cache = FAILOVER.0)]
async fn wrapped() -> Result<u32, String> {
    Ok(source().await)
}

#[tokio::test]
async fn failover_behaves_as_upper() {
    wrapped().await.unwrap();
    assert!(
        FAILOVER.0.exists("fail:wrapped").await.unwrap(),
        "computed by the inner function: stored"
    );
    FAILOVER.0.delete("fail:wrapped").await.unwrap();
    wrapped().await.unwrap();
    assert!(
        !FAILOVER.0.exists("fail:wrapped").await.unwrap(),
        "served by the inner cache: not stored"
    );
}

static FURTHER: LazyLock<(Cache, Clock)> = LazyLock::new(manual_cache);
static FURTHER_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1h", key = "further", cache = FURTHER.0)]
async fn counted() -> usize {
    FURTHER_RUNS.fetch_add(1, Ordering::SeqCst)
}

#[tokio::test]
async fn invalidate_further_recomputes_inside_and_keeps_the_fresh_value() {
    use futures_util::StreamExt;
    let cache = &FURTHER.0;
    assert_eq!(counted().await, 0);
    assert_eq!(counted().await, 0);
    let fresh = cashews::invalidate_further(counted()).await;
    assert_eq!(fresh, 1, "inside: recomputed");
    assert_eq!(
        counted().await,
        1,
        "afterwards the fresh value stays cached"
    );

    cache.set("key", "value", "1h").await.unwrap();
    let inside = cashews::invalidate_further(async {
        cache.set("key", "value2", "1h").await.unwrap();
        cache.set("key2", "value2", "1h").await.unwrap();
        let got: Option<String> = cache.get("key").await.unwrap();
        let many: Vec<Option<String>> = cache.get_many(&["key"]).await.unwrap();
        let matched: Vec<_> = cache.get_match::<String>("key2*").collect().await;
        (got, many, matched.len())
    })
    .await;
    assert_eq!(inside, (None, vec![None], 0));
    let after: Vec<Option<String>> = cache.get_many(&["key", "key2"]).await.unwrap();
    assert_eq!(after, vec![None, None], "every key read inside was deleted");
    cache.set("key3", "value3", "1h").await.unwrap();
    assert_eq!(
        cache.get::<String>("key3").await.unwrap(),
        Some("value3".to_owned()),
        "outside: normal reads"
    );
}
