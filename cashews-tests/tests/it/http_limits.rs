//! `cashews::http`'s `RateLimitLayer` and `CircuitBreakerLayer` in axum routers served on
//! loopback, driven by a real HTTP client: exact `X-RateLimit-*` / `Retry-After` numbers on a
//! memory backend with a manual clock (time moves, nobody sleeps), the same on Redis under a
//! prefix of its own, state shared by clones of a layer, and the attribute macro's refusal
//! turned into the same `429`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use cashews::http::{CircuitBreakerLayer, ErrorResponse, RateLimitLayer, by_client_ip, by_header};
use cashews::strategy::{CircuitBreakerOptions, RateLimitOptions, SliceRateLimitOptions};
use cashews::{Cache, Error};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::support::{Clocked, clocked, manual_cache, secs};

// ----- the server and the client ----------------------------------------------------------

/// Serves `app` on a free loopback port (with the peer address as `ConnectInfo`), until the
/// test's runtime ends.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// A real HTTP/1 client.
struct Http(Client<HttpConnector, Empty<cashews::Bytes>>);

/// What a test reads from a response: the status and the limit headers.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    limit: Option<String>,
    remaining: Option<String>,
    reset: Option<String>,
}

impl Answer {
    /// A counted `200` with these numbers.
    fn ok(limit: u64, remaining: u64, reset: u64) -> Self {
        Self {
            status: 200,
            retry_after: None,
            limit: Some(limit.to_string()),
            remaining: Some(remaining.to_string()),
            reset: Some(reset.to_string()),
        }
    }

    /// A `429` refusal with these numbers.
    fn refused(limit: u64, retry_after: u64) -> Self {
        Self {
            status: 429,
            retry_after: Some(retry_after.to_string()),
            limit: Some(limit.to_string()),
            remaining: Some("0".to_owned()),
            reset: Some(retry_after.to_string()),
        }
    }

    /// A bare status (no limit headers).
    fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            limit: None,
            remaining: None,
            reset: None,
        }
    }

    /// A `503` with `Retry-After`.
    fn open(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.to_string()),
            ..Self::status(503)
        }
    }
}

impl Http {
    fn new() -> Self {
        Self(Client::builder(TokioExecutor::new()).build_http())
    }

