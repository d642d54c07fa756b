//! `#[cashews::early]`: refresh a value before it expires, so no reader waits for it:
//! `cargo run --example early`.
//!
//! A sales dashboard shows a report that takes seconds to build. With a plain TTL, the
//! reader who arrives just after expiry waits for the rebuild (and so does everyone arriving
//! meanwhile). With `early`, once the entry is older than `early_ttl`, one reader rebuilds it
//! while everybody keeps getting the stored report; the entry never goes missing.
//!
//! Time is moved by hand with a manual clock, so the example takes no real time.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cashews::Clock;
use cashews::strategy::{EarlyOptions, Plain};

static BUILDS: AtomicU32 = AtomicU32::new(0);

async fn build_report(shop: &str) -> String {
    let build = BUILDS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("{shop} sales report, build {build}")
}

/// Kept 10 minutes; from minute 7 the next reader refreshes it.
#[cashews::early(ttl = "10m", early_ttl = "7m", key = "report:{shop}")]
async fn report(shop: &str) -> String {
    build_report(shop).await
}

/// The default cache on a memory backend whose clock the example moves.
#[tokio::main]
async fn main() -> cashews::Result<()> {
    let clock = Clock::manual();
    cashews::cache().setup_with_clock("mem://", clock.clone())?;

    let first = report("berlin").await;
    println!("00:00 {first}");
    clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(report("berlin").await, first); // fresh: a plain hit
    assert_eq!(BUILDS.load(Ordering::SeqCst), 1);

    clock.advance(Duration::from_secs(3 * 60)); // 8 minutes: past `early_ttl`
    let during = report("berlin").await;
    println!("08:00 {during} (served while build 2 ran)");
    assert_eq!(during, first);
    assert_eq!(BUILDS.load(Ordering::SeqCst), 2);

    let after = report("berlin").await;
    println!("08:00 {after}");
    assert!(after.ends_with("build 2"));

    // The attribute expands to `cashews::strategy::early`, the key prefixed `early:v2:`
    // (`cashews::key::Strategy::Early`, which holds every default key of `#[early]`).
    // Same key and options: 8 minutes later this call refreshes (build 3) and returns the
    // stored build 2, like the attributed function would.
    clock.advance(Duration::from_secs(8 * 60));
    let options = EarlyOptions::new().early_ttl(Duration::from_secs(7 * 60));
    let by_hand = cashews::strategy::early(
        cashews::cache(),
        &cashews::key::Strategy::Early.key("report:berlin"),
        cashews::Ttl::parse("10m")?,
        &options,
        Plain::<String>::new(),
        build_report("berlin"),
    )
    .await;
    println!("16:00 {by_hand} (by hand; refreshed behind it)");
    assert_eq!(by_hand, after);
    assert!(report("berlin").await.ends_with("build 3"));
    Ok(())
}
