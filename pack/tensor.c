/* Decoding a stored tensor, part by part: dup -> the canonical tensor,
 * bitx -> planes merged with the base's same part, solo -> planes alone. */
#include <stdlib.h>
#include <string.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"

static const char *layout_names[] = {"field", "u16", "bytes"};

const char *ar_layout_name(ar_layout l) { return layout_names[l]; }

int ar_layout_parse(const char *name, ar_layout *l)
{
  for (int i = 0; i < 3; i++)
    if (name && strcmp(name, layout_names[i]) == 0) {
      *l = (ar_layout)i;
      return 0;
    }
  return ZLLM_EFORMAT;
}

zllm_dtype ar_view_dtype(zllm_dtype dt, ar_layout l, uint64_t len)
{
  if (l == AR_LAYOUT_FIELD)
    return dt;
  return l == AR_LAYOUT_U16 && len % 2 == 0 ? ZLLM_DT_BF16 : ZLLM_DT_U8;
}

int ar_tensor_get(zllm_archive *a, int64_t id, ar_tensor *t)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT dtype, nelem, method, dup_of, base, depth, len, layout FROM tensors WHERE id = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    ar_finalize(a, st);
    return zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld is not in the catalog", a->dir, (long long)id);
  }
  memset(t, 0, sizeof *t);
  t->id = id;
  const char *dt = NULL, *m = NULL, *layout = NULL;
  int64_t nelem = 0, depth = 0, len = 0;
  rc = ar_col_text(a, st, 0, &dt);
  rc = rc ? rc : ar_col_int(a, st, 1, &nelem);
  rc = rc ? rc : ar_col_text(a, st, 2, &m);
  rc = rc ? rc : ar_col_int_or_null(a, st, 3, &t->dup_of);
  rc = rc ? rc : ar_col_int_or_null(a, st, 4, &t->base);
  rc = rc ? rc : ar_col_int(a, st, 5, &depth);
  rc = rc ? rc : ar_col_int(a, st, 6, &len);
  rc = rc ? rc : ar_col_text(a, st, 7, &layout);
  if (rc == 0 && (zllm_dtype_from_name(&t->dtype, dt) < 0 || strlen(m) >= sizeof t->method))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld has a bad dtype or method", a->dir, (long long)id);
  t->nelem = (uint64_t)nelem;
  t->depth = depth < 0 || depth > 1000 ? 1000 : (int)depth; /* the chain limit refuses it on decode */
  t->len = (uint64_t)len;
  if (rc == 0)
    snprintf(t->method, sizeof t->method, "%s", m);
  if (rc == 0 && ar_layout_parse(layout, &t->layout) < 0)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld has an unknown plane layout", a->dir, (long long)id);
  if (rc == 0 && t->len != t->nelem * zllm_dtype_get(t->dtype)->size)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld: length and shape disagree", a->dir, (long long)id);
  ar_finalize(a, st);
  return rc;
}

int ar_part_blob(zllm_archive *a, int64_t id, uint64_t part, int64_t *blob)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT blob FROM parts WHERE tensor = ? AND part = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)part);
  if (sqlite3_step(st) == SQLITE_ROW)
    rc = ar_col_int(a, st, 0, blob);
  else
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld has no part %llu", a->dir, (long long)id,
                        (unsigned long long)part);
  ar_finalize(a, st);
  return rc;
}



/* Bytes [off, off + len) of a tensor, whatever parts they span. */
static int decode_range(zllm_archive *a, int64_t id, uint64_t off, size_t len, uint8_t *dst, int depth)
{
  uint8_t *tmp = ar_buf_get(a);
  int rc = tmp ? 0 : ZLLM_ENOMEM;
  for (uint64_t at = off; rc == 0 && at < off + len;) {
    uint64_t part = at / ZLLM_PART_BYTES, in = at - part * ZLLM_PART_BYTES;
    size_t n = (size_t)(ZLLM_PART_BYTES - in < off + len - at ? ZLLM_PART_BYTES - in : off + len - at);
    rc = ar_tensor_decode_part(a, id, part, tmp, depth);
    if (rc == 0)
      memcpy(dst + (at - off), tmp + in, n);
    at += n;
  }
  ar_buf_put(a, tmp);
  return rc;
}

int ar_base_as(zllm_archive *a, const ar_tensor *base, zllm_dtype to, uint64_t first, size_t n, uint8_t *dst,
               int depth)
{
  size_t eb = zllm_dtype_get(base->dtype)->size, et = zllm_dtype_get(to)->size;
  size_t step = ZLLM_PART_BYTES / eb;
  uint8_t *buf = ar_buf_get(a);
  int rc = buf ? 0 : ZLLM_ENOMEM;
  if (rc == 0 && first + n > base->nelem)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: base tensor %lld is shorter than its fine-tune", a->dir, (long long)base->id);
  for (size_t done = 0; rc == 0 && done < n; done += step) {
    size_t m = n - done < step ? n - done : step;
    rc = decode_range(a, base->id, (first + done) * eb, m * eb, buf, depth);
    for (size_t i = 0; rc == 0 && i < m; i++)
      zllm_dtype_store_float(to, dst + (done + i) * et, zllm_dtype_load_float(base->dtype, buf + i * eb));
  }
  ar_buf_put(a, buf);
  return rc;
}

#define AR_MAX_HOPS (2 * ZLLM_MAX_CHAIN + 2) /* each BitX level may add one hop through a dup */

