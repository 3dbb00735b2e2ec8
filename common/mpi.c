#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zllm/error.h"
#include "zllm/mpi.h"

bool zllm_mpi_alltrue(bool ok, MPI_Comm comm)
{
  int mine = ok ? 1 : 0, all = 0;
  if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
    return false;
  return all == 1;
}

unsigned long long zllm_mpi_sum_u64(unsigned long long v, MPI_Comm comm)
{
  unsigned long long sum = 0;
  MPI_Allreduce(&v, &sum, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  return sum;
}

int zllm_mpi_bcast_bytes(char **buf, size_t *len, int root, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  /* the length travels first; a root-side failure is signalled as ULLONG_MAX */
  unsigned long long n = rank == root ? (*len > INT_MAX ? ULLONG_MAX : *len) : 0;
  if (MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "MPI_Bcast of a length failed");
  if (n == ULLONG_MAX)
    return zllm_error_set(ZLLM_ELIMIT, "broadcast buffer larger than %d bytes", INT_MAX);
  char *data = rank == root ? *buf : malloc((size_t)n + 1);
  bool ok = data != NULL;
  if (!zllm_mpi_alltrue(ok, comm)) {
    if (rank != root)
      free(data);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory receiving a broadcast");
  }
  if (MPI_Bcast(data, (int)n, MPI_BYTE, root, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "MPI_Bcast of %llu bytes failed", n);
  if (rank != root) {
    data[n] = '\0';
    *buf = data;
    *len = (size_t)n;
  }
  return 0;
}

int zllm_mpi_gather_bytes(const char *send, size_t len, char **out, size_t *out_len, int root,
                          MPI_Comm comm)
{
  int rank, size, rc = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int mylen = len > INT_MAX ? -1 : (int)len;
  int *counts = NULL, *displs = NULL;
  char *recv = NULL;
  if (rank == root) {
    counts = calloc((size_t)size, sizeof *counts);
    displs = calloc((size_t)size, sizeof *displs);
  }
  if (MPI_Gather(&mylen, 1, MPI_INT, counts, 1, MPI_INT, root, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "MPI_Gather of lengths failed");
  /* the root decides whether the gather can go ahead and tells everyone */
  long long total = 0;
  int verdict = 0;
  if (rank == root) {
    for (int r = 0; r < size && verdict == 0; r++) {
      if (counts[r] < 0 || total + counts[r] > INT_MAX)
        verdict = ZLLM_ELIMIT;
      displs[r] = (int)total;
      total += counts[r];
    }
    if (verdict == 0 && !(recv = malloc((size_t)total + 1)))
      verdict = ZLLM_ENOMEM;
  }
  MPI_Bcast(&verdict, 1, MPI_INT, root, comm);
  if (verdict < 0) {
    rc = zllm_error_set(verdict, "gathering records to rank %d: more than %d bytes or out of memory",
                        root, INT_MAX);
    goto done;
  }
  if (MPI_Gatherv(send, mylen, MPI_BYTE, recv, counts, displs, MPI_BYTE, root, comm) !=
      MPI_SUCCESS) {
    rc = zllm_error_set(ZLLM_EMPI, "MPI_Gatherv failed");
    goto done;
  }
  if (rank == root) {
    recv[total] = '\0';
    *out = recv;
    *out_len = (size_t)total;
    recv = NULL;
  } else {
    *out = NULL;
    *out_len = 0;
  }
done:
  free(recv);
  free(counts);
  free(displs);
  return rc;
}

/* ---- progress of the whole job ------------------------------------------------ */

/* This rank's bytes not yet in rank 0's counter go there. */
static void progress_publish(zllm_mpi_progress *g)
{
  unsigned long long d = g->mine - g->sent;
  if (!g->live || d == 0)
    return;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, g->win);
  MPI_Accumulate(&d, 1, MPI_UNSIGNED_LONG_LONG, 0, 0, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, g->win);
  MPI_Win_unlock(0, g->win); /* completes the add at rank 0 */
  g->sent = g->mine;
}

/* Rank 0: every rank's bytes so far (an atomic read of the counter). */
static unsigned long long progress_count(zllm_mpi_progress *g)
{
  unsigned long long v = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, g->win);
  MPI_Fetch_and_op(NULL, &v, MPI_UNSIGNED_LONG_LONG, 0, 0, MPI_NO_OP, g->win);
  MPI_Win_unlock(0, g->win);
  return v;
}

void zllm_mpi_progress_begin(zllm_mpi_progress *g, const char *phase, unsigned long long my_share, MPI_Comm comm)
{
  memset(g, 0, sizeof *g);
  g->comm = comm;
  MPI_Comm_rank(comm, &g->rank);
  zllm_progress_begin(&g->pg, phase, zllm_mpi_sum_u64(my_share, comm));
  MPI_Aint bytes = g->rank == 0 ? (MPI_Aint)sizeof *g->count : 0;
  if (MPI_Win_allocate(bytes, (int)sizeof *g->count, MPI_INFO_NULL, comm, &g->count, &g->win) != MPI_SUCCESS)
    return; /* no job-wide count: rank 0 shows its own share */
  if (g->rank == 0)
    *g->count = 0;
  /* nobody adds before rank 0 has zeroed the counter */
  MPI_Barrier(comm);
  g->live = 1;
  g->last_sent = MPI_Wtime();
}

void zllm_mpi_progress_add(zllm_mpi_progress *g, unsigned long long bytes)
{
  g->mine += bytes;
  if (!g->live) {
    zllm_progress_set(&g->pg, g->mine, 0, 0);
    return;
  }
  double t = MPI_Wtime();
  if (t - g->last_sent < 0.2)
    return;
  g->last_sent = t;
  progress_publish(g);
  if (g->rank == 0)
    zllm_progress_set(&g->pg, progress_count(g), 0, 0);
}

void zllm_mpi_progress_finish(zllm_mpi_progress *g)
{
  if (g->live) {
    MPI_Request req;
    int done = 0;
    progress_publish(g);
    MPI_Ibarrier(g->comm, &req);
    while (g->rank == 0 && !done) { /* the bar moves while the others finish */
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);
      zllm_progress_set(&g->pg, progress_count(g), 0, 0);
      if (!done)
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    if (g->rank != 0)
      MPI_Wait(&req, MPI_STATUS_IGNORE);
    MPI_Win_free(&g->win);
    g->live = 0;
  }
  zllm_progress_end(&g->pg);
}

/* ---- work taken first come, first served --------------------------------------- */

int zllm_mpi_claims_begin(zllm_mpi_claims *c, size_t n, MPI_Comm comm)
{
  memset(c, 0, sizeof *c);
  MPI_Comm_rank(comm, &c->rank);
  c->n = n;
  MPI_Aint bytes = c->rank == 0 ? (MPI_Aint)((n ? n : 1) * sizeof *c->owner) : 0;
  int ok = n < (size_t)1 << 40 &&
           MPI_Win_allocate(bytes, (int)sizeof *c->owner, MPI_INFO_NULL, comm, &c->owner, &c->win) == MPI_SUCCESS;
  if (ok && c->rank == 0)
    memset(c->owner, 0, (size_t)bytes);
  /* nobody takes before rank 0 has cleared the table */
  if (!zllm_mpi_alltrue(ok, comm)) {
    if (ok)
      MPI_Win_free(&c->win);
    return zllm_error_set(ZLLM_EMPI, "cannot share a table of %zu work items between ranks", n);
  }
  c->live = 1;
  return 0;
}

int zllm_mpi_claims_take(zllm_mpi_claims *c, size_t i, int *mine)
{
  int me = c->rank + 1, free_ = 0, was = -1;
  *mine = 0;
  if (!c->live || i >= c->n)
    return zllm_error_set(ZLLM_EINVAL, "work item %zu of %zu cannot be taken", i, c->n);
  if (MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, c->win) != MPI_SUCCESS ||
      MPI_Compare_and_swap(&me, &free_, &was, MPI_INT, 0, (MPI_Aint)i, c->win) != MPI_SUCCESS ||
      MPI_Win_unlock(0, c->win) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "taking work item %zu failed", i);
  *mine = was == 0 || was == me;
  return 0;
}

void zllm_mpi_claims_end(zllm_mpi_claims *c)
{
  if (c->live)
    MPI_Win_free(&c->win); /* collective: every rank has stopped taking */
  c->live = 0;
}
