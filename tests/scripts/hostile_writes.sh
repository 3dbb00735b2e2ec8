#!/usr/bin/env bash
# Restore and pack write into directories someone else may have prepared
# (issue: hardening, class 2):
#   - symlinks planted at the temporary names restore would use (the old
#     "<file>.zllm-tmp.<pid>" for every pid nearby) and at the final names
#     redirect no write;
#   - a directory under --out that is a symlink leading outside is not
#     followed (an error naming it) unless --keep-directory-symlink;
#   - a pack file or the catalog that is a symlink is refused by name, and a
#     pack file the catalog names but that is missing is an error for
#     `zllm pack` too.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
to() { timeout 60 "$@"; }

hub="$T/hub"; ar="$T/ar"
small_hub "$hub"
to "$z" pack --hub "$hub" --out "$ar" >/dev/null

# ---- 1. planted symlinks at temporary and final names --------------------------
out="$T/planted"; victim="$T/victim.txt"
printf 'VICTIM\n' >"$victim"
d="$out/chatco/alpha-chat"
mkdir -p "$d"
# the temporary name today's restore would pick, for every pid the restore
# below may get, and the final names themselves
python3 - "$d" "$victim" <<'PY'
import os, sys
d, victim = sys.argv[1], sys.argv[2]
me = os.getpid()  # pids are handed out in order: the restore below comes soon after
for p in range(me, me + 2000):
    for f in ("README.md", "config.json", "model.safetensors", "tokenizer.json"):
        os.symlink(victim, "%s/%s.zllm-tmp.%d" % (d, f, p))
PY
ln -sf "$victim" "$d/config.json"
check "restore over planted links failed" to "$z" restore "$ar" --repo chatco/alpha-chat --out "$out"
check "a planted link redirected a write into the victim" bash -c "[ \"\$(cat '$victim')\" = VICTIM ]"
check "the final name is still a link" bash -c "[ ! -L '$d/config.json' ] && cmp -s '$d/config.json' '$hub/chatco/alpha-chat/config.json'"
for f in README.md model.safetensors tokenizer.json; do
  check "$f restored wrong" cmp -s "$d/$f" "$hub/chatco/alpha-chat/$f"
done
check "restore left temporary files behind" bash -c "! find '$out' -name '*.zllm-tmp.*' ! -type l | grep -q ."

# ---- 2. a directory symlink under --out -----------------------------------------
out="$T/dirlink"; elsewhere="$T/elsewhere"
mkdir -p "$out" "$elsewhere"
ln -s "$elsewhere" "$out/chatco"
set +e
to "$z" restore "$ar" --all --out "$out" >"$T/dirlink.out" 2>&1
rc=$?
set -e
check "restore through a directory symlink exited 0" [ "$rc" -ne 0 ]
check "... without naming it ($(cat "$T/dirlink.out"))" grep -q "$out/chatco: is a symlink or not a directory; not followed" "$T/dirlink.out"
check "restore wrote outside --out" bash -c "[ -z \"\$(ls -A '$elsewhere')\" ]"
check "the other repo was not restored" cmp -s "$out/alpha-labs/alpha-base/model.safetensors" "$hub/alpha-labs/alpha-base/model.safetensors"
check "--keep-directory-symlink refused" to "$z" restore "$ar" --all --out "$out" --keep-directory-symlink
check "--keep-directory-symlink did not follow the link" cmp -s "$elsewhere/alpha-chat/model.safetensors" "$hub/chatco/alpha-chat/model.safetensors"

# ---- 3. pack files: a symlink, a missing one ------------------------------------
cp -r "$ar" "$T/ar-link"
mv "$T/ar-link/packs/pack-0000.zpk" "$T/real.zpk"
ln -s "$T/real.zpk" "$T/ar-link/packs/pack-0000.zpk"
for cmd in verify ls pack; do
  args=("$T/ar-link")
  [ "$cmd" = pack ] && args=(--hub "$hub" --out "$T/ar-link")
  set +e
  to "$z" "$cmd" "${args[@]}" >"$T/link.$cmd" 2>&1
  rc=$?
  set -e
  check "zllm $cmd read a pack file through a symlink" [ "$rc" -ne 0 ]
  check "zllm $cmd did not name the linked pack ($(cat "$T/link.$cmd"))" grep -q "packs/pack-0000.zpk: is a symlink" "$T/link.$cmd"
done
cp -r "$ar" "$T/ar-catlink"
mv "$T/ar-catlink/catalog.sqlite" "$T/real.sqlite"
ln -s "$T/real.sqlite" "$T/ar-catlink/catalog.sqlite"
check "verify read a catalog through a symlink" bash -c "! timeout 60 '$z' verify '$T/ar-catlink' >'$T/catlink.out' 2>&1"
check "... without naming it ($(cat "$T/catlink.out"))" grep -q "catalog.sqlite: is a symlink; not followed" "$T/catlink.out"
check "pack wrote a catalog through a symlink" bash -c "! timeout 60 '$z' pack --hub '$hub' --out '$T/ar-catlink' >/dev/null 2>&1"
cp -r "$ar" "$T/ar-missing"
rm "$T/ar-missing/packs/pack-0000.zpk"
set +e
to "$z" pack --hub "$hub" --out "$T/ar-missing" >"$T/missing.out" 2>&1
rc=$?
set -e
check "zllm pack with a missing pack file exited 0" [ "$rc" -ne 0 ]
check "... without naming it ($(cat "$T/missing.out"))" grep -q "packs/pack-0000.zpk: the pack file the catalog names is missing" "$T/missing.out"
check "zllm pack recreated the missing pack file" [ ! -e "$T/ar-missing/packs/pack-0000.zpk" ]

finish
