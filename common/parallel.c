#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "zllm/error.h"
#include "zllm/parallel.h"

#define MAX_THREADS 256

typedef struct {
  zllm_range_fn fn;
  void *ctx;
  int worker;
  uint64_t lo, hi;
  int rc;
} slice;

int zllm_parallel_threads(void)
{
  const char *env = getenv("ZLLM_THREADS");
  long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

static void *run_slice(void *arg)
{
  slice *s = arg;
  s->rc = s->fn(s->ctx, s->worker, s->lo, s->hi);
  return NULL;
}

int zllm_parallel_for(uint64_t n, uint64_t grain, zllm_range_fn fn, void *ctx)
{
  return zllm_parallel_for_n(n, grain, zllm_parallel_threads(), fn, ctx);
}

int zllm_parallel_for_n(uint64_t n, uint64_t grain, int threads, zllm_range_fn fn, void *ctx)
{
  uint64_t t = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : (uint64_t)threads, g = grain ? grain : 1;
  if (t > (n + g - 1) / g)
    t = (n + g - 1) / g;
  if (t <= 1)
    return fn(ctx, 0, 0, n);
  slice s[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  int joinable[MAX_THREADS] = {0}, rc = 0;
  for (uint64_t k = 0; k < t; k++)
    s[k] = (slice){fn, ctx, (int)k, n * k / t, n * (k + 1) / t, 0};
  /* the calling thread takes slice 0 itself; a slice whose thread cannot
   * start is run here too */
  for (uint64_t k = 1; k < t; k++)
    joinable[k] = pthread_create(&th[k], NULL, run_slice, &s[k]) == 0;
  run_slice(&s[0]);
  for (uint64_t k = 1; k < t; k++) {
    if (joinable[k])
      pthread_join(th[k], NULL);
    else
      run_slice(&s[k]);
  }
  for (uint64_t k = 0; k < t && rc == 0; k++)
    rc = s[k].rc;
  return rc;
}
