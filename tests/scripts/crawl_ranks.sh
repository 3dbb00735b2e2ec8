#!/usr/bin/env bash
# `zllm crawl` under mpirun: N ranks share the downloads of one crawl of the
# Hub look-alike on loopback.  The snapshot and metadata.jsonl are those of a
# one-rank crawl, every rank downloads a share, transient faults are retried
# on whichever rank meets them, and a bad file on one rank (a wrong sha256, a
# malicious path, a redirect loop, an error page without end, a spent retry
# budget) fails that item only, naming it, while the job ends on every rank.
# A crawl over ranks killed with kill -9 resumes, on any number of ranks.
# Usage: crawl_ranks.sh N HUB
source "$(dirname "$0")/lib.sh"
n=$1
hub=$2
z="$ZLLM_BIN/zllm"
nrepos=$(cd "$hub" && ls -d */* | wc -l)
nfiles=$(find "$hub" -type f | wc -l)
same() { diff -r -x .zllm "$hub" "$1" >/dev/null; }
# no rank may hang: a job that does not end in time fails the check
ranks() { timeout -k 10 240 "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe "$z" crawl "$@"; }
ranks_to() { local out=$1; shift; ranks "$@" >"$out" 2>&1; } # ranks_to OUTPUT ARGS...
fails() { ! "$@"; }

start_hub "$hub"
check "one-rank crawl (the reference)" "$z" crawl --endpoint "$HS_URL" --out "$T/one" --quiet >/dev/null
check "one-rank metadata-only crawl (the reference)" "$z" crawl --endpoint "$HS_URL" --out "$T/one-md" --quiet \
  --metadata-only >/dev/null
export ZLLM_PROGRESS_SECONDS=0 # a progress line at every update, in this log
check "crawl on $n ranks" ranks_to "$T/n.out" --endpoint "$HS_URL" --out "$T/n"
unset ZLLM_PROGRESS_SECONDS
check "... identical to the served hub" same "$T/n"
check "... metadata.jsonl identical to the one-rank crawl's" cmp "$T/one/.zllm/metadata.jsonl" "$T/n/.zllm/metadata.jsonl"
check "... all $nfiles files downloaded once" grep -q "$nfiles files downloaded, 0 already verified, 0 failed" "$T/n.out"
mb=$(find "$hub" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.1f", s / 1e6 }')
check "... rank 0's last download progress line counts every rank's bytes (100% of $mb MB)" \
  bash -c "grep 'crawl download:' '$T/n.out' | tail -1 | grep -q '100.0% ($mb of $mb MB)'"
check "... and no other rank prints progress" bash -c "! grep -q 'zllm\[r[1-9]\].*crawl download' '$T/n.out'"
lo=$(sed -n 's/.*each received between \([0-9.]*\) and.*/\1/p' "$T/n.out")
check "... every one of the $n ranks downloaded a share (least: ${lo:-?} MB)" \
  awk -v lo="${lo:-0}" 'BEGIN { exit !(lo > 0) }'
check "... the ranks' ledgers folded into verified.tsv" \
  bash -c "[ \"\$(wc -l <'$T/n/.zllm/verified.tsv')\" -eq $nfiles ] && ! ls '$T/n/.zllm/'verified.*.tsv 2>/dev/null"
check "again on 1 rank: nothing downloaded again" \
  bash -c "'$z' crawl --endpoint '$HS_URL' --out '$T/n' --quiet | grep -q ' 0 files downloaded, $nfiles already verified'"
check "metadata-only on $n ranks" ranks_to "$T/md.out" --endpoint "$HS_URL" --out "$T/n-md" --quiet --metadata-only
check "... metadata.jsonl (headers, dtypes) identical to the one-rank crawl's" \
  cmp "$T/one-md/.zllm/metadata.jsonl" "$T/n-md/.zllm/metadata.jsonl"
stop_hub

for fault in 429 500 reset; do
  start_hub "$hub" --faults "$fault"
  check "fault '$fault' on $n ranks" ranks_to "$T/f-$fault.out" --endpoint "$HS_URL" --out "$T/f-$fault" --jobs 2 --quiet
  check "... identical to the served hub" same "$T/f-$fault"
  if [ "$fault" = 429 ]; then
    check "... waited out, not retried" grep -Eq '[1-9][0-9]* answers of 429' "$T/f-$fault.out"
  else
    check "... retried" grep -Eq ' [1-9][0-9]* retries' "$T/f-$fault.out"
  fi
  stop_hub
done

# a bad file on one rank: that item fails, named; the job ends; the rest lands
first=$(cd "$hub" && ls -d */* | head -1)
start_hub "$hub" --faults badsha
check "a wrong sha256 on one rank: exit 1" fails ranks_to "$T/sha.out" --endpoint "$HS_URL" --out "$T/b-sha" --quiet
check "... naming the file and the rule" grep -q "$first/.*sha256 differs" "$T/sha.out"
check "... the other repos identical" bash -c "diff -r -x .zllm -x '$(basename "$first")' '$hub' '$T/b-sha' >/dev/null"
check "... metadata.jsonl still has every repo" [ "$(wc -l <"$T/b-sha/.zllm/metadata.jsonl")" -eq "$nrepos" ]
stop_hub

for fault in malicious loop endless404; do
  start_hub "$hub" --faults "$fault"
  check "fault '$fault' on one rank: the job ends with exit 1" \
    fails ranks_to "$T/b-$fault.out" --endpoint "$HS_URL" --out "$T/b-$fault/snap" --quiet
  check "... naming the first repo" grep -q "crawl: $first" "$T/b-$fault.out"
  check "... nothing written outside the snapshot" [ ! -e "$T/b-$fault/escape.txt" ]
  stop_hub
done

start_hub "$hub" --faults 500
check "retry budget 0 on every rank: exit 1" fails ranks_to "$T/budget.out" --endpoint "$HS_URL" --out "$T/b-budget" \
  --retries 0 --quiet
check "... saying why" grep -q 'retry budget spent' "$T/budget.out"
check "... and still writing every repo's metadata" [ "$(wc -l <"$T/b-budget/.zllm/metadata.jsonl")" -eq "$nrepos" ]
stop_hub

# the crawl itself failing on the last rank (as on running out of memory):
# every rank ends, with the reason, in zllm crawl and in zllm-survey --endpoint
start_hub "$hub"
check "a rank failing its crawl: zllm crawl exits 1 on every rank" \
  fails env ZLLM_TEST_CRAWL_FAIL=$((n - 1)) bash -c "$(declare -f ranks ranks_to); n=$n z='$z'; ranks_to '$T/hard.out' --endpoint '$HS_URL' --out '$T/hard' --quiet"
check "... the failing rank naming why" grep -q "r$((n - 1))\].*crawl failed on this rank: .*out of memory (ZLLM_TEST_CRAWL_FAIL)" "$T/hard.out"
check "... and zllm-survey --endpoint ends too, with the reason" \
  bash -c "! ZLLM_TEST_CRAWL_FAIL=$((n - 1)) timeout -k 10 240 '${MPIEXEC:-mpiexec}' '${MPIEXEC_NUMPROC_FLAG:--n}' $n --oversubscribe \
    '$ZLLM_BIN/zllm-survey' --endpoint '$HS_URL' --out '$T/hard-survey' --quiet >'$T/hard-survey.out' 2>&1 &&
    grep -q 'ZLLM_TEST_CRAWL_FAIL' '$T/hard-survey.out' && [ ! -e '$T/hard-survey/stats.h5' ]"
stop_hub

# killed during the downloads (one file trickles, so the crawl cannot be
# done), then resumed on another number of ranks
start_hub "$hub" --faults trickle
"${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe "$z" crawl --endpoint "$HS_URL" \
  --out "$T/k" --quiet >/dev/null 2>&1 &
pid=$!
verified_lines() { cat "$T/k/.zllm/"verified*.tsv 2>/dev/null | wc -l; }
for _ in $(seq 300); do [ "$(verified_lines)" -ge 5 ] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null || true
pkill -9 -f -- "--out $T/k " 2>/dev/null || true
wait "$pid" 2>/dev/null || true
stop_hub
# a file renamed into place whose ledger line was not yet written is verified
# again by hashing it: count what is in place
before=$(cd "$T/k" && find . -type f -not -path './.zllm/*' | wc -l)
check "killed after $before files were in place, before the last" \
  awk -v b="$before" -v n="$nfiles" 'BEGIN { exit !(b >= 5 && b < n) }'
start_hub "$hub"
m=$((n > 1 ? n - 1 : 2))
check "resumed on $m ranks" timeout -k 10 240 "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$m" --oversubscribe \
  "$z" crawl --endpoint "$HS_URL" --out "$T/k" --quiet >"$T/k.out" 2>&1
check "... identical to the served hub" same "$T/k"
check "... the $before files in place before the kill not fetched again" \
  grep -q " $((nfiles - before)) files downloaded, $before already verified" "$T/k.out"
check "... and every rank's ledger folded into verified.tsv" bash -c "! ls '$T/k/.zllm/'verified.*.tsv 2>/dev/null"
stop_hub
finish
