//! `#[cashews::locked]` and `#[cashews::thunder_protection]`: one computation for many
//! callers:
//! `cargo run --example locking`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static BUILDS: AtomicU32 = AtomicU32::new(0);
static FETCHES: AtomicU32 = AtomicU32::new(0);

/// One build at a time per project, across every process sharing the cache.
#[cashews::locked(ttl = "5m", key = "build:{project}")]
async fn build(project: &'static str) -> u32 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    BUILDS.fetch_add(1, Ordering::SeqCst)
}

/// Concurrent callers share one fetch and all get a clone of its result, `Ok` or `Err`.
#[cashews::thunder_protection(key = "feed")]
async fn feed() -> Result<Vec<String>, String> {
    FETCHES.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(vec!["post 1".to_owned(), "post 2".to_owned()])
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;
    let builds: Vec<_> = (0..5).map(|_| tokio::spawn(build("app"))).collect();
    for b in builds {
        let _ = b.await;
    }
    println!(
        "5 builds ran one after another: {}",
        BUILDS.load(Ordering::SeqCst)
    );
    let feeds: Vec<_> = (0..100).map(|_| tokio::spawn(feed())).collect();
    for f in feeds {
        let _ = f.await;
    }
    println!(
        "100 concurrent feed calls, fetches: {}",
        FETCHES.load(Ordering::SeqCst)
    );
    Ok(())
}
