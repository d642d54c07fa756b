//! Observability: metrics (feature `metrics`) and `tracing` spans (feature `tracing`).
//!
//! Both features are off by default; with them off, nothing here costs anything.
//!
//! # Metrics
//!
//! With the `metrics` feature, [`metrics()`] builds a [`Stage`](crate::middleware::Stage) for
//! a route: it records every command of that route through the [`metrics`](https://docs.rs/metrics)
//! facade, so any exporter installed as the global recorder (Prometheus through
//! `metrics-exporter-prometheus`, StatsD, ...) sees them. Building one also turns on the
//! strategy, refusal and backend-health metrics of the whole process. Names and labels follow
//! the Prometheus conventions (snake_case, `_total` counters, `_seconds` histograms):
//!
//! | Name | Kind | Labels | What |
//! |---|---|---|---|
//! | `cashews_commands_total` | counter | `command`, `backend`, `prefix`, `result`, `tier` (+ `tag`) | backend commands; `result` is `hit`/`miss` (`get`, `get_size`, `exists`), `ok` or `error`; `tier` is `local` when the in-process tier answered (a memory read, a client-side local hit), else `remote` |
//! | `cashews_command_duration_seconds` | histogram | `command`, `backend`, `prefix` (+ `tag`) | how long each command took |
//! | `cashews_strategy_calls_total` | counter | `strategy`, `template`, `result` | strategy calls; `result` is `hit`, `miss`, `ok`, `refused` or `error` |
//! | `cashews_strategy_duration_seconds` | histogram | `strategy`, `template` | how long each strategy call took, origin included (not recorded for hits answered synchronously) |
//! | `cashews_refusals_total` | counter | `strategy` (`rate_limit`, `slice_rate_limit`, `circuit_breaker`, `perf`, `locked`) | calls refused without running the function |
//! | `cashews_backend_health_transitions_total` | counter | `backend`, `address`, `to` (`up`/`down`) | a backend marked down or up again |
//! | `cashews_backend_up` | gauge | `backend`, `address` | 1 while the backend is up (from its creation on), 0 while it is down |
//!
//! `backend` is the scheme (`mem`, `redis`, `disk`), `prefix` the route's key prefix (`""` for
//! the default route), `template` the key template of the cached function (never the rendered
//! key, so the label set stays bounded; `""` when the call gives none), and `tag` (only with
//! [`Metrics::with_tag`]) the first tag the cache's tag registry maps the key to. These replace
//! Python cashews' `cashews_operations_latency_seconds` (labels `operation`, `backend_class`,
//! `tag`) and `cashews_get_operation_total`: the same numbers are the `command="get"` series
//! of the two command metrics.
//!
//! Every strategy function reports its calls (counts, durations and spans), labelled:
//!
//! | `strategy` label | Functions (attributes) | `result` |
//! |---|---|---|
//! | `cache` | `cache`, the `#[cashews::cache]` expansion | `hit`, `miss` |
//! | `cache_locked` | `cache_locked` (`cache(lock = true)`) | `hit`, `miss` |
//! | `soft` | `soft`, `soft_when` | `hit` within the soft TTL, `miss` past it (recomputed, or the stale value answering a failure) |
//! | `early` | `early`, `early_detached` (`background = true`) | `hit` (a refresh included), `miss` |
//! | `hit` | `hit`, `hit_detached`, `dynamic` | `hit` (a recomputation included), `miss` |
//! | `failover` | `failover`, `failover_if` | `ok` the function's result, `hit` the stored fallback, `miss` an accepted error with no fallback |
//! | `iterator` | `iterator` | `hit` replayed, `miss` passed through (counted and timed up to that decision: the items arrive as the consumer pulls them) |
//! | `bloom`, `dual_bloom` | `bloom`, `dual_bloom` | `hit` answered by the filters, `miss` the function ran |
//! | `bloom_set` | `bloom_set` | `ok` |
//! | `rate_limit`, `slice_rate_limit` | `rate_limited`, `slice_rate_limited` | `ok`, `refused`, `error` |
//! | `circuit_breaker`, `perf` | `circuit_breaker`, `perf` | `ok`, `refused`, `error` |
//! | `locked` | `locked`, `locked_always` (`#[cashews::locked]`) | `ok`, `refused` (`wait` ran out), `error` |
//! | `thunder_protection`, `invalidate` | `thunder_protection`, `invalidate` | `ok` |
//!
//! The check-only functions (`rate_limit`, `slice_rate_limit`, `bloom_add`, `bloom_contains`)
//! report their backend commands (the rate limits also their refusals), not calls; so do the
//! rate-limit attributes given an `action`, which run the check and then the function. A
//! detached refresh (`early_detached`, `hit_detached`) runs in the span of the call that
//! spawned it; its duration is not in the call's.
//!
//! ```
//! # #[cfg(feature = "metrics")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cashews::Result<()> {
//! let cache = cashews::Cache::new();
//! cache.setup_with("mem://", [cashews::observe::metrics()])?;
//! cache.set("user:1", "ada", "1h").await?;
//! // with a recorder installed (e.g. metrics-exporter-prometheus), this counts
//! // cashews_commands_total{command="get",backend="mem",prefix="",result="hit",tier="local"}
//! cache.get::<String>("user:1").await?;
//! # Ok(()) }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```
//!
//! # Tracing
//!
//! With the `tracing` feature, every backend command that reaches the backend runs inside a
//! `DEBUG` span named `cashews.command` (fields `backend`, `prefix`, `command`, `outcome`
//! recorded after the command: `hit`, `miss`, `ok` or `error`; `key` only after
//! [`trace_keys`]`(true)`), and the strategies run inside an `INFO` span named
//! `cashews.strategy` (fields `strategy`, `template`, `result`), so the command spans of a
//! cached call nest inside its strategy span. Answers of the in-process tier (a memory hit,
//! a client-side local hit) take about 100 ns and get no span. When no subscriber listens
//! the spans are never built: each costs one relaxed atomic load.
//!
//! ```
//! # #[cfg(feature = "tracing")]
//! # {
//! cashews::observe::trace_keys(false); // the default: keys stay out of spans
//! # }
//! ```

#[cfg(any(feature = "metrics", feature = "tracing"))]
mod call;
#[cfg(not(any(feature = "metrics", feature = "tracing")))]
#[path = "observe/call_off.rs"]
mod call;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "tracing")]
mod spans;

pub(crate) use call::{Call, StrategyResult, hit_now, refused};
#[cfg(feature = "redis")]
pub(crate) use call::{backend_up, health};
#[cfg(feature = "metrics")]
pub use metrics::{Metrics, metrics};
#[cfg(feature = "tracing")]
pub(crate) use spans::Traced;
#[cfg(feature = "tracing")]
pub use spans::trace_keys;
#[cfg(all(feature = "tracing", feature = "redis"))]
pub(crate) use spans::{command_span, hit_or_miss, in_span};
