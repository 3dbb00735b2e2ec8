#!/usr/bin/env bash
# zllm serve against `zllm restore` and zstd on the same files, in one run:
#   1. one client: each of the FILES largest files (distinct bytes) downloaded
#      with curl from `zllm serve --threads 1`, one at a time, against
#      `zllm restore --file` of the same file (one thread: both decode, check
#      the SHA-256 and write the file) and `zstd -d` of the file's zstd -3
#      copy (what a zstd-compressed mirror would pay).  MB/s over the set.
#   2. 16 clients at once, each downloading a different file, from
#      `zllm serve --threads 2`: the aggregate MB/s against step 1's.
#   3. Range: one tensor of the largest file (>= 512 MiB) against the whole
#      file (part cache off, fresh server, so nothing is already decoded).
# Every download is compared byte for byte with its original.  Medians of
# REPEAT runs (default 3); page cache warm.
# Usage: bench/bench_serve.sh [REPEAT]  (hub: zllm mkhub --scale bench, mixed
# and family layouts, ~5.3 GB, generated in /tmp unless HUB_DIR names one
# that has both as HUB_DIR/mixed/hub and HUB_DIR/family/hub)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
repeat=${1:-3}
work=$(mktemp -d /tmp/zllm-bench-serve-XXXXXX)
files_n=${FILES:-16}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

source "$here/bench/distinct_files.sh"
read_bench_files

# start_serve ARGS...: sets URL (and remembers the pid)
start_serve() {
  rm -f "$work/serve.log"
  "$bin/zllm" serve "$work/ar" --listen 127.0.0.1:0 --quiet "$@" 2>"$work/serve.log" &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 100); do grep -q HF_ENDPOINT "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
  URL=$(grep -o 'HF_ENDPOINT=http://[0-9.:]*' "$work/serve.log" | cut -d= -f2)
}
# the server's peak RSS (kB), read before it stops
peak_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$spid/status" 2>/dev/null || echo 0; }
stop_serve() { kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; }

check_same() { cmp -s "$1" "$2" || { echo "bench_serve: $2 differs from $1" >&2; exit 1; }; }

serve_one_by_one() {
  local t0
  t0=$(now)
  while read -r size repo path orig; do
    curl -sf -o "$work/out/d" "$URL/$repo/resolve/main/$path"
  done <"$work/files"
  python3 -c "print($(now) - $t0)"
}

serve_all_at_once() {
  local t0 i=0 cpids=()
  t0=$(now)
  while read -r size repo path orig; do
    curl -sf -o "$work/out/c$i" "$URL/$repo/resolve/main/$path" &
    cpids+=($!)
    i=$((i + 1))
  done <"$work/files"
  for p in "${cpids[@]}"; do wait "$p"; done
  python3 -c "print($(now) - $t0)"
}

# correctness first: every file through the server, byte for byte
start_serve --threads 2
i=0
while read -r size repo path orig; do
  curl -sf -o "$work/out/c$i" "$URL/$repo/resolve/main/$path"
  check_same "$orig" "$work/out/c$i"
  i=$((i + 1))
done <"$work/files"
stop_serve
rm -f "$work/out/c"*

r_t=() z_t=() s1_t=() s2_t=() s16_t=() rss16=()
for _ in $(seq "$repeat"); do
  r_t+=("$(restore_all)")
  z_t+=("$(zstd_all)")
  start_serve --threads 1
  s1_t+=("$(serve_one_by_one)")
  stop_serve
  start_serve --threads 2
  s2_t+=("$(serve_one_by_one)")
  stop_serve
  start_serve --threads 2
  s16_t+=("$(serve_all_at_once)")
  rss16+=("$(peak_kb)")
  stop_serve
  i=0
  while read -r size repo path orig; do
    check_same "$orig" "$work/out/c$i"
    i=$((i + 1))
  done <"$work/files"
  rm -f "$work/out/c"*
