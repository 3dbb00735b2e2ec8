/* analyze/: FastCDC (chunk bounds, determinism, dedup of copies, shift
 * resistance) and the characterization tallies against a plain per-element
 * reference (every dtype pair, special values, any cut into parts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <math.h>

#include <cmocka.h>

#include "zllm/analyze.h"
#include "zllm/tally.h"

static uint8_t *random_bytes(size_t n, uint64_t seed)
{
  uint8_t *p = malloc(n);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = (uint8_t)(seed >> 56);
  }
  return p;
}

static void test_bounds(void **state)
{
  (void)state;
  size_t n = 8u << 20, at = 0, chunks = 0;
  uint8_t *p = random_bytes(n, 1);
  while (at < n) {
    size_t len = zllm_cdc_cut(p + at, n - at);
    assert_true(len >= 1 && len <= (256u << 10));
    if (at + len < n)
      assert_true(len >= (16u << 10)); /* only the last chunk may be short */
    at += len;
    chunks++;
  }
  /* normalized chunking centres the sizes near the 64 KiB average */
  assert_in_range(n / chunks, 40u << 10, 100u << 10);
  assert_int_equal(zllm_cdc_cut(p, 1000), 1000);
  free(p);
}

static char *write_tmp(const uint8_t *p, size_t n)
{
  char *path = strdup("/tmp/zllm-cdc-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  close(fd);
  return path;
}

static void test_dedup_and_shift(void **state)
{
  (void)state;
  size_t n = 4u << 20;
  uint8_t *a = random_bytes(n, 7), *b = malloc(n + 1);
  b[0] = 0x5a; /* the same bytes one position later */
  memcpy(b + 1, a, n);
  char *pa = write_tmp(a, n), *pa2 = write_tmp(a, n), *pb = write_tmp(b, n + 1);
  const char *two_copies[] = {pa, pa2}, *shifted[] = {pa, pb};
  zllm_cdc_stats s1, s2, s3;
  assert_int_equal(zllm_cdc_dedup_files(two_copies, 1, &s1), 0);
  assert_int_equal(zllm_cdc_dedup_files(two_copies, 2, &s2), 0);
  assert_int_equal(s1.bytes, n);
  assert_int_equal(s2.bytes, 2 * n);
  assert_int_equal(s2.unique_bytes, s1.unique_bytes); /* a copy adds nothing */
  assert_int_equal(s2.chunks, 2 * s1.chunks);         /* deterministic boundaries */
  assert_int_equal(zllm_cdc_dedup_files(shifted, 2, &s3), 0);
  /* content-defined: after an insertion the boundaries resynchronize, so only
   * the first chunk or two of the shifted copy are new */
  assert_true(s3.unique_bytes - s1.unique_bytes < (600u << 10));
  unlink(pa);
  unlink(pa2);
  unlink(pb);
  free(pa);
  free(pa2);
  free(pb);
  free(a);
  free(b);
}

/* ---- tallies: the reference is the definition, one element at a time ---- */

static unsigned ref_exponent(uint32_t v, zllm_dtype d)
{
  return d == ZLLM_DT_BF16 ? (v >> 7) & 0xff : d == ZLLM_DT_F16 ? (v >> 10) & 0x1f : (v >> 23) & 0xff;
}

static uint32_t ref_bits(const uint8_t *p, size_t es)
{
  uint32_t v = 0;
  for (size_t b = 0; b < es; b++)
    v |= (uint32_t)p[b] << (8 * b);
  return v;
}

static void ref_plain(zllm_tally_plain *t, const uint8_t *p, size_t n, zllm_dtype d)
{
  size_t es = zllm_dtype_get(d)->size;
  for (size_t i = 0; i < n; i++) {
    t->hist[ref_exponent(ref_bits(p + i * es, es), d)]++;
    for (size_t b = 0; b < es; b++)
      t->planes[b][p[i * es + b]]++;
  }
  t->n += n;
}

static void ref_delta(zllm_tally_delta *t, const uint8_t *ft, const uint8_t *base, size_t n, zllm_dtype d,
                      zllm_dtype bd)
{
  size_t es = zllm_dtype_get(d)->size, bes = zllm_dtype_get(bd)->size;
  for (size_t i = 0; i < n; i++) {
    uint8_t cast[4];
    zllm_dtype_store_float(d, cast, zllm_dtype_load_float(bd, base + i * bes));
    uint32_t f = ref_bits(ft + i * es, es), g = ref_bits(d == bd ? base + i * es : cast, es), x = f ^ g;
    t->elements++;
    t->same += x == 0;
    for (size_t b = 0; b < es; b++)
      t->xor_planes[b][(x >> (8 * b)) & 0xff]++;
    t->xor_hist[ref_exponent(x, d)]++;
    if (!x)
      continue;
    int dexp = (int)ref_exponent(f, d) - (int)ref_exponent(g, d);
    t->exp_change[(dexp < -8 ? -8 : dexp > 8 ? 8 : dexp) + 8]++;
    float ff = zllm_dtype_load_float(d, (const uint8_t *)&f), gg = zllm_dtype_load_float(d, (const uint8_t *)&g);
    if (gg != 0 && isfinite(ff) && isfinite(gg)) {
      int e;
      frexpf(fabsf(ff - gg) / fabsf(gg), &e); /* q = m 2^e, m in [0.5, 1): floor(log2 q) = e - 1 */
      int bin = fabsf(ff - gg) / fabsf(gg) == 0 ? -1000 : isinf(fabsf(ff - gg) / fabsf(gg)) ? 1000 : e - 1;
      if (fabsf(ff - gg) / fabsf(gg) < 1.17549435e-38f && fabsf(ff - gg) / fabsf(gg) > 0)
        bin = -127; /* a subnormal quotient: its exponent field says -127 */
      int top = ZLLM_TALLY_REL_MIN + ZLLM_TALLY_REL_BINS - 1;
      t->rel_change[(bin < ZLLM_TALLY_REL_MIN ? ZLLM_TALLY_REL_MIN : bin > top ? top : bin) - ZLLM_TALLY_REL_MIN]++;
    }
  }
}

/* Weight-like values, a share changed in low bits, some in sign or
 * exponent, and special values: zeros, infinities, NaNs, subnormals. */
static void tally_inputs(uint8_t *ft, uint8_t *base, size_t n, zllm_dtype d, zllm_dtype bd, uint64_t seed)
{
  size_t es = zllm_dtype_get(d)->size, bes = zllm_dtype_get(bd)->size;
  static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, 65504.0f, 3e38f};
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t r = (uint32_t)(seed >> 33);
    float g = ((float)(r & 0xffff) / 65536.0f - 0.5f) * 0.1f;
    if (r % 97 == 0)
      g = special[(r >> 16) % 8];
    zllm_dtype_store_float(bd, base + i * bes, g);
    float f = zllm_dtype_load_float(bd, base + i * bes);
    zllm_dtype_store_float(d, ft + i * es, f);
    if (r % 5 < 3)
      ft[i * es] ^= (uint8_t)(1 + (r >> 20) % 7); /* low mantissa bits */
    if (r % 41 == 0)
      ft[i * es + es - 1] ^= 0x80; /* the sign */
    if (r % 53 == 0)
      ft[i * es + es - 1] ^= 0x01; /* an exponent bit */
    if (r % 89 == 0)
      zllm_dtype_store_float(d, ft + i * es, special[(r >> 8) % 8]);
  }
}

