// The strategy attributes on axum handlers taking extractors: each expanded handler is still
// an axum `Handler` (the `Router` below type-checks only if it is).
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
struct App {
    name: String,
}

#[derive(Clone)]
struct Tenant(u32);

#[derive(Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct Page {
    page: u32,
    per_page: Option<u32>,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
}

#[derive(Debug)]
enum AppError {
    Refused(cashews::Error),
}

impl From<cashews::Error> for AppError {
    fn from(error: cashews::Error) -> Self {
        Self::Refused(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::Refused(_) => StatusCode::TOO_MANY_REQUESTS.into_response(),
        }
    }
}

// The default key: `id` (the value inside `Path`); `State` is never part of a key.
#[cashews::cache(ttl = "10m")]
async fn user(Path(id): Path<u64>, State(app): State<App>) -> Json<User> {
    Json(User { id, name: app.name })
}

// A template over a query field; an `Extension` is skipped like `State`.
#[cashews::cache(ttl = "1m", key = "users:{q.page}:{q.per_page}", tags = ["users"])]
async fn users(
    Query(q): Query<Page>,
    Extension(tenant): Extension<Tenant>,
) -> Result<Json<Vec<u64>>, StatusCode> {
    if q.page == 0 {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(Json(vec![u64::from(tenant.0), u64::from(q.page)]))
}

// A tuple inside the extractor: the default key names `org` and `id`.
#[cashews::early(ttl = "1h", early_ttl = "10m")]
async fn member(Path((org, id)): Path<(String, u64)>) -> Json<String> {
    Json(format!("{org}/{id}"))
}

// A body extractor keys the cache by a field of the body.
#[cashews::failover(ttl = "1d", key = "greet:{body.name}")]
async fn greet(Json(body): Json<NewUser>) -> Result<Json<String>, AppError> {
    Ok(Json(format!("hello {}", body.name)))
}

// Refusal strategies: their error reaches the handler's error type.
#[cashews::rate_limit(limit = 10, period = "1m", key = "create:{tenant.0}")]
async fn create(
    Extension(tenant): Extension<Tenant>,
    Json(body): Json<NewUser>,
) -> Result<StatusCode, AppError> {
    let _ = (tenant, body.name);
    Ok(StatusCode::CREATED)
}

#[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "5m")]
async fn health(State(app): State<App>) -> Result<String, AppError> {
    Ok(app.name)
}

// Options over the stored value see the `T` inside `Json`.
fn worth_keeping(user: &User) -> bool {
    user.id != 0
}

#[cashews::cache(ttl = |u: &User| if u.id == 0 { "1m" } else { "1h" })]
async fn user_by_ttl(Path(id): Path<u64>) -> Json<User> {
    Json(User { id, name: String::new() })
}

#[cashews::hit(ttl = "1h", cache_hits = 10, condition = worth_keeping)]
async fn user_by_hits(Path(id): Path<u64>) -> Json<User> {
    Json(User { id, name: String::new() })
}

#[cashews::soft(ttl = "1h", soft_ttl = "1m")]
async fn user_soft(Path(id): Path<u64>) -> Result<Json<User>, AppError> {
    Ok(Json(User { id, name: String::new() }))
}

// Stacked: the outer layer's origin is the inner layer.
#[cashews::failover(ttl = "1d")]
#[cashews::cache(ttl = "1m")]
async fn user_stacked(Path(id): Path<u64>) -> Result<Json<User>, AppError> {
    Ok(Json(User { id, name: String::new() }))
}

fn main() {
    let _router: Router = Router::new()
        .route("/users/{id}", get(user))
        .route("/users", get(users).post(create))
        .route("/orgs/{org}/members/{id}", get(member))
        .route("/greet", post(greet))
        .route("/health", get(health))
        .route("/ttl/{id}", get(user_by_ttl))
        .route("/hits/{id}", get(user_by_hits))
        .route("/soft/{id}", get(user_soft))
        .route("/stacked/{id}", get(user_stacked))
        .layer(Extension(Tenant(1)))
        .with_state(App {
            name: "ada".to_owned(),
        });
}
