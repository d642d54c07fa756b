//! `#[cashews::failover]`: the last good answer when the upstream fails:
//! `cargo run --example failover`.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, Ordering};

static UPSTREAM_DOWN: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
enum ApiError {
    Timeout,
    NotFound,
}

impl ApiError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout)
    }
}

/// On a transient error, the last good status (kept for a day under `fail:status:<name>`).
#[cashews::failover(ttl = "1d", key = "status:{name}", when = ApiError::is_transient)]
async fn status(name: &str) -> Result<String, ApiError> {
    if name == "unknown" {
        return Err(ApiError::NotFound);
    }
    if UPSTREAM_DOWN.load(Ordering::SeqCst) {
        return Err(ApiError::Timeout);
    }
    Ok(format!("{name}: operational"))
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;
    println!("upstream up:   {:?}", status("api").await);
    UPSTREAM_DOWN.store(true, Ordering::SeqCst);
    println!(
        "upstream down: {:?} (the last good answer)",
        status("api").await
    );
    println!(
        "never seen:    {:?} (no fallback: the real error)",
        status("db").await
    );
    println!(
        "not transient: {:?} (`when` says no fallback)",
        status("unknown").await
    );
    Ok(())
}
