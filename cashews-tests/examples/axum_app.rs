//! An axum API on cashews, as a service runs it: `cargo run --example axum_app`.
//!
//! The backend comes from `CASHEWS_URL` (default `mem://`); with Redis, add the client-side
//! tier: `CASHEWS_URL='redis://127.0.0.1:6379/?client_side=true' cargo run --example axum_app`.
//! It listens on `CASHEWS_ADDR` (default `127.0.0.1:3000`). The product "database" takes
//! `DB_LATENCY_MS` (default 2) per read, so the cache has something to save.
//!
//! | Route | What it shows |
//! |---|---|
//! | `GET /products/{id}` | `#[cashews::cache]` on the handler: the key from the `Path`, tagged `product:{id}` |
//! | `GET /products/{id}/uncached` | the same read without a cache, to compare under load |
//! | `PUT /products/{id}` | an update that invalidates by tag, and the stored `/catalog` response |
//! | `GET /catalog` | [`CacheLayer`]: the whole response stored, `ETag`, `304`, `X-From-Cache` |
//! | `GET /search?q=` | [`RateLimitLayer`]: 5 requests a minute per client IP, then `429` |
//! | `GET /upstream` | [`CircuitBreakerLayer`]: `503` while a failing upstream rests |
//! | `PUT /admin/upstream` | body `down` or `up`: makes the upstream fail or recover |
//! | `GET /metrics` | every command, strategy call and refusal, in the Prometheus format |
//! | `GET /stats` | how many times the database was read |
//!
//! ```sh
//! curl -i localhost:3000/products/1            # miss, then hits
//! curl -i localhost:3000/catalog               # ETag; again with If-None-Match: 304
//! curl -X PUT -H 'content-type: application/json' \
//!      -d '{"id":1,"name":"Tea","price_cents":450}' localhost:3000/products/1
//! curl -s localhost:3000/metrics | grep cashews_
//! ```
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cashews::http::{CacheLayer, CircuitBreakerLayer, RateLimitLayer, by_client_ip};
use cashews::strategy::{CircuitBreakerOptions, RateLimitOptions};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// A product as the API serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// The product's id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its price, in cents.
    pub price_cents: u64,
}

/// The slow "database" the cache sits in front of.
#[derive(Debug)]
pub struct Db {
    products: Mutex<BTreeMap<u64, Product>>,
    reads: AtomicU64,
    latency: Duration,
}

impl Db {
    /// A database of 100 products, each read taking `latency`.
    pub fn new(latency: Duration) -> Self {
        let products = (1..=100)
            .map(|id| {
                let product = Product {
                    id,
                    name: format!("product {id}"),
                    price_cents: 100 * id,
                };
                (id, product)
            })
            .collect();
        Self {
            products: Mutex::new(products),
            reads: AtomicU64::new(0),
            latency,
        }
    }

    async fn product(&self, id: u64) -> Option<Product> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.products.lock().get(&id).cloned()
    }

    async fn all(&self) -> Vec<Product> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        self.products.lock().values().cloned().collect()
    }

    /// How many times the database was read.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct App {
    /// The database.
    pub db: Arc<Db>,
    upstream_down: Arc<AtomicBool>,
    catalog: CacheLayer,
    metrics: PrometheusHandle,
}

/// The API's errors, as HTTP responses.
#[derive(Debug)]
pub enum ApiError {
    /// No such product.
    NotFound,
    /// The cache failed (only without safe mode).
    Cache(cashews::Error),
}

impl From<cashews::Error> for ApiError {
    fn from(error: cashews::Error) -> Self {
        Self::Cache(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND.into_response(),
            Self::Cache(error) => cashews::http::ErrorResponse(error).into_response(),
        }
    }
}

/// `GET /products/{id}`: one database read per product per 10 minutes, whatever the traffic;
/// concurrent cold requests share one read.
#[cashews::cache(ttl = "10m", key = "product:{id}", tags = ["product:{id}"])]
async fn product(State(app): State<App>, Path(id): Path<u64>) -> Result<Json<Product>, ApiError> {
    app.db.product(id).await.map(Json).ok_or(ApiError::NotFound)
}

/// `GET /products/{id}/uncached`: the same read, straight to the database.
async fn product_uncached(
    State(app): State<App>,
    Path(id): Path<u64>,
) -> Result<Json<Product>, ApiError> {
    app.db.product(id).await.map(Json).ok_or(ApiError::NotFound)
}

