#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/mpi.h"

bool zllm_mpi_alltrue(bool ok, MPI_Comm comm)
{
  int mine = ok ? 1 : 0, all = 0;
  if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
    return false;
  return all == 1;
}

int zllm_mpi_alltoall_bufs(zllm_buf *to, char **out, size_t *out_len, MPI_Comm comm)
{
  int size;
  MPI_Comm_size(comm, &size);
  char **send = calloc((size_t)size, sizeof *send);
  size_t *send_len = calloc((size_t)size, sizeof *send_len);
  int rc = send && send_len ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int r = 0; rc == 0 && r < size; r++) {
    send[r] = to[r].data;
    send_len[r] = to[r].len;
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "out of memory on another rank");
  rc = rc ? rc : zllm_mpi_alltoall_bytes(send, send_len, out, out_len, comm);
  for (int r = 0; r < size; r++)
    zllm_buf_free(&to[r]);
  free(send);
  free(send_len);
  return rc;
}

unsigned long long zllm_mpi_sum_u64(unsigned long long v, MPI_Comm comm)
{
  unsigned long long sum = 0;
  MPI_Allreduce(&v, &sum, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  return sum;
}

/* The largest message: bigger buffers travel in rounds of this many bytes,
 * so no count passes MPI's int and no single message is huge.
 * ZLLM_TEST_MPI_CHUNK makes it small to test the rounds. */
static size_t round_bytes(void)
{
  const char *env = getenv("ZLLM_TEST_MPI_CHUNK");
  long long v = env ? atoll(env) : 0;
  return v > 0 && v < (256LL << 20) ? (size_t)v : zllm_bounded((size_t)256 << 20, 5);
}

static int round_len(size_t left)
{
  size_t r = round_bytes();
  return (int)(left < r ? left : r);
}

int zllm_mpi_bcast_bytes(char **buf, size_t *len, int root, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  unsigned long long n = rank == root ? *len : 0;
  if (MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "MPI_Bcast of a length failed");
  char *data = rank == root ? *buf : n < SIZE_MAX ? malloc((size_t)n + 1) : NULL;
  if (!zllm_mpi_alltrue(data != NULL, comm)) {
    if (rank != root)
      free(data);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory receiving a broadcast of %llu bytes", n);
  }
  for (size_t done = 0; done < n;) {
    int k = round_len((size_t)n - done);
    if (MPI_Bcast(data + done, k, MPI_BYTE, root, comm) != MPI_SUCCESS) {
      if (rank != root)
        free(data);
      return zllm_error_set(ZLLM_EMPI, "MPI_Bcast of %llu bytes failed", n);
    }
    done += (size_t)k;
  }
  if (rank != root) {
    data[n] = '\0';
    *buf = data;
    *len = (size_t)n;
  }
  return 0;
}

/* `n` bytes from rank `peer` into dst (receiving), or from src to rank
 * `peer`, in rounds. */
static int move_rounds(char *dst, const char *src, size_t n, int peer, int receiving, MPI_Comm comm)
{
  for (size_t done = 0; done < n;) {
    int k = round_len(n - done);
    int rc = receiving ? MPI_Recv(dst + done, k, MPI_BYTE, peer, 0, comm, MPI_STATUS_IGNORE)
                       : MPI_Send(src + done, k, MPI_BYTE, peer, 0, comm);
    if (rc != MPI_SUCCESS)
      return zllm_error_set(ZLLM_EMPI, "%s %zu bytes %s rank %d failed", receiving ? "receiving" : "sending", n,
                            receiving ? "from" : "to", peer);
    done += (size_t)k;
  }
  return 0;
}

int zllm_mpi_gather_bytes(const char *send, size_t len, char **out, size_t *out_len, int root,
                          MPI_Comm comm)
{
  int rank, size, rc = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  unsigned long long mine = len, *counts = rank == root ? calloc((size_t)size, sizeof *counts) : NULL;
  char *recv = NULL;
  *out = NULL;
  *out_len = 0;
  if (MPI_Gather(&mine, 1, MPI_UNSIGNED_LONG_LONG, counts, 1, MPI_UNSIGNED_LONG_LONG, root, comm) != MPI_SUCCESS) {
    free(counts);
    return zllm_error_set(ZLLM_EMPI, "MPI_Gather of lengths failed");
  }
  /* the root decides whether the gather can go ahead and tells everyone */
  unsigned long long total = 0;
  int verdict = 0;
  if (rank == root) {
    for (int r = 0; r < size; r++)
      total += counts[r];
    if (!(recv = total < SIZE_MAX ? malloc((size_t)total + 1) : NULL))
      verdict = ZLLM_ENOMEM;
  }
  MPI_Bcast(&verdict, 1, MPI_INT, root, comm);
  if (verdict < 0) {
    rc = zllm_error_set(verdict, "gathering records to rank %d: out of memory for %llu bytes", root, total);
    goto done;
  }
  /* each rank in turn, in rounds: only the root ever holds more than a round of another rank's */
  size_t at = 0;
  for (int r = 0; r < size && rc == 0; r++) {
    if (rank == root && r == root)
      memcpy(recv + at, send, len);
    else if (rank == root)
      rc = move_rounds(recv + at, NULL, (size_t)counts[r], r, 1, comm);
    else if (rank == r)
      rc = move_rounds(NULL, send, len, root, 0, comm);
    at += rank == root ? (size_t)counts[r] : 0;
  }
  if (rc == 0 && rank == root) {
    recv[total] = '\0';
    *out = recv;
    *out_len = (size_t)total;
    recv = NULL;
  }
done:
  free(recv);
  free(counts);
  return rc;
}

int zllm_mpi_allgather_bytes(const char *send, size_t len, char **out, size_t *out_len, MPI_Comm comm)
{
  int rc = zllm_mpi_gather_bytes(send ? send : "", len, out, out_len, 0, comm);
  rc = rc ? rc : zllm_mpi_bcast_bytes(out, out_len, 0, comm);
  if (rc < 0) {
    free(*out);
    *out = NULL;
    *out_len = 0;
  }
  return rc;
}

/* An all-to-all's state: what goes to and comes from each peer, how much
 * of it has moved, and one round's counts (MPI's int). */
typedef struct {
  char *const *send;
  const size_t *send_len;
  size_t *recv_at, *recv_len, *sent, *got;
  int *sc, *sd, *rc, *rd;
  char *sbuf, *tmp, *out;
  size_t per_peer;
  int size;
} a2a;

/* One round: up to per_peer bytes between each pair of ranks.  Every rank
 * takes part, even one that failed before (it sends nothing). */
static int a2a_round(a2a *x, int ok, MPI_Comm comm)
{
  size_t stotal = 0, rtotal = 0;
  for (int r = 0; r < x->size; r++) {
    size_t s = ok ? x->send_len[r] - x->sent[r] : 0, g = ok ? x->recv_len[r] - x->got[r] : 0;
    x->sc[r] = (int)(s < x->per_peer ? s : x->per_peer);
    x->rc[r] = (int)(g < x->per_peer ? g : x->per_peer);
    x->sd[r] = (int)stotal;
    x->rd[r] = (int)rtotal;
    stotal += (size_t)x->sc[r];
    rtotal += (size_t)x->rc[r];
  }
  for (int r = 0; r < x->size; r++)
    if (x->sc[r])
      memcpy(x->sbuf + x->sd[r], x->send[r] + x->sent[r], (size_t)x->sc[r]);
  if (!zllm_mpi_alltrue(ok, comm))
    return zllm_error_set(ZLLM_EMPI, "an all-to-all: a rank could not take part");
  if (MPI_Alltoallv(x->sbuf, x->sc, x->sd, MPI_BYTE, x->tmp, x->rc, x->rd, MPI_BYTE, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "MPI_Alltoallv failed");
  for (int r = 0; r < x->size; r++) {
    if (x->rc[r])
      memcpy(x->out + x->recv_at[r] + x->got[r], x->tmp + x->rd[r], (size_t)x->rc[r]);
    x->got[r] += (size_t)x->rc[r];
    x->sent[r] += (size_t)x->sc[r];
  }
  return 0;
}

#define A2A_ROUND zllm_bounded((size_t)32 << 20, 5)

int zllm_mpi_alltoall_bytes(char *const *send, const size_t *send_len, char **out, size_t *out_len, MPI_Comm comm)
{
  int size;
  MPI_Comm_size(comm, &size);
  /* rounds of at most 32 MiB sent and received per rank: what the exchange
   * adds to a rank's memory beyond what it sends and receives */
  size_t round = round_bytes() < A2A_ROUND ? round_bytes() : A2A_ROUND;
  size_t n = (size_t)size, total = 0, per_peer = round / n ? round / n : 1;
  a2a x = {.send = send, .send_len = send_len, .per_peer = per_peer, .size = size};
  unsigned long long *lens = calloc(2 * n, sizeof *lens), most = 0, all_most = 0;
  size_t *at = calloc(4 * n, sizeof *at);
  int *counts = calloc(4 * n, sizeof *counts), rc = 0;
  *out = NULL;
  *out_len = 0;
  int ok = lens && at && counts;
  for (size_t r = 0; ok && r < n; r++)
    lens[r] = send_len[r];
  if (!zllm_mpi_alltrue(ok, comm) ||
      MPI_Alltoall(lens, 1, MPI_UNSIGNED_LONG_LONG, lens + n, 1, MPI_UNSIGNED_LONG_LONG, comm) != MPI_SUCCESS) {
    rc = zllm_error_set(ok ? ZLLM_EMPI : ZLLM_ENOMEM, "an all-to-all: out of memory, or MPI_Alltoall failed");
    goto done;
  }
  x.recv_at = at, x.recv_len = at + n, x.sent = at + 2 * n, x.got = at + 3 * n;
  x.sc = counts, x.sd = counts + n, x.rc = counts + 2 * n, x.rd = counts + 3 * n;
  for (size_t r = 0; r < n; r++) {
    x.recv_at[r] = total;
    x.recv_len[r] = (size_t)lens[n + r];
    total += x.recv_len[r];
    most = lens[r] > most ? lens[r] : most;
    most = lens[n + r] > most ? lens[n + r] : most;
  }
  MPI_Allreduce(&most, &all_most, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm);
  x.out = malloc(total + 1);
  x.tmp = malloc(per_peer * n + 1);
  x.sbuf = malloc(per_peer * n + 1);
  ok = x.out && x.tmp && x.sbuf;
  /* every rank runs the same rounds (at least one: a failure is agreed on) */
  size_t rounds = (size_t)((all_most + per_peer - 1) / per_peer);
  for (size_t k = 0; rc == 0 && k < (rounds ? rounds : 1); k++)
    rc = a2a_round(&x, ok, comm);
  if (rc == 0) {
    x.out[total] = '\0';
    *out = x.out;
    *out_len = total;
    x.out = NULL;
  }
done:
  free(x.out);
  free(x.tmp);
  free(x.sbuf);
  free(lens);
  free(at);
  free(counts);
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
