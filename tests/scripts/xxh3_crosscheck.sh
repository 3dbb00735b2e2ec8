#!/usr/bin/env bash
# The XXH3-128 that zllm prints for each tensor equals xxhsum -H2 (xxhash's
# own CLI) over the same bytes, cut out with dd at the header's offsets.
source "$(dirname "$0")/lib.sh"
hub=$1
files=$(find "$hub" -name '*.safetensors' | sort | head -n 4)
for f in $files; do
  "$ZLLM_BIN/zllm" inspect "$f" >"$T/inspect"
  python3 - "$f" >"$T/offsets" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read(8)
n = struct.unpack("<Q", b)[0]
h = json.loads(open(sys.argv[1], "rb").read(8 + n)[8:])
for k, v in h.items():
    if k != "__metadata__":
        s, e = v["data_offsets"]
        print(k, 8 + n + s, e - s)
PY
  while read -r name start len; do
    want=$(dd if="$f" iflag=skip_bytes,count_bytes skip="$start" count="$len" bs=1M status=none | xxhsum -H2 - | cut -d' ' -f1)
    got=$(awk -v n="$name" '$1 == n { print $NF }' "$T/inspect")
    check "$f:$name: zllm $got, xxhsum $want" [ "$got" = "$want" ]
  done <"$T/offsets"
done
finish