/// `PUT /products/{id}`: writes, then drops what the cache holds about the product.
async fn update_product(
    State(app): State<App>,
    Path(id): Path<u64>,
    Json(product): Json<Product>,
) -> Result<StatusCode, ApiError> {
    if product.id != id {
        return Ok(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.db.products.lock().insert(id, product);
    cashews::cache()
        .delete_tags(&[format!("product:{id}").as_str()])
        .await?;
    app.catalog
        .invalidate(&Method::GET, &Uri::from_static("/catalog"))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /catalog`: the response is stored whole by the [`CacheLayer`] around this route.
async fn catalog(State(app): State<App>) -> Json<Vec<Product>> {
    Json(app.db.all().await)
}

#[derive(Debug, Deserialize)]
struct Search {
    q: String,
}

/// `GET /search?q=`: rate limited per client.
async fn search(State(app): State<App>, Query(search): Query<Search>) -> Json<Vec<Product>> {
    let needle = search.q.to_lowercase();
    let found = app.db.all().await;
    Json(
        found
            .into_iter()
            .filter(|p| p.name.contains(&needle))
            .collect(),
    )
}

/// `GET /upstream`: a call to a partner API that fails while it is down.
async fn upstream(State(app): State<App>) -> (StatusCode, &'static str) {
    if app.upstream_down.load(Ordering::SeqCst) {
        (StatusCode::BAD_GATEWAY, "upstream failed")
    } else {
        (StatusCode::OK, "upstream answered")
    }
}

/// `PUT /admin/upstream` with body `down` or `up`.
async fn set_upstream(State(app): State<App>, body: String) -> StatusCode {
    match body.trim() {
        "down" => app.upstream_down.store(true, Ordering::SeqCst),
        "up" => app.upstream_down.store(false, Ordering::SeqCst),
        _ => return StatusCode::UNPROCESSABLE_ENTITY,
    }
    StatusCode::NO_CONTENT
}

/// `GET /metrics`: the Prometheus scrape.
async fn scrape(State(app): State<App>) -> String {
    app.metrics.render()
}

/// `GET /stats`: `{"db_reads": N}`.
async fn stats(State(app): State<App>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "db_reads": app.db.reads() }))
}

/// Sets up the default cache on `url` with the metrics stage, and installs the Prometheus
/// recorder (the first call in a process; later calls share it).
///
/// # Errors
/// A bad URL or option, or a second recorder.
pub fn setup(url: &str) -> Result<PrometheusHandle, Box<dyn std::error::Error>> {
    static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
    let handle = match RECORDER.get() {
        Some(handle) => handle.clone(),
        None => {
            let handle = PrometheusBuilder::new().install_recorder()?;
            let _ = RECORDER.set(handle.clone());
            handle
        }
    };
    cashews::cache().setup_with(url, [cashews::observe::metrics()])?;
    Ok(handle)
}

/// The API over the default cache, set up by [`setup`].
pub fn router(db: Arc<Db>, metrics: PrometheusHandle) -> Router {
    let cache = cashews::cache().clone();
    let catalog_layer = CacheLayer::new(cache.clone())
        .prefix("http")
        .ttl(Duration::from_secs(30));
    let app = App {
        db,
        upstream_down: Arc::new(AtomicBool::new(false)),
        catalog: catalog_layer.clone(),
        metrics,
    };
    let limit = RateLimitLayer::new(
        cache.clone(),
        RateLimitOptions::new(5, Duration::from_secs(60)),
        by_client_ip,
    )
    .name("search");
    // Open for 30 s once half of at least 4 calls in 10 s failed.
    let breaker = CircuitBreakerLayer::new(
        cache,
        CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30))
            .min_calls(4),
    )
    .name("upstream");
    Router::new()
        .route("/products/{id}", get(product).put(update_product))
        .route("/products/{id}/uncached", get(product_uncached))
        .route("/catalog", get(catalog).layer(catalog_layer))
        .route("/search", get(search).layer(limit))
        .route("/upstream", get(upstream).layer(breaker))
        .route("/admin/upstream", axum::routing::put(set_upstream))
        .route("/metrics", get(scrape))
        .route("/stats", get(stats))
        .with_state(app)
}

/// Serves the API on `listener` until the process ends; the client address reaches the rate
/// limit through `ConnectInfo`.
///
/// # Errors
/// The listener failed.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

#[allow(dead_code)] // a test includes this file as a module and calls the parts
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("CASHEWS_URL").unwrap_or_else(|_| "mem://".to_owned());
    let addr = std::env::var("CASHEWS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let latency = std::env::var("DB_LATENCY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(2);
    let metrics = setup(&url)?;
    let db = Arc::new(Db::new(Duration::from_millis(latency)));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The scheme only: a Redis URL may carry a password.
    let scheme = url.split("://").next().unwrap_or_default();
    println!(
        "cashews axum_app on http://{} (cache: {scheme}://)",
        listener.local_addr()?
    );
    serve(listener, router(db, metrics)).await?;
    Ok(())
}
