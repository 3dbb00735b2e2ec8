#!/usr/bin/env bash
# zllm inspect agrees with MANIFEST.tsv: the SHA-256 of every file, which
# sha256sum (coreutils) also confirms.
source "$(dirname "$0")/lib.sh"
snap=$1
rows=0
while IFS=$'\t' read -r repo file bytes sha rest; do
  [ "$repo" = repo ] && continue
  rows=$((rows + 1))
  path="$snap/hub/$repo/$file"
  got=$("$ZLLM_BIN/zllm" inspect "$path" | awk '$1 == "sha256" { print $2 }')
  check "$repo/$file: zllm inspect says $got, manifest $sha" [ "$got" = "$sha" ]
  check "$repo/$file: sha256sum disagrees" [ "$(sha256sum "$path" | cut -d' ' -f1)" = "$sha" ]
  check "$repo/$file: size" [ "$(stat -c %s "$path")" = "$bytes" ]
done <"$snap/MANIFEST.tsv"
check "manifest has rows" [ "$rows" -gt 10 ]
echo "$rows manifest rows checked"
finish
