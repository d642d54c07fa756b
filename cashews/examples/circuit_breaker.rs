//! `#[cashews::circuit_breaker]`: stop calling an upstream that keeps failing:
//! `cargo run --example circuit_breaker`.
//!
//! A shop charges cards through a payment gateway. When the gateway is down, each call
//! still waits for its timeout, piling up requests. Once half of the last minute's calls
//! (at least 4) failed, the circuit opens: for 30 seconds calls are refused at once, without
//! touching the gateway, and the gateway gets room to recover. A declined card is the
//! customer's problem, not an outage, so `when` does not count it.
//!
//! Time is moved by hand with a manual clock, so the example takes no real time.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use cashews::Clock;
use cashews::strategy::CircuitBreakerOptions;

static GATEWAY_DOWN: AtomicBool = AtomicBool::new(false);
static GATEWAY_CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
enum PayError {
    GatewayDown,
    CardDeclined,
    Refused(cashews::Error),
}

impl PayError {
    /// Only outages count towards opening the circuit.
    fn is_outage(&self) -> bool {
        matches!(self, Self::GatewayDown)
    }
}

impl From<cashews::Error> for PayError {
    fn from(error: cashews::Error) -> Self {
        Self::Refused(error)
    }
}

/// One circuit for the whole gateway (`circuit_breaker:payments`), whatever the card.
#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "30s", min_calls = 4,
    key = "payments", when = PayError::is_outage)]
async fn charge(card: &str) -> Result<&'static str, PayError> {
    GATEWAY_CALLS.fetch_add(1, Ordering::SeqCst);
    if GATEWAY_DOWN.load(Ordering::SeqCst) {
        Err(PayError::GatewayDown)
    } else if card == "0000" {
        Err(PayError::CardDeclined)
    } else {
        Ok("paid")
    }
}

#[tokio::main]
async fn main() -> cashews::Result<()> {
    let clock = Clock::manual();
    cashews::cache().setup_with_clock("mem://", clock.clone())?;

    println!("good card:     {:?}", charge("4242").await);
    println!("declined card: {:?} (not an outage)", charge("0000").await);
    GATEWAY_DOWN.store(true, Ordering::SeqCst);
    println!("gateway down:  {:?}", charge("4242").await);
    println!(
        "gateway down:  {:?} (2 outages in 4 calls: open)",
        charge("4242").await
    );
    assert_eq!(GATEWAY_CALLS.load(Ordering::SeqCst), 4);

    GATEWAY_DOWN.store(false, Ordering::SeqCst);
    let refused = charge("4242").await;
    println!("circuit open:  {refused:?}");
    assert!(matches!(
        refused,
        Err(PayError::Refused(cashews::Error::CircuitOpen {
            retry_after: Some(_)
        }))
    ));
    assert_eq!(GATEWAY_CALLS.load(Ordering::SeqCst), 4); // the gateway was spared

    // The attribute expands to `cashews::strategy::circuit_breaker`, the key prefixed
    // `circuit_breaker:`; on the same key, the same open circuit refuses.
    let options = CircuitBreakerOptions::new(50, Duration::from_secs(60), Duration::from_secs(30))
        .min_calls(4);
    let by_hand: Result<&str, PayError> = cashews::strategy::circuit_breaker(
        cashews::cache(),
        "circuit_breaker:payments",
        &options,
        PayError::is_outage,
        async { Ok("paid") },
    )
    .await;
    println!("by hand:       {by_hand:?}");
    assert!(matches!(by_hand, Err(PayError::Refused(_))));

    clock.advance(Duration::from_secs(31));
    let closed = charge("4242").await;
    println!("30 s later:    {closed:?} (closed again)");
    assert!(matches!(closed, Ok("paid")));
    assert!(matches!(charge("0000").await, Err(PayError::CardDeclined)));
    Ok(())
}
