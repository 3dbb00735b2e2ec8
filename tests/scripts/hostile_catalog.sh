#!/usr/bin/env bash
# An archive may come from elsewhere (issue: hardening, class 3):
#   - a catalog rebuilt without the NOT NULL constraints is refused at open,
#     naming what differs (verify, restore, ls, cat-tensor, pack);
#   - NULLs under an intact-looking schema (edited through writable_schema)
#     are errors naming the column, never a crash or "0 files, 0 problems";
#   - cat-tensor of a BitX tensor whose base id was swapped fails before a
#     byte is written (the decoded bytes are checked against the tensor's key).
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
to() { timeout 60 "$@"; }

hub="$T/hub"; ar="$T/ar"
small_hub "$hub"
to "$z" pack --hub "$hub" --out "$ar" >/dev/null

# ---- 1. a catalog rebuilt without NOT NULL ------------------------------------
a="$T/ar-nonull"
cp -r "$ar" "$a"
sqlite3 "$ar/catalog.sqlite" .schema | grep -v '^CREATE INDEX' | sed 's/ NOT NULL//g' >"$T/loose.sql"
rm "$a/catalog.sqlite"
sqlite3 "$a/catalog.sqlite" <"$T/loose.sql"
for t in meta packs blobs repos files pieces tensors parts; do
  sqlite3 "$a/catalog.sqlite" "ATTACH '$ar/catalog.sqlite' AS o; INSERT INTO $t SELECT * FROM o.$t;"
done
sqlite3 "$a/catalog.sqlite" "UPDATE files SET method = NULL WHERE id = (SELECT min(id) FROM files WHERE method = 'safetensors')"
every_reader nonull "$a" "$hub" "schema differs: table 'blobs' column 1 is 'pack INTEGER' where 'pack INTEGER NOT NULL' is expected"

# ---- 2. NULLs under the declared schema (edited through writable_schema) ---------
a="$T/ar-null"
cp -r "$ar" "$a"
orig=$(sqlite3 "$a/catalog.sqlite" "SELECT sql FROM sqlite_master WHERE name = 'files'")
sqlite3 "$a/catalog.sqlite" "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, 'method TEXT NOT NULL', 'method TEXT') WHERE name = 'files';"
sqlite3 "$a/catalog.sqlite" "UPDATE files SET method = NULL WHERE path = 'model.safetensors'"
sqlite3 "$a/catalog.sqlite" "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = '$(printf '%s' "$orig" | sed "s/'/''/g")' WHERE name = 'files';"
check "the schema was not put back" bash -c "sqlite3 '$a/catalog.sqlite' \"SELECT sql FROM sqlite_master WHERE name = 'files'\" | grep -q 'method TEXT NOT NULL'"
for cmd in verify restore; do
  args=("$a")
  [ "$cmd" = restore ] && args=("$a" --all --out "$T/null-rs")
  set +e
  to "$z" "$cmd" "${args[@]}" >"$T/null.$cmd" 2>&1
  rc=$?
  set -e
  check "NULL method: zllm $cmd exited $rc (want 1)" [ "$rc" -eq 1 ]
  check "NULL method: zllm $cmd did not name the column ($(head -c 300 "$T/null.$cmd"))" grep -q "column 'method' holds NULL where text is required" "$T/null.$cmd"
done
check "NULL method: verify counted no files" bash -c "! grep -q '0 files, 0 problems' '$T/null.verify'"
check "NULL method: restore left out the other files" cmp -s "$T/null-rs/chatco/alpha-chat/config.json" "$hub/chatco/alpha-chat/config.json"

# ---- 3. cat-tensor with a BitX base swapped ----------------------------------------
a="$T/ar-swap"
cp -r "$ar" "$a"
pick=$(sqlite3 -separator ' ' "$a/catalog.sqlite" "SELECT t.id, t.name, o.id FROM tensors t JOIN tensors o
  ON o.dtype = t.dtype AND o.len = t.len AND o.id != t.base AND o.id != t.id AND o.method = 'solo'
  WHERE t.method = 'bitx' ORDER BY t.id LIMIT 1")
read -r tid tname other <<<"$pick"
check "no BitX tensor to swap a base under ($pick)" [ -n "$other" ]
good=$(to "$z" cat-tensor "$ar" --repo chatco/alpha-chat --tensor "$tname" | sha256sum)
sqlite3 "$a/catalog.sqlite" "UPDATE tensors SET base = $other WHERE id = $tid"
set +e
to "$z" cat-tensor "$a" --repo chatco/alpha-chat --tensor "$tname" >"$T/swap.bin" 2>"$T/swap.err"
rc=$?
set -e
check "cat-tensor with a swapped base exited $rc (want 1)" [ "$rc" -eq 1 ]
check "cat-tensor wrote bytes before its check ($(stat -c %s "$T/swap.bin") bytes)" [ ! -s "$T/swap.bin" ]
check "cat-tensor did not say why ($(cat "$T/swap.err"))" grep -q "XXH3-128 is not the one recorded" "$T/swap.err"
check "cat-tensor of the intact archive changed" bash -c "[ \"\$(timeout 60 '$z' cat-tensor '$ar' --repo chatco/alpha-chat --tensor '$tname' | sha256sum)\" = '$good' ]"

# ---- 4. a base marked "extern" (a staging archive's row for a base another
# rank stores) in an archive from elsewhere: its fine-tunes fail to decode,
# named, and the rest of the archive still restores
a="$T/ar-extern"
cp -r "$ar" "$a"
sqlite3 "$a/catalog.sqlite" "UPDATE tensors SET method = 'extern' WHERE id = (SELECT min(base) FROM tensors WHERE method = 'bitx')"
set +e
to "$z" verify "$a" >"$T/extern.verify" 2>&1
vrc=$?
to "$z" restore "$a" --all --out "$T/extern-rs" >"$T/extern.restore" 2>&1
rrc=$?
set -e
check "extern base: verify exited $vrc (want 1)" [ "$vrc" -eq 1 ]
check "extern base: verify did not say the tensor is stored elsewhere" grep -q "is stored in another archive" "$T/extern.verify"
check "extern base: restore exited $rrc (want 1)" [ "$rrc" -eq 1 ]
check "extern base: restore left out the other files" cmp -s "$T/extern-rs/chatco/alpha-chat/config.json" "$hub/chatco/alpha-chat/config.json"
finish
