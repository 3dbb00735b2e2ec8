/* The characterization tallies (zllm/tally.h).  Each kernel is written once
 * and inlined with the dtype as a constant, so the per-element code has no
 * dtype switch.  Histograms are counted in local 32-bit tables and added to
 * the caller's 64-bit ones per block: the hot loop's stores stay in L1 and
 * never alias the results; the plain tables are split into lanes so that
 * runs of equal values (exponents are few) do not serialise on one counter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/le.h"
#include "zllm/tally.h"

#define BLOCK ((size_t)1 << 24) /* elements per flush: a 32-bit counter never overflows */
#define CAST_CHUNK 4096         /* base elements cast to the tensor's dtype at a time */
#define WIDE_MIN ((size_t)1 << 16) /* 16-bit elements per call worth a 65,536-entry table */
#define LANES 4 /* copies of a hot table: runs of one value do not wait on one counter */
#define ZERO_SLOTS 8

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
  return es == 2 ? zllm_le16(p) : zllm_le32(p);
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

/* A table of all 65,536 16-bit values in two lanes (even and odd
 * elements), and ZERO_SLOTS counters for the value 0 (the XOR of an
 * unchanged element: runs of it would otherwise wait on one counter); one
 * per thread, allocated once and left zeroed by the fold, so a call costs
 * no clearing of 512 KiB.  NULL without memory. */
static uint32_t *values_table(void)
{
  static __thread uint32_t *table;
  if (!table)
    table = calloc(2 * 65536 + ZERO_SLOTS, sizeof *table);
  return table;
}

/* Adds the table into byte and exponent histograms and zeroes it. */
static void values_fold(uint32_t *h, uint64_t lo[256], uint64_t hi[256], uint64_t ex[256], zllm_dtype d)
{
  for (uint32_t v = 0; v < 65536; v++) {
    uint64_t c = (uint64_t)h[v] + h[65536 + v];
    if (!c)
      continue;
    h[v] = h[65536 + v] = 0;
    lo[v & 0xff] += c;
    hi[v >> 8] += c;
    ex[exponent_of(v, d)] += c;
  }
}

/* Many 16-bit elements: every statistic is a function of the element's 16
 * bits, so one increment per element into the values table replaces three,
 * folded into the byte and exponent histograms once per call.  Returns 0
 * when the table cannot be had (the caller counts the slow way). */
static int plain_wide16(zllm_tally_plain *t, const uint8_t *p, size_t n, zllm_dtype d)
{
  uint32_t *h = values_table();
  if (!h)
    return 0;
  size_t i = 0;
  for (; i + 2 <= n; i += 2, p += 4) {
    h[zllm_le16(p)]++;
    h[65536 + zllm_le16(p + 2)]++;
  }
  if (i < n)
    h[zllm_le16(p)]++;
  values_fold(h, t->planes[0], t->planes[1], t->hist, d);
  t->n += n;
  return 1;
}

