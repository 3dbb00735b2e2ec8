#!/usr/bin/env bash
# An archive whose blobs live in more than one pack file (what packing over
# several ranks will produce): half the blobs move to pack-0001.zpk and are
# wiped from pack-0000.zpk; verify and restore read each blob from the pack
# the catalog names.  A catalog naming a pack outside packs/, or a blob past a
# pack's committed length, is refused with its reason.
source "$(dirname "$0")/lib.sh"
hub="$ZLLM_SRC/data/sample-hub/hub"
z="$ZLLM_BIN/zllm"
ar="$T/ar"
check "pack" "$z" pack --hub "$hub" --out "$ar"
cp "$ar/packs/pack-0000.zpk" "$ar/packs/pack-0001.zpk"
python3 - "$ar" <<'PY'
import sqlite3, sys
ar = sys.argv[1]
db = sqlite3.connect(ar + "/catalog.sqlite")
db.execute("INSERT INTO packs(name, committed_len) SELECT 'pack-0001.zpk', committed_len FROM packs WHERE name = 'pack-0000.zpk'")
new = db.execute("SELECT id FROM packs WHERE name = 'pack-0001.zpk'").fetchone()[0]
moved = db.execute("SELECT id, offset, len FROM blobs WHERE id % 2 = 0").fetchall()
db.execute("UPDATE blobs SET pack = ? WHERE id % 2 = 0", (new,))
db.commit()
with open(ar + "/packs/pack-0000.zpk", "r+b") as f:  # the moved blobs are gone from the first pack
    for _, off, n in moved:
        f.seek(off - 16)
        f.write(b"\0" * (n + 24))
print(f"{len(moved)} blobs moved to pack {new}")
PY
check "verify reads both packs" "$z" verify "$ar"
check "restore is byte-identical" bash -c "'$z' restore '$ar' --all --out '$T/back' >/dev/null && diff -r '$hub' '$T/back' >/dev/null"
cp -r "$ar" "$T/evil"
sqlite3 "$T/evil/catalog.sqlite" "UPDATE packs SET name = '../../../etc/passwd' WHERE name = 'pack-0001.zpk'"
check "a pack name leaving packs/ is refused" bash -c "! '$z' verify '$T/evil' >'$T/evil.out' 2>&1 && grep -q 'no usable name' '$T/evil.out'"
cp -r "$ar" "$T/short"
sqlite3 "$T/short/catalog.sqlite" "UPDATE packs SET committed_len = 100 WHERE name = 'pack-0001.zpk'"
check "a blob past a pack's committed length is refused" bash -c "! '$z' verify '$T/short' >'$T/short.out' 2>&1 && grep -q 'outside the pack' '$T/short.out'"
finish
