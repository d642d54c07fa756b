// `background = true` refreshes in a spawned task, which outlives the call: the function may
// not borrow its arguments. And only `early` and `hit` refresh in the background.

#[cashews::early(ttl = "10m", background = true)]
async fn report(name: &str) -> String {
    name.to_owned()
}

struct Service;

impl Service {
    #[cashews::hit(ttl = "1h", cache_hits = 10, background = true)]
    async fn popular(&self, page: u32) -> u32 {
        page
    }
}

#[cashews::soft(ttl = "1h", soft_ttl = "1m", background = true)]
async fn rate() -> u32 {
    1
}

fn main() {}
