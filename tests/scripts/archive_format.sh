#!/usr/bin/env bash
# Archive formats (docs/FORMAT.md): an archive written by zllm before format 2
# (tests/fixtures/archive-format1: `zllm pack` at commit 435dacd over five repos
# of the sample hub) still verifies and restores byte for byte, and keeps its
# format when more is packed into it; a new archive is format 2 and codes its
# tensor planes with rANS; `zllm verify` names each archive's format.
# Usage: archive_format.sh SAMPLE_HUB
source "$(dirname "$0")/lib.sh"
hub=$1
z="$ZLLM_BIN/zllm"
fixture="$ZLLM_SRC/tests/fixtures/archive-format1"
repos="alpha-labs/alpha-base chatco/alpha-chat upcast/alpha-chat-f32 mirror/alpha-chat legacy/opaque-model"

same_repos() { # same_repos RESTORED_DIR REPO...: each repo equal to the sample hub's
  local out=$1; shift
  for r in "$@"; do diff -r "$hub/$r" "$out/$r" || return 1; done
}

# the old archive, read by this build (a copy: readers make the WAL index beside the catalog)
cp -r "$fixture" "$T/old"
check "verify the format-1 archive" bash -c "'$z' verify '$T/old' >'$T/old.verify'"
check "verify names format 1" grep -q "^verify: archive format 1 (tensor planes: zstd); chunks: .* 0 rANS, 0 sparse$" "$T/old.verify"
check "verify finds no problem" grep -q "^verify: 74 blobs, 19 files, 0 problems$" "$T/old.verify"
check "restore the format-1 archive" "$z" restore "$T/old" --all --out "$T/old.out"
check "format-1 restore equals the hub" same_repos "$T/old.out" $repos
check "threaded restore of the format-1 archive" "$z" restore "$T/old" --all --out "$T/old.out2" --threads 2
check "threaded format-1 restore equals the hub" same_repos "$T/old.out2" $repos

# packing more into it keeps format 1: zstd planes, readable by the builds that wrote it
mkdir -p "$T/more/chatco"
cp -r "$hub/chatco/alpha-chat-v2" "$T/more/chatco/"
check "pack into the format-1 archive" bash -c "'$z' pack --hub '$T/more' --out '$T/old' >/dev/null"
check "verify after the append" bash -c "'$z' verify '$T/old' >'$T/old.verify2'"
check "the archive is still format 1, no rANS chunk" grep -q "^verify: archive format 1 (tensor planes: zstd); chunks: .* 0 rANS, 0 sparse$" "$T/old.verify2"
check "restore after the append" "$z" restore "$T/old" --repo chatco/alpha-chat-v2 --out "$T/old.out3"
check "appended repo equals the hub" same_repos "$T/old.out3" chatco/alpha-chat-v2
check "asking for format 2 on a format-1 archive is refused" \
  bash -c "! '$z' pack --hub '$T/more' --out '$T/old' --format 2 2>'$T/err' && grep -q 'archive format 1, asked for 2' '$T/err'"
check "an unknown format is refused" bash -c "! '$z' pack --hub '$T/more' --out '$T/none' --format 3 2>/dev/null"
check "nothing is created for an unknown format" [ ! -e "$T/none" ]

# the same repos in a new archive: format 2, rANS planes, no more bytes than format 1
mkdir -p "$T/sub"
for r in $repos; do mkdir -p "$T/sub/${r%/*}"; cp -r "$hub/$r" "$T/sub/$r"; done
check "pack a new archive" bash -c "'$z' pack --hub '$T/sub' --out '$T/new' >/dev/null"
check "verify the new archive" bash -c "'$z' verify '$T/new' >'$T/new.verify'"
check "verify names format 2" grep -q "^verify: archive format 2 (tensor planes: rANS); chunks: " "$T/new.verify"
check "the new archive holds rANS chunks" bash -c "! grep -q ' 0 rANS, 0 sparse$' '$T/new.verify'"
check "restore the new archive" "$z" restore "$T/new" --all --out "$T/new.out"
check "format-2 restore equals the hub" same_repos "$T/new.out" $repos
check "format 2 stores no more than format 1" \
  [ "$(stat -c %s "$T/new/packs/pack-0000.zpk")" -le "$(stat -c %s "$fixture/packs/pack-0000.zpk")" ]
check "pack --format 1 makes a format-1 archive" bash -c "'$z' pack --hub '$T/sub' --out '$T/pinned' --format 1 >/dev/null && '$z' verify '$T/pinned' | grep -q '^verify: archive format 1 .* 0 rANS, 0 sparse$'"
check "the pinned format-1 pack equals the old build's" cmp -s "$T/pinned/packs/pack-0000.zpk" "$fixture/packs/pack-0000.zpk"
finish
