#[cashews::cache(key = "user:{user}", expire = "1h")]
async fn profile(user: u32) -> u32 {
    user
}

fn main() {}
