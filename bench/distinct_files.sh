# Sourced by bench_serve.sh, bench_read.sh and bench_python.sh, so they
# measure the same files the same way.
# distinct_files HUB_DIR...: every file of the hubs with distinct bytes (the
# first of each SHA-256), largest first, as "size root rel" lines.
distinct_files() {
  local seen
  seen=$(mktemp)
  for root in "$@"; do
    (cd "$root" && find . -type f -printf '%s %P\n') | awk -v h="$root" '{ print $0, h }'
  done | sort -rn | while read -r size rel root; do
    sha=$(sha256sum "$root/$rel" | cut -c1-64)
    grep -q "$sha" "$seen" && continue
    echo "$sha" >>"$seen"
    echo "$size $root $rel"
  done
  rm -f "$seen"
}

# read_bench_files: the bench hubs (mkhub --scale bench, mixed and family
# layouts, in $HUB_DIR or made in $work/hubs) packed into $work/ar (read once:
# warm), the $files_n largest files of distinct bytes in $work/files as
# "size repo path original" lines, their total in $total, and their zstd -3
# copies in $work/zst/N.zst.  Needs $bin, $work, $files_n.
read_bench_files() {
  local hubs=${HUB_DIR:-$work/hubs} i=0
  if [ ! -d "$hubs/mixed/hub" ]; then
    "$bin/zllm" mkhub --out "$hubs/mixed" --scale bench --seed 3 >/dev/null 2>&1
    "$bin/zllm" mkhub --out "$hubs/family" --scale bench --seed 3 --layout family >/dev/null 2>&1
  fi
  "$bin/zllm" pack --hub "$hubs/mixed/hub" --out "$work/ar" >/dev/null 2>&1
  "$bin/zllm" pack --hub "$hubs/family/hub" --out "$work/ar" >/dev/null 2>&1
  cat "$work/ar/packs/"* >/dev/null
  distinct_files "$hubs/mixed/hub" "$hubs/family/hub" | while read -r size root rel; do
    repo=$(cut -d/ -f1-2 <<<"$rel")
    echo "$size $repo ${rel#"$repo"/} $root/$rel"
  done >"$work/distinct"
  head -n "$files_n" "$work/distinct" >"$work/files"
  total=$(awk '{ s += $1 } END { printf "%.0f", s }' "$work/files")
  mkdir -p "$work/zst" "$work/out"
  while read -r size repo path orig; do
    zstd -q -3 -T1 -f "$orig" -o "$work/zst/$i.zst"
    i=$((i + 1))
  done <"$work/files"
}

# Timing helpers: now, median X..., mbps BYTES SECONDS; restore_all and
# zstd_all time `zllm restore --file` and `zstd -d -T1` of every file of
# $work/files, one at a time (seconds).
now() { date +%s.%N; }
median() { python3 -c 'import statistics,sys; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
mbps() { python3 -c "print('%.0f' % ($1 / 1e6 / $2))"; }
restore_all() {
  local t0
  t0=$(now)
  while read -r size repo path orig; do
    rm -rf "$work/out/r"
    "$bin/zllm" restore "$work/ar" --repo "$repo" --file "$path" --out "$work/out/r" >/dev/null 2>&1
  done <"$work/files"
  python3 -c "print($(now) - $t0)"
}
zstd_all() {
  local t0 i=0
  t0=$(now)
  while read -r size repo path orig; do
    zstd -q -d -T1 -f "$work/zst/$i.zst" -o "$work/out/z"
    i=$((i + 1))
  done <"$work/files"
  python3 -c "print($(now) - $t0)"
}
