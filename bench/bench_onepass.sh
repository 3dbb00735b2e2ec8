#!/usr/bin/env bash
# The survey's data path: bytes read from the device and wall time of a
# one-rank `zllm-survey` on a generated family (one base, seven fine-tunes,
# ~2.1 GB), for two builds side by side in the same run (say, the previous
# commit's and this one's), page cache cold inside a memory cgroup (what a
# rank sees when the hub does not fit in memory) and warm.
#
# Cold runs drop the page cache (/proc/sys/vm/drop_caches) and run the survey
# in a cgroup-v1 memory group capped at CAP_MIB (default 600); device reads
# are the sectors-read delta of the hub's block device in /proc/diskstats.
# Needs root.  Prints medians of REPEAT runs (alternating builds).
#
# Usage: bench/bench_onepass.sh OLD_BUILD_DIR NEW_BUILD_DIR [HUB_DIR]
#        env: REPEAT (3), CAP_MIB (600), MODES ("cold warm")
set -euo pipefail
old=$1 new=$2 hub=${3:-}
work=$(mktemp -d /tmp/zllm-onepass.XXXXXX)
cg=/sys/fs/cgroup/memory/zllm-onepass-$$
cleanup() {
  rm -rf "$work"
  [ -d "$cg" ] && rmdir "$cg" 2>/dev/null || true
}
trap cleanup EXIT
if [ -z "$hub" ]; then
  "$new/bin/zllm" mkhub --out "$work/gen" --scale bench --seed 3 --layout family >/dev/null 2>&1
  hub=$work/gen/hub
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bytes=$(du -sb "$hub" | cut -f1)
dev=$(lsblk -no PKNAME "$(df --output=source "$hub" | tail -1)" 2>/dev/null || true)
dev=${dev:-$(basename "$(df --output=source "$hub" | tail -1)")}
sectors() { awk -v d="$dev" '$3 == d { print $6 }' /proc/diskstats; }
mkdir "$cg"
echo $((${CAP_MIB:-600} * 1024 * 1024)) >"$cg/memory.limit_in_bytes"

# one run: prints "seconds bytes_read"
run() { # build mode
  local bin=$1/bin out=$work/out
  rm -rf "$out"
  if [ "$2" = cold ]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  else
    cat "$hub"/*/*/* >/dev/null
  fi
  local s0 t0 t1 s1
  s0=$(sectors)
  t0=$(date +%s.%N)
  if [ "$2" = cold ]; then
    bash -c "echo \$\$ >'$cg/cgroup.procs'; exec mpiexec -n 1 '$bin/zllm-survey' --hub '$hub' --out '$out' --quiet" \
      >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  else
    mpiexec -n 1 "$bin/zllm-survey" --hub "$hub" --out "$out" --quiet >/dev/null 2>"$work/err" ||
      { cat "$work/err" >&2; exit 1; }
  fi
  t1=$(date +%s.%N)
  s1=$(sectors)
  echo "$(python3 -c "print($t1 - $t0)") $(((s1 - s0) * 512))"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf 'hub %s: %.2f GB on %s; medians of %d runs, one rank; cold runs capped at %d MiB\n' \
  "$hub" "$(python3 -c "print($bytes / 1e9)")" "$dev" "${REPEAT:-3}" "${CAP_MIB:-600}"
printf '%-5s %-40s %10s %12s %10s\n' mode build seconds "read/hub" "time/old"
for mode in ${MODES:-cold warm}; do
  declare -A secs=() reads=()
  for ((i = 0; i < ${REPEAT:-3}; i++)); do
    for b in old new; do
      read -r s r < <(run "${!b}" "$mode")
      secs[$b]+="$s "
      reads[$b]+="$r "
    done
  done
  ts_old=$(echo "${secs[old]}" | tr ' ' '\n' | grep . | median)
  for b in old new; do
    ts=$(echo "${secs[$b]}" | tr ' ' '\n' | grep . | median)
    rd=$(echo "${reads[$b]}" | tr ' ' '\n' | grep . | median)
    printf '%-5s %-40s %10.2f %11.2fx %9.2fx\n' "$mode" "$b: ${!b}" "$ts" \
      "$(python3 -c "print($rd / $bytes)")" "$(python3 -c "print($ts / $ts_old)")"
  done
  unset secs reads
done
