#!/usr/bin/env bash
# Requests/s of 1, 2 and 3 `pixserve serve` replicas of one repository (its
# registry on PostgreSQL) behind HAProxy, measured side by side in one run
# with wrk on loopback: a SIAv2 cone query (a registry query and a VOTable
# of ~170 rows) and the VOSI availability document (a trivial registry query
# and a disk check), and the same requests sent to one replica without the
# balancer, for HAProxy's own cost.
#
#   bash bench/replicas.sh [PIXSERVE_BIN] [DURATION] [CONNECTIONS] [CONFIG]
#
# CONFIG: a pixserve.yaml every replica serves with (e.g. to compare
# registry.read_sessions settings).
#
# Everything runs on this machine: client, balancer, replicas and database
# share its cores, so the figures show where the path stops scaling here,
# not what separate hosts would give. Simulates and ingests a small survey
# into a private PostgreSQL server (scripts/postgresql-test-server.sh) in a
# temporary folder; stops everything at the end.
set -euo pipefail
BIN=$(realpath "${1:-build/pixserve}")
DURATION=${2:-10s}
CONNECTIONS=${3:-32}
CONFIG_ARGS=()
if [ -n "${4:-}" ]; then CONFIG_ARGS=(--config "$(realpath "$4")"); fi
THREADS=${WRK_THREADS:-2}
HERE=$(cd "$(dirname "$0")/.." && pwd)
for tool in wrk haproxy psql; do
  command -v $tool >/dev/null || { echo "bench/replicas: $tool is not installed (scripts/install-deps.sh installs it)"; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  sh "$HERE/scripts/postgresql-test-server.sh" stop "$WORK/pg" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "bench/replicas: $1 did not answer"; exit 1
}

SERVER=$(sh "$HERE/scripts/postgresql-test-server.sh" start "$WORK/pg")
psql -q "$SERVER" -c "CREATE DATABASE bench_replicas"
REGISTRY=${SERVER%/*}/bench_replicas
"$BIN" simulate --out "$WORK/survey" --visits 6 --detectors 9 --detector-size 256 --seed 7 >/dev/null 2>&1
"$BIN" ingest --repo "$WORK/repo" --registry "$REGISTRY" --no-virtual "$WORK/survey" >/dev/null 2>&1

PORTS=()
for i in 0 1 2; do
  PORTS+=("$(free_port)")
  # Access logs at info level cost a line per request: warnings only.
  "$BIN" --log-level warn serve --repo "$WORK/repo" --host 127.0.0.1 --port "${PORTS[$i]}" "${CONFIG_ARGS[@]}" \
    >"$WORK/replica$i.log" 2>&1 &
  PIDS+=($!)
done
for p in "${PORTS[@]}"; do wait_for "http://127.0.0.1:$p/api/availability"; done

sia="/api/sia/query?POS=CIRCLE+53+-28+0.02&MAXREC=1000"
rows=$(curl -sf "http://127.0.0.1:${PORTS[0]}$sia" | grep -c '<TR>' || true)
echo "pixserve replicas behind HAProxy: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on loopback, $(nproc) cores shared by"
echo "wrk, HAProxy, the replicas and PostgreSQL; SIAv2 query: $sia ($rows rows)"
printf '%-28s %-22s %12s %12s %12s %8s\n' setup endpoint "requests/s" "latency avg" "latency p99" "errors"

measure() {  # setup-name base-url
  for path in "$sia" /api/availability; do
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$2$path")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    avg=$(awk '$1 == "Latency" {print $2; exit}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    name=$([[ $path == /api/sia/* ]] && echo "SIAv2 cone" || echo "VOSI availability")
    printf '%-28s %-22s %12s %12s %12s %8s\n' "$1" "$name" "$rps" "$avg" "$p99" "$(( ${bad:-0} + ${sock:-0} ))"
  done
}

measure "1 replica, no balancer" "http://127.0.0.1:${PORTS[0]}"
for n in 1 2 3; do
  port=$(free_port)
  {
    printf 'global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 60s\n'
    printf '  timeout server 60s\n  retries 3\n  option redispatch 1\n'
    printf 'frontend pixserve\n  bind 127.0.0.1:%s\n  default_backend replicas\n' "$port"
    printf 'backend replicas\n  balance leastconn\n  option httpchk GET /api/sia/availability\n'
    printf '  http-check expect string <avail:available>true</avail:available>\n'
    for i in $(seq 0 $((n - 1))); do printf '  server r%s 127.0.0.1:%s check inter 1s\n' "$i" "${PORTS[$i]}"; done
  } >"$WORK/haproxy$n.cfg"
  haproxy -db -f "$WORK/haproxy$n.cfg" >/dev/null 2>&1 &
  hp=$!
  wait_for "http://127.0.0.1:$port/api/availability"
  measure "$n replica(s) + HAProxy" "http://127.0.0.1:$port"
  kill -TERM $hp
  wait $hp 2>/dev/null || true
done
