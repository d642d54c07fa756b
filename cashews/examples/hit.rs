//! `#[cashews::hit]`: serve a computed value a number of times, then compute it again:
//! `cargo run --example hit`.
//!
//! A game's leaderboard is an expensive aggregate that may lag a little behind the scores.
//! Instead of a time-based TTL, it is recomputed after every 3 reads: busy periods refresh
//! it often, quiet ones never pay for a refresh nobody reads.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::{HitOptions, Plain};

/// How many times the aggregate ran; each result says which run built it.
static COMPUTED: AtomicU32 = AtomicU32::new(0);

fn aggregate() -> String {
    let run = COMPUTED.fetch_add(1, Ordering::SeqCst) + 1;
    format!("leaderboard (computation #{run})")
}

/// Served 3 times after each computation (`hit:leaderboard:counter` counts the reads); the
/// TTL still bounds how old it can get.
#[cashews::hit(ttl = "1h", cache_hits = 3, key = "leaderboard")]
async fn leaderboard() -> String {
    aggregate()
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    let mut seen = Vec::new();
    for read in 1..=4 {
        let board = leaderboard().await;
        println!("read {read}: {board}");
        seen.push(board);
    }
    // Computed once, then served for the next 3 reads.
    assert!(seen.iter().all(|b| b.ends_with("#1)")));
    assert_eq!(COMPUTED.load(Ordering::SeqCst), 1);

    // The attribute expands to `cashews::strategy::hit` with the `hit:` prefix on the key.
    // Same key and options: this is the 5th read, so it recomputes.
    let by_hand = cashews::strategy::hit(
        cashews::cache(),
        "hit:leaderboard",
        cashews::Ttl::parse("1h")?,
        &HitOptions::new(3),
        Plain::<String>::new(),
        async { aggregate() },
    )
    .await;
    println!("read 5 (by hand): {by_hand}");
    assert!(by_hand.ends_with("#2)"));

    // And the attributed function is served that new value.
    let next = leaderboard().await;
    println!("read 6: {next}");
    assert_eq!(next, by_hand);
    assert_eq!(COMPUTED.load(Ordering::SeqCst), 2);
    Ok(())
}
