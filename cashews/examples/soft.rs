//! `#[cashews::soft]`: fresh for a while, then recomputed, but stale rather than broken:
//! `cargo run --example soft`.
//!
//! A shop converts prices with an exchange rate from a rates service. A rate younger than a
//! minute is used as is; an older one is fetched again, and if the service is down the
//! older rate is still better than an error page, until the hard TTL (an hour) says it is
//! too old to trust.
//!
//! Time is moved by hand with a manual clock, so the example takes no real time.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use cashews::Clock;
use cashews::strategy::{Fallible, SoftOptions};

static SERVICE_DOWN: AtomicBool = AtomicBool::new(false);
static FETCHES: AtomicU32 = AtomicU32::new(0);

async fn fetch_rate(currency: &str) -> Result<u32, String> {
    let n = FETCHES.fetch_add(1, Ordering::SeqCst);
    if SERVICE_DOWN.load(Ordering::SeqCst) {
        return Err(format!("rates service down, no {currency} rate"));
    }
    Ok(108 + n) // the rate moves a little between fetches
}

/// Fresh for a minute, kept for an hour, under `soft:rate:<currency>`.
#[cashews::soft(ttl = "1h", soft_ttl = "1m", key = "rate:{currency}")]
async fn exchange_rate(currency: &str) -> Result<u32, String> {
    fetch_rate(currency).await
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let clock = Clock::manual();
    cashews::cache().setup_with_clock("mem://", clock.clone())?;

    let fresh = exchange_rate("EUR").await;
    println!("fresh:                  {fresh:?}");
    assert_eq!(fresh, Ok(108));
    assert_eq!(exchange_rate("EUR").await, fresh); // within the minute: a plain hit
    assert_eq!(FETCHES.load(Ordering::SeqCst), 1);

    SERVICE_DOWN.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(61));
    let stale = exchange_rate("EUR").await;
    println!("after 1 min, down:      {stale:?} (stale, still served)");
    assert_eq!(stale, fresh);
    assert_eq!(FETCHES.load(Ordering::SeqCst), 2); // it did try the service

    // The attribute expands to `cashews::strategy::soft`, the key prefixed `soft:`. Same
    // key and options: the service is back, so the soft-expired rate is replaced.
    SERVICE_DOWN.store(false, Ordering::SeqCst);
    let options = SoftOptions::new().soft_ttl(Duration::from_secs(60));
    let by_hand = cashews::strategy::soft(
        cashews::cache(),
        "soft:rate:EUR",
        cashews::Ttl::parse("1h")?,
        &options,
        Fallible::<u32, String>::new(),
        fetch_rate("EUR"),
    )
    .await;
    println!("by hand, service back:  {by_hand:?} (a new rate)");
    assert_eq!(by_hand, Ok(110));
    assert_eq!(exchange_rate("EUR").await, by_hand);

    // Past the hard TTL nothing is left to fall back on: the real error.
    SERVICE_DOWN.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(2 * 3600));
    let expired = exchange_rate("EUR").await;
    println!("after 2 h, down:        {expired:?}");
    assert!(expired.is_err());
    Ok(())
}
