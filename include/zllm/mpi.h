/* zllm/mpi.h - MPI helpers.  Every function here is COLLECTIVE over `comm`:
 * all ranks must call it, in the same order, even ranks with nothing to send
 * or that met bad input, so no rank is ever left waiting. */
#ifndef ZLLM_MPI_H
#define ZLLM_MPI_H

#include <stdbool.h>
#include <stddef.h>

#include <mpi.h>

#include "zllm/buf.h"
#include "zllm/log.h"

/* True on every rank iff `ok` is true on every rank. */
bool zllm_mpi_alltrue(bool ok, MPI_Comm comm);

/* Broadcasts a byte buffer from `root`.  On the other ranks *buf is replaced
 * by a malloc'd copy (caller frees).  Any length: it travels in rounds of at
 * most 256 MiB (no 2 GiB cap of MPI's int counts).  Returns the same code on
 * every rank. */
int zllm_mpi_bcast_bytes(char **buf, size_t *len, int root, MPI_Comm comm);

/* Gathers each rank's bytes to `root`, concatenated in rank order into a
 * malloc'd, NUL-terminated buffer (caller frees); other ranks get NULL.
 * Any lengths: rank by rank, in messages of at most 256 MiB.  Returns the
 * same code on every rank. */
int zllm_mpi_gather_bytes(const char *send, size_t len, char **out, size_t *out_len, int root,
                          MPI_Comm comm);

/* Every rank's bytes on every rank, concatenated in rank order (malloc'd,
 * NUL-terminated, caller frees): zllm_mpi_gather_bytes to rank 0, then
 * zllm_mpi_bcast_bytes.  Returns the same code on every rank. */
int zllm_mpi_allgather_bytes(const char *send, size_t len, char **out, size_t *out_len, MPI_Comm comm);

/* Each rank sends send[r] (send_len[r] bytes) to rank r and receives into
 * *out (malloc'd, NUL-terminated, caller frees) what every rank sent it,
 * concatenated in rank order.  Any lengths: in rounds of at most 32 MiB
 * sent and received per rank.  Returns the same code on every rank. */
int zllm_mpi_alltoall_bytes(char *const *send, const size_t *send_len, char **out, size_t *out_len, MPI_Comm comm);
/* The same from one buffer per rank (to[r] goes to rank r), each emptied
 * after (also on error), so a caller can fill them again for an answer. */
int zllm_mpi_alltoall_bufs(zllm_buf *to, char **out, size_t *out_len, MPI_Comm comm);

/* Sum of a u64 over ranks, result on every rank. */
unsigned long long zllm_mpi_sum_u64(unsigned long long v, MPI_Comm comm);

/* Progress of a phase for the whole job: rank 0 prints (zllm/log.h's
 * printer) the bytes of every rank against the sum of every rank's share.
 * Each rank adds to a counter in a window on rank 0 (MPI_Accumulate under a
 * passive-target lock, at most every 0.2 s), so the hot path never waits
 * on another rank; rank 0 reads the counter when it prints.  begin and
 * finish are COLLECTIVE; add is local.  finish waits for every rank with a
 * non-blocking barrier that rank 0 polls, so the bar keeps moving while
 * rank 0 waits for the others, and prints the phase's final line. */
typedef struct {
  zllm_progress pg;   /* rank 0 prints it */
  MPI_Comm comm;
  MPI_Win win;        /* one u64 on rank 0: every rank's bytes, summed */
  unsigned long long *count;
  unsigned long long mine, sent;
  double last_sent;
  int rank, live;     /* live: the window exists */
} zllm_mpi_progress;

void zllm_mpi_progress_begin(zllm_mpi_progress *g, const char *phase, unsigned long long my_share, MPI_Comm comm);
void zllm_mpi_progress_add(zllm_mpi_progress *g, unsigned long long bytes);
void zllm_mpi_progress_finish(zllm_mpi_progress *g);

/* Work taken first come, first served: n items, each owned by the first
 * rank that asks for it (a compare-and-swap on a table in a window on rank
 * 0, under a passive-target lock), so ranks that finish early take more
 * and nobody waits for another rank's progress.  begin and end are
 * COLLECTIVE (end waits until every rank is done taking); take is local. */
typedef struct {
  MPI_Win win;
  int *owner; /* rank 0: per item, owner rank + 1, 0 while free */
  int rank, live;
  size_t n;
} zllm_mpi_claims;

int zllm_mpi_claims_begin(zllm_mpi_claims *c, size_t n, MPI_Comm comm);
/* *mine: 1 when item i is (now) this rank's, 0 when another rank's. */
int zllm_mpi_claims_take(zllm_mpi_claims *c, size_t i, int *mine);
void zllm_mpi_claims_end(zllm_mpi_claims *c);

#endif
