#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# SECONDS (default 60).  New crashes are copied to fuzz/regressions/<target>/,
# which ctest replays from then on.  Usage: tools/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}; shift || true
targets=${*:-safetensors card json stream hubapi}
build=$here/build-fuzz
CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DZLLM_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
for t in $targets; do
  work=$here/fuzz-out/$t
  mkdir -p "$work/corpus" "$work/crashes"
  case $t in
    safetensors) cp -n "$here"/tests/fixtures/safetensors/* "$here"/fuzz/seeds/safetensors/* "$work/corpus/" ;;
    *) cp -n "$here"/fuzz/seeds/"$t"/* "$work/corpus/" ;;
  esac
  echo "fuzz-$t: ${secs}s"
  set +e
  "$build/bin/fuzz-$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="$work/crashes/" "$work/corpus" 2>"$work/log" 
  rc=$?
  set -e
  grep -E "^#[0-9]+.*(DONE|pulse)" "$work/log" | tail -n 1 || true
  for c in "$work"/crashes/*; do
    [ -e "$c" ] || continue
    cp "$c" "$here/fuzz/regressions/$t/"
    echo "fuzz-$t: saved $(basename "$c") to fuzz/regressions/$t/" >&2
  done
  [ $rc -eq 0 ] || { echo "fuzz-$t failed (see $work/log)" >&2; exit 1; }
done
