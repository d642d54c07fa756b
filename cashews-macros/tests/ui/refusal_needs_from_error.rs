#[derive(Debug)]
struct ApiError;

#[cashews::rate_limit(limit = 10, period = "1m")]
async fn call() -> Result<u32, ApiError> {
    Ok(1)
}

fn window() -> &'static str {
    "1m"
}

#[cashews::slice_rate_limit(limit = 10, period = window())]
async fn dynamic_window() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {}
