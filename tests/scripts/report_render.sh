#!/usr/bin/env bash
# zllm-report renders every notebook headless against surveys of the sample
# hub: a crawled one (loopback Hub look-alike, --baselines, so createdAt is
# known) gives every figure; a local one gives every figure but hub growth and
# says why; a --no-pack survey without --baselines gives 9 and says why; a
# metadata-only crawl adds hub growth to a local survey; a missing or
# corrupt stats.h5 fails with the file named.  Every
# figure is also checked for a title, labelled axes, legends and a caption
# (report_figures.py).
source "$(dirname "$0")/lib.sh"
sample="$ZLLM_SRC/data/sample-hub/hub"
report="$ZLLM_BIN/zllm-report"
all_figures=(reduction_by_stage reduction_vs_throughput cumulative_reduction storage_by_dtype metadata_overhead
             delta_sparsity bit_flip_probability exponent_histograms relative_change bit_distance_heatmap
             tensor_duplication hub_growth)
notebooks=(01-storage-reduction 02-delta-structure 03-families-and-duplication 04-hub-growth 05-hub-census)
census_figures=(census_growth census_dtypes census_params census_families) # drawn with --census: survey_census.sh

is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

check_rendered() { # check_rendered REPORTDIR FIGURE...
  local dir=$1; shift
  for nb in "${notebooks[@]}"; do
    check "$nb.html rendered" [ -s "$dir/$nb.html" ]
    check "$nb.html holds no Python traceback" bash -c "! grep -q 'Traceback' '$dir/$nb.html'"
  done
  for f in "$@"; do
    check "figure $f is a non-empty PNG" is_png "$dir/figures/$f.png"
    check "index.html shows $f with its caption" grep -q "figures/$f.png\".*<figcaption><b>$f</b>" "$dir/index.html"
    check "$f is drawn inline in its notebook's HTML" grep -q "Figure $f:" "$dir"/*.html
  done
}

# every cell has an id (nbformat 4.5): nbformat warns about each one that lacks it at every render
for nb in "${notebooks[@]}"; do
  check "$nb.ipynb validates with no warning (cell ids)" /usr/bin/python3 -W error -c \
    "import nbformat, sys; nbformat.validate(nbformat.read(sys.argv[1], as_version=4))" "$ZLLM_SRC/notebooks/$nb.ipynb"
done

# 1. crawled: every figure
start_hub "$sample"
check "zllm-survey --endpoint --baselines on 2 ranks" \
  mpirun_n 2 "$ZLLM_BIN/zllm-survey" --endpoint "$HS_URL" --out "$T/crawled" --quiet --baselines
check "a metadata-only crawl of the same hub" "$ZLLM_BIN/zllm" crawl --endpoint "$HS_URL" --out "$T/meta" --metadata-only --quiet
stop_hub
check "zllm-report renders the crawled survey" "$report" "$T/crawled" >"$T/r1.log" 2>&1 || cat "$T/r1.log"
check_rendered "$T/crawled/report" "${all_figures[@]}"
check "every figure of the module is listed in this test" \
  bash -c "[ \"\$(cd '$ZLLM_SRC/notebooks' && /usr/bin/python3 zllm_report.py expected '$T/crawled' | sort)\" = \"\$(printf '%s\n' ${all_figures[*]} | sort)\" ]"
check "index.html opens with the stages and the baselines" \
  bash -c "grep -q '<td>BitX/solo coding</td>' '$T/crawled/report/index.html' && grep -q '<td>zipllm</td>' '$T/crawled/report/index.html'"
check "every figure has a title, labelled axes with units, a legend where needed, a caption" \
  /usr/bin/python3 "$ZLLM_SRC/tests/scripts/report_figures.py" "$ZLLM_SRC/notebooks" "$T/crawled" "$T/figcheck"
check "hub growth counts every crawled model" grep -q '22 models with createdAt, .*; 0 surveyed models without' "$T/crawled/report/04-hub-growth.html"

# 2. local snapshot: no crawl metadata, so no hub growth, and the report says why
check "zllm-survey of the local snapshot" \
  mpirun_n 1 "$ZLLM_BIN/zllm-survey" --hub "$sample" --out "$T/local" --quiet --baselines
check "zllm-report renders the local survey into a chosen folder" "$report" "$T/local" "$T/local-report" >"$T/r2.log" 2>&1 || cat "$T/r2.log"
local_figs=("${all_figures[@]:0:11}")
check_rendered "$T/local-report" "${local_figs[@]}"
check "no hub growth figure without createdAt" [ ! -e "$T/local-report/figures/hub_growth.png" ]
check "figures.tsv says why hub growth is not drawn" grep -q $'^hub_growth\t04-hub-growth\tnot drawn: .*crawl metadata' "$T/local-report/figures.tsv"
check "the notebook says why" grep -q "not drawn: the survey read a local snapshot" "$T/local-report/04-hub-growth.html"
check "the census notebook says why it draws nothing" grep -q "not drawn: this survey ran without --census" "$T/local-report/05-hub-census.html"

# 2a. --no-pack and no --baselines: the archive's and the baselines' figures say why they are missing
check "zllm-survey --no-pack" mpirun_n 1 "$ZLLM_BIN/zllm-survey" --hub "$sample" --out "$T/nopack" --quiet --no-pack
check "zllm-report renders the --no-pack survey" bash -c "'$report' '$T/nopack' >'$T/r6.log' 2>&1" || cat "$T/r6.log"
check "9 figures without an archive, baselines or createdAt" [ "$(ls "$T/nopack/report/figures" | wc -l)" -eq 9 ]
check "the missing archive is the reason given" grep -q $'^cumulative_reduction\t.*\tnot drawn: this survey ran with --no-pack' "$T/nopack/report/figures.tsv"
check "the missing baselines are the reason given" grep -q $'^reduction_vs_throughput\t.*\tnot drawn: this survey ran without --baselines' "$T/nopack/report/figures.tsv"

# 2b. the local survey with a metadata-only crawl's createdAt (hostile lines left out)
meta="$T/meta/.zllm/metadata.jsonl"
printf '%s\n' 'not json' '[1, 2]' '{"id":"x/no-date","files":[]}' '{"id":"x/bad-date","createdAt":"yesterday"}' \
  '{"id":"x/bad-files","createdAt":"2023-01-01T00:00:00Z","files":[{"size":"big"}]}' \
  '{"id":"x/date-type","createdAt":12}' >>"$meta"
# ... and a survey of the same hub on 2 ranks (--scaling): throughput against ranks
check "zllm-survey of the local snapshot on 2 ranks" \
  mpirun_n 2 "$ZLLM_BIN/zllm-survey" --hub "$sample" --out "$T/local2" --quiet
check "zllm-report with ZLLM_CRAWL_METADATA and --scaling" bash -c "ZLLM_CRAWL_METADATA='$meta' '$report' '$T/local' '$T/meta-report' --scaling '$T/local2' >'$T/r5.log' 2>&1" || cat "$T/r5.log"
check "hub growth drawn from the metadata crawl" is_png "$T/meta-report/figures/hub_growth.png"
check "throughput against ranks drawn" is_png "$T/meta-report/figures/throughput_vs_ranks.png"
check "... with a title, labelled axes, a legend and a caption" \
  env ZLLM_SCALING="$T/local2" /usr/bin/python3 "$ZLLM_SRC/tests/scripts/report_figures.py" "$ZLLM_SRC/notebooks" "$T/local" "$T/figcheck2"
check "the module draws these figures and throughput_vs_ranks, no other" \
  bash -c "[ \"\$(cd '$ZLLM_SRC/notebooks' && /usr/bin/python3 -c 'import zllm_report as z; print(*z.FIGURES, sep=chr(10))' | sort)\" = \"\$(printf '%s\n' ${all_figures[*]} throughput_vs_ranks ${census_figures[*]} | sort)\" ]"
check "... from 1 and 2 ranks" grep -q "speed-up of the whole survey: 1 ranks 1.00x, 2 ranks " "$T/meta-report/01-storage-reduction.html"
check "figures.tsv says why it is not drawn without --scaling" grep -q $'^throughput_vs_ranks\t01-storage-reduction\tnot drawn: no survey of this hub at another rank count' "$T/local-report/figures.tsv"
check "--scaling with a folder without stats.h5 is refused" bash -c "! '$report' '$T/local' '$T/x-report' --scaling '$T/empty-none' 2>'$T/r7.log' && grep -q 'empty-none: no stats.h5' '$T/r7.log'"
check "every crawled model counted, the bad lines left out" grep -q "22 models with createdAt, .*(from $meta); 0 surveyed models without" "$T/meta-report/04-hub-growth.html"

# 3. bad input: named, non-zero
mkdir -p "$T/empty"
if "$report" "$T/empty" >"$T/r3.log" 2>&1; then bad "an OUTDIR without stats.h5 is accepted"; else ok; fi
check "the missing stats.h5 is named" grep -q "$T/empty/stats.h5: missing" "$T/r3.log"
mkdir -p "$T/corrupt"
head -c 4096 "$T/local/stats.h5" >"$T/corrupt/stats.h5"
if "$report" "$T/corrupt" >"$T/r4.log" 2>&1; then bad "a truncated stats.h5 renders"; else ok; fi
check "the failing notebook is named" grep -q "01-storage-reduction.ipynb: the notebook failed to run against $T/corrupt/stats.h5" "$T/r4.log"
finish
