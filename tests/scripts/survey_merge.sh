#!/usr/bin/env bash
# Packing spread over ranks: each rank packs whole families into its own
# staging archive and rank 0 merges them.  A hub where one repo repeats files
# and tensors of other families (which other ranks pack) must give, on 2 and 3
# ranks, the catalog one process gives: the same methods and stored bytes for
# every file (zllm ls), dups found across shares, verify clean, restore exact.
source "$(dirname "$0")/lib.sh"
sample="$ZLLM_SRC/data/sample-hub/hub"
z="$ZLLM_BIN/zllm"
hub="$T/hub"
cp -r "$sample" "$hub"
mkdir -p "$hub/extra/tensor-copy"
cp "$sample/alpha-labs/alpha-base/config.json" "$hub/extra/tensor-copy/config.json"
python3 - "$sample" "$hub/extra/tensor-copy/model.safetensors" <<'PY'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
def first_tensor(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        name = sorted(k for k in h if k != "__metadata__")[0]
        b, e = h[name]["data_offsets"]
        f.seek(8 + n + b)
        return name, h[name], f.read(e - b)
tensors, data = {}, b""
for i, repo in enumerate(["alpha-labs/alpha-base", "vladmandic/human-blazeface"]):
    name, t, raw = first_tensor(f"{src}/{repo}/model.safetensors")
    tensors[f"copy{i}.{name}"] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header = json.dumps(tensors).encode()
header += b" " * (-len(header) % 8)
open(out, "wb").write(struct.pack("<Q", len(header)) + header + data)
PY
for n in 1 2 3; do
  check "survey on $n ranks" mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$T/s$n" --quiet --no-pack
  rm -rf "$T/s$n"
  check "survey with the archive on $n ranks" mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$T/s$n" --quiet
  "$z" ls "$T/s$n/archive" >"$T/ls$n"
done
check "the same catalog on 1 and 2 ranks" cmp -s "$T/ls1" "$T/ls2"
check "the same catalog on 1 and 3 ranks" cmp -s "$T/ls1" "$T/ls3"
# hub order: alpha-labs/ < extra/ < vladmandic/, so the alpha tensor's copy is
# the dup and the blazeface tensor becomes a dup of the copy
check "a copied tensor is a dup across shares" grep -q $'^extra/tensor-copy\tmodel.safetensors\t.*\tdup:1 solo:1' "$T/ls3"
check "... and the later original a dup of the copy" grep -q $'^vladmandic/human-blazeface\tmodel.safetensors\t.*\tdup:1' "$T/ls3"
check "the copied config is a file dup across shares" grep -q $'^extra/tensor-copy\tconfig.json\t.*\tdup\t' "$T/ls3"
check "pack files from every share" [ "$(ls "$T/s3/archive/packs" | wc -l)" -ge 3 ]
check "no staging left behind" [ ! -e "$T/s3/archive.stage" ]
check "the merged archive verifies" "$z" verify "$T/s3/archive"
check "restore from the merged archive is exact" bash -c "'$z' restore '$T/s3/archive' --all --out '$T/back' >/dev/null && diff -r '$hub' '$T/back' >/dev/null"
finish
