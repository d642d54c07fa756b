#!/usr/bin/env bash
# The README's test command: services up, every test with nextest, then the doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/services.sh start

cargo nextest run --workspace --all-features --locked --profile ci
cargo test --doc --workspace --all-features --locked

# Every example asserts what it prints: run each one (dev profile), stopping at the first that fails.
for example in cashews/examples/*.rs; do
    name="$(basename "$example" .rs)"
    echo "--- example $name"
    cargo run -p cashews --example "$name" --locked
done
