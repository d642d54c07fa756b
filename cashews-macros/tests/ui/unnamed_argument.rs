// The default key names each argument's value: an axum extractor left whole has no value a
// key can name, so the error says to destructure it.
use axum::extract::Path;
use axum::Json;

#[cashews::cache(ttl = "1h")]
async fn user(path: Path<u64>) -> Json<u64> {
    Json(path.0)
}

// A circuit breaker's default key names no argument, so any argument is fine there.
#[derive(Debug)]
struct Refused;

impl From<cashews::Error> for Refused {
    fn from(_: cashews::Error) -> Self {
        Self
    }
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "5m")]
async fn checked(path: Path<u64>) -> Result<u64, Refused> {
    Ok(path.0)
}

fn main() {}
