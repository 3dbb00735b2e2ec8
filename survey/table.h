/* Private to survey/: a TSV table that every rank writes in place.  A table
 * is a sequence of blocks, one per key (a repo, say), in key order; each
 * block's rows come from one rank, whole and at once.  A rank appends its
 * blocks in any key order to a spill under OUT (bounded memory: 20 bytes
 * per key, the rows on disk); sv_table_write sums the blocks' sizes over
 * the ranks, which places every block, and each rank copies its blocks
 * into the file at their places.  The file is the one a single process
 * would write, for any number of ranks. */
#ifndef ZLLM_SURVEY_TABLE_H
#define ZLLM_SURVEY_TABLE_H

#include <stddef.h>

#include <mpi.h>

typedef struct sv_table sv_table;

/* A table of `nkeys` blocks spilled to `spill` (created; removed by
 * sv_table_free), or without a spill (NULL): then a rank sizes its blocks
 * first (sv_table_size) and writes them once placed (sv_table_place,
 * sv_table_put, sv_table_finish): rows made twice, written once.  Local. */
int sv_table_open(sv_table **out, const char *spill, size_t nkeys);
/* Appends rows to the block of `key`: a block is written by one call or by
 * calls in a row (another key in between is an error). */
int sv_table_add(sv_table *t, size_t key, const char *rows, size_t len);
/* `path` with `header` first, then every rank's blocks in key order;
 * replaced atomically.  COLLECTIVE. */
int sv_table_write(sv_table *t, const char *path, const char *header, MPI_Comm comm);
/* Without a spill: `len` more bytes in the block of `key`. */
int sv_table_size(sv_table *t, size_t key, size_t len);
/* The blocks placed and the file made (rank 0) and opened.  COLLECTIVE. */
int sv_table_place(sv_table *t, const char *path, const char *header, MPI_Comm comm);
/* Rows of `key`'s block, in order, up to the size it was given. */
int sv_table_put(sv_table *t, size_t key, const char *rows, size_t len);
/* Every block written whole (ok 0: this rank failed), the file renamed
 * into place.  COLLECTIVE. */
int sv_table_finish(sv_table *t, const char *path, int ok, MPI_Comm comm);
void sv_table_free(sv_table *t); /* accepts NULL */

#endif
