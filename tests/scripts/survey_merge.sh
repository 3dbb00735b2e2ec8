#!/usr/bin/env bash
# Packing spread over ranks: each rank packs whole families into its own
# staging archive and rank 0 merges them.  A hub where one repo repeats files
# and tensors of other families (which other ranks pack) must give, on 2 and 3
# ranks, the catalog one process gives: the same methods and stored bytes for
# every file (zllm ls), dups found across shares, verify clean, restore exact.
source "$(dirname "$0")/lib.sh"
sample="$ZLLM_SRC/data/sample-hub/hub"
z="$ZLLM_BIN/zllm"
hub="$T/hub"
cp -r "$sample" "$hub"
mkdir -p "$hub/extra/tensor-copy"
cp "$sample/alpha-labs/alpha-base/config.json" "$hub/extra/tensor-copy/config.json"
python3 - "$sample" "$hub/extra/tensor-copy/model.safetensors" <<'PY'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
def first_tensor(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        name = sorted(k for k in h if k != "__metadata__")[0]
        b, e = h[name]["data_offsets"]
        f.seek(8 + n + b)
        return name, h[name], f.read(e - b)
tensors, data = {}, b""
for i, repo in enumerate(["alpha-labs/alpha-base", "vladmandic/human-blazeface"]):
    name, t, raw = first_tensor(f"{src}/{repo}/model.safetensors")
    tensors[f"copy{i}.{name}"] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header = json.dumps(tensors).encode()
header += b" " * (-len(header) % 8)
open(out, "wb").write(struct.pack("<Q", len(header)) + header + data)
PY
for n in 1 2 3; do
  check "survey on $n ranks" mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$T/s$n" --quiet --no-pack
  rm -rf "$T/s$n"
  check "survey with the archive on $n ranks" mpirun_n "$n" "$ZLLM_BIN/zllm-survey" --hub "$hub" --out "$T/s$n" --quiet
  "$z" ls "$T/s$n/archive" >"$T/ls$n"
done
check "the same catalog on 1 and 2 ranks" cmp -s "$T/ls1" "$T/ls2"
check "the same catalog on 1 and 3 ranks" cmp -s "$T/ls1" "$T/ls3"
# hub order: alpha-labs/ < extra/ < vladmandic/, so the alpha tensor's copy is
# the dup and the blazeface tensor becomes a dup of the copy
check "a copied tensor is a dup across shares" grep -q $'^extra/tensor-copy\tmodel.safetensors\t.*\tdup:1 solo:1' "$T/ls3"
check "... and the later original a dup of the copy" grep -q $'^vladmandic/human-blazeface\tmodel.safetensors\t.*\tdup:1' "$T/ls3"
check "the copied config is a file dup across shares" grep -q $'^extra/tensor-copy\tconfig.json\t.*\tdup\t' "$T/ls3"
check "pack files from every share" [ "$(ls "$T/s3/archive/packs" | wc -l)" -ge 3 ]
check "no staging left behind" [ ! -e "$T/s3/archive.stage" ]
check "the merged archive verifies" "$z" verify "$T/s3/archive"
check "restore from the merged archive is exact" bash -c "'$z' restore '$T/s3/archive' --all --out '$T/back' >/dev/null && diff -r '$hub' '$T/back' >/dev/null"

# One family holding every byte: it is split into its models, and a rank
# that packs a fine-tune whose base another rank packs reads the base from
# the hub itself (an extern base).  ZLLM_TEST_DEAL=modulo gives model k to
# rank k mod N, so that surely happens; the catalog (every row but where the
# blobs sit) and the statistics are still one process's.
fam="$T/fam"
"$z" mkhub --out "$fam" --scale tiny --layout family >/dev/null 2>&1
# every catalog row but where the blobs sit (which pack file, which offset)
catalog_rows() {
  sqlite3 "$1/catalog.sqlite" "SELECT id, name, revision, base, base_reason FROM repos ORDER BY id;
    SELECT id, repo, path, size, hex(sha256), hex(key), method, dup_of, stored, note FROM files ORDER BY id;
    SELECT id, file, idx, name, dtype, shape, nelem, len, hex(key), method, layout, dup_of, base, depth, stored, note
      FROM tensors ORDER BY id;
    SELECT file, seq, len FROM pieces ORDER BY file, seq; SELECT tensor, part FROM parts ORDER BY tensor, part"
}
survey_fam() { # survey_fam N OUT [ENV...]
  local n=$1 out=$2; shift 2
  rm -rf "$out"
  env "$@" "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe "$ZLLM_BIN/zllm-survey" \
    --hub "$fam/hub" --out "$out" --quiet 2>"$out.err" && "$z" ls "$out/archive" >"$out.ls" &&
    catalog_rows "$out/archive" >"$out.rows"
}
check "family survey on 1 rank" survey_fam 1 "$T/f1"
for n in 2 3 8 16; do
  check "family survey on $n ranks, models dealt away from their base" survey_fam "$n" "$T/f$n" ZLLM_TEST_DEAL=modulo
  check "... the same catalog as 1 rank" cmp -s "$T/f1.ls" "$T/f$n.ls"
  check "... every row the same but the blobs' places" cmp -s "$T/f1.rows" "$T/f$n.rows"
  check "... the same stats.h5 (outside /ranks)" h5diff --exclude-path /ranks "$T/f1/stats.h5" "$T/f$n/stats.h5"
done
check "fine-tunes stored as BitX against the base" grep -q $'^tuner1/fam-chat\tmodel.safetensors\t.*bitx' "$T/f2.ls"
check "family survey on 2 ranks, first come, first served" survey_fam 2 "$T/fd"
check "... the same catalog" cmp -s "$T/f1.ls" "$T/fd.ls"
check "... every row the same but the blobs' places" cmp -s "$T/f1.rows" "$T/fd.rows"
# the base's bytes read from the hub for every tensor, not kept in memory
check "family survey on 3 ranks without the base cache" survey_fam 3 "$T/fc" ZLLM_TEST_DEAL=modulo ZLLM_BASE_CACHE_MIB=0
check "... the same catalog" cmp -s "$T/f1.ls" "$T/fc.ls"
check "the split family's archive verifies" "$z" verify "$T/f3/archive"
check "restore from it is exact" bash -c "'$z' restore '$T/f3/archive' --all --out '$T/fback' >/dev/null && diff -r '$fam/hub' '$T/fback' >/dev/null"
check "no staging left behind" [ ! -e "$T/f8/archive.stage" ]
# the base's weights unreadable: every rank (the base's packer and those that
# read it as an extern base) skips it, the fine-tunes are stored without it,
# as one process stores them; nobody hangs
check "unreadable base on 1 rank" survey_fam 1 "$T/u1" ZLLM_TEST_UNREADABLE=fam-base/model.safetensors
check "unreadable base on 3 ranks" timeout 120 bash -c "$(declare -f survey_fam catalog_rows); fam='$fam' z='$z' ZLLM_BIN='$ZLLM_BIN' survey_fam 3 '$T/u3' ZLLM_TEST_DEAL=modulo ZLLM_TEST_UNREADABLE=fam-base/model.safetensors"
check "... the same catalog" cmp -s "$T/u1.ls" "$T/u3.ls"
check "... the base's weights skipped" grep -q $'^famlabs/fam-base\tmodel.safetensors\t.*skipped' "$T/u3.ls"
# the base's weights change while a rank reads them as an extern base (after
# its tensors went to the base cache): that rank packs its fine-tunes without
# the base and drops what it cached, so no later row finds those bytes under
# a reused id; the archive is then not one process's, but verifies and restores
check "extern base changed while read, on 3 ranks" survey_fam 3 "$T/x3" ZLLM_TEST_DEAL=modulo \
  ZLLM_TEST_EXTERN_CHANGED=fam-base/model.safetensors
check "... the ranks said so" grep -q "fam-base/model.safetensors: not read as a base here: .*changed while it was read" "$T/x3.err"
check "... the base itself stored by its rank" grep -q $'^famlabs/fam-base\tmodel.safetensors\t.*solo' "$T/x3.ls"
check "... the archive verifies" "$z" verify "$T/x3/archive"
check "... restore is exact" bash -c "'$z' restore '$T/x3/archive' --all --out '$T/xback' >/dev/null && diff -r '$fam/hub' '$T/xback' >/dev/null"
# The merge runs over the ranks (zllm_archive_merge_ranks): hash owners find
# the dups across shares, the packers answer for what rows name, every row
# gets its final id from counts, rank 0 copies the ranks' rows in.  Every
# row, where the blobs sit included, must be the one rank 0's repo-by-repo
# merge writes from the same shares (the modulo deal makes them the same in
# both runs): with cross-share dups (2 and 4 ranks), extern bases, the
# smallest exchange buffers and 2-bit hash keys (3 ranks; unit.merge_ranks_np3
# checks the same rows on a generated hub) (every key a collision, every hit compared by
# its bytes).  A rank that fails its part leaves the shares as they were
# and rank 0 merges them repo by repo.
all_rows() {
  sqlite3 "$1/catalog.sqlite" "SELECT * FROM packs ORDER BY id; SELECT * FROM blobs ORDER BY id;
    SELECT * FROM repos ORDER BY id;
    SELECT id, repo, path, size, hex(sha256), hex(key), method, dup_of, header_blob, stored, note FROM files ORDER BY id;
    SELECT * FROM pieces ORDER BY file, seq;
    SELECT id, file, idx, name, dtype, shape, nelem, len, hex(key), method, layout, dup_of, base, depth, stored, note
      FROM tensors ORDER BY id;
    SELECT * FROM parts ORDER BY tensor, part"
}
survey_on() { # survey_on HUB N OUT [ENV...]
  local h=$1 n=$2 out=$3; shift 3
  rm -rf "$out"
  env ZLLM_TEST_DEAL=modulo "$@" "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe \
    "$ZLLM_BIN/zllm-survey" --hub "$h" --out "$out" 2>"$out.err" >/dev/null && all_rows "$out/archive" >"$out.all"
}
same_merges() { # same_merges LABEL HUB N [ENV...]
  local label=$1 h=$2 n=$3; shift 3
  check "$label on $n ranks, merged repo by repo" survey_on "$h" "$n" "$T/serial" ZLLM_TEST_SERIAL_MERGE=1 "$@"
  check "$label on $n ranks, merged by the ranks" survey_on "$h" "$n" "$T/ranks" "$@"
  check "... the merge ran on the ranks" grep -q "merged on $n ranks" "$T/ranks.err"
  check "... every row the same, blobs' places included" cmp -s "$T/serial.all" "$T/ranks.all"
}
for n in 2 4; do
  same_merges "cross-share dups" "$hub" "$n"
done
check "... dups found across shares by their owners" grep -q "merged on 4 ranks: [1-9][0-9]* files and [1-9][0-9]* tensors" "$T/ranks.err"
same_merges "cross-share dups, smallest buffers" "$hub" 3 ZLLM_TEST_TINY_BUFFERS=1
same_merges "cross-share dups, 2-bit hash keys" "$hub" 3 ZLLM_TEST_HASH_BITS=2
check "... hash hits compared by their bytes" grep -q "([1-9][0-9]* tensor byte comparisons)" "$T/ranks.err"
check "... restore is exact" bash -c "ZLLM_TEST_HASH_BITS=2 '$z' restore '$T/ranks/archive' --all --out '$T/hback' >/dev/null && diff -r '$hub' '$T/hback' >/dev/null"
same_merges "family with extern bases" "$fam/hub" 4
check "a rank failing its part of the merge" survey_on "$hub" 3 "$T/mfail" ZLLM_TEST_MERGE_FAIL=1
check "... says why" grep -q "rank 1's part of the merge fails on purpose" "$T/mfail.err"
check "... rank 0 merges repo by repo" grep -q "rank 0 merges it repo by repo" "$T/mfail.err"
survey_on "$hub" 3 "$T/serial" ZLLM_TEST_SERIAL_MERGE=1
check "... the same rows" cmp -s "$T/serial.all" "$T/mfail.all"
check "... no shard or staging left behind" [ ! -e "$T/mfail/archive.stage" ]
check "... the archive verifies" "$z" verify "$T/mfail/archive"

# a fine-tune truncated on the hub: stored as opaque bytes with the reason, same on 3 ranks
bad="$T/badfam"
cp -r "$fam" "$bad"
truncate -s -100 "$bad/hub/tuner3/fam-math/model.safetensors"
fam_bad() { local n=$1 out=$2; shift 2; fam="$bad" survey_fam "$n" "$out" "$@"; }
check "truncated fine-tune on 1 rank" fam_bad 1 "$T/b1"
check "truncated fine-tune on 3 ranks" fam_bad 3 "$T/b3" ZLLM_TEST_DEAL=modulo
check "... the same catalog" cmp -s "$T/b1.ls" "$T/b3.ls"
check "... the truncated file named in problems.tsv" grep -q "tuner3/fam-math/model.safetensors" "$T/b3/problems.tsv"
# Tensors of several 32 MiB parts, read back from the hub part by part (no
# base cache) and cast: an F32 base of 80 MiB, an F32 fine-tune of it and
# that fine-tune's BF16 cast (whose base is the F32 fine-tune: each BF16 part
# spans two of the base's parts), each model on its own rank.
big="$T/big"
/usr/bin/python3 - "$big" <<'PY'
import json, os, struct, sys
import numpy as np
out, rng = sys.argv[1], np.random.default_rng(7)
def write(repo, tensors, dtype, card=None):
    d = os.path.join(out, repo)
    os.makedirs(d)
    hdr, off = {}, 0
    for name, a, dt in tensors:
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, a, _ in tensors:
            f.write(a.tobytes())
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": dtype}, open(os.path.join(d, "config.json"), "w"))
    if card:
        open(os.path.join(d, "README.md"), "w").write(f"---\nbase_model: {card}\n---\n")
def bf16(a):
    u = a.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
base = rng.standard_normal((5120, 4096), dtype=np.float32) * 0.02
small = rng.standard_normal((64, 64), dtype=np.float32)
ft = base + rng.standard_normal(base.shape, dtype=np.float32) * 1e-4 * (rng.random(base.shape) < 0.1)
write("big-labs/big-base", [("model.embed_tokens.weight", base, "F32"), ("model.norm.weight", small, "F32")], "float32")
write("tuner/big-chat-f32", [("model.embed_tokens.weight", ft, "F32"), ("model.norm.weight", small, "F32")], "float32", "big-labs/big-base")
write("tuner/big-chat-bf16", [("model.embed_tokens.weight", bf16(ft), "BF16"), ("model.norm.weight", bf16(small), "BF16")], "bfloat16", "big-labs/big-base")
PY
fam_big() { local n=$1 out=$2; shift 2; rm -rf "$out"; env "$@" "${MPIEXEC:-mpiexec}" "${MPIEXEC_NUMPROC_FLAG:--n}" "$n" --oversubscribe \
  "$ZLLM_BIN/zllm-survey" --hub "$big" --out "$out" --quiet 2>"$out.err" && "$z" ls "$out/archive" >"$out.ls"; }
check "multi-part tensors on 1 rank" fam_big 1 "$T/g1"
check "multi-part tensors on 3 ranks, no base cache" fam_big 3 "$T/g3" ZLLM_TEST_DEAL=modulo ZLLM_BASE_CACHE_MIB=0
check "... the same catalog" cmp -s "$T/g1.ls" "$T/g3.ls"
check "... the BF16 cast is BitX against the F32 fine-tune" grep -q $'^tuner/big-chat-bf16\tmodel.safetensors\t.*bitx:2\ttuner/big-chat-f32' "$T/g3.ls"
check "... restore is exact" bash -c "'$z' restore '$T/g3/archive' --all --out '$T/gback' >/dev/null && diff -r '$big' '$T/gback' >/dev/null"

finish
