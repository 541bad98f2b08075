#!/usr/bin/env bash
# `make test`: every stage of the suite in order, each through its own make
# target, stopping at the first that fails; the time of each stage is
# printed at the end either way, so a slow stage is seen at once: wall time
# and the CPU time (user + system) of all its processes, which is the figure
# to compare on a machine shared with other work.
# usage: test-stages.sh STAGE...
set -uo pipefail
make_cmd=${MAKE:-make}
names=() seconds=() cpu=() results=()
summary() {
  echo
  echo "== make test: stage times (wall, CPU user+sys) =="
  local total=0 total_cpu=0
  for i in "${!names[@]}"; do
    printf '  %-20s %5d s  %6d s CPU  %s\n' "${names[$i]}" "${seconds[$i]}" "${cpu[$i]}" "${results[$i]}"
    total=$((total + seconds[i]))
    total_cpu=$((total_cpu + cpu[i]))
  done
  printf '  %-20s %5d s  %6d s CPU  (%d min %02d s)\n' total "$total" "$total_cpu" $((total / 60)) $((total % 60))
}
times_file=$(mktemp)
trap 'rm -f "$times_file" "$times_file".*; summary' EXIT
# CPU seconds (user + system) of this shell's finished children so far, from
# the second line of bash's `times` ("1m2.345s 0m6.789s"); `times` runs in
# this shell (a pipe or $(...) would ask a subshell).
children_cpu() {
  times >"$times_file"
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t }' "$times_file"
}
for stage in "$@"; do
  start=$(date +%s)
  children_cpu >"$times_file.start"
  "$make_cmd" --no-print-directory "$stage"
  status=$?
  names+=("$stage")
  seconds+=($(( $(date +%s) - start )))
  children_cpu >"$times_file.end"
  cpu+=($(( $(cat "$times_file.end") - $(cat "$times_file.start") )))
  if [ "$status" -ne 0 ]; then
    results+=("FAILED (exit $status)")
    exit "$status"
  fi
  results+=("ok")
done
