#!/usr/bin/env bash
# The survey's in-run "ZipNN-style" baseline (zllm-survey --baselines: byte
# grouping alone, planes zstd-coded, in C) against ZipNN itself (zipnn from
# PyPI, bench/zipnn_real.py: per tensor, its Huffman coder; and its delta
# mode), on the same hub snapshot: stored bytes, reduction, MB/s.
# Usage: bench/bench_zipnn.sh SNAPSHOT_DIR  (hub/ and MANIFEST.tsv; needs
# .pyenv-bench/zipnn: bench/zipnn_env.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${ZLLM_BIN:-$here/build/bin}
snap=${1:?usage: bench/bench_zipnn.sh SNAPSHOT_DIR}
zpy=${ZIPNN_PYTHON:-$here/.pyenv-bench/zipnn/bin/python}
[ -x "$zpy" ] || { echo "bench_zipnn: no $zpy (bench/zipnn_env.sh makes it)" >&2; exit 1; }
work=$(mktemp -d /tmp/zllm-bench-zipnn-XXXXXX)
trap 'rm -rf "$work"' EXIT
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" -ne 0 ] || mpirun+=(--allow-run-as-root)
"${mpirun[@]}" -n 1 "$bin/zllm-survey" --hub "$snap/hub" --out "$work/out" --baselines >/dev/null 2>&1
"$zpy" "$here/bench/zipnn_real.py" "$snap/hub" "$snap/MANIFEST.tsv" >"$work/zipnn"
version=$("$zpy" -c 'import importlib.metadata as m; print(m.version("zipnn"))')
python3 - "$work/out/summary.json" "$work/zipnn" "$version" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))["results"]
total = summary["archive"]["original_bytes"]
rows = [(f"survey {b['method']}", b["stored_bytes"], b["mb_per_s"], "-")
        for b in summary["baselines"] if b["method"] in ("zstd", "zipnn", "zllm")]
for line in open(sys.argv[2]):
    mode, stored, orig, comp, decomp, _ = line.split()
    assert int(orig) == total, (orig, total)
    name = {"zipnn-pkg": "ZipNN %s" % sys.argv[3], "zipnn-pkg-delta": "ZipNN %s, delta" % sys.argv[3]}[mode]
    rows.append((name, int(stored), total / float(comp) / 1e6, "%.0f" % (total / float(decomp) / 1e6)))
print("%-24s %12s %10s %16s %16s" % ("", "stored", "reduction", "compress MB/s", "decompress MB/s"))
for name, stored, c, d in rows:
    print("%-24s %12d %9.1f%% %16.0f %16s" % (name, stored, 100 * (1 - stored / total), c, d))
style = next(b["stored_bytes"] for b in summary["baselines"] if b["method"] == "zipnn")
real = next(r[1] for r in rows if r[0].startswith("ZipNN") and "delta" not in r[0])
print("ZipNN-style / ZipNN stored bytes: %.3f" % (style / real))
PY
