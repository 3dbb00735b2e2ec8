# Shared helpers for the script tests (sourced).  ctest sets ZLLM_BIN,
# ZLLM_SRC, ZLLM_TMP, MPIEXEC and MPIEXEC_NUMPROC_FLAG.
set -euo pipefail
: "${ZLLM_BIN:?}" "${ZLLM_SRC:?}" "${ZLLM_TMP:?}"
mkdir -p "$ZLLM_TMP"
# scratch files private to this run (ctest runs scripts in parallel)
T=$(mktemp -d "$ZLLM_TMP/scratch.XXXXXX")
HS_PIDS=()
trap 'for p in "${HS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
fails=0
checks=0

ok() { checks=$((checks + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then ok; else bad "$what"; fi
}
finish() {
  echo "$((checks - fails)) passed, $fails failed"
  [ "$checks" -gt 0 ] || { echo "FAIL: no checks ran" >&2; exit 1; }
  [ "$fails" -eq 0 ]
}
mpirun_n() { # mpirun_n N PROGRAM ARGS...
  local n=$1; shift
  "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe "$@"
}

# The Hub look-alike (tests/hubserver/hubserver.py) on 127.0.0.1, a free port.
# start_hub ROOT [SERVER ARGS...] sets HS_URL and HS_PID; stop_hub stops it.
start_hub() {
  local root=$1; shift
  rm -f "$T/hs.port"
  python3 "$ZLLM_SRC/tests/hubserver/hubserver.py" --root "$root" --port-file "$T/hs.port" \
    --log "$T/hs.log" "$@" &
  HS_PID=$!
  HS_PIDS+=("$HS_PID")
  for _ in $(seq 100); do [ -s "$T/hs.port" ] && break; sleep 0.1; done
  [ -s "$T/hs.port" ] || { echo "FAIL: the hub server did not start" >&2; exit 1; }
  HS_URL="http://127.0.0.1:$(cat "$T/hs.port")"
}
stop_hub() {
  kill "$HS_PID" 2>/dev/null || true
  wait "$HS_PID" 2>/dev/null || true
}

# small_hub DIR: a fresh two-repo hub from the sample hub, a base and its
# fine-tune (the hostile-input tests edit their own copy)
small_hub() {
  rm -rf "$1"
  mkdir -p "$1/alpha-labs" "$1/chatco"
  cp -r "$ZLLM_SRC/data/sample-hub/hub/alpha-labs/alpha-base" "$1/alpha-labs/"
  cp -r "$ZLLM_SRC/data/sample-hub/hub/chatco/alpha-chat" "$1/chatco/"
}
