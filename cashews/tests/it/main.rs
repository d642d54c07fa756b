//! The one integration test binary of `cashews`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod cache;
mod codec;
mod config;
mod conformance;
#[cfg(feature = "redis")]
mod conformance_redis;
mod context;
mod detect;
mod keys;
mod macros;
mod macros_options;
mod macros_strategies;
mod shared;
mod spec_strategies;
mod strategies_bloom_perf;
mod strategies_caching;
mod strategies_iterator;
mod strategies_locking;
mod strategies_refusal;
mod support;
mod tags;
mod ui;
