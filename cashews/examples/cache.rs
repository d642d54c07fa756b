//! `#[cashews::cache]`: one attribute line caches an async function:
//! `cargo run --example cache`.
//!
//! A slow lookup keyed by a template over the argument's fields, `Err` results not stored,
//! `None` stored as a "not found", and the same strategy called without the macro.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

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

#[derive(Debug)]
enum ApiError {
    Unavailable,
}

/// Cached for an hour under `profile:<id>:<lang>`; an `Err` is never stored.
#[cashews::cache(ttl = "1h", key = "profile:{request.user_id}:{request.lang:lower}")]
async fn profile(request: &Request) -> Result<Profile, ApiError> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await; // the slow origin
    if request.user_id == 0 {
        return Err(ApiError::Unavailable);
    }
    Ok(Profile {
        id: request.user_id,
        name: format!("user {}", request.user_id),
    })
}

/// `None` ("no such user") is cached too, for a minute: lookups of unknown ids stay cheap.
#[cashews::cache(ttl = "1m")]
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
        "{first:?} then {again:?}: the body ran {} time(s)",
        LOOKUPS.load(Ordering::SeqCst)
    );
    let stored: Option<Profile> = cashews::cache().get("profile:42:en").await?;
    println!("stored under `profile:42:en`: {stored:?}");

    let down = Request {
        user_id: 0,
        lang: "en".to_owned(),
    };
    println!("an error is not stored: {:?}", profile(&down).await);
    println!("so the next call runs again: {:?}", profile(&down).await);

    println!("find_user(\"bob\") = {:?}, twice:", find_user("bob").await);
    find_user("bob").await;
    println!("lookups so far: {}", LOOKUPS.load(Ordering::SeqCst));

    // The same strategy without the macro: for closures, trait methods, generic code.
    let value = cashews::strategy::cache(
        cashews::cache(),
        "by-hand",
        cashews::Ttl::parse("5m")?,
        &cashews::strategy::CacheOptions::new(),
        cashews::strategy::Plain::<String>::new(),
        async { "computed once".to_owned() },
    )
    .await;
    println!("by hand: {value}");
    Ok(())
}
