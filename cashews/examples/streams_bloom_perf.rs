//! `#[cashews::iterator]`, `#[cashews::bloom]` and `#[cashews::perf]`:
//! `cargo run --example streams_bloom_perf`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::StreamExt;

static ROWS_READ: AtomicU32 = AtomicU32::new(0);

/// The rows of a slow query, replayed from the cache after one complete pass.
#[cashews::iterator(ttl = "10m", key = "rows:{table}")]
fn rows(table: &'static str) -> impl futures_core::Stream<Item = String> {
    futures_util::stream::iter(1..=3).map(move |i| {
        ROWS_READ.fetch_add(1, Ordering::SeqCst);
        format!("{table} row {i}")
    })
}

/// "Definitely not registered" is answered from a Bloom filter, without a lookup.
#[cashews::bloom(capacity = 10_000, name = "{email}")]
async fn registered(email: &str) -> bool {
    email == "ann@example.com"
}

#[derive(Debug)]
struct ApiError(String);

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self(error.to_string())
    }
}

/// Refused for a minute once a call is much slower than the recent ones.
#[cashews::perf(ttl = "1m", key = "search")]
async fn search(query: &str) -> Result<usize, ApiError> {
    Ok(query.len())
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;
    let first: Vec<String> = rows("users").collect().await;
    let again: Vec<String> = rows("users").collect().await;
    println!(
        "{first:?} then {again:?}; rows read from the source: {}",
        ROWS_READ.load(Ordering::SeqCst)
    );
    println!(
        "eve registered? {} (the filter is empty: no lookup)",
        registered("eve@example.com").await
    );
    match search("rust cache").await {
        Ok(n) => println!("search: {n} results"),
        Err(error) => println!("search refused: {}", error.0),
    }
    Ok(())
}
