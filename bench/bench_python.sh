#!/usr/bin/env bash
# The zllm Python package's read path against `zllm restore` and zstd on the
# same files, in one run:
#   1. each of the FILES largest files (distinct bytes) one at a time:
#      `zllm restore --file` (1 decode thread beside its hash thread, as the
#      command's default), zstd -d -T1 of the file's zstd -3 copy, and
#      open().read() in Python (a fresh archive object per file, threads=1
#      and threads=2): MB/s over the set, Python's against restore's;
#   2. one tensor of about 4 MiB of the largest file (>= 512 MiB) by
#      safe_open().get_tensor(), from a fresh archive object, against
#      open().read() of that whole file: the calls, and each from
#      open_archive to close.
# Every file read is first compared byte for byte with its original; every
# timed read is proven by its SHA-256.  Medians of REPEAT runs (default 3);
# page cache warm.
# Usage: bench/bench_python.sh [REPEAT]  (needs .pyenv/zllm: ./bootstrap.sh
# test makes it; hub: zllm mkhub --scale bench, mixed and family layouts,
# ~5.3 GB, generated in /tmp unless HUB_DIR holds HUB_DIR/mixed/hub and
# HUB_DIR/family/hub)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
repeat=${1:-3}
py=${ZLLM_PYTHON:-$here/.pyenv/zllm/bin/python}
export ZLLM_LIBRARY=${ZLLM_LIBRARY:-$(dirname "$bin")/lib/libzllm.so}
work=$(mktemp -d /tmp/zllm-bench-python-XXXXXX)
files_n=${FILES:-16}
trap 'rm -rf "$work"' EXIT
[ -x "$py" ] || { echo "bench_python: no $py (./bootstrap.sh test, or ZLLM_PYTHON=...)" >&2; exit 1; }

source "$here/bench/distinct_files.sh"
read_bench_files

"$py" "$here/bench/py_read.py" check "$work/ar" "$work/files"
r_t=() z_t=() p1_t=() p2_t=()
for _ in $(seq "$repeat"); do
  r_t+=("$(restore_all)")
  z_t+=("$(zstd_all)")
  p1_t+=("$("$py" "$here/bench/py_read.py" whole "$work/ar" "$work/files" 1)")
  p2_t+=("$("$py" "$here/bench/py_read.py" whole "$work/ar" "$work/files" 2)")
done
r=$(median "${r_t[@]}") z=$(median "${z_t[@]}") p1=$(median "${p1_t[@]}") p2=$(median "${p2_t[@]}")
printf 'files: %d (%d MB, distinct bytes, the largest of the mixed and family bench hubs); %d runs, medians\n' \
  "$(wc -l <"$work/files")" $((total / 1000000)) "$repeat"
printf '%-52s %8s %8s %8s\n' "" seconds "MB/s" "/restore"
row() { printf '%-52s %8s %8s %8s\n' "$1" "$2" "$(mbps "$total" "$2")" "$(python3 -c "print('%.2fx' % ($r / $2))")"; }
row "zstd -d -T1 (zstd -3 copies), one at a time" "$z"
row "zllm restore --file (1 thread), one at a time" "$r"
row "Python open().read(), threads=1" "$p1"
row "Python open().read(), threads=2" "$p2"
echo "target: open().read() >= 0.9x restore --file's rate"

# one tensor of the largest file against the whole file, each from a fresh
# archive object: the calls alone (the target), and from open_archive to close
read -r size repo path orig < <(head -1 "$work/files")
w_t=() wa_t=() g_t=() ga_t=()
for _ in $(seq "$repeat"); do
  read -r wsec wall _ < <("$py" "$here/bench/py_read.py" read "$work/ar" "$repo" "$path")
  read -r tname tbytes tmethod tsec tall < <("$py" "$here/bench/py_read.py" tensor "$work/ar" "$repo" "$path" "$orig")
  w_t+=("$wsec"); wa_t+=("$wall"); g_t+=("$tsec"); ga_t+=("$tall")
done
w=$(median "${w_t[@]}") wa=$(median "${wa_t[@]}") g=$(median "${g_t[@]}") ga=$(median "${ga_t[@]}")
printf '%s/%s (%d MB), tensor %s (%d bytes, %s):
' "$repo" "$path" $((size / 1000000)) "$tname" "$tbytes" "$tmethod"
printf '  open().read() %s s, get_tensor() %s s: %.2f%% of it (target <= 5%%)
' "$w" "$g" \
  "$(python3 -c "print(100 * $g / $w)")"
printf '  from open_archive to close: %s s and %s s: %.2f%%\n' "$wa" "$ga" "$(python3 -c "print(100 * $ga / $wa)")"
