#!/usr/bin/env bash
# kill -9 during zllm pack at several points: each time the archive verifies
# and holds whole repos only; packing again finishes the job, and the final
# archive restores the hub byte for byte without storing anything twice.
# Then kill -9 during zllm restore, with a file half written: no file stands
# under its final name unless it is whole and right, and a second restore
# finishes the job.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
gen="$ZLLM_TMP/kill-hub"
ar="$ZLLM_TMP/ar-kill"
rm -rf "$gen" "$ar" "$ZLLM_TMP/rs-kill" "$ZLLM_TMP/ar-kill-ref"
"$z" mkhub --out "$gen" --scale medium --seed 5 >/dev/null 2>&1
# verify fails on a directory with no catalog, and says why
no_archive() {
  local msg
  if msg=$("$z" verify "$1" 2>&1); then return 1; fi
  grep -q 'not a zllm archive\|no archive here' <<<"$msg"
}

# 1. killed at the instant a new catalog is complete but not yet renamed into
#    place: no catalog.sqlite, and the next pack starts over from the leftover
ZLLM_TEST_KILL_AT=catalog "$z" pack --hub "$gen/hub" --out "$ar" >/dev/null 2>&1 && st=0 || st=$?
check "the catalog fault point was reached (exit $st)" [ "$st" = 137 ]
check "a leftover temporary catalog" [ -e "$ar/catalog.sqlite.new" ]
check "no catalog.sqlite before the rename" [ ! -e "$ar/catalog.sqlite" ]
check "verify names the missing catalog" no_archive "$ar"
check "pack over the leftover" "$z" pack --hub "$gen/hub" --out "$ar"
check "verify after packing over the leftover" "$z" verify "$ar"
check "the leftover is gone" [ ! -e "$ar/catalog.sqlite.new" ]
rm -rf "$ar"

# 2. kill -9 at four random points in the first half second (the pack takes
#    about that long); the delays are printed so a failure can be replayed
delays=$(for _ in 1 2 3 4; do printf '0.%02d ' $((RANDOM % 50)); done)
echo "kill -9 after: $delays"
for delay in $delays; do
  "$z" pack --hub "$gen/hub" --out "$ar" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ ! -e "$ar/catalog.sqlite" ]; then
    # killed before the catalog was created: there is no archive, and verify says so
    check "verify names the missing catalog after kill at ${delay}s" no_archive "$ar"
    continue
  fi
  check "verify after kill -9 at ${delay}s" "$z" verify "$ar"
  # every repo in the catalog has all its files
  partial=$(sqlite3 "$ar/catalog.sqlite" "SELECT count(*) FROM repos r WHERE (SELECT count(*) FROM files f WHERE f.repo = r.id) = 0")
  check "a repo without its files after kill at ${delay}s" [ "$partial" = 0 ]
done
check "pack completes after the kills" "$z" pack --hub "$gen/hub" --out "$ar"
check "restore after kills" "$z" restore "$ar" --all --out "$ZLLM_TMP/rs-kill"
check "restored hub differs after kills" diff -r "$gen/hub" "$ZLLM_TMP/rs-kill"
"$z" pack --hub "$gen/hub" --out "$ZLLM_TMP/ar-kill-ref" >/dev/null
n_ref=$(sqlite3 "$ZLLM_TMP/ar-kill-ref/catalog.sqlite" "SELECT count(*) FROM files")
n_got=$(sqlite3 "$ar/catalog.sqlite" "SELECT count(*) FROM files")
check "files stored twice ($n_got vs $n_ref)" [ "$n_got" = "$n_ref" ]
size_ref=$(stat -c %s "$ZLLM_TMP/ar-kill-ref/packs/pack-0000.zpk")
size_got=$(stat -c %s "$ar/packs/pack-0000.zpk")
check "pack bytes stored twice ($size_got vs $size_ref)" [ "$size_got" = "$size_ref" ]

# 3. restore killed with a file half written (1 and 2 decode threads), then
#    at random instants: whatever has its final name is the original
whole_or_absent() {
  local out=$1 bad=0
  while IFS= read -r -d '' f; do
    rel=${f#"$out"/}
    case $(basename "$rel") in *.zllm-tmp.*) continue ;; esac
    cmp -s "$f" "$gen/hub/$rel" || { echo "not whole under its final name: $rel" >&2; bad=1; }
  done < <(find "$out" -type f -print0)
  return $bad
}
for t in 1 2; do
  rs="$ZLLM_TMP/rs-kill-$t"
  rm -rf "$rs"
  ZLLM_TEST_KILL_AT=restore "$z" restore "$ar" --all --out "$rs" --threads "$t" >/dev/null 2>&1 && st=0 || st=$?
  check "restore --threads $t reached its fault point (exit $st)" [ "$st" = 137 ]
  check "restore --threads $t was killed with a file half written" bash -c "find '$rs' -name '*.zllm-tmp.*' | grep -q ."
  check "restore --threads $t killed mid-file: every final name whole" whole_or_absent "$rs"
  check "restore --threads $t again after the kill" "$z" restore "$ar" --all --out "$rs" --threads "$t"
  check "restored hub differs after a killed restore (--threads $t)" bash -c "diff -r -x '*.zllm-tmp.*' '$gen/hub' '$rs'"
done
rs="$ZLLM_TMP/rs-kill-random"
for delay in $(for _ in 1 2 3; do printf '0.%02d ' $((RANDOM % 30)); done); do
  rm -rf "$rs"
  "$z" restore "$ar" --all --out "$rs" --threads 2 >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -d "$rs" ] && check "restore killed after ${delay}s: every final name whole" whole_or_absent "$rs"
done
finish
