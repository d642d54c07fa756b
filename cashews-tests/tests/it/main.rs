//! The one integration test binary of `cashews`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[cfg(all(feature = "axum", feature = "macros"))]
mod axum_handlers;
mod cache;
mod coalesce;
mod codec;
mod config;
mod config_secrets;
mod config_validate;
mod conformance;
#[cfg(feature = "disk")]
mod conformance_disk;
#[cfg(feature = "redis")]
mod conformance_redis;
#[cfg(feature = "redis")]
mod conformance_redis_client_side;
#[cfg(feature = "redis")]
mod conformance_redis_cluster;
mod context;
mod detect;
#[cfg(feature = "disk")]
mod disk_budget;
#[cfg(feature = "disk")]
mod disk_faults;
#[cfg(feature = "disk")]
mod disk_mounts;
#[cfg(feature = "disk")]
mod disk_processes;
#[cfg(feature = "disk")]
mod disk_setup;
mod fuzz_corpus;
#[cfg(feature = "axum")]
mod http_cache;
#[cfg(all(feature = "axum", feature = "macros"))]
mod http_limits;
mod keys;
mod keys_hand_vs_macro;
mod lifecycle;
mod macros;
mod macros_background;
mod macros_options;
mod macros_strategies;
mod memory_budget;
mod middleware;
mod model;
#[cfg(all(feature = "metrics", feature = "redis"))]
mod observe_metrics;
#[cfg(all(feature = "tracing", feature = "redis"))]
mod observe_tracing;
#[cfg(feature = "macros")]
mod recipes;
#[cfg(feature = "redis")]
mod redis_client_side;
#[cfg(all(feature = "redis", feature = "macros"))]
mod redis_distributed;
#[cfg(all(feature = "redis", feature = "macros"))]
mod redis_faults;
#[cfg(feature = "redis")]
mod redis_runtimes;
#[cfg(feature = "redis-tls")]
mod redis_tls;
#[cfg(feature = "redis")]
mod redis_transaction;
#[cfg(feature = "redis")]
mod redis_value_size;
mod shared;
mod spec_strategies;
mod strategies_bloom_perf;
mod strategies_caching;
mod strategies_half_open;
mod strategies_iterator;
mod strategies_locking;
mod strategies_refusal;
mod strategies_stack;
mod strategy_options;
mod support;
mod tags;
mod transaction;
mod transaction_scope;
mod tx_isolation;
