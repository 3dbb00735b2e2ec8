#!/usr/bin/env python3
"""Checks zllm cluster's families.tsv against a hub's MANIFEST.tsv.

  cluster_check.py families MANIFEST.tsv FAMILIES.tsv
      every model lands in its true family (the partitions are equal);
  cluster_check.py bytes MANIFEST.tsv LS_CLUSTER.tsv LS_TRUTH.tsv
      per model, the bytes pack stored with the chosen bases are no larger
      than with MANIFEST's delta_base; byte-identical copies (relation copy or
      reshard) are compared as one group, since which copy is stored first is
      arbitrary and the other costs nothing.
Prints one line per disagreement and exits 1 if there is any."""
import csv
import sys


def manifest(path):
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows.setdefault(r["repo"], r)
    return rows


def check_families(man, fam_path):
    ours = {}
    with open(fam_path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            ours[r["repo"]] = r["family"] if r["family"] != "-" else "-" + r["repo"]
    bad = 0
    repos = sorted(man)
    missing = [r for r in repos if r not in ours]
    for r in missing:
        print(f"{r}: not in families.tsv")
    bad += len(missing)
    for i, a in enumerate(repos):
        for b in repos[i + 1:]:
            if a in ours and b in ours:
                truth = man[a]["family"] == man[b]["family"]
                found = ours[a] == ours[b]
                if truth != found:
                    print(f"{a} / {b}: {'same' if truth else 'different'} family in MANIFEST, "
                          f"{'same' if found else 'different'} in families.tsv")
                    bad += 1
    print(f"families: {len(ours)} models, {len(set(ours.values()))} families found, "
          f"{len(set(r['family'] for r in man.values()))} true, {bad} disagreements")
    return bad


def stored(path):
    per = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["repo"] != "total":
                per[r["repo"]] = per.get(r["repo"], 0) + int(r["stored"])
    return per


def copy_groups(man):
    parent = {r: r for r in man}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, row in man.items():
        rel, base = row["relation"], row["delta_base"]
        if (rel.startswith("copy") or rel.startswith("reshard")) and base in parent:
            parent[find(r)] = find(base)
    groups = {}
    for r in man:
        groups.setdefault(find(r), []).append(r)
    return groups.values()


def check_bytes(man, ours_path, truth_path):
    ours, truth = stored(ours_path), stored(truth_path)
    bad = 0
    for g in sorted(copy_groups(man)):
        a = sum(ours.get(r, 0) for r in g)
        b = sum(truth.get(r, 0) for r in g)
        flag = "LARGER" if a > b else ""
        print(f"{'+'.join(sorted(g))}\t{a}\t{b}\t{flag}")
        bad += a > b
    print(f"bytes: chosen bases {sum(ours.values())}, delta_base {sum(truth.values())}, {bad} groups larger")
    return bad


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    man = manifest(sys.argv[2])
    if sys.argv[1] == "families":
        return 1 if check_families(man, sys.argv[3]) else 0
    if sys.argv[1] == "bytes" and len(sys.argv) == 5:
        return 1 if check_bytes(man, sys.argv[3], sys.argv[4]) else 0
    print(__doc__)
    return 2


sys.exit(main())
