//! The main job of cashews on the embedded default (`mem://`), no server needed:
//! `cargo run --example demo`.
//!
//! First the attribute: `#[cashews::cache]` on an async function, a slow lookup cached under
//! `user:{id}`, and 1,000 concurrent callers on a cold key running it once. Then the `Cache`
//! API by hand: `get_or_set`, counters, a lock, a TTL expiring (on a manual clock, so no
//! waiting), patterns, and what a bad URL and a bad TTL say. Every claim printed is asserted.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct User {
    id: u64,
    name: String,
    plan: String,
}

/// How many times the origin of `get_user` really ran.
static USER_LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// One attribute line: the result is stored for 10 minutes under `user:<id>` in the default
/// cache, and concurrent callers of a cold key share one run of the body.
#[cashews::cache(ttl = "10m", key = "user:{id}")]
async fn get_user(id: u64) -> User {
    USER_LOOKUPS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await; // the slow origin
    User {
        id,
        name: format!("user {id}"),
        plan: "pro".into(),
    }
}

async fn load_report(calls: Arc<AtomicUsize>) -> String {
    calls.fetch_add(1, Ordering::SeqCst);
    "monthly report".to_owned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The default cache, which the attributes use.
    let cache = cashews::cache();
    cache.setup("mem://?size=10000")?;
    println!("configured: mem://?size=10000");

    // 1. The attribute: the first call runs the origin, the second is a hit.
    for round in 1..=2 {
        let started = Instant::now();
        let user = get_user(1).await;
        println!(
            "get_user(1), round {round}: {user:?} in {:?} (origin ran {} time(s))",
            started.elapsed(),
            USER_LOOKUPS.load(Ordering::SeqCst)
        );
    }
    assert_eq!(USER_LOOKUPS.load(Ordering::SeqCst), 1);
    let stored: Option<User> = cache.get("user:1").await?;
    println!("stored under `user:1`: {stored:?}");
    assert_eq!(stored.map(|u| u.id), Some(1));

    // 2. A stampede: 1,000 concurrent callers on a cold key run the origin once.
    USER_LOOKUPS.store(0, Ordering::SeqCst);
    let tasks: Vec<_> = (0..1_000).map(|_| tokio::spawn(get_user(2))).collect();
    for task in tasks {
        assert_eq!(task.await?.id, 2);
    }
    let runs = USER_LOOKUPS.load(Ordering::SeqCst);
    println!("1,000 concurrent callers of get_user(2) on a cold key: origin ran {runs} time(s)");
    assert_eq!(runs, 1);

    // 3. The same by hand: `get_or_set` runs the loader only on a miss.
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let c = Arc::clone(&calls);
        let report: String = cache
            .get_or_set("report:2026-11", "1h", move || load_report(c))
            .await?;
        assert_eq!(report, "monthly report");
    }
    println!(
        "get_or_set twice: the loader ran {} time(s)",
        calls.load(Ordering::SeqCst)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // 4. Counters and a lock.
    for _ in 0..3 {
        cache.incr("page:views").await?;
    }
    let views = cache.incr_by("page:views", 0, None::<u64>).await?;
    println!("page:views = {views}");
    assert_eq!(views, 3);
    let guard = cache.lock("job:nightly", "30s").await?;
    let second = cache.try_lock("job:nightly", "30s").await;
    println!(
        "lock held: {}, second try: {}",
        cache.is_locked("job:nightly").await?,
        match &second {
            Ok(_) => "acquired (unexpected)".to_owned(),
            Err(e) => e.to_string(),
        }
    );
    assert!(second.is_err());
    drop(second);
    guard.release().await?;
    assert!(!cache.is_locked("job:nightly").await?);

    // 5. TTLs, on a cache with a manual clock: time moves only when told to.
    let clock = cashews::Clock::manual();
    let timed = cashews::Cache::new();
    timed.setup_with_clock("mem://", clock.clone())?;
    timed.set("flash", "now you see me", "300ms").await?;
    let before = timed.get::<String>("flash").await?;
    clock.advance(Duration::from_millis(400));
    let after = timed.get::<String>("flash").await?;
    println!("flash: {before:?}, 400 ms later: {after:?}");
    assert!(before.is_some());
    assert_eq!(after, None);

    // 6. Patterns (Redis globs, on every backend).
    cache.set("profile:1", "ada", "1h").await?;
    cache.set("profile:2", "grace", "1h").await?;
    let deleted = cache.delete_match("profile:*").await?;
    println!("deleted by profile:*: {deleted}");
    assert_eq!(deleted, 2);

    // 7. Bad input gets errors that say what to fix.
    let other = cashews::Cache::new();
    for url in ["mem://?size=lots", "foo://", "mem://?colour=blue"] {
        let err = other.setup(url).err().ok_or("a bad URL was accepted")?;
        println!("setup({url:?}) -> {err}");
    }
    let err = cashews::Ttl::parse("1m10")
        .err()
        .ok_or("a bad TTL was accepted")?;
    println!("ttl \"1m10\" -> {err}");
    Ok(())
}
