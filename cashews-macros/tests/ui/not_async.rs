#[cashews::cache(ttl = "1h")]
fn profile(user: u32) -> u32 {
    user
}

fn main() {}
