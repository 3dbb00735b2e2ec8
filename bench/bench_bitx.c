/* zllm-bench-bitx: throughput of the BitX plane loops, one core.
 *
 *   zllm-bench-bitx [--mib N] [--repeat R]
 *
 * Splits N MiB of elements XORed with a base into field-aligned planes and
 * merges them back, per dtype (BF16, F16, F32), and prints the median MB/s of
 * R runs beside memcpy of the same bytes in the same run (the ceiling of any
 * one-pass loop on this machine).  Checks that every merge gives the input
 * back; exits 1 if one does not.  The input is a fine-tune-like pattern
 * (every seventh byte changed), although the loops do not depend on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "zllm/codec.h"
#include "zllm/dtype.h"

int main(int argc, char **argv)
{
  size_t mib = 64;
  int repeat = 5, bad = 0;
  if (bench_args(argc, argv, "zllm-bench-bitx", &mib, &repeat))
    return 2;
  size_t bytes = mib << 20;
  uint8_t *src = malloc(bytes), *base = malloc(bytes), *dst = malloc(bytes), *planes[ZLLM_BITX_MAX_PLANES] = {0};
  int ok = src && base && dst;
  for (int p = 0; ok && p < ZLLM_BITX_MAX_PLANES; p++)
    ok = (planes[p] = malloc(bytes)) != NULL;
  if (!ok)
    return fprintf(stderr, "zllm-bench-bitx: out of memory\n"), 1;
  uint64_t x = 88172645463325252ULL;
  for (size_t i = 0; i < bytes; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    src[i] = (uint8_t)x;
    base[i] = (uint8_t)(src[i] ^ (i % 7 == 0));
  }
  for (int p = 0; p < ZLLM_BITX_MAX_PLANES; p++)
    memset(planes[p], 0, bytes); /* fault the pages in before timing */
  memset(dst, 0, bytes);
  double t[100];
  for (int r = 0; r < repeat; r++) {
    double t0 = bench_now();
    memcpy(dst, src, bytes);
    t[r] = bench_now() - t0;
  }
  printf("%zu MiB, median of %d runs, one core\n%-8s %10s %10s\n", mib, repeat, "dtype", "split MB/s", "merge MB/s");
  printf("%-8s %10.0f %10.0f\n", "memcpy", (double)bytes / bench_median(t, repeat) / 1e6, (double)bytes / bench_median(t, repeat) / 1e6);
  const zllm_dtype dts[] = {ZLLM_DT_BF16, ZLLM_DT_F16, ZLLM_DT_F32};
  for (size_t k = 0; k < sizeof dts / sizeof *dts; k++) {
    size_t n = bytes / zllm_dtype_get(dts[k])->size;
    double ts[100], tm[100];
    for (int r = 0; r < repeat; r++) {
      double t0 = bench_now();
      zllm_bitx_split(dts[k], src, base, n, planes);
      double t1 = bench_now();
      zllm_bitx_merge(dts[k], (const uint8_t *const *)planes, base, n, dst);
      tm[r] = bench_now() - t1;
      ts[r] = t1 - t0;
    }
    int same = memcmp(src, dst, bytes) == 0;
    bad |= !same;
    printf("%-8s %10.0f %10.0f%s\n", zllm_dtype_get(dts[k])->name, (double)bytes / bench_median(ts, repeat) / 1e6,
           (double)bytes / bench_median(tm, repeat) / 1e6, same ? "" : "  MISMATCH");
  }
  for (int p = 0; p < ZLLM_BITX_MAX_PLANES; p++)
    free(planes[p]);
  free(src);
  free(base);
  free(dst);
  return bad;
}
