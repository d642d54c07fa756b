//! The example service (`examples/axum_app.rs`) started on loopback and driven over real HTTP:
//! the cached read and its database reads, an update that invalidates by tag, the stored
//! `/catalog` with `ETag` and `304`, the rate-limited `/search` (`429` with its headers), the
//! circuit-broken `/upstream` (`503`), 1,000 concurrent cold requests reading the database
//! once, and the counts at `/metrics`. On `mem://`, and on a Redis server of the test's own
//! with the client-side tier.

#[allow(dead_code, unreachable_pub, clippy::all)]
#[path = "../../examples/axum_app.rs"]
mod app;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use app::{Db, Product};

/// A response as the tests read it.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<bytes::Bytes>>,
    addr: SocketAddr,
}

impl Http {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body.to_owned())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], "").await
    }
}

/// Sets up the default cache on `url`, serves the app on 127.0.0.1:0, returns its client and
/// database (whose reads never wait: the tests count them, they do not time them).
async fn start(url: &str) -> (Http, Arc<Db>) {
    let metrics = app::setup(url).unwrap();
    let db = Arc::new(Db::new(Duration::ZERO));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app::serve(listener, app::router(Arc::clone(&db), metrics)));
    let client = Client::builder(TokioExecutor::new()).build_http();
    (Http { client, addr }, db)
}

/// The value of the Prometheus series `name{labels}` (labels in any order), 0 when absent.
fn series(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, "}"));
            (series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

async fn the_app_caches_invalidates_limits_and_counts(url: &str) {
    let (http, db) = start(url).await;

    // The cached read: one database read for any number of requests.
    let first = http.get("/products/3").await;
    assert_eq!(first.status, 200);
    let product: Product = serde_json::from_str(&first.body).unwrap();
    assert_eq!(product.name, "product 3");
    for _ in 0..4 {
        assert_eq!(http.get("/products/3").await.body, first.body);
    }
    assert_eq!(db.reads(), 1);
    // The uncached twin reads every time.
    http.get("/products/3/uncached").await;
    http.get("/products/3/uncached").await;
    assert_eq!(db.reads(), 3);
    assert_eq!(http.get("/products/999").await.status, 404);
    assert_eq!(http.get("/products/999").await.status, 404); // errors are not stored
    assert_eq!(db.reads(), 5);

    // The stored /catalog: X-From-Cache, an ETag, then 304 without the handler.
    let catalog = http.get("/catalog").await;
    assert_eq!(catalog.status, 200);
    assert_eq!(catalog.header("x-from-cache"), None);
    let etag = catalog.header("etag").unwrap().to_owned();
    let again = http.get("/catalog").await;
    assert_eq!(again.header("x-from-cache"), Some("true"));
    assert_eq!(again.body, catalog.body);
    let not_modified = http
        .send("GET", "/catalog", &[("if-none-match", &etag)], "")
        .await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(db.reads(), 6);

    // An update invalidates the product by tag and the stored catalog.
    let renamed = r#"{"id":3,"name":"green tea","price_cents":450}"#;
    let put = http
        .send(
            "PUT",
            "/products/3",
            &[("content-type", "application/json")],
            renamed,
        )
        .await;
    assert_eq!(put.status, 204);
    let after: Product = serde_json::from_str(&http.get("/products/3").await.body).unwrap();
    assert_eq!(after.name, "green tea");
    assert_eq!(db.reads(), 7);
    let stale_etag = http
        .send("GET", "/catalog", &[("if-none-match", &etag)], "")
        .await;
    assert_eq!(stale_etag.status, 200, "the old ETag died with its entry");
    assert!(stale_etag.body.contains("green tea"));
    assert_ne!(stale_etag.header("etag"), Some(etag.as_str()));
    assert_eq!(db.reads(), 8);

    // The rate-limited search: 5 a minute per client, then 429 with the numbers.
    for remaining in (0..5).rev() {
        let found = http.get("/search?q=tea").await;
        assert_eq!(found.status, 200);
        assert_eq!(found.header("x-ratelimit-limit"), Some("5"));
        assert_eq!(
            found.header("x-ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
    }
    let refused = http.get("/search?q=tea").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    let reset: u64 = refused
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&reset), "reset {reset}");

    // The circuit-broken upstream: 4 failures open it, then 503 without calling it.
    assert_eq!(http.get("/upstream").await.status, 200);
    assert_eq!(
        http.send("PUT", "/admin/upstream", &[], "down")
            .await
            .status,
        204
    );
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(http.get("/upstream").await.status);
    }
    let open = statuses.iter().position(|&s| s == 503).unwrap();
    assert!(statuses[..open].iter().all(|&s| s == 502), "{statuses:?}");
    assert!(statuses[open..].iter().all(|&s| s == 503), "{statuses:?}");
    let open_answer = http.get("/upstream").await;
    assert_eq!(open_answer.status, 503);
    assert!(open_answer.header("retry-after").is_some());

    // 1,000 concurrent cold requests for one product read the database once.
    let before = db.reads();
    let mut requests = Vec::new();
    for _ in 0..1_000 {
        let http = http.clone();
        requests.push(tokio::spawn(async move { http.get("/products/42").await }));
    }
    for request in requests {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains("product 42"));
    }
    assert_eq!(db.reads() - before, 1);

    // What /metrics counted.
    let scrape = http.get("/metrics").await.body;
    assert_eq!(
        series(
            &scrape,
            "cashews_refusals_total",
            &[("strategy", "rate_limit")]
        ),
        1.0
    );
    assert!(
        series(
            &scrape,
            "cashews_refusals_total",
            &[("strategy", "circuit_breaker")]
        ) >= 1.0
    );
    let product_calls = |result| {
        series(
            &scrape,
            "cashews_strategy_calls_total",
            &[
                ("strategy", "cache"),
                ("template", "product:{id}"),
                ("result", result),
            ],
        )
    };
    // 1,008 calls of the cached handler: 5 + 1 for product 3, 2 for 999, 1,000 for 42. At
    // least the 4 repeated reads of product 3 were hits, at least 3 + 2 were not (the first
    // read of 3, the read after the update, 42's load, 999 twice); how the 999 callers that
    // joined 42's load are labelled depends on when they arrived.
    let total: f64 = ["hit", "miss", "error", "ok"]
        .into_iter()
        .map(product_calls)
        .sum();
    assert_eq!(total, 1_008.0, "{scrape}");
    assert!(product_calls("hit") >= 4.0, "{scrape}");
    assert!(
        product_calls("miss") + product_calls("error") >= 5.0,
        "{scrape}"
    );
    assert!(
        series(
            &scrape,
            "cashews_commands_total",
            &[("command", "get"), ("result", "hit")]
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_on_memory() {
    the_app_caches_invalidates_limits_and_counts("mem://").await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_on_redis_with_the_client_side_tier() {
    use crate::support::SpawnedRedis;
    // A server of this test's own: the app's keys (`product:3`, the rate limit of 127.0.0.1)
    // must not meet another test's or another run's.
    let server = match SpawnedRedis::start_own(&[]) {
        Ok(server) => server,
        Err(reason) if std::env::var_os("CI").is_none() => {
            println!("skipped: {reason}");
            return;
        }
        Err(reason) => panic!("{reason}"),
    };
    let url = format!("redis://127.0.0.1:{}/?client_side=true", server.port);
    the_app_caches_invalidates_limits_and_counts(&url).await;
}
