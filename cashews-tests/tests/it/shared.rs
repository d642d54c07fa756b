//! `Cache::get_shared`: the memory backend keeps decoded objects beside the bytes, and the
//! bytes stay the truth for every other command.

use std::sync::Arc;
use std::time::Duration;

use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, MemoryBackend};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, PartialEq, Deserialize)]
struct JustId {
    id: u64,
}

fn on(backend: &MemoryBackend, url: &str) -> Cache {
    let cache = Cache::new();
    cache
        .setup_backend("", backend.clone(), CacheConfig::parse(url).unwrap())
        .unwrap();
    cache
}

fn user(id: u64) -> User {
    User {
        id,
        name: format!("user {id}"),
    }
}

#[tokio::test]
async fn the_first_read_decodes_later_reads_share_the_object() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.set("u", &user(1), "1h").await.unwrap();
    let a: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    let b: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    assert_eq!(*a, user(1));
    assert!(Arc::ptr_eq(&a, &b), "the second read must not decode again");
    assert_eq!(cache.get_shared::<User>("missing").await.unwrap(), None);
}

#[tokio::test]
async fn a_write_replaces_the_kept_object() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.set("u", &user(1), "1h").await.unwrap();
    let old: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    cache.set("u", &user(2), "1h").await.unwrap();
    let new: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    assert_eq!((old.id, new.id), (1, 2));
    cache.delete("u").await.unwrap();
    assert_eq!(cache.get_shared::<User>("u").await.unwrap(), None);
}

#[tokio::test]
async fn another_type_decodes_the_bytes_and_the_kept_object_stays() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.set("u", &user(7), "1h").await.unwrap();
    let first: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    let id: Arc<JustId> = cache.get_shared("u").await.unwrap().unwrap();
    assert_eq!(*id, JustId { id: 7 });
    assert_eq!(
        cache.get::<JustId>("u").await.unwrap(),
        Some(JustId { id: 7 })
    );
    assert_eq!(
        cache.get_shared::<u64>("u").await.unwrap(),
        None,
        "not an integer"
    );
    let again: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &again));
}

#[tokio::test]
async fn an_object_decoded_under_one_codec_never_serves_another() {
    let backend = MemoryBackend::new(MemoryOptions::default());
    let signed = on(&backend, "mem://?secret=one");
    let other_secret = on(&backend, "mem://?secret=two");
    let plain = on(&backend, "mem://");
    signed.set("u", &user(1), "1h").await.unwrap();
    assert!(signed.get_shared::<User>("u").await.unwrap().is_some());
    assert_eq!(other_secret.get_shared::<User>("u").await.unwrap(), None);
    assert_eq!(plain.get_shared::<User>("u").await.unwrap(), None);
    assert_eq!(plain.get::<User>("u").await.unwrap(), None);
}

#[tokio::test]
async fn every_other_command_still_sees_the_bytes() {
    let clock = Clock::manual();
    let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
    let cache = on(&backend, "mem://");
    cache.set("n", &5_i64, "10s").await.unwrap();
    assert_eq!(*cache.get_shared::<i64>("n").await.unwrap().unwrap(), 5);
    assert_eq!(
        cache.get_raw("n").await.unwrap().as_deref(),
        Some(&b"5"[..])
    );
    assert_eq!(cache.incr("n").await.unwrap(), 6);
    assert_eq!(*cache.get_shared::<i64>("n").await.unwrap().unwrap(), 6);
    assert!(cache.exists("n").await.unwrap());
    assert!(cache.get_size("n").await.unwrap().unwrap() > 0);
    assert!(
        cache.set_add("n", &["x"], "1h").await.is_err(),
        "a string is not a set"
    );

    assert!(cache.set_lock("lock", "token", "10s").await.unwrap());
    assert_eq!(
        cache.get_shared::<String>("lock").await.unwrap(),
        None,
        "raw text is no envelope"
    );
    assert!(!cache.unlock("lock", "other").await.unwrap());
    assert!(cache.unlock("lock", "token").await.unwrap());

    cache.set("s", "text", "10s").await.unwrap();
    assert_eq!(
        *cache.get_shared::<String>("s").await.unwrap().unwrap(),
        "text"
    );
    assert!(!cache.set_if_absent("s", "other", "10s").await.unwrap());
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        cache.get_shared::<String>("s").await.unwrap(),
        None,
        "expired"
    );
    assert!(cache.set_if_absent("s", "fresh", "10s").await.unwrap());
    assert_eq!(
        *cache.get_shared::<String>("s").await.unwrap().unwrap(),
        "fresh"
    );
}

#[tokio::test]
async fn a_byte_bounded_cache_keeps_no_objects() {
    let cache = Cache::new();
    cache.setup("mem://?size=100&max_bytes=1MiB").unwrap();
    cache.set("u", &user(1), "1h").await.unwrap();
    let a: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    let b: Arc<User> = cache.get_shared("u").await.unwrap().unwrap();
    assert_eq!(a, b);
    assert!(
        !Arc::ptr_eq(&a, &b),
        "the bound could not count a kept object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_reads_all_get_the_value() {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache.set("u", &user(3), "1h").await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let cache = cache.clone();
        tasks.spawn(async move { cache.get_shared::<User>("u").await });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(*done.unwrap().unwrap().unwrap(), user(3));
    }
}
