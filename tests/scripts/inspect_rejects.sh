#!/usr/bin/env bash
# zllm inspect rejects every malformed fixture: exit 1, exactly one line on
# stderr naming the file and the rule of its name (bad-<rule>--<case>).
source "$(dirname "$0")/lib.sh"
dir=$1
for f in "$dir"/bad-*.safetensors; do
  name=$(basename "$f")
  rule=${name#bad-}; rule=${rule%%--*}
  set +e
  "$ZLLM_BIN/zllm" inspect "$f" >"$T/out" 2>"$T/err"
  rc=$?
  set -e
  check "$name: exit status $rc, wanted 1" [ "$rc" -eq 1 ]
  check "$name: stderr has $(wc -l <"$T/err") lines, wanted 1" [ "$(wc -l <"$T/err")" -eq 1 ]
  check "$name: message lacks file and rule '$rule'" grep -qF "$name: safetensors: $rule: " "$T/err"
done
for f in "$dir"/good-*.safetensors; do
  check "$(basename "$f") rejected" "$ZLLM_BIN/zllm" inspect "$f"
done
# a directory with one bad file among good ones: the good ones are still inspected
mkdir -p "$T/mixed/org/repo"
cp "$dir/good-two-tensors.safetensors" "$T/mixed/org/repo/a.safetensors"
cp "$dir/bad-offsets-gap--x.safetensors" "$T/mixed/org/repo/b.safetensors"
set +e
"$ZLLM_BIN/zllm" inspect "$T/mixed/org/repo" >"$T/out" 2>"$T/err"
rc=$?
set -e
check "mixed dir: exit $rc, wanted 1" [ "$rc" -eq 1 ]
check "mixed dir: good file not inspected" grep -q "a.safetensors" "$T/out"
check "mixed dir: bad file not reported" grep -q "b.safetensors: safetensors: offsets-gap" "$T/err"
finish
