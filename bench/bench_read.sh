#!/usr/bin/env bash
# The read path against zstd, in one run, on the same files: for each hub,
# `zllm restore --all` with 1 and 2 decode threads (each beside its hash
# thread) against `zstd -d -T1` writing the same files back from per-file
# zstd -3 copies, one process per file (what a zstd-compressed mirror pays).
# Every restore is compared byte for byte with the hub.  Then where the time
# went: `zllm restore --stats` per stage (decode = planes + merge with the
# XOR fused in, write, SHA-256) in thread-seconds and MB/s per thread, so
# the next bottleneck shows.  Medians of REPEAT runs, page cache warm, the
# runs of one hub alternating (zllm -j1, zllm -j2, zstd, ...).
# Usage: bench/bench_read.sh [REPEAT] [HUB_DIR...]
#   default hubs: ../shared/corpus/hub (when present), `zllm mkhub --scale
#   bench --seed 3 --layout family`, bench_serve.sh's files (the 16 largest
#   files of distinct bytes of that hub and the mixed one) and the mixed
#   layout itself (generated in /tmp, or taken from GEN_DIR/family/hub and
#   GEN_DIR/mixed/hub when they exist).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
repeat=${1:-3}
shift || true
work=$(mktemp -d /tmp/zllm-bench-read-XXXXXX)
trap 'rm -rf "$work"' EXIT
gen=${GEN_DIR:-$work/gen}

# bench_serve.sh's files: the FILES (16) largest files of distinct bytes of
# the two generated hubs, hard-linked into a hub of their own
source "$(dirname "$0")/distinct_files.sh"
serve_files_hub() {
  local out=$1
  distinct_files "$gen/family/hub" "$gen/mixed/hub" | cut -d' ' -f2- >"$work/distinct"
  head -n "${FILES:-16}" "$work/distinct" | while read -r root rel; do
    mkdir -p "$out/$(dirname "$rel")"
    ln "$root/$rel" "$out/$rel" 2>/dev/null || cp "$root/$rel" "$out/$rel"
  done
}

hubs=("$@")
if [ ${#hubs[@]} -eq 0 ]; then
  [ -d "$here/../shared/corpus/hub" ] && hubs+=("$here/../shared/corpus/hub")
  for layout in family mixed; do
    if [ ! -d "$gen/$layout/hub" ]; then
      extra=(); [ "$layout" = family ] && extra=(--layout family)
      "$bin/zllm" mkhub --out "$gen/$layout" --scale bench --seed 3 "${extra[@]}" >/dev/null 2>&1
    fi
  done
  serve_files_hub "$work/serve-files/hub"
  hubs+=("$gen/family/hub" "$work/serve-files/hub" "$gen/mixed/hub")
fi

median() { python3 -c 'import statistics,sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
now() { date +%s.%N; }
secs() { python3 -c "print('%.3f' % ($2 - $1))"; }

zstd_restore() { # the zstd CLI writing every file back, one process per file
  rm -rf "$work/d"
  (cd "$work/z" && find . -type f -name '*.zst' | while read -r f; do
     mkdir -p "$work/d/$(dirname "$f")"; zstd -q -d -T1 -f "$f" -o "$work/d/${f%.zst}"; done)
}

printf '%-28s %8s %9s %9s %9s %11s %11s\n' hub MB "zstd -d" "zllm -j1" "zllm -j2" "-j1 / zstd" "-j2 / zstd"
for hub in "${hubs[@]}"; do
  name=$(basename "$(dirname "$hub")")
  rm -rf "$work/ar" "$work/z"
  "$bin/zllm" pack --hub "$hub" --out "$work/ar" >/dev/null 2>&1
  (cd "$hub" && find . -type f | while read -r f; do
     mkdir -p "$work/z/$(dirname "$f")"; zstd -q -3 -T1 -f "$f" -o "$work/z/$f.zst"; done)
  bytes=$(find "$hub" -type f -print0 | xargs -0 cat | wc -c)
  cat "$work/ar/catalog.sqlite" "$work/ar"/packs/* >/dev/null
  find "$work/z" -type f -print0 | xargs -0 cat >/dev/null
  j1=(); j2=(); zd=()
  for _ in $(seq "$repeat"); do
    for t in 1 2; do
      rm -rf "$work/out"
      t0=$(now)
      "$bin/zllm" restore "$work/ar" --all --out "$work/out" --threads "$t" --stats 2>"$work/stats-$t"
      t1=$(now)
      if [ "$t" = 1 ]; then j1+=("$(secs "$t0" "$t1")"); else j2+=("$(secs "$t0" "$t1")"); fi
    done
    diff -r "$hub" "$work/out" >/dev/null || { echo "bench_read: $name: restore differs!" >&2; exit 1; }
    t0=$(now); zstd_restore; t1=$(now)
    zd+=("$(secs "$t0" "$t1")")
  done
  a=$(median "${j1[@]}") b=$(median "${j2[@]}") z=$(median "${zd[@]}")
  python3 -c "
b=$bytes; a=$a; c=$b; z=$z
print(f'{\"$name\":28s} {b/1e6:8.0f} {b/z/1e6:6.0f} MB/s {b/a/1e6:5.0f} MB/s {b/c/1e6:5.0f} MB/s {a/z:10.2f}x {c/z:10.2f}x')"
  for t in 1 2; do sed "s/^zllm restore: /    -j$t: /" "$work/stats-$t"; done
done
echo "(MB/s of the whole process over the hub's bytes; ratios are times: under 1 is faster than zstd)"
