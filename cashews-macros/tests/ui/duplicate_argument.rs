#[cashews::cache(ttl = "1h", ttl = "2h")]
async fn profile(user: u32) -> u32 {
    user
}

fn main() {}
