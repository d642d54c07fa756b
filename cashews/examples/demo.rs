//! The main job of cashews on the embedded default (`mem://`), no server needed:
//! `cargo run --example demo`.
//!
//! It caches a slow lookup, shows a stampede of 1,000 concurrent callers running the origin
//! once, counts with `incr`, takes a lock, expires a value, and shows what a bad URL and a bad
//! TTL say.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Profile {
    id: u64,
    name: String,
    plan: String,
}

async fn load_profile(id: u64, calls: Arc<AtomicUsize>) -> Profile {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await; // the slow origin
    Profile {
        id,
        name: format!("user {id}"),
        plan: "pro".into(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = cashews::cache();
    cache.setup("mem://?size=10000")?;
    println!("configured: mem://?size=10000");

    // 1. A cached call: the first one runs the origin, the second is a hit.
    let calls = Arc::new(AtomicUsize::new(0));
    for round in 1..=2 {
        let started = Instant::now();
        let c = Arc::clone(&calls);
        let profile: Profile = cache
            .get_or_set("profile:1", "10m", move || load_profile(1, c))
            .await?;
        println!(
            "round {round}: {profile:?} in {:?} (origin ran {} time(s))",
            started.elapsed(),
            calls.load(Ordering::SeqCst)
        );
    }

    // 2. A stampede: 1,000 concurrent callers on a cold key run the origin once.
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let c = Arc::clone(&calls);
        tasks.push(tokio::spawn(async move {
            cashews::cache()
                .get_or_set("profile:2", "10m", move || load_profile(2, c))
                .await
        }));
    }
    for task in tasks {
        task.await??;
    }
    println!(
        "1,000 concurrent callers on a cold key: origin ran {} time(s)",
        calls.load(Ordering::SeqCst)
    );

    // 3. Counters and a lock.
    for _ in 0..3 {
        cache.incr("page:views").await?;
    }
    println!(
        "page:views = {}",
        cache.incr_by("page:views", 0, None::<u64>).await?
    );
    let guard = cache.lock("job:nightly", "30s").await?;
    println!(
        "lock held: {}, second try: {}",
        cache.is_locked("job:nightly").await?,
        match cache.try_lock("job:nightly", "30s").await {
            Ok(_) => "acquired (unexpected)".to_owned(),
            Err(e) => e.to_string(),
        }
    );
    guard.release().await?;

    // 4. TTLs: a value set for 300 ms is gone after 400 ms.
    cache.set("flash", "now you see me", "300ms").await?;
    println!("flash: {:?}", cache.get::<String>("flash").await?);
    tokio::time::sleep(Duration::from_millis(400)).await;
    println!(
        "flash after 400ms: {:?}",
        cache.get::<String>("flash").await?
    );

    // 5. Patterns.
    cache.set("user:1", "ada", "1h").await?;
    cache.set("user:2", "grace", "1h").await?;
    println!("deleted by user:*: {}", cache.delete_match("user:*").await?);

    // 6. Bad input gets errors that say what to fix.
    let other = cashews::Cache::new();
    for url in ["mem://?size=lots", "foo://", "mem://?colour=blue"] {
        if let Err(e) = other.setup(url) {
            println!("setup({url:?}) -> {e}");
        }
    }
    if let Err(e) = cashews::Ttl::parse("1m10") {
        println!("ttl \"1m10\" -> {e}");
    }
    Ok(())
}
