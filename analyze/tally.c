/* The characterization tallies (zllm/tally.h).  Each kernel is written once
 * and inlined with the dtype as a constant, so the per-element code has no
 * dtype switch.  Histograms are counted in local 32-bit tables and added to
 * the caller's 64-bit ones per block: the hot loop's stores stay in L1 and
 * never alias the results; the plain tables are split into lanes so that
 * runs of equal values (exponents are few) do not serialise on one counter. */
#include <math.h>
#include <string.h>

#include "zllm/tally.h"

#define BLOCK ((size_t)1 << 24) /* elements per flush: a 32-bit counter never overflows */
#define CAST_CHUNK 4096         /* base elements cast to the tensor's dtype at a time */

int zllm_tally_dtype(zllm_dtype d)
{
  return zllm_dtype_is_float3(d);
}

static inline unsigned exponent_of(uint32_t v, zllm_dtype d)
{
  return d == ZLLM_DT_BF16 ? (v >> 7) & 0xff : d == ZLLM_DT_F16 ? (v >> 10) & 0x1f : (v >> 23) & 0xff;
}

/* A little-endian element of 2 or 4 bytes. */
static inline uint32_t load_bits(const uint8_t *p, size_t es)
{
  return es == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8
                 : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- plain ------------------------------------------------------------------- */

/* 16-bit elements: even and odd elements count into two tables each, so a
 * run of equal values (exponents are few) alternates between two counters
 * instead of waiting on one.  F32's four bytes spread wider: one table. */
static inline __attribute__((always_inline)) void plain_wide(zllm_tally_plain *t, const uint8_t *p, size_t n,
                                                             zllm_dtype d)
{
  for (size_t i = 0; i < n; i++, p += 4) {
    t->hist[exponent_of(load_bits(p, 4), d)]++;
    t->planes[0][p[0]]++;
    t->planes[1][p[1]]++;
    t->planes[2][p[2]]++;
    t->planes[3][p[3]]++;
  }
  t->n += n;
}

static inline __attribute__((always_inline)) void plain_block(zllm_tally_plain *t, const uint8_t *p, size_t n,
                                                              zllm_dtype d, size_t es)
{
  uint32_t h[2][256], pl[2][4][256];
  memset(h, 0, sizeof h);
  memset(pl, 0, sizeof pl);
  size_t i = 0;
  for (; i + 2 <= n; i += 2, p += 2 * es) {
    h[0][exponent_of(load_bits(p, es), d)]++;
    h[1][exponent_of(load_bits(p + es, es), d)]++;
    for (size_t b = 0; b < es; b++) {
      pl[0][b][p[b]]++;
      pl[1][b][p[es + b]]++;
    }
  }
  if (i < n) {
    h[0][exponent_of(load_bits(p, es), d)]++;
    for (size_t b = 0; b < es; b++)
      pl[0][b][p[b]]++;
  }
  for (unsigned v = 0; v < 256; v++) {
    t->hist[v] += (uint64_t)h[0][v] + h[1][v];
    for (size_t b = 0; b < es; b++)
      t->planes[b][v] += (uint64_t)pl[0][b][v] + pl[1][b][v];
  }
  t->n += n;
}

void zllm_tally_plain_add(zllm_tally_plain *t, const uint8_t *p, size_t n, zllm_dtype d)
{
  size_t es = zllm_dtype_get(d)->size;
  for (size_t at = 0; at < n; at += BLOCK) {
    size_t m = n - at < BLOCK ? n - at : BLOCK;
    const uint8_t *q = p + at * es;
    if (d == ZLLM_DT_BF16)
      plain_block(t, q, m, ZLLM_DT_BF16, 2);
    else if (d == ZLLM_DT_F16)
      plain_block(t, q, m, ZLLM_DT_F16, 2);
    else if (d == ZLLM_DT_F32)
      plain_wide(t, q, m, ZLLM_DT_F32);
  }
}

/* ---- delta ------------------------------------------------------------------- */

typedef struct {
  uint32_t exp_change[ZLLM_TALLY_EXP_BINS], rel_change[ZLLM_TALLY_REL_BINS];
  uint32_t xor_planes[4][256], xor_hist[256];
} delta_local;

/* floor(log2(q)) for a finite q > 0 from its exponent field (frexpf's answer
 * for normal q; subnormal -127 and infinite +128 land past the ends and are
 * clipped). */
static inline int log2_floor(float q)
{
  uint32_t b;
  memcpy(&b, &q, sizeof b);
  return (int)((b >> 23) & 0xff) - 127;
}

/* One element of a block that holds a change: its XOR histograms (zero or
 * not: no branch), then the changes of an element that did change. */
static inline __attribute__((always_inline)) void block_element(delta_local *l, uint64_t *same, uint32_t ft,
                                                                uint32_t bv, zllm_dtype d, size_t es)
{
  uint32_t x = ft ^ bv;
  for (size_t b = 0; b < es; b++)
    l->xor_planes[b][(x >> (8 * b)) & 0xff]++;
  l->xor_hist[exponent_of(x, d)]++;
  *same += x == 0;
  if (!x)
    return;
  int dexp = (int)exponent_of(ft, d) - (int)exponent_of(bv, d);
  l->exp_change[(dexp < -8 ? -8 : dexp > 8 ? 8 : dexp) + 8]++;
  float f = zllm_dtype_load_float(d, (const uint8_t *)&ft), g = zllm_dtype_load_float(d, (const uint8_t *)&bv);
  if (g != 0 && isfinite(f) && isfinite(g)) {
    int bin = log2_floor(fabsf(f - g) / fabsf(g));
    int top = ZLLM_TALLY_REL_MIN + ZLLM_TALLY_REL_BINS - 1;
    l->rel_change[(bin < ZLLM_TALLY_REL_MIN ? ZLLM_TALLY_REL_MIN : bin > top ? top : bin) - ZLLM_TALLY_REL_MIN]++;
  }
}

static inline uint64_t load64(const uint8_t *p)
{
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Same dtype on both sides: 32 bytes at a time are XORed as four words; a
 * block without a change costs that compare alone. */
static inline __attribute__((always_inline)) void delta_block(zllm_tally_delta *t, const uint8_t *ft,
                                                              const uint8_t *base, size_t n, zllm_dtype d, size_t es)
{
  const size_t per = 32 / es;
  size_t i = 0;
  delta_local acc, *l = &acc; /* a local: its stores alias nothing of the caller's */
  uint64_t bulk = 0, same = 0;  /* elements of unchanged blocks; unchanged ones of the others */
  memset(l, 0, sizeof *l);
  for (; i + per <= n; i += per) {
    const uint8_t *a = ft + i * es, *b = base + i * es;
    uint64_t any = (load64(a) ^ load64(b)) | (load64(a + 8) ^ load64(b + 8)) | (load64(a + 16) ^ load64(b + 16)) |
                   (load64(a + 24) ^ load64(b + 24));
    if (!any) {
      bulk += per;
      continue;
    }
    for (size_t k = 0; k < per; k++)
      block_element(l, &same, load_bits(a + k * es, es), load_bits(b + k * es, es), d, es);
  }
  for (; i < n; i++)
    block_element(l, &same, load_bits(ft + i * es, es), load_bits(base + i * es, es), d, es);
  /* an unchanged block's XOR is 0 in every byte and exponent field */
  t->elements += n;
  t->same += bulk + same;
  for (size_t b = 0; b < es; b++) {
    t->xor_planes[b][0] += bulk;
    for (unsigned v = 0; v < 256; v++)
      t->xor_planes[b][v] += l->xor_planes[b][v];
  }
  t->xor_hist[0] += bulk;
  for (unsigned v = 0; v < 256; v++)
    t->xor_hist[v] += l->xor_hist[v];
  for (int k = 0; k < ZLLM_TALLY_EXP_BINS; k++)
    t->exp_change[k] += l->exp_change[k];
  for (int k = 0; k < ZLLM_TALLY_REL_BINS; k++)
    t->rel_change[k] += l->rel_change[k];
}

static void delta_same(zllm_tally_delta *t, const uint8_t *ft, const uint8_t *base, size_t n, zllm_dtype d)
{
  if (d == ZLLM_DT_BF16)
    delta_block(t, ft, base, n, ZLLM_DT_BF16, 2);
  else if (d == ZLLM_DT_F16)
    delta_block(t, ft, base, n, ZLLM_DT_F16, 2);
  else if (d == ZLLM_DT_F32)
    delta_block(t, ft, base, n, ZLLM_DT_F32, 4);
}

void zllm_tally_delta_add(zllm_tally_delta *t, const uint8_t *ft, const uint8_t *base, size_t n, zllm_dtype d,
                          zllm_dtype bd)
{
  size_t es = zllm_dtype_get(d)->size, bes = zllm_dtype_get(bd)->size;
  if (!zllm_tally_dtype(d) || !zllm_tally_dtype(bd))
    return;
  if (d == bd) {
    for (size_t at = 0; at < n; at += BLOCK)
      delta_same(t, ft + at * es, base + at * es, n - at < BLOCK ? n - at : BLOCK, d);
    return;
  }
  /* a cast: the base's elements as the training code's cast would give them */
  uint8_t cast[CAST_CHUNK * 4];
  for (size_t at = 0; at < n; at += CAST_CHUNK) {
    size_t m = n - at < CAST_CHUNK ? n - at : CAST_CHUNK;
    for (size_t i = 0; i < m; i++)
      zllm_dtype_store_float(d, cast + i * es, zllm_dtype_load_float(bd, base + (at + i) * bes));
    delta_same(t, ft + at * es, cast, m, d);
  }
}

void zllm_tally_flips(const zllm_tally_delta *t, size_t es, uint64_t flips[32])
{
  for (size_t k = 0; k < es && k < 4; k++)
    for (unsigned v = 1; v < 256; v++)
      for (unsigned b = 0; b < 8; b++)
        flips[8 * k + b] += (v >> b) & 1 ? t->xor_planes[k][v] : 0;
}
