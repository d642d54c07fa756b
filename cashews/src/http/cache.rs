//! [`CacheLayer`]: whole responses cached by method, path, query and chosen headers.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{
    AGE, AUTHORIZATION, CACHE_CONTROL, ETAG, HeaderName, HeaderValue, SET_COOKIE, VARY,
};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use tower::{Layer, Service};

use super::cache_control::{RequestDirectives, ResponseDirectives};
use super::clear_site_data::requests_cache_clear;
use super::etag::none_match;
use super::stored::StoredResponse;
use crate::error::BoxError;
use crate::strategy::{EarlyOptions, Outcome, early_detached, now_ms};
use crate::{Cache, Command, Ttl};

/// The body of every response a [`CacheService`] returns: the handler's body passed
/// through, or a stored one.
///
/// ```
/// use http_body_util::BodyExt;
/// let body: cashews::http::CacheBody = http_body_util::Full::new(cashews::Bytes::from("x"))
///     .map_err(|never| match never {})
///     .boxed_unsync();
/// # let _ = body;
/// ```
pub type CacheBody = UnsyncBoxBody<Bytes, BoxError>;

/// A tower [`Layer`] that caches whole responses (status, headers, body) in a [`Cache`].
///
/// The key is `<prefix>:<METHOD>:<path>?<query>`, followed by `|name=value` for each header
/// chosen with [`vary`](Self::vary). Only the chosen methods (`GET` and `HEAD` by default)
/// are cached; other requests pass through untouched.
///
/// # What is stored
///
/// A response is stored when its status is a success (2xx, but not `206 Partial Content`),
/// it sets no cookie, its `Cache-Control` says neither `no-store` nor `no-cache` (nor
/// `private`, unless [`store_private`](Self::store_private)), it has no `Vary: *`, it answers
/// a request without `Authorization` (or says `public`, `s-maxage` or `must-revalidate`, or
/// the layer [stores private responses](Self::store_private)), and its
/// body ends within [`max_body_size`](Self::max_body_size). A larger body, or one that fails
/// midway, is passed on to the client as it comes and not stored: a truncated body is never
/// stored nor served. Header values are kept as bytes, so values that are not UTF-8 come back
/// unchanged.
///
/// The entry stays fresh for the response's `s-maxage` or `max-age`, else for the layer's
/// [`ttl`](Self::ttl). After that it is served stale for the response's
/// `stale-while-revalidate`, else the layer's [`stale_while_revalidate`](Self::stale_while_revalidate):
/// the first request past freshness refreshes it in a background task, and every request
/// gets the stored response meanwhile.
///
/// # Requests
///
/// - `Cache-Control: no-cache`: the handler runs (the stored response is not used), and its
///   response is stored;
/// - `Cache-Control: no-store`, or `max-age=0`: the handler runs, nothing is read or stored;
/// - `Clear-Site-Data: "cache"` (or bare `cache`): the handler runs inside
///   [`invalidate_further`](crate::invalidate_further()): the stored response, and every
///   cached value the handler reads, is deleted and recomputed;
/// - `If-None-Match` matching the entity tag of the stored (or new) response: `304 Not
///   Modified`, with no body; from the cache, the handler does not run.
///
/// # Responses
///
/// Every response that goes through the cache carries an `ETag` (the handler's own, or the
/// SHA-256 of the body). One served from the cache also carries `X-From-Cache: true` (see
/// [`hit_header`](Self::hit_header)), `Cache-Control: private, max-age=<seconds of freshness
/// left>` (`public` with [`public`](Self::public)) and `Age: <seconds since stored>`.
///
/// # Concurrent requests
///
/// Concurrent requests for one key that find nothing stored run the handler once in this
/// process: the others wait and get the stored response (or, if it was not storable, run the
/// handler themselves). A refresh of a stale entry runs once across processes sharing the
/// backend (it takes the lock `<key>:lock`).
///
/// # Failures
///
/// The cache never breaks a request: a backend failure is logged and the handler's response
/// is returned unstored. Errors of the inner service are returned as they are.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body, routing::get};
/// use http::Request;
/// use tower::Service;
/// use cashews::http::CacheLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://")?;
/// let layer = CacheLayer::new(cache).ttl(Duration::from_secs(60)).prefix("doc");
/// let mut app = Router::new()
///     .route("/price", get(|| async { "42" }))
///     .layer(layer.clone());
///
/// let first = app.call(Request::get("/price").body(Body::empty())?).await?;
/// assert!(first.headers().get("x-from-cache").is_none());
/// let second = app.call(Request::get("/price").body(Body::empty())?).await?;
/// assert_eq!(second.headers()["x-from-cache"], "true");
///
/// assert!(layer.invalidate(&http::Method::GET, &"/price".parse()?).await?);
/// let third = app.call(Request::get("/price").body(Body::empty())?).await?;
/// assert!(third.headers().get("x-from-cache").is_none());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CacheLayer {
    cache: Cache,
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    prefix: String,
    methods: Vec<Method>,
    vary: Vec<HeaderName>,
    ttl: Duration,
    stale_while_revalidate: Duration,
    max_body_size: usize,
    store_private: bool,
    public: bool,
    hit_header: HeaderName,
}

