/* The family table partitioned over the ranks (zllm/cluster.h, "Parts").
 * A repo's row lives on its home rank: the ranks hold contiguous blocks of
 * the hub's repos in hub order (which is the rows' order), so no rank holds
 * the whole table and families.tsv is the ranks' blocks one after another.
 * The signatures' owners send each row home; a rank that needs the rows
 * of some repos (those it works on) asks their homes; the few callers
 * that need the whole table (calibration, the baselines) gather it. */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/mpi.h"

/* ---- homes --------------------------------------------------------------------- */

void zllm_family_part_range(size_t nrepos, int size, int rank, size_t *lo, size_t *hi)
{
  *lo = (size_t)((unsigned __int128)nrepos * (unsigned)rank / (unsigned)size);
  *hi = (size_t)((unsigned __int128)nrepos * (unsigned)(rank + 1) / (unsigned)size);
}

int zllm_family_part_home(size_t repo, size_t nrepos, int size)
{
  int r = nrepos ? (int)((unsigned __int128)repo * (unsigned)size / nrepos) : 0;
  size_t lo, hi;
  for (;;) { /* the estimate is off by at most one block */
    zllm_family_part_range(nrepos, size, r, &lo, &hi);
    if (repo < lo && r > 0)
      r--;
    else if (repo >= hi && r + 1 < size)
      r++;
    else
      return r;
  }
}

/* ---- a row on the wire ------------------------------------------------------------ */

static int put_opt(zllm_buf *b, const char *s, uint64_t *present, int bit)
{
  *present |= s ? (uint64_t)1 << bit : 0;
  return zllm_buf_put_str(b, s ? s : "");
}

static uint64_t bits_of(double d)
{
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

static double double_of(uint64_t u)
{
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static int encode_row(zllm_buf *b, const zllm_family_row *r)
{
  uint64_t present = 0;
  zllm_buf tail = ZLLM_BUF_INIT;
  int rc = put_opt(&tail, r->family, &present, 0);
  rc = rc ? rc : put_opt(&tail, r->base, &present, 1);
  rc = rc ? rc : put_opt(&tail, r->declared_base, &present, 2);
  rc = rc ? rc : put_opt(&tail, r->reason, &present, 3);
  rc = rc ? rc : zllm_buf_put_str(b, r->repo);
  rc = rc ? rc : zllm_buf_put_u64(b, present);
  rc = rc ? rc : zllm_buf_append(b, tail.data ? tail.data : "", tail.len);
  rc = rc ? rc : zllm_buf_put_u64(b, bits_of(r->distance));
  rc = rc ? rc : zllm_buf_put_u64(b, bits_of(r->identical));
  rc = rc ? rc : zllm_buf_put_u64(b, bits_of(r->cost));
  rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)r->decision);
  rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)r->created);
  zllm_buf_free(&tail);
  return rc;
}

static int get_opt(zllm_reader *r, char **s, uint64_t present, int bit)
{
  int rc = zllm_reader_str(r, s);
  if (rc == 0 && !(present >> bit & 1)) {
    free(*s);
    *s = NULL;
  }
  return rc;
}

static int decode_row(zllm_reader *r, zllm_family_row *row)
{
  uint64_t present = 0, d = 0, i = 0, c = 0, decision = 0, created = 0;
  int rc = zllm_reader_str(r, &row->repo);
  rc = rc ? rc : zllm_reader_u64(r, &present);
  rc = rc ? rc : get_opt(r, &row->family, present, 0);
  rc = rc ? rc : get_opt(r, &row->base, present, 1);
  rc = rc ? rc : get_opt(r, &row->declared_base, present, 2);
  rc = rc ? rc : get_opt(r, &row->reason, present, 3);
  rc = rc ? rc : zllm_reader_u64(r, &d);
  rc = rc ? rc : zllm_reader_u64(r, &i);
  rc = rc ? rc : zllm_reader_u64(r, &c);
  rc = rc ? rc : zllm_reader_u64(r, &decision);
  rc = rc ? rc : zllm_reader_u64(r, &created);
  if (rc == 0 && decision > ZLLM_DECIDE_NONE)
    rc = zllm_error_set(ZLLM_EFORMAT, "cluster: a family row with a bad decision");
  row->distance = double_of(d);
  row->identical = double_of(i);
  row->cost = double_of(c);
  row->decision = (zllm_decision)decision;
  row->created = (int64_t)created;
  return rc;
}

static int cmp_row(const void *a, const void *b)
{
  return strcmp(((const zllm_family_row *)a)->repo, ((const zllm_family_row *)b)->repo);
}

