#!/usr/bin/env bash
# zllm pack -> restore round trip: every file byte-identical, verify clean,
# cat-tensor equal to the bytes at the header's offsets, incremental ingest,
# single-repo and single-file restore.  Usage: archive_roundtrip.sh HUB [FAMILIES.tsv]
source "$(dirname "$0")/lib.sh"
hub=$1
fam=${2:-}
tag=$(echo "$hub${fam}" | cksum | cut -d' ' -f1)
ar="$ZLLM_TMP/ar-$tag"
out="$ZLLM_TMP/restored-$tag"
rm -rf "$ar" "$out"
z="$ZLLM_BIN/zllm"
check "pack" "$z" pack --hub "$hub" --out "$ar" ${fam:+--families "$fam"}
check "restore --all" "$z" restore "$ar" --all --out "$out"
check "restored tree differs from the hub" diff -r "$hub" "$out"
check "verify" "$z" verify "$ar"
# threads change nothing: the same pack bytes, the same restored tree
rm -rf "$ar.t2" "$out.t2"
check "pack --threads 2" "$z" pack --hub "$hub" --out "$ar.t2" --threads 2 ${fam:+--families "$fam"}
check "pack differs with 2 threads" cmp -s "$ar/packs/pack-0000.zpk" "$ar.t2/packs/pack-0000.zpk"
check "restore --all --threads 2" "$z" restore "$ar.t2" --all --out "$out.t2" --threads 2
check "threaded restore differs from the hub" diff -r "$hub" "$out.t2"
# the part cache (bases decoded once per restore) changes no byte: without it, and
# with a budget so small that it evicts all the time
for mib in 0 1; do
  rm -rf "$out.c$mib"
  check "restore with ZLLM_PART_CACHE_MIB=$mib" env ZLLM_PART_CACHE_MIB=$mib "$z" restore "$ar" --all --out "$out.c$mib"
  check "restore with a $mib MiB part cache differs from the hub" diff -r "$hub" "$out.c$mib"
done
check "a bad ZLLM_PART_CACHE_MIB is refused" bash -c "! ZLLM_PART_CACHE_MIB=lots '$z' restore '$ar' --all --out '$out.bad' 2>'$T/cache.err' && grep -q 'ZLLM_PART_CACHE_MIB=lots' '$T/cache.err'"
# pack again: nothing new is stored
before=$(stat -c %s "$ar/packs/pack-0000.zpk")
again() { "$z" pack --hub "$hub" --out "$ar" >"$T/again.out" && grep -q "^packed 0 repos" "$T/again.out"; }
check "second pack stores nothing" again
check "pack file grew on a second pack" [ "$(stat -c %s "$ar/packs/pack-0000.zpk")" = "$before" ]
# cat-tensor: the exact bytes of a few tensors of the first safetensors files
for f in $(cd "$hub" && find . -name '*.safetensors' | sort | head -n 3); do
  repo=$(dirname "${f#./}"); repo=${repo%%/*}/$(dirname "${f#./}" | cut -d/ -f2)
  python3 - "$hub/$f" >"$T/offsets" <<'PY'
import json, struct, sys
n = struct.unpack("<Q", open(sys.argv[1], "rb").read(8))[0]
h = json.loads(open(sys.argv[1], "rb").read(8 + n)[8:])
for k, v in list((k, v) for k, v in h.items() if k != "__metadata__")[:4]:
    print(k, 8 + n + v["data_offsets"][0], v["data_offsets"][1] - v["data_offsets"][0])
PY
  while read -r name start len; do
    "$z" cat-tensor "$ar" --repo "$repo" --tensor "$name" >"$T/t.bin"
    dd if="$hub/$f" iflag=skip_bytes,count_bytes skip="$start" count="$len" bs=1M status=none >"$T/want.bin"
    check "cat-tensor $repo $name" cmp -s "$T/t.bin" "$T/want.bin"
  done <"$T/offsets"
done
# one repo, one file
first=$(cd "$hub" && find . -name config.json | sort | head -n 1)
repo=$(dirname "${first#./}")
rm -rf "$out.one"
check "restore --repo --file" "$z" restore "$ar" --repo "$repo" --file config.json --out "$out.one"
check "single file differs" cmp -s "$hub/$repo/config.json" "$out.one/$repo/config.json"
check "restore of a missing repo fails" bash -c "! '$z' restore '$ar' --repo no/such --out '$out.none' 2>/dev/null"
finish