impl CacheLayer {
    /// A layer caching `GET` and `HEAD` responses in `cache` for 60 seconds (unless the
    /// response says otherwise), bodies up to 1 MiB, under keys without a prefix.
    ///
    /// ```
    /// let layer = cashews::http::CacheLayer::new(cashews::cache().clone());
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn new(cache: Cache) -> Self {
        Self {
            cache,
            config: Arc::new(Config {
                prefix: String::new(),
                methods: vec![Method::GET, Method::HEAD],
                vary: Vec::new(),
                ttl: Duration::from_secs(60),
                stale_while_revalidate: Duration::ZERO,
                max_body_size: 1 << 20,
                store_private: false,
                public: false,
                hit_header: HeaderName::from_static("x-from-cache"),
            }),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }

    /// How long a response is fresh when its `Cache-Control` gives no `max-age`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).ttl(Duration::from_secs(600));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn ttl(self, ttl: Duration) -> Self {
        self.with(|config| config.ttl = ttl)
    }

    /// How long past freshness a stored response is still served while one request
    /// refreshes it in the background, when the response gives no `stale-while-revalidate`
    /// (default: zero, i.e. an expired response is recomputed by the request that finds it
    /// gone).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new())
    ///     .ttl(Duration::from_secs(60))
    ///     .stale_while_revalidate(Duration::from_secs(600));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn stale_while_revalidate(self, stale: Duration) -> Self {
        self.with(|config| config.stale_while_revalidate = stale)
    }

    /// Text put before every key, with a `:` (default: none).
    ///
    /// ```
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).prefix("api");
    /// assert_eq!(layer.key(&http::Method::GET, &"/a?b=1".parse().unwrap(), &http::HeaderMap::new()), "api:GET:/a?b=1");
    /// ```
    #[must_use]
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.with(|config| config.prefix = prefix)
    }

    /// The methods whose responses are cached (default `GET` and `HEAD`).
    ///
    /// ```
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).methods([http::Method::GET]);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn methods(self, methods: impl IntoIterator<Item = Method>) -> Self {
        let methods = methods.into_iter().collect();
        self.with(|config| config.methods = methods)
    }

    /// Request headers whose values are part of the key (e.g. `accept-language`), so that
    /// requests differing in them get their own stored responses.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, Method, header::ACCEPT_LANGUAGE};
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).vary([ACCEPT_LANGUAGE]);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_static("fr"));
    /// assert_eq!(layer.key(&Method::GET, &"/".parse().unwrap(), &headers), "GET:/|accept-language=fr");
    /// ```
    #[must_use]
    pub fn vary(self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        let vary = headers.into_iter().collect();
        self.with(|config| config.vary = vary)
    }

    /// The largest body stored, in bytes (default 1 MiB). A larger response is streamed to
    /// the client as it comes and not stored.
    ///
    /// ```
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).max_body_size(64 * 1024);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn max_body_size(self, bytes: usize) -> Self {
        self.with(|config| config.max_body_size = bytes)
    }

    /// Store responses marked `Cache-Control: private`, and responses to requests with
    /// `Authorization`, too (default: not), for a cache that serves one user, or whose keys
    /// [`vary`](Self::vary) on what identifies the user (e.g. `authorization`).
    ///
    /// ```
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).store_private(true);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn store_private(self, store: bool) -> Self {
        self.with(|config| config.store_private = store)
    }

    /// Answer hits with `Cache-Control: public, ...` instead of `private, ...`, letting
    /// shared caches downstream keep them.
    ///
    /// ```
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).public(true);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn public(self, public: bool) -> Self {
        self.with(|config| config.public = public)
    }

    /// The header set to `true` on responses served from the cache (default `x-from-cache`).
    ///
    /// ```
    /// let name = http::HeaderName::from_static("x-cache-hit");
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).hit_header(name);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn hit_header(self, name: HeaderName) -> Self {
        self.with(|config| config.hit_header = name)
    }

    /// The key a request is stored under: `<prefix>:<METHOD>:<path>?<query>`, then
    /// `|name=value` per [`vary`](Self::vary) header (values that are not UTF-8 in hex, as
    /// `0x…`; several values joined with `,`).
    ///
    /// ```
    /// use http::{HeaderMap, Method};
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new());
    /// let key = layer.key(&Method::HEAD, &"https://example.org/a/b?c=d".parse().unwrap(), &HeaderMap::new());
    /// assert_eq!(key, "HEAD:/a/b?c=d");
    /// ```
    #[must_use]
    pub fn key(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> String {
        let config = &self.config;
        let mut key = String::with_capacity(64);
        if !config.prefix.is_empty() {
            key.push_str(&config.prefix);
            key.push(':');
        }
        key.push_str(method.as_str());
        key.push(':');
        key.push_str(uri.path());
        if let Some(query) = uri.query() {
            key.push('?');
            key.push_str(query);
        }
        for name in &config.vary {
            key.push('|');
            key.push_str(name.as_str());
            key.push('=');
            for (i, value) in headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    key.push(',');
                }
                match value.to_str() {
                    Ok(text) => key.push_str(text),
                    Err(_) => {
                        key.push_str("0x");
                        key.push_str(&hex::encode(value.as_bytes()));
                    }
                }
            }
        }
        key
    }

    /// Deletes the stored response of `method` and `uri` (requests without
    /// [`vary`](Self::vary) headers; use [`key`](Self::key) and [`Cache::delete`] for
    /// others). Its entity tag goes with it: `If-None-Match` no longer answers `304`.
    /// Returns whether something was deleted.
    ///
    /// # Errors
    ///
    /// The backend's failure to delete.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cashews::Result<()> {
    /// let cache = cashews::Cache::new();
    /// cache.setup("mem://")?;
    /// let layer = cashews::http::CacheLayer::new(cache);
    /// assert!(!layer.invalidate(&http::Method::GET, &"/nothing".parse().unwrap()).await?);
    /// # Ok(()) }
    /// ```
    pub async fn invalidate(&self, method: &Method, uri: &Uri) -> crate::Result<bool> {
        let key = self.key(method, uri, &HeaderMap::new());
        self.cache.delete(&key).await
    }

    /// How long a response may be stored, fresh then stale; `None` when it must not be.
    fn lifetimes(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        authorized: bool,
    ) -> Option<(Duration, Duration)> {
        let config = &self.config;
        if !status.is_success() || status == StatusCode::PARTIAL_CONTENT {
            return None;
        }
        if headers.contains_key(SET_COOKIE)
            || headers
                .get_all(VARY)
                .iter()
                .any(|value| value.as_bytes().trim_ascii() == b"*")
        {
            return None;
        }
        let directives = ResponseDirectives::parse(headers);
        let personal = directives.private || (authorized && !directives.shareable);
        if directives.no_store || directives.no_cache || (personal && !config.store_private) {
            return None;
        }
        let fresh = directives.freshness().unwrap_or(config.ttl);
        let stale = directives
            .stale_while_revalidate
            .unwrap_or(config.stale_while_revalidate);
        (!fresh.is_zero()).then_some((fresh, stale))
    }

    /// The response for a stored entry: `304` when `conditional` matches its entity tag.
    fn answer(
        &self,
        stored: &StoredResponse,
        conditional: &HeaderMap,
        hit: bool,
    ) -> Response<CacheBody> {
        let now = now_ms(&self.cache);
        let not_modified = none_match(conditional, &stored.etag);
        let mut response = if not_modified {
            let mut response = Response::new(empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            let mut response = Response::new(full(stored.body.clone()));
            *response.status_mut() = stored.status();
            *response.headers_mut() = stored.header_map();
            response
        };
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&stored.etag) {
            headers.insert(ETAG, etag);
        }
        if hit {
            let scope = if self.config.public {
                "public"
            } else {
                "private"
            };
            let remaining = stored.remaining(now).as_secs();
            if let Ok(value) = HeaderValue::from_str(&format!("{scope}, max-age={remaining}")) {
                headers.insert(CACHE_CONTROL, value);
            }
            headers.insert(AGE, HeaderValue::from(stored.age(now).as_secs()));
            headers.insert(
                self.config.hit_header.clone(),
                HeaderValue::from_static("true"),
            );
        }
        response
    }

    /// Runs one request through the cache.
    async fn respond<S, ReqB, ResB>(
        self,
        mut inner: S,
        request: Request<ReqB>,
    ) -> Result<Response<CacheBody>, S::Error>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqB: Send + 'static,
        ResB: Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        let directives = RequestDirectives::parse(request.headers());
        if !self.config.methods.contains(request.method()) || directives.no_store {
            let response = inner.call(request).await?;
            return Ok(response.map(boxed));
        }
        let key = self.key(request.method(), request.uri(), request.headers());
        let mut conditional = HeaderMap::new();
        for value in request.headers().get_all(http::header::IF_NONE_MATCH) {
            conditional.append(http::header::IF_NONE_MATCH, value.clone());
        }
        let clear = requests_cache_clear(request.headers());
        let config = &self.config;
        let options = EarlyOptions::new().early_ttl(config.ttl);
        let ttl = Ttl::new(config.ttl.saturating_add(config.stale_while_revalidate));
        let origin = fetch(self.clone(), inner, request);
        let run = early_detached(&self.cache, &key, ttl, &options, Shape::new(), origin);
        let fetched = if clear {
            crate::invalidate_further(run).await
        } else if directives.no_cache {
            self.cache.disabling(&[Command::Get], run).await
        } else {
            run.await
        };
        match fetched {
            Fetched::Fresh(stored) => Ok(self.answer(&stored, &conditional, false)),
            Fetched::Hit(stored) => Ok(self.answer(&stored, &conditional, true)),
            Fetched::Pass(response) => Ok(response),
            Fetched::Failed(error) => Err(error),
        }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CacheLayer`] wraps around an inner service.
///
/// ```
/// use tower::Layer;
/// let cache = cashews::Cache::new();
/// let layer = cashews::http::CacheLayer::new(cache);
/// let service: cashews::http::CacheService<()> = layer.layer(());
/// assert!(format!("{service:?}").contains("CacheService"));
/// ```
#[derive(Debug, Clone)]
pub struct CacheService<S> {
    inner: S,
    layer: CacheLayer,
}

