#!/usr/bin/env bash
# The archive against its baselines, in the same run, on the same bytes:
# stored bytes, reduction, ingest and restore throughput (restore includes
# the SHA-256 proof of every file) and peak RSS, for each profile:
#   zstd (zstd -3 per file), zipnn (byte grouping alone), zipllm (the
#   ZipLLM-equivalent configuration), zllm, zllm with --threads 2, and
#   zllm-f1 (archive format 1: the planes coded with zstd, as before the
#   plane coder).
# Then the zstd CLI on the same files, one process per file (`zstd -3 -T1`,
# then `zstd -d -T1` writing them back), and zllm's whole-process pack and
# restore times as ratios of those (the plane-coder issue's speed targets).
# With a MANIFEST.tsv and python3-numpy/-xxhash/-zstandard, also
# ../shared/bench/refpack.py's zipllm_ref (ZipLLM's published pipeline given
# the true bases) and zllm's stored bytes as a ratio of it.
# With .pyenv-bench/zipnn (bench/zipnn_env.sh), ZipNN itself on the same files
# (bench/zipnn_real.py): per tensor as its documentation does, and its delta
# mode against the base's file.
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
printf '%-15s %12s %9s %12s %12s %10s\n' method stored reduction "ingest MB/s" "restore MB/s" "peak RSS"
declare -A stored_of
declare -A ingest_s restore_s
for method in ${METHODS:-zstd zipnn zipllm zllm zllm-j2 zllm-f1}; do
  prof=${method%-j2}; prof=${prof%-f1}
  threads=1; [ "$method" = zllm-j2 ] && threads=2
  format=2; [ "$method" = zllm-f1 ] && format=1
  [ "$prof" = zllm ] || format=2
  ing=(); res=(); rss=0
  for _ in $(seq "$repeat"); do
    rm -rf "$work/ar" "$work/out"
    read -r t m < <(timed "$bin/zllm" pack --hub "$hub" --out "$work/ar" --families "$work/families.tsv" \
                      --profile "$prof" --threads "$threads" --format "$format")
    ing+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
    # pack drops what it wrote from the page cache (a packer streams far more than it reads back):
    # read the archive once so restore, like the zstd CLI's decompression below, starts warm
    cat "$work/ar/catalog.sqlite" "$work/ar"/packs/* >/dev/null
    read -r t m < <(timed "$bin/zllm" restore "$work/ar" --all --out "$work/out" --threads "$threads")
    res+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  diff -r "$hub" "$work/out" >/dev/null || { echo "$method: restore differs!" >&2; exit 1; }
  st=$(( $(stat -c %s "$work/ar/packs/pack-0000.zpk") + $(stat -c %s "$work/ar/catalog.sqlite") ))
  stored_of[$method]=$st
  ingest_s[$method]=$(median "${ing[@]}"); restore_s[$method]=$(median "${res[@]}")
  python3 -c "
b=$bytes; s=$st; i=$(median "${ing[@]}"); r=$(median "${res[@]}")
print(f'{\"$method\":15s} {s:12d} {100*(1-s/b):8.1f}% {b/i/1e6:12.0f} {b/r/1e6:12.0f} {$rss/1024:8.0f} MB')"
done
# ZipNN itself (zipnn from PyPI, bench/zipnn_env.sh makes its environment),
# as its documentation compresses a model, on the same files: bench/zipnn_real.py
# (one thread; its MB/s count ZipNN's compress and decompress calls only,
# every round trip compared byte for byte)
zpy=${ZIPNN_PYTHON:-$here/.pyenv-bench/zipnn/bin/python}
if [ -f "$snap/MANIFEST.tsv" ] && [ -x "$zpy" ]; then
  for r in $(seq "$repeat"); do
    "$zpy" "$here/bench/zipnn_real.py" "$hub" "$snap/MANIFEST.tsv" >"$work/zipnn.$r"
  done
  for mode in zipnn-pkg zipnn-pkg-delta; do
    st=$(awk -v m="$mode" '$1 == m { print $2 }' "$work/zipnn.1")
    c=$(median $(awk -v m="$mode" '$1 == m { print $4 }' "$work"/zipnn.*))
    d=$(median $(awk -v m="$mode" '$1 == m { print $5 }' "$work"/zipnn.*))
    stored_of[$mode]=$st
    python3 -c "
b=$bytes; s=$st
print(f'{\"$mode\":15s} {s:12d} {100*(1-s/b):8.1f}% {b/$c/1e6:12.0f} {b/$d/1e6:12.0f}        - (calls only)')"
  done
  echo "(zipnn-pkg: ZipNN $("$zpy" -c 'import importlib.metadata as m; print(m.version("zipnn"))') per tensor, its dtype's byte grouping, HUFFMAN;" \
       "-delta: fine-tune files XORed with their base's file of the same size first, $(awk '$1 == "zipnn-pkg-delta" { print $6 }' "$work/zipnn.1") files)"
  for m in zipnn zllm; do
    [ -n "${stored_of[$m]:-}" ] && python3 -c "print(f'$m / zipnn-pkg stored bytes: {${stored_of[$m]}/${stored_of[zipnn-pkg]}:.3f}')"
  done
else
  echo "ZipNN itself: not run (no $zpy: bench/zipnn_env.sh makes it; or no MANIFEST.tsv)"
fi
[ -n "${stored_of[zllm]:-}" ] && [ -n "${stored_of[zipllm]:-}" ] &&
  python3 -c "print(f'zllm / zipllm stored bytes: {${stored_of[zllm]}/${stored_of[zipllm]}:.3f}')"
[ -n "${stored_of[zllm]:-}" ] && [ -n "${stored_of[zllm-f1]:-}" ] &&
  python3 -c "print(f'zllm / zllm-f1 (format 2 / format 1) stored bytes: {${stored_of[zllm]}/${stored_of[zllm-f1]}:.4f}')"

# the zstd CLI, one process per file, on the same files (medians)
zc=(); zd=()
for _ in $(seq "$repeat"); do
  rm -rf "$work/z" "$work/d"
  t0=$(date +%s.%N)
  (cd "$hub" && find . -type f | while read -r f; do mkdir -p "$work/z/$(dirname "$f")"; zstd -q -3 -T1 -f "$f" -o "$work/z/$f.zst"; done)
  t1=$(date +%s.%N)
  (cd "$work/z" && find . -type f -name '*.zst' | while read -r f; do mkdir -p "$work/d/$(dirname "$f")"; zstd -q -d -T1 -f "$f" -o "$work/d/${f%.zst}"; done)
  t2=$(date +%s.%N)
  zc+=("$(python3 -c "print($t1 - $t0)")"); zd+=("$(python3 -c "print($t2 - $t1)")")
done
zcm=$(median "${zc[@]}"); zdm=$(median "${zd[@]}")
printf 'zstd CLI, one process per file: compress %.2f s (%.0f MB/s), decompress %.2f s (%.0f MB/s)\n' \
  "$zcm" "$(python3 -c "print($bytes / $zcm / 1e6)")" "$zdm" "$(python3 -c "print($bytes / $zdm / 1e6)")"
if [ -n "${ingest_s[zllm]:-}" ]; then
  python3 -c "print(f'zllm pack / zstd -3 -T1 time: {${ingest_s[zllm]}/$zcm:.2f}x (target <= 0.25); zllm restore --all / zstd -d -T1 time: {${restore_s[zllm]}/$zdm:.2f}x (target <= 1.0)')"
fi
ref=$here/../shared/bench/refpack.py
if [ -f "$snap/MANIFEST.tsv" ] && [ -f "$ref" ] && /usr/bin/python3 -c 'import numpy, xxhash, zstandard' 2>/dev/null; then
  zref=$(/usr/bin/python3 "$ref" "$hub" "$snap/MANIFEST.tsv" | awk '$1 == "zipllm_ref" { print $2 }')
  echo "refpack.py zipllm_ref: $zref bytes"
  for m in zllm zllm-f1; do
    [ -n "${stored_of[$m]:-}" ] && python3 -c "print(f'$m / zipllm_ref stored bytes: {${stored_of[$m]}/$zref:.3f}')"
  done
fi
