#!/usr/bin/env bash
# zllm crawl --metadata-only: no weight file is downloaded; exactly 8 bytes
# plus the header of every safetensors file cross the wire (counted by the
# server); metadata.jsonl has a line per model whose dtypes and parameter
# counts match the headers.  With MAX_PERCENT, the bytes received (API JSON
# included) must stay under that share of the weight bytes.
# Usage: crawl_metadata.sh HUB [MAX_PERCENT]
source "$(dirname "$0")/lib.sh"
hub=$1
max=${2:-}
z="$ZLLM_BIN/zllm"
start_hub "$hub"
check "crawl --metadata-only" "$z" crawl --endpoint "$HS_URL" --out "$T/meta" --metadata-only >"$T/meta.out" 2>&1
check "no file downloaded" [ -z "$(find "$T/meta" -type f -not -path '*/.zllm/*')" ]
sent=$(curl -s "$HS_URL/_stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body_bytes"])')
rc=0
python3 - "$hub" "$T/meta/.zllm/metadata.jsonl" "$sent" "$T/meta.out" "$max" >"$T/check.out" 2>&1 <<'PY' || rc=$?
import json, os, struct, sys
hub, meta, sent, out, mx = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
want, weights, repos = 0, 0, {}
for org in sorted(os.listdir(hub)):
    for name in sorted(os.listdir(os.path.join(hub, org))):
        rid, d = org + "/" + name, os.path.join(hub, org, name)
        repos[rid] = {}
        for base, _, files in os.walk(d):
            for fn in files:
                p = os.path.join(base, fn)
                if not fn.endswith(".safetensors"):
                    continue
                weights += os.path.getsize(p)
                with open(p, "rb") as f:
                    n = struct.unpack("<Q", f.read(8))[0]
                    h = json.loads(f.read(n))
                want += 8 + n
                params = {}
                for k, t in h.items():
                    if k != "__metadata__":
                        c = 1
                        for s in t["shape"]:
                            c *= s
                        params[t["dtype"]] = params.get(t["dtype"], 0) + c
                repos[rid][os.path.relpath(p, d)] = params
bad = 0
lines = [json.loads(l) for l in open(meta)]
if sorted(l["id"] for l in lines) != sorted(repos):
    print("metadata.jsonl does not list every repo"); bad += 1
for l in lines:
    for f in l["files"]:
        if f["path"].endswith(".safetensors") and f.get("parameters") != repos[l["id"]].get(f["path"]):
            print("parameters differ:", l["id"], f["path"]); bad += 1
if sent != want:
    print(f"server sent {sent} body bytes, expected {want} (8 + header per safetensors file)"); bad += 1
got = [l for l in open(out) if l.startswith("metadata only:")]
pct = float(got[0].split("received ")[1].split("%")[0]) if got else 100.0
print(f"weights {weights} B; file bodies sent {sent} B ({100 * sent / max(weights, 1):.3f}%); "
      f"received in all (with API JSON) {pct:.3f}% of the listed bytes")
if mx and pct >= float(mx):
    print(f"received {pct}% >= {mx}%"); bad += 1
sys.exit(1 if bad else 0)
PY
cat "$T/check.out"
check "headers only, parameters match, within the budget" [ "$rc" -eq 0 ]
check "the summary counts every model by quarter" bash -c \
  "awk '/^[0-9][0-9][0-9][0-9]Q[1-4] / { s += \$2 } END { exit s == $(cd "$hub" && ls -d */* | wc -l) ? 0 : 1 }' '$T/meta.out'"
check "the summary has the dtype mix" grep -Eq '^(F32|BF16|F16) +[0-9]+$' "$T/meta.out"
stop_hub
finish