    /// `GET http://addr{path}` with `headers`.
    async fn get(&self, addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = http::Request::get(format!("http://{addr}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .0
            .request(request.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        Answer {
            status: response.status().as_u16(),
            retry_after: header("retry-after"),
            limit: header("x-ratelimit-limit"),
            remaining: header("x-ratelimit-remaining"),
            reset: header("x-ratelimit-reset"),
        }
    }
}

/// A handler that counts its runs and answers the status set in `status`.
#[derive(Clone, Default)]
struct Origin {
    runs: Arc<AtomicUsize>,
    status: Arc<AtomicU16>,
}

impl Origin {
    fn new() -> Self {
        let origin = Self::default();
        origin.answer(200);
        origin
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn router(&self) -> Router {
        let origin = self.clone();
        Router::new().route(
            "/",
            get(move || {
                let origin = origin.clone();
                async move {
                    origin.runs.fetch_add(1, Ordering::SeqCst);
                    StatusCode::from_u16(origin.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        )
    }
}

// ----- rate limit ---------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_layer_lets_limit_requests_through_then_answers_429_with_exact_headers() {
    let (cache, clock) = manual_cache();
    let origin = Origin::new();
    let layer = RateLimitLayer::new(cache, RateLimitOptions::new(3, secs(60)), by_client_ip);
    let addr = serve(origin.router().layer(layer)).await;
    let http = Http::new();

    for remaining in [2, 1, 0] {
        assert_eq!(http.get(addr, "/", &[]).await, Answer::ok(3, remaining, 60));
    }
    assert_eq!(http.get(addr, "/", &[]).await, Answer::refused(3, 60));
    clock.advance(secs(20));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::refused(3, 40));
    assert_eq!(origin.runs(), 3, "refused requests never reach the handler");

    clock.advance(secs(40)); // the window ends: a new one starts
    assert_eq!(http.get(addr, "/", &[]).await, Answer::ok(3, 2, 60));
    assert_eq!(origin.runs(), 4);
}

#[tokio::test]
async fn rate_limit_layer_ban_refuses_for_the_whole_ban() {
    let (cache, clock) = manual_cache();
    let options = RateLimitOptions::new(1, secs(10)).ttl(secs(300));
    let addr = serve(Origin::new().router().layer(RateLimitLayer::new(
        cache,
        options,
        by_client_ip,
    )))
    .await;
    let http = Http::new();
    assert_eq!(http.get(addr, "/", &[]).await, Answer::ok(1, 0, 10));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::refused(1, 300));
    clock.advance(secs(100));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::refused(1, 200));
}

#[tokio::test]
async fn rate_limit_layer_clones_share_one_limiter_across_services() {
    let (cache, _clock) = manual_cache();
    let layer =
        RateLimitLayer::new(cache, RateLimitOptions::new(4, secs(60)), by_client_ip).name("shared");
    let origin = Origin::new();
    // Two servers, each with its own clone of the layer (and axum clones the service per
    // connection): one limiter.
    let a = serve(origin.router().layer(layer.clone())).await;
    let b = serve(origin.router().layer(layer)).await;
    let http = Http::new();
    assert_eq!(http.get(a, "/", &[]).await, Answer::ok(4, 3, 60));
    assert_eq!(http.get(b, "/", &[]).await, Answer::ok(4, 2, 60));
    assert_eq!(http.get(a, "/", &[]).await, Answer::ok(4, 1, 60));
    assert_eq!(http.get(b, "/", &[]).await, Answer::ok(4, 0, 60));
    assert_eq!(http.get(a, "/", &[]).await, Answer::refused(4, 60));
    assert_eq!(http.get(b, "/", &[]).await, Answer::refused(4, 60));
    assert_eq!(origin.runs(), 4);
}

#[tokio::test]
async fn rate_limit_layers_with_different_names_count_apart() {
    let (cache, _clock) = manual_cache();
    let options = RateLimitOptions::new(1, secs(60));
    let login = RateLimitLayer::new(cache.clone(), options, by_client_ip).name("login");
    let search = RateLimitLayer::new(cache, options, by_client_ip).name("search");
    let origin = Origin::new();
    let a = serve(origin.router().layer(login)).await;
    let b = serve(origin.router().layer(search)).await;
    let http = Http::new();
    assert_eq!(http.get(a, "/", &[]).await, Answer::ok(1, 0, 60));
    assert_eq!(http.get(b, "/", &[]).await, Answer::ok(1, 0, 60));
    assert_eq!(http.get(a, "/", &[]).await, Answer::refused(1, 60));
}

#[tokio::test]
async fn rate_limit_layer_keys_by_header_and_lets_requests_without_it_through_uncounted() {
    let (cache, _clock) = manual_cache();
    let layer = RateLimitLayer::new(
        cache,
        RateLimitOptions::new(1, secs(60)),
        by_header("x-api-key"),
    );
    let addr = serve(Origin::new().router().layer(layer)).await;
    let http = Http::new();
    let ada = [("x-api-key", "ada")];
    let bob = [("x-api-key", "bob")];
    assert_eq!(http.get(addr, "/", &ada).await, Answer::ok(1, 0, 60));
    assert_eq!(http.get(addr, "/", &bob).await, Answer::ok(1, 0, 60));
    assert_eq!(http.get(addr, "/", &ada).await, Answer::refused(1, 60));
    for _ in 0..3 {
        assert_eq!(http.get(addr, "/", &[]).await, Answer::status(200));
    }
    // A client key too long for the backend is hashed, not refused.
    let long = "k".repeat(5000);
    let long = [("x-api-key", long.as_str())];
    assert_eq!(http.get(addr, "/", &long).await, Answer::ok(1, 0, 60));
    assert_eq!(http.get(addr, "/", &long).await, Answer::refused(1, 60));
}

#[tokio::test]
async fn sliding_rate_limit_layer_counts_any_window_of_the_period() {
    let (cache, clock) = manual_cache();
    let layer =
        RateLimitLayer::sliding(cache, SliceRateLimitOptions::new(2, secs(10)), by_client_ip);
    let addr = serve(Origin::new().router().layer(layer)).await;
    let http = Http::new();
    assert_eq!(http.get(addr, "/", &[]).await, Answer::ok(2, 1, 10));
    clock.advance(secs(4));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::ok(2, 0, 10));
    clock.advance(secs(1));
    // The refusal is recorded too (as the strategy does): the window lives 10 s from now.
    assert_eq!(http.get(addr, "/", &[]).await, Answer::refused(2, 10));
    clock.advance(secs(5)); // the first request slid out; the others are in the window
    assert_eq!(http.get(addr, "/", &[]).await, Answer::refused(2, 10));
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn rate_limit_layer_on_redis_counts_on_the_server() {
    let Some(cache) = redis_cache("http-limits").await else {
        return;
    };
    let layer = RateLimitLayer::new(
        cache.clone(),
        RateLimitOptions::new(2, secs(60)),
        by_client_ip,
    );
    let origin = Origin::new();
    let a = serve(origin.router().layer(layer.clone())).await;
    let b = serve(origin.router().layer(layer)).await;
    let http = Http::new();
    let first = http.get(a, "/", &[]).await;
    let second = http.get(b, "/", &[]).await;
    let third = http.get(a, "/", &[]).await;
    assert_eq!((first.status, second.status, third.status), (200, 200, 429));
    assert_eq!(first.remaining.as_deref(), Some("1"));
    assert_eq!(second.remaining.as_deref(), Some("0"));
    assert_eq!(third.remaining.as_deref(), Some("0"));
    for answer in [&first, &second, &third] {
        assert_eq!(answer.limit.as_deref(), Some("2"));
        // The server's clock runs: at most the period, rounded up.
        let reset: u64 = answer.reset.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "reset {reset}");
    }
    let retry: u64 = third.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(origin.runs(), 2);
    assert_eq!(
        cache.get::<i64>("rate_limit:http:127.0.0.1").await.unwrap(),
        Some(3),
        "the counter lives on the server, under the layer's name and the client"
    );
}

/// `n` concurrent requests against a limit of `limit`: exactly `limit` pass, each seeing a
/// different `X-RateLimit-Remaining`.
async fn concurrent_requests_pass_exactly_the_limit(cache: Cache, limit: u64, n: usize) {
    let origin = Origin::new();
    let layer = RateLimitLayer::new(cache, RateLimitOptions::new(limit, secs(60)), by_client_ip)
        .name("burst");
    let addr = serve(origin.router().layer(layer)).await;
    let http = Arc::new(Http::new());
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let http = Arc::clone(&http);
            tokio::spawn(async move { http.get(addr, "/", &[]).await })
        })
        .collect();
    let mut remaining = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match answer.status {
            200 => remaining.push(answer.remaining.unwrap().parse::<u64>().unwrap()),
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, (0..limit).collect::<Vec<_>>());
    assert_eq!(refused, n - remaining.len());
    assert_eq!(origin.runs(), remaining.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_layer_lets_exactly_the_limit_through_concurrent_requests() {
    let (cache, _clock) = manual_cache();
    concurrent_requests_pass_exactly_the_limit(cache, 10, 40).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_layer_on_redis_lets_exactly_the_limit_through_concurrent_requests() {
    if let Some(cache) = redis_cache("http-burst").await {
        concurrent_requests_pass_exactly_the_limit(cache, 10, 40).await;
    }
}

// ----- circuit breaker ----------------------------------------------------------------------

/// Opens at 50 % failures in 10 s, open 30 s, then half-open 10 s with every request a probe.
fn breaker_options() -> CircuitBreakerOptions {
    CircuitBreakerOptions::new(50, secs(10), secs(30))
        .half_open_ttl(secs(10))
        .half_open_share(100)
}

#[tokio::test]
async fn circuit_breaker_layer_opens_after_failures_answers_503_and_closes_after_a_probe() {
    let (cache, clock) = manual_cache();
    let origin = Origin::new();
    let addr = serve(
        origin
            .router()
            .layer(CircuitBreakerLayer::new(cache, breaker_options())),
    )
    .await;
    let http = Http::new();

    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(200));
    origin.answer(500);
    // 1 failure in 2 requests: 50 %, the circuit opens; the failed response is passed on.
    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(500));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::open(30));
    clock.advance(secs(20));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::open(10));
    assert_eq!(origin.runs(), 2, "an open circuit never calls the handler");

