#!/usr/bin/env bash
# Peak RSS of zllm pack and restore on a model holding one 1 GiB tensor, and
# of a fine-tune of it packed as BitX (the base is decoded part by part).
# Target: <= 512 MiB.  Usage: bench/rss_big_tensor.sh [GiB]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
gib=${1:-1}
work=$(mktemp -d /tmp/zllm-rss-XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$work/hub" "$gib" <<'PY'
import json, os, struct, sys
hub, gib = sys.argv[1], int(sys.argv[2])
rows, cols = 32768 * gib, 16384          # BF16: rows * cols * 2 bytes = gib GiB
def write(repo, mutate):
    d = os.path.join(hub, repo); os.makedirs(d, exist_ok=True)
    n = rows * cols * 2
    h = json.dumps({"big.weight": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [0, n]}}).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        block = bytearray(os.urandom(1 << 24)) if not mutate else None
        for i in range(n >> 24):
            b = bytearray(base_blocks[i]) if mutate else block
            if mutate:
                b[::97] = os.urandom(len(b[::97]))  # ~1% of bytes changed
            else:
                base_blocks.append(bytes(b))
                block = bytearray(os.urandom(1 << 24)) if i % 8 == 7 else block
            f.write(b)
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("---\nbase_model: big/base\n---\n" if mutate else "---\n---\n")
base_blocks = []
write("big/base", False)
write("big/tuned", True)
PY
report() { awk -v what="$1" '{ printf "%-34s %6.1f s  peak RSS %5.0f MiB\n", what, $1, $2 / 1024 }' "$work/time"; }
/usr/bin/time -f "%e %M" -o "$work/time" "$bin/zllm" pack --hub "$work/hub" --out "$work/ar" >/dev/null
report "pack (1 GiB tensor + its fine-tune)"
/usr/bin/time -f "%e %M" -o "$work/time" "$bin/zllm" restore "$work/ar" --all --out "$work/out"
report "restore --all"
cmp "$work/hub/big/tuned/model.safetensors" "$work/out/big/tuned/model.safetensors" && echo "restored byte-identical"
"$bin/zllm" ls "$work/ar" | awk -F'\t' '$5 == "safetensors"'
