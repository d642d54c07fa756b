//! The HTTP answer for a strategy's refusal: `429` with `Retry-After` and `X-RateLimit-*`
//! for a rate limit, `503` with `Retry-After` for an open circuit.

use std::time::Duration;

use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};

use crate::Error;

/// `X-RateLimit-Limit`: how many requests the window lets through.
pub(crate) const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: how many more the current window lets through.
pub(crate) const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: seconds until the window ends and the count starts again.
pub(crate) const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The `X-RateLimit-*` numbers of one request: what [`RateLimitLayer`](super::RateLimitLayer)
/// writes on every response it counted, and on its `429`s.
///
/// ```
/// use std::time::Duration;
/// use cashews::http::RateLimitHeaders;
/// let mut headers = http::HeaderMap::new();
/// RateLimitHeaders { limit: 10, remaining: 7, reset: Some(Duration::from_millis(2500)) }
///     .write(&mut headers);
/// assert_eq!(headers["x-ratelimit-limit"], "10");
/// assert_eq!(headers["x-ratelimit-remaining"], "7");
/// assert_eq!(headers["x-ratelimit-reset"], "3"); // whole seconds, rounded up
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// How many requests a window lets through (`X-RateLimit-Limit`).
    pub limit: u64,
    /// How many more the current window lets through (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// When the window ends, if known (`X-RateLimit-Reset`, whole seconds rounded up).
    pub reset: Option<Duration>,
}

impl RateLimitHeaders {
    /// The numbers of a [`Error::RateLimited`] refusal; `None` for any other error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cashews::http::RateLimitHeaders;
    /// let refused = cashews::Error::RateLimited {
    ///     retry_after: Some(Duration::from_secs(4)),
    ///     limit: 5,
    ///     remaining: 0,
    ///     reset: Some(Duration::from_secs(4)),
    /// };
    /// let numbers = RateLimitHeaders::from_error(&refused).unwrap();
    /// assert_eq!((numbers.limit, numbers.remaining), (5, 0));
    /// ```
    #[must_use]
    pub fn from_error(error: &Error) -> Option<Self> {
        match error {
            Error::RateLimited {
                limit,
                remaining,
                reset,
                ..
            } => Some(Self {
                limit: *limit,
                remaining: *remaining,
                reset: *reset,
            }),
            _ => None,
        }
    }

    /// Writes `X-RateLimit-Limit`, `X-RateLimit-Remaining` and (when known)
    /// `X-RateLimit-Reset` into `headers`, replacing values already there.
    ///
    /// ```
    /// use cashews::http::RateLimitHeaders;
    /// let mut headers = http::HeaderMap::new();
    /// RateLimitHeaders { limit: 1, remaining: 0, reset: None }.write(&mut headers);
    /// assert!(headers.get("x-ratelimit-reset").is_none());
    /// ```
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        if let Some(reset) = self.reset {
            headers.insert(RESET, HeaderValue::from(seconds(reset)));
        }
    }
}

/// Whole seconds, rounded up: a client that waits this long is past the moment.
pub(crate) fn seconds(duration: Duration) -> u64 {
    let whole = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

/// Writes `Retry-After` (whole seconds, rounded up) when the wait is known.
pub(crate) fn write_retry_after(headers: &mut HeaderMap, retry_after: Option<Duration>) {
    if let Some(wait) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds(wait)));
    }
}

/// The HTTP answer for `error`, with an empty (default) body:
///
/// | error | status | headers |
/// |---|---|---|
/// | [`Error::RateLimited`] | `429 Too Many Requests` | `Retry-After`, `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` |
/// | [`Error::CircuitOpen`] | `503 Service Unavailable` | `Retry-After` (when known) |
/// | [`Error::Locked`], [`Error::PerformanceDegraded`] | `503 Service Unavailable` | |
/// | anything else | `500 Internal Server Error` | |
///
/// The same answers as [`RateLimitLayer`](super::RateLimitLayer) and
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer) give, for a handler whose
/// `#[cashews::rate_limit]` or `#[cashews::circuit_breaker]` refused the call.
///
/// ```
/// use std::time::Duration;
/// let refused = cashews::Error::CircuitOpen { retry_after: Some(Duration::from_millis(1500)) };
/// let response: http::Response<String> = cashews::http::refusal_response(&refused);
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "2");
/// ```
#[must_use]
pub fn refusal_response<B: Default>(error: &Error) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status(error);
    let headers = response.headers_mut();
    match error {
        Error::RateLimited { retry_after, .. } => {
            write_retry_after(headers, *retry_after);
            if let Some(numbers) = RateLimitHeaders::from_error(error) {
                numbers.write(headers);
            }
        }
        Error::CircuitOpen { retry_after } => write_retry_after(headers, *retry_after),
        _ => {}
    }
    response
}

/// The status of [`refusal_response`].
fn status(error: &Error) -> StatusCode {
    match error {
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::CircuitOpen { .. } | Error::Locked { .. } | Error::PerformanceDegraded { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An [`Error`] as an axum response (feature `axum`): return `Result<T, ErrorResponse>` from a
/// handler and `?` turns a refusal of `#[cashews::rate_limit]` or
/// `#[cashews::circuit_breaker]` into the same `429` / `503` the layers answer (see
/// [`refusal_response`]). The body is the error's message for refusals; for other errors it
/// is a plain "internal error" (the message, which may name keys, is logged instead).
///
/// ```
/// use std::time::Duration;
/// use axum::response::IntoResponse;
/// use cashews::http::ErrorResponse;
///
/// #[cashews::rate_limit(limit = 1, period = "1m", key = "search")]
/// async fn search() -> Result<&'static str, ErrorResponse> {
///     Ok("results")
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// cashews::cache().setup("mem://").unwrap();
/// assert!(search().await.is_ok());
/// let refused = search().await.unwrap_err().into_response();
/// assert_eq!(refused.status(), 429);
/// assert_eq!(refused.headers()["x-ratelimit-limit"], "1");
/// assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
/// assert_eq!(refused.headers()["retry-after"], "60");
/// # }
/// ```
#[cfg(feature = "axum")]
#[derive(Debug)]
pub struct ErrorResponse(pub Error);

#[cfg(feature = "axum")]
impl From<Error> for ErrorResponse {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for ErrorResponse {
    fn into_response(self) -> axum::response::Response {
        let mut response: axum::response::Response = refusal_response(&self.0);
        let body = if self.0.is_refusal() {
            self.0.to_string()
        } else {
            tracing::error!(error = %self.0, "a handler failed with a cache error; answered 500");
            "internal error".to_owned()
        };
        *response.body_mut() = axum::body::Body::from(body);
        response
    }
}
