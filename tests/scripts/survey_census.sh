#!/usr/bin/env bash
# zllm-survey --endpoint URL --census on 2 ranks against the look-alike
# playing a generated hub under a quota: the census goes into stats.h5
# /census (every repo once, in listing order, each column described with
# units, coded columns decodable, the Hub-scale tables summing to the
# census), the files of the --select repos (and only those) are surveyed,
# and zllm-report draws the census figures (title, labelled axes, legend,
# caption); without --select nothing but the census is crawled.
source "$(dirname "$0")/lib.sh"
N=3000
py=/usr/bin/python3 # Debian's, with h5py
start_hub "" --synthetic $N --quota api=1000,resolvers=1500,window=5
sel='library=transformers,params>=20B'
check "zllm-survey --census --select on 2 ranks" \
  mpirun_n 2 "$ZLLM_BIN/zllm-survey" --endpoint "$HS_URL" --census --select "$sel" --out "$T/s" --quiet
check "... no 429" [ "$(curl -s "$HS_URL/_stats" | $py -c 'import json,sys; print(json.load(sys.stdin)["throttled"])')" = 0 ]
want=$(awk -F'\t' 'NR > 1 && $5 == "transformers" && $9 != "" && $9 >= 2e10' "$T/s/hub/census.tsv" | wc -l)
check "... only the selected repos surveyed ($want)" [ "$(tail -n +2 "$T/s/repos.tsv" | wc -l)" -eq "$want" ]
check "... /census matches census.tsv" $py - "$T/s/stats.h5" "$T/s/hub/census.tsv" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])][1:]
c = f["/census"]
ids = [x.decode() for x in c["id"][:]]
assert ids == [r[0] for r in rows], "ids differ or are out of order"
assert len(set(ids)) == len(ids)
for k in ("id", "created_at", "last_modified", "library", "pipeline_tag", "base_relation", "gated", "dtype",
          "base_model", "base_models", "params_total", "files", "downloads", "likes"):
    assert c[k].attrs["description"] and c[k].attrs["units"], k
params = c["params_total"][:]
assert all((int(r[8]) if r[8] else -1) == p for r, p in zip(rows, params)), "params_total differs"
lib = [x.decode() for x in c["categories/library"][:]]
codes = c["library"][:]
assert all((lib[k] if k >= 0 else "") == r[4] for r, k in zip(rows, codes)), "library codes do not decode"
assert sum(c["by_month/models"][:]) == len(rows)
assert sum(c["params_hist/models"][:]) == sum(1 for r in rows if r[8] and int(r[8]) > 0)
declared = sum(1 for r in rows if r[7])
assert sum(c["by_month/declared_base"][:]) == declared
assert c["declared_bases/children"][0] == max(c["declared_bases/children"][:]) > 0
assert abs(sum(c["by_dtype/parameters"][:]) - sum(int(kv.split("=")[1]) for r in rows if r[9] for kv in r[9].split(";"))) < 1e6
PY
stop_hub
check "zllm-report draws the census figures" "$ZLLM_BIN/zllm-report" "$T/s" >"$T/r.log" 2>&1 || cat "$T/r.log"
for fig in census_growth census_dtypes census_params census_families; do
  check "$fig drawn" [ -s "$T/s/report/figures/$fig.png" ]
done
check "... each with a title, labelled axes, a legend where needed, a caption" \
  $py "$ZLLM_SRC/tests/scripts/report_figures.py" "$ZLLM_SRC/notebooks" "$T/s" "$T/figcheck"
start_hub "" --synthetic 1500
check "--census without --select: the census only" \
  mpirun_n 2 "$ZLLM_BIN/zllm-survey" --endpoint "$HS_URL" --census --out "$T/c" --quiet --no-pack
check "... nothing downloaded" [ -z "$(ls "$T/c/hub" | grep -v census.tsv)" ]
check "... /census holds the 1,500 repos" [ "$($py -c "import h5py; print(len(h5py.File('$T/c/stats.h5')['/census/id']))")" = 1500 ]
stop_hub
finish
