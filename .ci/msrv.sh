#!/usr/bin/env bash
# The MSRV checks that need no other toolchain (README, "MSRV"):
#   1. every workspace crate's dependencies, as Cargo.lock pins them with every feature on
#      (normal and build dependencies, all the way down, plus the crate's own dev-dependencies),
#      declare a `rust-version` no higher than the crate's own;
#   2. when the MSRV toolchain itself is installed (`rustup toolchain list`), `cargo check` of
#      the published crates with it; otherwise a line says it was not run.
# Clippy's `incompatible_msrv` (std APIs newer than `rust-version`) runs, denied, in lint.sh.
# Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

host="$(rustc -vV | sed -n 's/^host: //p')"

# Python 3 (on every machine of ours) walks the resolve graph; jq is not everywhere.
violations="$(cargo metadata --format-version 1 --locked --all-features --filter-platform "$host" | python3 -c '
import json, sys

def ver(v):
    parts = [int(x) for x in (v or "0").split(".")] + [0, 0, 0]
    return parts[:3]

meta = json.load(sys.stdin)
pkg = {p["id"]: p for p in meta["packages"]}
node = {n["id"]: n for n in meta["resolve"]["nodes"]}

def deps(pid, kinds):
    return [d["pkg"] for d in node[pid]["deps"] if any(k["kind"] in kinds for k in d["dep_kinds"])]

out = set()
for member in meta["workspace_members"]:
    m = pkg[member]
    if m.get("rust_version") is None:
        continue
    seen, todo = set(), deps(member, (None, "build", "dev"))
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo += deps(i, (None, "build"))
    for i in seen:
        p = pkg[i]
        if ver(p.get("rust_version")) > ver(m["rust_version"]):
            out.add("%s (rust-version %s) builds %s %s, which needs Rust %s" % (m["name"], m["rust_version"], p["name"], p["version"], p["rust_version"]))
print("\n".join(sorted(out)))
')"
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
