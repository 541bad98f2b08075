#!/usr/bin/env bash
# `make test`: every stage of the suite in order, each through its own make
# target, stopping at the first that fails; the time of each stage is
# printed at the end either way, so a slow stage is seen at once.
# usage: test-stages.sh STAGE...
set -uo pipefail
make_cmd=${MAKE:-make}
names=() seconds=() results=()
summary() {
  echo
  echo "== make test: stage times =="
  local total=0
  for i in "${!names[@]}"; do
    printf '  %-20s %5d s  %s\n' "${names[$i]}" "${seconds[$i]}" "${results[$i]}"
    total=$((total + seconds[i]))
  done
  printf '  %-20s %5d s (%d min %02d s)\n' total "$total" $((total / 60)) $((total % 60))
}
trap summary EXIT
for stage in "$@"; do
  start=$(date +%s)
  "$make_cmd" --no-print-directory "$stage"
  status=$?
  names+=("$stage")
  seconds+=($(( $(date +%s) - start )))
  if [ "$status" -ne 0 ]; then
    results+=("FAILED (exit $status)")
    exit "$status"
  fi
  results+=("ok")
done
