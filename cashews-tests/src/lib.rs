//! The integration tests of `cashews` (`tests/it/`): one test binary, `it`.
//!
//! This crate has no library code. It exists so that the tests' heavy dependencies (TLS
//! certificate generation, property testing, a tracing subscriber) stay out of the
//! `cashews` package's dev-dependencies, which every `cargo run --example` builds. Run the
//! tests with `cargo nextest run -p cashews-tests --all-features` (or `cargo test`); each
//! feature here turns on the `cashews` feature of the same name.
