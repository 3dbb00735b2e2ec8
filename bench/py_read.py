"""The zllm Python package's read path, timed (bench/bench_python.sh runs it):
  py_read.py whole ARCHIVE FILES THREADS   every file of FILES ("size repo path
      original" lines) read whole with open().read(), each from a fresh
      archive object (nothing decoded before): total seconds; every file's
      bytes must be proven by its SHA-256 (verified) and equal their original's
      length
  py_read.py check ARCHIVE FILES           the same, compared byte for byte
  py_read.py tensor ARCHIVE REPO PATH ORIGINAL   one tensor of about 4 MiB
      (the nearest, a BitX one when there is one) by safe_open().get_tensor()
      from a fresh archive object, checked against the original's bytes:
      "name bytes method seconds_of_get_tensor seconds_from_open_archive_to_close"
  py_read.py read ARCHIVE REPO PATH   one file's open().read(), from a fresh
      archive object: "seconds_of_read seconds_from_open_archive_to_close"
"""
import hashlib
import json
import sqlite3
import struct
import sys
import time

import zllm


def files(listing):
    with open(listing) as f:
        for line in f:
            size, repo, path, orig = line.split()
            yield int(size), repo, path, orig


def read_one(archive, repo, path, threads=None):
    """One file read whole from a fresh archive object, proven by its SHA-256:
    (its bytes, seconds of read(), seconds from open_archive to close)."""
    t0 = time.perf_counter()
    with zllm.open_archive(archive, threads=threads) as ar, ar.open(repo, path) as f:
        t1 = time.perf_counter()
        data = f.read()
        t2 = time.perf_counter()
        if not f.verified:
            sys.exit(f"py_read: {repo}/{path}: not verified ({len(data)} bytes read)")
    return data, t2 - t1, time.perf_counter() - t0


def whole(archive, listing, threads, compare=False):
    total = 0.0
    for size, repo, path, orig in files(listing):
        data, _, seconds = read_one(archive, repo, path, threads)
        total += seconds
        if len(data) != size:
            sys.exit(f"py_read: {repo}/{path}: {len(data)} of {size} bytes")
        if compare and data != open(orig, "rb").read():
            sys.exit(f"py_read: {repo}/{path} differs from {orig}")
    return total


def tensor(archive, repo, path, orig):
    with open(orig, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    db = sqlite3.connect(f"file:{archive}/catalog.sqlite?mode=ro", uri=True)
    methods = dict(db.execute("SELECT t.name, t.method FROM tensors t JOIN files f ON t.file = f.id JOIN repos r"
                              " ON f.repo = r.id WHERE r.name = ? AND f.path = ?", (repo, path)))
    size = lambda v: v["data_offsets"][1] - v["data_offsets"][0]
    name = min(header, key=lambda k: (methods.get(k) != "bitx", abs(size(header[k]) - (4 << 20))))
    t0 = time.perf_counter()
    with zllm.open_archive(archive) as ar, ar.safe_open(repo, path) as f:
        t1 = time.perf_counter()
        t = f.get_tensor(name)
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    a, b = header[name]["data_offsets"]
    with open(orig, "rb") as f:
        f.seek(8 + n + a)
        if t.tobytes() != f.read(b - a):
            sys.exit(f"py_read: {repo}/{path}: tensor {name} differs from the original")
    print(name, b - a, methods.get(name, "?"), f"{t2 - t1:.4f}", f"{t3 - t0:.4f}")


def read(archive, repo, path):
    data, read_s, total_s = read_one(archive, repo, path)
    print(f"{read_s:.4f} {total_s:.4f} {len(data)}")


def main():
    what = sys.argv[1]
    if what == "whole":
        print(f"{whole(sys.argv[2], sys.argv[3], int(sys.argv[4])):.3f}")
    elif what == "check":
        whole(sys.argv[2], sys.argv[3], None, compare=True)
    elif what == "tensor":
        tensor(*sys.argv[2:6])
    elif what == "read":
        read(*sys.argv[2:5])


if __name__ == "__main__":
    main()
