/* The tensor-duplicate exchange of stats.h5: each rank sends its rows'
 * XXH3-128 keys to the key's owner rank (MPI_Alltoallv), the owner answers
 * which row is first in hub order, and the counts by scope follow. */
#include <stdlib.h>
#include <string.h>

#include "survey/stats_internal.h"
#include "zllm/error.h"
#include "zllm/mpi.h"

typedef struct {
  uint8_t key[16];
  uint64_t row, bytes;
  int64_t src;  /* the rank that owns the row */
  int64_t dup;  /* the owner's answer: first row with this key, or -1 */
} key_row;

static int cmp_key_row(const void *a, const void *b)
{
  const key_row *x = a, *y = b;
  int k = memcmp(x->key, y->key, 16);
  return k ? k : (x->row < y->row ? -1 : x->row > y->row);
}

static int cmp_src_row(const void *a, const void *b)
{
  const key_row *x = a, *y = b;
  if (x->src != y->src)
    return x->src < y->src ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

static size_t repo_of_row(const st_ctx *c, uint64_t row)
{
  size_t l = 0, r = c->run->list.nrepos;
  while (l + 1 < r) { /* the last repo whose first row is <= row */
    size_t m = (l + r) / 2;
    if (c->first[m] <= row)
      l = m;
    else
      r = m;
  }
  return l;
}


static int owner_of(const uint8_t key[16], int size)
{
  uint64_t h;
  memcpy(&h, key, 8);
  return (int)(h % (uint64_t)size);
}

/* Records travel as bytes: counts and displacements in bytes, within int. */
/* COLLECTIVE: a rank that comes with ok == 0 still takes part, and then
 * every rank returns an error instead of exchanging. */
static int exchange(int ok, key_row *send, const int *scount, key_row **recv, size_t *nrecv, MPI_Comm comm)
{
  int size;
  MPI_Comm_size(comm, &size);
  int *sc = calloc((size_t)size, sizeof *sc), *sd = calloc((size_t)size, sizeof *sd), *rc_ = calloc((size_t)size, sizeof *rc_),
      *rd = calloc((size_t)size, sizeof *rd);
  int rc = sc && sd && rc_ && rd ? 0 : ZLLM_ENOMEM;
  long long stot = 0, rtot = 0;
  for (int r = 0; rc == 0 && ok && r < size; r++) {
    sc[r] = scount[r] * (int)sizeof(key_row);
    sd[r] = (int)stot;
    stot += sc[r];
  }
  *recv = NULL;
  if (!zllm_mpi_alltrue(ok && rc == 0 && stot < INT32_MAX, comm))
    rc = rc ? rc : ok ? ZLLM_ELIMIT : ZLLM_ERROR;
  else if (MPI_Alltoall(sc, 1, MPI_INT, rc_, 1, MPI_INT, comm) != MPI_SUCCESS)
    rc = ZLLM_EMPI;
  for (int r = 0; rc == 0 && r < size; r++) {
    rd[r] = (int)rtot;
    rtot += rc_[r];
  }
  if (rc == 0 && !(*recv = malloc((size_t)rtot + 1)))
    rc = ZLLM_ENOMEM;
  if (!zllm_mpi_alltrue(rc == 0 && rtot < INT32_MAX, comm))
    rc = rc ? rc : ZLLM_ELIMIT;
  else if (MPI_Alltoallv(send, sc, sd, MPI_BYTE, *recv, rc_, rd, MPI_BYTE, comm) != MPI_SUCCESS)
    rc = ZLLM_EMPI;
  *nrecv = rc == 0 ? (size_t)rtot / sizeof(key_row) : 0;
  free(sc);
  free(sd);
  free(rc_);
  free(rd);
  return rc ? zllm_error_set(rc, "stats: exchanging tensor hashes failed (%s)", zllm_error_name(rc)) : 0;
}

/* The owner of a group of equal hashes answers for each record, and counts
 * the duplicates within a model, a family and the hub. */
static void answer(const st_ctx *c, key_row *k, size_t n, uint64_t dup[3][2])
{
  if (n)
    qsort(k, n, sizeof *k, cmp_key_row);
  for (size_t i = 0, g = 0; i < n; i++) {
    if (i == 0 || memcmp(k[i].key, k[i - 1].key, 16) != 0)
      g = i;
    k[i].dup = i == g ? -1 : (int64_t)k[g].row;
    if (i == g)
      continue;
    size_t r = repo_of_row(c, k[i].row);
    int in_model = 0, in_family = 0;
    for (size_t j = g; j < i && !(in_model && in_family); j++) { /* an earlier copy in the same model / family */
      size_t rj = repo_of_row(c, k[j].row);
      in_model |= rj == r;
      in_family |= st_family_of(c, rj) == st_family_of(c, r);
    }
    dup[0][0] += in_model;
    dup[0][1] += in_model ? k[i].bytes : 0;
    dup[1][0] += in_family;
    dup[1][1] += in_family ? k[i].bytes : 0;
    dup[2][0]++;
    dup[2][1] += k[i].bytes;
  }
}

/* duplicate_of for own rows: each XXH3-128 record goes to the rank that owns
 * its hash (MPI_Alltoallv), the owner decides for the whole group (the first
 * row in hub order), and the answers come back the same way. */
int st_duplicates(st_ctx *c, int64_t *dup_of, uint64_t dup[3][2])
{
  int size = c->run->size;
  size_t nrecv = 0, nback = 0;
  key_row *send = calloc(c->nkeys + 1, sizeof *send), *recv = NULL, *back = NULL;
  int *count = calloc((size_t)size, sizeof *count), *at = calloc((size_t)size, sizeof *at);
  int rc = send && count && at ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  memset(dup, 0, sizeof(uint64_t) * 6);
  for (size_t i = 0; rc == 0 && i < c->nkeys; i++)
    count[owner_of(c->keys[i].key, size)]++;
  for (int r = 1; rc == 0 && r < size; r++)
    at[r] = at[r - 1] + count[r - 1];
  for (size_t k = 0, i = 0; rc == 0 && k < c->nmine; k++)
    for (uint64_t row = c->first[c->mine[k]]; row < c->first[c->mine[k] + 1]; row++, i++) {
      key_row *x = &send[at[owner_of(c->keys[i].key, size)]++];
      memcpy(x->key, c->keys[i].key, 16);
      x->row = row;
      x->bytes = c->keys[i].bytes;
      x->src = c->run->rank;
    }
  rc = exchange(rc == 0, send, count, &recv, &nrecv, c->run->comm);
  if (rc == 0) {
    answer(c, recv, nrecv, dup);
    qsort(recv, nrecv, sizeof *recv, cmp_src_row); /* grouped by the rank to answer */
    memset(count, 0, (size_t)size * sizeof *count);
    for (size_t i = 0; i < nrecv; i++)
      count[recv[i].src]++;
  }
  int sent = rc == 0;
  rc = exchange(sent, recv, count, &back, &nback, c->run->comm);
  if (rc == 0 && nback != c->nkeys)
    rc = zllm_error_set(ZLLM_EMPI, "stats: %zu answers for %zu tensors", nback, c->nkeys);
  if (rc == 0) {
    qsort(back, nback, sizeof *back, cmp_src_row); /* own rows in row order = the local order */
    for (size_t i = 0; i < nback; i++)
      dup_of[i] = back[i].dup;
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  else if (MPI_Allreduce(MPI_IN_PLACE, dup, 6, MPI_UINT64_T, MPI_SUM, c->run->comm) != MPI_SUCCESS)
    rc = zllm_error_set(ZLLM_EMPI, "stats: MPI_Allreduce failed");
  free(send);
  free(recv);
  free(back);
  free(count);
  free(at);
  return rc;
}
