#!/usr/bin/env bash
# The README's test command: services up, every test with nextest, then the doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/services.sh start

cargo nextest run --workspace --all-features --locked --profile ci
cargo test --doc --workspace --all-features --locked
