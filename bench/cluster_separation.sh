#!/usr/bin/env bash
# Bit distances of every same-architecture pair on the sample hub, the corpus
# (when present) and generated hubs, split by the ground truth into related
# and unrelated pairs: the table behind the threshold in docs/CLUSTER.md.
# Usage: bench/cluster_separation.sh [BUILD_DIR]   (default: build)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$src/build}/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=()
add() { # add NAME SNAPSHOT
  "$bin/zllm" cluster --hub "$2/hub" --out "$work/$1.fam" --all-pairs --pairs "$work/$1.pairs" --quiet
  args+=("$1" "$2/MANIFEST.tsv" "$work/$1.pairs")
}
add sample-hub "$src/data/sample-hub"
[ -f "$src/../shared/corpus/MANIFEST.tsv" ] && add corpus "$src/../shared/corpus"
for seed in 1 2 3 4 5 6 7 8; do
  "$bin/zllm" mkhub --out "$work/gen$seed" --scale small --seed "$seed" >/dev/null 2>&1
  add "mkhub small seed $seed" "$work/gen$seed"
done
"$bin/zllm" mkhub --out "$work/genm" --scale medium --seed 2026 >/dev/null 2>&1
add "mkhub medium seed 2026" "$work/genm"
python3 "$src/bench/cluster_separation.py" "${args[@]}"
