#!/usr/bin/env bash
# zllm-survey with a crawl source: rank 0 crawls the Hub look-alike on
# loopback into OUT/hub, then N ranks survey it.  Usage: survey_crawl.sh N
source "$(dirname "$0")/lib.sh"
n=$1
sample="$ZLLM_SRC/data/sample-hub/hub"
out="$T/survey"
# the two-rank run also meets 429s with Retry-After (slower: the listing pages wait)
if [ "$n" -eq 2 ]; then start_hub "$sample" --faults 429; else start_hub "$sample"; fi
check "zllm-survey --endpoint on $n ranks" mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --endpoint "$HS_URL" --out "$out" --quiet
stop_hub
check "the crawled hub is the served one" diff -r -x .zllm "$sample" "$out/hub"
check "stats.h5 and the archive are written" [ -s "$out/stats.h5" ] && [ -s "$out/archive/catalog.sqlite" ]
check "every crawled repo is in families.tsv" [ "$(($(wc -l <"$out/families.tsv") - 1))" -eq "$(cd "$sample" && ls -d */* | wc -l)" ]
check "the archive verifies" "$ZLLM_BIN/zllm" verify "$out/archive"
check "stats.h5 holds every crawled createdAt" bash "$ZLLM_SRC/tests/scripts/survey_stats.sh" "$out" "$ZLLM_SRC/data/sample-hub/MANIFEST.tsv" created
finish
