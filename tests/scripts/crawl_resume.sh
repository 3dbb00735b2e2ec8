#!/usr/bin/env bash
# A crawl killed with kill -9 at random points and started again: what was
# verified before the kill is not downloaded again, partial files resume with
# Range, and the result is byte-identical to the served hub.
# Usage: crawl_resume.sh HUB
source "$(dirname "$0")/lib.sh"
hub=$1
z="$ZLLM_BIN/zllm"
total_files=$(find "$hub" -type f | wc -l)
served_bytes() { curl -s "$HS_URL/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])'; }

for round in 1 2; do
  out="$T/snap$round"
  start_hub "$hub" --faults slow
  "$z" crawl --endpoint "$HS_URL" --out "$out" --jobs 2 --quiet >/dev/null 2>&1 &
  pid=$!
  # kill it during the downloads: after the first file is verified, at a random moment
  for _ in $(seq 300); do [ -s "$out/.zllm/verified.tsv" ] && break; sleep 0.05; done
  sleep "0.$((RANDOM % 3))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  stop_hub
  # whatever is in place is complete and right
  placed=$(cd "$out" && find . -type f -not -path './.zllm/*' | sed 's|^\./||' | sort)
  nplaced=$(printf '%s' "$placed" | grep -c . || true)
  bad=0
  for f in $placed; do cmp -s "$hub/$f" "$out/$f" || bad=$((bad + 1)); done
  check "round $round: $nplaced files in place after kill -9, all verified ($bad bad)" [ "$bad" -eq 0 ]
  partial_bytes=$( (find "$out/.zllm/partial" -type f -printf '%s\n' 2>/dev/null || true) | awk '{s += $1} END {print s + 0}')
  missing_bytes=0
  for f in $(cd "$hub" && find . -type f | sed 's|^\./||'); do
    [ -e "$out/$f" ] || missing_bytes=$((missing_bytes + $(stat -c %s "$hub/$f")))
  done
  echo "round $round: after kill -9, $nplaced of $total_files files in place, $partial_bytes bytes in partial files"
  check "round $round: killed during the downloads ($nplaced of $total_files in place)" \
    [ "$nplaced" -ge 1 ] && [ "$nplaced" -lt "$total_files" ]
  start_hub "$hub"
  check "round $round: the restarted crawl finishes" "$z" crawl --endpoint "$HS_URL" --out "$out" --quiet >"$T/r$round.out" 2>&1
  check "round $round: identical to the served hub" diff -r -x .zllm "$hub" "$out"
  check "round $round: $nplaced verified files not fetched again" grep -q " $((total_files - nplaced)) files downloaded, $nplaced already verified" "$T/r$round.out"
  sent=$(served_bytes)
  echo "round $round: restart downloaded $sent bytes of the $missing_bytes missing"
  check "round $round: $sent bytes sent <= $missing_bytes missing - $partial_bytes partial" \
    [ "$sent" -le $((missing_bytes - partial_bytes)) ]
  stop_hub
done

# Killed after a download's last byte and before its rename: the partial file
# is complete, and the restart verifies and places it without asking again.
out="$T/snap2"
f=$(cd "$hub" && find . -name '*.safetensors' | sed 's|^\./||' | head -1)
repo=$(printf '%s' "$f" | cut -d/ -f1-2); path=$(printf '%s' "$f" | cut -d/ -f3-)
sha=$(sha256sum "$hub/$f" | cut -c1-64)
key=$(printf '%s' "$repo/$path" | xxhsum -H3 - | sed -E 's/.*= //')
rm -f "$out/$f"
grep -v -F "$repo	$path	" "$out/.zllm/verified.tsv" >"$T/v" || true
cp "$T/v" "$out/.zllm/verified.tsv"
cp "$hub/$f" "$out/.zllm/partial/$sha-$key.part"
start_hub "$hub"
check "a complete partial file is placed" "$z" crawl --endpoint "$HS_URL" --out "$out" --quiet >"$T/full.out" 2>&1
check "... without fetching it again" [ "$(served_bytes)" -eq 0 ]
check "... and the snapshot is identical" diff -r -x .zllm "$hub" "$out"
stop_hub
finish
