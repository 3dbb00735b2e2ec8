#!/usr/bin/env bash
# A rank that fails in any phase that exchanges with owners ends the job on
# every rank: sketching before the sketches go to their owners (cluster),
# sending the family rows to their homes (homes), writing its rows of
# pairs.tsv (pairs), asking the homes for the reasons of its bases
# (reasons), reading its scan records (report), after sending its file
# hashes to their owners (dedup), and the statistics (stats).  On 3 ranks, rank 1 or 2 fails on purpose (ZLLM_TEST_FAIL): the
# job exits 1 within the bound (no rank left waiting), the failing rank says
# where, rank 0 reports an error, and no spill is left behind.
source "$(dirname "$0")/lib.sh"
hub="$ZLLM_SRC/data/sample-hub/hub"
for fault in cluster:1 homes:2 pairs:2 reasons:1 report:1 dedup:2 stats:1; do
  where=${fault%%:*} rank=${fault##*:} out="$T/out-$where"
  set +e
  ZLLM_TEST_FAIL=$fault ZLLM_TEST_TINY_BUFFERS=1 timeout -k 5 120 "${MPIEXEC:-mpiexec}" \
    "${MPIEXEC_NUMPROC_FLAG:--n}" 3 --oversubscribe "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$out" \
    >"$T/$where.log" 2>&1
  rc=$?
  set -e
  check "$where: the survey exited $rc (want 1; 124 is a rank left waiting)" [ "$rc" -eq 1 ]
  check "$where: rank $rank did not say where it failed" \
    grep -q "ZLLM_TEST_FAIL: rank $rank fails in $where on purpose" "$T/$where.log"
  check "$where: rank 0 reported no error" grep -q "r0\].*error" "$T/$where.log"
  check "$where: spills left in $out/.survey" test ! -e "$out/.survey"
done
finish
