/* A TSV table written in place by every rank (survey/table.h). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/table.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/mpi.h"

#define COPY_BYTES zllm_bounded((size_t)4 << 20, 100) /* bytes copied into the table per write */

struct sv_table {
  char *path;      /* the spill */
  FILE *spill;     /* this rank's blocks, in the order they came */
  size_t nkeys;
  uint32_t *order; /* the keys of those blocks, in that order */
  size_t norder;
  uint64_t *len;   /* per key: its block's bytes here */
  uint64_t *at;    /* per key: where its block starts in the table (sv_table_write) */
  size_t last;     /* the key of the block being appended */
};

int sv_table_open(sv_table **out, const char *spill, size_t nkeys)
{
  sv_table *t = calloc(1, sizeof *t);
  int rc = t ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && nkeys > UINT32_MAX)
    rc = zllm_error_set(ZLLM_ELIMIT, "a table of %zu blocks: more than 2^32", nkeys);
  if (rc == 0 && (!(t->path = strdup(spill)) || !(t->order = calloc(nkeys + 1, sizeof *t->order)) ||
                  !(t->len = calloc(nkeys + 1, sizeof *t->len)) || !(t->at = calloc(nkeys + 1, sizeof *t->at))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !(t->spill = fopen(spill, "w+b")))
    rc = zllm_error_set_errno("%s: cannot create a table's spill", spill);
  if (rc < 0) {
    sv_table_free(t);
    return rc;
  }
  t->nkeys = nkeys;
  t->last = SIZE_MAX;
  *out = t;
  return 0;
}

int sv_table_add(sv_table *t, size_t key, const char *rows, size_t len)
{
  if (key >= t->nkeys)
    return zllm_error_set(ZLLM_ERROR, "%s: block %zu of a table of %zu", t->path, key, t->nkeys);
  if (key != t->last && t->len[key])
    return zllm_error_set(ZLLM_ERROR, "%s: block %zu came in two pieces", t->path, key);
  if (len && fwrite(rows, 1, len, t->spill) != len)
    return zllm_error_set_errno("%s: cannot write a table's spill", t->path);
  if (len && !t->len[key])
    t->order[t->norder++] = (uint32_t)key;
  t->len[key] += len;
  t->last = len ? key : t->last;
  return 0;
}

/* The spill into the table, each block at its place; blocks that follow
 * each other there go in one write. */
static int copy_blocks(sv_table *t, int fd, const char *path)
{
  size_t cap = COPY_BYTES, have = 0;
  char *buf = malloc(cap);
  uint64_t at = 0; /* where buf's bytes go */
  int rc = buf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && (fflush(t->spill) != 0 || fseeko(t->spill, 0, SEEK_SET) != 0))
    rc = zllm_error_set_errno("%s: cannot read a table's spill back", t->path);
  for (size_t i = 0; rc == 0 && i < t->norder; i++) {
    uint32_t k = t->order[i];
    if (have && at + have != t->at[k]) {
      rc = zllm_pwrite_full(fd, buf, have, at, path);
      have = 0;
    }
    if (!have)
      at = t->at[k];
    for (uint64_t left = t->len[k]; rc == 0 && left > 0;) {
      if (have == cap) {
        rc = zllm_pwrite_full(fd, buf, have, at, path);
        at += have;
        have = 0;
      }
      size_t want = left < cap - have ? (size_t)left : cap - have;
      if (rc == 0 && fread(buf + have, 1, want, t->spill) != want)
        rc = zllm_error_set_errno("%s: a table's spill is short", t->path);
      have += want;
      left -= want;
    }
  }
  rc = rc ? rc : have ? zllm_pwrite_full(fd, buf, have, at, path) : 0;
  free(buf);
  return rc;
}

/* Every block's place: the sizes summed over the ranks (a block is one
 * rank's), then added up in key order after the header. */
static int place_blocks(sv_table *t, size_t header, uint64_t *total, MPI_Comm comm)
{
  memcpy(t->at, t->len, t->nkeys * sizeof *t->at);
  if (t->nkeys && MPI_Allreduce(MPI_IN_PLACE, t->at, (int)t->nkeys, MPI_UINT64_T, MPI_SUM, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "%s: MPI_Allreduce of the block sizes failed", t->path);
  uint64_t at = header;
  for (size_t k = 0; k < t->nkeys; k++) {
    uint64_t n = t->at[k];
    t->at[k] = at;
    at += n;
  }
  *total = at;
  return 0;
}

/* Rank 0 makes the file at its full size with the header; every rank
 * copies its blocks in; rank 0 renames it into place. */
int sv_table_write(sv_table *t, const char *path, const char *header, MPI_Comm comm)
{
  int rank, fd = -1;
  MPI_Comm_rank(comm, &rank);
  size_t hl = strlen(header), plen = strlen(path) + sizeof ".zllm-part";
  char *part = malloc(plen);
  uint64_t total = 0;
  int rc = part ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0)
    snprintf(part, plen, "%s.zllm-part", path);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ENOMEM, "%s: out of memory on another rank", path);
  else
    rc = place_blocks(t, hl, &total, comm);
  if (rc == 0 && rank == 0) {
    fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    rc = fd >= 0 ? 0 : zllm_error_set_errno("%s: cannot create", part);
    rc = rc ? rc : zllm_pwrite_full(fd, header, hl, 0, part);
    if (rc == 0 && ftruncate(fd, (off_t)total) != 0)
      rc = zllm_error_set_errno("%s: cannot size it", part);
  }
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: another rank failed", path);
    goto done;
  }
  if (rank != 0 && (fd = open(part, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    rc = zllm_error_set_errno("%s: cannot open", part);
  rc = rc ? rc : copy_blocks(t, fd, part);
  if (rc == 0 && fsync(fd) != 0)
    rc = zllm_error_set_errno("%s: fsync failed", part);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: another rank could not write its rows", path);
  else if (rank == 0 && rename(part, path) != 0)
    rc = zllm_error_set_errno("%s: cannot rename into place", path);
  rc = zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: rank 0 failed", path));
done:
  if (fd >= 0)
    close(fd);
  if (rc < 0 && rank == 0 && part)
    unlink(part);
  free(part);
  return rc;
}

void sv_table_free(sv_table *t)
{
  if (!t)
    return;
  if (t->spill) {
    fclose(t->spill);
    unlink(t->path);
  }
  free(t->path);
  free(t->order);
  free(t->len);
  free(t->at);
  free(t);
}
