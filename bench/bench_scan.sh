#!/usr/bin/env bash
# Scan throughput of zllm-survey (1 and 2 ranks) beside baselines over the
# same bytes in the same run: sha256sum, xxhsum -H2 and zstd -3.  Medians of
# REPEAT runs (default 5); the machine is shared, so ratios matter more than
# absolute numbers.  Usage: bench/bench_scan.sh [SCALE] [REPEAT]
#   SCALE: a zllm mkhub scale (default medium, ~130 MB) or a hub directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
scale=${1:-medium}
repeat=${2:-5}
work=$(mktemp -d /tmp/zllm-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
case $scale in
  tiny|small|medium|bench|large)
    "$bin/zllm" mkhub --out "$work/gen" --scale "$scale" --seed 1 >/dev/null 2>&1
    hub=$work/gen/hub ;;
  *) hub=$scale ;;
esac
mapfile -t files < <(find "$hub" -type f | sort)
bytes=$(cat "${files[@]}" | wc -c)
cat "${files[@]}" >/dev/null # warm the page cache for everyone alike
mpi=(--oversubscribe); [ "$(id -u)" -ne 0 ] || mpi+=(--allow-run-as-root)

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
time_cmd() { # seconds for one run of "$@"
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}
row() { # row NAME SECONDS...
  local name=$1; shift
  local m; m=$(median "$@")
  python3 -c "print(f'{\"$name\":34s} {${bytes}/$m/1e6:10.1f} MB/s   (median of ${#@} runs, {$m:.3f} s)')"
}

echo "hub: $hub ($(printf '%s\n' "${files[@]}" | wc -l) files, $((bytes / 1000000)) MB), $(nproc) cores"
for n in 1 2; do
  rates=()
  walls=()
  for _ in $(seq "$repeat"); do
    walls+=("$(time_cmd mpirun "${mpi[@]}" -n "$n" "$bin/zllm-survey" --hub "$hub" --out "$work/out" --quiet)")
    rates+=("$(python3 -c "import json; print(json.load(open('$work/out/summary.json'))['run']['scan_bytes_per_second']/1e6)")")
  done
  printf '%-34s %10.1f MB/s   (scan phase, median of %d)\n' "zllm-survey -n $n (scan: sha256+xxh3)" "$(median "${rates[@]}")" "$repeat"
  row "zllm-survey -n $n (whole job)" "${walls[@]}"
done
for tool in "sha256sum" "xxhsum -H2" "zstd -3 -c -T1"; do
  ts=()
  for _ in $(seq "$repeat"); do
    # shellcheck disable=SC2086
    ts+=("$(time_cmd bash -c "for f in \"\$@\"; do $tool \"\$f\" >/dev/null; done" _ "${files[@]}")")
  done
  row "$tool (per file, 1 core)" "${ts[@]}"
done
