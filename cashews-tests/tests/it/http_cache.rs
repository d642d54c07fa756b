//! The HTTP response cache (`cashews::http::CacheLayer`) in an axum app served on loopback,
//! driven by a real HTTP client. Handler runs are counted; time moves with a manual clock.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use axum::routing::{get, post};
use cashews::http::CacheLayer;
use cashews::{Bytes, Cache, Clock};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use crate::support::{manual_cache, secs};

/// The body size cap of the test layers.
const CAP: usize = 1024;

/// Handler runs, per route.
#[derive(Default)]
struct Runs {
    counter: AtomicUsize,
    big: AtomicUsize,
    broken: AtomicUsize,
    swr: AtomicUsize,
    no_store: AtomicUsize,
    private: AtomicUsize,
}

/// The app under test on a loopback port, and a client for it.
struct App {
    base: String,
    runs: Arc<Runs>,
    client: Client<HttpConnector, Full<Bytes>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A reply of the app: status, headers, body.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn hit(&self) -> bool {
        self.headers
            .get("x-from-cache")
            .is_some_and(|v| v == "true")
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

fn count(runs: &AtomicUsize) -> usize {
    runs.fetch_add(1, Ordering::SeqCst) + 1
}

fn routes(runs: &Arc<Runs>) -> Router {
    let r = Arc::clone(runs);
    let counter = move || {
        let n = count(&r.counter);
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("x-test", HeaderValue::from_static("TRUE"));
            headers.insert("x-header", HeaderValue::from_static("Some;:=Value"));
            headers.insert("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
            (StatusCode::CREATED, headers, format!("n{n}"))
        }
    };
    let r = Arc::clone(runs);
    let big = move || {
        count(&r.big);
        async move {
            let chunks = (0..4).map(|i| Ok::<_, Infallible>(Bytes::from(vec![b'a' + i; 1000])));
            Body::from_stream(futures_util::stream::iter(chunks))
        }
    };
    let r = Arc::clone(runs);
    let broken = move || {
        count(&r.broken);
        async move {
            let chunks = (0..10).map(|i| {
                if i == 5 {
                    Err(std::io::Error::other("chunk 5 failed"))
                } else {
                    Ok(Bytes::from(i.to_string()))
                }
            });
            Body::from_stream(futures_util::stream::iter(chunks))
        }
    };
    let r = Arc::clone(runs);
    let swr = move || {
        let n = count(&r.swr);
        async move {
            (
                [("cache-control", "max-age=5, stale-while-revalidate=100")],
                format!("s{n}"),
            )
        }
    };
    let r = Arc::clone(runs);
    let no_store = move || {
        let n = count(&r.no_store);
        async move { ([("cache-control", "no-store")], format!("x{n}")) }
    };
    let r = Arc::clone(runs);
    let private = move || {
        let n = count(&r.private);
        async move { ([("cache-control", "private, max-age=60")], format!("p{n}")) }
    };
    let r = Arc::clone(runs);
    let post_counter = move || {
        let n = count(&r.counter);
        async move { format!("n{n}") }
    };
    let r = Arc::clone(runs);
    let public = move || {
        let n = count(&r.private);
        async move { ([("cache-control", "public, max-age=60")], format!("q{n}")) }
    };
    Router::new()
        .route("/counter", get(counter).post(post_counter))
        .route("/public", get(public))
        .route("/big", get(big))
        .route("/broken", get(broken))
        .route("/swr", get(swr))
        .route("/no-store", get(no_store))
        .route("/private", get(private))
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn serve(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (base, server)
}

async fn start(layer: CacheLayer) -> App {
    let runs = Arc::new(Runs::default());
    let (base, server) = serve(routes(&runs).layer(layer)).await;
    App {
        base,
        runs,
        client: client(),
        server,
    }
}

impl App {
    async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.try_send(method, path, headers).await.unwrap()
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[]).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers).await
    }
}

/// A layer on a fresh memory cache with a manual clock.
fn layer() -> (CacheLayer, Cache, Clock) {
    let (cache, clock) = manual_cache();
    let layer = CacheLayer::new(cache.clone())
        .ttl(secs(10))
        .max_body_size(CAP)
        .prefix("t");
    (layer, cache, clock)
}

