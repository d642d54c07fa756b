// A TTL computed from the result only fits strategies that store a known result; an error
// predicate takes exactly one argument; `lock = true` needs a TTL.

#[cashews::early(ttl = |n: &u32| u64::from(*n), early_ttl = "1m")]
async fn early_count() -> u32 {
    1
}

#[cashews::cache(ttl = "1h", condition = with_errors(is_timeout, is_not_found))]
async fn lookup() -> Result<u32, String> {
    Ok(1)
}

// The distributed lock expires with the TTL, so a TTL of zero (no expiry) cannot lock.
#[cashews::cache(ttl = 0, lock = true)]
async fn locked_forever() -> u32 {
    1
}

fn main() {}
