#!/usr/bin/env bash
# The command line answers help requests and refuses nonsense.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
check "zllm help lists inspect" bash -c "'$z' help | grep -q inspect"
for c in inspect hub mkhub pack restore cat-tensor verify ls serve; do
  check "zllm $c --help" bash -c "'$z' $c --help | grep -q 'usage: zllm $c'"
  check "zllm help $c" bash -c "'$z' help $c | grep -q 'usage: zllm $c'"
done
for e in "GET /api/models" "/tree/REV" "paths-info" "/resolve/REV/PATH" "HF_ENDPOINT" "--token-file"; do
  check "zllm serve --help documents $e" bash -c "'$z' serve --help | grep -qF -- '$e'"
done
set +e
"$z" serve 2>/dev/null; check "serve without an archive exits 2" [ $? -eq 2 ]
"$z" serve "$ZLLM_TMP/not-an-archive" --listen 127.0.0.1:0 2>/dev/null; check "serve of a missing archive exits 1" [ $? -eq 1 ]
"$z" serve x --listen nowhere 2>/dev/null; check "serve --listen without a port exits 1" [ $? -eq 1 ]
"$z" frobnicate 2>/dev/null; check "unknown command exits 2" [ $? -eq 2 ]
"$z" 2>/dev/null; check "no command exits 2" [ $? -eq 2 ]
"$z" mkhub --seed x --out /tmp/x 2>/dev/null; check "bad seed exits 2" [ $? -eq 2 ]
"$z" mkhub --scale huge --out "$ZLLM_TMP/nohub" 2>/dev/null; check "bad scale exits 1" [ $? -eq 1 ]
"$z" restore 2>/dev/null; check "restore without arguments exits 2" [ $? -eq 2 ]
"$z" pack --hub x --out y --profile nope 2>/dev/null; check "unknown profile exits 2" [ $? -eq 2 ]
"$z" verify "$ZLLM_TMP/not-an-archive" 2>/dev/null; check "verify of a missing archive exits 1" [ $? -eq 1 ]
set -e
finish
