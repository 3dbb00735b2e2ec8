#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
