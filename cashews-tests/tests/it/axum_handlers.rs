//! The caching attributes on axum handlers, served over real HTTP on loopback: keys from the
//! extractors' inner values (`Path`, `Query`), never from `State`; `Json<T>` results cached by
//! their `T`; the origin runs once per distinct key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use cashews::Cache;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// The application state: counts origin runs per handler.
#[derive(Clone, Default)]
struct App {
    users: Arc<AtomicUsize>,
    pairs: Arc<AtomicUsize>,
    search: Arc<AtomicUsize>,
    reports: Arc<AtomicUsize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Params {
    page: u32,
    #[serde(default)]
    fail: bool,
}

static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    let cache = Cache::new();
    cache.setup("mem://").unwrap();
    cache
});

// The default key: the module, the function and `id`; `State` is not part of it.
#[cashews::cache(ttl = "1h", cache = CACHE)]
async fn user(Path(id): Path<u64>, State(app): State<App>) -> Json<User> {
    app.users.fetch_add(1, Ordering::SeqCst);
    if id == 0 {
        // `return` keeps the declared type.
        return Json(User {
            id,
            name: "root".to_owned(),
        });
    }
    Json(User {
        id,
        name: format!("user {id}"),
    })
}

// A tuple pattern inside the extractor: the default key names `a` and `b`.
#[cashews::cache(ttl = "1h", cache = CACHE)]
async fn pair(State(app): State<App>, Path((a, b)): Path<(u32, u32)>) -> Json<u32> {
    app.pairs.fetch_add(1, Ordering::SeqCst);
    Json(a * 100 + b)
}

// A template over a field of the query; errors are not stored.
#[cashews::cache(ttl = "1h", key = "search:{q.page}", cache = CACHE)]
async fn search(
    Query(q): Query<Params>,
    State(app): State<App>,
) -> Result<Json<Vec<u32>>, StatusCode> {
    app.search.fetch_add(1, Ordering::SeqCst);
    if q.fail {
        return Err(StatusCode::SERVICE_UNAVAILABLE);
    }
    Ok(Json(vec![q.page, q.page + 1]))
}

// Another caching strategy on a handler.
#[cashews::early(ttl = "1h", early_ttl = "30m", key = "report:{city}", cache = CACHE)]
async fn report(Path(city): Path<String>, State(app): State<App>) -> Json<String> {
    app.reports.fetch_add(1, Ordering::SeqCst);
    Json(format!("weather in {city}"))
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Serves the handlers on 127.0.0.1:0; returns the base URL and a client.
async fn serve(app: App) -> (String, HttpClient) {
    let router = Router::new()
        .route("/users/{id}", get(user))
        .route("/pairs/{a}/{b}", get(pair))
        .route("/search", get(search))
        .route("/reports/{city}", get(report))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = Client::builder(TokioExecutor::new()).build_http();
    (format!("http://{addr}"), client)
}

async fn fetch(client: &HttpClient, url: String) -> (StatusCode, String) {
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn path_param_keys_the_cache_and_state_does_not() {
    let app = App::default();
    let (base, client) = serve(app.clone()).await;
    let first = fetch(&client, format!("{base}/users/7")).await;
    assert_eq!(
        first,
        (StatusCode::OK, r#"{"id":7,"name":"user 7"}"#.to_owned())
    );
    assert_eq!(fetch(&client, format!("{base}/users/7")).await, first);
    assert_eq!(
        app.users.load(Ordering::SeqCst),
        1,
        "same path param: one run"
    );
    let other = fetch(&client, format!("{base}/users/8")).await;
    assert_eq!(other.1, r#"{"id":8,"name":"user 8"}"#);
    assert_eq!(
        app.users.load(Ordering::SeqCst),
        2,
        "another path param: another run"
    );
    let root = fetch(&client, format!("{base}/users/0")).await;
    assert_eq!(root.1, r#"{"id":0,"name":"root"}"#);
    assert_eq!(fetch(&client, format!("{base}/users/0")).await, root);
    assert_eq!(app.users.load(Ordering::SeqCst), 3);

    // A second server with another state shares the entries: state is not in the key.
    let other_app = App::default();
    let (base2, client2) = serve(other_app.clone()).await;
    assert_eq!(fetch(&client2, format!("{base2}/users/7")).await, first);
    assert_eq!(other_app.users.load(Ordering::SeqCst), 0);

    // The stored value is the `User`, under the default key of `user` with `id`.
    let mut key = cashews::key::Strategy::Cache.key_buf();
    key.function(module_path!(), "user");
    key.arg("id", &7_u64);
    let stored: Option<User> = CACHE.get(&key.finish()).await.unwrap();
    assert_eq!(stored.map(|u| u.name), Some("user 7".to_owned()));
}

#[tokio::test]
async fn tuple_path_params_each_key_the_cache() {
    let app = App::default();
    let (base, client) = serve(app.clone()).await;
    assert_eq!(fetch(&client, format!("{base}/pairs/1/2")).await.1, "102");
    assert_eq!(fetch(&client, format!("{base}/pairs/1/2")).await.1, "102");
    assert_eq!(app.pairs.load(Ordering::SeqCst), 1);
    assert_eq!(fetch(&client, format!("{base}/pairs/2/1")).await.1, "201");
    assert_eq!(app.pairs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn query_fields_key_the_cache_and_errors_are_not_stored() {
    let app = App::default();
    let (base, client) = serve(app.clone()).await;
    let failed = fetch(&client, format!("{base}/search?page=3&fail=true")).await;
    assert_eq!(failed.0, StatusCode::SERVICE_UNAVAILABLE);
    let ok = fetch(&client, format!("{base}/search?page=3")).await;
    assert_eq!(ok, (StatusCode::OK, "[3,4]".to_owned()));
    // A hit even when this request would fail: the stored `Ok` answers.
    assert_eq!(
        fetch(&client, format!("{base}/search?page=3&fail=true")).await,
        ok
    );
    assert_eq!(app.search.load(Ordering::SeqCst), 2);
    assert_eq!(
        fetch(&client, format!("{base}/search?page=4")).await.1,
        "[4,5]"
    );
    assert_eq!(app.search.load(Ordering::SeqCst), 3);
    let stored: Option<Vec<u32>> = CACHE.get("search:3").await.unwrap();
    assert_eq!(stored, Some(vec![3, 4]));
}

#[tokio::test]
async fn early_on_a_handler_runs_once_per_key() {
    let app = App::default();
    let (base, client) = serve(app.clone()).await;
    for _ in 0..3 {
        let (status, body) = fetch(&client, format!("{base}/reports/oslo")).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "\"weather in oslo\"")
        );
    }
    assert_eq!(app.reports.load(Ordering::SeqCst), 1);
    fetch(&client, format!("{base}/reports/rome")).await;
    assert_eq!(app.reports.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_requests_run_the_handler_once() {
    let app = App::default();
    let (base, client) = serve(app.clone()).await;
    // Whether the requests overlap (one run shared) or not (later ones hit), one run.
    let requests = (0..50).map(|_| fetch(&client, format!("{base}/pairs/7/7")));
    let answers = futures_util::future::join_all(requests).await;
    assert!(
        answers
            .iter()
            .all(|a| a == &(StatusCode::OK, "707".to_owned()))
    );
    assert_eq!(app.pairs.load(Ordering::SeqCst), 1);
}
