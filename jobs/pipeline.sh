#!/usr/bin/env bash
# Submits the survey as a dependency chain: [crawl ->] survey -> report.
# Each step starts only when the one before it succeeded (afterok); if a step
# fails, the steps after it are cancelled (--kill-on-invalid-dep) instead of
# waiting in the queue forever.  Prints the job ids, one per line.
#
#   jobs/pipeline.sh                     survey $ZLLM_HUB, then the report
#   ZLLM_ENDPOINT=URL jobs/pipeline.sh   crawl URL into $ZLLM_HUB first
#
# Environment: as the .sbatch files (ZLLM_HUB, ZLLM_OUT, ZLLM_BIN,
# ZLLM_SURVEY_ARGS, ZLLM_CRAWL_ARGS, ZLLM_LAUNCHER); SBATCH_ARGS adds sbatch
# options to every step (e.g. "--partition=debug"); SURVEY_SBATCH_ARGS to the
# survey alone (e.g. "--ntasks=64 --time=12:00:00"), CRAWL_SBATCH_ARGS to the
# crawl alone (e.g. "--nodes=4 --ntasks=4": the downloads shared by 4 nodes).
set -euo pipefail
jobs=$(cd "$(dirname "$0")" && pwd)
export ZLLM_JOBS=$jobs
: "${ZLLM_HUB:?set ZLLM_HUB (the snapshot to survey, or where the crawl writes it)}"
# one output folder for the whole chain, named before any job id exists
export ZLLM_OUT=${ZLLM_OUT:-$PWD/zllm-out-$(date -u +%Y%m%dT%H%M%SZ)}
export ZLLM_HUB
submit() { # submit [DEPENDENCY] SCRIPT [SBATCH ARGS...]
  local dep=$1 script=$2; shift 2
  # shellcheck disable=SC2086
  sbatch --parsable --export=ALL ${SBATCH_ARGS:-} ${dep:+--dependency=afterok:$dep --kill-on-invalid-dep=yes} \
    "$@" "$jobs/$script" | cut -d';' -f1
}
prev=""
if [ -n "${ZLLM_ENDPOINT:-}" ]; then
  # shellcheck disable=SC2086
  prev=$(HF_ENDPOINT=$ZLLM_ENDPOINT submit "" crawl.sbatch ${CRAWL_SBATCH_ARGS:-})
  echo "$prev"
fi
# shellcheck disable=SC2086
prev=$(submit "$prev" survey.sbatch ${SURVEY_SBATCH_ARGS:-})
echo "$prev"
submit "$prev" report.sbatch
