#!/usr/bin/env bash
# The weight planes under each candidate coder (zllm-bench-planes): the real
# corpus with its true bases (from MANIFEST.tsv: fine-tunes, checkpoints and
# casts are coded BitX against their delta base, bases solo; byte-identical
# copies and reshards are left out, dedup stores them) and a generated
# family (one BF16 base and seven fine-tunes, two of them measured).
# Usage: bench/bench_planes.sh [BUILD_DIR] [CORPUS_DIR]   env: MIB (64), REPEAT (3)
set -euo pipefail
build=${1:-build} corpus=${2:-$(cd "$(dirname "$0")/.." && pwd)/../shared/corpus}
bin=$build/bin
[ -x "$bin/zllm-bench-planes" ] || { echo "bench_planes: $bin/zllm-bench-planes missing (apt-get install libhtscodecs-dev, rebuild)" >&2; exit 1; }
work=$(mktemp -d /tmp/zllm-planes.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ -f "$corpus/MANIFEST.tsv" ]; then
  args=()
  while IFS=$'\t' read -r repo relation base; do
    case $relation in
      copy* | reshard*) continue ;;
    esac
    if [ "$base" = - ]; then args+=("$corpus/hub/$repo"); else args+=("$corpus/hub/$repo=$corpus/hub/$base"); fi
  done < <(awk -F'\t' 'NR > 1 && $2 ~ /\.safetensors$/ { print $1 "\t" $10 "\t" $11 }' "$corpus/MANIFEST.tsv" | sort -u)
  echo "== $corpus (true bases from MANIFEST.tsv)"
  "$bin/zllm-bench-planes" --repeat "${REPEAT:-3}" --mib "${MIB:-64}" "${args[@]}"
fi

"$bin/zllm" mkhub --out "$work/gen" --scale bench --seed 3 --layout family >/dev/null
h=$work/gen/hub
echo "== generated family (zllm mkhub --scale bench --seed 3 --layout family): two fine-tunes against the base, the base solo"
"$bin/zllm-bench-planes" --repeat "${REPEAT:-3}" --mib "${MIB:-64}" \
  "$h/tuner1/fam-chat=$h/famlabs/fam-base" "$h/tuner5/fam-light=$h/famlabs/fam-base" "$h/famlabs/fam-base"
