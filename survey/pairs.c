/* The compared pairs, spilled by the ranks that compared them and written
 * in place from there (survey/pairs.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/pairs.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

#define READ_PAIRS zllm_bounded((size_t)1 << 16, 3) /* pairs read back from the spill at a time */
#define WRITE_BYTES zllm_bounded((size_t)4 << 20, 100) /* pairs.tsv bytes buffered before a write */

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
  /* a repo leads pairs on one rank only (its signature's owner): the sum is its count */
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

typedef struct {
  sv_pairs *s;
  FILE *text;       /* this rank's rows, formatted once, in spill order */
  uint32_t *order;  /* the repos leading them, in that order (a repo's rows are consecutive) */
  size_t norder;
  uint64_t *bytes;  /* per repo: its rows' bytes; then where they start in pairs.tsv */
  uint64_t *len;    /* per repo: its rows' bytes */
} tsv_rows;

/* This rank's rows into its text spill, their bytes counted per repo. */
static int tsv_format(tsv_rows *t)
{
  sv_pairs *s = t->s;
  size_t block = READ_PAIRS, n = 0;
  zllm_pair *p = malloc(block * sizeof *p);
  zllm_buf out = ZLLM_BUF_INIT;
  int rc = p ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && fseeko(s->spill, 0, SEEK_SET) != 0)
    rc = zllm_error_set_errno("%s: cannot rewind the pairs' spill", s->path);
  do {
    rc = rc ? rc : read_block(s, p, block, &n);
    for (size_t k = 0; rc == 0 && k < n; k++) {
      size_t before = out.len;
      rc = zllm_pair_row_put(&out, s->names[p[k].a], s->names[p[k].b], &p[k].m);
      if (rc == 0 && t->len[p[k].a] == 0)
        t->order[t->norder++] = p[k].a;
      t->len[p[k].a] += out.len - before;
    }
    if (rc == 0 && out.len && fwrite(out.data, 1, out.len, t->text) != out.len)
      rc = zllm_error_set_errno("%s: cannot write the rows' spill", s->path);
    out.len = 0;
  } while (rc == 0 && n == block);
  if (rc == 0 && (fflush(t->text) != 0 || fseeko(t->text, 0, SEEK_SET) != 0))
    rc = zllm_error_set_errno("%s: cannot write the rows' spill", s->path);
  zllm_buf_free(&out);
  free(p);
  return rc;
}

/* The text spill into pairs.tsv, each repo's rows at their place; runs of
 * repos that follow each other there go in one write. */
static int tsv_place(tsv_rows *t, int fd, const char *path)
{
  size_t cap = WRITE_BYTES, have = 0;
  char *buf = malloc(cap);
  uint64_t at = 0; /* where buf's bytes go */
  int rc = buf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < t->norder; i++) {
    uint32_t a = t->order[i];
    if (have && at + have != t->bytes[a]) {
      rc = zllm_pwrite_full(fd, buf, have, at, path);
      have = 0;
    }
    if (!have)
      at = t->bytes[a];
    for (uint64_t left = t->len[a]; rc == 0 && left > 0;) {
      if (have == cap) {
        rc = zllm_pwrite_full(fd, buf, have, at, path);
        at += have;
        have = 0;
      }
      size_t want = left < cap - have ? (size_t)left : cap - have;
      if (rc == 0 && fread(buf + have, 1, want, t->text) != want)
        rc = zllm_error_set_errno("%s: the rows' spill is short", t->s->path);
      have += want;
      left -= want;
    }
  }
  rc = rc ? rc : have ? zllm_pwrite_full(fd, buf, have, at, path) : 0;
  free(buf);
  return rc;
}

/* Rank 0 makes the file at its full size with the header; then every rank
 * writes its rows; then rank 0 puts it in place. */
int sv_pairs_write_tsv(sv_pairs *s, const char *path, MPI_Comm comm)
{
  int rank, fd = -1;
  MPI_Comm_rank(comm, &rank);
  size_t hl = strlen(zllm_pairs_tsv_header), plen = strlen(path) + sizeof ".zllm-part",
         tlen = strlen(s->path) + sizeof ".tsv";
  char *part = malloc(plen), *text = malloc(tlen);
  tsv_rows t = {.s = s};
  if (text) { /* beside the spill, in OUT: node-local /tmp may be small */
    snprintf(text, tlen, "%s.tsv", s->path);
    t.text = fopen(text, "w+b");
  }
  t.bytes = calloc(s->nrepos + 1, sizeof *t.bytes);
  t.len = calloc(s->nrepos + 1, sizeof *t.len);
  t.order = calloc(s->nrepos + 1, sizeof *t.order);
  int rc = part && text && t.bytes && t.len && t.order ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !t.text)
    rc = zllm_error_set_errno("%s: cannot create", text);
  if (rc == 0)
    snprintf(part, plen, "%s.zllm-part", path);
  rc = rc ? rc : tsv_format(&t);
  for (size_t i = 0; rc == 0 && i < s->nrepos; i++)
    t.bytes[i] = t.len[i];
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs.tsv: another rank could not read its pairs");
  else if (s->nrepos && MPI_Allreduce(MPI_IN_PLACE, t.bytes, (int)s->nrepos, MPI_UINT64_T, MPI_SUM, comm) != MPI_SUCCESS)
    rc = zllm_error_set(ZLLM_EMPI, "pairs.tsv: MPI_Allreduce of the sizes failed");
  uint64_t at = hl;
  for (size_t i = 0; rc == 0 && i <= s->nrepos; i++) {
    uint64_t n = i < s->nrepos ? t.bytes[i] : 0;
    t.bytes[i] = at;
    at += n;
  }
  if (rc == 0 && rank == 0) {
    fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    rc = fd >= 0 ? 0 : zllm_error_set_errno("%s: cannot create", part);
    rc = rc ? rc : zllm_pwrite_full(fd, zllm_pairs_tsv_header, hl, 0, part);
    if (rc == 0 && ftruncate(fd, (off_t)at) != 0)
      rc = zllm_error_set_errno("%s: cannot size it", part);
  }
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs.tsv: another rank failed");
    goto done;
  }
  if (rank != 0 && (fd = open(part, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    rc = zllm_error_set_errno("%s: cannot open", part);
  rc = rc ? rc : tsv_place(&t, fd, part);
  if (rc == 0 && fsync(fd) != 0)
    rc = zllm_error_set_errno("%s: fsync failed", part);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs.tsv: another rank could not write its rows");
  else if (rank == 0 && rename(part, path) != 0)
    rc = zllm_error_set_errno("%s: cannot rename into place", path);
  rc = zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "pairs.tsv: rank 0 failed"));
done:
  if (fd >= 0)
    close(fd);
  if (rc < 0 && rank == 0 && part)
    unlink(part);
  if (t.text) {
    fclose(t.text);
    unlink(text);
  }
  free(text);
  free(t.bytes);
  free(t.len);
  free(t.order);
  free(part);
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
