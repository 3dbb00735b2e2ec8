"""A base and its fine-tune with tensors larger than the slice store's 4 MiB
slices (BF16 and F32), whose fine-tune differs from the base in few bits, so
`zllm pack --families` stores it as BitX against the base:
    make_big_pair.py HUB   writes HUB/bigco/big-base and HUB/bigco/big-chat"""
import json
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file


def tensors(rng: np.random.Generator) -> dict:
    bf16 = ml_dtypes.bfloat16
    return {
        # 5 MiB + 2 columns: crosses a slice end at an odd element
        "model.embed_tokens.weight": (rng.standard_normal((1280, 2049)) * 0.02).astype(bf16),
        "model.layers.0.mlp.up_proj.weight": (rng.standard_normal((1536, 1024)) * 0.02).astype(np.float32),
        "model.layers.0.input_layernorm.weight": np.ones(1024, dtype=bf16),
        "model.norm.weight": np.float32(1.0) + np.zeros(3, dtype=np.float32),
        "lm_head.scale": np.array(0.5, dtype=np.float32),  # a scalar
    }


def fine_tune(base: dict, rng: np.random.Generator) -> dict:
    out = {}
    for name, t in base.items():
        f = t.astype(np.float32)
        if f.ndim == 2:
            f = f + rng.standard_normal(f.shape).astype(np.float32) * 1e-4 * (np.abs(f) + 1e-3)
        out[name] = f.astype(t.dtype)
    return out


def write_repo(d: Path, ts: dict, meta: dict) -> None:
    d.mkdir(parents=True, exist_ok=True)
    save_file(ts, str(d / "model.safetensors"), metadata=meta)
    (d / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                               "hidden_size": 1024, "torch_dtype": "bfloat16"}))


def main() -> None:
    hub = Path(sys.argv[1])
    rng = np.random.default_rng(29)
    base = tensors(rng)
    write_repo(hub / "bigco" / "big-base", base, {"format": "pt"})
    write_repo(hub / "bigco" / "big-chat", fine_tune(base, rng), {"format": "pt", "note": "fine-tuned"})


if __name__ == "__main__":
    main()
