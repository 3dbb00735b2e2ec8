#!/usr/bin/env bash
# stats.h5 of a survey of the sample hub: h5ls lists every documented dataset,
# every dataset has description and units, h5py reads it, the per-model delta
# sparsity equals MANIFEST's measured identical fraction wherever the chosen
# base is MANIFEST's delta base, the per-tensor histograms add up, and the
# reduction stages equal the archive's (zllm ls --stages) and the hash-level
# ones summary.json's.  Usage: survey_stats.sh OUTDIR [MANIFEST.tsv [created]]
# ("created": the survey crawled, so every model has a createdAt)
source "$(dirname "$0")/lib.sh"
out=$1
manifest=${2:-$ZLLM_SRC/data/sample-hub/MANIFEST.tsv}
h5="$out/stats.h5"
check "stats.h5 written" [ -s "$h5" ]
h5ls -r "$h5" >"$T/ls"
for d in /models/signature /models/shape_signature /models/bytes_by_dtype /models/file_duplicate_of \
         /models/repo /models/family /models/base /models/declared_base /models/decision /models/bit_distance \
         /models/bytes /models/weight_bytes /models/tensors /models/parameters /models/identical_fraction \
         /models/stored_bytes /models/ingest_order /models/created_at \
         /tensors/model /tensors/name /tensors/dtype /tensors/shape /tensors/bytes /tensors/xxh3_128 \
         /tensors/method /tensors/stored_bytes \
         /tensors/duplicate_of /tensors/has_base /deltas/identical_fraction /deltas/elements /deltas/bit_flips \
         /deltas/exponent_change /deltas/log2_relative_change /exponents/model /exponents/dtype \
         /exponents/elements /exponents/elements_xor /exponents/histogram /exponents/histogram_xor \
         /exponents/byte_entropy /exponents/byte_entropy_xor /reduction/stage /reduction/bytes /reduction/hash_level_bytes \
         /duplication/scope /duplication/tensors /duplication/bytes /overhead/granularity /overhead/entries \
         /overhead/bytes_per_entry /overhead/bytes /pairs/a /pairs/b /pairs/bit_distance /pairs/identical_fraction \
         /baselines/method /baselines/stored_bytes /baselines/reduction /baselines/seconds /baselines/throughput \
         /ranks/phase /ranks/seconds /ranks/bytes_read /ranks/peak_rss; do
  check "h5ls lists $d" grep -q "^$d  *Dataset" "$T/ls"
  grep -q "^$d " "$ZLLM_SRC/docs/STATS.md" || grep -q "\`$d\`" "$ZLLM_SRC/docs/STATS.md" || bad "docs/STATS.md does not document $d"
done
rc=0
check "zllm ls --stages" bash -c "'$ZLLM_BIN/zllm' ls '$out/archive' --stages >'$T/stages'"
/usr/bin/python3 - "$h5" "$manifest" "$out/summary.json" "$T/stages" "${3:-}" >"$T/py.out" 2>&1 <<'PY' || rc=$?
import csv, json, math, sys
import h5py, numpy as np
h5, man, summary, stages = sys.argv[1:5]
want_created = len(sys.argv) > 5 and sys.argv[5] == "created"
bad = 0
def fail(msg):
    global bad
    print("FAIL:", msg); bad += 1
f = h5py.File(h5, "r")
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        for a in ("description", "units"):
            if a not in obj.attrs or not obj.attrs[a]:
                fail(f"{name} has no {a}")
f.visititems(visit)
repos = [r.decode() for r in f["/models/repo"][:]]
base = [b.decode() for b in f["/models/base"][:]]
ident = f["/models/identical_fraction"][:]
truth = {}
rows = list(csv.DictReader(open(man), delimiter="\t"))
measured = rows and "identical_fraction" in rows[0]
for r in rows:
    if measured and r["identical_fraction"] not in ("-", "") and r["delta_base"] != "-":
        truth[r["repo"]] = (r["delta_base"], float(r["identical_fraction"]))
checked = 0
for i, repo in enumerate(repos):
    if repo in truth and truth[repo][0] == base[i]:
        checked += 1
        if abs(ident[i] - truth[repo][1]) > 1e-5:
            fail(f"{repo}: identical fraction {ident[i]} != MANIFEST {truth[repo][1]}")
if measured and checked < 5:
    fail(f"only {checked} models compared with MANIFEST")
hb = f["/tensors/has_base"][:] == 1
el = f["/deltas/elements"][:]
idf = f["/deltas/identical_fraction"][:]
changed = np.rint(el * (1 - np.nan_to_num(idf))).astype(np.int64)
if not np.array_equal(f["/deltas/exponent_change"][:].sum(axis=1)[hb], changed[hb]):
    fail("exponent_change rows do not add up to the changed elements")
if np.any(f["/deltas/elements"][:][~hb] != 0) or not np.all(np.isnan(idf[~hb])):
    fail("rows without a base are not empty")
s = json.load(open(summary))["results"]["reduction"]
want = [s["original_bytes"], s["after_file_dedup"], s["after_tensor_dedup"]]
if list(f["/reduction/hash_level_bytes"][:]) != want:
    fail(f"hash-level reduction {list(f['/reduction/hash_level_bytes'][:])} != summary.json {want}")
