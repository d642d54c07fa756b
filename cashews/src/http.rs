//! HTTP services (feature `tower`): tower layers that put the cache in front of a service,
//! and (feature `axum`) the HTTP answer for a strategy's refusal.
//!
//! - [`CacheLayer`]: caches whole responses (status, headers, body) by method, path, query
//!   and chosen request headers, on any [`Cache`](crate::Cache) backend. It answers
//!   conditional requests (`If-None-Match`) with `304 Not Modified` from the stored entity
//!   tag, serves a stale response while one request refreshes it (`stale-while-revalidate`),
//!   and recomputes on request when asked with `Clear-Site-Data: "cache"`;
//! - [`RateLimitLayer`]: a fixed or sliding window per client (IP, header, path, ...),
//!   answering `429 Too Many Requests` with `Retry-After` and `X-RateLimit-*` headers;
//! - [`CircuitBreakerLayer`]: counts failed responses (5xx by default) and answers
//!   `503 Service Unavailable` with `Retry-After` while the circuit is open;
//! - [`refusal_response`] (and, with `axum`, [`ErrorResponse`]): the same answers built from a
//!   [`crate::Error`] that an attribute macro returned in a handler.
//!
//! The rate limit and circuit breaker layers run the same code as the attribute macros
//! (`#[cashews::rate_limit]`, `#[cashews::circuit_breaker]`): their state lives in the cache,
//! so every clone of a layer, every service it wraps and every process sharing the backend
//! count together.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cashews::http::{CacheLayer, CircuitBreakerLayer, RateLimitLayer, by_path};
//! use cashews::strategy::{CircuitBreakerOptions, RateLimitOptions};
//!
//! let cache = cashews::Cache::new();
//! cache.setup("mem://")?;
//! let app: Router = Router::new()
//!     .route("/price", get(|| async { "42" }))
//!     .layer(CacheLayer::new(cache.clone()).ttl(Duration::from_secs(60)).prefix("http"))
//!     .layer(CircuitBreakerLayer::new(
//!         cache.clone(),
//!         CircuitBreakerOptions::new(50, Duration::from_secs(10), Duration::from_secs(30)),
//!     ))
//!     .layer(RateLimitLayer::new(cache, RateLimitOptions::new(100, Duration::from_secs(60)), by_path));
//! # Ok::<(), cashews::Error>(())
//! ```

mod cache;
mod cache_control;
pub mod circuit_breaker;
mod clear_site_data;
mod etag;
pub mod rate_limit;
mod refusal;
mod stored;

pub use cache::{CacheBody, CacheLayer, CacheService};
pub use circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, server_error};
pub use clear_site_data::requests_cache_clear;
pub use etag::etag_of;
pub use rate_limit::{RateLimit, RateLimitLayer, by_client_ip, by_header, by_path};
#[cfg(feature = "axum")]
pub use refusal::ErrorResponse;
pub use refusal::{RateLimitHeaders, refusal_response};
