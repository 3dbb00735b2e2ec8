#!/usr/bin/env python3
"""A hub of many tiny files, for what grows with the number of files:
REPOS repos (100 orgs), each a config.json, a README.md with a card, one
16-element F32 model.safetensors and FILES small text files under data/.

  many_files_hub.py OUT_HUB REPOS FILES

Deterministic (same arguments, same bytes).  Python's standard library."""
import json
import os
import struct
import sys


def main():
    out, repos, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for r in range(repos):
        d = os.path.join(out, "org%03d" % (r % 100), "model-%06d" % r)
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump({"architectures": ["LlamaForCausalLM"], "torch_dtype": "float32"}, f)
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write("---\nlicense: mit\n---\nmodel %d\n" % r)
        head = json.dumps({"w": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}).encode()
        head += b" " * ((8 - len(head) % 8) % 8)
        values = struct.pack("<16f", *[(r * 16 + i) * 0.001 for i in range(16)])
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(head)) + head + values)
        for k in range(per):
            with open(os.path.join(d, "data", "part-%05d.txt" % k), "w") as f:
                f.write("r%d k%d\n" % (r, k))


if __name__ == "__main__":
    main()
