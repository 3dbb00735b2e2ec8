/* Shared by the microbenchmarks in bench/: a monotonic clock and medians. */
#ifndef ZLLM_BENCH_UTIL_H
#define ZLLM_BENCH_UTIL_H

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of v[0..n) (v is sorted in place). */
static inline double bench_median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "--mib N --repeat R" (defaults 64 and 5); 0, or 2 after a usage message. */
static inline int bench_args(int argc, char **argv, const char *name, size_t *mib, int *repeat)
{
  static const struct option opts[] = {{"mib", required_argument, 0, 'm'}, {"repeat", required_argument, 0, 'r'}, {0, 0, 0, 0}};
  *mib = 64;
  *repeat = 5;
  for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    if (c == 'm')
      *mib = strtoul(optarg, NULL, 10);
    else if (c == 'r')
      *repeat = atoi(optarg);
    else
      return fprintf(stderr, "usage: %s [--mib N] [--repeat R]\n", name), 2;
  }
  if (*mib == 0 || *repeat < 1 || *repeat > 100)
    return fprintf(stderr, "%s: --mib >= 1, 1 <= --repeat <= 100\n", name), 2;
  return 0;
}

#endif
