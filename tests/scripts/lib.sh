# Shared helpers for the script tests (sourced).  ctest sets ZLLM_BIN,
# ZLLM_SRC, ZLLM_TMP, MPIEXEC and MPIEXEC_NUMPROC_FLAG.
set -euo pipefail
: "${ZLLM_BIN:?}" "${ZLLM_SRC:?}" "${ZLLM_TMP:?}"
mkdir -p "$ZLLM_TMP"
# scratch files private to this run (ctest runs scripts in parallel)
T=$(mktemp -d "$ZLLM_TMP/scratch.XXXXXX")
trap 'rm -rf "$T"' EXIT
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
