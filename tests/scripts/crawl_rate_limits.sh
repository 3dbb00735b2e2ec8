#!/usr/bin/env bash
# The crawl inside a server's rate limits.  The Hub look-alike enforces
# quotas per class in fixed windows (--quota) and says so in the Hub's
# RateLimit / RateLimit-Policy fields: a crawl on 1 and 2 ranks meets no
# 429 and uses each class's quota in full in its busiest window; with a
# server that states no limits, --rate keeps it under them (no 429), and
# without --rate the 429s it meets are waited out, not failures.  Servers
# that lie in their fields (r=0 always, r=10^9 with t=0, garbage) neither
# hang the crawl nor fail it: the same snapshot, every time.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
hub="$T/hub"
small_hub "$hub"
quota="api=3,resolvers=4,window=2" # t comes in whole seconds: a window of 2 s at least leaves a burst room (docs/CRAWL.md)
stats() { curl -s "$HS_URL/_stats"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
same() { diff -r -x .zllm "$hub" "$1" >/dev/null; }
# run OUT.log COMMAND...: rc holds its exit status (no rank may hang: 120 s)
run() { local log=$1; shift; rc=0; timeout -k 5 120 "$@" >"$log" 2>&1 || rc=$?; }

for n in 1 2; do
  start_hub "$hub" --quota "$quota"
  out="$T/q$n"
  if [ "$n" = 1 ]; then run "$out.log" "$z" crawl --endpoint "$HS_URL" --out "$out" --quiet
  else run "$out.log" "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" 2 --oversubscribe "$z" crawl \
    --endpoint "$HS_URL" --out "$out" --quiet; fi
  check "$n rank(s) under a quota: the crawl ends well" [ "$rc" -eq 0 ]
  check "... the snapshot is the hub" same "$out"
  s=$(stats)
  check "... no 429 (server: $s)" [ "$(echo "$s" | field 'd["throttled"]')" = 0 ]
  check "... the api quota used in full in a window" [ "$(echo "$s" | field 'd["peak_per_window"]["api"]')" = 3 ]
  check "... the resolvers quota too" [ "$(echo "$s" | field 'd["peak_per_window"]["resolvers"]')" = 4 ]
  check "... it says how long it waited" grep -q "rate limits: .* s waiting for windows, 0 answers of 429" "$out.log"
  stop_hub
done

start_hub "$hub" --quota "$quota" --lie silent
run "$T/rate.log" "$z" crawl --endpoint "$HS_URL" --out "$T/rate" --quiet --rate "$quota"
check "a server without RateLimit fields, --rate: the crawl ends well" [ "$rc" -eq 0 ]
check "... no 429" [ "$(stats | field 'd["throttled"]')" = 0 ]
stop_hub

start_hub "$hub" --quota "$quota" --lie silent
run "$T/norate.log" "$z" crawl --endpoint "$HS_URL" --out "$T/norate" --quiet
check "the same server without --rate: the crawl ends well" [ "$rc" -eq 0 ]
check "... the snapshot is the hub" same "$T/norate"
check "... the 429s were waited out, not retried" grep -q ", 0 retries, 0 problems" "$T/norate.log"
check "... and there were some" [ "$(stats | field 'd["throttled"]')" -gt 0 ]
stop_hub

for lie in zero huge garbage; do
  start_hub "$hub" --quota "$quota" --lie "$lie"
  run "$T/lie-$lie.log" "$z" crawl --endpoint "$HS_URL" --out "$T/lie-$lie" --quiet
  check "a server lying in its RateLimit field ($lie): the crawl ends well, in time" [ "$rc" -eq 0 ]
  check "... the snapshot is the hub" same "$T/lie-$lie"
  stop_hub
done

check "a bad --rate is refused" bash -c "! '$z' crawl --endpoint http://127.0.0.1:9 --out '$T/bad' --rate api=0 >'$T/bad.log' 2>&1"
check "... saying why" grep -q "rate api=0" "$T/bad.log"
finish
