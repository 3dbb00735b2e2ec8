#!/usr/bin/env bash
# Results do not depend on the number of ranks: -n 1, 2 and 4 write the same
# tables and the same summary results.
source "$(dirname "$0")/lib.sh"
for n in 2 4; do
  for f in repos.tsv files.tsv tensors.tsv problems.tsv families.tsv pairs.tsv; do
    check "$f differs between -n 1 and -n $n" cmp -s "$ZLLM_TMP/survey-np1/$f" "$ZLLM_TMP/survey-np$n/$f"
  done
  check "stats.h5 differs between -n 1 and -n $n" cmp -s <(h5dump "$ZLLM_TMP/survey-np1/stats.h5" | tail -n +2) \
    <(h5dump "$ZLLM_TMP/survey-np$n/stats.h5" | tail -n +2)
  check "archive catalog content differs between -n 1 and -n $n" cmp -s <("$ZLLM_BIN/zllm" ls "$ZLLM_TMP/survey-np1/archive") \
    <("$ZLLM_BIN/zllm" ls "$ZLLM_TMP/survey-np$n/archive")
  check "summary results differ between -n 1 and -n $n" python3 -c "
import json,sys
a=json.load(open('$ZLLM_TMP/survey-np1/summary.json')); b=json.load(open('$ZLLM_TMP/survey-np$n/summary.json'))
sys.exit(0 if a['results']==b['results'] and b['run']['ranks']==$n else 1)"
done
finish
