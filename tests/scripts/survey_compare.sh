#!/usr/bin/env bash
# Results do not depend on the number of ranks: -n 1, 2 and 4 write the same
# tables and the same summary results (stats.h5's /ranks aside: a row per rank).
# Nor on the size of MPI's messages or of any bounded buffer: -n 3 with every
# broadcast and gather cut into rounds of 1,000 bytes (ZLLM_TEST_MPI_CHUNK)
# and every other round, batch and spill block made tiny
# (ZLLM_TEST_TINY_BUFFERS: a few pairs compared, read back and written at a
# time) writes them too.
source "$(dirname "$0")/lib.sh"
out3="$T/survey-np3-rounds"
mkdir -p "$out3/.survey" && echo stale >"$out3/.survey/scan-9.txt" # an interrupted run's spill
check "a survey on 3 ranks with 1,000-byte message rounds and tiny buffers" \
  env ZLLM_TEST_MPI_CHUNK=1000 ZLLM_TEST_TINY_BUFFERS=1 \
  "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 3 --oversubscribe "$ZLLM_BIN/zllm-survey" \
  --hub "$ZLLM_SRC/data/sample-hub/hub" --out "$out3" --quiet
check "the ranks' spills (and an interrupted run's) are gone after the run" test ! -e "$out3/.survey"
check "... and so is the part of pairs.tsv" test ! -e "$out3/pairs.tsv.zllm-part"
for n in 2 4 3; do
  other="$ZLLM_TMP/survey-np$n"
  [ "$n" -ne 3 ] || other=$out3
  for f in repos.tsv files.tsv tensors.tsv problems.tsv families.tsv pairs.tsv; do
    check "$f differs between -n 1 and -n $n" cmp -s "$ZLLM_TMP/survey-np1/$f" "$other/$f"
  done
  # every value but /ranks (each rank's own seconds and reads: a row per rank)
  check "stats.h5 differs between -n 1 and -n $n" h5diff --exclude-path /ranks "$ZLLM_TMP/survey-np1/stats.h5" \
    "$other/stats.h5"
  check "... and lists other objects" cmp -s <(h5ls -r "$ZLLM_TMP/survey-np1/stats.h5" | grep -v '^/ranks') \
    <(h5ls -r "$other/stats.h5" | grep -v '^/ranks')
  check "archive catalog content differs between -n 1 and -n $n" cmp -s <("$ZLLM_BIN/zllm" ls "$ZLLM_TMP/survey-np1/archive") \
    <("$ZLLM_BIN/zllm" ls "$other/archive")
  check "summary results differ between -n 1 and -n $n" python3 -c "
import json,sys
a=json.load(open('$ZLLM_TMP/survey-np1/summary.json')); b=json.load(open('$other/summary.json'))
sys.exit(0 if a['results']==b['results'] and b['run']['ranks']==$n else 1)"
done
finish
