#![doc = include_str!("../docs/overview.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
mod cache;
pub mod clock;
mod coalesce;
pub mod codec;
pub mod command;
pub mod config;
pub mod context;
pub mod detect;
pub mod error;
#[cfg(feature = "tower")]
pub mod http;
pub mod key;
mod lock;
pub mod middleware;
pub mod observe;
pub mod pattern;
pub mod strategy;
pub mod transaction;
pub mod ttl;

pub use backend::Backend;
pub use backend::memory::MemoryBackend;
pub use bytes::Bytes;
pub use cache::{Cache, TAG_PREFIX, cache, invalidate_further, tagged};
pub use clock::Clock;
pub use command::Command;
pub use context::spawn;
pub use detect::detect;
pub use error::{Error, Result};
pub use lock::LockGuard;
pub use ttl::{IntoTtl, Ttl};

// The repository README's Rust code blocks, compiled and run as doc tests (blocks that need a
// server are `no_run`: compiled only), so the first code a newcomer copies always works. Its
// axum section needs the `axum` and `metrics` features (CI tests with all of them).
#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

// The Rust blocks of the guide pages (docs/guide/*.md), checked the same way.
#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../docs/guide/getting-started.md")]
struct GuideGettingStarted;

#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../docs/guide/http.md")]
struct GuideHttp;

#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../docs/guide/keys.md")]
struct GuideKeys;

#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../docs/guide/observability.md")]
struct GuideObservability;

#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../docs/guide/operations.md")]
struct GuideOperations;

