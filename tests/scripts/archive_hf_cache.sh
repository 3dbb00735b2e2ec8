#!/usr/bin/env bash
# zllm pack reads a Hugging Face cache (models--org--name/snapshots/<rev>/
# with symlinks into blobs/) and restores the plain layout byte for byte.
source "$(dirname "$0")/lib.sh"
z="$ZLLM_BIN/zllm"
sample="$ZLLM_SRC/data/sample-hub/hub"
cache="$T/hf-cache"
for repo in llama2c/stories260K-bf16 tinytales/stories260K-manpages chatco/alpha-chat; do
  dir="$cache/models--${repo%%/*}--${repo#*/}"
  rev=0123456789abcdef0123456789abcdef01234567
  mkdir -p "$dir/blobs" "$dir/refs" "$dir/snapshots/$rev"
  echo "$rev" >"$dir/refs/main"
  for f in "$sample/$repo"/*; do
    sha=$(sha256sum "$f" | cut -d' ' -f1)
    cp "$f" "$dir/blobs/$sha"
    ln -s "../../blobs/$sha" "$dir/snapshots/$rev/$(basename "$f")"
  done
done
check "pack an HF cache" "$z" pack --hub "$cache" --out "$T/ar"
check "restore --all" "$z" restore "$T/ar" --all --out "$T/out"
for repo in llama2c/stories260K-bf16 tinytales/stories260K-manpages chatco/alpha-chat; do
  check "$repo restored differently" diff -r "$sample/$repo" "$T/out/$repo"
done
rev_ok() { [ "$(sqlite3 "$T/ar/catalog.sqlite" "SELECT count(*) FROM repos WHERE revision = '0123456789abcdef0123456789abcdef01234567'")" = 3 ]; }
check "snapshot revision not recorded" rev_ok
check "verify" "$z" verify "$T/ar"
finish
