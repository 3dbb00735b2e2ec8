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

# every_reader NAME ARCHIVE HUB WANT [BOUND]: verify, ls, restore, cat-tensor
# and pack (of HUB into ARCHIVE) must each refuse ARCHIVE cleanly: exit 1
# (not a signal, not a time-out, within BOUND seconds, default 60) with WANT
# (a fixed string) in what it prints; output in $T/NAME.COMMAND
every_reader() {
  local name=$1 a=$2 hub=$3 want=$4 bound=${5:-${HOSTILE_TIMEOUT:-60}} cmd rc
  for cmd in verify ls restore cat-tensor pack; do
    local args=("$a")
    case $cmd in
      restore) args=("$a" --all --out "$T/$name-rs") ;;
      cat-tensor) args=("$a" --repo chatco/alpha-chat --tensor model.embed_tokens.weight) ;;
      pack) args=(--hub "$hub" --out "$a") ;;
    esac
    set +e
    timeout -k 5 "$bound" "$ZLLM_BIN/zllm" "$cmd" "${args[@]}" >"$T/$name.$cmd" 2>&1
    rc=$?
    set -e
    check "$name: zllm $cmd exited $rc (want 1: a clean failure) ($(head -c 300 "$T/$name.$cmd"))" [ "$rc" -eq 1 ]
    check "$name: zllm $cmd did not say '$want' ($(head -c 300 "$T/$name.$cmd"))" grep -qF -- "$want" "$T/$name.$cmd"
  done
}
