// Application state is the same for every request: a key template cannot name it.
use axum::extract::{Path, State};
use axum::Json;

#[derive(Clone)]
struct App {
    region: String,
}

#[cashews::cache(ttl = "1h", key = "user:{id}:{app.region}")]
async fn user(Path(id): Path<u64>, State(app): State<App>) -> Json<String> {
    Json(format!("{id} in {}", app.region))
}

fn main() {}
