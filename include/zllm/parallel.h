/* zllm/parallel.h - a fork-join loop over an index range on POSIX threads,
 * and the largest-first deal of work items to workers (threads or ranks).
 * Local (no MPI).  Threads: ZLLM_THREADS if set, else the online CPUs. */
#ifndef ZLLM_PARALLEL_H
#define ZLLM_PARALLEL_H

#include <stddef.h>
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

/* Deals n items of the given sizes to `nworkers` workers, largest first to
 * the least-loaded one (ties to the lowest worker, then the lowest index), and
 * returns worker `me`'s item indices in dealing order (caller frees *mine).
 * Every worker computes the same deal from the same sizes, so no message is
 * needed; an empty item still costs one unit. */
int zllm_deal_by_size(const uint64_t *sizes, size_t n, int nworkers, int me, size_t **mine, size_t *nmine);

#endif
