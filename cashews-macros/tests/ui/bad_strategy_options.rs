// Strategy options are constants: values a strategy cannot use are compile errors.

#[derive(Debug)]
struct Refused;

impl From<cashews::Error> for Refused {
    fn from(_: cashews::Error) -> Self {
        Refused
    }
}

#[cashews::circuit_breaker(errors_rate = 100, period = "1m", ttl = "5m")]
async fn always_failing() -> Result<u32, Refused> {
    Ok(1)
}

#[cashews::bloom(capacity = 0)]
async fn empty_filter(name: String) -> bool {
    name.is_empty()
}

#[cashews::perf(ttl = "1m", trace_size = 0)]
async fn no_trace() -> Result<u32, Refused> {
    Ok(1)
}

fn main() {}
