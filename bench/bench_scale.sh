#!/usr/bin/env bash
# Scale-out of the whole survey: `zllm-survey` on 1 and on 2 ranks over
# generated hubs, page cache warm, runs alternating, medians.  Two hubs: one
# family holding every byte (one base, seven fine-tunes, ~2.1 GB: the
# family is split into its models across the ranks) and the mixed hub (~3.1
# GB, several families and re-uploads).  For each it prints the medians,
# the speed-up, the peak RSS of the largest rank, and whether the 2-rank
# archive lists the same rows and stored bytes as the 1-rank one (zllm ls).
#
# Beside it, in the same run, what the machine gives two workers on the
# same bytes with a standard coder: `zstd -3 -T1` over the hub's files in
# one process, then the files split in two halves over two processes.
#
# Usage: bench/bench_scale.sh [BUILD_DIR]
#        env: REPEAT (3), FAMILY_HUB, MIXED_HUB (generated when unset)
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
repeat=${REPEAT:-3}
work=$(mktemp -d /tmp/zllm-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

hub_of() { # hub_of VAR LAYOUT
  local given=${!1:-}
  if [ -n "$given" ]; then echo "$given"; return; fi
  "$bin/zllm" mkhub --out "$work/$2" --scale bench --seed 3 --layout "$2" >/dev/null 2>&1
  echo "$work/$2/hub"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# one survey: appends "seconds peak_kb" to $work/N.times
survey() { # survey HUB N
  local out=$work/out$2
  rm -rf "$out" "$out.ls"
  /usr/bin/time -f "%e %M" -o "$work/t" mpirun --oversubscribe -n "$2" "$bin/zllm-survey" --hub "$1" --out "$out" \
      --quiet >/dev/null 2>"$work/err$2" || { cat "$work/err$2" >&2; exit 1; }
  cat "$work/t" >>"$work/$2.times"
  if [ "$2" -gt 1 ]; then # the merge's time, from rank 0's log
    sed -n 's/.*shares merged in \([0-9.]*\) s.*/\1/p' "$work/err$2" >>"$work/merge.times"
  fi
  "$bin/zllm" ls "$out/archive" >"$out.ls"
}

stored() { sqlite3 "$1/catalog.sqlite" "SELECT sum(stored) FROM files"; }

zstd_pair() { # zstd_pair HUB: "one_process_s two_processes_s"
  find "$1" -type f | sort >"$work/files"
  local n; n=$(wc -l <"$work/files")
  head -n $((n / 2)) "$work/files" >"$work/a"
  tail -n +$((n / 2 + 1)) "$work/files" >"$work/b"
  local t1 t2
  t1=$( { /usr/bin/time -f "%e" bash -c "xargs cat <'$work/files' | zstd -3 -T1 -q -c >/dev/null"; } 2>&1 | tail -1)
  t2=$( { /usr/bin/time -f "%e" bash -c "xargs cat <'$work/a' | zstd -3 -T1 -q -c >/dev/null &
        xargs cat <'$work/b' | zstd -3 -T1 -q -c >/dev/null; wait"; } 2>&1 | tail -1)
  echo "$t1 $t2"
}

printf '%-8s %8s %10s %10s %8s %10s %10s %6s %14s %14s\n' hub MB "1 rank s" "2 ranks s" speedup "RSS1 MB" "RSS2 MB" same "stored 1" "stored 2"
for layout in family mixed; do
  var=$( [ "$layout" = family ] && echo FAMILY_HUB || echo MIXED_HUB )
  hub=$(hub_of "$var" "$layout")
  mb=$(du -sb "$hub" | awk '{ printf "%.0f", $1 / 1e6 }')
  find "$hub" -type f -exec cat {} + >/dev/null # warm
  rm -f "$work/1.times" "$work/2.times" "$work/zstd.times" "$work/merge.times"
  for r in $(seq "$repeat"); do
    survey "$hub" 1
    survey "$hub" 2
    zstd_pair "$hub" >>"$work/zstd.times"
  done
  s1=$(cut -d' ' -f1 "$work/1.times" | median)
  s2=$(cut -d' ' -f1 "$work/2.times" | median)
  m1=$(cut -d' ' -f2 "$work/1.times" | median)
  m2=$(cut -d' ' -f2 "$work/2.times" | median)
  same=$(cmp -s "$work/out1.ls" "$work/out2.ls" && echo yes || echo NO)
  printf '%-8s %8s %10.2f %10.2f %7.2fx %10.0f %10.0f %6s %14s %14s\n' "$layout" "$mb" "$s1" "$s2" \
    "$(echo "$s1 / $s2" | bc -l)" "$(echo "$m1 / 1024" | bc -l)" "$(echo "$m2 / 1024" | bc -l)" "$same" \
    "$(stored "$work/out1/archive")" "$(stored "$work/out2/archive")"
  z1=$(cut -d' ' -f1 "$work/zstd.times" | median)
  z2=$(cut -d' ' -f2 "$work/zstd.times" | median)
  printf '%-8s %8s %10.2f %10.2f %7.2fx   (zstd -3 -T1: one process, then two processes on halves)\n' \
    "  zstd" "$mb" "$z1" "$z2" "$(echo "$z1 / $z2" | bc -l)"
  echo "  runs (s, peak KB): 1 rank: $(tr '\n' ' ' <"$work/1.times")| 2 ranks: $(tr '\n' ' ' <"$work/2.times")"
  mg=$(median <"$work/merge.times")
  counts=$(sqlite3 "$work/out2/archive/catalog.sqlite" "SELECT (SELECT count(*) FROM repos), (SELECT count(*) FROM files), (SELECT count(*) FROM tensors)" | tr '|' ' ')
  echo "  merge on rank 0 (2 ranks): $mg s median, $(echo "100 * $mg / $s2" | bc -l | xargs printf '%.1f')% of the job; repos files tensors: $counts"
done
