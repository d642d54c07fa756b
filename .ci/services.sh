#!/usr/bin/env bash
# The services the tests need, idempotently.
#
#   start: makes sure Redis answers on 127.0.0.1:6379 (CASHEWS_REDIS_PORT to use another port):
#          when nothing answers there, starts a `redis-server` from the installed binary
#          (daemonized, no persistence) and waits for it; then makes sure a Redis Cluster answers
#          on 127.0.0.1:7000-7005 (3 primaries, 3 replicas): if 7000 already reports
#          `cluster_state:ok` nothing is started, otherwise six `redis-server`s are started and
#          joined with `redis-cli --cluster create`, and start waits (at most CLUSTER_WAIT
#          seconds, default 30) for `cluster_state:ok` on every node.
#   stop [all|cluster|redis]: stops only the servers this script started (their pid files are
#          in the state directory), never a Redis it found running; `all` (the default) stops
#          both the cluster nodes and the single server.
#
# Without `redis-server`/`redis-cli` nothing can be started: outside CI the tests that need
# Redis print why they are skipped; with CI=true this script fails.
#
# State directory: ${CASHEWS_CLUSTER_DIR:-${TMPDIR:-/tmp}/cashews-cluster} (configs, logs, pids).
set -euo pipefail

cmd="${1:-start}"
state="${CASHEWS_CLUSTER_DIR:-${TMPDIR:-/tmp}/cashews-cluster}"
ports=(7000 7001 7002 7003 7004 7005)
single_port="${CASHEWS_REDIS_PORT:-6379}"
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
  if command -v redis-cli >/dev/null 2>&1 && answers "$single_port"; then
    echo "redis: 127.0.0.1:$single_port answers"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    if in_ci; then
      echo "redis: nothing answers on 127.0.0.1:$single_port and redis-server/redis-cli are not installed" >&2
      exit 1
    fi
    echo "redis: nothing answers on 127.0.0.1:$single_port and redis-server is not installed (tests that need it print a skip reason)"
    return 0
  fi
  mkdir -p "$state"
  rm -f "$state/redis-$single_port.pid"
  if ! redis-server --port "$single_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$state/redis-$single_port.pid" --logfile "$state/redis-$single_port.log" --dir "$state"; then
    echo "redis: redis-server did not start on port $single_port (see $state/redis-$single_port.log)" >&2
    in_ci && exit 1
    return 0
  fi
  local tries=0
  until answers "$single_port"; do
    tries=$((tries + 1))
    if [ "$tries" -gt $((wait_seconds * 10)) ]; then
      echo "redis: 127.0.0.1:$single_port does not answer (see $state/redis-$single_port.log)" >&2
      in_ci && exit 1
      return 0
    fi
    sleep 0.1
  done
  echo "redis: started a redis-server on 127.0.0.1:$single_port (no persistence; state in $state)"
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

# Stops the redis-server whose pid file this script wrote for `port`; 0 when it stopped one.
stop_port() { # port
  local pidfile="$state/redis-$1.pid"
  [ -f "$pidfile" ] || return 1
  local pid stopped=1
  pid="$(cat "$pidfile")"
  # Only a redis-server we started: the pid file is ours, and the process must still be one.
  if [ -n "$pid" ] && ps -p "$pid" -o comm= 2>/dev/null | grep -q redis-server; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    stopped=0
  fi
  rm -f "$pidfile" "$state/nodes-$1.conf"
  return "$stopped"
}

stop_cluster() {
  [ -d "$state" ] || { echo "redis cluster: nothing started here"; return 0; }
  local stopped=0
  for port in "${ports[@]}"; do
    if stop_port "$port"; then
      stopped=$((stopped + 1))
    fi
  done
  echo "redis cluster: stopped $stopped node(s) started here"
}

stop_single() {
  if [ -d "$state" ] && stop_port "$single_port"; then
    echo "redis: stopped the redis-server started here on 127.0.0.1:$single_port"
  else
    echo "redis: nothing started here on 127.0.0.1:$single_port"
  fi
}

case "$cmd" in
  start)
    start_single
    start_cluster
    ;;
  stop)
    case "${2:-all}" in
      all) stop_cluster; stop_single ;;
      cluster) stop_cluster ;;
      redis) stop_single ;;
      *) echo "usage: $0 stop [all|cluster|redis]" >&2; exit 2 ;;
    esac
    ;;
  *)
    echo "usage: $0 start | stop [all|cluster|redis]" >&2
    exit 2
    ;;
esac
