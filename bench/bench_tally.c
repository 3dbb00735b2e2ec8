/* zllm-bench-tally: throughput of the characterization tallies, one core.
 *
 *   zllm-bench-tally [--mib N] [--repeat R]
 *
 * For each float dtype, N MiB of weight-like elements (a base, and a
 * fine-tune of it where a given share of elements moved by a few low mantissa
 * bits) are tallied: the plain tallies of the fine-tune, and its delta
 * tallies against the base with 0%, 60% and 100% of the elements changed (the
 * corpus's fine-tunes leave ~40% identical).  Prints the median MB/s of R runs
 * (bytes of the fine-tune per second) beside memcpy of the same bytes in the
 * same run, the ceiling of any one-pass loop here.  Checks that each run
 * counts the elements it was given; exits 1 if one does not. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "zllm/dtype.h"
#include "zllm/tally.h"

static uint64_t rng = 88172645463325252ULL;

static uint32_t next32(void)
{
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

/* Elements like a layer's weights: roughly normal, sd 0.02. */
static void weights(uint8_t *p, size_t n, zllm_dtype d)
{
  size_t es = zllm_dtype_get(d)->size;
  for (size_t i = 0; i < n; i++) {
    float u = 0;
    for (int k = 0; k < 4; k++)
      u += (float)(next32() & 0xffff) / 65536.0f - 0.5f;
    zllm_dtype_store_float(d, p + i * es, u * 0.035f);
  }
}

/* The fine-tune: `share` of the elements get their lowest 1-3 bits flipped. */
static void fine_tune(uint8_t *ft, const uint8_t *base, size_t n, zllm_dtype d, double share)
{
  size_t es = zllm_dtype_get(d)->size;
  memcpy(ft, base, n * es);
  for (size_t i = 0; i < n; i++)
    if ((double)(next32() % 1000) < share * 1000)
      ft[i * es] ^= (uint8_t)(1 + next32() % 7);
}

int main(int argc, char **argv)
{
  size_t mib = 64;
  int repeat = 5, bad = 0;
  if (bench_args(argc, argv, "zllm-bench-tally", &mib, &repeat))
    return 2;
  size_t bytes = mib << 20;
  uint8_t *base = malloc(bytes), *ft = malloc(bytes), *dst = malloc(bytes);
  zllm_tally_plain *plain = malloc(sizeof *plain);
  zllm_tally_delta *delta = malloc(sizeof *delta);
  if (!base || !ft || !dst || !plain || !delta)
    return fprintf(stderr, "zllm-bench-tally: out of memory\n"), 1;
  memset(dst, 0, bytes);
  memset(ft, 1, bytes);
  double t[100];
  for (int r = 0; r < repeat; r++) {
    double t0 = bench_now();
    memcpy(dst, ft, bytes);
    t[r] = bench_now() - t0;
  }
  printf("%zu MiB, median of %d runs, one core (MB/s of the fine-tune's bytes)\n", mib, repeat);
  printf("%-8s %10s %12s %12s %12s\n", "dtype", "plain", "delta 0%", "delta 60%", "delta 100%");
  printf("%-8s %10.0f   (memcpy, the ceiling)\n", "memcpy", (double)bytes / bench_median(t, repeat) / 1e6);
  static const zllm_dtype dts[] = {ZLLM_DT_BF16, ZLLM_DT_F16, ZLLM_DT_F32};
  static const double shares[] = {0.0, 0.6, 1.0};
  for (size_t k = 0; k < sizeof dts / sizeof *dts; k++) {
    zllm_dtype d = dts[k];
    size_t n = bytes / zllm_dtype_get(d)->size;
    double rate[4];
    weights(base, n, d);
    for (int s = 0; s < 4; s++) {
      if (s > 0)
        fine_tune(ft, base, n, d, shares[s - 1]);
      else
        memcpy(ft, base, bytes);
      for (int r = 0; r < repeat; r++) {
        memset(plain, 0, sizeof *plain);
        memset(delta, 0, sizeof *delta);
        double t0 = bench_now();
        if (s == 0)
          zllm_tally_plain_add(plain, ft, n, d);
        else
          zllm_tally_delta_add(delta, ft, base, n, d, d);
        t[r] = bench_now() - t0;
        bad |= s == 0 ? plain->n != n : delta->elements != n;
      }
      rate[s] = (double)bytes / bench_median(t, repeat) / 1e6;
    }
    printf("%-8s %10.0f %12.0f %12.0f %12.0f\n", zllm_dtype_get(d)->name, rate[0], rate[1], rate[2], rate[3]);
  }
  if (bad)
    fprintf(stderr, "zllm-bench-tally: a tally did not count every element\n");
  free(base);
  free(ft);
  free(dst);
  free(plain);
  free(delta);
  return bad;
}