#[cfg(all(doctest, feature = "axum", feature = "metrics", feature = "macros"))]
#[doc = include_str!("../../docs/guide/performance.md")]
struct GuidePerformance;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Caches an async function's result: `#[cashews::cache(ttl = ..., key = ...)]`.
///
/// Expands to a call of [`strategy::cache()`]: the key is rendered once per call, a hit returns
/// the stored result without running the body, a miss runs the body and stores what its
/// result type allows ([`strategy::Outcome`]: any `T`; `Ok` of a `Result`, never `Err`;
/// `Option` whole). A cache failure never fails the call.
///
/// Arguments:
///
/// | argument | value |
/// |---|---|
/// | `ttl` (required) | `"1h30m"` (checked at compile time), whole seconds, any expression of the arguments implementing [`IntoTtl`], or a closure of the stored value, `\|p: &Profile\| if p.vip { "1d" } else { "1h" }` (also on `soft`, `hit`, `dynamic`; see [`strategy::TtlBy`]; on `hit` the hit counter then has no TTL of its own and lives until the next recompute) |
/// | `key` | a template such as `"user:{user.id}:{lang:lower}"`, checked at compile time against the arguments; default: module path, function name and every argument |
/// | `prefix` | text put before the key, with a `:` |
/// | `condition` | `not_none`: do not store `None`; `with_errors`: store `Err` too and replay it on a hit (`E: Serialize + Deserialize`); `only_errors`: store only `Err`; `with_errors(pred)` / `only_errors(pred)`: cache only the errors `pred: fn(&E) -> bool` accepts (e.g. `with_errors(ApiError::is_not_found)`); or a path to `fn(&R) -> bool` deciding which results are stored |
/// | `time_condition` | store only results that took longer than this |
/// | `cache` | a [`Cache`] to use instead of the default [`cache()`](fn@cache) (an expression, e.g. a `static`) |
/// | `filters` | custom key filters the template uses (registered with [`key::filter::register_filter`]) |
/// | `protected` | `true` (default): concurrent misses of one key in this process run the body once |
/// | `lock` | `true`: misses run once across processes too, under the lock `lock:<key>` (needs a TTL) |
/// | `upper` | `true`: do not store a result that an inner cached function served (stacked caches) |
/// | `tags` | tag templates, e.g. `["users", "user:{id}"]`: the stored key joins these tags, and [`Cache::delete_tags`] deletes it |
/// | `crate` | the path to this crate, for re-exporters |
///
/// Arguments are rendered into keys with [`key::KeyPart`]. On methods, `self` is left out of
/// the default key and the type name stands in for it: Python's `noself` is the default here
/// (name `{self.field}` in `key` to key on the receiver).
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Profile {
///     name: String,
/// }
///
/// #[cashews::cache(ttl = "1h", key = "profile:{user_id}")]
/// async fn profile(user_id: u64) -> Result<Profile, std::io::Error> {
///     Ok(Profile { name: format!("user {user_id}") })
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(profile(7).await.unwrap().name, "user 7");
/// let stored: Option<Profile> = cashews::cache().get("profile:7").await?;
/// assert_eq!(stored.map(|p| p.name).as_deref(), Some("user 7"));
/// # Ok(()) }
/// ```
///
/// Arguments written as patterns bind the names a key uses: `(x, y): (i64, i64)` gives the
/// default key `x` and `y`, and axum extractors work the same way (`Path(id): Path<u64>`),
/// as the next section shows (with the `axum` feature).
#[cfg_attr(feature = "axum", doc = include_str!("../docs/axum_handlers.md"))]
#[cfg(feature = "macros")]
pub use cashews_macros::cache;

/// Serves the last good result when the function fails:
/// `#[cashews::failover(ttl = ..., when = ApiError::is_transient)]`.
///
/// Expands to [`strategy::failover()`]. `Ok` results are stored under `fail:<key>` for
/// `ttl`; an `Err` for which `when` holds (default: every error) returns the stored value as
/// `Ok` when there is one, else the error. Arguments: `ttl` (required), `key`, `prefix`
/// (default `fail`), `when`, `condition` (a path to `fn(&T) -> bool`: which `Ok` values become
/// the fallback; expands to [`strategy::failover_if()`]), `time_condition`, `cache`,
/// `filters`, `crate`.
///
/// ```
/// #[cashews::failover(ttl = "1h")]
/// async fn status(name: &str) -> Result<String, std::io::Error> {
///     Ok(format!("{name}: up"))
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(status("db").await.unwrap(), "db: up");
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::failover;

/// Recomputes after a soft TTL and serves the stale value if that fails:
/// `#[cashews::soft(ttl = "1h", soft_ttl = "1m")]`.
///
/// Expands to [`strategy::soft()`]. Arguments: `ttl` (required, the hard TTL), `soft_ttl`,
/// `key`, `tags`, `prefix` (default `soft`), `condition`, `time_condition`, `protected`, `cache`,
/// `filters`, `crate`.
///
/// ```
/// #[cashews::soft(ttl = "1h", soft_ttl = "1m")]
/// async fn rate(currency: &str) -> Result<u32, std::io::Error> {
///     Ok(if currency == "EUR" { 108 } else { 100 })
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(rate("EUR").await.unwrap(), 108);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::soft;

/// Refreshes ahead of expiry: `#[cashews::early(ttl = "10m", early_ttl = "7m")]`.
///
/// Expands to [`strategy::early()`]: after `early_ttl` one caller recomputes while the others
/// keep getting the stored value. Arguments: `ttl` (required), `early_ttl`, `key`, `tags`, `prefix`
/// (default `early:v2`), `condition`, `time_condition`, `protected`, `background`, `cache`,
/// `filters`, `crate`.
///
/// `background = true` expands to [`strategy::early_detached()`] instead: the refresh runs in
/// a spawned Tokio task, so the caller that triggers it returns the stored value at once (by
/// default that caller waits for the refresh, then returns the stored value too). The spawned
/// task outlives the call, so the function must borrow nothing: a `&str` or `&self` argument
/// is a compile error naming it (take it by value, e.g. `String`, or an `Arc` of `self`), and
/// its future must be `Send`. That is also why the default is `false`, where Python's is
/// `true`: a refresh in the caller works for every function.
///
/// ```
/// #[cashews::early(ttl = "10m", early_ttl = "7m", background = true)]
/// async fn summary(day: u32, region: String) -> String {
///     format!("summary of day {day} in {region}")
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(summary(3, "eu".to_owned()).await, "summary of day 3 in eu");
/// # Ok(()) }
/// ```
///
/// ```
/// #[cashews::early(ttl = "10m", early_ttl = "7m")]
/// async fn report(day: u32) -> String {
///     format!("report for day {day}")
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(report(3).await, "report for day 3");
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::early;

/// Recomputes after a number of hits: `#[cashews::hit(ttl = "1h", cache_hits = 100)]`.
///
/// Expands to [`strategy::hit()`]. Arguments: `ttl` and `cache_hits` (required),
/// `update_after` or `update_before`, `background`, `key`, `tags`, `prefix` (default `hit`),
/// `condition`, `time_condition`, `cache`, `filters`, `crate`.
///
/// `update_after = n` recomputes the value when it is served for the `n`-th time; that caller
/// still gets the stored value. `update_before = n` says the same from the other end: recompute
/// once at most `n` hits of the budget remain, i.e. `update_after = cache_hits - n` (with
/// `update_before = cache_hits`, at the first hit). Give one of the two; an `update_before`
/// over `cache_hits` is a compile error when both are literals (otherwise it recomputes at the
/// first hit). `background = true` expands to [`strategy::hit_detached()`]:
/// the recomputation runs in a spawned Tokio task and that caller returns at once (by default
/// it waits for it). As on [`early`](macro@early), the function must then borrow nothing (a
/// borrowed argument is a compile error naming it) and its future must be `Send`, which is why
/// the default is `false` where Python's is `true`.
///
/// ```
/// #[cashews::hit(ttl = "1h", cache_hits = 100, update_after = 90, background = true)]
/// async fn ranking(page: u32) -> Vec<u32> {
///     vec![page; 2]
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(ranking(1).await, vec![1, 1]);
/// # Ok(()) }
/// ```
///
/// ```
/// #[cashews::hit(ttl = "1h", cache_hits = 100)]
/// async fn popular(page: u32) -> Vec<u32> {
///     vec![page; 3]
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(popular(2).await, vec![2, 2, 2]);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::hit;

/// [`hit`](macro@hit) with dynamic defaults (a one-day TTL unless given):
/// `#[cashews::dynamic]`.
///
/// Expands to [`strategy::dynamic()`]. Arguments: `ttl`, `key`, `tags`, `prefix` (default
/// `dynamic`), `cache`, `filters`, `crate`.
///
/// ```
/// #[cashews::dynamic]
/// async fn trending(tag: &str) -> String {
///     format!("#{tag}")
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(trending("rust").await, "#rust");
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::dynamic;

/// At most `limit` calls per fixed window: `#[cashews::rate_limit(limit = 100, period = "1m")]`.
///
/// Expands to [`strategy::rate_limited()`]. A refused call does not run the body and returns
/// [`Error::RateLimited`] converted into the function's error type, which must implement
/// `From<cashews::Error>`. The error carries the numbers of an HTTP `429`: `retry_after`,
/// `limit`, `remaining` (0) and `reset`; in an axum handler, return
/// `Result<T, cashews::http::ErrorResponse>` (feature `axum`) to answer the same `429`, with
/// `Retry-After` and `X-RateLimit-*` headers, as `cashews::http::RateLimitLayer`. Arguments: `limit` and `period` (required; `period` a literal
/// checked at compile time), `ttl` (a ban after the first overflow), `action`, `key`, `prefix`
/// (default `rate_limit`), `cache`, `filters`, `crate`.
///
/// `action = path` answers refused calls instead of an error: `path` is called with the
/// function's arguments (`self` first on methods) and returns the function's result type, so
/// the result need not be a `Result`. It is a plain (synchronous) function, as in
/// Python.
///
/// ```
/// fn busy(user: &str) -> String {
///     format!("{user}: try again in a minute")
/// }
///
/// #[cashews::rate_limit(limit = 1, period = "1m", key = "greet:{user}", action = busy)]
/// async fn greet(user: &str) -> String {
///     format!("hello {user}")
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// # cashews::cache().setup("mem://")?;
/// assert_eq!(greet("ann").await, "hello ann");
/// assert_eq!(greet("ann").await, "ann: try again in a minute");
/// # Ok(()) }
/// ```
///
/// ```
/// #[derive(Debug)]
/// struct ApiError(String);
/// impl From<cashews::Error> for ApiError {
///     fn from(e: cashews::Error) -> Self { Self(e.to_string()) }
/// }
///
/// #[cashews::rate_limit(limit = 1, period = "1m", key = "login:{user}")]
/// async fn login(user: &str) -> Result<(), ApiError> {
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert!(login("ann").await.is_ok());
/// assert!(login("ann").await.is_err()); // the second call in the minute is refused
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::rate_limit;

/// At most `limit` calls in any sliding window:
/// `#[cashews::slice_rate_limit(limit = 10, period = "1m")]`.
///
/// Expands to [`strategy::slice_rate_limited()`]; refusals as [`rate_limit`](macro@rate_limit).
/// Arguments: `limit` and `period` (required), `action` (as on
/// [`rate_limit`](macro@rate_limit)), `key`, `prefix` (default `srl`), `cache`, `filters`,
/// `crate`.
///
/// ```
/// #[derive(Debug)]
/// struct ApiError(String);
/// impl From<cashews::Error> for ApiError {
///     fn from(e: cashews::Error) -> Self { Self(e.to_string()) }
/// }
///
/// #[cashews::slice_rate_limit(limit = 2, period = "10s")]
/// async fn search(query: &str) -> Result<usize, ApiError> {
///     Ok(query.len())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert!(search("a").await.is_ok());
/// assert!(search("a").await.is_ok());
/// assert!(search("a").await.is_err());
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::slice_rate_limit;

/// Refuses calls while their error rate is high:
/// `#[cashews::circuit_breaker(errors_rate = 10, period = "1m", ttl = "5m", half_open_ttl = "1m")]`.
///
/// Expands to [`strategy::circuit_breaker()`]. While open, calls return
/// [`Error::CircuitOpen`] converted into the function's error type (`From<cashews::Error>`)
/// without running the body (`cashews::http::ErrorResponse`, feature `axum`, answers it with
/// `503` and `Retry-After`). The circuit is per function unless `key` names arguments.
/// Arguments: `errors_rate` (percent), `period` and `ttl` (required), `half_open_ttl`,
/// `half_open_probes` (how many calls probe the upstream at once while half-open; default 1),
/// `min_calls`, `when` (which errors count; default all), `key`, `prefix` (default
/// `circuit_breaker`), `cache`, `filters`, `crate`.
///
/// ```
/// #[derive(Debug)]
/// struct ApiError(String);
/// impl From<cashews::Error> for ApiError {
///     fn from(e: cashews::Error) -> Self { Self(e.to_string()) }
/// }
///
/// #[cashews::circuit_breaker(errors_rate = 50, period = "1m", ttl = "5m", min_calls = 10)]
/// async fn upstream() -> Result<u32, ApiError> {
///     Ok(1)
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(upstream().await.unwrap(), 1);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::circuit_breaker;

/// Deletes the keys matching a pattern after a successful call:
/// `#[cashews::invalidate(key = "user:{id}:*")]`.
///
/// Expands to [`strategy::invalidate()`]. The pattern is a key template: argument values are
/// glob-escaped (a user id of `*` deletes nothing more than the literal key), the template's
/// own `*`, `?` and `[...]` stay wildcards. Nothing is deleted when the function returns
/// `Err`. Arguments: `key` (required), `cache`, `filters`, `crate`.
///
/// ```
/// #[cashews::cache(ttl = "1h", key = "user:{id}:profile")]
/// async fn profile(id: u64) -> String {
///     format!("profile {id}")
/// }
///
/// #[cashews::invalidate(key = "user:{id}:*")]
/// async fn rename(id: u64, name: &str) -> Result<(), std::io::Error> {
///     let _ = name;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// profile(1).await;
/// rename(1, "ann").await.unwrap();
/// assert!(!cashews::cache().exists("user:1:profile").await?);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::invalidate;

/// Caches a stream's items one by one: `#[cashews::iterator(ttl = "10m", key = ...)]` on a
/// plain `fn` returning `impl Stream<Item = T>`.
///
/// Expands to [`strategy::iterator()`]: a complete pass stores every item and then a marker;
/// later calls replay the items without polling the body's stream. A pass that is dropped
/// midway or hits an `Err` item stores no marker, so the next call streams from the source.
/// The body itself still runs on each call (only polling is skipped): build the stream lazily.
/// Arguments: `ttl` (required), `key`, `condition` (`not_none`; `with_errors` / `only_errors`
/// to cache an `Err` item and replay it at the end of the pass), `cache`, `filters`, `crate`.
///
/// ```
/// use futures_util::StreamExt;
///
/// #[cashews::iterator(ttl = "10m", key = "squares:{n}")]
/// fn squares(n: u64) -> impl futures_core::Stream<Item = u64> {
///     futures_util::stream::iter((1..=n).map(|i| i * i))
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// let first: Vec<u64> = squares(3).collect().await;
/// let replay: Vec<u64> = squares(3).collect().await;
/// assert_eq!((first, replay), (vec![1, 4, 9], vec![1, 4, 9]));
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::iterator;

/// Answers `false` from a Bloom filter without calling when the member is definitely absent:
/// `#[cashews::bloom(capacity = 10_000, name = "{email}")]` on an async fn returning `bool`.
///
/// Expands to [`strategy::bloom()`]. The filter is per function
/// (`bloom:<module>:<function>:<m>`); the member is the rendered `name` (default: the
/// arguments). Add members with [`strategy::bloom_add`] under the same key. Arguments:
/// `capacity` (required), `name`, `false_positives` (percent, default 1),
/// `check_false_positive`, `prefix`, `cache`, `filters`, `crate`.
///
/// ```
/// #[cashews::bloom(capacity = 1000, name = "{email}")]
/// async fn registered(email: &str) -> bool {
///     email.ends_with("@example.com")
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert!(!registered("eve@elsewhere.org").await);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::bloom;

/// Two Bloom filters, remembering `true` and `false` answers:
/// `#[cashews::dual_bloom(capacity = 10_000)]` on an async fn returning `bool`.
///
/// Expands to [`strategy::dual_bloom()`]. Arguments: `capacity` (required), `name`,
/// `false_positives`, `no_collisions`, `prefix`, `cache`, `filters`, `crate`.
///
/// ```
/// #[cashews::dual_bloom(capacity = 1000)]
/// async fn is_even(n: u64) -> bool {
///     n % 2 == 0
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert!(is_even(4).await);
/// assert!(!is_even(3).await);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::dual_bloom;

/// Refuses calls for `ttl` once the function turns abnormally slow:
/// `#[cashews::perf(ttl = "1m")]` on an async fn returning `Result<T, E>` with
/// `E: From<cashews::Error>`.
///
/// Expands to [`strategy::perf()`]: latencies are kept per key in the cache; a call slower
/// than the condition (default: twice the mean of the last `trace_size`) locks the key and
/// calls are refused with [`Error::PerformanceDegraded`]. Arguments: `ttl` (required), `key`,
/// `trace_size`, `window`, `perf_condition` (a `fn(Duration, &[Duration]) -> bool`), `prefix`,
/// `cache`, `filters`, `crate`.
///
/// ```
/// #[derive(Debug)]
/// struct ApiError(String);
/// impl From<cashews::Error> for ApiError {
///     fn from(e: cashews::Error) -> Self { Self(e.to_string()) }
/// }
///
/// #[cashews::perf(ttl = "1m", key = "search")]
/// async fn search(query: &str) -> Result<usize, ApiError> {
///     Ok(query.len())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(search("rust").await.unwrap(), 4);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::perf;

/// One call at a time per key, across processes: `#[cashews::locked(ttl = "30s")]`.
///
/// Without `wait`, expands to [`strategy::locked_always()`] (any return type; callers wait,
/// woken when the holder releases). With `wait = false` or `wait = "5s"`, expands to
/// [`strategy::locked()`]: after the wait the call is refused with [`Error::Locked`]
/// through the function's error type (`From<cashews::Error>`). Arguments: `ttl` (required,
/// the longest hold), `wait`, `key`, `prefix` (default `locked`), `cache`, `filters`,
/// `crate`.
///
/// ```
/// #[cashews::locked(ttl = "30s", key = "job:{id}")]
/// async fn run_job(id: u32) -> u32 {
///     id * 2
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(run_job(21).await, 42);
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::locked;

/// Concurrent calls with the same key in this process share one run and all get a clone of
/// its result: `#[cashews::thunder_protection]`.
///
/// Expands to [`strategy::thunder_protection()`]; the result type must be `Clone + Send +
/// 'static`. Nothing is stored. Arguments: `key`, `cache`, `filters`, `crate`.
///
/// ```
/// #[cashews::thunder_protection(key = "config")]
/// async fn load_config() -> String {
///     "mode=fast".to_owned()
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// cashews::cache().setup("mem://")?;
/// assert_eq!(load_config().await, "mode=fast");
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::thunder_protection;

/// Runs an async function inside a transaction of the cache:
/// `#[cashews::transaction(mode = "locked", timeout = "5s")]`.
///
/// Expands to [`Cache::transaction`] with [`Transaction::run`](transaction::Transaction::run)
/// over the body: the cache commands of the call (and of the tasks it spawns with
/// [`spawn`]) see their own writes; an `Ok` result commits them, an `Err`, a panic or a
/// cancellation discards them. The function returns `Result<T, E>` with
/// `impl From<cashews::Error> for E` (a lock timeout or a failed commit arrives as `E`).
/// Arguments: `mode` (`"fast"`, `"locked"`, `"serializable"`, or a
/// [`TransactionMode`](transaction::TransactionMode) expression; default the cache's),
/// `timeout` (a constant duration such as `"5s"`; default the cache's), `cache`, `crate`. A
/// call inside another transaction of the same cache joins it. See the
/// [`transaction`](mod@transaction) module for what is transactional on each backend.
///
/// ```
/// #[cashews::transaction(mode = "fast")]
/// async fn transfer(from: &str, to: &str, amount: i64) -> cashews::Result<()> {
///     let cache = cashews::cache();
///     let left = cache.incr_by(from, -amount, cashews::Ttl::NONE).await?;
///     if left < 0 {
///         return Err(cashews::Error::Locked { key: from.to_owned() }); // rolls back
///     }
///     cache.incr_by(to, amount, cashews::Ttl::NONE).await?;
///     Ok(())
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cashews::Result<()> {
/// let cache = cashews::cache();
/// cache.setup("mem://")?;
/// cache.incr_by("alice", 10, cashews::Ttl::NONE).await?;
/// transfer("alice", "bob", 4).await?;
/// assert!(transfer("alice", "bob", 7).await.is_err());
/// assert_eq!(cache.get::<i64>("alice").await?, Some(6));
/// assert_eq!(cache.get::<i64>("bob").await?, Some(4));
/// # Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use cashews_macros::transaction;
