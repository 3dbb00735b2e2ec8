#!/usr/bin/env bash
# A hub is a tree someone else made (issue: hardening, class 1 and 5):
#   - directory symlink loops end, each file is listed once, the loop is a problem;
#   - a file swapped for a symlink after the listing is not read through the link;
#   - a file rewritten in place (same size, mtime put back) while pack reads it
#     is not committed, and the next pack stores it;
#   - names that cannot be restored (backslash, newline, tab, a component over
#     255 bytes, a path over 1024) are recorded as skipped at ingest, and the
#     rest of the repo restores;
#   - names with a newline or tab print as one escaped line in `zllm hub --files`,
#     `zllm ls` and the log.
# Every command runs under `timeout`: a hang fails the test instead of CI.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
sample="$ZLLM_SRC/data/sample-hub/hub"
to() { timeout 60 "$@"; }
none="$T/no-families.tsv" # bases: none (no clustering, no cards): the cases stay small
: >"$none"


# ---- 1. symlink loops ---------------------------------------------------------
hub="$T/loops"
small_hub "$hub"
ln -s . "$hub/chatco/alpha-chat/x"
ln -s . "$hub/chatco/alpha-chat/y"
mkdir -p "$hub/chatco/alpha-chat/sub"
ln -s .. "$hub/chatco/alpha-chat/sub/up"
check "zllm hub over symlink loops did not finish" bash -c "timeout 20 '$z' hub '$hub' --files >'$T/loops.out' 2>&1"
n=$(grep -c "model.safetensors" "$T/loops.out" || true)
check "a looped repo lists model.safetensors $n times, not once per repo ($(cat "$T/loops.out" | head -40))" [ "$n" -eq 2 ]
check "the loop is not a named problem" grep -q "alpha-chat/x: directory-loop" "$T/loops.out"
ar="$T/loops-ar"
check "pack over symlink loops failed or hung" bash -c "timeout 60 '$z' pack --hub '$hub' --out '$ar' --families '$none' >'$T/loops.pack' 2>&1"
check "the looped repo was not restored" bash -c "timeout 60 '$z' restore '$ar' --repo chatco/alpha-chat --out '$T/loops-rs' 2>/dev/null"
check "restored bytes differ" cmp -s "$T/loops-rs/chatco/alpha-chat/model.safetensors" "$sample/chatco/alpha-chat/model.safetensors"
check "a loop was stored as a file" bash -c "! find '$T/loops-rs' -path '*/x/*' | grep -q ."

# ---- 2. a file swapped for a symlink after the listing --------------------------
hub="$T/swap"; ar="$T/swap-ar"
small_hub "$hub"
printf 'SECRET outside the hub\n' >"$T/secret.txt"
set +e
ZLLM_TEST_SWAP="tokenizer.json=$T/secret.txt" to "$z" pack --hub "$hub" --out "$ar" --families "$none" \
  >"$T/swap.out" 2>&1
rc=$?
set -e
check "pack through a swapped link exited 0 ($(cat "$T/swap.out"))" [ "$rc" -eq 1 ]
check "... without naming the changed file" grep -q "tokenizer.json: changed since the hub was listed" "$T/swap.out"
check "an archive holds bytes from outside the hub" bash -c "! sqlite3 '$ar/catalog.sqlite' \"SELECT 1 FROM files WHERE path = 'tokenizer.json' AND size = $(stat -c %s "$T/secret.txt")\" | grep -q 1"
to "$z" restore "$ar" --all --out "$T/swap-rs" >/dev/null 2>&1 || true
check "restore wrote the secret back" bash -c "! grep -rqs SECRET '$T/swap-rs'"
check "verify of the archive after a refused swap" to "$z" verify "$ar"
# the next pack lists again: the link now points outside the repo and is skipped
to "$z" pack --hub "$hub" --out "$ar" --families "$none" >"$T/swap2.out" 2>&1 || true
check "the next pack did not store the repos" bash -c "[ \$(sqlite3 '$ar/catalog.sqlite' 'SELECT count(*) FROM repos') -eq 2 ]"
check "the next pack stored the link's target" bash -c "! sqlite3 '$ar/catalog.sqlite' \"SELECT path FROM files WHERE method != 'skipped'\" | grep -q tokenizer.json"

