#[cashews::cache(ttl = "1m10")]
async fn profile(user: u32) -> u32 {
    user
}

fn main() {}
