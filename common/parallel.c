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

typedef struct {
  uint64_t size;
  size_t idx;
} sized_ref;

static int cmp_size_desc(const void *a, const void *b)
{
  const sized_ref *x = a, *y = b;
  if (x->size != y->size)
    return x->size > y->size ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int zllm_deal_by_size(const uint64_t *sizes, size_t n, int nworkers, int me, size_t **mine, size_t *nmine)
{
  sized_ref *order = calloc(n ? n : 1, sizeof *order);
  uint64_t *load = calloc(nworkers > 0 ? (size_t)nworkers : 1, sizeof *load);
  size_t k = 0;
  *mine = calloc(n ? n : 1, sizeof **mine);
  if (!order || !load || !*mine) {
    free(order);
    free(load);
    free(*mine);
    *mine = NULL;
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    order[i] = (sized_ref){sizes[i], i};
  qsort(order, n, sizeof *order, cmp_size_desc);
  for (size_t i = 0; i < n; i++) {
    int best = 0;
    for (int r = 1; r < nworkers; r++)
      if (load[r] < load[best])
        best = r;
    load[best] += order[i].size + 1;
    if (best == me)
      (*mine)[k++] = order[i].idx;
  }
  *nmine = k;
  free(order);
  free(load);
  return 0;
}
