//! Tower layers for HTTP services (features `tower` and `axum`).
//!
//! [`CacheLayer`] caches whole responses (status, headers, body) by method, path, query and
//! chosen request headers, on any [`Cache`](crate::Cache) backend. It answers conditional
//! requests (`If-None-Match`) with `304 Not Modified` from the stored entity tag, serves a
//! stale response while one request refreshes it (`stale-while-revalidate`), and recomputes
//! on request when asked with `Clear-Site-Data: "cache"`.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cashews::http::CacheLayer;
//!
//! let cache = cashews::Cache::new();
//! cache.setup("mem://")?;
//! let app: Router = Router::new()
//!     .route("/price", get(|| async { "42" }))
//!     .layer(CacheLayer::new(cache).ttl(Duration::from_secs(60)).prefix("http"));
//! # Ok::<(), cashews::Error>(())
//! ```

mod cache;
mod cache_control;
mod clear_site_data;
mod etag;
mod stored;

pub use cache::{CacheBody, CacheLayer, CacheService};
pub use clear_site_data::requests_cache_clear;
pub use etag::etag_of;
