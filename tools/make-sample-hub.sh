#!/usr/bin/env bash
# Rebuilds data/sample-hub/ (committed): a few real repos copied from the
# shared corpus, plus a tiny generated part (zllm mkhub, fixed seed).
# Usage: tools/make-sample-hub.sh [CORPUS_DIR] [ZLLM_BIN]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${1:-$here/../shared/corpus}
zllm=${2:-$here/build/bin/zllm}
out=$here/data/sample-hub
repos=(llama2c/stories260K llama2c/stories260K-bf16 tinytales/stories260K-manpages
       tinytales/stories260K-manpages-lr1e-5 mirrorbot/stories260K-manpages
       shardco/stories260K-manpages-lr1e-5-sharded docsmith/stories260K-copyright
       vladmandic/human-blazeface vladmandic/human-blazeface-back)
seed=2026
rm -rf "$out/hub" "$out/MANIFEST.tsv"
mkdir -p "$out/hub"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$zllm" mkhub --out "$tmp" --scale tiny --seed "$seed" >/dev/null
cp -r "$tmp/hub/." "$out/hub/"
for r in "${repos[@]}"; do
  mkdir -p "$out/hub/$r"
  cp -p "$corpus/hub/$r/"* "$out/hub/$r/"
done
# one manifest, the generated hub's columns; corpus rows get "-" for the extras
{
  head -n 1 "$tmp/MANIFEST.tsv"
  {
    tail -n +2 "$tmp/MANIFEST.tsv"
    for r in "${repos[@]}"; do
      awk -F'\t' -v r="$r" 'NR > 1 && $1 == r { print $0 "\t-\t-\t-" }' "$corpus/MANIFEST.tsv"
    done
  } | LC_ALL=C sort -t$'\t' -k1,1 -k2,2
} > "$out/MANIFEST.tsv"
chmod -R u+w,go-w "$out"
echo "sample hub: $(find "$out/hub" -type f | wc -l) files, $(du -sh "$out/hub" | cut -f1)"
