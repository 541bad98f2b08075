#!/usr/bin/env bash
# HTTP load test of `pixserve serve` with wrk on loopback: requests/s for the
# VOSI availability summary (real checks: a registry query, the repository
# directory, the free disk space) and for a small VOTable query response,
# 64 connections, 10 s each.
#
#   bash bench/http.sh [PIXSERVE_BIN] [DURATION] [CONNECTIONS]
#
# Simulates and ingests a small survey in a temporary folder, serves it on a
# free port of 127.0.0.1, runs wrk, stops the server with SIGTERM.
set -euo pipefail
BIN=${1:-build/pixserve}
DURATION=${2:-10s}
CONNECTIONS=${3:-64}
THREADS=${WRK_THREADS:-2}
command -v wrk >/dev/null || { echo "bench/http: wrk is not installed (scripts/install-deps.sh installs it)"; exit 1; }

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" simulate --out "$WORK/survey" --visits 6 --detectors 4 --detector-size 256 --seed 7 >/dev/null 2>&1
"$BIN" ingest --repo "$WORK/repo" "$WORK/survey" >/dev/null 2>&1
# Access logging at info level costs a line per request; the benchmark
# measures the service, so log warnings only.
"$BIN" --log-level warn serve --repo "$WORK/repo" --host 127.0.0.1 --port 0 >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
# The "listening on" line is info level: find the port from the socket table.
PORT=""
for _ in $(seq 100); do
  PORT=$(ss -ltnpH 2>/dev/null | awk -v pid="pid=$SERVER_PID," '$0 ~ pid {n=split($4, a, ":"); print a[n]; exit}')
  [[ -n $PORT ]] && break
  sleep 0.1
done
[[ -n $PORT ]] || { echo "bench/http: server did not start"; cat "$WORK/serve.log"; exit 1; }
URL="http://127.0.0.1:$PORT"

small_query="/api/datasets/query?DPSUBTYPE=calexp&BAND=r&MAXREC=5"
bytes=$(curl -sf "$URL$small_query" | wc -c)
echo "pixserve HTTP load test: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on loopback, $(nproc) cores shared by client and server"
echo "small VOTable response: $small_query ($bytes bytes, 5 rows)"
printf '%-40s %12s %12s %12s %10s\n' endpoint "requests/s" "latency avg" "latency p99" "non-2xx"
for path in /api/availability "$small_query"; do
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$URL$path")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  avg=$(awk '$1 == "Latency" {print $2; exit}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  errors=$(awk '/Socket errors/ {print}' <<<"$out")
  printf '%-40s %12s %12s %12s %10s\n' "${path:0:40}" "$rps" "$avg" "$p99" "${bad:-0}"
  [[ -n $errors ]] && echo "  $errors"
done
