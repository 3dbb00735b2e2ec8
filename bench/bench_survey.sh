#!/usr/bin/env bash
# zllm-survey scaling from 1 to 2 ranks: medians of REPEAT runs of each phase
# (from summary.json) and of the whole job, on a hub (default: generate the
# 3.26 GB `bench` hub with zllm mkhub).  Packing is a single writer for now,
# so PACK=1 adds it to every run; by default --no-pack.
# Usage: bench/bench_survey.sh [HUB_DIR] [BUILD_DIR]    env: RANKS, REPEAT, PACK
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${2:-$src/build}/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hub=${1:-}
if [ -z "$hub" ]; then
  "$bin/zllm" mkhub --out "$work/gen" --scale bench --seed 1 >/dev/null 2>&1
  hub=$work/gen/hub
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bytes=$(du -sb "$hub" | cut -f1)
cat "$hub"/*/*/* >/dev/null 2>&1 || true # page cache warm
printf 'hub %s, %d MB; medians of %d runs\n' "$hub" $((bytes / 1000000)) "${REPEAT:-3}"
printf '%-6s %8s %8s %8s %8s %8s %10s\n' ranks scan cluster stats total "MB/s" "speed-up"
base=""
for n in ${RANKS:-1 2}; do
  rows=()
  for ((i = 0; i < ${REPEAT:-3}; i++)); do
    rm -rf "$work/out"
    t0=$(date +%s.%N)
    mpiexec --oversubscribe -n "$n" "$bin/zllm-survey" --hub "$hub" --out "$work/out" --quiet \
      $([ "${PACK:-0}" = 1 ] || echo --no-pack) 2>/dev/null
    t1=$(date +%s.%N)
    rows+=("$(python3 -c "
import json; s = json.load(open('$work/out/summary.json'))['run']['seconds']
print(s['scan'], s['cluster'], $t1 - $t0)")")
  done
  read -r scan cluster total < <(printf '%s\n' "${rows[@]}" | sort -k3 -n | sed -n "$(((${#rows[@]} + 1) / 2))p")
  stats=$(python3 -c "print(round($total - $scan - $cluster, 2))")
  base=${base:-$total}
  printf '%-6s %8.2f %8.2f %8.2f %8.2f %8.0f %10.2f\n' "$n" "$scan" "$cluster" "$stats" "$total" \
    "$(python3 -c "print($bytes / 1e6 / $total)")" "$(python3 -c "print($base / $total)")"
done
echo "(stats = whole job minus scan and cluster: walk, report, stats.h5 and mpirun start-up)"
