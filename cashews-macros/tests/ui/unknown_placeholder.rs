#[cashews::cache(ttl = "1h", key = "user:{usr}:{page}")]
async fn profile(user: u32, page: u32) -> u32 {
    user + page
}

fn main() {}
