#!/usr/bin/env bash
# The services the tests need, idempotently.
#
#   start: checks Redis on 127.0.0.1:6379 (provided by the machine; CI fails loudly when it is
#          missing), then makes sure a Redis Cluster answers on 127.0.0.1:7000-7005 (3 primaries,
#          3 replicas): if 7000 already reports `cluster_state:ok` nothing is started, otherwise
#          six `redis-server`s are started from the installed binary and joined with
#          `redis-cli --cluster create`, and start waits (at most CLUSTER_WAIT seconds, default 30)
#          for `cluster_state:ok` on every node.
#   stop:  stops only the cluster nodes this script started (their pid files are in the state
#          directory), never a Redis it found running.
#
# State directory: ${CASHEWS_CLUSTER_DIR:-${TMPDIR:-/tmp}/cashews-cluster} (node configs, logs, pids).
set -euo pipefail

cmd="${1:-start}"
state="${CASHEWS_CLUSTER_DIR:-${TMPDIR:-/tmp}/cashews-cluster}"
ports=(7000 7001 7002 7003 7004 7005)
wait_seconds="${CLUSTER_WAIT:-30}"

in_ci() {
  case "${CI:-}" in
    "" | 0 | false | FALSE | False) return 1 ;;
    *) return 0 ;;
  esac
}

# Outside CI a missing tool or a cluster that will not form is reported and the tests that need
# it print their skip reason; in CI it fails the run.
give_up() {
  echo "redis cluster: $*" >&2
  if in_ci; then
    exit 1
  fi
  echo "redis cluster: not available (tests that need it print a skip reason)"
  exit 0
}

cluster_ok() { # port
  redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'
}

answers() { # port
  redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG
}

start_single() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "redis: 127.0.0.1:6379 answers"
  elif in_ci; then
    echo "redis: nothing answers on 127.0.0.1:6379; start it with:" >&2
    echo "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no" >&2
    exit 1
  else
    echo "redis: not reachable on 127.0.0.1:6379 (tests that need it print a skip reason)"
  fi
}

start_cluster() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    give_up "redis-server or redis-cli is not installed"
  fi
  if cluster_ok 7000; then
    echo "redis cluster: 127.0.0.1:7000 reports cluster_state:ok (nothing started)"
    return 0
  fi
  mkdir -p "$state"
  local started=0
  for port in "${ports[@]}"; do
    if answers "$port"; then
      # Ours from an earlier, unfinished start (or someone else's): reuse it, do not own it.
      echo "redis cluster: 127.0.0.1:$port already answers"
      continue
    fi
    # A fresh node: an old config would make it remember a cluster that no longer exists.
    rm -f "$state/nodes-$port.conf" "$state/redis-$port.pid"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$state/nodes-$port.conf" --cluster-node-timeout 5000 \
      --save "" --appendonly no --daemonize yes \
      --pidfile "$state/redis-$port.pid" --logfile "$state/redis-$port.log" --dir "$state" \
      || give_up "redis-server did not start on port $port (see $state/redis-$port.log)"
    started=$((started + 1))
  done
  for port in "${ports[@]}"; do
    local tries=0
    until answers "$port"; do
      tries=$((tries + 1))
      [ "$tries" -le $((wait_seconds * 10)) ] || give_up "node 127.0.0.1:$port does not answer"
      sleep 0.1
    done
  done
  # Join the nodes unless they already know each other (a start interrupted after create).
  local known
  known="$(redis-cli -h 127.0.0.1 -p 7000 cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')"
  if [ "${known:-1}" -lt "${#ports[@]}" ]; then
    local addresses=()
    for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$state/create.log" 2>&1 \
      || { cat "$state/create.log" >&2; give_up "redis-cli --cluster create failed"; }
  fi
  local deadline=$((SECONDS + wait_seconds))
  for port in "${ports[@]}"; do
    until cluster_ok "$port"; do
      [ "$SECONDS" -lt "$deadline" ] || give_up "127.0.0.1:$port is not cluster_state:ok after ${wait_seconds}s"
      sleep 0.2
    done
  done
  # cluster_state:ok comes before the replicas are attached; wait for them too, so the topology
  # the tests see (3 primaries, 3 replicas) no longer moves.
  until [ "$(redis-cli -h 127.0.0.1 -p 7000 cluster nodes | grep -cE '[ ,]slave ')" -ge 3 ]; do
    [ "$SECONDS" -lt "$deadline" ] || give_up "the replicas did not attach within ${wait_seconds}s"
    sleep 0.2
  done
  echo "redis cluster: 127.0.0.1:7000-7005 cluster_state:ok ($started nodes started here; state in $state)"
}

stop_cluster() {
  [ -d "$state" ] || { echo "redis cluster: nothing started here"; return 0; }
  local stopped=0
  for port in "${ports[@]}"; do
    local pidfile="$state/redis-$port.pid"
    [ -f "$pidfile" ] || continue
    local pid
    pid="$(cat "$pidfile")"
    # Only a redis-server we started: the pid file is ours, and the process must still be one.
    if [ -n "$pid" ] && ps -p "$pid" -o comm= 2>/dev/null | grep -q redis-server; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      stopped=$((stopped + 1))
    fi
    rm -f "$pidfile" "$state/nodes-$port.conf"
  done
  echo "redis cluster: stopped $stopped node(s) started here"
}

case "$cmd" in
  start)
    start_single
    start_cluster
    ;;
  stop)
    stop_cluster
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
