#!/usr/bin/env bash
# A packer's output leaves the page cache once it is on disk (fsync, then
# POSIX_FADV_DONTNEED at each commit, whole pages): streaming an archive must
# not evict the hub being read.  One repo of one 8 MiB F32 file that nothing
# reads back (no dup, no base): after `zllm pack` at most its last partial
# page stays cached, where before every page did; the round trip is exact.
source "$(dirname "$0")/lib.sh"
hub="$T/hub" ar="$T/ar" out="$T/out"
mkdir -p "$hub/org/model"
python3 - "$hub/org/model/model.safetensors" <<'PY'
import json, os, struct, sys
n = 2 * 1024 * 1024  # 8 MiB of F32
header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + os.urandom(4 * n))
PY
check "pack" "$ZLLM_BIN/zllm" pack --hub "$hub" --out "$ar"
pack="$ar/packs/pack-0000.zpk"
resident() { fincore --bytes --noheadings --output RES "$pack"; }
check "the pack is not the size of the file ($(stat -c %s "$pack"))" [ "$(stat -c %s "$pack")" -gt $((8 << 20)) ]
check "the written pack stayed in the page cache ($(resident) of $(stat -c %s "$pack") bytes)" \
  [ "$(resident)" -le 4096 ]
check "restore" "$ZLLM_BIN/zllm" restore "$ar" --all --out "$out"
check "restored file differs" cmp "$hub/org/model/model.safetensors" "$out/org/model/model.safetensors"
finish
