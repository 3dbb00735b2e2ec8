/* zllm/mpi.h - MPI helpers.  Every function here is COLLECTIVE over `comm`:
 * all ranks must call it, in the same order, even ranks with nothing to send
 * or that met bad input, so no rank is ever left waiting. */
#ifndef ZLLM_MPI_H
#define ZLLM_MPI_H

#include <stdbool.h>
#include <stddef.h>

#include <mpi.h>

/* True on every rank iff `ok` is true on every rank. */
bool zllm_mpi_alltrue(bool ok, MPI_Comm comm);

/* Broadcasts a byte buffer from `root`.  On the other ranks *buf is replaced
 * by a malloc'd copy (caller frees).  Returns the same code on every rank. */
int zllm_mpi_bcast_bytes(char **buf, size_t *len, int root, MPI_Comm comm);

/* Gathers each rank's bytes to `root`, concatenated in rank order into a
 * malloc'd, NUL-terminated buffer (caller frees); other ranks get NULL.
 * Returns the same code on every rank. */
int zllm_mpi_gather_bytes(const char *send, size_t len, char **out, size_t *out_len, int root,
                          MPI_Comm comm);

/* Sum of a u64 over ranks, result on every rank. */
unsigned long long zllm_mpi_sum_u64(unsigned long long v, MPI_Comm comm);

#endif