impl<S> CacheService<S> {
    /// The layer's settings, e.g. to [`invalidate`](CacheLayer::invalidate) a route.
    ///
    /// ```
    /// use tower::Layer;
    /// let layer = cashews::http::CacheLayer::new(cashews::Cache::new()).prefix("p");
    /// let service = layer.layer(());
    /// assert!(service.layer().key(&http::Method::GET, &"/".parse().unwrap(), &http::HeaderMap::new()).starts_with("p:"));
    /// ```
    #[must_use]
    pub fn layer(&self) -> &CacheLayer {
        &self.layer
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CacheService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<CacheBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        // The instance polled ready serves this request; the clone waits for the next one.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(self.layer.clone().respond(inner, request))
    }
}

/// What one run through the cache gave.
enum Fetched<E> {
    /// The handler's response, whole and storable.
    Fresh(Box<StoredResponse>),
    /// A stored response.
    Hit(Box<StoredResponse>),
    /// The handler's response, not to be stored.
    Pass(Response<CacheBody>),
    /// The inner service failed.
    Failed(E),
}

/// How [`Fetched`] is cached: the storable response, for as long as it says.
struct Shape<E>(PhantomData<fn() -> E>);

impl<E> Shape<E> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E> Outcome<Fetched<E>> for Shape<E> {
    type Stored = StoredResponse;

