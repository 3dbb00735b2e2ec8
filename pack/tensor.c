/* Decoding a stored tensor, part by part: dup -> the canonical tensor,
 * bitx -> planes merged with the base's same part, solo -> planes alone. */
#include <stdlib.h>
#include <string.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"

int ar_tensor_get(zllm_archive *a, int64_t id, ar_tensor *t)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT dtype, nelem, method, dup_of, base, depth FROM tensors WHERE id = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    return zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld is not in the catalog", a->dir, (long long)id);
  }
  memset(t, 0, sizeof *t);
  t->id = id;
  const char *dt = (const char *)sqlite3_column_text(st, 0), *m = (const char *)sqlite3_column_text(st, 2);
  if (!dt || zllm_dtype_from_name(&t->dtype, dt) < 0 || !m)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld has a bad dtype or method", a->dir, (long long)id);
  t->nelem = (uint64_t)sqlite3_column_int64(st, 1);
  snprintf(t->method, sizeof t->method, "%s", m ? m : "");
  t->dup_of = sqlite3_column_int64(st, 3);
  t->base = sqlite3_column_int64(st, 4);
  t->depth = sqlite3_column_int(st, 5);
  sqlite3_finalize(st);
  return rc;
}

static int plane_blob(zllm_archive *a, int64_t id, uint64_t part, int plane, int64_t *blob)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT blob FROM planes WHERE tensor = ? AND part = ? AND plane = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)part);
  sqlite3_bind_int(st, 3, plane);
  if (sqlite3_step(st) == SQLITE_ROW)
    *blob = sqlite3_column_int64(st, 0);
  else
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld has no plane %d of part %llu", a->dir, (long long)id, plane,
                        (unsigned long long)part);
  sqlite3_finalize(st);
  return rc;
}

int ar_tensor_decode_part(zllm_archive *a, int64_t id, uint64_t part, uint8_t *dst, int depth)
{
  ar_tensor t;
  uint8_t *planes[ZLLM_BITX_MAX_PLANES] = {0}, *base = NULL;
  /* each BitX level may add one hop through a dup */
  int rc = depth > 2 * ZLLM_MAX_CHAIN + 2
               ? zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld: base chain deeper than %d", a->dir, (long long)id,
                                ZLLM_MAX_CHAIN)
               : ar_tensor_get(a, id, &t);
  if (rc < 0)
    return rc;
  if (strcmp(t.method, "dup") == 0)
    return ar_tensor_decode_part(a, t.dup_of, part, dst, depth + 1);
  uint64_t first = part * ZLLM_PART_ELEMS;
  if (first >= t.nelem && !(t.nelem == 0 && part == 0))
    return zllm_error_set(ZLLM_EINVAL, "%s: tensor %lld has no part %llu", a->dir, (long long)id,
                          (unsigned long long)part);
  size_t n = (size_t)(t.nelem - first < ZLLM_PART_ELEMS ? t.nelem - first : ZLLM_PART_ELEMS);
  size_t pl = zllm_bitx_plane_len(t.dtype, n), es = zllm_dtype_get(t.dtype)->size;
  int np = zllm_bitx_planes(t.dtype), bitx = strcmp(t.method, "bitx") == 0;
  for (int p = 0; rc == 0 && p < np; p++) {
    int64_t blob = 0;
    if (!(planes[p] = malloc(pl ? pl : 1)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = rc ? rc : plane_blob(a, id, part, p, &blob);
    rc = rc ? rc : ar_stream_read(a, blob, planes[p], pl);
  }
  size_t bytes = n * es;
  if (rc == 0 && bitx && !(base = malloc(bytes ? bytes : 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && bitx)
    rc = ar_tensor_decode_part(a, t.base, part, base, depth + 1);
  if (rc == 0)
    zllm_bitx_merge(t.dtype, (const uint8_t *const *)planes, base, n, dst);
  for (int p = 0; p < np; p++)
    free(planes[p]);
  free(base);
  return rc;
}
