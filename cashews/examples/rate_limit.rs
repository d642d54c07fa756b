//! `#[cashews::rate_limit]`: at most N calls per fixed window, refusals through the
//! function's own error type: `cargo run --example rate_limit`.
//!
//! A login endpoint allows 3 attempts per user per minute, to slow down password guessing.
//! The counter lives in the cache (`rate_limit:login:<user>`), so every server sharing the
//! backend counts together. A refused call does not run the body: the caller gets
//! `cashews::Error::RateLimited` (with a retry-after) converted into `LoginError`.
//!
//! Time is moved by hand with a manual clock, so the example takes no real time.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use cashews::Clock;
use cashews::strategy::RateLimitOptions;

#[derive(Debug)]
enum LoginError {
    TooManyAttempts(Option<Duration>),
    Other(cashews::Error),
}

/// The conversion the attribute needs: how a refusal looks to the caller.
impl From<cashews::Error> for LoginError {
    fn from(error: cashews::Error) -> Self {
        match error {
            cashews::Error::RateLimited { retry_after, .. } => Self::TooManyAttempts(retry_after),
            other => Self::Other(other),
        }
    }
}

/// What the login page shows.
impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyAttempts(Some(wait)) => {
                write!(f, "too many attempts, retry in {} s", wait.as_secs())
            }
            Self::TooManyAttempts(None) => write!(f, "too many attempts"),
            Self::Other(error) => write!(f, "login unavailable: {error}"),
        }
    }
}

#[cashews::rate_limit(limit = 3, period = "1m", key = "login:{user}")]
async fn login(user: &str, password: &str) -> Result<String, LoginError> {
    let _ = password; // checked here in real life
    Ok(format!("welcome {user}"))
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let clock = Clock::manual();
    cashews::cache().setup_with_clock("mem://", clock.clone())?;

    for attempt in 1..=3 {
        let result = login("ann", "guess").await;
        println!("attempt {attempt}: {result:?}");
        assert!(result.is_ok());
    }
    let refused = login("ann", "guess").await;
    if let Err(error) = &refused {
        println!("attempt 4: {error}");
    }
    assert!(matches!(refused, Err(LoginError::TooManyAttempts(Some(_)))));

    let other = login("bob", "secret").await;
    println!("another user is counted apart: {other:?}");
    assert!(other.is_ok());

    // The attribute expands to `cashews::strategy::rate_limited`, the key prefixed
    // `rate_limit:`; same key and options, so it shares ann's counter.
    let options = RateLimitOptions::new(3, Duration::from_secs(60));
    let by_hand: Result<&str, LoginError> = cashews::strategy::rate_limited(
        cashews::cache(),
        "rate_limit:login:ann",
        &options,
        async { Ok("welcome ann") },
    )
    .await;
    println!("by hand, same minute: {by_hand:?}");
    assert!(matches!(by_hand, Err(LoginError::TooManyAttempts(_))));

    // A new window starts once the minute is over.
    clock.advance(Duration::from_secs(61));
    let later = login("ann", "right").await;
    println!("a minute later: {later:?}");
    assert!(later.is_ok());

    // `rate_limit` only counts and answers: for code that wants no wrapped call.
    let check = cashews::strategy::rate_limit(cashews::cache(), "rate_limit:login:ann", &options);
    assert!(check.await.is_ok()); // the 2nd attempt of the new window
    Ok(())
}
