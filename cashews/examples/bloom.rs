//! `#[cashews::bloom]`: answer "definitely not" from a Bloom filter, without the lookup:
//! `cargo run --example bloom`.
//!
//! A sign-in form asks "is this e-mail registered?" for every keystroke-ish attempt, mostly
//! with addresses that are not. A Bloom filter (a few bits per member, in the cache) rules
//! most of them out without a database query; only "maybe" answers run the real lookup, so
//! a false positive costs one query and is never a wrong answer.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::BloomOptions;

static DB_QUERIES: AtomicU32 = AtomicU32::new(0);

fn queries() -> u32 {
    DB_QUERIES.load(Ordering::SeqCst)
}

const USERS: [&str; 2] = ["ann@example.com", "bob@example.com"];

async fn db_has(email: &str) -> bool {
    DB_QUERIES.fetch_add(1, Ordering::SeqCst);
    USERS.contains(&email)
}

/// The filter is per function, sized for 10,000 members at 1 % false positives; the member
/// is the rendered `name`.
#[cashews::bloom(capacity = 10_000, name = "{email}")]
async fn registered(email: &str) -> bool {
    db_has(email).await
}

/// The attribute's filter key: `bloom:<module path>:<function>`.
const FILTER: &str = concat!("bloom:", module_path!(), ":registered");

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let cache = cashews::cache();
    cache.setup("mem://")?;
    let options = BloomOptions::new(10_000);

    // The filter learns members at sign-up (the function only reads it).
    for email in USERS {
        cashews::strategy::bloom_add(cache, FILTER, email, &options).await?;
    }

    let eve = registered("eve@example.org").await;
    println!("eve registered? {eve} (database queries: {})", queries());
    assert!(!eve);
    assert_eq!(queries(), 0); // ruled out by the filter

    let ann = registered("ann@example.com").await;
    println!("ann registered? {ann} (database queries: {})", queries());
    assert!(ann);
    assert_eq!(queries(), 1); // "maybe": confirmed by the database

    // The attribute expands to `cashews::strategy::bloom` on that filter key.
    let by_hand = cashews::strategy::bloom(cache, FILTER, "mallory@example.net", &options, async {
        db_has("mallory@example.net").await
    })
    .await;
    println!("by hand, mallory registered? {by_hand}");
    assert!(!by_hand);
    assert_eq!(queries(), 1);

    // Checking the filter alone, with no function: `false` is certain, `true` is "maybe".
    let maybe =
        cashews::strategy::bloom_contains(cache, FILTER, "bob@example.com", &options).await?;
    println!("bob maybe registered? {maybe}");
    assert!(maybe);
    Ok(())
}