// ----- the layer: keys, what is stored, hit headers ---------------------------------------

/// The basic path on any cache: a miss runs the handler, a hit does not and says so; status,
/// headers (non-UTF-8 bytes included) and body come back as the handler gave them.
async fn hit_and_miss(app: &App) {
    let first = app.get("/counter").await;
    assert_eq!(
        (first.status, first.body.as_str()),
        (StatusCode::CREATED, "n1")
    );
    assert!(!first.hit());
    let second = app.get("/counter").await;
    assert!(second.hit());
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.body, "n1");
    assert_eq!(second.header("x-test"), "TRUE");
    assert_eq!(second.header("x-header"), "Some;:=Value");
    assert_eq!(second.headers["x-raw"].as_bytes(), b"caf\xe9");
    assert_eq!(second.header("etag"), first.header("etag"));
    assert_eq!(app.runs.counter.load(Ordering::SeqCst), 1);
}

/// ETags: `If-None-Match` with the stored tag is a 304 without the handler; another tag is a
/// 200 with the same body and tag; invalidating the route's key ends the 304s.
async fn etags(app: &App, layer: &CacheLayer) {
    let first = app.get("/counter?e=1").await;
    let etag = first.header("etag").to_owned();
    let hex = etag.trim_matches('"');
    assert!(etag.starts_with('"') && etag.ends_with('"') && !hex.is_empty());
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let runs = app.runs.counter.load(Ordering::SeqCst);

    let not_modified = app
        .get_with("/counter?e=1", &[("if-none-match", &etag)])
        .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.body, "");
    assert_eq!(not_modified.header("etag"), etag);
    let other = app
        .get_with("/counter?e=1", &[("if-none-match", "\"0123abcd\"")])
        .await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_eq!(
        (other.body.as_str(), other.header("etag")),
        (first.body.as_str(), etag.as_str())
    );
    assert_eq!(
        app.runs.counter.load(Ordering::SeqCst),
        runs,
        "served from the cache"
    );

    assert!(
        layer
            .invalidate(&Method::GET, &"/counter?e=1".parse().unwrap())
            .await
            .unwrap()
    );
    let after = app
        .get_with("/counter?e=1", &[("if-none-match", &etag)])
        .await;
    assert_eq!(
        after.status,
        StatusCode::CREATED,
        "the ETag went with its key"
    );
    assert_ne!(after.header("etag"), etag);
    assert_eq!(app.runs.counter.load(Ordering::SeqCst), runs + 1);
}

#[tokio::test]
async fn a_hit_serves_the_stored_status_headers_and_body_on_memory() {
    let (layer, _, _) = layer();
    let app = start(layer).await;
    hit_and_miss(&app).await;
}

#[tokio::test]
async fn etags_answer_304_until_the_key_is_invalidated_on_memory() {
    let (layer, _, _) = layer();
    let app = start(layer.clone()).await;
    etags(&app, &layer).await;
}

