//! Recipes from the docs, run on every backend.
//!
//! Group invalidation by an index field (what Python cashews 2.x called `IndexRedis`, with
//! `index_name` and `index_field`): every cached function whose key holds `{user_uid}` tags
//! its key with `user:{user_uid}`, and one `delete_tags(&["user:<uid>"])` drops every cached
//! value of that user at once, whatever the function, and nothing of other users.

use std::sync::atomic::{AtomicUsize, Ordering};

use cashews::Cache;

tokio::task_local! {
    /// The cache under test: the functions below read it, so one body serves every backend.
    static INDEX: Cache;
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[cashews::cache(ttl = "1h", key = "profile:{user_uid}", tags = ["user:{user_uid}"], cache = INDEX.get())]
async fn profile(user_uid: &str) -> String {
    RUNS.fetch_add(1, Ordering::SeqCst);
    format!("profile of {user_uid}")
}

#[cashews::cache(
    ttl = "1h",
    key = "orders:{user_uid}:{page}",
    tags = ["user:{user_uid}"],
    cache = INDEX.get()
)]
async fn orders(user_uid: &str, page: u32) -> Vec<u32> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    vec![page; 3]
}

#[cashews::cache(ttl = "1h", key = "catalog:{page}", cache = INDEX.get())]
async fn catalog(page: u32) -> u32 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    page * 10
}

/// Calls every function once; returns how many bodies ran.
async fn call_all() -> usize {
    let before = RUNS.load(Ordering::SeqCst);
    assert_eq!(profile("a").await, "profile of a");
    assert_eq!(orders("a", 1).await, vec![1; 3]);
    assert_eq!(orders("a", 2).await, vec![2; 3]);
    assert_eq!(profile("b").await, "profile of b");
    assert_eq!(orders("b", 1).await, vec![1; 3]);
    assert_eq!(catalog(1).await, 10);
    RUNS.load(Ordering::SeqCst) - before
}

async fn group_invalidation(cache: Cache) {
    INDEX
        .scope(cache.clone(), async {
            assert_eq!(call_all().await, 6, "cold: every body runs");
            assert_eq!(call_all().await, 0, "warm: every call is a hit");
            // One call drops every value of user `a`: its profile and both order pages.
            assert_eq!(cache.delete_tags(&["user:a"]).await.unwrap(), 3);
            assert_eq!(call_all().await, 3, "only user a's three values ran again");
            assert_eq!(call_all().await, 0);
            assert_eq!(cache.delete_tags(&["user:nobody"]).await.unwrap(), 0);
        })
        .await;
}

#[tokio::test]
async fn group_invalidation_by_index_field_on_mem() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    group_invalidation(cache).await;
}

#[cfg(feature = "disk")]
#[tokio::test]
async fn group_invalidation_by_index_field_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "disk://?directory={}&shards=4",
            dir.path().display()
        ))
        .unwrap();
    group_invalidation(cache).await;
}

/// A cache on `url` with a key prefix of its own, or `None` (skipped outside CI) when the
/// server does not answer.
#[cfg(feature = "redis")]
async fn redis_cache(url: &str, sep: char) -> Option<Cache> {
    let prefix = crate::support::unique_prefix("recipe");
    let cache = Cache::new();
    cache
        .setup(&format!("{url}{sep}key_prefix={prefix}"))
        .unwrap();
    match cache.ping().await {
        Ok(_) => Some(cache),
        Err(e) => cashews_testkit::skip_unless_ci("group_invalidation", &format!("{url}: {e}")),
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn group_invalidation_by_index_field_on_redis() {
    if let Some(cache) = redis_cache(&crate::support::redis_url(), '?').await {
        group_invalidation(cache).await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn group_invalidation_by_index_field_on_redis_client_side() {
    let url = format!("{}?client_side=true", crate::support::redis_url());
    if let Some(cache) = redis_cache(&url, '&').await {
        group_invalidation(cache).await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn group_invalidation_by_index_field_on_redis_cluster() {
    let url = std::env::var("CASHEWS_REDIS_CLUSTER_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:7000?cluster=true".to_owned());
    if let Some(cache) = redis_cache(&url, '&').await {
        group_invalidation(cache).await;
    }
}
