#!/usr/bin/env bash
# fmt, clippy on every target and feature, the MSRV checks, docs with warnings denied,
# per-feature checks.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- cargo fmt --check"
cargo fmt --all -- --check

echo "--- cargo clippy -D warnings (incompatible_msrv: no std API newer than rust-version)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings -D clippy::incompatible_msrv

echo "--- MSRV: dependencies allow rust-version (and the MSRV toolchain, when installed)"
bash .ci/msrv.sh

echo "--- each feature alone, and none"
cargo check -p cashews --no-default-features --locked
for feature in compression-gzip compression-zstd macros redis redis-tls disk tower axum full; do
  cargo check -p cashews --no-default-features --features "$feature" --locked
done

echo "--- cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked
