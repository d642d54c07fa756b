#[cashews::cache(ttl = "1h", key = "user:{user:hash(sha512)}")]
async fn profile(user: u32) -> u32 {
    user
}

#[cashews::cache(ttl = "1h", key = "user:{user:shout}")]
async fn shout(user: u32) -> u32 {
    user
}

#[cashews::cache(ttl = "1h", key = "user:{user")]
async fn unclosed(user: u32) -> u32 {
    user
}

fn main() {}
