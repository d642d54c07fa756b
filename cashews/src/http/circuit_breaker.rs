//! [`CircuitBreakerLayer`]: stop calling a failing HTTP service for a while, answering `503`
//! with `Retry-After` meanwhile.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::response::Parts;
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use super::refusal::refusal_response;
use crate::strategy::CircuitBreakerOptions;
use crate::{Cache, Error};

/// The name of a layer's circuit unless [`CircuitBreakerLayer::name`] gives another.
const DEFAULT_NAME: &str = "http";

/// The default failure test of [`CircuitBreakerLayer`]: a `5xx` status.
///
/// ```
/// let (parts, ()) = http::Response::builder().status(502).body(()).unwrap().into_parts();
/// assert!(cashews::http::server_error(&parts));
/// let (parts, ()) = http::Response::builder().status(404).body(()).unwrap().into_parts();
/// assert!(!cashews::http::server_error(&parts));
/// ```
#[must_use]
pub fn server_error(parts: &Parts) -> bool {
    parts.status.is_server_error()
}

/// A tower [`Layer`] that opens a circuit when too many responses of the inner service fail,
/// and answers `503 Service Unavailable` without calling it while the circuit is open.
///
/// It runs the engine of `#[cashews::circuit_breaker]`
/// ([`strategy::circuit_breaker`](crate::strategy::circuit_breaker)) with the
/// [`CircuitBreakerOptions`] given: the circuit opens when `errors_rate` percent of the
/// requests of the last `period` (at least `min_calls` of them) failed, stays open for
/// `ttl`, then, with `half_open_ttl`, lets a share of requests through as probes
/// (`half_open_share`, at most `half_open_probes` at once): a probe that succeeds closes
/// the circuit, one that fails opens it again.
///
/// - A failure is a response that the test of [`CircuitBreakerLayer::failure_when`] accepts
///   (default [`server_error`]: a `5xx`), or an error of the inner service. Failed responses
///   are passed on to the client unchanged.
/// - While open, requests get a `503` with an empty body and `Retry-After` (seconds left of
///   the open time, rounded up); requests refused while half-open (they lost the draw, or
///   every probe slot is taken) get a `503` without `Retry-After`.
/// - The state lives in the cache under `circuit_breaker:<name>:*` (`<name>` from
///   [`CircuitBreakerLayer::name`], default `http`): every clone of the layer, every service
///   it wraps and every process on the same backend share one circuit per name.
///
/// A failing backend never breaks a request: it runs unchecked (logged). An unusable
/// configuration (no backend set up, invalid options) answers `500`, logged.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, body::Body, http::StatusCode, routing::get};
/// use cashews::http::CircuitBreakerLayer;
/// use cashews::strategy::CircuitBreakerOptions;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = cashews::Cache::new();
/// cache.setup("mem://").unwrap();
/// let options = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30));
/// let app = Router::new()
///     .route("/", get(|| async { StatusCode::BAD_GATEWAY }))
///     .layer(CircuitBreakerLayer::new(cache, options).name("upstream"));
///
/// let request = || http::Request::get("/").body(Body::empty()).unwrap();
/// let failed = app.clone().oneshot(request()).await.unwrap();
/// assert_eq!(failed.status(), 502); // passed on, and counted: 1 failure in 1 request opens it
/// let refused = app.oneshot(request()).await.unwrap();
/// assert_eq!(refused.status(), 503);
/// assert_eq!(refused.headers()["retry-after"], "30");
/// # }
/// ```
pub struct CircuitBreakerLayer<F = fn(&Parts) -> bool> {
    cache: Cache,
    options: CircuitBreakerOptions,
    /// `circuit_breaker:<name>`.
    key: Arc<str>,
    is_failure: Arc<F>,
}

impl<F> Clone for CircuitBreakerLayer<F> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            options: self.options,
            key: Arc::clone(&self.key),
            is_failure: Arc::clone(&self.is_failure),
        }
    }
}

impl<F> fmt::Debug for CircuitBreakerLayer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("options", &self.options)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// A circuit named `http` on `cache` with `options`, counting `5xx` responses as failures.
    ///
    /// Never fails: invalid options answer every request with `500`, logged; check them first
    /// with [`CircuitBreakerOptions::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::CircuitBreakerLayer;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30))
    ///     .min_calls(20)
    ///     .half_open_ttl(Duration::from_secs(10));
    /// let layer = CircuitBreakerLayer::new(cashews::cache().clone(), options);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn new(cache: Cache, options: CircuitBreakerOptions) -> Self {
        Self {
            cache,
            options,
            key: circuit_key(DEFAULT_NAME),
            is_failure: Arc::new(server_error),
        }
    }
}

