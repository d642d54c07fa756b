//! `#[cashews::cache]`: one attribute line caches an async function:
//! `cargo run --example cache`.
//!
//! A slow profile lookup keyed by a template over the argument's fields: `Err` is not
//! stored (a failing origin is retried), `None` is (an unknown user stays cheap), and the
//! same strategy is called by hand through `cashews::strategy::cache`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cashews::strategy::{CacheOptions, Fallible};
use serde::{Deserialize, Serialize};

/// How many times the origin really ran: what the cache saves.
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

fn lookups() -> usize {
    LOOKUPS.load(Ordering::SeqCst)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
}

#[derive(Debug)]
struct Request {
    user_id: u64,
    lang: String,
}

#[derive(Debug, PartialEq)]
enum ApiError {
    Unavailable,
}

/// Cached for an hour under `profile:<id>:<lang>` (the `lower` filter makes `EN` and `en`
/// one entry); an `Err` is never stored, so the next call retries the origin.
#[cashews::cache(ttl = "1h", key = "profile:{request.user_id}:{request.lang:lower}")]
async fn profile(request: &Request) -> Result<Profile, ApiError> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await; // the slow origin
    if request.user_id == 0 {
        return Err(ApiError::Unavailable);
    }
    Ok(Profile {
        id: request.user_id,
        name: format!("user {}", request.user_id),
    })
}

/// `None` ("no such user") is cached too: repeated lookups of unknown names stay cheap.
#[cashews::cache(ttl = "1m", key = "user-id:{name}")]
async fn find_user(name: &str) -> Option<u64> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    (name == "ann").then_some(7)
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    let request = Request {
        user_id: 42,
        lang: "EN".to_owned(),
    };
    let first = profile(&request).await;
    let again = profile(&request).await;
    println!(
        "{first:?} then {again:?}: the origin ran {} time(s)",
        lookups()
    );
    assert_eq!(first, again);
    assert_eq!(lookups(), 1);
    let stored: Option<Profile> = cashews::cache().get("profile:42:en").await?;
    println!("stored under `profile:42:en`: {stored:?}");
    assert_eq!(stored.as_ref(), first.as_ref().ok());

    let down = Request {
        user_id: 0,
        lang: "en".to_owned(),
    };
    println!("an error is not stored: {:?}", profile(&down).await);
    println!("so the next call runs again: {:?}", profile(&down).await);
    assert_eq!(lookups(), 3);

    assert_eq!(find_user("bob").await, None);
    assert_eq!(find_user("bob").await, None); // the cached `None`
    println!(
        "find_user(\"bob\") twice: None, origin runs so far: {}",
        lookups()
    );
    assert_eq!(lookups(), 4);

    // What the attribute expands to, callable by hand (closures, trait methods, generic
    // code): same cache, key, TTL and shape, so it reads what `profile` stored.
    let by_hand = cashews::strategy::cache(
        cashews::cache(),
        "profile:42:en",
        cashews::Ttl::parse("1h")?,
        &CacheOptions::new(),
        Fallible::<Profile, ApiError>::new(),
        async {
            LOOKUPS.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::Unavailable)
        },
    )
    .await;
    println!("by hand, same key: {by_hand:?} (a hit: the origin did not run)");
    assert_eq!(by_hand, first);
    assert_eq!(lookups(), 4);
    Ok(())
}
