//! `#[cashews::dual_bloom]`: remember yes/no answers in two Bloom filters:
//! `cargo run --example dual_bloom`.
//!
//! A mail server asks a slow blocklist service whether each sender's domain sends spam.
//! The same domains come back all day. `dual_bloom` learns from the calls: each answer
//! sets the member's bits in the "true" or the "false" filter, and a repeated question is
//! answered from the filters (a few bits per domain) without calling the service. Unlike
//! `bloom`, it needs no training: the function's own answers fill it.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::strategy::DualBloomOptions;

static LOOKUPS: AtomicU32 = AtomicU32::new(0);

fn lookups() -> u32 {
    LOOKUPS.load(Ordering::SeqCst)
}

async fn blocklist_lookup(domain: &str) -> bool {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    domain.ends_with(".spam.test")
}

/// Sized for 10,000 domains; the member is the domain.
#[cashews::dual_bloom(capacity = 10_000, name = "{domain}")]
async fn is_spam(domain: &str) -> bool {
    blocklist_lookup(domain).await
}

/// The attribute's filter key: `dual_bloom:<module path>:<function>`.
const FILTERS: &str = concat!("dual_bloom:", module_path!(), ":is_spam");

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;

    for domain in ["deals.spam.test", "example.com"] {
        let first = is_spam(domain).await;
        let again = is_spam(domain).await;
        println!("{domain}: spam? {first}, asked again: {again}");
        assert_eq!(first, again);
    }
    println!("blocklist lookups for 4 questions: {}", lookups());
    assert_eq!(lookups(), 2); // each repeat came from the filters

    // The attribute expands to `cashews::strategy::dual_bloom` on that key: it knows the
    // answers the function learnt, so the origin is not called.
    let options = DualBloomOptions::new(10_000);
    let by_hand = cashews::strategy::dual_bloom(
        cashews::cache(),
        FILTERS,
        "deals.spam.test",
        &options,
        blocklist_lookup("deals.spam.test"),
    )
    .await;
    println!("by hand, deals.spam.test: spam? {by_hand}");
    assert!(by_hand);
    assert_eq!(lookups(), 2);

    // A new domain is looked up once, then known.
    assert!(!is_spam("rust-lang.org").await);
    assert!(!is_spam("rust-lang.org").await);
    assert_eq!(lookups(), 3);
    Ok(())
}
