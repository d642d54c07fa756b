struct Request {
    id: u64,
}

#[cashews::cache(ttl = "1h")]
async fn handle(request: &Request) -> u64 {
    request.id
}

fn main() {}
