#!/usr/bin/env bash
# Clustering cost on synthetic sketches of one architecture (families of 10,
# 256 samples each): candidates, comparisons and families for 10k, 100k and
# 1M sketches on 1 and 2 ranks, median of REPEAT runs (default 3).
# Usage: bench/bench_cluster.sh [BUILD_DIR]    env: SIZES, RANKS, REPEAT
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$src/build}/bin
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
repeat=${REPEAT:-3}
printf '%-10s %-6s %-14s %-16s %s\n' sketches ranks "pairs/model" "cluster s (med)" "all runs"
for m in ${SIZES:-10000 100000 1000000}; do
  for r in ${RANKS:-1 2}; do
    times=()
    for ((i = 0; i < repeat; i++)); do
      line=$(mpiexec --oversubscribe -n "$r" "$bin/zllm-bench-cluster" --models "$m" --check)
      times+=("$(sed -E 's/.*cluster ([0-9.]+) s.*/\1/' <<<"$line")")
      ppm=$(sed -E 's/.*\(([0-9.]+) per model\).*/\1/' <<<"$line")
    done
    med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%-10s %-6s %-14s %-16s %s\n' "$m" "$r" "$ppm" "$med" "${times[*]}"
  done
done