    fn stored<'a>(&self, result: &'a Fetched<E>) -> Option<&'a StoredResponse> {
        match result {
            Fetched::Fresh(stored) => Some(stored),
            _ => None,
        }
    }

    fn restore(&self, stored: StoredResponse) -> Fetched<E> {
        Fetched::Hit(Box::new(stored))
    }

    fn store_ttl(&self, stored: &StoredResponse, _ttl: Ttl) -> Option<Ttl> {
        Some(Ttl::new(stored.lifetime()))
    }

    fn stamp_after(&self, stored: &StoredResponse, _after: Option<Duration>) -> Option<Duration> {
        Some(Duration::from_millis(stored.fresh_ms))
    }
}

/// Runs the handler and reads its whole body, up to the size cap.
async fn fetch<S, ReqB, ResB>(
    layer: CacheLayer,
    mut inner: S,
    request: Request<ReqB>,
) -> Fetched<S::Error>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    let authorized = request.headers().contains_key(AUTHORIZATION);
    let response = match inner.call(request).await {
        Ok(response) => response,
        Err(error) => return Fetched::Failed(error),
    };
    let (parts, body) = response.into_parts();
    let Some((fresh, stale)) = layer.lifetimes(parts.status, &parts.headers, authorized) else {
        return Fetched::Pass(Response::from_parts(parts, boxed(body)));
    };
    match collect(body, layer.config.max_body_size).await {
        Ok(body) => {
            let now = now_ms(&layer.cache);
            let stored = StoredResponse::new(parts.status, &parts.headers, body, now, fresh, stale);
            Fetched::Fresh(Box::new(stored))
        }
        Err(body) => Fetched::Pass(Response::from_parts(parts, body)),
    }
}