impl<F> CircuitBreakerLayer<F> {
    /// Names the circuit (default `http`): its state is `circuit_breaker:<name>:*`. Layers
    /// (and processes) with the same name share one circuit; give each upstream its own.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::CircuitBreakerLayer;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30));
    /// let layer = CircuitBreakerLayer::new(cashews::cache().clone(), options).name("payments");
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.key = circuit_key(name);
        self
    }

    /// Counts as failures the responses `is_failure` accepts, instead of `5xx` ones; it sees
    /// the status, headers and extensions. Errors of the inner service always count.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::CircuitBreakerLayer;
    /// use cashews::strategy::CircuitBreakerOptions;
    /// let options = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30));
    /// // A gateway's upstream trouble only, not the 500s of our own bugs.
    /// let layer = CircuitBreakerLayer::new(cashews::cache().clone(), options)
    ///     .failure_when(|parts: &http::response::Parts| matches!(parts.status.as_u16(), 502..=504));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn failure_when<G>(self, is_failure: G) -> CircuitBreakerLayer<G>
    where
        G: Fn(&Parts) -> bool + Send + Sync + 'static,
    {
        CircuitBreakerLayer {
            cache: self.cache,
            options: self.options,
            key: self.key,
            is_failure: Arc::new(is_failure),
        }
    }
}

fn circuit_key(name: &str) -> Arc<str> {
    Arc::from(format!("{}:{name}", CircuitBreakerOptions::DEFAULT_PREFIX))
}

impl<S, F> Layer<S> for CircuitBreakerLayer<F> {
    type Service = CircuitBreaker<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CircuitBreakerLayer`] wraps around `S`; see there.
///
/// ```
/// use std::time::Duration;
/// use cashews::http::{CircuitBreaker, CircuitBreakerLayer};
/// use cashews::strategy::CircuitBreakerOptions;
/// use tower::Layer;
/// let options = CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30));
/// let service: CircuitBreaker<_> = CircuitBreakerLayer::new(cashews::cache().clone(), options)
///     .layer(tower::service_fn(|_: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     }));
/// # let _ = service;
/// ```
pub struct CircuitBreaker<S, F = fn(&Parts) -> bool> {
    inner: S,
    layer: CircuitBreakerLayer<F>,
}

impl<S: Clone, F> Clone for CircuitBreaker<S, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, F> fmt::Debug for CircuitBreaker<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

/// How a request ended, in the strategy's error type (the failed response or the inner
/// error itself waits outside, so this stays `Sync` as the strategy needs).
enum Outcome {
    /// The strategy refused or could not work.
    Cache(Error),
    /// A failed response or an error of the inner service: counted, then passed on.
    Failed,
}

impl From<Error> for Outcome {
    fn from(error: Error) -> Self {
        Self::Cache(error)
    }
}

/// A boxed, sendable response future.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, F, ReqBody, ResBody> Service<Request<ReqBody>> for CircuitBreaker<S, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    F: Fn(&Parts) -> bool + Send + Sync + 'static,
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
        let layer = self.layer.clone();
        Box::pin(async move {
            let is_failure = Arc::clone(&layer.is_failure);
            // What a failed request answered, passed on after it was counted.
            let mut failed: Option<Result<Response<ResBody>, S::Error>> = None;
            let slot = &mut failed;
            let origin = async move {
                match inner.call(request).await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        let failure = is_failure(&parts);
                        let response = Response::from_parts(parts, body);
                        if failure {
                            *slot = Some(Ok(response));
                            Err(Outcome::Failed)
                        } else {
                            Ok(response)
                        }
                    }
                    Err(error) => {
                        *slot = Some(Err(error));
                        Err(Outcome::Failed)
                    }
                }
            };
            let counted = |outcome: &Outcome| matches!(outcome, Outcome::Failed);
            let result = crate::strategy::circuit_breaker(
                &layer.cache,
                &layer.key,
                &layer.options,
                counted,
                origin,
            )
            .await;
            match result {
                Ok(response) => Ok(response),
                Err(Outcome::Failed) => match failed {
                    Some(answer) => answer,
                    None => Ok(internal_error()),
                },
                Err(Outcome::Cache(error @ Error::CircuitOpen { .. })) => {
                    Ok(refusal_response(&error))
                }
                Err(Outcome::Cache(error)) => {
                    tracing::error!(%error, "CircuitBreakerLayer cannot check the circuit; answered 500");
                    Ok(internal_error())
                }
            }
        })
    }
}

/// An empty `500 Internal Server Error`.
fn internal_error<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
