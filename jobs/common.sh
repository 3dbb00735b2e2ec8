# Sourced by the jobs in this folder: finds zllm's executables and settles the
# survey's input and output from the environment (jobs/README.md).
#   ZLLM_BIN   folder holding zllm, zllm-survey and zllm-report
#              (default: on PATH, else $SLURM_SUBMIT_DIR/build/bin)
#   ZLLM_HUB   the hub snapshot (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)
#   ZLLM_OUT   the survey's output folder (default: $SLURM_SUBMIT_DIR/zllm-out-<first job id>)
# sbatch runs a copy of the script from its spool, so nothing is found
# relative to the script itself.

zllm_die() { echo "zllm job ${SLURM_JOB_ID:-?}: $*" >&2; exit 1; }

zllm_find_bin() {
  if [ -z "${ZLLM_BIN:-}" ]; then
    if command -v zllm-survey >/dev/null; then ZLLM_BIN=$(dirname "$(command -v zllm-survey)")
    else ZLLM_BIN=${SLURM_SUBMIT_DIR:-$PWD}/build/bin; fi
  fi
  [ -x "$ZLLM_BIN/zllm-survey" ] || zllm_die "no zllm-survey in $ZLLM_BIN (set ZLLM_BIN)"
  export ZLLM_BIN
}

zllm_find_hub() {
  if [ -z "${ZLLM_HUB:-}" ]; then
    ZLLM_HUB=${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}
  fi
  [ -d "$ZLLM_HUB" ] || zllm_die "hub snapshot $ZLLM_HUB is not a directory (set ZLLM_HUB)"
  export ZLLM_HUB
}

zllm_find_out() {
  ZLLM_OUT=${ZLLM_OUT:-${SLURM_SUBMIT_DIR:-$PWD}/zllm-out-${SLURM_JOB_ID:-local}}
  export ZLLM_OUT
}

# Open MPI refuses root unless told; clusters rarely run jobs as root, but a
# test cluster does.
zllm_mpi_env() {
  if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
}

# The MPI launcher: srun with PMIx when this SLURM has it (each rank is a
# SLURM task), else Open MPI's mpirun, which reads the allocation itself.
# ZLLM_LAUNCHER=srun|mpirun overrides.
zllm_launch() {
  local how=${ZLLM_LAUNCHER:-}
  if [ -z "$how" ]; then
    if srun --mpi=list 2>&1 | grep -q pmix; then how=srun; else how=mpirun; fi
  fi
  case "$how" in
    srun) echo "zllm job ${SLURM_JOB_ID:-?}: srun --mpi=pmix, ${SLURM_NTASKS:-?} tasks"
          srun --mpi=pmix "$@" ;;
    mpirun) zllm_mpi_env
            echo "zllm job ${SLURM_JOB_ID:-?}: mpirun, ${SLURM_NTASKS:-?} tasks"
            mpirun "$@" ;;
    *) zllm_die "ZLLM_LAUNCHER=$how: use srun or mpirun" ;;
  esac
}
