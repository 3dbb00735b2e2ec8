#!/usr/bin/env bash
# Results do not depend on the number of ranks: -n 1, 2 and 4 write the same
# tables and the same summary results (stats.h5's /ranks aside: a row per rank).
source "$(dirname "$0")/lib.sh"
for n in 2 4; do
  for f in repos.tsv files.tsv tensors.tsv problems.tsv families.tsv pairs.tsv; do
    check "$f differs between -n 1 and -n $n" cmp -s "$ZLLM_TMP/survey-np1/$f" "$ZLLM_TMP/survey-np$n/$f"
  done
  # every value but /ranks (each rank's own seconds and reads: a row per rank)
  check "stats.h5 differs between -n 1 and -n $n" h5diff --exclude-path /ranks "$ZLLM_TMP/survey-np1/stats.h5" \
    "$ZLLM_TMP/survey-np$n/stats.h5"
  check "... and lists other objects" cmp -s <(h5ls -r "$ZLLM_TMP/survey-np1/stats.h5" | grep -v '^/ranks') \
    <(h5ls -r "$ZLLM_TMP/survey-np$n/stats.h5" | grep -v '^/ranks')
  check "archive catalog content differs between -n 1 and -n $n" cmp -s <("$ZLLM_BIN/zllm" ls "$ZLLM_TMP/survey-np1/archive") \
    <("$ZLLM_BIN/zllm" ls "$ZLLM_TMP/survey-np$n/archive")
  check "summary results differ between -n 1 and -n $n" python3 -c "
import json,sys
a=json.load(open('$ZLLM_TMP/survey-np1/summary.json')); b=json.load(open('$ZLLM_TMP/survey-np$n/summary.json'))
sys.exit(0 if a['results']==b['results'] and b['run']['ranks']==$n else 1)"
done
finish
