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
  /* writing the table */
  char *part;      /* its name until it is complete */
  int fd;
  uint64_t *done;  /* per key: bytes written */
  char *buf;       /* bytes for [wat, wat + have) */
  size_t have, cap;
  uint64_t wat;
};

int sv_table_open(sv_table **out, const char *spill, size_t nkeys)
{
  sv_table *t = calloc(1, sizeof *t);
  int rc = t ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (t)
    t->fd = -1;
  if (rc == 0 && nkeys > UINT32_MAX)
    rc = zllm_error_set(ZLLM_ELIMIT, "a table of %zu blocks: more than 2^32", nkeys);
  if (rc == 0 && (!(t->path = strdup(spill ? spill : "(a table)")) || !(t->order = calloc(nkeys + 1, sizeof *t->order)) ||
                  !(t->len = calloc(nkeys + 1, sizeof *t->len)) || !(t->at = calloc(nkeys + 1, sizeof *t->at))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && spill && !(t->spill = fopen(spill, "w+b")))
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
  if (!t->spill)
    return zllm_error_set(ZLLM_ERROR, "%s: a table without a spill", t->path);
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

/* Writes go through a buffer: blocks that follow each other in the file go
 * in one write. */
static int put_bytes(sv_table *t, uint64_t at, const char *data, size_t len)
{
  int rc = 0;
  if (t->have && t->wat + t->have != at) {
    rc = zllm_pwrite_full(t->fd, t->buf, t->have, t->wat, t->part);
    t->have = 0;
  }
  if (!t->have)
    t->wat = at;
  while (rc == 0 && len > 0) {
    if (t->have == t->cap) {
      rc = zllm_pwrite_full(t->fd, t->buf, t->have, t->wat, t->part);
      t->wat += t->have;
      t->have = 0;
    }
    size_t n = len < t->cap - t->have ? len : t->cap - t->have;
    memcpy(t->buf + t->have, data, n);
    t->have += n;
    data += n;
    len -= n;
  }
  return rc;
}

int sv_table_put(sv_table *t, size_t key, const char *rows, size_t len)
{
  if (key >= t->nkeys || t->done[key] + len > t->len[key])
    return zllm_error_set(ZLLM_ERROR, "%s: block %zu gets more rows than it was sized for", t->part, key);
  int rc = put_bytes(t, t->at[key] + t->done[key], rows, len);
  t->done[key] += len;
  return rc;
}

/* The spill into the table, each block at its place. */
static int copy_blocks(sv_table *t)
{
  char *chunk = malloc(COPY_BYTES);
  int rc = chunk ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && (fflush(t->spill) != 0 || fseeko(t->spill, 0, SEEK_SET) != 0))
    rc = zllm_error_set_errno("%s: cannot read a table's spill back", t->path);
  for (size_t i = 0; rc == 0 && i < t->norder; i++) {
    uint32_t k = t->order[i];
    for (uint64_t left = t->len[k]; rc == 0 && left > 0;) {
      size_t want = left < COPY_BYTES ? (size_t)left : COPY_BYTES;
      if (fread(chunk, 1, want, t->spill) != want)
        rc = zllm_error_set_errno("%s: a table's spill is short", t->path);
      rc = rc ? rc : sv_table_put(t, k, chunk, want);
      left -= want;
    }
  }
  free(chunk);
  return rc;
}

int sv_table_size(sv_table *t, size_t key, size_t len)
{
  if (key >= t->nkeys)
    return zllm_error_set(ZLLM_ERROR, "%s: block %zu of a table of %zu", t->path, key, t->nkeys);
  t->len[key] += len;
  return 0;
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
 * opens it to write its blocks. */
int sv_table_place(sv_table *t, const char *path, const char *header, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  size_t hl = strlen(header), plen = strlen(path) + sizeof ".zllm-part";
  uint64_t total = 0;
  int rc = (t->part = malloc(plen)) && (t->buf = malloc(COPY_BYTES)) && (t->done = calloc(t->nkeys + 1, 8))
               ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  t->cap = COPY_BYTES;
  if (rc == 0)
    snprintf(t->part, plen, "%s.zllm-part", path);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ENOMEM, "%s: out of memory on another rank", path);
  else
    rc = place_blocks(t, hl, &total, comm);
  if (rc == 0 && rank == 0) {
    t->fd = open(t->part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    rc = t->fd >= 0 ? 0 : zllm_error_set_errno("%s: cannot create", t->part);
    rc = rc ? rc : zllm_pwrite_full(t->fd, header, hl, 0, t->part);
    if (rc == 0 && ftruncate(t->fd, (off_t)total) != 0)
      rc = zllm_error_set_errno("%s: cannot size it", t->part);
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: another rank failed", path);
  if (rank != 0 && (t->fd = open(t->part, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    rc = zllm_error_set_errno("%s: cannot open", t->part);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: another rank failed", path));
}

/* Every rank's blocks written (each whole), rank 0 renames the file into place. */
int sv_table_finish(sv_table *t, const char *path, int ok, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  int rc = ok ? 0 : ZLLM_ERROR;
  if (rc == 0 && t->have) {
    rc = zllm_pwrite_full(t->fd, t->buf, t->have, t->wat, t->part);
    t->have = 0;
  }
  for (size_t k = 0; rc == 0 && k < t->nkeys; k++)
    if (t->done[k] != t->len[k])
      rc = zllm_error_set(ZLLM_ERROR, "%s: block %zu got %llu of its %llu bytes", t->part, k,
                          (unsigned long long)t->done[k], (unsigned long long)t->len[k]);
  if (rc == 0 && fsync(t->fd) != 0)
    rc = zllm_error_set_errno("%s: fsync failed", t->part);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: another rank could not write its rows", path);
  else if (rank == 0 && rename(t->part, path) != 0)
    rc = zllm_error_set_errno("%s: cannot rename into place", path);
  rc = zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "%s: rank 0 failed", path));
  if (rc < 0 && rank == 0)
    unlink(t->part);
  return rc;
}

int sv_table_write(sv_table *t, const char *path, const char *header, MPI_Comm comm)
{
  int rc = sv_table_place(t, path, header, comm);
  if (rc < 0)
    return rc;
  return sv_table_finish(t, path, copy_blocks(t) == 0, comm);
}

void sv_table_free(sv_table *t)
{
  if (!t)
    return;
  if (t->spill) {
    fclose(t->spill);
    unlink(t->path);
  }
  if (t->fd >= 0)
    close(t->fd);
  free(t->part);
  free(t->buf);
  free(t->done);
  free(t->path);
  free(t->order);
  free(t->len);
  free(t->at);
  free(t);
}