    clock.advance(secs(10)); // open time over: half-open, this request is a probe
    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(500));
    assert_eq!(origin.runs(), 3);
    // The failed probe opened the circuit again.
    assert_eq!(http.get(addr, "/", &[]).await, Answer::open(30));

    clock.advance(secs(30));
    origin.answer(200);
    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(200)); // the probe closes it
    clock.advance(secs(10)); // the failures of the old window slid out
    for _ in 0..3 {
        assert_eq!(http.get(addr, "/", &[]).await, Answer::status(200));
    }
    assert_eq!(origin.runs(), 7);
}

#[tokio::test]
async fn circuit_breaker_layer_closes_when_the_open_time_ends_without_half_open() {
    let (cache, clock) = manual_cache();
    let origin = Origin::new();
    let options = CircuitBreakerOptions::new(50, secs(10), secs(30));
    let addr = serve(
        origin
            .router()
            .layer(CircuitBreakerLayer::new(cache, options)),
    )
    .await;
    let http = Http::new();
    origin.answer(503);
    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(503));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::open(30));
    clock.advance(secs(30));
    origin.answer(200);
    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(200));
    assert_eq!(origin.runs(), 2);
}

#[tokio::test]
async fn circuit_breaker_layer_counts_what_the_predicate_calls_a_failure() {
    let (cache, _clock) = manual_cache();
    let origin = Origin::new();
    let layer = CircuitBreakerLayer::new(cache, CircuitBreakerOptions::new(50, secs(10), secs(30)))
        .failure_when(|parts: &http::response::Parts| parts.status == StatusCode::GATEWAY_TIMEOUT);
    let addr = serve(origin.router().layer(layer)).await;
    let http = Http::new();
    origin.answer(500); // not a failure for this layer
    for _ in 0..3 {
        assert_eq!(http.get(addr, "/", &[]).await, Answer::status(500));
    }
    origin.answer(504);
    for _ in 0..3 {
        assert_eq!(http.get(addr, "/", &[]).await, Answer::status(504));
    }
    // 3 failures in 6 requests: 50 %.
    assert_eq!(http.get(addr, "/", &[]).await, Answer::open(30));
    assert_eq!(origin.runs(), 6);
}

