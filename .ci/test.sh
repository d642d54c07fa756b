#!/usr/bin/env bash
# The README's test command, on a fresh machine: installs cargo-nextest when it is missing,
# starts Redis on 127.0.0.1:6379 and the Redis Cluster on 7000-7005 when they do not answer
# (.ci/services.sh), runs every test with nextest, then the doc tests, then every example, and
# at the end (failures and interrupts included) stops the servers it started, never one that
# was already running. A failing step does not skip the later ones: every step runs, and the
# script fails at the end, naming each step that failed.
set -uo pipefail
cd "$(dirname "$0")/.."

# The single Redis server's port (CASHEWS_REDIS_PORT, default 6379); the tests find it through
# CASHEWS_REDIS_URL, set to match unless given.
redis_port="${CASHEWS_REDIS_PORT:-6379}"
export CASHEWS_REDIS_URL="${CASHEWS_REDIS_URL:-redis://127.0.0.1:$redis_port/0}"
answers() { # port
    command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG
}
cluster_ok() {
    command -v redis-cli >/dev/null 2>&1 &&
        redis-cli -h 127.0.0.1 -p 7000 cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'
}

# What runs before we start anything is someone else's: leave it running.
redis_was_up=false
answers "$redis_port" && redis_was_up=true
cluster_was_up=false
cluster_ok && cluster_was_up=true
cleanup() {
    if [ "$cluster_was_up" = false ]; then
        bash .ci/services.sh stop cluster || true
    fi
    if [ "$redis_was_up" = false ]; then
        bash .ci/services.sh stop redis || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "--- cargo-nextest is missing: cargo install cargo-nextest --locked"
    cargo install cargo-nextest --locked || exit 1
fi

bash .ci/services.sh start || exit 1

failed=()
run() {
    local name="$1"
    shift
    if ! "$@"; then
        failed+=("$name")
    fi
}

run "nextest" cargo nextest run --workspace --all-features --locked --profile ci
run "doc tests" cargo test --doc --workspace --all-features --locked

# Every example asserts what it prints: run each one (dev profile).
for example in cashews/examples/*.rs; do
    name="$(basename "$example" .rs)"
    echo "--- example $name"
    run "example $name" cargo run -p cashews --example "$name" --locked
done

if [ "${#failed[@]}" -gt 0 ]; then
    printf 'FAILED steps: %s\n' "${failed[*]}"
    exit 1
fi
echo "all test steps passed"
