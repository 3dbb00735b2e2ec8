#!/usr/bin/env bash
# zllm cluster under mpiexec with 1, 2 and 4 ranks gives the same families
# and the same compared pairs.  Usage: cluster_ranks.sh HUB
source "$(dirname "$0")/lib.sh"
hub=$1
for n in 1 2 4; do
  check "cluster on $n ranks" mpirun_n "$n" "$ZLLM_BIN/zllm" cluster --hub "$hub" --out "$T/f$n.tsv" \
    --pairs "$T/p$n.tsv" --quiet
done
for n in 2 4; do
  check "families.tsv identical, 1 and $n ranks" cmp -s "$T/f1.tsv" "$T/f$n.tsv"
  check "pairs identical, 1 and $n ranks" cmp -s "$T/p1.tsv" "$T/p$n.tsv"
done
check "families.tsv has every repo" [ "$(($(wc -l <"$T/f1.tsv") - 1))" -eq "$(find "$hub" -mindepth 2 -maxdepth 2 -type d | wc -l)" ]
finish