/// The whole body, or (over `cap`, with trailers, or failing midway) a body that gives the
/// client what was read, then the rest as it comes.
async fn collect<B>(body: B, cap: usize) -> Result<Bytes, CacheBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut buffer = BytesMut::new();
    loop {
        let frame = match body.frame().await {
            None => return Ok(buffer.freeze()),
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                let read = [Ok(Frame::data(buffer.freeze())), Err(error.into())];
                return Err(StreamBody::new(futures_util::stream::iter(read)).boxed_unsync());
            }
        };
        let frame = match frame.into_data() {
            Ok(data) if buffer.len().saturating_add(data.len()) <= cap => {
                buffer.extend_from_slice(&data);
                continue;
            }
            Ok(data) => Frame::data(data),
            Err(frame) => frame,
        };
        let read = [Ok(Frame::data(buffer.freeze())), Ok(frame)];
        let rest =
            futures_util::StreamExt::map(BodyStream::new(body), |frame| frame.map_err(Into::into));
        let stream = futures_util::StreamExt::chain(futures_util::stream::iter(read), rest);
        return Err(StreamBody::new(stream).boxed_unsync());
    }
}

fn boxed<B>(body: B) -> CacheBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

fn full(bytes: Bytes) -> CacheBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> CacheBody {
    full(Bytes::new())
}
