/* Collective row-table writes into parallel HDF5 (see survey/h5out.h). */
#include <string.h>

#include "survey/h5out.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"

/* Rows per chunk of a deflated string column. */
#define H5_STRING_CHUNK 8192

static int fail(h5_out *o, const char *what, const char *path)
{
  o->failed = 1;
  int rc = zllm_error_set(ZLLM_EIO, "stats.h5: %s failed for %s", what, path);
  ZLLM_ERR("%s", zllm_error_last());
  return rc;
}

int h5_open(h5_out *o, const char *path, MPI_Comm comm)
{
  memset(o, 0, sizeof *o);
  o->comm = comm;
  o->file = o->dxpl = H5I_INVALID_HID;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported through our messages */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
    if (fapl >= 0)
      H5Pclose(fapl);
    return fail(o, "H5Pset_fapl_mpio", path);
  }
  o->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  o->dxpl = H5Pcreate(H5P_DATASET_XFER);
  if (o->file < 0 || o->dxpl < 0 || H5Pset_dxpl_mpio(o->dxpl, H5FD_MPIO_COLLECTIVE) < 0)
    return fail(o, "H5Fcreate", path);
  return 0;
}

int h5_close(h5_out *o)
{
  if (o->dxpl >= 0 && H5Pclose(o->dxpl) < 0)
    o->failed = 1;
  if (o->file >= 0 && H5Fclose(o->file) < 0)
    o->failed = 1;
  o->file = o->dxpl = H5I_INVALID_HID;
  if (!zllm_mpi_alltrue(!o->failed, o->comm))
    return zllm_error_set(ZLLM_EIO, "stats.h5: a rank failed to write");
  return 0;
}

hid_t h5_str_type(size_t len)
{
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0 && (H5Tset_size(t, len) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0)) {
    H5Tclose(t);
    return H5I_INVALID_HID;
  }
  return t;
}

int h5_attr_str(h5_out *o, hid_t obj, const char *name, const char *value)
{
  hid_t t = h5_str_type(strlen(value) ? strlen(value) : 1), s = H5Screate(H5S_SCALAR), a = H5I_INVALID_HID;
  int ok = t >= 0 && s >= 0 && (a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
           H5Awrite(a, t, strlen(value) ? value : " ") >= 0;
  if (a >= 0)
    H5Aclose(a);
  if (s >= 0)
    H5Sclose(s);
  if (t >= 0)
    H5Tclose(t);
  return ok ? 0 : fail(o, "attribute", name);
}

int h5_group(h5_out *o, const char *path, const char *description)
{
  if (o->append) /* made by the first round */
    return 0;
  hid_t g = H5Gcreate2(o->file, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0)
    return fail(o, "H5Gcreate", path);
  int rc = h5_attr_str(o, g, "description", description);
  if (H5Gclose(g) < 0)
    rc = fail(o, "H5Gclose", path);
  return rc;
}

/* This rank's rows of the file space, and a memory space of the same size. */
static int select_rows(hid_t fspace, hid_t *mspace, uint64_t cols, const h5_range *r, size_t nr)
{
  hsize_t total = 0;
  if (H5Sselect_none(fspace) < 0)
    return -1;
  for (size_t i = 0; i < nr; i++) {
    if (r[i].hi <= r[i].lo)
      continue;
    hsize_t start[2] = {r[i].lo, 0}, count[2] = {r[i].hi - r[i].lo, cols ? cols : 1};
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_OR, start, NULL, count, NULL) < 0)
      return -1;
    total += r[i].hi - r[i].lo;
  }
  hsize_t mdims[2] = {total, cols ? cols : 1};
  *mspace = H5Screate_simple(cols ? 2 : 1, mdims, NULL);
  if (*mspace < 0)
    return -1;
  return total ? 0 : H5Sselect_none(*mspace);
}

int h5_table_create(h5_out *o, const char *path, hid_t type, uint64_t nrows, uint64_t cols, const char *description,
                    const char *units, hid_t *dset)
{
  hsize_t dims[2] = {nrows, cols};
  hid_t fspace = H5Screate_simple(cols ? 2 : 1, dims, NULL), d = H5I_INVALID_HID, dcpl = H5P_DEFAULT;
  int rc = fspace >= 0 ? 0 : fail(o, "H5Screate", path);
  /* fixed-length names are mostly padding: stored deflated, in chunks */
  if (rc == 0 && !cols && nrows >= H5_STRING_CHUNK && H5Tget_class(type) == H5T_STRING) {
    hsize_t chunk[1] = {H5_STRING_CHUNK};
    if ((dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_deflate(dcpl, 1) < 0)
      rc = fail(o, "H5Pset_deflate", path);
  }
  if (rc == 0 && (d = H5Dcreate2(o->file, path, type, fspace, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
    rc = fail(o, "H5Dcreate", path);
  if (dcpl != H5P_DEFAULT && dcpl >= 0)
    H5Pclose(dcpl);
  rc = rc ? rc : h5_attr_str(o, d, "description", description);
  rc = rc ? rc : h5_attr_str(o, d, "units", units);
  if (fspace >= 0)
    H5Sclose(fspace);
  if (rc < 0 && d >= 0)
    H5Dclose(d);
  *dset = rc < 0 ? H5I_INVALID_HID : d;
  return rc;
}

int h5_table_rows(h5_out *o, hid_t d, const char *path, hid_t type, uint64_t cols, const h5_range *ranges,
                  size_t nranges, const void *data)
{
  hid_t fspace = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID, mspace = H5I_INVALID_HID;
  hssize_t nrows = fspace >= 0 ? H5Sget_simple_extent_npoints(fspace) : -1;
  int rc = fspace >= 0 && nrows >= 0 ? 0 : fail(o, "H5Dget_space", path);
  if (rc == 0 && select_rows(fspace, &mspace, cols, ranges, nranges) < 0)
    rc = fail(o, "selection", path);
  /* every rank calls H5Dwrite, even with nothing selected: the write is
   * collective; a rank that could not prepare it stops everyone first.  An
   * empty table (same size on every rank) is created and left unwritten. */
  if (!zllm_mpi_alltrue(rc == 0, o->comm))
    rc = rc ? rc : fail(o, "another rank's preparation", path);
  else if (nrows > 0 && H5Dwrite(d, type, mspace, fspace, o->dxpl, data ? data : "") < 0)
    rc = fail(o, "H5Dwrite", path);
  if (mspace >= 0)
    H5Sclose(mspace);
  if (fspace >= 0)
    H5Sclose(fspace);
  return rc;
}

int h5_table(h5_out *o, const char *path, hid_t type, uint64_t nrows, uint64_t cols, const h5_range *ranges,
             size_t nranges, const void *data, const char *description, const char *units)
{
  hid_t d = H5I_INVALID_HID;
  int rc = 0;
  if (!o->append)
    rc = h5_table_create(o, path, type, nrows, cols, description, units, &d);
  else if ((d = H5Dopen2(o->file, path, H5P_DEFAULT)) < 0)
    rc = fail(o, "H5Dopen", path);
  if (!zllm_mpi_alltrue(rc == 0, o->comm))
    rc = rc ? rc : fail(o, "another rank's dataset", path);
  rc = rc ? rc : h5_table_rows(o, d, path, type, cols, ranges, nranges, data);
  if (d >= 0)
    H5Dclose(d);
  return rc;
}
