#!/usr/bin/env bash
# The README's test command: services up, every test with nextest, then the doc tests, then
# every example. A failing step does not skip the later ones: every step runs, and the script
# fails at the end, naming each step that failed.
set -uo pipefail
cd "$(dirname "$0")/.."

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