#[tokio::test]
async fn circuit_breaker_layer_clones_share_one_circuit() {
    let (cache, _clock) = manual_cache();
    let layer = CircuitBreakerLayer::new(cache, breaker_options()).name("payments");
    let failing = Origin::new();
    failing.answer(500);
    let healthy = Origin::new();
    let a = serve(failing.router().layer(layer.clone())).await;
    let b = serve(healthy.router().layer(layer)).await;
    let http = Http::new();
    assert_eq!(http.get(a, "/", &[]).await, Answer::status(500));
    assert_eq!(http.get(b, "/", &[]).await, Answer::open(30));
    assert_eq!(
        healthy.runs(),
        0,
        "the circuit opened by one clone refuses for the other"
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn circuit_breaker_layer_on_redis_opens_for_every_clone() {
    let Some(cache) = redis_cache("http-breaker").await else {
        return;
    };
    let layer = CircuitBreakerLayer::new(cache.clone(), breaker_options());
    let failing = Origin::new();
    failing.answer(502);
    let healthy = Origin::new();
    let a = serve(failing.router().layer(layer.clone())).await;
    let b = serve(healthy.router().layer(layer)).await;
    let http = Http::new();
    assert_eq!(http.get(a, "/", &[]).await, Answer::status(502));
    let refused = http.get(b, "/", &[]).await;
    assert_eq!(refused.status, 503);
    let retry: u64 = refused.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    assert_eq!(healthy.runs(), 0);
    assert!(cache.exists("circuit_breaker:http:open").await.unwrap());
}

#[tokio::test]
async fn circuit_breaker_layer_half_open_refuses_without_retry_after_while_the_probe_runs() {
    let (cache, clock) = manual_cache();
    let origin = Origin::new();
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let gated = {
        let origin = origin.clone();
        let release = Arc::clone(&release);
        get(move || {
            let (origin, release, entered_tx) =
                (origin.clone(), Arc::clone(&release), entered_tx.clone());
            async move {
                origin.runs.fetch_add(1, Ordering::SeqCst);
                entered_tx.send(()).unwrap();
                release.notified().await;
                StatusCode::from_u16(origin.status.load(Ordering::SeqCst)).unwrap()
            }
        })
    };
    let app = origin
        .router()
        .route("/gated", gated)
        .layer(CircuitBreakerLayer::new(cache, breaker_options()));
    let addr = serve(app).await;
    let http = Arc::new(Http::new());

    origin.answer(500);
    assert_eq!(http.get(addr, "/", &[]).await, Answer::status(500));
    assert_eq!(http.get(addr, "/", &[]).await, Answer::open(30));
    clock.advance(secs(30)); // half-open: one probe slot
    origin.answer(200);
    let probe = tokio::spawn({
        let http = Arc::clone(&http);
        async move { http.get(addr, "/gated", &[]).await }
    });
    entered.recv().await.unwrap(); // the probe holds the slot
    assert_eq!(
        http.get(addr, "/", &[]).await,
        Answer::status(503),
        "no Retry-After while half-open"
    );
    release.notify_one();
    assert_eq!(probe.await.unwrap(), Answer::status(200));
    assert_eq!(
        http.get(addr, "/", &[]).await,
        Answer::status(200),
        "the probe closed the circuit"
    );
    assert_eq!(origin.runs(), 3);
}

// ----- the attribute macros' refusal --------------------------------------------------------

static MACRO_LIMITS: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::rate_limit(limit = 2, period = "1m", key = "report", cache = MACRO_LIMITS.cache)]
async fn report() -> Result<&'static str, ErrorResponse> {
    Ok("report")
}