#[cfg(feature = "redis")]
async fn redis_layer(case: &str) -> Option<CacheLayer> {
    let cache = Cache::new();
    cache.setup(&crate::support::redis_url()).unwrap();
    if let Err(e) = cache.ping().await {
        return cashews_testkit::skip_unless_ci(case, &format!("no Redis: {e}"));
    }
    let prefix = crate::support::unique_prefix("http");
    Some(
        CacheLayer::new(cache)
            .ttl(secs(60))
            .prefix(prefix.trim_end_matches(':')),
    )
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_hit_serves_the_stored_status_headers_and_body_on_redis() {
    let Some(layer) = redis_layer("a_hit_serves_the_stored_status_headers_and_body_on_redis").await
    else {
        return;
    };
    let app = start(layer).await;
    hit_and_miss(&app).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn etags_answer_304_until_the_key_is_invalidated_on_redis() {
    let Some(layer) = redis_layer("etags_answer_304_until_the_key_is_invalidated_on_redis").await
    else {
        return;
    };
    let app = start(layer.clone()).await;
    etags(&app, &layer).await;
}

#[tokio::test]
async fn hits_carry_the_remaining_freshness_and_the_age() {
    let (layer, _, clock) = layer();
    let app = start(layer).await;
    app.get("/counter").await;
    clock.advance(secs(3));
    let hit = app.get("/counter").await;
    assert!(hit.hit());
    assert_eq!(hit.header("cache-control"), "private, max-age=7");
    assert_eq!(hit.header("age"), "3");
    clock.advance(secs(8));
    let expired = app.get("/counter").await;
    assert!(!expired.hit());
    assert_eq!(expired.body, "n2");
}

#[tokio::test]
async fn the_key_is_method_path_query_and_the_chosen_headers() {
    let (layer, _, _) = layer();
    let app = start(layer.vary([http::header::ACCEPT_LANGUAGE])).await;
    assert_eq!(app.get("/counter?a=1").await.body, "n1");
    assert_eq!(app.get("/counter?a=2").await.body, "n2");
    assert_eq!(app.get("/counter?a=1").await.body, "n1");
    let fr = [("accept-language", "fr")];
    assert_eq!(app.get_with("/counter?a=1", &fr).await.body, "n3");
    assert_eq!(app.get_with("/counter?a=1", &fr).await.body, "n3");
    // Only GET and HEAD are cached by default.
    assert_eq!(app.send(Method::POST, "/counter", &[]).await.body, "n4");
    assert_eq!(app.send(Method::POST, "/counter", &[]).await.body, "n5");
    let head = app.send(Method::HEAD, "/counter", &[]).await;
    assert_eq!((head.status, head.body.as_str()), (StatusCode::CREATED, ""));
    assert!(app.send(Method::HEAD, "/counter", &[]).await.hit());
    assert_eq!(app.runs.counter.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn responses_marked_no_store_or_private_are_not_stored() {
    let (layer, cache, _) = layer();
    let app = start(layer).await;
    assert_eq!(app.get("/no-store").await.body, "x1");
    assert_eq!(app.get("/no-store").await.body, "x2");
    assert_eq!(app.get("/private").await.body, "p1");
    assert_eq!(app.get("/private").await.body, "p2");
    // A response to a request with credentials is personal too, unless it says `public`.
    let bearer = [("authorization", "Bearer t")];
    assert_eq!(app.get_with("/counter?auth", &bearer).await.body, "n1");
    assert_eq!(app.get_with("/counter?auth", &bearer).await.body, "n2");
    let public = app.get_with("/public", &bearer).await;
    let again = app.get_with("/public", &bearer).await;
    assert!(again.hit());
    assert_eq!(again.body, public.body);
    // Unless the layer is told to store private responses.
    let app = start(CacheLayer::new(cache).store_private(true).prefix("priv")).await;
    assert_eq!(app.get("/private").await.body, "p1");
    let hit = app.get("/private").await;
    assert_eq!(hit.body, "p1");
    assert!(hit.hit());
}

#[tokio::test]
async fn a_body_over_the_cap_reaches_the_client_whole_and_is_not_stored() {
    let (layer, _, _) = layer();
    let app = start(layer).await;
    for _ in 0..2 {
        let reply = app.get("/big").await;
        assert!(!reply.hit());
        let expected: String = (0..4u8)
            .map(|i| char::from(b'a' + i).to_string().repeat(1000))
            .collect();
        assert_eq!(reply.body, expected);
    }
    assert_eq!(app.runs.big.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_failing_midway_fails_the_request_and_is_not_stored() {
    let (layer, _, _) = layer();
    let app = start(layer).await;
    for _ in 0..2 {
        let reply = app.try_send(Method::GET, "/broken", &[]).await;
        assert!(reply.is_err(), "a truncated body must not look complete");
    }
    assert_eq!(app.runs.broken.load(Ordering::SeqCst), 2);
}

// ----- request Cache-Control --------------------------------------------------------------

#[tokio::test]
async fn request_no_cache_skips_the_read_and_still_stores() {
    let (layer, _, _) = layer();
    let app = start(layer).await;
    let no_cache = [("cache-control", "no-cache")];
    let first = app.get_with("/counter", &no_cache).await.body;
    let second = app.get("/counter").await.body;
    let third = app.get_with("/counter", &no_cache).await.body;
    assert_eq!(first, second);
    assert_ne!(third, first);
    assert_eq!(
        app.get("/counter").await.body,
        third,
        "the no-cache response was stored"
    );
}

#[tokio::test]
async fn request_no_store_and_max_age_0_neither_read_nor_store() {
    let (layer, _, _) = layer();
    let app = start(layer).await;
    assert_eq!(app.get("/counter").await.body, "n1");
    for value in ["no-store", "public, max-age=0"] {
        let reply = app.get_with("/counter", &[("cache-control", value)]).await;
        assert!(!reply.hit());
        assert_ne!(reply.body, "n1");
    }
    assert_eq!(
        app.get("/counter").await.body,
        "n1",
        "nothing was stored over it"
    );
    assert_eq!(
        app.get_with("/counter", &[("cache-control", "max-age=600")])
            .await
            .body,
        "n1"
    );
}

// ----- Clear-Site-Data ---------------------------------------------------------------------

#[tokio::test]
async fn clear_site_data_cache_recomputes_the_response() {
    let (layer, _, _) = layer();
    let app = start(layer).await;
    assert_eq!(app.get("/counter").await.body, "n1");
    assert_eq!(app.get("/counter").await.body, "n1");
    let cleared = app
        .get_with("/counter", &[("clear-site-data", "\"cache\"")])
        .await;
    assert_eq!(cleared.body, "n2");
    assert!(!cleared.hit());
    assert_eq!(
        app.get("/counter").await.body,
        "n2",
        "the recomputed response is stored"
    );
    // Python's unquoted form too.
    assert_eq!(
        app.get_with("/counter", &[("clear-site-data", "cache")])
            .await
            .body,
        "n3"
    );
    assert_eq!(
        app.get_with("/counter", &[("clear-site-data", "\"cookies\"")])
            .await
            .body,
        "n3"
    );
}

#[tokio::test]
async fn clear_site_data_also_recomputes_what_the_handler_reads_from_the_cache() {
    let (cache, _) = manual_cache();
    let origin_runs = Arc::new(AtomicUsize::new(0));
    let (c, r) = (cache.clone(), Arc::clone(&origin_runs));
    let handler = move || {
        let (c, r) = (c.clone(), Arc::clone(&r));
        async move {
            let value: u64 = c
                .get_or_set("inner", 60, move || async move { count(&r) as u64 })
                .await
                .unwrap();
            format!("v{value}")
        }
    };
    let router = Router::new()
        .route("/inner", get(handler))
        .layer(CacheLayer::new(cache).prefix("outer"));
    let (base, server) = serve(router).await;
    let app = App {
        base,
        runs: Arc::default(),
        client: client(),
        server,
    };
    assert_eq!(app.get("/inner").await.body, "v1");
    assert_eq!(app.get("/inner").await.body, "v1");
    let cleared = app
        .get_with("/inner", &[("clear-site-data", "\"cache\"")])
        .await;
    assert_eq!(cleared.body, "v2");
    assert_eq!(origin_runs.load(Ordering::SeqCst), 2);
}

// ----- stale-while-revalidate -------------------------------------------------------------

/// Requests until the refreshed response is served; every one meanwhile gets the stale one,
/// and no further refresh runs.
async fn until_refreshed(app: &App, path: &str, stale: &str, fresh: &str, runs: &AtomicUsize) {
    for _ in 0..100_000 {
        let reply = app.get(path).await;
        if reply.body == fresh {
            return;
        }
        assert_eq!(reply.body, stale);
        assert!(reply.hit());
        // The refresh runs in a task of its own, which may not have reached the handler yet
        // when the stale reply arrives: at most one refresh, never a second.
        assert!(runs.load(Ordering::SeqCst) <= 2, "one refresh at a time");
        tokio::task::yield_now().await;
    }
    panic!("the refresh of {path} never landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_response_is_served_while_one_request_refreshes_it() {
    let (layer, _, clock) = layer();
    let app = start(layer.stale_while_revalidate(secs(100))).await;
    assert_eq!(app.get("/counter").await.body, "n1");
    clock.advance(secs(11));
    let stale = app.get("/counter").await;
    assert!(stale.hit());
    assert_eq!(stale.body, "n1");
    assert_eq!(stale.header("cache-control"), "private, max-age=0");
    until_refreshed(&app, "/counter", "n1", "n2", &app.runs.counter).await;
    assert_eq!(app.runs.counter.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_stale_while_revalidate_is_honoured() {
    // The layer has none; the response says max-age=5, stale-while-revalidate=100.
    let (layer, _, clock) = layer();
    let app = start(layer).await;
    assert_eq!(app.get("/swr").await.body, "s1");
    clock.advance(secs(4));
    assert_eq!(
        app.get("/swr").await.header("cache-control"),
        "private, max-age=1"
    );
    clock.advance(secs(2));
    let stale = app.get("/swr").await;
    assert_eq!((stale.body.as_str(), stale.hit()), ("s1", true));
    until_refreshed(&app, "/swr", "s1", "s2", &app.runs.swr).await;
    // Past freshness and the stale window: gone, recomputed by the request.
    clock.advance(secs(200));
    let miss = app.get("/swr").await;
    assert_eq!((miss.body.as_str(), miss.hit()), ("s3", false));
}

// ----- coalescing --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_requests_run_the_handler_once() {
    const N: usize = 1000;
    let (cache, _) = manual_cache();
    let runs = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    // The handler is held until every request has reached the app.
    let gate = Arc::new(Semaphore::new(0));
    let (r, g) = (Arc::clone(&runs), Arc::clone(&gate));
    let handler = move || {
        let (r, g) = (Arc::clone(&r), Arc::clone(&g));
        async move {
            let n = count(&r);
            let _open = g.acquire().await.unwrap();
            format!("once {n}")
        }
    };
    let (a, g) = (Arc::clone(&arrived), Arc::clone(&gate));
    let arrivals = move |request: Request, next: Next| {
        let (a, g) = (Arc::clone(&a), Arc::clone(&g));
        async move {
            if a.fetch_add(1, Ordering::SeqCst) + 1 == N {
                g.add_permits(N);
            }
            let response: Response = next.run(request).await;
            response
        }
    };
    let router = Router::new()
        .route("/cold", get(handler))
        .layer(CacheLayer::new(cache).prefix("cold"))
        .layer(from_fn(arrivals));
    let (base, server) = serve(router).await;
    let app = Arc::new(App {
        base,
        runs: Arc::default(),
        client: client(),
        server,
    });
    let requests: Vec<_> = (0..N)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get("/cold").await })
        })
        .collect();
    let mut hits = 0;
    for request in requests {
        let reply = request.await.unwrap();
        assert_eq!(reply.body, "once 1");
        hits += usize::from(reply.hit());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(hits, N - 1);
    assert_eq!(arrived.load(Ordering::SeqCst), N);
}

#[tokio::test]
async fn a_route_outside_the_layer_methods_passes_through() {
    let (layer, _, _) = layer();
    let runs = Arc::new(Runs::default());
    let r = Arc::clone(&runs);
    let router = Router::new()
        .route(
            "/p",
            post(move || {
                let n = count(&r.counter);
                async move { format!("n{n}") }
            }),
        )
        .layer(layer.methods([Method::GET, Method::POST]));
    let (base, server) = serve(router).await;
    let app = App {
        base,
        runs,
        client: client(),
        server,
    };
    assert_eq!(app.send(Method::POST, "/p", &[]).await.body, "n1");
    assert!(app.send(Method::POST, "/p", &[]).await.hit());
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn a_backend_that_is_down_never_breaks_a_request() {
    // Nothing listens on this port: every cache command fails, and is logged.
    let port = crate::support::SpawnedRedis::free_port();
    let cache = Cache::new();
    cache
        .setup(&format!(
            "redis://127.0.0.1:{port}/0?connect_timeout=200ms&command_timeout=500ms"
        ))
        .unwrap();
    let app = start(CacheLayer::new(cache).prefix("down")).await;
    for n in 1..=2 {
        let reply = app.get("/counter").await;
        assert_eq!((reply.status, reply.hit()), (StatusCode::CREATED, false));
        assert_eq!(reply.body, format!("n{n}"));
    }
}
