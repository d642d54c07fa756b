//! [`RateLimitLayer`]: a rate limit per client in front of an HTTP service, answering `429`
//! with `Retry-After` and `X-RateLimit-*` headers.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response, StatusCode};
use sha2::Digest;
use tower::{Layer, Service};

use super::refusal::{RateLimitHeaders, refusal_response};
use crate::backend::Expiry;
use crate::strategy::{RateLimitOptions, SliceRateLimitOptions};
use crate::{Cache, Error};

/// Keys a client's part of the request longer than this are hashed (SHA-256, hex), so a
/// client sending a huge header cannot make keys the backend refuses.
const LONGEST_CLIENT_KEY: usize = 128;

/// The name of a layer's limiter unless [`RateLimitLayer::name`] gives another.
const DEFAULT_NAME: &str = "http";

/// A tower [`Layer`] that counts each request against a rate limit of its client and answers
/// `429 Too Many Requests` once the client is over it.
///
/// - `key` picks the client from the request head ([`http::request::Parts`]: method, URI,
///   headers, extensions): [`by_client_ip`], [`by_path`], [`by_header`], or a closure of
///   yours. `None` lets the request through uncounted.
/// - The limit is the fixed window of [`RateLimitOptions`] ([`RateLimitLayer::new`], the
///   engine of `#[cashews::rate_limit]`, ban included) or the sliding window of
///   [`SliceRateLimitOptions`] ([`RateLimitLayer::sliding`], the engine of
///   `#[cashews::slice_rate_limit]`).
/// - Counters live in the cache under `rate_limit:<name>:<client>` (`srl:<name>:<client>` for
///   the sliding window), `<name>` from [`RateLimitLayer::name`] (default `http`): every
///   clone of the layer, every service it wraps and every process on the same backend share
///   one limiter per name. Give layers with different limits different names.
///
/// Every counted response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
/// `X-RateLimit-Reset` (seconds until the window ends; one more backend command per
/// request). A refusal is a `429` with an empty body, `Retry-After` and the same headers
/// (remaining `0`); the inner service does not run.
///
/// A failing backend lets requests through uncounted (logged), as the strategy does; an
/// unusable configuration (no backend set up, invalid options) answers `500` and is logged.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body, routing::get};
/// use cashews::http::{RateLimitLayer, by_header};
/// use cashews::strategy::RateLimitOptions;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://").unwrap();
/// let limit = RateLimitLayer::new(cache, RateLimitOptions::new(2, Duration::from_secs(60)), by_header("x-api-key"))
///     .name("api");
/// let app = Router::new().route("/", get(|| async { "ok" })).layer(limit);
///
/// let request = || http::Request::get("/").header("x-api-key", "ada").body(Body::empty()).unwrap();
/// let first = app.clone().oneshot(request()).await.unwrap();
/// assert_eq!(first.headers()["x-ratelimit-remaining"], "1");
/// let second = app.clone().oneshot(request()).await.unwrap();
/// assert_eq!(second.headers()["x-ratelimit-remaining"], "0");
/// let third = app.oneshot(request()).await.unwrap();
/// assert_eq!(third.status(), 429);
/// assert_eq!(third.headers()["retry-after"], "60");
/// # }
/// ```
pub struct RateLimitLayer<K> {
    limiter: Limiter<K>,
}

/// The configuration of a layer, which its services hold (behind an `Arc`); the counts are
/// in the cache.
struct Limiter<K> {
    cache: Cache,
    window: Window,
    /// `rate_limit:<name>:` or `srl:<name>:`.
    prefix: Arc<str>,
    key: Arc<K>,
}

impl<K> Clone for Limiter<K> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            window: self.window,
            prefix: Arc::clone(&self.prefix),
            key: Arc::clone(&self.key),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Window {
    Fixed(RateLimitOptions),
    Sliding(SliceRateLimitOptions),
}

impl Window {
    fn limit(&self) -> u64 {
        match self {
            Self::Fixed(options) => options.limit,
            Self::Sliding(options) => options.limit,
        }
    }

    fn prefix(&self) -> &'static str {
        match self {
            Self::Fixed(_) => RateLimitOptions::DEFAULT_PREFIX,
            Self::Sliding(_) => SliceRateLimitOptions::DEFAULT_PREFIX,
        }
    }
}

impl<K> Clone for RateLimitLayer<K> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
        }
    }
}