# ---- 3. a file rewritten in place while pack reads it ----------------------------
# Pack reads a tensor once when it fits its window; a tensor too big for it
# is read twice (hashed, then stored), and a rewrite between the two reads
# must fail the repo.  ZLLM_TENSOR_WINDOW_MIB=0 makes every tensor too big.
hub="$T/race"; ar="$T/race-ar"
small_hub "$hub"
set +e
ZLLM_TENSOR_WINDOW_MIB=0 ZLLM_TEST_CHANGE_AFTER_HASH=chatco/alpha-chat/model.safetensors \
  to "$z" pack --hub "$hub" --out "$ar" --families "$none" >"$T/race.out" 2>&1
rc=$?
set -e
check "pack over a file rewritten during the read exited 0 ($(cat "$T/race.out"))" [ "$rc" -eq 1 ]
check "... without saying it changed while read" grep -q "changed while it was read" "$T/race.out"
# the summary counts only what was committed (the rolled-back repo's files and tensors are not in it)
counts() { # the summary's "N files", "N BitX", "N solo" against the catalog's rows
  local line files bitx solo
  line=$(grep '^packed' "$1")
  files=$(sed -E 's/.*, ([0-9]+) files:.*/\1/' <<<"$line")
  bitx=$(sed -E 's/.* ([0-9]+) BitX.*/\1/' <<<"$line")
  solo=$(sed -E 's/.* ([0-9]+) solo.*/\1/' <<<"$line")
  [ "$files" -eq "$(sqlite3 "$2/catalog.sqlite" "SELECT count(*) FROM files WHERE method != 'skipped'")" ] &&
    [ "$bitx" -eq "$(sqlite3 "$2/catalog.sqlite" "SELECT count(*) FROM tensors WHERE method = 'bitx'")" ] &&
    [ "$solo" -eq "$(sqlite3 "$2/catalog.sqlite" "SELECT count(*) FROM tensors WHERE method = 'solo'")" ]
}
check "the summary counted what was rolled back ($(grep '^packed' "$T/race.out"))" counts "$T/race.out" "$ar"
check "verify after the race" to "$z" verify "$ar"
# every file the archive holds has the SHA-256 of its stored bytes (verify) and
# nothing of a changed file was committed: the next pack stores both repos
check "the next pack failed ($(cat "$T/race2.out" 2>/dev/null))" bash -c "timeout 60 '$z' pack --hub '$hub' --out '$ar' --families "$none" >'$T/race2.out' 2>&1"
check "the next pack packed nothing" bash -c "[ \$(sqlite3 '$ar/catalog.sqlite' 'SELECT count(*) FROM repos') -eq 2 ]"
check "verify after the retry" to "$z" verify "$ar"
check "restore after the retry" to "$z" restore "$ar" --all --out "$T/race-rs"
for f in alpha-labs/alpha-base/model.safetensors chatco/alpha-chat/model.safetensors; do
  check "$f restored differs from the hub's (rewritten) file" cmp -s "$T/race-rs/$f" "$hub/$f"
done

# ... and with the window (the default), each tensor is read once: the bytes
# hashed are the bytes stored, so a rewrite after that read leaves the archive
# holding the file as it was read, its SHA-256 that of those bytes.
hub="$T/race1"; ar="$T/race1-ar"
small_hub "$hub"
cp "$hub/chatco/alpha-chat/model.safetensors" "$T/race1-before.safetensors"
check "pack with one read per tensor failed ($(cat "$T/race1.out" 2>/dev/null))" bash -c \
  "ZLLM_TEST_CHANGE_AFTER_HASH=chatco/alpha-chat/model.safetensors timeout 60 '$z' pack --hub '$hub' --out '$ar' --families '$none' >'$T/race1.out' 2>&1"
