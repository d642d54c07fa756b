#!/usr/bin/env bash
# The MSRV checks that need no other toolchain (README, "MSRV"):
#   1. every workspace crate's dependencies, as Cargo.lock pins them with every feature on
#      (normal and build dependencies, all the way down, plus the crate's own dev-dependencies),
#      declare a `rust-version` no higher than the crate's own;
#   2. when the MSRV toolchain itself is installed (`rustup toolchain list`), `cargo check` of
#      the published crates with it; otherwise a line says it was not run.
# Clippy's `incompatible_msrv` (std APIs newer than `rust-version`) runs, denied, in lint.sh.
# Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v jq >/dev/null 2>&1 || { echo "msrv: jq is not installed (apt-get install jq)" >&2; exit 1; }
host="$(rustc -vV | sed -n 's/^host: //p')"

violations="$(cargo metadata --format-version 1 --locked --all-features --filter-platform "$host" | jq -r '
def ver: if . == null then [0, 0, 0] else split(".") | map(tonumber) | . + [0, 0, 0] | .[0:3] end;
(.packages | map({key: .id, value: .}) | from_entries) as $pkg
| (.resolve.nodes | map({key: .id, value: .}) | from_entries) as $node
| def deps($id; $kinds):
    [$node[$id].deps[] | select(any(.dep_kinds[]; .kind as $k | $kinds | index([$k]))) | .pkg];
  .workspace_members[] as $member
| $pkg[$member] as $m
| select($m.rust_version != null)
| { seen: {}, todo: deps($member; [null, "build", "dev"]) }
| until(.todo | length == 0;
    .todo[0] as $i
    | .todo |= .[1:]
    | if .seen[$i] then . else .seen[$i] = true | .todo += deps($i; [null, "build"]) end)
| .seen | keys[] | $pkg[.]
| select((.rust_version | ver) > ($m.rust_version | ver))
| "\($m.name) (rust-version \($m.rust_version)) builds \(.name) \(.version), which needs Rust \(.rust_version)"
' | sort -u)"
if [ -n "$violations" ]; then
    echo "msrv: dependencies newer than the crates that build them:" >&2
    echo "$violations" >&2
    echo "msrv: raise the crate's rust-version (README, MSRV) or keep the older dependency" >&2
    echo "      (cargo update -p NAME --precise VERSION)" >&2
    exit 1
fi
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
echo "msrv: every dependency in Cargo.lock allows its crate's rust-version (workspace: $msrv)"

# A toolchain named 1.89 or 1.89.0 (never installed from here: only an installed one is used).
toolchain="$(rustup toolchain list 2>/dev/null | sed -n "s/^\($msrv\(\.0\)\{0,1\}\)-.*/\1/p" | head -1)"
if [ -n "$toolchain" ]; then
    echo "msrv: cargo +$toolchain check of the published crates"
    cargo "+$toolchain" check -p cashews -p cashews-macros -p cashews-syntax --all-features --locked
else
    echo "msrv: toolchain $msrv is not installed: the code is not compiled with it here (clippy's"
    echo "      incompatible_msrv in lint.sh checks the std APIs it uses against $msrv)"
fi
