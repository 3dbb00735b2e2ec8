"""ZipNN itself (the `zipnn` package from PyPI), on a hub snapshot, the way
its documentation compresses a Hugging Face model, every round trip checked
byte for byte:
  - plain: each .safetensors file tensor by tensor, as its
    scripts/zipnn_compress_safetensors.py does: every floating-point tensor
    compressed by ZipNN(input_format bytes, bytearray_dtype = the tensor's
    dtype, method "HUFFMAN"), kept raw when that is not smaller, the
    header and other tensors raw; other files raw (ZipNN compresses the
    weight files);
  - delta: the same, except that a fine-tune's file whose base (MANIFEST's
    delta_base) has a file of the same path and size is compressed whole
    against it, as scripts/zipnn_compress_file_delta.py does
    (delta_compressed_type, bytearray_dtype "float32", "HUFFMAN").
One thread (threads=1): the seconds are compress and decompress calls only,
so MB/s are per thread.  ZipNN's compress rewrites the buffer it is given
(a bytes object too): each call gets a copy, and the round trip is compared
with the bytes read from disk.
Usage: zipnn_real.py HUB MANIFEST.tsv   prints one line per mode:
  MODE stored_bytes original_bytes compress_seconds decompress_seconds files_delta
"""
import json
import os
import struct
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import zipnn  # noqa: E402

DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


class Tally:
    def __init__(self):
        self.stored = self.original = self.delta_files = 0
        self.comp = self.decomp = 0.0

    def line(self, mode):
        return f"{mode} {self.stored} {self.original} {self.comp:.3f} {self.decomp:.3f} {self.delta_files}"


def round_trip(t, data, name, make, **kw):
    """ZipNN's compress and decompress of data; returns the compressed size."""
    work = bytearray(data)
    z = make()
    t0 = time.perf_counter()
    c = z.compress(work, **kw)
    t1 = time.perf_counter()
    d = make().decompress(c, **kw)
    t2 = time.perf_counter()
    if bytes(d) != data:
        sys.exit(f"zipnn_real: {name}: ZipNN's round trip differs from the original")
    t.comp += t1 - t0
    t.decomp += t2 - t1
    return len(c)


def per_tensor(t, path, data):
    """Stored bytes of a safetensors file, tensor by tensor."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    stored = 8 + n
    for name, v in header.items():
        a, b = v["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        dt = DTYPES.get(v["dtype"])
        if dt is None or not raw:
            stored += len(raw)
            continue
        size = round_trip(t, raw, f"{path}: {name}",
                          lambda: zipnn.ZipNN(input_format="byte", bytearray_dtype=dt, method="HUFFMAN", threads=1))
        stored += min(size, len(raw))
    return stored


def main():
    hub, manifest = sys.argv[1], sys.argv[2]
    bases = {}
    with open(manifest) as f:
        cols = f.readline().rstrip("\n").split("\t")
        for line in f:
            row = dict(zip(cols, line.rstrip("\n").split("\t")))
            if row.get("delta_base", "-") not in ("-", ""):
                bases[row["repo"]] = row["delta_base"]
    plain, delta = Tally(), Tally()
    for root, _, names in sorted(os.walk(hub)):
        for fname in sorted(names):
            path = os.path.join(root, fname)
            rel = os.path.relpath(path, hub)
            repo, inner = "/".join(rel.split("/")[:2]), "/".join(rel.split("/")[2:])
            with open(path, "rb") as f:
                data = f.read()
            for t in (plain, delta):
                t.original += len(data)
            if not fname.endswith(".safetensors"):
                plain.stored += len(data)
                delta.stored += len(data)
                continue
            one = Tally()
            try:
                stored = per_tensor(one, rel, data)
            except (ValueError, KeyError, struct.error):
                stored = len(data)  # not a safetensors file ZipNN's script could read: kept as it is
            plain.stored += stored
            plain.comp += one.comp
            plain.decomp += one.decomp
            base = os.path.join(hub, bases.get(repo, "\0"), inner)
            if repo in bases and os.path.isfile(base) and os.path.getsize(base) == len(data):
                with open(base, "rb") as f:
                    other = f.read()
                size = round_trip(delta, data, rel, lambda: zipnn.ZipNN(
                    bytearray_dtype="float32", delta_compressed_type="byte", method="HUFFMAN", threads=1),
                    delta_second_data=other)
                delta.stored += min(size, len(data))
                delta.delta_files += 1
            else:
                delta.stored += stored
                delta.comp += one.comp
                delta.decomp += one.decomp
    print(plain.line("zipnn-pkg"))
    print(delta.line("zipnn-pkg-delta"))


if __name__ == "__main__":
    main()