check "the hook did not rewrite the hub's file" bash -c "! cmp -s '$hub/chatco/alpha-chat/model.safetensors' '$T/race1-before.safetensors'"
check "verify after one read" to "$z" verify "$ar"
check "restore after one read" to "$z" restore "$ar" --repo chatco/alpha-chat --out "$T/race1-rs"
check "the restored file is not the file as it was read" cmp -s "$T/race1-rs/chatco/alpha-chat/model.safetensors" \
  "$T/race1-before.safetensors"

# ---- 4. names that cannot be restored ------------------------------------------
hub="$T/names"; ar="$T/names-ar"
small_hub "$hub"
d="$hub/chatco/alpha-chat"
printf 'a' >"$d/back\\slash.txt"
printf 'b' >"$d/new
line.txt"
printf 'c' >"$d/tab	name.txt"
long=$(printf 'x%.0s' $(seq 300))
{ printf 'd' >"$d/$long.txt"; } 2>/dev/null || true # some file systems refuse it: then the hub has no such file
deep="$d"
for i in $(seq 6); do deep="$deep/$(printf 'd%.0s' $(seq 200))"; done
mkdir -p "$deep" && printf 'e' >"$deep/deep.txt"
set +e
to "$z" pack --hub "$hub" --out "$ar" --families "$none" >"$T/names.out" 2>"$T/names.err"
rc=$?
set -e
check "pack with odd names failed ($(cat "$T/names.err"))" [ "$rc" -eq 0 ]
skipped=$(sqlite3 "$ar/catalog.sqlite" "SELECT count(*) FROM files WHERE method = 'skipped' AND note LIKE 'skipped: cannot be restored%'")
want=4; [ -e "$d/$long.txt" ] && want=5
check "names that cannot be restored were not recorded as skipped ($skipped of $want)" [ "$skipped" -eq "$want" ]
set +e
to "$z" restore "$ar" --all --out "$T/names-rs" 2>"$T/names-rs.err"
rc=$?
set -e
check "restore --all stopped on a name ($(cat "$T/names-rs.err"))" [ "$rc" -eq 0 ]
for f in README.md config.json model.safetensors tokenizer.json; do
  check "chatco/alpha-chat/$f was not restored" cmp -s "$T/names-rs/chatco/alpha-chat/$f" "$d/$f"
done
check "verify with skipped names" to "$z" verify "$ar"

# ---- 5. names print as one escaped line ---------------------------------------
to "$z" hub "$hub" --files >"$T/names.hub"
check "zllm hub --files split a name over lines" bash -c "! grep -qx 'line.txt' '$T/names.hub'"
check "zllm hub --files did not escape the newline" grep -qF 'new\x0aline.txt' "$T/names.hub"
to "$z" ls "$ar" --repo chatco/alpha-chat >"$T/names.ls"
rows=$(sqlite3 "$ar/catalog.sqlite" "SELECT count(*) FROM files f JOIN repos r ON f.repo = r.id WHERE r.name = 'chatco/alpha-chat'")
check "zllm ls rows are not one per file ($(wc -l <"$T/names.ls") lines for $rows files)" [ "$(wc -l <"$T/names.ls")" -eq $((rows + 2)) ]
check "zllm ls broke a row at a tab" bash -c "awk -F'\t' 'NF != 7 { bad = 1 } END { exit bad }' '$T/names.ls'"
check "zllm ls did not escape the tab" grep -qF 'tab\tname.txt' "$T/names.ls"
check "a log line was split by a name" bash -c "! grep -qx 'line.txt.*' '$T/names.err'"
check "the log did not name the file escaped" grep -qF 'new\x0aline.txt' "$T/names.err"

finish
