#!/usr/bin/env bash
# `make test`: every stage of the suite in order, each through its own make
# target, stopping at the first that fails; the time of each stage is
# printed at the end either way, so a slow stage is seen at once: wall time
# and the CPU time (user + system) of all its processes, which is the figure
# to compare on a machine shared with other work.
#
# STAGE+STAGE... runs those stages at the same time (a group): stages that
# leave a core idle much of their time (tests waiting on servers, a
# browser, the fuzzers' second round with one fuzzer left) share the
# machine with another instead of following it. The first stage of a group
# prints to the terminal as it goes; the others' output is kept and printed
# when the group ends, so that no two stages' lines interleave. A group
# fails if any of its stages fails; all of them run to their end.
# usage: test-stages.sh STAGE[+STAGE...]...
set -uo pipefail
make_cmd=${MAKE:-make}
names=() seconds=() cpu=() results=()
run_start=$(date +%s)
summary() {
  echo
  echo "== make test: stage times (wall, CPU user+sys) =="
  local total_cpu=0 total=$(($(date +%s) - run_start))
  for i in "${!names[@]}"; do
    printf '  %-26s %5d s  %6d s CPU  %s\n' "${names[$i]}" "${seconds[$i]}" "${cpu[$i]}" "${results[$i]}"
    total_cpu=$((total_cpu + cpu[i]))
  done
  # Stages of a group overlap: the total is the wall time of the whole run.
  printf '  %-26s %5d s  %6d s CPU  (%d min %02d s)\n' total "$total" "$total_cpu" $((total / 60)) $((total % 60))
}
work=$(mktemp -d)
trap 'rm -rf "$work"; summary' EXIT
# CPU seconds (user + system) of a shell's finished children, from the
# second line of bash's `times` ("1m2.345s 0m6.789s") saved in file $1.
times_cpu() {
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%d", t }' "$1"
}
# Runs one stage in a subshell of its own, so that `times` there counts
# that stage's processes only; writes "STATUS WALL CPU" to $work/STAGE.
run_stage() {
  local stage=$1 start
  start=$(date +%s)
  "$make_cmd" --no-print-directory "$stage"
  local status=$?
  local wall=$(($(date +%s) - start))
  times >"$work/$stage.times"
  echo "$status $wall $(times_cpu "$work/$stage.times")" >"$work/$stage"
}
for group in "$@"; do
  IFS=+ read -r -a stages <<<"$group"
  pids=()
  for i in "${!stages[@]}"; do
    if ((i == 0)); then
      (run_stage "${stages[0]}") &
    else
      (run_stage "${stages[$i]}") >"$work/${stages[$i]}.log" 2>&1 &
    fi
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  failed=0
  for i in "${!stages[@]}"; do
    stage=${stages[$i]}
    if ((i > 0)); then
      echo "== output of $stage (ran alongside ${stages[0]}) =="
      cat "$work/$stage.log"
    fi
    [ -f "$work/$stage" ] || echo "1 0 0" >"$work/$stage"  # its shell did not get to the end
    read -r status wall stage_cpu <"$work/$stage"
    names+=("$stage")
    seconds+=("$wall")
    cpu+=("$stage_cpu")
    if [ "$status" -ne 0 ]; then
      results+=("FAILED (exit $status)")
      failed=$status
    else
      results+=("ok")
    fi
    if ((${#stages[@]} > 1)); then
      results[-1]+=" (group: $group)"
    fi
  done
  if [ "$failed" -ne 0 ]; then
    exit "$failed"
  fi
done