static int chain_too_deep(zllm_archive *a, int64_t id)
{
  return zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld: base chain deeper than %d", a->dir, (long long)id,
                        ZLLM_MAX_CHAIN);
}

/* The dup and base hops below tensor `id`, walked from the catalog alone
 * before a decode allocates anything: each level of a decode holds part
 * buffers, so a cycle or a chain past the limit (a catalog from elsewhere)
 * is refused here rather than after it has grown the process level by level. */
int ar_tensor_chain(zllm_archive *a, int64_t id, ar_tensor *first)
{
  int64_t at = id;
  for (int hops = 0; hops <= AR_MAX_HOPS; hops++) {
    ar_tensor t;
    int rc = ar_tensor_get(a, at, &t);
    if (rc < 0)
      return rc;
    if (hops == 0) /* the decode goes on with this row: not read twice */
      *first = t;
    if (strcmp(t.method, "dup") == 0)
      at = t.dup_of;
    else if (strcmp(t.method, "bitx") == 0)
      at = t.base;
    else
      return 0;
  }
  return chain_too_deep(a, id);
}

int ar_tensor_decode_part(zllm_archive *a, int64_t id, uint64_t part, uint8_t *dst, int depth)
{
  ar_tensor t;
  uint8_t *planes[ZLLM_BITX_MAX_PLANES] = {0}, *base = NULL;
  int rc = depth > AR_MAX_HOPS ? chain_too_deep(a, id)
           : depth == 0      ? ar_tensor_chain(a, id, &t)
                             : ar_tensor_get(a, id, &t);
  if (rc < 0)
    return rc;
  if (strcmp(t.method, "dup") == 0)
    return ar_tensor_decode_part(a, t.dup_of, part, dst, depth + 1);
  if (strcmp(t.method, AR_EXTERN) == 0)
    return a->extern_part ? a->extern_part(a->extern_ctx, id, part, dst, depth + 1)
                          : zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld is stored in another archive", a->dir,
                                           (long long)id);
  size_t hit_len = 0;
  const uint8_t *hit = depth > 0 && a->cache ? ar_cache_get(a->cache, id, part, &hit_len) : NULL;
  if (hit && hit_len == ar_part_len(t.len, part)) { /* decoded before, for another fine-tune */
    memcpy(dst, hit, hit_len);
    ar_cache_release(a->cache, id, part);
    return 0;
  }
  if (hit)
    ar_cache_release(a->cache, id, part);
  if (part >= ar_nparts(t.len))
    return zllm_error_set(ZLLM_EINVAL, "%s: tensor %lld has no part %llu", a->dir, (long long)id,
                          (unsigned long long)part);
  zllm_dtype view = ar_view_dtype(t.dtype, t.layout, t.len);
  size_t bytes = ar_part_len(t.len, part), n = bytes / zllm_dtype_get(view)->size;
  size_t pl = zllm_bitx_plane_len(view, n);
  int np = zllm_bitx_planes(view), bitx = strcmp(t.method, "bitx") == 0;
  int64_t blob = 0;
  for (int p = 0; rc == 0 && p < np; p++)
    if (!(planes[p] = ar_buf_get(a))) /* a plane never exceeds a part */
      rc = ZLLM_ENOMEM;
  rc = rc ? rc : ar_part_blob(a, id, part, &blob);
  double t0 = ar_now();
  rc = rc ? rc : ar_part_read(a, blob, np, pl, planes);
  a->t_planes += ar_now() - t0;
  ar_tensor bt;
  const uint8_t *base_bytes = NULL; /* the base's part: in the cache, or decoded into `base` */
  if (rc == 0 && bitx)
    rc = ar_tensor_get(a, t.base, &bt);
  if (rc == 0 && bitx && bt.dtype == t.dtype && a->cache) {
    /* read where the cache keeps it (pinned until the merge is done), not copied out */
    size_t hl = 0;
    const uint8_t *h = ar_cache_get(a->cache, t.base, part, &hl);
    base_bytes = h && hl == bytes ? h : NULL;
    if (h && !base_bytes)
      ar_cache_release(a->cache, t.base, part);
  }
  int decode_base = rc == 0 && bitx && !base_bytes;
  if (decode_base && !(base = ar_buf_get(a)))
    rc = ZLLM_ENOMEM;
  if (rc == 0 && decode_base && bt.dtype == t.dtype)
    rc = ar_tensor_decode_part(a, t.base, part, base, depth + 1);
  else if (rc == 0 && decode_base && zllm_dtype_castable(bt.dtype, t.dtype) && t.layout == AR_LAYOUT_FIELD)
    rc = ar_base_as(a, &bt, t.dtype, part * ZLLM_PART_BYTES / zllm_dtype_get(t.dtype)->size, n, base, depth + 1);
  else if (rc == 0 && decode_base)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld: base %lld has an incompatible dtype", a->dir, (long long)id,
                        (long long)t.base);
  t0 = ar_now();
  if (rc == 0)
    zllm_bitx_merge(view, (const uint8_t *const *)planes, base_bytes ? base_bytes : base, n, dst);
  a->t_merge += ar_now() - t0;
  if (base_bytes)
    ar_cache_release(a->cache, t.base, part);
  if (rc == 0 && depth > 0 && a->cache) /* decoded for another tensor: it may be asked for again */
    ar_cache_put(a->cache, id, part, dst, bytes);
  for (int p = 0; p < np; p++)
    ar_buf_put(a, planes[p]);
  ar_buf_put(a, base);
  return rc;
}