void zllm_tally_plain_add(zllm_tally_plain *t, const uint8_t *p, size_t n, zllm_dtype d)
{
  size_t es = zllm_dtype_get(d)->size;
  for (size_t at = 0; at < n; at += BLOCK) {
    size_t m = n - at < BLOCK ? n - at : BLOCK;
    const uint8_t *q = p + at * es;
    if (es == 2 && m >= WIDE_MIN && plain_wide16(t, q, m, d))
      continue;
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

/* The changes of an element (nothing for an unchanged one), the general
 * way: every element of the small-call path, and those the 16-bit bins
 * leave to it (F16 subnormals). */
static inline __attribute__((always_inline)) void changed_slow(delta_local *l, uint32_t ft, uint32_t bv, zllm_dtype d)
{
  if (ft == bv)
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
  changed_slow(l, ft, bv, d);
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

/* Many 16-bit elements, in chunks, in two loops each.  The first computes
 * every element's bins with no branch (the compiler vectorises it), the
 * same float operations the general way does (f - g, |.| / |g| in single
 * precision: the same bits): the XOR, the relative-change bin, the
 * exponent-change bin, or "unchanged", "not counted" (base zero or not
 * finite) and, for F16 only, "the general way" (an F16 subnormal, whose
 * widening is not a bit shift; BF16 widens by a shift, subnormals too).
 * The second loop counts the bins and the XOR's bytes and exponent field
 * into small tables (L1), each in LANES copies, with addresses that come
 * straight from a load, so the counting does not stall on its own stores. */
#define CHUNK 4096
#define REL_SAME ZLLM_TALLY_REL_BINS       /* unchanged */
#define REL_NONE (ZLLM_TALLY_REL_BINS + 1) /* changed, base zero or not finite */
#define REL_SLOW (ZLLM_TALLY_REL_BINS + 2) /* the general way */
#define EXP_NONE ZLLM_TALLY_EXP_BINS       /* unchanged, or the general way */
#define REL_SLOTS (ZLLM_TALLY_REL_BINS + 3)
#define EXP_SLOTS (ZLLM_TALLY_EXP_BINS + 1)
#define PAIR_LANES 8 /* a few (rel, exp) pairs take most elements: more copies, fewer waits */

/* A 16-bit float's bits widened to F32 (exact; F16 subnormals are left to
 * the general way). */
static inline __attribute__((always_inline)) uint32_t widen16(uint32_t v, zllm_dtype d)
{
  if (d == ZLLM_DT_BF16)
    return v << 16;
  uint32_t e = (v >> 10) & 0x1f, m = v & 0x3ff, sign = (v & 0x8000) << 16;
  uint32_t normal = sign | (e + 112) << 23 | m << 13, zero = sign;
  uint32_t is_zero = 0u - (uint32_t)(e == 0);
  return (zero & is_zero) | (normal & ~is_zero);
}

static inline __attribute__((always_inline)) void bins16(const uint8_t *ft, const uint8_t *base, size_t n,
                                                         zllm_dtype d, uint16_t *restrict xs, uint16_t *restrict bins)
{
  const unsigned mbits = d == ZLLM_DT_BF16 ? 7 : 10, emax = d == ZLLM_DT_BF16 ? 0xff : 0x1f;
  const uint32_t mmask = (1u << mbits) - 1;
  const int32_t top = ZLLM_TALLY_REL_MIN + ZLLM_TALLY_REL_BINS - 1;
  for (size_t i = 0; i < n; i++) {
    uint32_t f = zllm_le16(ft + 2 * i), g = zllm_le16(base + 2 * i), x = f ^ g;
    uint32_t fe = (f >> mbits) & emax, ge = (g >> mbits) & emax;
    uint32_t fb = widen16(f, d), gb = widen16(g, d);
    float ff, gg;
    memcpy(&ff, &fb, 4);
    memcpy(&gg, &gb, 4);
    float q = fabsf(ff - gg) / fabsf(gg);
    uint32_t qb;
    memcpy(&qb, &q, 4);
    int32_t rb = (int32_t)((qb >> 23) & 0xff) - 127;
    rb = rb < ZLLM_TALLY_REL_MIN ? ZLLM_TALLY_REL_MIN : rb > top ? top : rb;
    int32_t db = (int32_t)fe - (int32_t)ge;
    db = db < -8 ? -8 : db > 8 ? 8 : db;
    /* selections as masks (all ones or zero): no branch in the loop */
    uint32_t same = 0u - (uint32_t)(x == 0);
    uint32_t counted = 0u - ((uint32_t)((g & 0x7fff) != 0) & (uint32_t)(fe != emax) & (uint32_t)(ge != emax));
    uint32_t slow = d == ZLLM_DT_F16
                        ? 0u - ((uint32_t)(fe == 0 && (f & mmask) != 0) | (uint32_t)(ge == 0 && (g & mmask) != 0))
                        : 0;
    uint32_t r = ((uint32_t)(rb - ZLLM_TALLY_REL_MIN) & counted) | (REL_NONE & ~counted);
    r = (r & ~slow) | (REL_SLOW & slow);
    r = (r & ~same) | (REL_SAME & same);
    uint32_t e = ((uint32_t)(db + 8) & ~(same | slow)) | (EXP_NONE & (same | slow));
    xs[i] = (uint16_t)x;
    bins[i] = (uint16_t)(r * EXP_SLOTS + e);
  }
}

/* The bins loop per dtype, built twice: for the baseline x86-64 and, where
 * the CPU has it, AVX2 (twice the lanes; the same IEEE operations, so the
 * same bins).  Chosen once at run time. */
typedef void bins_fn(const uint8_t *, const uint8_t *, size_t, uint16_t *restrict, uint16_t *restrict);

static void bins_bf16(const uint8_t *f, const uint8_t *g, size_t n, uint16_t *restrict xs, uint16_t *restrict b)
{
  bins16(f, g, n, ZLLM_DT_BF16, xs, b);
}

static void bins_f16(const uint8_t *f, const uint8_t *g, size_t n, uint16_t *restrict xs, uint16_t *restrict b)
{
  bins16(f, g, n, ZLLM_DT_F16, xs, b);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void bins_bf16_avx2(const uint8_t *f, const uint8_t *g, size_t n,
                                                           uint16_t *restrict xs, uint16_t *restrict b)
{
  bins16(f, g, n, ZLLM_DT_BF16, xs, b);
}

__attribute__((target("avx2"))) static void bins_f16_avx2(const uint8_t *f, const uint8_t *g, size_t n,
                                                          uint16_t *restrict xs, uint16_t *restrict b)
{
  bins16(f, g, n, ZLLM_DT_F16, xs, b);
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) static void
bins_bf16_avx512(const uint8_t *f, const uint8_t *g, size_t n, uint16_t *restrict xs, uint16_t *restrict b)
{
  bins16(f, g, n, ZLLM_DT_BF16, xs, b);
}

__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) static void
bins_f16_avx512(const uint8_t *f, const uint8_t *g, size_t n, uint16_t *restrict xs, uint16_t *restrict b)
{
  bins16(f, g, n, ZLLM_DT_F16, xs, b);
}
#endif

static bins_fn *bins_for(zllm_dtype d)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return d == ZLLM_DT_BF16 ? bins_bf16_avx512 : bins_f16_avx512;
  if (__builtin_cpu_supports("avx2"))
    return d == ZLLM_DT_BF16 ? bins_bf16_avx2 : bins_f16_avx2;
#endif
  return d == ZLLM_DT_BF16 ? bins_bf16 : bins_f16;
}

static inline __attribute__((always_inline)) void delta_wide16(zllm_tally_delta *t, const uint8_t *ft,
                                                                const uint8_t *base, size_t n, zllm_dtype d)
{
  /* Three counts per element, in small tables (L1): the XOR's low byte;
   * its bits 7 and up (the high byte and, for BF16, the exponent field both
   * follow from them); and the pair (relative-change bin, exponent-change
   * bin).  A fine-tune's XORs spread over many of the 65,536 values, so one
   * table of them all would miss the cache. */
  uint32_t pair[PAIR_LANES][REL_SLOTS * EXP_SLOTS];
  uint32_t *xh = values_table();
  uint16_t xs[CHUNK], bins[CHUNK];
  if (!xh) {
    delta_block(t, ft, base, n, d, 2);
    return;
  }
  delta_local acc, *l = &acc;
  bins_fn *bins_of = bins_for(d);
  memset(pair, 0, sizeof pair);
  memset(l, 0, sizeof *l);
  for (size_t at = 0; at < n; at += CHUNK) {
    size_t m = n - at < CHUNK ? n - at : CHUNK, i = 0;
    const uint8_t *f = ft + 2 * at, *g = base + 2 * at;
    if (memcmp(f, g, 2 * m) == 0) { /* a chunk left alone (frozen, or a dup of the base): its XOR is all 0 */
      xh[0] += (uint32_t)m;
      pair[0][REL_SAME * EXP_SLOTS + EXP_NONE] += (uint32_t)m;
      continue;
    }
    bins_of(f, g, m, xs, bins);
    for (; i + PAIR_LANES <= m; i += PAIR_LANES)
      for (int k = 0; k < PAIR_LANES; k++) {
        uint32_t x = xs[i + k], zero = 0u - (uint32_t)(x == 0);
        xh[x | (zero & (2 * 65536 + (uint32_t)k))]++; /* 0 counts in slot k */
        pair[k][bins[i + k]]++;
      }
    for (; i < m; i++) {
      xh[xs[i]]++;
      pair[0][bins[i]]++;
    }
    uint32_t slow = 0;
    for (int k = 0; k < PAIR_LANES; k++)
      slow += pair[k][REL_SLOW * EXP_SLOTS + EXP_NONE];
    for (i = 0; slow && i < m; i++)
      if (bins[i] == REL_SLOW * EXP_SLOTS + EXP_NONE)
        changed_slow(l, (uint32_t)f[2 * i] | (uint32_t)f[2 * i + 1] << 8,
                     (uint32_t)g[2 * i] | (uint32_t)g[2 * i + 1] << 8, d);
    for (int k = 0; k < PAIR_LANES; k++)
      pair[k][REL_SLOW * EXP_SLOTS + EXP_NONE] = 0;
  }
  /* 32-bit counts: a call covers at most BLOCK elements */
  t->elements += n;
  for (int k = 0; k < ZERO_SLOTS; k++) {
    xh[0] += xh[2 * 65536 + k];
    xh[2 * 65536 + k] = 0;
  }
  values_fold(xh, t->xor_planes[0], t->xor_planes[1], t->xor_hist, d);
  for (int k = 0; k < PAIR_LANES; k++) {
    for (unsigned r = 0; r < REL_SLOTS; r++)
      for (unsigned e = 0; e < EXP_SLOTS; e++) {
        uint32_t c = pair[k][r * EXP_SLOTS + e];
        if (r < ZLLM_TALLY_REL_BINS)
          t->rel_change[r] += c;
        if (e < ZLLM_TALLY_EXP_BINS)
          t->exp_change[e] += c;
        if (r == REL_SAME)
          t->same += c;
      }
  }
  for (int k = 0; k < ZLLM_TALLY_EXP_BINS; k++)
    t->exp_change[k] += l->exp_change[k];
  for (int k = 0; k < ZLLM_TALLY_REL_BINS; k++)
    t->rel_change[k] += l->rel_change[k];
}

static void delta_same(zllm_tally_delta *t, const uint8_t *ft, const uint8_t *base, size_t n, zllm_dtype d)
{
  if (d == ZLLM_DT_BF16 && n < WIDE_MIN)
    delta_block(t, ft, base, n, ZLLM_DT_BF16, 2);
  else if (d == ZLLM_DT_F16 && n < WIDE_MIN)
    delta_block(t, ft, base, n, ZLLM_DT_F16, 2);
  else if (d == ZLLM_DT_BF16)
    delta_wide16(t, ft, base, n, ZLLM_DT_BF16);
  else if (d == ZLLM_DT_F16)
    delta_wide16(t, ft, base, n, ZLLM_DT_F16);
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
