#!/usr/bin/env bash
# A server may be broken or malicious (issue: hardening, class 4), against the
# Hub look-alike on 127.0.0.1; every crawl runs under `timeout` so a hang fails
# the test instead of CI:
#   - a file listed with size 0 but served without end: capped at its listed size;
#   - a 404 whose body never ends: the request ends after a few KiB;
#   - a body trickled at 2 B/s: the low-speed limit ends it and it is retried;
#   - a "next" page that is the page itself (listing and tree): the loop is
#     named and the crawl ends;
#   - a directory of the snapshot that is a symlink leading elsewhere is not
#     written through.
# Usage: hostile_crawl.sh HUB
source "$(dirname "$0")/lib.sh"
hub=$1
z="$ZLLM_BIN/zllm"
first=$(cd "$hub" && ls -d */* | head -1)
others() { # every repo but the first crawled whole
  local r
  for r in $(cd "$hub" && ls -d */* | tail -n +2); do diff -r "$hub/$r" "$1/$r" >/dev/null || return 1; done
}

crawl() { # crawl NAME [ARGS...]: exit status in $rc, output in $T/NAME.out, wall time in $secs
  local name=$1; shift
  local t0=$SECONDS
  set +e
  timeout 90 "$z" crawl --endpoint "$HS_URL" --out "$T/c-$name" --quiet "$@" >"$T/$name.out" 2>&1
  rc=$?
  set -e
  secs=$((SECONDS - t0))
}

# ---- a size-0 listing served without end ------------------------------------------
start_hub "$hub" --faults endless0
crawl endless0
check "endless0: the crawl hung or was killed (exit $rc)" [ "$rc" -eq 1 ]
# (a listed size of 0 needs no transfer at all: the empty file then fails its git blob id)
check "endless0: the file was not refused by name ($(cat "$T/endless0.out"))" grep -Eq "$first/README.md: .*(more bytes than the listing's size|git blob id differs)" "$T/endless0.out"
check "endless0: the file is in the snapshot" [ ! -e "$T/c-endless0/$first/README.md" ]
mb=$(grep -o '[0-9.]* MB received' "$T/endless0.out" | cut -d' ' -f1)
check "endless0: ${mb:-?} MB received: more than the hub holds" awk -v m="${mb:-1e9}" 'BEGIN { exit !(m < 20) }'
check "endless0: bytes past the listed size were written ($(du -sb "$T/c-endless0" | cut -f1) bytes)" [ "$(du -sb "$T/c-endless0" | cut -f1)" -lt 20000000 ]
check "endless0: the other repos were not crawled whole" others "$T/c-endless0"
stop_hub

# ---- a 404 with a body that never ends -------------------------------------------
start_hub "$hub" --faults endless404
crawl endless404
check "endless404: the crawl hung or was killed (exit $rc)" [ "$rc" -eq 1 ]
check "endless404: the 404 was not named ($(cat "$T/endless404.out"))" grep -q "$first/config.json.*HTTP 404\|config.json: HTTP 404\|/config.json: HTTP 404" "$T/endless404.out"
check "endless404: it took ${secs}s" [ "$secs" -lt 60 ]
check "endless404: the other repos were not crawled whole" others "$T/c-endless404"
stop_hub

# ---- a body trickled at 2 B/s: ended by the low-speed limit and retried ------------
start_hub "$hub" --faults trickle
crawl trickle --low-speed-limit 100 --low-speed-time 2
check "trickle: the crawl failed (exit $rc: $(cat "$T/trickle.out"))" [ "$rc" -eq 0 ]
check "trickle: it took ${secs}s" [ "$secs" -lt 60 ]
check "trickle: the slow transfer was not retried" grep -Eq ' [1-9][0-9]* retries' "$T/trickle.out"
check "trickle: the snapshot differs" bash -c "diff -r -x .zllm '$hub' '$T/c-trickle' >/dev/null"
check "bad --low-speed-limit accepted" bash -c "! '$z' crawl --out '$T/x' --low-speed-limit -1 2>/dev/null"
stop_hub

# ---- "next" pages that loop -----------------------------------------------------
start_hub "$hub" --faults selfnext --page-size 100
crawl selfnext
check "selfnext: the crawl hung or was killed (exit $rc)" [ "$rc" -eq 1 ]
check "selfnext: the listing loop was not named ($(head -c 400 "$T/selfnext.out"))" grep -q "listing stopped: the next page .* was already fetched (a paging loop)" "$T/selfnext.out"
check "selfnext: the tree loop was not named" grep -q "$first: tree: the next page .* was already fetched (a paging loop)" "$T/selfnext.out"
check "selfnext: the looped repo was crawled half" [ ! -d "$T/c-selfnext/$first" ]
check "selfnext: the other repos were not crawled whole" others "$T/c-selfnext"
stop_hub

# ---- a snapshot directory that is a symlink: not followed ---------------------------
start_hub "$hub"
mkdir -p "$T/c-dirlink" "$T/elsewhere"
ln -s "$T/elsewhere" "$T/c-dirlink/$(dirname "$first")"
crawl dirlink
check "dirlink: the crawl went through a symlinked directory (exit $rc)" [ "$rc" -eq 1 ]
check "dirlink: the link was not named ($(head -c 300 "$T/dirlink.out"))" grep -q "c-dirlink/$(dirname "$first"): is a symlink or not a directory; not followed" "$T/dirlink.out"
check "dirlink: the crawl wrote outside its snapshot" bash -c "[ -z \"\$(ls -A '$T/elsewhere')\" ]"
check "dirlink: the other repos were not crawled whole" others "$T/c-dirlink"
stop_hub

finish