#[tokio::test]
async fn macro_refusal_carries_the_numbers_and_answers_the_same_429_as_the_layer() {
    let addr = serve(Router::new().route("/report", get(report))).await;
    let http = Http::new();
    assert_eq!(http.get(addr, "/report", &[]).await, Answer::status(200));
    assert_eq!(http.get(addr, "/report", &[]).await, Answer::status(200));
    assert_eq!(http.get(addr, "/report", &[]).await, Answer::refused(2, 60));
    MACRO_LIMITS.clock.advance(secs(45));
    assert_eq!(http.get(addr, "/report", &[]).await, Answer::refused(2, 15));

    // The error itself, as a handler sees it.
    let ErrorResponse(error) = report().await.unwrap_err();
    match error {
        Error::RateLimited {
            retry_after,
            limit,
            remaining,
            reset,
        } => {
            assert_eq!((limit, remaining), (2, 0));
            assert_eq!(retry_after, Some(secs(15)));
            assert_eq!(reset, Some(secs(15)));
        }
        other => panic!("expected a rate limit refusal, got {other}"),
    }
}

static MACRO_SLICE: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::slice_rate_limit(limit = 1, period = "10s", key = "export", cache = MACRO_SLICE.cache)]
async fn export() -> Result<(), Error> {
    Ok(())
}

#[tokio::test]
async fn slice_rate_limit_macro_refusal_carries_the_numbers() {
    export().await.unwrap();
    let refused = export().await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::RateLimited { limit: 1, remaining: 0, retry_after: Some(r), reset: Some(s) }
                if r == secs(10) && s == secs(10)
        ),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "rate limit exceeded: all 1 calls of the window are used, retry after 10000ms"
    );
}

static MACRO_BREAKER: LazyLock<Clocked> = LazyLock::new(clocked);

#[cashews::circuit_breaker(errors_rate = 50, period = "10s", ttl = "30s", key = "pay", cache = MACRO_BREAKER.cache)]
async fn pay(fail: bool) -> Result<&'static str, ErrorResponse> {
    if fail {
        Err(ErrorResponse(Error::Locked {
            key: "upstream".into(),
        }))
    } else {
        Ok("paid")
    }
}

#[tokio::test]
async fn circuit_breaker_macro_refusal_answers_503_with_retry_after() {
    let app = Router::new()
        .route("/pay", get(|| pay(false)))
        .route("/fail", get(|| pay(true)));
    let addr = serve(app).await;
    let http = Http::new();
    assert_eq!(http.get(addr, "/fail", &[]).await, Answer::status(503)); // Locked: 503 too
    assert_eq!(http.get(addr, "/pay", &[]).await, Answer::open(30));
    MACRO_BREAKER.clock.advance(secs(30));
    assert_eq!(http.get(addr, "/pay", &[]).await, Answer::status(200));
}

// ----- Redis --------------------------------------------------------------------------------

/// A cache on the shared Redis under a prefix of its own, or `None` (skipped outside CI) when
/// the server does not answer.
#[cfg(feature = "redis")]
async fn redis_cache(kind: &str) -> Option<Cache> {
    let prefix = crate::support::unique_prefix(kind);
    let cache = Cache::new();
    cache
        .setup(&format!(
            "{}?key_prefix={prefix}",
            crate::support::redis_url()
        ))
        .unwrap();
    match cache.ping().await {
        Ok(_) => Some(cache),
        Err(e) => cashews_testkit::skip_unless_ci(kind, &format!("redis: {e}")),
    }
}
