#!/usr/bin/env bash
# zllm crawl against the Hub look-alike on loopback: the crawled snapshot is
# byte-identical to the served one with no fault and under every transient
# fault (429 + Retry-After, 500s, resets mid-body, short bodies, slow bodies),
# with a token required (which never shows up in any output); the hostile
# cases (wrong sha256, malicious paths, a bad JSON page, endless redirects)
# fail cleanly, each naming its item, and the rest is crawled.
# Usage: crawl_faults.sh HUB
source "$(dirname "$0")/lib.sh"
hub=$1
z="$ZLLM_BIN/zllm"
same() { diff -r -x .zllm "$hub" "$1" >/dev/null; }

for fault in none 429 500 reset shortbody slow; do
  start_hub "$hub" --faults "$fault"
  out="$T/c-$fault"
  check "crawl with fault '$fault'" "$z" crawl --endpoint "$HS_URL" --out "$out" --jobs 4 --quiet >"$T/$fault.out" 2>&1
  check "snapshot identical with fault '$fault'" same "$out"
  if [ "$fault" = 429 ]; then # waited out as the rate limit says, not a retry
    check "fault '429' was waited out" grep -Eq '[1-9][0-9]* answers of 429' "$T/$fault.out"
    check "... without spending a retry" grep -q ' 0 retries' "$T/$fault.out"
  elif [ "$fault" != none ] && [ "$fault" != slow ]; then
    check "fault '$fault' was retried" grep -Eq ' [1-9][0-9]* retries' "$T/$fault.out"
  fi
  stop_hub
done

# the retry budget is shared by the whole crawl: once spent, items fail with
# that reason and the crawl still ends (with status 1)
start_hub "$hub" --faults 500
check "an empty retry budget fails the downloads" bash -c "! '$z' crawl --endpoint '$HS_URL' --out '$T/c-budget' --retries 0 --quiet >'$T/budget.out' 2>&1"
check "... saying why" grep -q 'gave up after 1 attempts (retry budget spent): HTTP 500' "$T/budget.out"
check "... and still writes the metadata of every repo" [ "$(wc -l <"$T/c-budget/.zllm/metadata.jsonl")" -eq "$(cd "$hub" && ls -d */* | wc -l)" ]
stop_hub

# a token: required by the server, sent by the crawler, printed nowhere
secret="hf_TestSecret$$"
start_hub "$hub" --token "$secret"
check "crawl with HF_TOKEN" env HF_TOKEN="$secret" "$z" crawl --endpoint "$HS_URL" --out "$T/c-tok" >"$T/tok.out" 2>&1
check "snapshot identical with a token" same "$T/c-tok"
check "no token: a clear 401, no crash" bash -c "! HF_TOKEN= '$z' crawl --endpoint '$HS_URL' --out '$T/c-notok' >'$T/notok.out' 2>&1 && grep -q 'HTTP 401' '$T/notok.out'"
check "the token appears in no output" bash -c "! grep -rqF '$secret' '$T/tok.out' '$T/notok.out' '$T/c-tok' '$T/c-notok'"
check "the server saw the header" grep -q 'auth=yes' "$T/hs.log"
stop_hub

# HF_ENDPOINT is the default endpoint
start_hub "$hub"
check "HF_ENDPOINT" env HF_ENDPOINT="$HS_URL" "$z" crawl --out "$T/c-env" --quiet --limit 2
check "--limit 2 crawled two repos" [ "$(find "$T/c-env" -mindepth 2 -maxdepth 2 -type d -not -path '*/.zllm*' | wc -l)" -eq 2 ]
check "--include keeps the matching files only" bash -c \
  "'$z' crawl --endpoint '$HS_URL' --out '$T/c-inc' --quiet --include '*.json' >/dev/null && [ -z \"\$(find '$T/c-inc' -type f -not -name '*.json' -not -path '*/.zllm/*')\" ] && [ -n \"\$(find '$T/c-inc' -name config.json)\" ]"
stop_hub

# hostile servers: the item fails with its reason, everything else lands
first=$(cd "$hub" && ls -d */* | head -1)
start_hub "$hub" --faults badsha
check "a wrong sha256 fails the crawl" bash -c "! '$z' crawl --endpoint '$HS_URL' --out '$T/c-sha' --quiet >'$T/sha.out' 2>&1"
check "... naming the file and the rule" grep -q "$first/.*sha256 differs" "$T/sha.out"
check "... and the bad file is not in the snapshot" bash -c "! ls '$T/c-sha/$first/'*.safetensors >/dev/null 2>&1"
check "... while the other repos are identical" bash -c "diff -r -x .zllm -x '$(basename "$first")' '$hub' '$T/c-sha' >/dev/null"
stop_hub

start_hub "$hub" --faults malicious
check "malicious paths fail cleanly" bash -c "! '$z' crawl --endpoint '$HS_URL' --out '$T/c-mal/snap' --quiet >'$T/mal.out' 2>&1"
check "... with the rule named" grep -q 'unsafe\|\.\.\|absolute' "$T/mal.out"
check "... nothing written outside the snapshot" bash -c "[ ! -e '$T/c-mal/escape.txt' ] && [ ! -e /etc/evil ]"
check "... and everything else identical" same "$T/c-mal/snap"
stop_hub

start_hub "$hub" --faults badjson
check "a bad JSON page fails cleanly" bash -c "! '$z' crawl --endpoint '$HS_URL' --out '$T/c-json' --quiet >'$T/json.out' 2>&1"
check "... naming the page and the rule" grep -q 'listing stopped: .*api/models.*api-json' "$T/json.out"
check "... after crawling the first page's repos" [ "$(find "$T/c-json" -mindepth 2 -maxdepth 2 -type d -not -path '*/.zllm*' | wc -l)" -eq 3 ]
stop_hub

start_hub "$hub" --faults loop
check "endless redirects fail cleanly" bash -c "! '$z' crawl --endpoint '$HS_URL' --out '$T/c-loop' --quiet >'$T/loop.out' 2>&1"
check "... naming the file" grep -q "$first/README.md: .*[Rr]edirect" "$T/loop.out"
stop_hub
finish
