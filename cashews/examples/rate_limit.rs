//! `#[cashews::rate_limit]` and `#[cashews::circuit_breaker]`: refusals reach the caller as
//! the function's own error: `cargo run --example rate_limit`.
#![allow(clippy::print_stdout)]

#[derive(Debug)]
enum ApiError {
    Refused(cashews::Error),
    Upstream,
}

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self::Refused(error)
    }
}

/// Three logins per user per minute.
#[cashews::rate_limit(limit = 3, period = "1m", key = "login:{user}")]
async fn login(user: &str) -> Result<String, ApiError> {
    Ok(format!("welcome {user}"))
}

/// Opens when half the calls of the last minute failed (at least 4 calls), for 30 seconds.
#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "30s", min_calls = 4)]
async fn flaky(fail: bool) -> Result<u32, ApiError> {
    if fail {
        Err(ApiError::Upstream)
    } else {
        Ok(200)
    }
}

fn describe<T: std::fmt::Debug>(result: Result<T, ApiError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(ApiError::Refused(error)) => format!("refused: {error}"),
        Err(ApiError::Upstream) => "the upstream failed".to_owned(),
    }
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    cashews::cache().setup("mem://")?;
    for attempt in 1..=4 {
        println!("login attempt {attempt}: {}", describe(login("ann").await));
    }
    println!(
        "another user is not limited: {}",
        describe(login("bob").await)
    );
    for _ in 0..4 {
        let _ = flaky(true).await;
    }
    println!(
        "after 4 failures the circuit is open: {}",
        describe(flaky(false).await)
    );
    Ok(())
}
