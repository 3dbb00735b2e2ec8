#!/usr/bin/env bash
# The corpus packed with its true delta bases (from MANIFEST.tsv) as the
# families file: BitX is used, and every file still restores byte for byte.
source "$(dirname "$0")/lib.sh"
snap=$1
fam="$T/families.tsv"
awk -F'\t' 'NR > 1 && $11 != "-" { print $1 "\t" $11 }' "$snap/MANIFEST.tsv" | sort -u >"$fam"
check "families file is empty" [ -s "$fam" ]
check "round trip with the true bases" bash "$(dirname "$0")/archive_roundtrip.sh" "$snap/hub" "$fam"
finish