static void test_tally_matches_reference(void **state)
{
  (void)state;
  static const zllm_dtype pairs[][2] = {{ZLLM_DT_BF16, ZLLM_DT_BF16}, {ZLLM_DT_F16, ZLLM_DT_F16},
                                        {ZLLM_DT_F32, ZLLM_DT_F32},   {ZLLM_DT_BF16, ZLLM_DT_F32},
                                        {ZLLM_DT_F32, ZLLM_DT_BF16},  {ZLLM_DT_F16, ZLLM_DT_F32}};
  const size_t n = 70001; /* odd: tails of every block size */
  uint8_t *ft = malloc(n * 4), *base = malloc(n * 4);
  zllm_tally_plain *got_p = calloc(1, sizeof *got_p), *want_p = calloc(1, sizeof *want_p);
  zllm_tally_delta *got_d = calloc(1, sizeof *got_d), *want_d = calloc(1, sizeof *want_d);
  assert_non_null(ft);
  assert_non_null(got_d);
  for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++) {
    zllm_dtype d = pairs[k][0], bd = pairs[k][1];
    size_t es = zllm_dtype_get(d)->size, bes = zllm_dtype_get(bd)->size;
    tally_inputs(ft, base, n, d, bd, 7 + k);
    memset(got_p, 0, sizeof *got_p);
    memset(want_p, 0, sizeof *want_p);
    memset(got_d, 0, sizeof *got_d);
    memset(want_d, 0, sizeof *want_d);
    ref_plain(want_p, ft, n, d);
    ref_delta(want_d, ft, base, n, d, bd);
    /* parts of odd sizes: the counts must not depend on the cut */
    for (size_t at = 0, step = 1; at < n; at += step, step = step * 3 + 1) {
      size_t m = n - at < step ? n - at : step;
      zllm_tally_plain_add(got_p, ft + at * es, m, d);
      zllm_tally_delta_add(got_d, ft + at * es, base + at * bes, m, d, bd);
    }
    assert_memory_equal(got_p, want_p, sizeof *got_p);
    assert_int_equal(got_d->elements, n);
    assert_true(got_d->same > n / 5 && got_d->same < n / 2); /* the inputs change ~60% */
    assert_memory_equal(got_d->exp_change, want_d->exp_change, sizeof want_d->exp_change);
    assert_memory_equal(got_d->rel_change, want_d->rel_change, sizeof want_d->rel_change);
    assert_memory_equal(got_d, want_d, sizeof *got_d);
    uint64_t flips[32] = {0}, want_flips[32] = {0};
    zllm_tally_flips(got_d, es, flips);
    for (size_t i = 0; i < n; i++) {
      uint8_t cast[4];
      zllm_dtype_store_float(d, cast, zllm_dtype_load_float(bd, base + i * bes));
      uint32_t x = ref_bits(ft + i * es, es) ^ ref_bits(d == bd ? base + i * es : cast, es);
      for (unsigned b = 0; b < 8 * es; b++)
        want_flips[b] += (x >> b) & 1;
    }
    assert_memory_equal(flips, want_flips, sizeof flips);
    /* one call over all of it: 16-bit dtypes take the 65,536-entry tables */
    memset(got_p, 0, sizeof *got_p);
    memset(got_d, 0, sizeof *got_d);
    zllm_tally_plain_add(got_p, ft, n, d);
    zllm_tally_delta_add(got_d, ft, base, n, d, bd);
    assert_memory_equal(got_p, want_p, sizeof *got_p);
    assert_memory_equal(got_d->rel_change, want_d->rel_change, sizeof want_d->rel_change);
    assert_memory_equal(got_d, want_d, sizeof *got_d);
  }
  free(ft);
  free(base);
  free(got_p);
  free(want_p);
  free(got_d);
  free(want_d);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bounds),
    cmocka_unit_test(test_dedup_and_shift),
    cmocka_unit_test(test_tally_matches_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
