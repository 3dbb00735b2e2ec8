#!/usr/bin/env python3
"""Separation of related and unrelated model pairs by bit distance.

  cluster_separation.py NAME MANIFEST.tsv PAIRS.tsv [NAME MANIFEST PAIRS ...]

PAIRS.tsv comes from `zllm cluster --all-pairs --pairs PAIRS.tsv` (every
same-architecture pair).  A pair is related when MANIFEST puts both repos in
the same family.  Prints one markdown row per hub: pair counts, the largest
distance among related pairs, the smallest among unrelated pairs, the gap, and
the identical-element fractions."""
import csv
import sys


def load(man_path, pairs_path):
    fam = {}
    with open(man_path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            fam[r["repo"]] = r["family"]
    rel, unrel = [], []
    with open(pairs_path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            d, idf = float(r["bit_distance"]), float(r["identical_fraction"])
            (rel if fam.get(r["a"]) == fam.get(r["b"]) else unrel).append((d, idf, r["a"], r["b"]))
    return rel, unrel


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        print(__doc__)
        return 2
    print("| hub | related pairs | max distance, related | unrelated pairs | min distance, unrelated "
          "| min identical, related | max identical, unrelated |")
    print("|---|---|---|---|---|---|---|")
    for i in range(0, len(args), 3):
        rel, unrel = load(args[i + 1], args[i + 2])
        mx = max(rel) if rel else None
        mn = min(unrel) if unrel else None
        print(f"| {args[i]} | {len(rel)} | "
              f"{f'{mx[0]:.3f} ({mx[2]} / {mx[3]})' if mx else '-'} | {len(unrel)} | "
              f"{f'{mn[0]:.3f} ({mn[2]} / {mn[3]})' if mn else '-'} | "
              f"{min(r[1] for r in rel):.3f} | " if rel else "- | ", end="")
        print(f"{max(u[1] for u in unrel):.3f} |" if unrel else "- |")
    return 0


sys.exit(main())
