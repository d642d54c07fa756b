//! `#[cashews::failover]`: the last good answer when the upstream fails:
//! `cargo run --example failover`.
//!
//! A status page asks an HTTP-ish upstream for each service's status. While the upstream
//! answers, every call goes through (failover is not a cache: fresh answers win); when it
//! times out, the last good answer is served instead of an error page.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, Ordering};

use cashews::strategy::FailoverOptions;

static UPSTREAM_DOWN: AtomicBool = AtomicBool::new(false);

#[derive(Debug, PartialEq)]
enum ApiError {
    Timeout,
    NotFound,
}

impl ApiError {
    /// Only a timeout may be papered over; "no such service" must reach the caller.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout)
    }
}

/// Every `Ok` is kept for a day under `fail:status:<name>`; a transient error returns it.
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

    let up = status("api").await;
    println!("upstream up:   {up:?}");
    assert_eq!(up.as_deref(), Ok("api: operational"));

    UPSTREAM_DOWN.store(true, Ordering::SeqCst);
    let down = status("api").await;
    println!("upstream down: {down:?} (the last good answer)");
    assert_eq!(down, up);

    let never_seen = status("db").await;
    println!("never seen:    {never_seen:?} (nothing to fall back on: the real error)");
    assert_eq!(never_seen, Err(ApiError::Timeout));

    let not_transient = status("unknown").await;
    println!("not transient: {not_transient:?} (`when` says no fallback)");
    assert_eq!(not_transient, Err(ApiError::NotFound));

    // The attribute expands to this call: the key gets the `fail:` prefix
    // (`cashews::key::Strategy::Failover`), and `when`
    // chooses the errors that fall back. Same key, so it sees what `status` stored.
    let by_hand: Result<String, ApiError> = cashews::strategy::failover(
        cashews::cache(),
        &cashews::key::Strategy::Failover.key("status:api"),
        cashews::Ttl::parse("1d")?,
        &FailoverOptions::new(),
        ApiError::is_transient,
        async { Err(ApiError::Timeout) },
    )
    .await;
    println!("by hand:       {by_hand:?}");
    assert_eq!(by_hand, up);
    Ok(())
}
