/* Private to survey/: collective writes of row tables into a parallel HDF5
 * file.  Every call is COLLECTIVE over the file's communicator: all ranks
 * create the same dataset (same name, type and size) and each writes the
 * rows it owns — given as ranges [lo, hi) of row indices, possibly none —
 * with H5FD_MPIO_COLLECTIVE.  Every HDF5 return is checked; every dataset
 * gets `description` and `units` attributes. */
#ifndef ZLLM_SURVEY_H5OUT_H
#define ZLLM_SURVEY_H5OUT_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t lo, hi;
} h5_range;

typedef struct {
  hid_t file, dxpl;
  MPI_Comm comm;
  int failed; /* any call failed on this rank (agreed on at close) */
  int append; /* h5_group and h5_table find what an earlier round created and only write rows */
} h5_out;

int h5_open(h5_out *o, const char *path, MPI_Comm comm);
/* Closes; returns the same code on every rank. */
int h5_close(h5_out *o);
int h5_group(h5_out *o, const char *path, const char *description);
int h5_attr_str(h5_out *o, hid_t obj, const char *name, const char *value);

/* A dataset of `nrows` rows of `cols` elements (cols 0: one-dimensional),
 * type `type` (H5T_NATIVE_* or a fixed string type from h5_str_type); this
 * rank writes `data` (its rows in range order, each `cols` wide) into
 * `ranges`. */
int h5_table(h5_out *o, const char *path, hid_t type, uint64_t nrows, uint64_t cols, const h5_range *ranges,
             size_t nranges, const void *data, const char *description, const char *units);
/* The same in rounds: the dataset created (attributes included), then any
 * number of h5_table_rows calls, each writing this rank's rows of a round
 * (every rank calls each round, with no rows when it has none left), then
 * H5Dclose. */
int h5_table_create(h5_out *o, const char *path, hid_t type, uint64_t nrows, uint64_t cols, const char *description,
                    const char *units, hid_t *dset);
int h5_table_rows(h5_out *o, hid_t d, const char *path, hid_t type, uint64_t cols, const h5_range *ranges,
                  size_t nranges, const void *data);
/* A fixed-length (NUL-padded) string type of `len` bytes; the caller closes it. */
hid_t h5_str_type(size_t len);

#endif
