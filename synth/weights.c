#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synth/mkhub_internal.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/path.h"

#define SALT_INIT 1
#define SALT_TUNE 2

char *mk_repo_path(const mk_ctx *c, const char *repo, const char *file)
{
  char *dir = zllm_path_join(c->hub, repo);
  char *p = dir && file ? zllm_path_join(dir, file) : dir;
  if (p != dir)
    free(dir);
  return p;
}

static int materialized(const mk_model *m)
{
  return m->kind == MK_BASE || m->kind == MK_FINETUNE || m->kind == MK_UPCAST;
}

int mk_header_json(zllm_buf *b, const mk_tensor *const *t, size_t n, zllm_dtype dt)
{
  uint64_t off = 0, esz = zllm_dtype_get(dt)->size;
  int rc = zllm_buf_puts(b, "{\"__metadata__\":{\"format\":\"pt\"}");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint64_t bytes = t[i]->nelem * esz;
    rc = zllm_buf_printf(b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu", t[i]->name, zllm_dtype_get(dt)->name,
                         (unsigned long long)t[i]->shape[0]);
    if (rc == 0 && t[i]->ndim == 2)
      rc = zllm_buf_printf(b, ",%llu", (unsigned long long)t[i]->shape[1]);
    rc = rc ? rc : zllm_buf_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                   (unsigned long long)(off + bytes));
    off += bytes;
  }
  rc = rc ? rc : zllm_buf_puts(b, "}");
  while (rc == 0 && (8 + b->len) % 8)
    rc = zllm_buf_puts(b, " ");
  return rc;
}

int mk_write_header(int fd, const zllm_buf *hdr, const char *name)
{
  uint8_t len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (uint8_t)((uint64_t)hdr->len >> (8 * i));
  if (pwrite(fd, len8, 8, 0) != 8 || pwrite(fd, hdr->data, hdr->len, 8) != (ssize_t)hdr->len)
    return zllm_error_set_errno("%s: write failed", name);
  return 0;
}

