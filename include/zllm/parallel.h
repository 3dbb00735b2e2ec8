/* zllm/parallel.h - a fork-join loop over an index range on POSIX threads.
 * Local (no MPI).  Threads: ZLLM_THREADS if set, else the online CPUs. */
#ifndef ZLLM_PARALLEL_H
#define ZLLM_PARALLEL_H

#include <stdint.h>

/* Calls fn(ctx, worker, lo, hi) on disjoint slices covering [0, n), each at
 * least `grain` long, from up to zllm_parallel_threads() workers (worker is
 * 0..threads-1, for per-worker partial results).  Returns 0, or the first
 * negative value a call returned. */
typedef int (*zllm_range_fn)(void *ctx, int worker, uint64_t lo, uint64_t hi);
int zllm_parallel_for(uint64_t n, uint64_t grain, zllm_range_fn fn, void *ctx);
/* The same with an explicit number of workers (1 runs inline). */
int zllm_parallel_for_n(uint64_t n, uint64_t grain, int threads, zllm_range_fn fn, void *ctx);
int zllm_parallel_threads(void);

#endif