static int another_rank_failed(int rc, MPI_Comm comm)
{
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed"));
}

/* Rows decoded from `data` onto the end of t's rows. */
static int decode_rows(zllm_family_table *t, const char *data, size_t len, size_t cap)
{
  zllm_reader r = {data, len};
  int rc = 0;
  while (rc == 0 && r.left > 0) {
    if (t->n >= cap)
      return zllm_error_set(ZLLM_EFORMAT, "cluster: more family rows received than asked for");
    rc = decode_row(&r, &t->rows[t->n]);
    t->n++; /* a half-decoded row is freed with the table */
  }
  return rc;
}

static void rows_clear(zllm_family_table *t)
{
  for (size_t i = 0; i < t->n; i++)
    cl_family_row_clear(&t->rows[i]);
  free(t->rows);
  t->rows = NULL;
  t->n = 0;
}

/* ---- the rows to their homes ---------------------------------------------------- */

int cl_rows_to_homes(zllm_family_table *t, const zllm_hub *hub, MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  zllm_buf *to = calloc((size_t)size, sizeof *to);
  char *got = NULL;
  size_t len = 0, lo, hi;
  int rc = to ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < t->n; i++) {
    long at = zllm_hub_find(hub, t->rows[i].repo);
    rc = at < 0 ? zllm_error_set(ZLLM_EFORMAT, "cluster: a family row of %s, not a repo of the hub", t->rows[i].repo)
                : encode_row(&to[zllm_family_part_home((size_t)at, hub->n, size)], &t->rows[i]);
  }
  rc = rc ? rc : zllm_test_fail("homes", rank);
  rc = another_rank_failed(rc, comm);
  rc = rc ? rc : zllm_mpi_alltoall_bufs(to, &got, &len, comm);
  for (int r = 0; to && r < size; r++)
    zllm_buf_free(&to[r]);
  free(to);
  rows_clear(t);
  zllm_family_part_range(hub->n, size, rank, &lo, &hi);
  t->first = lo;
  if (rc == 0 && !(t->rows = calloc(hi - lo + 1, sizeof *t->rows)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : decode_rows(t, got, len, hi - lo);
  if (rc == 0 && t->n != hi - lo)
    rc = zllm_error_set(ZLLM_EFORMAT, "cluster: %zu family rows came home, %zu expected", t->n, hi - lo);
  if (rc == 0)
    qsort(t->rows, t->n, sizeof *t->rows, cmp_row);
  for (size_t i = 0; rc == 0 && i < t->n; i++)
    if (strcmp(t->rows[i].repo, hub->ids[lo + i]) != 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "cluster: the family row of %s came to the home of %s", t->rows[i].repo,
                          hub->ids[lo + i]);
  free(got);
  unsigned long long sums[2] = {t->nfamilies, t->ncompared}, total[2] = {0, 0};
  MPI_Allreduce(sums, total, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  t->nfamilies = (size_t)total[0];
  t->ncompared = (size_t)total[1];
  t->total = hub->n;
  return another_rank_failed(rc, comm);
}

/* ---- rows asked of their homes ---------------------------------------------------- */

typedef struct {
  uint64_t repo;
  uint64_t asker;
} row_question;

/* A table shaped like `part` (the counts) holding no rows yet, room for n. */
static int empty_like(zllm_family_table **out, const zllm_family_table *part, size_t n)
{
  zllm_family_table *t = calloc(1, sizeof *t);
  if (!t || !(t->rows = calloc(n + 1, sizeof *t->rows))) {
    free(t);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  t->nfamilies = part->nfamilies;
  t->ncompared = part->ncompared;
  t->total = part->total;
  *out = t;
  return 0;
}

/* The questions that came to this home, answered with rows, per asker. */
static int answer_questions(const zllm_family_table *part, const char *got, size_t len, zllm_buf *to, int size)
{
  int rc = len % sizeof(row_question) ? zllm_error_set(ZLLM_EFORMAT, "cluster: a torn question for family rows") : 0;
  for (size_t k = 0; rc == 0 && k < len / sizeof(row_question); k++) {
    row_question q;
    memcpy(&q, got + k * sizeof q, sizeof q);
    if (q.repo < part->first || q.repo - part->first >= part->n || q.asker >= (uint64_t)size)
      rc = zllm_error_set(ZLLM_EFORMAT, "cluster: family row %llu asked of the wrong home", (unsigned long long)q.repo);
    else
      rc = encode_row(&to[q.asker], &part->rows[q.repo - part->first]);
  }
  return rc;
}

int zllm_family_rows_ask(zllm_family_table **out, const zllm_family_table *part, const size_t *repos, size_t n,
                         MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  zllm_family_table *t = NULL;
  zllm_buf *to = calloc((size_t)size, sizeof *to);
  char *got = NULL;
  size_t len = 0;
  int rc = to ? empty_like(&t, part, n) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < n; k++) {
    row_question q = {repos[k], (uint64_t)rank};
    rc = repos[k] < part->total ? zllm_buf_append(&to[zllm_family_part_home(repos[k], part->total, size)], &q, sizeof q)
                                : zllm_error_set(ZLLM_EINVAL, "cluster: family row %zu of %zu asked for", repos[k],
                                                 part->total);
  }
  rc = another_rank_failed(rc, comm);
  rc = rc ? rc : zllm_mpi_alltoall_bufs(to, &got, &len, comm);
  rc = rc ? rc : answer_questions(part, got, len, to, size);
  free(got);
  got = NULL;
  rc = another_rank_failed(rc, comm);
  rc = rc ? rc : zllm_mpi_alltoall_bufs(to, &got, &len, comm);
  rc = rc ? rc : decode_rows(t, got, len, n);
  if (rc == 0 && t->n != n)
    rc = zllm_error_set(ZLLM_EFORMAT, "cluster: %zu family rows answered, %zu asked for", t->n, n);
  if (rc == 0)
    qsort(t->rows, t->n, sizeof *t->rows, cmp_row);
  free(got);
  for (int r = 0; to && r < size; r++)
    zllm_buf_free(&to[r]);
  free(to);
  rc = another_rank_failed(rc, comm);
  if (rc < 0) {
    zllm_family_table_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

/* ---- the whole table, for the callers that need it ------------------------------- */

int zllm_family_table_share(zllm_family_table **out, const zllm_family_table *part, int root, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  zllm_buf mine = ZLLM_BUF_INIT;
  zllm_family_table *t = NULL;
  char *all = NULL;
  size_t len = 0;
  int here = root < 0 || rank == root;
  int rc = here ? empty_like(&t, part, part->total) : 0;
  for (size_t i = 0; rc == 0 && i < part->n; i++)
    rc = encode_row(&mine, &part->rows[i]);
  rc = another_rank_failed(rc, comm);
  if (rc == 0 && root < 0)
    rc = zllm_mpi_allgather_bytes(mine.data ? mine.data : "", mine.len, &all, &len, comm);
  else if (rc == 0)
    rc = zllm_mpi_gather_bytes(mine.data ? mine.data : "", mine.len, &all, &len, root, comm);
  zllm_buf_free(&mine);
  rc = rc || !here ? rc : decode_rows(t, all, len, part->total); /* the blocks in rank order: hub order */
  if (rc == 0 && here && t->n != part->total)
    rc = zllm_error_set(ZLLM_EFORMAT, "cluster: %zu family rows gathered, %zu expected", t->n, part->total);
  free(all);
  rc = another_rank_failed(rc, comm);
  if (rc < 0) {
    zllm_family_table_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

/* ---- each repo's family, compactly, on every rank --------------------------------- */

int zllm_family_roots(uint32_t **out, const zllm_family_table *part, const zllm_hub *hub, MPI_Comm comm)
{
  uint32_t *mine = calloc(part->n + 1, sizeof *mine);
  char *all = NULL;
  size_t len = 0;
  int rc = mine ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && hub->n > UINT32_MAX)
    rc = zllm_error_set(ZLLM_ELIMIT, "cluster: %zu repos: more than 32-bit family roots", hub->n);
  for (size_t i = 0; rc == 0 && i < part->n; i++) {
    const zllm_family_row *r = &part->rows[i];
    long at = r->family && strcmp(r->family, "-") != 0 ? zllm_hub_find(hub, r->family) : -1;
    mine[i] = at >= 0 ? (uint32_t)at : (uint32_t)(part->first + i);
  }
  rc = another_rank_failed(rc, comm);
  rc = rc ? rc : zllm_mpi_allgather_bytes((const char *)mine, part->n * sizeof *mine, &all, &len, comm);
  if (rc == 0 && len != hub->n * sizeof *mine)
    rc = zllm_error_set(ZLLM_EFORMAT, "cluster: %zu bytes of family roots for %zu repos", len, hub->n);
  free(mine);
  if (rc < 0) {
    free(all);
    return rc;
  }
  *out = (uint32_t *)all;
  return 0;
}
