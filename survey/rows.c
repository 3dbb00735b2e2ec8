/* The statistics rows' helpers (survey/rows.h): shared by the one pass
 * (pass.c) and the statistics phase (stats.c), below both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "survey/rows.h"
#include "zllm/dtype.h"
#include "zllm/error.h"
#include "zllm/safetensors.h"
#include "zllm/tally.h"

const zllm_dtype sv_exp_dtypes[SV_NDT] = {ZLLM_DT_BF16, ZLLM_DT_F16, ZLLM_DT_F32};

/* The base's share of a tensor's delta tallies: per tensor (flips, changes)
 * and per model and dtype (the XOR's streams). */
void sv_settle_delta(sv_trow *r, sv_erow *e, const zllm_tally_delta *d, size_t es)
{
  r->elements = d->elements;
  r->identical = (double)d->same; /* a count until tensor_stats divides it */
  for (int k = 0; k < SV_EXP_BINS; k++)
    r->exp_change[k] = d->exp_change[k];
  for (int k = 0; k < SV_REL_BINS; k++)
    r->rel_change[k] = d->rel_change[k];
  zllm_tally_flips(d, es, r->flips);
  for (size_t k = 0; k < 4; k++)
    for (unsigned v = 0; v < 256; v++)
      e->planes_xor[k][v] += d->xor_planes[k][v];
  for (unsigned v = 0; v < 256; v++)
    e->hist_xor[v] += d->xor_hist[v];
  e->n_xor += d->elements;
}

void sv_describe_tensor(sv_trow *r, const zllm_st_tensor *t, int64_t model)
{
  r->model = model;
  snprintf(r->name, sizeof r->name, "%s", t->name);
  snprintf(r->dtype, sizeof r->dtype, "%s", zllm_dtype_get(t->dtype)->name);
  zllm_st_shape_str(r->shape, sizeof r->shape, t);
  r->bytes = t->end - t->begin;
  r->identical = 0; /* a count until tensor_stats divides it */
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The architecture signatures: names, shapes and dtypes, and names and
 * shapes alone, each tensor hashed, the hashes sorted (shard order does not
 * matter), then hashed together. */
void sv_tensor_sig(const zllm_st_tensor *x, uint64_t *full, uint64_t *shape_only)
{
  char shape[512], buf[1024];
  zllm_st_shape_str(shape, sizeof shape, x);
  int len = snprintf(buf, sizeof buf, "%s\t%s", x->name, shape);
  *shape_only = XXH3_64bits(buf, (size_t)(len < (int)sizeof buf ? len : (int)sizeof buf - 1));
  len = snprintf(buf, sizeof buf, "%s\t%s\t%s", x->name, shape, zllm_dtype_get(x->dtype)->name);
  *full = XXH3_64bits(buf, (size_t)(len < (int)sizeof buf ? len : (int)sizeof buf - 1));
}

void sv_finish_sig(sv_mrow *m, uint64_t *a, uint64_t *b, size_t n)
{
  if (n) { /* a repo without tensors has no arrays at all */
    qsort(a, n, 8, cmp_u64);
    qsort(b, n, 8, cmp_u64);
  }
  snprintf(m->sig, sizeof m->sig, "%016llx", n ? (unsigned long long)XXH3_64bits(a, n * 8) : 0ULL);
  snprintf(m->shape_sig, sizeof m->shape_sig, "%016llx", n ? (unsigned long long)XXH3_64bits(b, n * 8) : 0ULL);
}

int sv_exp_slot(zllm_dtype d)
{
  for (int k = 0; k < SV_NDT; k++)
    if (sv_exp_dtypes[k] == d)
      return k;
  return -1;
}

int sv_sparse_put(zllm_buf *b, const void *data, size_t bytes)
{
  size_t n = bytes / 8, map = (n + 7) / 8;
  int rc = zllm_buf_reserve(b, map + bytes);
  if (rc < 0)
    return rc;
  uint8_t *bits = (uint8_t *)b->data + b->len;
  memset(bits, 0, map);
  b->len += map;
  for (size_t i = 0; i < n; i++) {
    uint64_t w;
    memcpy(&w, (const char *)data + i * 8, 8);
    if (!w)
      continue;
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
    memcpy(b->data + b->len, &w, 8);
    b->len += 8;
  }
  return 0;
}

int sv_sparse_get(zllm_reader *r, void *data, size_t bytes)
{
  size_t n = bytes / 8, map = (n + 7) / 8;
  if (r->left < map)
    return zllm_error_set(ZLLM_EFORMAT, "a spilled record cut short");
  const uint8_t *bits = (const uint8_t *)r->p;
  r->p += map;
  r->left -= map;
  memset(data, 0, bytes);
  for (size_t i = 0; i < n; i++) {
    if (!(bits[i / 8] >> (i % 8) & 1))
      continue;
    if (r->left < 8)
      return zllm_error_set(ZLLM_EFORMAT, "a spilled record cut short");
    memcpy((char *)data + i * 8, r->p, 8);
    r->p += 8;
    r->left -= 8;
  }
  return 0;
}
