//! `#[cashews::invalidate]` and `cashews::invalidate_further`: drop cached entries when
//! the data behind them changes: `cargo run --example invalidate`.
//!
//! A user's profile page and settings are cached under `user:<id>:...`. After a successful
//! rename every entry of that user must go, or readers see the old name for an hour. The
//! pattern's `*` is the template's own wildcard; argument values are escaped, so a user id
//! of `*` cannot wipe everybody's entries.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::Fallible;

static LOADS: AtomicU32 = AtomicU32::new(0);

fn loads() -> u32 {
    LOADS.load(Ordering::SeqCst)
}

#[cashews::cache(ttl = "1h", key = "user:{id}:profile")]
async fn profile(id: String) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("profile of {id}, load {}", loads())
}

#[cashews::cache(ttl = "1h", key = "user:{id}:settings")]
async fn settings(id: String) -> String {
    LOADS.fetch_add(1, Ordering::SeqCst);
    format!("settings of {id}")
}

/// After an `Ok`, deletes `user:<id>:*`; after an `Err`, nothing (the data did not change).
#[cashews::invalidate(key = "user:{id}:*")]
async fn rename(id: String, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name is required".to_owned());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let cache = cashews::cache();
    cache.setup("mem://")?;
    let ann = || "42".to_owned();
    profile(ann()).await;
    settings(ann()).await;
    assert_eq!(loads(), 2);

    assert!(rename(ann(), "").await.is_err());
    assert!(rename("*".to_owned(), "Mallory").await.is_ok()); // the literal key `user:*:…`
    println!("after a failed rename and a rename of user `*`: still cached");
    assert!(cache.exists("user:42:profile").await? && cache.exists("user:42:settings").await?);

    rename(ann(), "Ann").await.ok();
    println!("after renaming user 42: {}", profile(ann()).await);
    assert!(!cache.exists("user:42:settings").await?);
    assert_eq!(loads(), 3);

    // The attribute expands to `cashews::strategy::invalidate`: run the call, and if the
    // shape says it succeeded, delete the keys matching the (already escaped) pattern.
    let by_hand: Result<(), String> =
        cashews::strategy::invalidate(cache, "user:42:*", Fallible::<(), String>::new(), async {
            Ok(())
        })
        .await;
    assert!(by_hand.is_ok());
    assert!(!cache.exists("user:42:profile").await?);
    println!("by hand: user 42's entries deleted");

    // `invalidate_further`: inside it, every cached read misses and recomputes (and stores
    // the fresh value), for "refresh" buttons or after a bulk import. No pattern needed.
    let cached = profile(ann()).await;
    let fresh = cashews::invalidate_further(profile(ann())).await;
    println!("cached: {cached}; refreshed: {fresh}");
    assert_ne!(cached, fresh);
    assert_eq!(profile(ann()).await, fresh); // the fresh value stays cached
    Ok(())
}
