//! `#[cashews::soft]` and `#[cashews::early]`: keep serving while recomputing:
//! `cargo run --example soft_early`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};

use cashews::config::{CacheConfig, MemoryOptions};
use cashews::{Cache, Clock, MemoryBackend};

static RATE_CALLS: AtomicU32 = AtomicU32::new(0);
static REPORT_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fresh for a minute, kept for an hour: after the soft TTL a failure serves the stale rate.
#[cashews::soft(ttl = "1h", soft_ttl = "1m", key = "rate", cache = CACHE.0)]
async fn exchange_rate() -> Result<u32, String> {
    match RATE_CALLS.fetch_add(1, Ordering::SeqCst) {
        0 => Ok(108),
        _ => Err("the rates service is down".to_owned()),
    }
}

/// Refreshed ahead of expiry: after 7 minutes one caller recomputes, the others are served.
#[cashews::early(ttl = "10m", early_ttl = "7m", key = "report", cache = CACHE.0)]
async fn report() -> String {
    format!("report #{}", REPORT_CALLS.fetch_add(1, Ordering::SeqCst))
}

/// A cache on a manual clock, so the example moves time instead of waiting.
static CACHE: std::sync::LazyLock<(Cache, Clock)> = std::sync::LazyLock::new(|| {
    let clock = Clock::manual();
    let cache = Cache::new();
    let backend = MemoryBackend::with_clock(MemoryOptions::default(), clock.clone());
    if let Err(error) = cache.setup_backend("", backend, CacheConfig::default()) {
        println!("setup failed: {error}");
    }
    (cache, clock)
});

#[tokio::main]
async fn main() {
    let clock = &CACHE.1;
    println!("soft, fresh:           {:?}", exchange_rate().await);
    clock.advance(std::time::Duration::from_secs(61));
    println!(
        "soft, upstream failed: {:?} (stale, still served)",
        exchange_rate().await
    );

    println!("early, first:          {}", report().await);
    clock.advance(std::time::Duration::from_secs(8 * 60));
    println!(
        "early, after 8 min:    {} (one refresh ran)",
        report().await
    );
    println!("early, next:           {}", report().await);
}
