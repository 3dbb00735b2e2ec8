#!/usr/bin/env bash
# zllm cluster against a hub's ground truth (MANIFEST.tsv): every model in
# its true family, the chosen bases store no more bytes than the true delta
# bases, unrelated same-architecture models apart, and `zllm pack` clusters
# by default.  Usage: cluster_truth.sh SNAPSHOT (holding hub/ and MANIFEST.tsv)
source "$(dirname "$0")/lib.sh"
snap=$1
z="$ZLLM_BIN/zllm"
py="$(dirname "$0")/cluster_check.py"

check "zllm cluster runs" "$z" cluster --hub "$snap/hub" --out "$T/families.tsv" --pairs "$T/pairs.tsv"
check "every model in its true family" python3 "$py" families "$snap/MANIFEST.tsv" "$T/families.tsv"
for mode in --all-pairs --bands-only; do
  check "families right with $mode" bash -c \
    "'$z' cluster --hub '$snap/hub' --out '$T/m.tsv' $mode --quiet && python3 '$py' families '$snap/MANIFEST.tsv' '$T/m.tsv'"
done

# every decision names its reason
check "every row has a decision and a reason" awk -F'\t' 'NR > 1 && ($8 == "" || $9 == "" || $9 == "-") { exit 1 }' "$T/families.tsv"

# stored bytes: pack with the chosen bases (the default) and with the truth
awk -F'\t' 'NR > 1 && $11 != "-" { print $1 "\t" $11 }' "$snap/MANIFEST.tsv" | sort -u >"$T/truth.tsv"
check "pack (clustering by default)" "$z" pack --hub "$snap/hub" --out "$T/ar" 
check "pack with MANIFEST's delta_base" "$z" pack --hub "$snap/hub" --out "$T/ar-truth" --families "$T/truth.tsv"
"$z" ls "$T/ar" >"$T/ls.tsv"
"$z" ls "$T/ar-truth" >"$T/ls-truth.tsv"
check "chosen bases store no more than the true delta bases" python3 "$py" bytes "$snap/MANIFEST.tsv" "$T/ls.tsv" "$T/ls-truth.tsv"
check "pack used the chosen bases" bash -c \
  "awk -F'\t' 'NR > 1 && \$3 != \"-\" { print \$1 \"\t\" \$3 }' '$T/families.tsv' | sort >'$T/chosen' &&
   awk -F'\t' 'NR > 1 && \$1 != \"total\" && \$7 != \"-\" { print \$1 \"\t\" \$7 }' '$T/ls.tsv' | sort -u >'$T/used' &&
   cmp -s '$T/chosen' '$T/used'"
check "the archive verifies" "$z" verify "$T/ar"
check "restore is byte-identical" bash -c \
  "'$z' restore '$T/ar' --all --out '$T/back' >/dev/null && diff -r '$snap/hub' '$T/back' >/dev/null"

# the families file written by zllm cluster is what --families reads
check "pack --families families.tsv takes its base column" bash -c \
  "'$z' pack --hub '$snap/hub' --out '$T/ar-fam' --families '$T/families.tsv' >/dev/null &&
   '$z' ls '$T/ar-fam' | awk -F'\t' 'NR > 1 && \$1 != \"total\" && \$7 != \"-\" { print \$1 \"\t\" \$7 }' | sort -u | cmp -s - '$T/chosen'"
finish
