// `update_before = N` is the 2.x spelling of `update_after = cache_hits - N`: one of the two,
// and never more than `cache_hits`.

#[cashews::hit(ttl = "1h", cache_hits = 10, update_after = 2, update_before = 8)]
async fn both() -> u32 {
    1
}

#[cashews::hit(ttl = "1h", cache_hits = 10, update_before = 11)]
async fn too_many() -> u32 {
    1
}

fn main() {}
