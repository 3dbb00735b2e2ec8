#!/usr/bin/env bash
# The census at Hub scale and a header survey over ranks, against the Hub
# look-alike playing a generated hub (tests/hubserver/hubserver.py
# --synthetic, seeded) on 127.0.0.1 that enforces a quota with the Hub's
# RateLimit headers and 429s.
#
#  1. `zllm crawl --census` of a 3,000,000-repo listing (1,000 repos a page)
#     under a quota of 100 pages per 3-second window: wall time, peak RSS,
#     rows (each id once), 429s, and the share of the quota it used (answered
#     pages over the quota of the windows it ran in, the first and last
#     windows left out).
#  2. The same census killed with SIGKILL twice (at KILL1 and KILL2 seconds)
#     and run again: census.tsv against the uninterrupted run's, and the
#     look-alike's page log (pages asked twice: a page in flight at a kill).
#  3. `zllm crawl --select EXPR --metadata-only` (info, tree and the
#     safetensors headers of ~20,000 selected repos) on 1 and 2 ranks under an
#     api quota: 429s, the requests each rank made, and metadata.jsonl of 2
#     ranks against 1 rank's.
#
# The look-alike writes its listing once to CACHE (1.6 GB for 3 M repos,
# ~2 minutes); later runs reuse it.
# Usage: bench/bench_census.sh [BUILD_DIR]
#        env: REPOS (3000000), QUOTA (api=100,window=3), KILL1 (25), KILL2 (50),
#             SELECT (library=transformers,params>=1B,created<2022-07-01),
#             SELECT_QUOTA (api=3000,resolvers=6000,window=5), CACHE (/tmp/zllm-listing-cache),
#             STAGES ("census kill select"), CENSUS=FILE (the select stage's census.tsv when the
#             census stage is not run)
set -euo pipefail
build=${1:-build}
bin=$(cd "$build/bin" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
repos=${REPOS:-3000000}
quota=${QUOTA:-api=100,window=3}
kill1=${KILL1:-25}
kill2=${KILL2:-50}
select=${SELECT:-library=transformers,params>=1B,created<2022-07-01}
select_quota=${SELECT_QUOTA:-api=3000,resolvers=6000,window=5}
cache=${CACHE:-/tmp/zllm-listing-cache}
work=$(mktemp -d /tmp/zllm-census.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

start_hub() { # start_hub ARGS...: the look-alike on a free port, its URL in $url
  rm -f "$work/port"
  python3 "$here/tests/hubserver/hubserver.py" --synthetic "$repos" --listing-cache "$cache" \
    --port-file "$work/port" "$@" &
  pid=$!
  for _ in $(seq 3000); do [ -s "$work/port" ] && break; sleep 0.1; done # the first run writes the cache
  url="http://127.0.0.1:$(cat "$work/port")"
}
stop_hub() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }
stats() { curl -s "$url/_stats"; }
peak_mb() { awk '/Maximum resident set size/ { printf "%.0f", $6 / 1024 }' "$1"; }
quota_used() { # quota_used CLASS QUOTA: answered over quota in the full windows of the run
  stats | python3 -c "
import json, sys
w = {int(k): v for k, v in json.load(sys.stdin)['answered_per_window'].get('$1', {}).items()}
full = range(min(w) + 1, max(w)) if len(w) > 2 else []
print('%.1f%% over %d windows' % (100.0 * sum(w.get(i, 0) for i in full) / ($2 * len(full)), len(full)) if full else 'n/a')"
}
pages_quota=$(echo "$quota" | sed -n 's/.*api=\([0-9]*\).*/\1/p')
stages=${STAGES:-census kill select}
has() { case " $stages " in *" $1 "*) return 0 ;; esac; return 1; }

if has census || has kill; then
echo "== census of a $repos-repo look-alike, quota $quota (zllm crawl --census, 1 rank)"
start_hub --quota "$quota" --page-log "$work/pages-full"
/usr/bin/time -v "$bin/zllm" crawl --census --endpoint "$url" --out "$work/full" --quiet \
  >"$work/full.out" 2>"$work/full.time"
cat "$work/full.out"
rows=$(($(wc -l <"$work/full/census.tsv") - 1))
dups=$(tail -n +2 "$work/full/census.tsv" | cut -f1 | sort -S 1G | uniq -d | wc -l)
echo "wall $(awk -F': ' '/Elapsed/ { print $2 }' "$work/full.time"), peak RSS $(peak_mb "$work/full.time") MB," \
  "$rows rows ($dups ids twice), pages asked $(wc -l <"$work/pages-full"), 429s $(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["throttled"])')," \
  "quota used $(quota_used api "$pages_quota")"
stop_hub

fi
if has kill; then
echo "== the same census killed with SIGKILL at ${kill1} s and ${kill2} s of its runs, then run again"
start_hub --quota "$quota" --page-log "$work/pages-kill"
for t in "$kill1" "$kill2"; do
  "$bin/zllm" crawl --census --endpoint "$url" --out "$work/kill" --quiet >>"$work/kill.out" 2>&1 &
  cpid=$!
  sleep "$t"
  kill -9 "$cpid"
  wait "$cpid" 2>/dev/null || true
  echo "killed after $t s: $(grep -c '^[0-9]' "$work/kill/.zllm/census.pages") pages logged"
done
"$bin/zllm" crawl --census --endpoint "$url" --out "$work/kill" --quiet | head -1
if cmp -s "$work/full/census.tsv" "$work/kill/census.tsv"; then same=identical; else same=DIFFERENT; fi
twice=$(sort "$work/pages-kill" | uniq -d | wc -l)
echo "census.tsv $same to the uninterrupted run's; pages asked $(wc -l <"$work/pages-kill"), asked twice $twice" \
  "(a page in flight when a kill came is asked again; a page logged done never is)"
stop_hub

fi
census=${CENSUS:-$work/full/census.tsv}
if has select; then
echo "== --select '$select' --metadata-only, quota $select_quota"
start_hub --quota "$select_quota"
n=$(($(wc -l <"$census") - 1))
for ranks in 1 2; do
  mkdir -p "$work/sel$ranks"
  ln -s "$census" "$work/sel$ranks/census.tsv"
  before=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["throttled"])')
  start=$(date +%s.%N)
  mpirun --oversubscribe -n "$ranks" "$bin/zllm" crawl --select "$select" --metadata-only --endpoint "$url" \
    --out "$work/sel$ranks" --quiet >"$work/sel$ranks.out" 2>&1 || true
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  after=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["throttled"])')
  echo "$ranks rank(s): $(wc -l <"$work/sel$ranks/.zllm/metadata.jsonl") repos in ${secs%.*} s, 429s $((after - before))"
  grep -E "^crawl:|^over|^rate limits|headers read" "$work/sel$ranks.out" || true
done
if cmp -s "$work/sel1/.zllm/metadata.jsonl" "$work/sel2/.zllm/metadata.jsonl"; then
  echo "metadata.jsonl of 2 ranks identical to 1 rank's"
else
  echo "metadata.jsonl of 2 ranks DIFFERS from 1 rank's"
fi
stop_hub
echo "(of $n census rows)"
fi
