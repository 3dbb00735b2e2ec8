#!/usr/bin/env bash
# A crawled snapshot carries each repo's commit and createdAt
# (.zllm/metadata.jsonl): the local reader reports the commit as the repo's
# revision, and the clustering orders byte-identical re-uploads by createdAt
# (the first upload is stored, the later one points at it).
source "$(dirname "$0")/lib.sh"
sample="$ZLLM_SRC/data/sample-hub/hub"
z="$ZLLM_BIN/zllm"
start_hub "$sample"
check "crawl the sample hub" "$z" crawl --endpoint "$HS_URL" --out "$T/snap" --quiet
stop_hub
sha=$(python3 -c "
import json
for l in open('$T/snap/.zllm/metadata.jsonl'):
    m = json.loads(l)
    if m['id'] == 'llama2c/stories260K': print(m['sha'])")
check "the reader reports the crawled commit" bash -c "'$z' hub '$T/snap' | grep -q '$sha'"
base_of() { awk -F'\t' -v r="$1" '$1 == r { print $3 }' "$2"; }
check "cluster the crawled hub" "$z" cluster --hub "$T/snap" --out "$T/f1.tsv" --quiet
# the server dates repos in id order: mirrorbot/... was uploaded before tinytales/...
check "the earlier upload is the stored twin" [ "$(base_of tinytales/stories260K-manpages "$T/f1.tsv")" = mirrorbot/stories260K-manpages ]
python3 - "$T/snap/.zllm/metadata.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
for m in lines:
    if m["id"] == "tinytales/stories260K-manpages":
        m["createdAt"] = "2020-01-01T00:00:00.000Z"
open(sys.argv[1], "w").write("".join(json.dumps(m) + "\n" for m in lines))
PY
check "cluster again" "$z" cluster --hub "$T/snap" --out "$T/f2.tsv" --quiet
check "an earlier createdAt makes tinytales the stored twin" [ "$(base_of mirrorbot/stories260K-manpages "$T/f2.tsv")" = tinytales/stories260K-manpages ]
finish
