/* analyze/fastcdc.c: chunk bounds, determinism, dedup of copies, shift resistance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "zllm/analyze.h"

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

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bounds),
    cmocka_unit_test(test_dedup_and_shift),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
