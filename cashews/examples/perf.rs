//! `#[cashews::perf]`: refuse calls for a while once they turn abnormally slow:
//! `cargo run --example perf`.
//!
//! A search endpoint queries a database that sometimes chokes. Once a search takes more
//! than twice the mean of the recent ones, piling more queries on the struggling database
//! only makes it worse: for a minute, searches are refused at once (the page can show
//! "search is busy") and the database gets room to recover.
//!
//! The latencies are `tokio::time::sleep`s on a paused Tokio clock (the `test-util`
//! feature; it jumps ahead when every task sleeps) and the cache runs on a manual clock,
//! so the example is deterministic and takes no real time.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use cashews::Clock;
use cashews::strategy::PerfOptions;

/// How long the database takes right now, and how many queries it got.
static DB_LATENCY_MS: AtomicU64 = AtomicU64::new(10);
static QUERIES: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
enum SearchError {
    Busy(cashews::Error),
}

impl From<cashews::Error> for SearchError {
    fn from(error: cashews::Error) -> Self {
        Self::Busy(error)
    }
}

async fn query_db(text: &str) -> Result<usize, SearchError> {
    QUERIES.fetch_add(1, Ordering::SeqCst);
    let latency = DB_LATENCY_MS.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(latency)).await;
    Ok(text.len()) // the number of hits, say
}

/// Keeps the last 3 latencies under `perf:search:trace`; a degradation sets
/// `perf:search:lock` for a minute.
#[cashews::perf(ttl = "1m", key = "search", trace_size = 3)]
async fn search(text: &str) -> Result<usize, SearchError> {
    query_db(text).await
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> cashews::Result<()> {
    let clock = Clock::manual();
    cashews::cache().setup_with_clock("mem://", clock.clone())?;

    for _ in 0..3 {
        assert!(search("rust").await.is_ok()); // the trace: 10 ms, 10 ms, 10 ms
    }
    DB_LATENCY_MS.store(100, Ordering::SeqCst); // the database chokes
    let slow = search("rust").await;
    println!("a 100 ms search: {slow:?} (its own result, but now degraded)");
    assert!(slow.is_ok());

    DB_LATENCY_MS.store(10, Ordering::SeqCst);
    let refused = search("rust").await;
    println!("next search: {refused:?}");
    assert!(matches!(
        refused,
        Err(SearchError::Busy(
            cashews::Error::PerformanceDegraded { .. }
        ))
    ));
    assert_eq!(QUERIES.load(Ordering::SeqCst), 4); // refused before the query

    // The attribute expands to `cashews::strategy::perf`, the key prefixed `perf:`; on the
    // same key, the same lock refuses.
    let options = PerfOptions::new(Duration::from_secs(60)).trace_size(3);
    let by_hand =
        cashews::strategy::perf(cashews::cache(), "perf:search", &options, query_db("cache")).await;
    println!("by hand: {by_hand:?}");
    assert!(by_hand.is_err());

    clock.advance(Duration::from_secs(61));
    let later = search("rust").await;
    println!("a minute later: {later:?}");
    assert!(later.is_ok());
    assert_eq!(QUERIES.load(Ordering::SeqCst), 5);
    Ok(())
}
