#!/usr/bin/env bash
# The jobs in jobs/ on a real one-node SLURM cluster (tests/slurm/onenode.sh:
# munged, slurmctld and slurmd on 127.0.0.1, a debug partition):
#  1. sbatch jobs/survey.sbatch over the sample hub on 2 tasks: the job
#     completes, its log is named after the job id, the outputs are there and
#     the archive restores the hub byte for byte;
#  2. jobs/pipeline.sh with ZLLM_ENDPOINT: crawl on 2 tasks (the Hub
#     look-alike on loopback) -> survey -> report, each after the one before;
#     every figure;
#  3. a survey of a missing hub fails, and the report queued after it is
#     cancelled, not left waiting;
# then the daemons are stopped by their pids.
source "$(dirname "$0")/lib.sh"
sample="$ZLLM_SRC/data/sample-hub/hub"
cluster="$T/cluster"
onenode="$ZLLM_SRC/tests/slurm/onenode.sh"
trap 'bash "$onenode" stop "$cluster" || true; for p in "${HS_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT

check "the one-node cluster starts" bash -c "bash '$onenode' start '$cluster' >'$T/start.log' 2>&1" || { cat "$T/start.log"; finish; }
export SLURM_CONF="$cluster/slurm.conf"
export ZLLM_BIN ZLLM_JOBS="$ZLLM_SRC/jobs"
check "sinfo shows the idle node in the debug partition" bash -c "sinfo -h -o '%P %T' | grep -q '^debug\* idle'"

job_field() { scontrol show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_job() { # wait_job ID: waits until the job leaves the queue, prints its final state
  local s=""
  for _ in $(seq 600); do
    s=$(job_field "$1" JobState)
    case "$s" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE) echo "$s"; return ;; esac
    sleep 0.5
  done
  echo "still ${s:-unknown} after 300 s"
}

# 1. one survey job
mkdir -p "$T/submit"
jid=$(cd "$T/submit" && ZLLM_HUB="$sample" ZLLM_OUT="$T/out1" sbatch --parsable "$ZLLM_SRC/jobs/survey.sbatch")
check "sbatch returns a job id" grep -qE '^[0-9]+$' <<<"$jid"
state=$(wait_job "$jid")
check "the survey job completes (state $state)" [ "$state" = COMPLETED ]
check "its exit code is 0:0" [ "$(job_field "$jid" ExitCode)" = "0:0" ]
log="$T/submit/zllm-survey-$jid.out"
check "its log is named after the job id" [ -s "$log" ]
check "the log shows 2 ranks" grep -q "over 2 ranks" "$log"
for f in summary.json repos.tsv files.tsv tensors.tsv families.tsv pairs.tsv stats.h5 archive/catalog.sqlite; do
  check "the job wrote $f" [ -s "$T/out1/$f" ]
done
check "the job's files.tsv lists every file of the sample hub" \
  [ "$(($(wc -l <"$T/out1/files.tsv") - 1))" -eq "$(($(wc -l <"$ZLLM_SRC/data/sample-hub/MANIFEST.tsv") - 1))" ]
check "the job's archive verifies" "$ZLLM_BIN/zllm" verify "$T/out1/archive"
check "the job's archive restores the hub" "$ZLLM_BIN/zllm" restore "$T/out1/archive" --all --out "$T/restored"
check "byte for byte" diff -r "$sample" "$T/restored"
[ "$fails" -eq 0 ] || { echo "--- job log"; cat "$log"; }

# 2. crawl -> survey -> report as a dependency chain
start_hub "$sample"
mkdir -p "$T/submit2"
(cd "$T/submit2" && ZLLM_ENDPOINT="$HS_URL" ZLLM_HUB="$T/crawled" ZLLM_OUT="$T/out2" \
   CRAWL_SBATCH_ARGS="--ntasks=2 --cpus-per-task=1" \
   ZLLM_SURVEY_ARGS="--baselines --quiet" bash "$ZLLM_SRC/jobs/pipeline.sh") >"$T/ids" 2>"$T/pipeline.err"
mapfile -t ids <"$T/ids"
check "the pipeline submits three jobs" [ "${#ids[@]}" -eq 3 ]
[ "${#ids[@]}" -eq 3 ] || cat "$T/pipeline.err"
if [ "${#ids[@]}" -eq 3 ]; then
  for k in 0 1 2; do
    state=$(wait_job "${ids[$k]}")
    check "pipeline step $((k + 1)) completes (state $state)" [ "$state" = COMPLETED ]
  done
  for k in 1 2; do
    check "step $((k + 1)) started after step $k ended" \
      bash -c "[[ ! '$(job_field "${ids[$k]}" StartTime)' < '$(job_field "${ids[$((k - 1))]}" EndTime)' ]]"
  done
  check "the crawl made the served hub" diff -r -x .zllm "$sample" "$T/crawled"
  check "the crawl job shared the downloads over its 2 tasks" \
    grep -q 'over 2 ranks: each received between' "$T/submit2/zllm-crawl-${ids[0]}.out"
  check "the report job rendered every notebook" [ "$(ls "$T/out2/report/"*.html 2>/dev/null | wc -l)" -eq 6 ]
  for f in reduction_by_stage reduction_vs_throughput cumulative_reduction storage_by_dtype metadata_overhead \
           delta_sparsity bit_flip_probability exponent_histograms relative_change bit_distance_heatmap \
           tensor_duplication hub_growth; do
    check "figure $f" [ -s "$T/out2/report/figures/$f.png" ]
  done
  [ "$fails" -eq 0 ] || for f in "$T/submit2"/*.out; do echo "--- $f"; cat "$f"; done
fi
stop_hub

# 3. a failing step cancels what depends on it
(cd "$T/submit2" && ZLLM_HUB="$T/no-such-hub" ZLLM_OUT="$T/out3" bash "$ZLLM_SRC/jobs/pipeline.sh") >"$T/ids3" 2>&1
mapfile -t ids3 <"$T/ids3"
if [ "${#ids3[@]}" -eq 2 ]; then
  ok
  check "a survey of a missing hub fails" [ "$(wait_job "${ids3[0]}")" = FAILED ]
  check "its log names the missing hub" grep -q "$T/no-such-hub is not a directory" "$T/submit2/zllm-survey-${ids3[0]}.out"
  check "the report after it is cancelled" [ "$(wait_job "${ids3[1]}")" = CANCELLED ]
else
  bad "the pipeline without an endpoint submits two jobs: $(cat "$T/ids3")"
fi

pids=()
for p in slurmd.pid slurmctld.pid munge/munged.pid; do pids+=("$(cat "$cluster/$p")"); done
check "the daemons stop" bash "$onenode" stop "$cluster"
for p in "${pids[@]}"; do
  check "daemon $p is gone" bash -c "! kill -0 $p 2>/dev/null"
done
finish