impl<K> fmt::Debug for RateLimitLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("window", &self.limiter.window)
            .field("prefix", &self.limiter.prefix)
            .finish_non_exhaustive()
    }
}

impl<K> RateLimitLayer<K>
where
    K: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    /// At most `options.limit` requests per client per fixed window of `options.period` (and
    /// the ban of `options.ttl`, if set), the client being what `key` returns.
    ///
    /// Never fails: invalid options (a zero period) answer every request with `500`, logged;
    /// check them first with [`RateLimitOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::{RateLimitLayer, by_client_ip};
    /// use cashews::strategy::RateLimitOptions;
    /// let layer = RateLimitLayer::new(cashews::cache().clone(), RateLimitOptions::new(10, Duration::from_secs(1)), by_client_ip);
    /// # let _ = layer;
    /// ```
    pub fn new(cache: Cache, options: RateLimitOptions, key: K) -> Self {
        Self::with_window(cache, Window::Fixed(options), key)
    }

    /// At most `options.limit` requests per client in any sliding window of
    /// `options.period` (exact, counted by the backend), the client being what `key`
    /// returns. `X-RateLimit-Reset` and `Retry-After` are then upper bounds: a request may
    /// pass earlier, as the oldest ones slide out of the window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::{RateLimitLayer, by_path};
    /// use cashews::strategy::SliceRateLimitOptions;
    /// let layer = RateLimitLayer::sliding(cashews::cache().clone(), SliceRateLimitOptions::new(10, Duration::from_secs(1)), by_path);
    /// # let _ = layer;
    /// ```
    pub fn sliding(cache: Cache, options: SliceRateLimitOptions, key: K) -> Self {
        Self::with_window(cache, Window::Sliding(options), key)
    }

    fn with_window(cache: Cache, window: Window, key: K) -> Self {
        Self {
            limiter: Limiter {
                cache,
                prefix: prefix(window, DEFAULT_NAME),
                window,
                key: Arc::new(key),
            },
        }
    }
}

impl<K> RateLimitLayer<K> {
    /// Names the limiter (default `http`): its counters are `rate_limit:<name>:<client>`.
    /// Layers (and processes) with the same name and window kind share counters; give each
    /// limit its own name.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::{RateLimitLayer, by_client_ip};
    /// use cashews::strategy::RateLimitOptions;
    /// let login = RateLimitLayer::new(cashews::cache().clone(), RateLimitOptions::new(5, Duration::from_secs(60)), by_client_ip)
    ///     .name("login");
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.limiter.prefix = prefix(self.limiter.window, name);
        self
    }
}

/// `rate_limit:<name>:` or `srl:<name>:`.
fn prefix(window: Window, name: &str) -> Arc<str> {
    Arc::from(format!("{}:{name}:", window.prefix()))
}

impl<S, K> Layer<S> for RateLimitLayer<K> {
    type Service = RateLimit<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: Arc::new(self.limiter.clone()),
        }
    }
}

/// The service [`RateLimitLayer`] wraps around `S`; see there.
///
/// ```
/// use std::time::Duration;
/// use cashews::http::{RateLimit, RateLimitLayer, by_path};
/// use cashews::strategy::RateLimitOptions;
/// use tower::Layer;
/// let layer = RateLimitLayer::new(cashews::cache().clone(), RateLimitOptions::new(1, Duration::from_secs(1)), by_path);
/// let service: RateLimit<_, _> = layer.layer(tower::service_fn(|_: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// }));
/// # let _ = service;
/// ```
pub struct RateLimit<S, K> {
    inner: S,
    limiter: Arc<Limiter<K>>,
}

impl<S: Clone, K> Clone for RateLimit<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limiter: Arc::clone(&self.limiter),
        }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for RateLimit<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("window", &self.limiter.window)
            .field("prefix", &self.limiter.prefix)
            .finish_non_exhaustive()
    }
}

/// A boxed, sendable response future.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, K, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S, K>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    K: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready answers this request; the clone waits for the
        // next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let limiter = Arc::clone(&self.limiter);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let client = (limiter.key)(&parts);
            let request = Request::from_parts(parts, body);
            let Some(client) = client else {
                return inner.call(request).await;
            };
            match limiter.check(&client).await {
                Verdict::Passed(numbers) => {
                    let mut response = inner.call(request).await?;
                    if let Some(numbers) = numbers {
                        numbers.write(response.headers_mut());
                    }
                    Ok(response)
                }
                Verdict::Refused(error) => Ok(refusal_response(&error)),
                Verdict::Unusable(error) => {
                    tracing::error!(%error, "RateLimitLayer cannot count the request; answered 500");
                    let mut response = Response::new(ResBody::default());
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    Ok(response)
                }
            }
        })
    }
}

