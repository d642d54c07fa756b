//! `#[cashews::slice_rate_limit]`: at most N calls in ANY window of a period (a sliding
//! window, counted exactly): `cargo run --example slice_rate_limit`.
//!
//! A search API allows each API key 2 searches per 10 seconds. A fixed window (see the
//! `rate_limit` example) restarts its count when the window ends, so a client can fire 2
//! calls just before the boundary and 2 just after: 4 in a second. The sliding window
//! stores the time of each call and counts those of the last 10 seconds, whenever "now" is.
//!
//! Time is moved by hand with a manual clock, so the example takes no real time.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use cashews::Clock;
use cashews::strategy::SliceRateLimitOptions;

#[derive(Debug)]
struct ApiError(cashews::Error);

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self(error)
    }
}

#[cashews::slice_rate_limit(limit = 2, period = "10s", key = "search:{api_key}")]
async fn search(api_key: &str, query: &str) -> Result<usize, ApiError> {
    let _ = api_key;
    Ok(query.len()) // the number of results, say
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let clock = Clock::manual();
    cashews::cache().setup_with_clock("mem://", clock.clone())?;
    let start = clock.now();
    // Moves time forward by `ms` and names the moment, for the printout.
    let at = |ms: u64| {
        clock.advance(Duration::from_millis(ms));
        format!("t={:>4.1}s", (clock.now() - start).as_secs_f64())
    };

    let t = at(0);
    let r = search("key-1", "rust").await;
    println!("{t} search: {r:?}");
    assert!(r.is_ok());
    let t = at(9_000);
    let r = search("key-1", "tokio").await;
    println!("{t} search: {r:?}");
    assert!(r.is_ok());
    let t = at(1_500);
    let r = search("key-1", "serde").await;
    println!("{t} search: {r:?} (the call at 0 s slid out)");
    assert!(r.is_ok());
    let t = at(100);
    let r = search("key-1", "cache").await;
    println!(
        "{t} search: {r:?} (2 calls in the last 10 s; a fixed window would have restarted at 10.5 s)"
    );
    assert!(matches!(
        r,
        Err(ApiError(cashews::Error::RateLimited { .. }))
    ));

    // The attribute expands to `cashews::strategy::slice_rate_limited`, the key prefixed
    // `srl:` (`cashews::key::Strategy::SliceRateLimit`); same key and options, so it is
    // refused too.
    let options = SliceRateLimitOptions::new(2, Duration::from_secs(10));
    let by_hand: Result<usize, ApiError> = cashews::strategy::slice_rate_limited(
        cashews::cache(),
        &cashews::key::Strategy::SliceRateLimit.key("search:key-1"),
        &options,
        async { Ok(0) },
    )
    .await;
    println!("{} by hand: {by_hand:?}", at(0));
    assert!(by_hand.is_err());

    let t = at(10_000);
    let r = search("key-1", "again").await;
    println!("{t} search: {r:?} (10 s of quiet)");
    assert!(r.is_ok());
    Ok(())
}