done
r=$(median "${r_t[@]}") z=$(median "${z_t[@]}") s1=$(median "${s1_t[@]}") s2=$(median "${s2_t[@]}")
s16=$(median "${s16_t[@]}")
printf 'files: %d (%d MB, distinct bytes, the largest of the mixed and family bench hubs); %d runs, medians\n' \
  "$(wc -l <"$work/files")" $((total / 1000000)) "$repeat"
printf '%-44s %8s %8s\n' "" seconds "MB/s"
printf '%-44s %8s %8s\n' "zstd -d -T1 (zstd -3 copies), one at a time" "$z" "$(mbps "$total" "$z")"
printf '%-44s %8s %8s\n' "zllm restore --file (1 thread), one at a time" "$r" "$(mbps "$total" "$r")"
printf '%-44s %8s %8s\n' "zllm serve --threads 1, 1 client" "$s1" "$(mbps "$total" "$s1")"
printf '%-44s %8s %8s\n' "zllm serve --threads 2, 1 client" "$s2" "$(mbps "$total" "$s2")"
printf '%-44s %8s %8s\n' "zllm serve --threads 2, 16 clients at once" "$s16" "$(mbps "$total" "$s16")"
printf 'zllm serve --threads 2 peak RSS with 16 clients: %s MB (median)\n' "$(python3 -c "print(round($(median "${rss16[@]}") / 1024))")"
python3 - "$r" "$s1" "$s16" <<'EOF'
import sys
r, s1, s16 = map(float, sys.argv[1:])
print("one client / restore: %.2fx (target >= 0.8)" % (r / s1))
print("16 clients aggregate / one client: %.2fx (target >= 0.9)" % (s1 / s16))
EOF
python3 -c "print('serve --threads 2, one client: %.0f MB/s (target >= 451: 1.6x the 282 before the slice store)' % ($total / 1e6 / $s2))"

# Range: tensors of the largest file (small, middling, largest) against the whole file
read -r size repo path orig < <(head -1 "$work/files")
python3 - "$orig" >"$work/tensors" <<'EOF2'
import json, struct, sys
f = open(sys.argv[1], "rb")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
ts = sorted(((v["data_offsets"][1] - v["data_offsets"][0], k, v) for k, v in h.items() if k != "__metadata__"))
for size, name, v in (ts[0], ts[len(ts) // 2], ts[-1]):
    a, b = v["data_offsets"]
    print(name, 8 + n + a, 8 + n + b - 1)
EOF2
timed_get() { # timed_get OUT [curl args...]: seconds, from a fresh server with no part cache
  local out=$1 t0; shift
  ZLLM_PART_CACHE_MIB=0 start_serve --threads 1
  t0=$(now)
  curl -sf -o "$out" "$@" "$URL/$repo/resolve/main/$path"
  python3 -c "print($(now) - $t0)"
  stop_serve
}
full_t=()
for _ in $(seq "$repeat"); do full_t+=("$(timed_get "$work/out/full")"); done
check_same "$orig" "$work/out/full"
f=$(median "${full_t[@]}")
printf 'range requests on %s/%s (%d MB), part cache off, fresh server each time:\n' "$repo" "$path" $((size / 1000000))
printf '  %-44s %12s %9s %9s %9s\n' tensor bytes seconds "byte %" "time %"
printf '  %-44s %12d %9s %9s %9s\n' "(the whole file)" "$size" "$f" 100 100
while read -r tname lo hi; do
  range_t=()
  for _ in $(seq "$repeat"); do range_t+=("$(timed_get "$work/out/range" -H "Range: bytes=$lo-$hi")"); done
  dd if="$orig" of="$work/out/want" iflag=skip_bytes,count_bytes skip="$lo" count=$((hi - lo + 1)) status=none
  check_same "$work/out/want" "$work/out/range"
  g=$(median "${range_t[@]}")
  printf '  %-44s %12d %9s %9.2f %9.2f\n' "$tname" $((hi - lo + 1)) "$g" \
    "$(python3 -c "print(100 * $((hi - lo + 1)) / $size)")" "$(python3 -c "print(100 * $g / $f)")"
done <"$work/tensors"