/// What the limiter decided about one request.
enum Verdict {
    /// Let through, with its numbers when it was counted.
    Passed(Option<RateLimitHeaders>),
    /// Over the limit: an [`Error::RateLimited`].
    Refused(Error),
    /// The limiter cannot work (no backend, invalid options, a bad key).
    Unusable(Error),
}

impl<K> Limiter<K> {
    async fn check(&self, client: &str) -> Verdict {
        let key = self.key(client);
        let counted = match &self.window {
            Window::Fixed(options) => {
                crate::strategy::rate_limit::count(&self.cache, &key, options).await
            }
            Window::Sliding(options) => {
                crate::strategy::slice_rate_limit::count(&self.cache, &key, options).await
            }
        };
        match counted {
            Ok(Some(count)) => Verdict::Passed(Some(RateLimitHeaders {
                limit: self.window.limit(),
                remaining: self.window.limit().saturating_sub(count),
                reset: self.reset(&key).await,
            })),
            Ok(None) => Verdict::Passed(None),
            Err(error @ Error::RateLimited { .. }) => Verdict::Refused(error),
            Err(error) => Verdict::Unusable(error),
        }
    }

    /// The counter's key: the prefix and the client, hashed when long.
    fn key(&self, client: &str) -> String {
        if client.len() <= LONGEST_CLIENT_KEY {
            return format!("{}{client}", self.prefix);
        }
        let digest = sha2::Sha256::digest(client.as_bytes());
        format!("{}sha256:{}", self.prefix, hex::encode(digest))
    }

    /// When the window of `key` ends: what is left of its counter's lifetime.
    async fn reset(&self, key: &str) -> Option<Duration> {
        match self.cache.get_expire(key).await {
            Ok(Expiry::In(left)) => Some(left),
            Ok(Expiry::Persistent | Expiry::Missing) => None,
            Err(error) => {
                tracing::warn!(%error, "RateLimitLayer could not read when the window ends; X-RateLimit-Reset left out");
                None
            }
        }
    }
}

/// The client's IP address, from axum's `ConnectInfo<SocketAddr>` (serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`) or, without it, a `SocketAddr`
/// extension another layer put in the request. `None` (the request is not counted) when
/// neither is there.
///
/// Behind a proxy, the address is the proxy's: key on the header the proxy sets instead
/// ([`by_header`]`("x-forwarded-for")`, if you trust the proxy to overwrite it).
///
/// ```
/// use std::net::SocketAddr;
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert("10.0.0.7:51000".parse::<SocketAddr>().unwrap());
/// let (parts, ()) = request.into_parts();
/// assert_eq!(cashews::http::by_client_ip(&parts).as_deref(), Some("10.0.0.7"));
/// ```
#[must_use]
pub fn by_client_ip(parts: &Parts) -> Option<String> {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip().to_string());
    }
    parts
        .extensions
        .get::<SocketAddr>()
        .map(|addr| addr.ip().to_string())
}

/// The request's path: one limit per route and resource, shared by every client.
///
/// ```
/// let (parts, ()) = http::Request::get("/users/7?full=1").body(()).unwrap().into_parts();
/// assert_eq!(cashews::http::by_path(&parts).as_deref(), Some("/users/7"));
/// ```
#[must_use]
pub fn by_path(parts: &Parts) -> Option<String> {
    Some(parts.uri.path().to_owned())
}

/// The value of the header `name` (an API key, a user id a gateway set, ...); requests
/// without it (or with a value that is not visible ASCII) are not counted. To limit those
/// too, write a closure that falls back to a shared key, e.g. `"anonymous"`.
///
/// ```
/// let key = cashews::http::by_header("x-api-key");
/// let (parts, ()) = http::Request::get("/").header("x-api-key", "k1").body(()).unwrap().into_parts();
/// assert_eq!(key(&parts).as_deref(), Some("k1"));
/// ```
pub fn by_header(name: &'static str) -> impl Fn(&Parts) -> Option<String> + Send + Sync + 'static {
    move |parts: &Parts| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }
}
