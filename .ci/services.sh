#!/usr/bin/env bash
# Idempotent: checks the services the tests need. Redis on 127.0.0.1:6379 is provided by the
# machine; CI fails loudly when it is missing. (The Redis cluster on 7000-7005 arrives with the
# Redis backend.)
set -euo pipefail

cmd="${1:-start}"
case "$cmd" in
  start)
    if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
      echo "redis: 127.0.0.1:6379 answers"
    elif [ -n "${CI:-}" ]; then
      echo "redis: nothing answers on 127.0.0.1:6379; start it with:" >&2
      echo "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no" >&2
      exit 1
    else
      echo "redis: not reachable on 127.0.0.1:6379 (tests that need it print a skip reason)"
    fi
    ;;
  stop)
    : # nothing started here yet
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