ls = [int(l.split("\t")[1]) for l in open(stages).read().splitlines()[1:]]
if list(f["/reduction/bytes"][:]) != ls:
    fail(f"reduction {list(f['/reduction/bytes'][:])} != zllm ls --stages {ls}")
m = [x.decode() for x in f["/baselines/method"][:]]
if m:
    st = dict(zip(m, f["/baselines/stored_bytes"][:].tolist()))
    if sorted(m) != sorted(["file dedup", "tensor dedup", "FastCDC", "zstd", "zipnn", "zipllm", "zllm"]):
        fail(f"baselines {m}")
    elif st["zllm"] != ls[3] or st["file dedup"] != want[1] or not st["zllm"] < st["zipllm"] < st["zstd"]:
        fail(f"baselines disagree with the archive or each other: {st}")
    print("baselines:", st)
meth = [x.decode() for x in f["/tensors/method"][:]]
tstored = int(f["/tensors/stored_bytes"][:].sum())
if not ("bitx" in meth and "solo" in meth) or tstored > ls[3] or tstored < ls[3] // 2:
    fail(f"per-tensor methods/stored disagree with the archive: {set(meth)}, {tstored} of {ls[3]}")
for mth, hb_ in zip(meth, hb):
    if mth == "bitx" and not hb_:
        fail("a BitX tensor without a base in /tensors/has_base"); break
mst = f["/models/stored_bytes"][:]
order = f["/models/ingest_order"][:]
if int(mst.sum()) != ls[3]:
    fail(f"/models/stored_bytes sums to {int(mst.sum())}, the archive stores {ls[3]}")
if sorted(order.tolist()) != list(range(len(repos))):
    fail(f"/models/ingest_order is not a permutation: {order.tolist()}")
for i, b in enumerate(base):
    if b != "-" and b in repos and order[repos.index(b)] > order[i]:
        fail(f"{repos[i]} ingested before its base {b}")
created = f["/models/created_at"][:]
if want_created and not np.all(created > 0):
    fail(f"crawled survey without createdAt: {created.tolist()}")
if not want_created and not np.all(created == -1):
    fail(f"a local snapshot without crawl metadata has createdAt: {created.tolist()}")
print("reduction by stage:", dict(zip([x.decode() for x in f["/reduction/stage"][:]], f["/reduction/bytes"][:].tolist())))
dup = f["/tensors/duplicate_of"][:]
if sum(dup >= 0) != f["/duplication/tensors"][2]:
    fail("duplicate_of disagrees with /duplication hub count")
fdup = dict(zip(repos, [x.decode() for x in f["/models/file_duplicate_of"][:]]))
for r in rows:
    if r["relation"].startswith("copy (whole repo") and fdup.get(r["repo"]) != r["delta_base"] and fdup.get(r["delta_base"]) != r["repo"]:
        fail(f"{r['repo']}: file_duplicate_of {fdup.get(r['repo'])}, MANIFEST says a copy of {r['delta_base']}")
sig = dict(zip(repos, [x.decode() for x in f["/models/shape_signature"][:]]))
fam = dict(zip(repos, [x.decode() for x in f["/models/family"][:]]))
for a in repos:
    for b in repos:
        if fam[a] == fam[b] and fam[a] != "-" and sig[a] != sig[b]:
            fail(f"{a} and {b} share a family but not a shape signature")
# each rank's row of seconds and reads per phase; the pass reads the whole hub once between them
run = json.load(open(summary))["run"]
phases = [x.decode() for x in f["/ranks/phase"][:]]
sec, rd = f["/ranks/seconds"][:], f["/ranks/bytes_read"][:]
if sec.shape != (run["ranks"], len(phases)) or rd.shape != sec.shape:
    fail(f"/ranks: {sec.shape} rows for {run['ranks']} ranks and {len(phases)} phases")
elif "pass" not in phases or (sec < 0).any():
    fail(f"/ranks/phase {phases} or negative seconds")
elif rd[:, phases.index("pass")].sum() + rd[:, phases.index("scan")].sum() < f["/models/bytes"][:].sum():
    fail(f"/ranks: the pass and the scan read {rd[:, [phases.index('pass'), phases.index('scan')]].sum()} bytes,"
         f" less than the hub's {f['/models/bytes'][:].sum()}")
# each rank's peak memory: a running maximum, set at every phase that ran
rss = f["/ranks/peak_rss"][:]
ran = [phases.index(p) for p in ("walk", "cluster", "report", "stats")]
if rss.shape != sec.shape or (rss[:, ran] < (1 << 20)).any() or (rss[:, ran] > (64 << 30)).any():
    fail(f"/ranks/peak_rss: {rss.shape}, {rss[:, ran]} for walk, cluster, report, stats")
elif any((row[ran][1:] < row[ran][:-1]).any() for row in rss):
    fail(f"/ranks/peak_rss falls between phases: {rss[:, ran]}")
print(f"{len(repos)} models, {len(hb)} tensors ({hb.sum()} with a base), {checked} sparsities equal MANIFEST's")
sys.exit(1 if bad else 0)
PY
cat "$T/py.out"
check "h5py reads stats.h5 and its values hold" [ "$rc" -eq 0 ]
finish
