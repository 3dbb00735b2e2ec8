"""A small model repo whose tokenizer the Hugging Face libraries load:
tokenizer.json trained by the tokenizers library, tokenizer_config.json,
a Llama config.json and F16 weights (safetensors.numpy), deterministic.
Usage: make_tok_repo.py DIR"""
import json
import pathlib
import sys

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
text = ["the cat sat on the mat", "a dog ran in the park", "models share their bases"] * 20
tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"],
                                                  show_progress=False))
tok.save(str(out / "tokenizer.json"))
(out / "tokenizer_config.json").write_text(json.dumps(
    {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"},
    indent=2) + "\n")
(out / "config.json").write_text(json.dumps(
    {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16, "intermediate_size": 32,
     "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": tok.get_vocab_size()}, indent=2) + "\n")
rng = np.random.default_rng(7)
v = tok.get_vocab_size()
save_file({"model.embed_tokens.weight": (rng.standard_normal((v, 16)) * 0.02).astype(np.float16),
           "model.norm.weight": np.ones(16, dtype=np.float16)}, str(out / "model.safetensors"))
