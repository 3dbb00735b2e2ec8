#!/usr/bin/env bash
# Builds the fuzz targets with ASan + UBSan and runs each for SECONDS
# (default 60): with clang's libFuzzer, or with AFL++ (--afl; Debian's afl++,
# whose afl-clang-fast accepts the same LLVMFuzzerTestOneInput entry points).
# New crashes are copied to fuzz/regressions/<target>/, which ctest replays
# from then on.  Usage: tools/fuzz.sh [--afl] [SECONDS] [TARGET...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
engine=libfuzzer
if [ "${1:-}" = --afl ]; then engine=afl; shift; fi
secs=${1:-60}; shift || true
targets=${*:-safetensors card json stream hubapi archive rans planes serve census}

if [ $engine = afl ]; then
  command -v afl-clang-fast >/dev/null || { echo "tools/fuzz.sh --afl needs AFL++: apt-get install afl++" >&2; exit 2; }
  build=$here/build-afl
  CC=afl-clang-fast cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZLLM_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
else
  # clang's fuzzer and sanitizer runtimes: Debian's clang packages them apart
  [ -e "$(clang -print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer-x86_64.a" ] ||
    { echo "tools/fuzz.sh needs clang's runtimes: apt-get install clang libclang-rt-14-dev" >&2; exit 2; }
  build=$here/build-fuzz
  CC=clang cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DZLLM_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null

seeds() { # seeds TARGET DIR: the target's seeds copied into DIR
  mkdir -p "$2"
  case $1 in
    safetensors) cp -n "$here"/tests/fixtures/safetensors/* "$here"/fuzz/seeds/safetensors/* "$2/" ;;
    *) cp -n "$here"/fuzz/seeds/"$1"/* "$2/" ;;
  esac
  # AFL++ refuses an empty input file; libFuzzer tries the empty input anyway
  find "$2" -type f -empty -delete
}

keep_crash() { # keep_crash TARGET FILE: saved under a name that is its content's hash
  local name
  name=crash-$(sha1sum "$2" | cut -c1-40)
  cp "$2" "$here/fuzz/regressions/$1/$name"
  echo "fuzz-$1: saved $name to fuzz/regressions/$1/" >&2
}

run_libfuzzer() { # run_libfuzzer TARGET WORKDIR
  local t=$1 work=$2 rc
  seeds "$t" "$work/corpus"
  mkdir -p "$work/crashes"
  set +e
  "$build/bin/fuzz-$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="$work/crashes/" "$work/corpus" 2>"$work/log"
  rc=$?
  set -e
  grep -E "^#[0-9]+.*(DONE|pulse)" "$work/log" | tail -n 1 || true
  for c in "$work"/crashes/*; do [ -e "$c" ] && keep_crash "$t" "$c"; done
  return $rc
}

run_afl() { # run_afl TARGET WORKDIR
  local t=$1 work=$2 rc
  seeds "$t" "$work/in"
  set +e
  # -m none: ASan reserves terabytes of address space; the rest: a container
  # without a core_pattern or cpufreq governor to tune
  # scratch files of the targets go under the work dir: afl-fuzz ends its
  # fork server with SIGKILL, so they are not removed at exit
  mkdir -p "$work/tmp"
  # AFL_AUTORESUME: a second run continues the first's queue instead of refusing its output dir
  TMPDIR=$work/tmp AFL_AUTORESUME=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
    afl-fuzz -V "$secs" -m none -i "$work/in" -o "$work/out" -- "$build/bin/fuzz-$t" >"$work/log" 2>&1
  rc=$?
  set -e
  grep -E "^(execs_done|execs_per_sec|edges_found|saved_crashes)" "$work/out/default/fuzzer_stats" 2>/dev/null |
    tr -s ' ' | paste -sd' ' || true
  for c in "$work"/out/default/crashes/id:*; do
    [ -e "$c" ] || continue
    keep_crash "$t" "$c"
    rc=1 # afl-fuzz itself exits 0 with crashes saved
  done
  return $rc
}

for t in $targets; do
  work=$here/fuzz-out/$engine/$t
  mkdir -p "$here/fuzz/regressions/$t"
  echo "fuzz-$t ($engine): ${secs}s"
  "run_$engine" "$t" "$work" || { echo "fuzz-$t failed (see $work/log)" >&2; exit 1; }
done
