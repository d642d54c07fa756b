#!/usr/bin/env bash
# fmt, clippy on every target and feature, docs with warnings denied, per-feature checks.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- cargo fmt --check"
cargo fmt --all -- --check

echo "--- cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

echo "--- each feature alone, and none"
cargo check -p cashews --no-default-features --locked
for feature in compression-gzip compression-zstd macros redis redis-tls disk tower axum full; do
  cargo check -p cashews --no-default-features --features "$feature" --locked
done

echo "--- cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked
