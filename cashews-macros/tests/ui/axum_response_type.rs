// HTTP responses cannot be stored: the errors say to return `Json<T>` or to cache an inner
// async fn.
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::Json;

#[cashews::cache(ttl = "1h")]
async fn created(Path(id): Path<u64>) -> (StatusCode, Json<u64>) {
    (StatusCode::CREATED, Json(id))
}

#[cashews::cache(ttl = "1h")]
async fn page(Path(id): Path<u64>) -> Html<String> {
    Html(format!("<p>{id}</p>"))
}

#[cashews::early(ttl = "1h")]
async fn any(Path(id): Path<u64>) -> impl IntoResponse {
    Json(id)
}

// `Json<T>` is cached by its `T`, which must be `Serialize` and `Deserialize`.
struct Opaque(u64);

impl serde::Serialize for Opaque {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cashews::cache(ttl = "1h")]
async fn opaque(Path(id): Path<u64>) -> Json<Opaque> {
    Json(Opaque(id))
}

fn main() {}
