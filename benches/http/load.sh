#!/usr/bin/env bash
# The example service under load, from a second process: cached against uncached reads of one
# product, interleaved round by round (order flipped every round), and 1,000 concurrent cold
# requests counted at the database.
#
#   bash benches/http/load.sh [CASHEWS_URL] [ROUNDS]      e.g. 'redis://127.0.0.1:6379/9?client_side=true' 6
#
# Needs wrk (apt-get install wrk) and python3. Builds the example in release first. The server
# and wrk share the machine: compare the two routes within one run, not figures across machines.
set -euo pipefail
cd "$(dirname "$0")/../.."
URL="${1:-mem://}"
ROUNDS="${2:-6}"
PORT="${PORT:-3100}"
command -v wrk >/dev/null || { echo "load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked -p cashews-tests --example axum_app --features axum,macros,metrics,redis
BIN="${CARGO_TARGET_DIR:-target}/release/examples/axum_app"
CASHEWS_URL="$URL" CASHEWS_ADDR="127.0.0.1:$PORT" DB_LATENCY_MS=2 "$BIN" &
APP=$!
trap 'kill $APP 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/stats" && break; sleep 0.1; done
python3 benches/http/cold_requests.py "$PORT" /products/77 1000
curl -s -o /dev/null "http://127.0.0.1:$PORT/products/1"   # warm the cached route
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="cached uncached"; else order="uncached cached"; fi
    for kind in $order; do
        if [ "$kind" = cached ]; then path=/products/1; else path=/products/1/uncached; fi
        out="$(wrk -t2 -c64 -d8s --latency "http://127.0.0.1:$PORT$path")"
        rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
        p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
        p99="$(echo "$out" | awk '$1=="99%" {print $2}')"
        echo "round $r $kind rps=$rps p50=$p50 p99=$p99"
    done
done
