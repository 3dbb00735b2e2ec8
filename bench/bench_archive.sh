#!/usr/bin/env bash
# The archive against its baselines, in the same run, on the same bytes:
# stored bytes, reduction, ingest and restore throughput (restore includes
# the SHA-256 proof of every file) and peak RSS, for each profile:
#   zstd (zstd -3 per file), zipnn (byte grouping alone), zipllm (the
#   ZipLLM-equivalent configuration), zllm, and zllm with --threads 2.
# Medians of REPEAT runs (default 3); page cache warm; one process.
# Usage: [METHODS="zipllm zllm"] bench/bench_archive.sh SNAPSHOT_DIR|SCALE [REPEAT]
#   SNAPSHOT_DIR has hub/ and MANIFEST.tsv (its delta_base column gives the
#   families); SCALE (tiny..large) generates one with zllm mkhub.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
what=${1:?snapshot dir or mkhub scale}
repeat=${2:-3}
work=$(mktemp -d /tmp/zllm-bench-ar-XXXXXX)
trap 'rm -rf "$work"' EXIT
case $what in
  tiny|small|medium|bench|large)
    "$bin/zllm" mkhub --out "$work/gen" --scale "$what" --seed 1 >/dev/null 2>&1
    snap=$work/gen ;;
  *) snap=$what ;;
esac
hub=$snap/hub
awk -F'\t' 'NR > 1 && $11 != "-" { print $1 "\t" $11 }' "$snap/MANIFEST.tsv" | sort -u >"$work/families.tsv"
bytes=$(find "$hub" -type f -print0 | xargs -0 cat | wc -c)
find "$hub" -type f -print0 | xargs -0 cat >/dev/null

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
# runs "$@" under /usr/bin/time; prints "seconds peak_rss_kb"
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  cat "$work/time"
}

printf 'hub: %s (%d MB), families from MANIFEST delta_base, %d runs, 1 process\n' "$hub" $((bytes / 1000000)) "$repeat"
printf '%-8s %12s %9s %12s %12s %10s\n' method stored reduction "ingest MB/s" "restore MB/s" "peak RSS"
declare -A stored_of
for method in ${METHODS:-zstd zipnn zipllm zllm zllm-j2}; do
  prof=${method%-j2}
  threads=1; [ "$method" = zllm-j2 ] && threads=2
  ing=(); res=(); rss=0
  for _ in $(seq "$repeat"); do
    rm -rf "$work/ar" "$work/out"
    read -r t m < <(timed "$bin/zllm" pack --hub "$hub" --out "$work/ar" --families "$work/families.tsv" \
                      --profile "$prof" --threads "$threads")
    ing+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
    read -r t m < <(timed "$bin/zllm" restore "$work/ar" --all --out "$work/out" --threads "$threads")
    res+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  diff -r "$hub" "$work/out" >/dev/null || { echo "$method: restore differs!" >&2; exit 1; }
  st=$(( $(stat -c %s "$work/ar/packs/pack-0000.zpk") + $(stat -c %s "$work/ar/catalog.sqlite") ))
  stored_of[$method]=$st
  python3 -c "
b=$bytes; s=$st; i=$(median "${ing[@]}"); r=$(median "${res[@]}")
print(f'{\"$method\":8s} {s:12d} {100*(1-s/b):8.1f}% {b/i/1e6:12.0f} {b/r/1e6:12.0f} {$rss/1024:8.0f} MB')"
done
[ -n "${stored_of[zllm]:-}" ] && [ -n "${stored_of[zipllm]:-}" ] &&
  python3 -c "print(f'zllm / zipllm stored bytes: {${stored_of[zllm]}/${stored_of[zipllm]}:.3f}')"
