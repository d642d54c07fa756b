#!/usr/bin/env python3
"""Before/after gate for hot-path changes: runs the same criterion benchmarks from two builds,
alternating (A, B, B, A, ...) round by round, and prints each shape's median ratio after/before
with the spread over rounds. Machine noise then lands on both builds alike.

Usage:
    # build the benches of both commits (each in its own target dir), then:
    python3 benches/gate.py <before-target>/release/deps <after-target>/release/deps [rounds]

Each directory must hold the bench binaries `memory-*`, `strategies-*` and `redis-*` (the
newest of each is used). Redis shapes need the server on 127.0.0.1:6379.
"""

import glob
import os
import re
import statistics
import subprocess
import sys

# (bench binary, criterion id): the shapes the request-path gate names.
SHAPES_ALL = [
    ("strategies", "strategy/cache_hit/struct/cashews/decorated"),
    ("memory", "mem/get_hit/struct/cashews-mem/hit"),
    ("memory", "mem/get_hit/struct/cashews-mem/get_shared"),
    ("memory", "mem/set/struct/cashews-mem/set"),
    ("strategies", "strategy/cache_miss/struct/cashews/decorated"),
    ("redis", "redis/decorated_hit/cashews/client_side"),
    ("redis", "redis/sequential/get/cashews/cache_get_typed"),
]

# `GATE_ONLY=substring` keeps the shapes whose id contains it (to re-measure a few).
SHAPES = [s for s in SHAPES_ALL if os.environ.get("GATE_ONLY", "") in s[1]]

UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
TIME = re.compile(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")


def binary(directory, name):
    found = [
        p
        for p in glob.glob(os.path.join(directory, f"{name}-*"))
        if os.access(p, os.X_OK) and not p.endswith(".d")
    ]
    if not found:
        sys.exit(f"no `{name}` bench binary in {directory}: build with `cargo bench --no-run`")
    return max(found, key=os.path.getmtime)


def run(directory, bench, shape):
    """One criterion measurement of one shape: its median estimate in ns."""
    out = subprocess.run(
        [binary(directory, bench), "--bench", "--noplot", "--warm-up-time", "1",
         "--measurement-time", "2", f"^{re.escape(shape)}$"],
        capture_output=True, text=True, check=True,
    ).stdout
    match = TIME.search(out)
    if not match:
        sys.exit(f"no time for {shape} in:\n{out}")
    return float(match.group(1)) * UNITS[match.group(2)]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before, after = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    print(f"{'shape':<48} {'before ns':>10} {'after ns':>10} {'ratio':>7}  spread (min-max of rounds)")
    for bench, shape in SHAPES:
        ratios, times_b, times_a = [], [], []
        for r in range(rounds):
            # Rotate the order each round: A B, then B A.
            order = [(before, times_b), (after, times_a)]
            if r % 2:
                order.reverse()
            for directory, times in order:
                times.append(run(directory, bench, shape))
            ratios.append(times_a[-1] / times_b[-1])
        print(
            f"{shape:<48} {statistics.median(times_b):>10.1f} {statistics.median(times_a):>10.1f} "
            f"{statistics.median(ratios):>6.3f}x  {min(ratios):.3f}-{max(ratios):.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
