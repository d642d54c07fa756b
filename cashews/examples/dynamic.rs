//! `#[cashews::dynamic]`: a cache that refreshes itself as it is read:
//! `cargo run --example dynamic`.
//!
//! Trending posts per tag: popular tags are read all the time and should stay fresh, rare
//! tags should cost nothing. `dynamic` is `hit` with defaults for that: every hit serves
//! the stored value at once and recomputes it for the next reader (one step behind), and an
//! entry nobody reads expires after a day.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::{HitOptions, Plain};

static COMPUTED: AtomicU32 = AtomicU32::new(0);

fn compute(tag: &str) -> String {
    let run = COMPUTED.fetch_add(1, Ordering::SeqCst) + 1;
    format!("#{tag}: trending list v{run}")
}

/// No TTL needed: a day unless given; the key gets the `dynamic:` prefix.
#[cashews::dynamic(key = "trending:{tag}")]
async fn trending(tag: &str) -> String {
    compute(tag)
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    let mut seen = Vec::new();
    for read in 1..=3 {
        let list = trending("rust").await;
        println!("read {read}: {list}");
        seen.push(list);
    }
    // v1 computed, served while v2 was computed, v2 served while v3 was computed: each
    // read gets the value the previous read left, and never waits for a cold origin twice.
    assert!(seen[0].ends_with("v1") && seen[1].ends_with("v1") && seen[2].ends_with("v2"));
    assert_eq!(COMPUTED.load(Ordering::SeqCst), 3);

    // What the attribute expands to: `hit` with `HitOptions::dynamic()` (3 hits, refresh at
    // the first), here on the same key, so it serves what the last read computed.
    let by_hand = cashews::strategy::dynamic(
        cashews::cache(),
        "dynamic:trending:rust",
        HitOptions::DYNAMIC_TTL,
        Plain::<String>::new(),
        async { compute("rust") },
    )
    .await;
    println!("read 4 (by hand): {by_hand}");
    assert!(by_hand.ends_with("v3"));
    Ok(())
}
