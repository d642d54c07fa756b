//! `#[cashews::thunder_protection]`: concurrent identical calls share one run:
//! `cargo run --example thunder_protection`.
//!
//! A service loads its feature flags from a remote config server. Right after a deploy,
//! a hundred requests want them at the same moment; without protection the config server
//! gets a hundred identical requests (a "thundering herd"). With it, the first call runs
//! and the others wait for it and get a clone of its result, `Ok` or `Err`. Nothing is
//! stored: a call after the run has ended runs again (stack `cache` for that).
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static FETCHES: AtomicU32 = AtomicU32::new(0);

type Flags = Result<Vec<String>, String>;

async fn fetch_flags() -> Flags {
    FETCHES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await; // the round trip
    Ok(vec!["new-checkout".to_owned(), "dark-mode".to_owned()])
}

/// The result must be `Clone`: every waiter gets a copy of the one run's result.
#[cashews::thunder_protection(key = "feature-flags")]
async fn feature_flags() -> Flags {
    fetch_flags().await
}

// Paused Tokio time (the `test-util` feature): the 50 ms round trip cannot end before every
// request has arrived (time only jumps ahead when all tasks wait), so the example is
// deterministic however loaded the machine, and takes no real time.
#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    let herd: Vec<_> = (0..100).map(|_| tokio::spawn(feature_flags())).collect();
    let mut results = Vec::new();
    for request in herd {
        results.push(request.await.ok());
    }
    println!(
        "100 concurrent requests, config fetches: {}, all got {:?}",
        FETCHES.load(Ordering::SeqCst),
        results[0]
    );
    assert_eq!(FETCHES.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|r| r == &results[0]));

    // Over: the next call fetches again.
    feature_flags().await.ok();
    assert_eq!(FETCHES.load(Ordering::SeqCst), 2);

    // The attribute expands to `cashews::strategy::thunder_protection` (the key is used
    // as is: it never reaches a backend). By hand, on the same key and result type, a call
    // joins the attributed function's run instead of starting its own.
    let running = tokio::spawn(feature_flags());
    while FETCHES.load(Ordering::SeqCst) < 3 {
        tokio::task::yield_now().await; // until its fetch is under way
    }
    let by_hand: Flags =
        cashews::strategy::thunder_protection(cashews::cache(), "feature-flags", fetch_flags())
            .await;
    println!("by hand, joined the running fetch: {by_hand:?}");
    assert_eq!(Some(by_hand), running.await.ok());
    assert_eq!(FETCHES.load(Ordering::SeqCst), 3);
    Ok(())
}
