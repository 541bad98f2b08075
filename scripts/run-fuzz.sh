#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time and prints one summary line:
#   fuzz-NAME: N runs, C crashes
# usage: run-fuzz.sh NAME BINARY SECONDS WORK_CORPUS SEED_CORPUS [libFuzzer flags...]
# New inputs go to WORK_CORPUS; crash/leak/timeout/oom inputs to
# ARTIFACTS (beside the binary, artifacts-NAME/). Exit status 1 on a crash.
set -uo pipefail
name=$1 bin=$2 seconds=$3 work=$4 seeds=$5
shift 5
artifacts="$(dirname "$bin")/artifacts-$name"
log="$(dirname "$bin")/fuzz-$name.log"
mkdir -p "$work" "$artifacts"
before=$(find "$artifacts" -type f | wc -l)
"$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$@" "$work" "$seeds" >"$log" 2>&1
status=$?
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
[ -z "$runs" ] && runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -1)
[ -z "$runs" ] && runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
echo "fuzz-$name: ${runs:-0} runs, $crashes crashes"
if [ "$crashes" -ne 0 ]; then
  echo "fuzz-$name: see $log and $artifacts/" >&2
  tail -40 "$log" >&2
  exit 1
fi
