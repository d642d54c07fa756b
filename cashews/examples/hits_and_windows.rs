//! `#[cashews::hit]`, `#[cashews::dynamic]`, `#[cashews::slice_rate_limit]` and
//! `#[cashews::dual_bloom]`: `cargo run --example hits_and_windows`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

static COMPUTED: AtomicU32 = AtomicU32::new(0);

/// Recomputed after every 3 hits.
#[cashews::hit(ttl = "1h", cache_hits = 3, key = "leaderboard")]
async fn leaderboard() -> u32 {
    COMPUTED.fetch_add(1, Ordering::SeqCst)
}

/// `hit` with dynamic defaults: a day's TTL, refreshed as it is read.
#[cashews::dynamic(key = "trending:{tag}")]
async fn trending(tag: &str) -> String {
    format!("#{tag} is trending")
}

#[derive(Debug)]
struct ApiError(String);

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self(error.to_string())
    }
}

/// At most 2 searches in any 10 seconds, counted exactly over a sliding window.
#[cashews::slice_rate_limit(limit = 2, period = "10s", key = "search:{user}")]
async fn search(user: &str) -> Result<&'static str, ApiError> {
    let _ = user;
    Ok("results")
}

/// Remembers both answers: a repeated question is answered by a filter.
#[cashews::dual_bloom(capacity = 1000)]
async fn is_prime(n: u64) -> bool {
    n > 1
        && (2..n)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;
    for _ in 0..8 {
        leaderboard().await;
    }
    println!(
        "8 reads of the leaderboard computed it {} times",
        COMPUTED.load(Ordering::SeqCst)
    );
    println!("{}", trending("rust").await);
    for attempt in 1..=3 {
        match search("ann").await {
            Ok(found) => println!("search {attempt}: {found}"),
            Err(refused) => println!("search {attempt}: refused ({})", refused.0),
        }
    }
    println!(
        "97 is prime: {}; asked again: {}",
        is_prime(97).await,
        is_prime(97).await
    );
    Ok(())
}
