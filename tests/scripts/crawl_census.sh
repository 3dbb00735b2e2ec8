#!/usr/bin/env bash
# The census of a hub from its listing (zllm crawl --census) and the crawl of
# the repos it selects (--select), against the look-alike playing a
# generated hub (hubserver.py --synthetic) that enforces a quota.
#  - 1 and 2 ranks: every repo exactly once, the same census.tsv, no 429,
#    the quota used in full in a window; a rerun asks nothing.
#  - kill -9 twice, then a rerun: census.tsv equals the uninterrupted one,
#    and no page the census had logged as done is asked again.
#  - hostile listings: bad ids, huge and malformed fields (named, skipped,
#    the TSV's shape kept), a cursor that loops back (stopped, no row twice).
#  - --select on 1 and 2 ranks (--metadata-only): the same metadata.jsonl,
#    each rank making >= 40% of the requests; killed and rerun on another
#    rank count, the same result, and no repo done asked again.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
N=9000
mpi2=("${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 2 --oversubscribe)
stats() { curl -s "$HS_URL/_stats"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
run() { local log=$1; shift; rc=0; timeout -k 5 180 "$@" >"$log" 2>&1 || rc=$?; }
start_synth() { start_hub "" --synthetic "$1" --page-log "$T/pages" "${@:2}"; }
rows() { tail -n +2 "$1" | wc -l; }
once() { [ -z "$(tail -n +2 "$1" | cut -f1 | sort | uniq -d | head -1)" ]; }
shape() { awk -F'\t' 'NF != 14 { bad = 1 } END { exit bad }' "$1"; }

# ---- 1 and 2 ranks under a quota ------------------------------------------------
: >"$T/pages"
start_synth $N --quota api=3,window=2
run "$T/c1.log" "$z" crawl --census --endpoint "$HS_URL" --out "$T/c1" --quiet
check "census on 1 rank ends well ($(tail -3 "$T/c1.log"))" [ "$rc" -eq 0 ]
check "... every repo once: $N rows" [ "$(rows "$T/c1/census.tsv")" -eq $N ]
check "... no id twice" once "$T/c1/census.tsv"
check "... every row has the 14 columns" shape "$T/c1/census.tsv"
check "... the header row" grep -qx "$(printf 'id\tsha\tcreated_at\tlast_modified\tlibrary\tpipeline_tag\tbase_relation\tbase_models\tparams_total\tparams_by_dtype\tgated\tfiles\tdownloads\tlikes')" "$T/c1/census.tsv"
s=$(stats)
check "... no 429 ($s)" [ "$(echo "$s" | field 'd["throttled"]')" = 0 ]
check "... the quota used in full in a window" [ "$(echo "$s" | field 'd["peak_per_window"]["api"]')" = 3 ]
check "... 9 pages asked" [ "$(wc -l <"$T/pages")" -eq 9 ]
run "$T/c1b.log" "$z" crawl --census --endpoint "$HS_URL" --out "$T/c1" --quiet
check "a rerun ends well" [ "$rc" -eq 0 ]
check "... and asks no page" [ "$(wc -l <"$T/pages")" -eq 9 ]
check "... and says so" grep -q "0 pages asked by this run (9 done before)" "$T/c1b.log"
# a fresh look-alike: the runs above spent its current window, and the limit is the client's (a new
# process cannot know what an earlier one spent: its first request would meet the 429)
stop_hub
start_synth $N --quota api=3,window=2
run "$T/c2.log" "${mpi2[@]}" "$z" crawl --census --endpoint "$HS_URL" --out "$T/c2" --quiet
check "census on 2 ranks ends well ($(tail -3 "$T/c2.log"))" [ "$rc" -eq 0 ]
check "... the same census.tsv as 1 rank" cmp -s "$T/c1/census.tsv" "$T/c2/census.tsv"
check "... still no 429" [ "$(stats | field 'd["throttled"]')" = 0 ]

# ---- kill -9 twice, then a rerun ------------------------------------------------------
: >"$T/pages"
: >"$T/logged"
kill_after() { # kill_after SECONDS: runs the census, kills it with SIGKILL
  "$z" crawl --census --endpoint "$HS_URL" --out "$T/k" --quiet >>"$T/k.log" 2>&1 &
  local pid=$!
  sleep "$1"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # the pages the census had logged as done when it died: none may be asked again
  grep -cE '^[0-9]+	' "$T/k/.zllm/census.pages" >>"$T/logged" || echo 0 >>"$T/logged"
}
stop_hub
start_synth $N --quota api=2,window=2
kill_after 1.7
kill_after 2.2
run "$T/k3.log" "$z" crawl --census --endpoint "$HS_URL" --out "$T/k" --quiet
check "after kill -9 twice the rerun ends well ($(tail -2 "$T/k3.log"))" [ "$rc" -eq 0 ]
check "... census.tsv equals the uninterrupted one" cmp -s "$T/c1/census.tsv" "$T/k/census.tsv"
check "... the kills landed mid-census ($(tr '\n' ' ' <"$T/logged"))" [ "$(sort -n "$T/logged" | tail -1)" -lt 9 ]
# every page asked at most once, except one in flight at a kill (asked again by the next run)
dups=$(sort "$T/pages" | uniq -d | wc -l)
check "... no page asked three times" [ -z "$(sort "$T/pages" | uniq -c | awk '$1 > 2')" ]
check "... at most one page asked again per kill ($dups)" [ "$dups" -le 2 ]
restarts_where_left() { # each run after a kill starts at the page the killed run had not logged
  python3 - "$T/pages" "$T/logged" <<'EOF'
import sys
asked = [int(x) // 1000 for x in open(sys.argv[1])]
logged = {int(x) for x in open(sys.argv[2])}
restarts = [asked[i] for i in range(1, len(asked)) if asked[i] <= asked[i - 1]]
# without a page in flight at a kill the runs ask 0, 1, 2, ... with no restart visible
sys.exit(0 if set(asked) == set(range(9)) and all(r in logged for r in restarts) else 1)
EOF
}
check "... each rerun asked from the first page not logged on ($(tr '\n' ' ' <"$T/pages"))" restarts_where_left
# a torn last line of the page log (a kill while it was written) is dropped
rm -rf "$T/t"
mkdir -p "$T/t"
cp -r "$T/k/.zllm" "$T/t/"
head -4 "$T/k/.zllm/census.pages" >"$T/t/.zllm/census.pages"
printf '4\t4000\t7' >>"$T/t/.zllm/census.pages"
cp "$T/k/census.tsv" "$T/t/census.tsv"
run "$T/t.log" "$z" crawl --census --endpoint "$HS_URL" --out "$T/t" --quiet
check "a torn page-log line: the rerun ends well" [ "$rc" -eq 0 ]
check "... says it dropped the line" grep -q "torn line" "$T/t.log"
check "... and the census is the same" cmp -s "$T/c1/census.tsv" "$T/t/census.tsv"
check "... asking from page 4 on" grep -q "6 pages asked by this run (3 done before)" "$T/t.log"
stop_hub

# ---- hostile listings -------------------------------------------------------------------
start_synth 3000 --faults hostilecensus
run "$T/h.log" "$z" crawl --census --endpoint "$HS_URL" --out "$T/h" --quiet
check "a hostile listing: exit 1 (problems), not a crash ($rc)" [ "$rc" -eq 1 ]
check "... bad ids named and skipped" grep -q "skipped: repo id '../evil'" "$T/h.log"
check "... ids with two slashes too" grep -q "skipped: repo id 'a/b/c'" "$T/h.log"
check "... huge and malformed fields named" grep -q "field(s) baseModels break their rule" "$T/h.log"
check "... control characters named" grep -q "field(s) pipeline_tag break their rule" "$T/h.log"
skipped=$(grep -c "skipped: repo id" "$T/h.log")
check "... every other repo is there ($skipped skipped)" [ "$(rows "$T/h/census.tsv")" -eq $((3000 - skipped)) ]
check "... the shape kept" shape "$T/h/census.tsv"
check "... no id twice" once "$T/h/census.tsv"
stop_hub
start_synth 6000 --faults loopback
run "$T/l.log" "$z" crawl --census --endpoint "$HS_URL" --out "$T/l" --quiet
check "a cursor that loops back: exit 1, not a hang ($rc)" [ "$rc" -eq 1 ]
check "... named" grep -q "a cursor that loops" "$T/l.log"
check "... the pages before it kept, none twice" [ "$(rows "$T/l/census.tsv")" -eq 3000 ]
check "... no id twice" once "$T/l/census.tsv"
stop_hub

# ---- --select over ranks ---------------------------------------------------------------
start_synth $N --quota api=750,resolvers=1000,pages=1000,window=5
sel='library=transformers,params>=2B,created<2025'
want=$(awk -F'\t' 'NR > 1 && $5 == "transformers" && $9 != "" && $9 >= 2e9 && substr($3, 1, 4) < "2025"' "$T/c1/census.tsv" | wc -l)
for n in 1 2; do
  # a new process cannot know what the run before it spent of the current
  # window (the limit is the client's): each run starts in a window of its own
  [ $n = 1 ] || sleep 5
  mkdir -p "$T/s$n"
  cp "$T/c1/census.tsv" "$T/s$n/"
  if [ $n = 1 ]; then run "$T/s$n.log" "$z" crawl --select "$sel" --metadata-only --endpoint "$HS_URL" --out "$T/s$n" --quiet
  else run "$T/s$n.log" "${mpi2[@]}" "$z" crawl --select "$sel" --metadata-only --endpoint "$HS_URL" --out "$T/s$n" --quiet; fi
  check "--select on $n rank(s) ends well ($(tail -3 "$T/s$n.log"))" [ "$rc" -eq 0 ]
  check "... one line per selected repo ($want)" [ "$(wc -l <"$T/s$n/.zllm/metadata.jsonl")" -eq "$want" ]
done
check "--select: the same metadata.jsonl on 1 and 2 ranks" cmp -s "$T/s1/.zllm/metadata.jsonl" "$T/s2/.zllm/metadata.jsonl"
check "... no 429" [ "$(stats | field 'd["throttled"]')" = 0 ]
share=$(sed -n 's/.*made between \([0-9]*\) and \([0-9]*\) of the \([0-9]*\) requests.*/\1 \3/p' "$T/s2.log")
check "... each rank made >= 40% of the requests ($share)" python3 -c "import sys; lo, all = map(int, sys.argv[1:]); sys.exit(0 if lo >= 0.4 * all else 1)" $share
mkdir -p "$T/sk"
cp "$T/c1/census.tsv" "$T/sk/"
"$z" crawl --select "$sel" --metadata-only --endpoint "$HS_URL" --out "$T/sk" --quiet >"$T/sk1.log" 2>&1 &
pid=$!
for _ in $(seq 300); do ls "$T"/sk/.zllm/metadata.*.part >/dev/null 2>&1 && [ -s "$(ls "$T"/sk/.zllm/metadata.*.part | head -1)" ] && break; sleep 0.1; done
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
done_before=$(cat "$T"/sk/.zllm/metadata.*.part 2>/dev/null | grep -c "	OK	" || true)
# the look-alike logs the answers it was still sending to the killed run; and
# the rerun starts in a window the killed run spent nothing of
sleep 5
: >"$T/hs.log"
run "$T/sk2.log" "${mpi2[@]}" "$z" crawl --select "$sel" --metadata-only --endpoint "$HS_URL" --out "$T/sk" --quiet
check "--select killed on 1 rank, rerun on 2: ends well ($(tail -2 "$T/sk2.log"))" [ "$rc" -eq 0 ]
check "... the same metadata.jsonl" cmp -s "$T/s1/.zllm/metadata.jsonl" "$T/sk/.zllm/metadata.jsonl"
infos=$(grep -c '"GET /api/models/[^?]* HTTP/1.1" 200' "$T/hs.log" || true)
check "... no 429 on the rerun ($(grep -c '" 429 ' "$T/hs.log" || true))" [ "$(grep -c '" 429 ' "$T/hs.log" || true)" -eq 0 ]
check "... the kill landed mid-selection ($done_before of $want done)" [ "$done_before" -gt 0 -a "$done_before" -lt "$want" ]
check "... the repos done were not asked again ($infos infos)" [ "$infos" -le $((want - done_before)) ]
: >"$T/hs.log"
run "$T/sk3.log" "$z" crawl --select "$sel" --metadata-only --endpoint "$HS_URL" --out "$T/sk" --quiet
check "a rerun of a finished selection ends well" [ "$rc" -eq 0 ]
check "... and asks nothing" [ "$(grep -c 'GET /' "$T/hs.log" || true)" -eq 0 ]
stop_hub
finish
