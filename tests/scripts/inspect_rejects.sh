#!/usr/bin/env bash
# zllm inspect rejects every malformed fixture: exit 1, exactly one line on
# stderr naming the file and the rule of its name (bad-<rule>--<case>).
source "$(dirname "$0")/lib.sh"
dir=$1
for f in "$dir"/bad-*.safetensors; do
  name=$(basename "$f")
  rule=${name#bad-}; rule=${rule%%--*}
  set +e
  "$ZLLM_BIN/zllm" inspect "$f" >"$ZLLM_TMP/out" 2>"$ZLLM_TMP/err"
  rc=$?
  set -e
  check "$name: exit status $rc, wanted 1" [ "$rc" -eq 1 ]
  check "$name: stderr has $(wc -l <"$ZLLM_TMP/err") lines, wanted 1" [ "$(wc -l <"$ZLLM_TMP/err")" -eq 1 ]
  check "$name: message lacks file and rule '$rule'" grep -qF "$name: safetensors: $rule: " "$ZLLM_TMP/err"
done
for f in "$dir"/good-*.safetensors; do
  check "$(basename "$f") rejected" "$ZLLM_BIN/zllm" inspect "$f"
done
# a directory with one bad file among good ones: the good ones are still inspected
mkdir -p "$ZLLM_TMP/mixed/org/repo"
cp "$dir/good-two-tensors.safetensors" "$ZLLM_TMP/mixed/org/repo/a.safetensors"
cp "$dir/bad-offsets-gap--x.safetensors" "$ZLLM_TMP/mixed/org/repo/b.safetensors"
set +e
"$ZLLM_BIN/zllm" inspect "$ZLLM_TMP/mixed/org/repo" >"$ZLLM_TMP/out" 2>"$ZLLM_TMP/err"
rc=$?
set -e
check "mixed dir: exit $rc, wanted 1" [ "$rc" -eq 1 ]
check "mixed dir: good file not inspected" grep -q "a.safetensors" "$ZLLM_TMP/out"
check "mixed dir: bad file not reported" grep -q "b.safetensors: safetensors: offsets-gap" "$ZLLM_TMP/err"
finish
