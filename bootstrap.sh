#!/usr/bin/env bash
# zllm's two set-up commands, for a fresh Debian 12 machine (root, or a user
# with sudo):
#   ./bootstrap.sh survey   install what is missing, build, run the survey
#                           (mpirun -n 2 zllm-survey --baselines) over the sample
#                           hub, then render the report (zllm-report: every
#                           notebook, headless, into OUT/report/)
#   ./bootstrap.sh test     install what is missing, build, run every test
#                           (ctest), then the unit, script and fuzz-replay tests
#                           again under AddressSanitizer + UBSan, and the threaded
#                           read path under ThreadSanitizer; the tests start
#                           their own servers (HTTP on 127.0.0.1, a one-node SLURM
#                           cluster: munged, slurmctld, slurmd) and stop them
# Environment: BUILD_DIR (default build), JOBS (default nproc),
#              NP (survey ranks, default 2), OUT (survey output, default zllm-out).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

packages=(build-essential cmake pkg-config
          openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
          libzstd-dev libxxhash-dev xxhash libcurl4-openssl-dev libssl-dev
          libjansson-dev libmicrohttpd-dev libyaml-dev libcmocka-dev libsqlite3-dev sqlite3 libhtscodecs-dev python3 python3-h5py curl
          python3-matplotlib python3-pandas jupyter-nbconvert python3-ipykernel python3-venv
          slurm-wlm munge)

# the serve test runs the official JS Hub client (npm); a machine that has
# Node.js and npm from elsewhere keeps them
command -v npm >/dev/null || packages+=(nodejs npm)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "bootstrap: need root (or sudo) to run: $*" >&2; exit 1
  fi
}

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "bootstrap: all ${#packages[@]} Debian packages present"
    return
  fi
  echo "bootstrap: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build_tree() { # build_tree DIR [cmake args...]; TARGETS limits what is built
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null
  # shellcheck disable=SC2086
  cmake --build "$dir" -j"$jobs" ${TARGETS:+--target $TARGETS}
}

mpirun_args() {
  # Open MPI refuses root without these; more ranks than cores need oversubscribe
  local a=(--oversubscribe)
  [ "$(id -u)" -ne 0 ] || a+=(--allow-run-as-root)
  echo "${a[@]}"
}

cmd_survey() {
  install_missing
  build_tree "$build"
  local np=${NP:-2} out=${OUT:-$here/zllm-out}
  # shellcheck disable=SC2046
  mpirun $(mpirun_args) -n "$np" "$build/bin/zllm-survey" --hub "$here/data/sample-hub/hub" --out "$out" --baselines
  echo
  "$build/bin/zllm-report" "$out"
  echo
  echo "survey outputs: $out/ (summary.json, the tables, families.tsv, stats.h5, archive/)"
  echo "report: $out/report/index.html (notebooks as HTML, figures as PNG in $out/report/figures/)"
}

cmd_test() {
  install_missing
  build_tree "$build"
  # the Hugging Face Python clients the tests run against zllm serve, and the
  # zllm Python package's environment with the package (PyPI, pinned)
  ZLLM_LIBRARY="$(cd "$build" && pwd)/lib/libzllm.so" tools/pyenv.sh "$here/.pyenv"
  (cd "$build" && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
     ctest --output-on-failure -j"$jobs")
  # the same library and tools under ASan + UBSan
  build_tree "$build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZLLM_SANITIZE=ON
  (cd "$build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
     ctest --output-on-failure -j"$jobs" -LE mpi)
  # the MPI jobs too (the survey's one pass, the merge, hostile hubs over
  # ranks), without leak checking: Open MPI's allocations are not ours
  (cd "$build-asan" && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
     ctest --output-on-failure -j"$jobs" -L mpi -LE 'report|slurm')
  # the threaded read path (decode threads beside the hash thread) under
  # ThreadSanitizer: its unit tests and a restore round trip
  TARGETS="zllm test_archive" build_tree "$build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZLLM_TSAN=ON
  (cd "$build-tsan" && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     ctest --output-on-failure -j"$jobs" -R '^(unit\.test_archive|archive\.roundtrip_sample)$')
}

case "${1:-}" in
  survey) cmd_survey ;;
  test) cmd_test ;;
  *) echo "usage: $0 survey|test" >&2; exit 2 ;;
esac
