#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth/mkhub_internal.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"

static const char *torch_dtype_name(zllm_dtype dt)
{
  return dt == ZLLM_DT_BF16 ? "bfloat16" : dt == ZLLM_DT_F16 ? "float16" : "float32";
}

static int write_repo_file(const mk_ctx *c, const char *repo, const char *file, const zllm_buf *b)
{
  char *dir = mk_repo_path(c, repo, NULL), *path = mk_repo_path(c, repo, file);
  int rc = dir && path ? zllm_mkdir_p(dir, 0755) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0)
    rc = zllm_write_file_atomic(path, b->data ? b->data : "", b->len);
  free(dir);
  free(path);
  return rc;
}

static int mk_config_json(zllm_buf *b, const mk_arch *a, zllm_dtype dt)
{
  return zllm_buf_printf(b,
                         "{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n"
                         "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"model_type\": \"llama\",\n"
                         "  \"num_attention_heads\": 4,\n  \"num_hidden_layers\": %d,\n"
                         "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\",\n  \"vocab_size\": %d\n}\n",
                         a->hidden, a->inter, a->layers, a->tied ? "true" : "false", torch_dtype_name(dt),
                         a->vocab);
}

/* A stand-in tokenizer: the same bytes for every repo of an architecture,
 * as real families share their tokenizer files (a file-dedup case). */
static int tokenizer_json(zllm_buf *b, const mk_arch *a)
{
  int rc = zllm_buf_puts(b, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0");
  for (int i = 1; rc == 0 && i < a->vocab; i++)
    rc = zllm_buf_printf(b, ",\"tok%d\":%d", i, i);
  return rc ? rc : zllm_buf_puts(b, "}},\"version\":\"1.0\"}\n");
}

static int card_md(zllm_buf *b, const mk_ctx *c, const mk_model *m)
{
  int rc = zllm_buf_puts(b, "---\n");
  if (rc == 0 && m->card_base)
    rc = zllm_buf_printf(b, "base_model: %s\n", m->card_base);
  rc = rc ? rc : zllm_buf_puts(b, "license: cc0-1.0\nlibrary_name: transformers\ntags:\n- synthetic\n- zllm-mkhub\n---\n\n");
  rc = rc ? rc : zllm_buf_printf(b, "# %s\n\nSynthetic model made by `zllm mkhub --seed %llu --scale %s`: %s.\n",
                                 m->repo, (unsigned long long)c->opts.seed, c->opts.scale, m->relation);
  return rc;
}

/* Opaque weights: bytes zllm must store and restore without understanding. */
static int opaque_bin(zllm_buf *b, const mk_ctx *c, const mk_model *m)
{
  zllm_rng r;
  size_t n = (size_t)c->arch[0].hidden * (size_t)c->arch[0].vocab * 2;
  int rc = zllm_buf_reserve(b, n);
  zllm_rng_seed(&r, c->opts.seed, m->repo, "pytorch_model.bin", 3);
  for (size_t i = 0; rc == 0 && i < n; i += 8) {
    uint64_t x = zllm_rng_next(&r);
    /* a small alphabet so it compresses a little, like pickled weights */
    for (size_t k = 0; k < 8 && i + k < n; k++)
      b->data[i + k] = (char)((x >> (8 * k)) & 0x3f);
  }
  if (rc == 0)
    b->len = n;
  return rc;
}

static int write_one(mk_ctx *c, const mk_model *m, const char *file, int kind)
{
  zllm_buf b = ZLLM_BUF_INIT;
  const mk_arch *a = &c->arch[m->arch];
  int rc = kind == 0   ? mk_config_json(&b, a, m->dtype)
           : kind == 1 ? tokenizer_json(&b, a)
           : kind == 2 ? card_md(&b, c, m)
                       : opaque_bin(&b, c, m);
  if (rc == 0)
    rc = write_repo_file(c, m->repo, file, &b);
  zllm_buf_free(&b);
  return rc;
}

int mk_write_small_files(mk_ctx *c)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->nmodels; i++) {
    const mk_model *m = c->models[i].spec;
    if (m->kind == MK_COPY)
      continue; /* copied byte for byte later */
    rc = write_one(c, m, "config.json", 0);
    rc = rc ? rc : write_one(c, m, "README.md", 2);
    if (rc == 0 && m->kind != MK_OPAQUE)
      rc = write_one(c, m, "tokenizer.json", 1);
    if (rc == 0 && m->kind == MK_OPAQUE)
      rc = write_one(c, m, "pytorch_model.bin", 3);
  }
  return rc;
}
