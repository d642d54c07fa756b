//! HTTP services (feature `tower`): tower layers that put the cache's strategies in front of
//! a service, and (feature `axum`) the HTTP answer for a strategy's refusal.
//!
//! - [`RateLimitLayer`]: a fixed or sliding window per client (IP, header, path, ...),
//!   answering `429 Too Many Requests` with `Retry-After` and `X-RateLimit-*` headers;
//! - [`CircuitBreakerLayer`]: counts failed responses (5xx by default) and answers
//!   `503 Service Unavailable` with `Retry-After` while the circuit is open;
//! - [`refusal_response`] (and, with `axum`, [`ErrorResponse`]): the same answers built from a
//!   [`crate::Error`] that an attribute macro returned in a handler.
//!
//! The layers run the same code as the attribute macros (`#[cashews::rate_limit]`,
//! `#[cashews::circuit_breaker]`): their state lives in the cache, so every clone of a layer,
//! every service it wraps and every process sharing the backend count together.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cashews::http::{CircuitBreakerLayer, RateLimitLayer, by_path};
//! use cashews::strategy::{CircuitBreakerOptions, RateLimitOptions};
//!
//! let cache = cashews::Cache::new();
//! cache.setup("mem://").unwrap();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(CircuitBreakerLayer::new(
//!         cache.clone(),
//!         CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30)),
//!     ))
//!     .layer(RateLimitLayer::new(cache, RateLimitOptions::new(100, Duration::from_secs(60)), by_path));
//! ```

pub mod circuit_breaker;
pub mod rate_limit;
mod refusal;

pub use circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, server_error};
pub use rate_limit::{RateLimit, RateLimitLayer, by_client_ip, by_header, by_path};
#[cfg(feature = "axum")]
pub use refusal::ErrorResponse;
pub use refusal::{RateLimitHeaders, refusal_response};
