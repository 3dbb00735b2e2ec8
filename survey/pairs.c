/* The compared pairs, spilled by the ranks that compared them and written
 * in place from there (survey/pairs.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/pairs.h"
#include "survey/table.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

#define READ_PAIRS zllm_bounded((size_t)1 << 16, 3) /* pairs read back from the spill at a time */

struct sv_pairs {
  char *path; /* the spill */
  FILE *spill;
  char *const *names;
  size_t nrepos;
  uint64_t mine;   /* pairs this rank compared */
  uint64_t total;  /* every rank's (settled) */
  uint64_t *first; /* per repo: this rank's pairs led by it; settled: the row of its first pair (nrepos + 1) */
};

int sv_pairs_open(sv_pairs **out, const char *dir, int rank, char *const *names, size_t nrepos)
{
  sv_pairs *s = calloc(1, sizeof *s);
  char name[48];
  snprintf(name, sizeof name, "pairs-%d.bin", rank);
  int rc = s ? zllm_mkdir_p(dir, 0755) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && (!(s->path = zllm_path_join(dir, name)) || !(s->first = calloc(nrepos + 1, sizeof *s->first))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !(s->spill = fopen(s->path, "w+b")))
    rc = zllm_error_set_errno("%s: cannot create the pairs' spill", s->path);
  if (rc < 0) {
    sv_pairs_free(s);
    return rc;
  }
  s->names = names;
  s->nrepos = nrepos;
  *out = s;
  return 0;
}

int sv_pairs_sink(void *ctx, const zllm_pair *p, size_t n)
{
  sv_pairs *s = ctx;
  for (size_t k = 0; k < n; k++)
    if (p[k].a >= s->nrepos || p[k].b >= s->nrepos)
      return zllm_error_set(ZLLM_ERROR, "pairs: a pair of repos %u and %u, past the hub's %zu", p[k].a, p[k].b,
                            s->nrepos);
  if (n && fwrite(p, sizeof *p, n, s->spill) != n)
    return zllm_error_set_errno("%s: cannot write the pairs' spill", s->path);
  for (size_t k = 0; k < n; k++)
    s->first[p[k].a]++;
  s->mine += n;
  return 0;
}

int sv_pairs_settle(sv_pairs *s, MPI_Comm comm)
{
  int rc = fflush(s->spill) == 0 ? 0 : zllm_error_set_errno("%s: cannot write the pairs' spill", s->path);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs: another rank could not write its spill");
  /* a repo leads pairs on one rank only (the one that compared them): the sum is its count */
  if (s->nrepos && MPI_Allreduce(MPI_IN_PLACE, s->first, (int)s->nrepos, MPI_UINT64_T, MPI_SUM, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "pairs: MPI_Allreduce of the counts failed");
  uint64_t at = 0;
  for (size_t i = 0; i <= s->nrepos; i++) {
    uint64_t n = i < s->nrepos ? s->first[i] : 0;
    s->first[i] = at;
    at += n;
  }
  s->total = at;
  return 0;
}

uint64_t sv_pairs_total(const sv_pairs *s)
{
  return s->total;
}

const char *sv_pairs_name(const sv_pairs *s, uint32_t i)
{
  return s->names[i];
}

/* The spill from its start, a block of pairs at a time. */
static int read_block(sv_pairs *s, zllm_pair *p, size_t max, size_t *n)
{
  *n = fread(p, sizeof *p, max, s->spill);
  if (*n < max && ferror(s->spill))
    return zllm_error_set_errno("%s: cannot read the pairs' spill", s->path);
  return 0;
}

/* ---- pairs.tsv ----------------------------------------------------------- */

/* This rank's rows, each repo's a block of the table (a repo's pairs are
 * consecutive in the spill: one rank compared them in a row):
 * sized (`put` 0), or written once placed. */
static int each_row(sv_pairs *s, sv_table *t, int put)
{
  size_t block = READ_PAIRS, n = 0;
  zllm_pair *p = malloc(block * sizeof *p);
  zllm_buf line = ZLLM_BUF_INIT;
  int rc = p ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && fseeko(s->spill, 0, SEEK_SET) != 0)
    rc = zllm_error_set_errno("%s: cannot rewind the pairs' spill", s->path);
  do {
    rc = rc ? rc : read_block(s, p, block, &n);
    for (size_t k = 0; rc == 0 && k < n; k++) {
      line.len = 0;
      rc = zllm_pair_row_put(&line, s->names[p[k].a], s->names[p[k].b], &p[k].m);
      rc = rc ? rc : put ? sv_table_put(t, p[k].a, line.data, line.len) : sv_table_size(t, p[k].a, line.len);
    }
  } while (rc == 0 && n == block);
  zllm_buf_free(&line);
  free(p);
  return rc;
}

/* The rows are made twice (sized, then written) rather than spilled as
 * text and copied: formatting costs less than writing them twice. */
int sv_pairs_write_tsv(sv_pairs *s, const char *path, MPI_Comm comm)
{
  sv_table *t = NULL;
  int rank;
  MPI_Comm_rank(comm, &rank);
  int rc = zllm_test_fail("pairs", rank);
  rc = rc ? rc : sv_table_open(&t, NULL, s->nrepos);
  rc = rc ? rc : each_row(s, t, 0);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs.tsv: another rank could not read its pairs");
  else if ((rc = sv_table_place(t, path, zllm_pairs_tsv_header, comm)) == 0)
    rc = sv_table_finish(t, path, each_row(s, t, 1) == 0, comm);
  sv_table_free(t);
  return rc;
}

/* ---- rounds, for stats.h5 -------------------------------------------------- */

int sv_pairs_rounds(sv_pairs *s, size_t round, sv_pairs_round_fn fn, void *ctx, MPI_Comm comm)
{
  unsigned long long mine = (s->mine + round - 1) / round, rounds = 0;
  zllm_pair *p = malloc((round + 1) * sizeof *p);
  uint64_t *row = malloc((round + 1) * sizeof *row), *next = calloc(s->nrepos + 1, sizeof *next);
  int rc = p && row && next ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && fseeko(s->spill, 0, SEEK_SET) != 0)
    rc = zllm_error_set_errno("%s: cannot rewind the pairs' spill", s->path);
  MPI_Allreduce(&mine, &rounds, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm);
  for (unsigned long long r = 0; r < rounds; r++) {
    size_t n = 0;
    if (rc == 0 && (rc = read_block(s, p, round, &n)) == 0)
      for (size_t k = 0; k < n; k++)
        row[k] = s->first[p[k].a] + next[p[k].a]++;
    /* every rank calls fn every round (a failed one with nothing): fn writes collectively */
    int frc = fn(ctx, p, row, rc == 0 ? n : 0);
    rc = rc ? rc : frc;
  }
  free(p);
  free(row);
  free(next);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs: another rank failed"));
}

void sv_pairs_free(sv_pairs *s)
{
  if (!s)
    return;
  if (s->spill)
    fclose(s->spill);
  if (s->path)
    unlink(s->path);
  free(s->path);
  free(s->first);
  free(s);
}