static int open_model(mk_ctx *c, mk_state *s)
{
  const mk_arch *a = &c->arch[s->spec->arch];
  const mk_tensor *ptrs[MK_MAX_TENSORS];
  zllm_buf hdr = ZLLM_BUF_INIT;
  char *dir = mk_repo_path(c, s->spec->repo, NULL), *path = mk_repo_path(c, s->spec->repo, "model.safetensors");
  int rc = dir && path ? zllm_mkdir_p(dir, 0755) : ZLLM_ENOMEM;
  for (size_t i = 0; i < a->n; i++)
    ptrs[i] = &a->t[i];
  if (rc == 0 && (rc = mk_header_json(&hdr, ptrs, a->n, s->spec->dtype)) == 0) {
    if ((s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
      rc = zllm_error_set_errno("%s: cannot create", path);
    else
      rc = mk_write_header(s->fd, &hdr, path);
    s->data_start = 8 + hdr.len;
    s->cursor = 0;
  }
  zllm_buf_free(&hdr);
  free(dir);
  free(path);
  return rc;
}

static void gen_base(const mk_ctx *c, mk_state *s, const mk_tensor *t)
{
  zllm_rng r;
  float mean = t->is_norm ? 1.0f : 0.0f, std = t->is_norm ? 0.05f : 0.02f;
  zllm_rng_seed(&r, c->opts.seed, s->spec->repo, t->name, SALT_INIT);
  for (uint64_t i = 0; i < t->nelem; i++)
    s->master[i] = mean + std * zllm_rng_normal(&r);
}

static int is_frozen(const mk_model *m, const mk_tensor *t)
{
  return m->frozen && (strstr(t->name, "embed_tokens") || strstr(t->name, "layers.0."));
}

static void gen_finetune(const mk_ctx *c, mk_state *s, const mk_state *parent, const mk_tensor *t)
{
  zllm_rng r;
  float step = (float)s->spec->scale * (t->is_norm ? 0.05f : 0.02f);
  double p = s->spec->changed;
  uint64_t threshold = p >= 1.0 ? UINT64_MAX : (uint64_t)(p * 18446744073709551616.0);
  memcpy(s->master, parent->master, t->nelem * sizeof *s->master);
  if (is_frozen(s->spec, t))
    return;
  zllm_rng_seed(&r, c->opts.seed, s->spec->repo, t->name, SALT_TUNE);
  for (uint64_t i = 0; i < t->nelem; i++)
    if (zllm_rng_next(&r) < threshold)
      s->master[i] += step * zllm_rng_normal(&r);
}

static float decode(zllm_dtype dt, const uint8_t *p)
{
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8;
  if (dt == ZLLM_DT_BF16)
    return zllm_bf16_to_f32((uint16_t)u);
  if (dt == ZLLM_DT_F16)
    return zllm_f16_to_f32((uint16_t)u);
  u |= (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static void encode(mk_state *s, uint64_t n)
{
  zllm_dtype dt = s->spec->dtype;
  for (uint64_t i = 0; i < n; i++) {
    uint32_t u;
    if (dt == ZLLM_DT_F32) {
      memcpy(&u, &s->master[i], 4);
      for (int k = 0; k < 4; k++)
        s->enc[4 * i + (uint64_t)k] = (uint8_t)(u >> (8 * k));
      continue;
    }
    u = dt == ZLLM_DT_BF16 ? zllm_f32_to_bf16(s->master[i]) : zllm_f32_to_f16(s->master[i]);
    s->enc[2 * i] = (uint8_t)u;
    s->enc[2 * i + 1] = (uint8_t)(u >> 8);
  }
}

/* Ground truth: elements whose stored value equals the parent's, bit for
 * bit when the dtypes match, value for value across dtypes (an upcast). */
static void count_identical(mk_state *s, const mk_state *parent, uint64_t n)
{
  zllm_dtype a = s->spec->dtype, b = parent->spec->dtype;
  size_t ea = zllm_dtype_get(a)->size, eb = zllm_dtype_get(b)->size;
  for (uint64_t i = 0; i < n; i++) {
    int same = a == b ? memcmp(s->enc + i * ea, parent->enc + i * ea, ea) == 0
                      : decode(a, s->enc + i * ea) == decode(b, parent->enc + i * eb);
    s->identical += (uint64_t)same;
  }
  s->elements += n;
}

static int emit_tensor(mk_ctx *c, mk_state *s, const mk_tensor *t)
{
  mk_state *parent = s->spec->parent >= 0 ? &c->models[s->spec->parent] : NULL;
  if (s->spec->kind == MK_BASE)
    gen_base(c, s, t);
  else if (s->spec->kind == MK_FINETUNE)
    gen_finetune(c, s, parent, t);
  else
    for (uint64_t i = 0; i < t->nelem; i++) /* exact upcast of what the parent stored */
      s->master[i] = decode(parent->spec->dtype, parent->enc + i * zllm_dtype_get(parent->spec->dtype)->size);
  encode(s, t->nelem);
  if (parent)
    count_identical(s, parent, t->nelem);
  size_t bytes = t->nelem * zllm_dtype_get(s->spec->dtype)->size;
  if (pwrite(s->fd, s->enc, bytes, (off_t)(s->data_start + s->cursor)) != (ssize_t)bytes)
    return zllm_error_set_errno("%s/model.safetensors: write failed", s->spec->repo);
  s->cursor += bytes;
  return 0;
}

static int alloc_buffers(mk_ctx *c, mk_state *s)
{
  const mk_arch *a = &c->arch[s->spec->arch];
  uint64_t max = 1;
  for (size_t i = 0; i < a->n; i++)
    max = a->t[i].nelem > max ? a->t[i].nelem : max;
  s->master = malloc(max * sizeof *s->master);
  s->enc = malloc(max * 4);
  if (!s->master || !s->enc)
    return zllm_error_set(ZLLM_ENOMEM, "mkhub: out of memory for %llu-element tensors", (unsigned long long)max);
  return 0;
}

int mk_write_weights(mk_ctx *c)
{
  int rc = 0;
  for (size_t m = 0; rc == 0 && m < c->nmodels; m++)
    if (materialized(c->models[m].spec) && (rc = open_model(c, &c->models[m])) == 0)
      rc = alloc_buffers(c, &c->models[m]);
  /* one tensor name at a time, for every model of that architecture; the
   * table lists parents before children, so parents are ready first */
  for (int arch = 0; rc == 0 && arch < 2; arch++)
    for (size_t i = 0; rc == 0 && i < c->arch[arch].n; i++)
      for (size_t m = 0; rc == 0 && m < c->nmodels; m++)
        if (materialized(c->models[m].spec) && c->models[m].spec->arch == arch)
          rc = emit_tensor(c, &c->models[m], &c->arch[arch].t[i]);
  for (size_t m = 0; m < c->nmodels; m++) {
    if (c->models[m].fd >= 0 && close(c->models[m].fd) < 0 && rc == 0)
      rc = zllm_error_set_errno("%s/model.safetensors: close failed", c->models[m].spec->repo);
    c->models[m].fd = -1;
  }
  return rc;
}
