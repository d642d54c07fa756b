// The default key names every argument: one written as a pattern cannot be named.
#[cashews::cache(ttl = "1h")]
async fn distance((x, y): (i64, i64)) -> i64 {
    x * x + y * y
}

// A circuit breaker's default key names no argument, so a pattern is fine there.
#[derive(Debug)]
struct Refused;

impl From<cashews::Error> for Refused {
    fn from(_: cashews::Error) -> Self {
        Self
    }
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "5m")]
async fn checked((x, y): (i64, i64)) -> Result<i64, Refused> {
    Ok(x + y)
}

fn main() {}
