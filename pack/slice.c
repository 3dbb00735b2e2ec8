/* Slices: a few MiB of a tensor part or of a header or piece blob, decoded
 * alone (what `zllm serve` hands a download, so a connection holds a slice,
 * not a 32 MiB part).
 *
 * A part blob holds one chunked stream per plane, and every plane of a
 * part has one byte per element, cut into chunks of the same size: chunk k
 * of each plane is the same run of elements.  A slice that starts and ends
 * on chunk bounds is then decoded from those chunks alone, read from the
 * pack by range (the part's plane table, each plane's chunk table, the
 * chunks' payloads), one chunk of every plane at a time, merged (with the
 * base's same bytes for BitX) straight into the slice.  The base's part is
 * decoded whole, once, and kept in the handle's part cache: every slice of
 * the fine-tune, and every fine-tune of that base, reads it there.
 *
 * Anything else (another chunk size per plane, C64's two bytes per element,
 * a base of another dtype, a tensor stored in another archive, a slice off
 * the chunk bounds) decodes the whole part, keeps it in the part cache and
 * copies the slice out, so every slice decodes whatever the archive holds.
 *
 * Only the blob's own checksum is not checked on a range: each chunk's
 * XXH3 is, and the reader checks each tensor's key and the file's SHA-256. */
#include <stdlib.h>
#include <string.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"
#include "zllm/le.h"

/* A plane's chunk table, as read from the pack. */
typedef struct {
  zllm_stream_table t;
  uint8_t *head;   /* its header and table */
  uint64_t at;     /* the plane's stream, from the blob's start */
} plane_table;

typedef struct {
  int np;
  plane_table pl[ZLLM_BITX_MAX_PLANES];
  ar_blob_ref ref;
} part_tables;

static void tables_free(part_tables *pt)
{
  for (int p = 0; p < ZLLM_BITX_MAX_PLANES; p++)
    free(pt->pl[p].head);
}

/* One stream's header and table, at `at` of the blob, `len` bytes long. */
static int read_table(zllm_archive *a, const ar_blob_ref *ref, uint64_t at, uint64_t len, plane_table *pl)
{
  uint8_t head[ZLLM_STREAM_HEAD_LEN];
  int rc = len < sizeof head ? zllm_error_set(ZLLM_EFORMAT, "stream: truncated header")
                             : ar_blob_pread(a, ref, at, sizeof head, head);
  if (rc < 0)
    return rc;
  uint64_t nch = zllm_stream_head_chunks(head), tlen = ZLLM_STREAM_HEAD_LEN + ZLLM_STREAM_ENTRY_LEN * nch;
  if (tlen > len) /* before it sizes a buffer */
    return zllm_error_set(ZLLM_EFORMAT, "stream: chunk table truncated");
  if (!(pl->head = malloc((size_t)tlen)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for a chunk table");
  pl->at = at;
  rc = ar_blob_pread(a, ref, at, tlen, pl->head);
  return rc ? rc : zllm_stream_table_parse(&pl->t, pl->head, (size_t)tlen, len);
}

/* The part blob's plane table (magic, count, each plane's length) and each
 * plane's chunk table. */
static int read_part_tables(zllm_archive *a, int64_t blob, int np, part_tables *pt)
{
  uint8_t head[8 + 8 * ZLLM_BITX_MAX_PLANES];
  int rc = ar_blob_open(a, blob, &pt->ref);
  size_t hl = 8 + 8 * (size_t)np;
  rc = rc ? rc : ar_blob_pread(a, &pt->ref, 0, hl, head);
  if (rc == 0 && (zllm_le32(head) != ZLLM_PART_MAGIC || zllm_le32(head + 4) != (uint32_t)np))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld is not a part of %d planes", a->dir, (long long)blob, np);
  uint64_t at = hl;
  for (int p = 0; rc == 0 && p < np; p++) {
    uint64_t len = zllm_le64(head + 8 + 8 * (size_t)p);
    if (len > pt->ref.len - at)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld: plane %d runs past the blob", a->dir, (long long)blob, p);
    if (rc == 0 && (rc = read_table(a, &pt->ref, at, len, &pt->pl[p])) < 0)
      rc = zllm_error_set(rc, "%s: blob %lld, plane %d: %s", a->dir, (long long)blob, p, zllm_error_last());
    at += len;
  }
  if (rc == 0 && at != pt->ref.len)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld: trailing bytes after its planes", a->dir, (long long)blob);
  pt->np = np;
  return rc;
}

/* Whether chunks cut the slice [lo, lo + n) of a part of `bytes` bytes of
 * `es`-byte elements in every plane alike: then *k0, *k1. */
static int chunk_bounds(const part_tables *pt, size_t es, size_t nelem, uint64_t lo, size_t n, uint64_t bytes,
                        uint32_t *k0, uint32_t *k1)
{
  uint32_t cs = pt->pl[0].t.chunk_size;
  for (int p = 0; p < pt->np; p++)
    if (pt->pl[p].t.chunk_size != cs || pt->pl[p].t.raw_len != nelem)
      return 0;
  uint64_t step = (uint64_t)cs * es;
  if (lo % step || (n % step && lo + n != bytes))
    return 0;
  *k0 = (uint32_t)(lo / step);
  *k1 = (uint32_t)((lo + n + step - 1) / step);
  return 1;
}

/* Chunks [k0, k1) of every plane, merged (XOR base when not NULL: the
 * base's bytes of the same slice) into dst. */
static int merge_chunks(zllm_archive *a, const part_tables *pt, zllm_dtype view, uint32_t k0, uint32_t k1,
                        const uint8_t *base, uint8_t *dst)
{
  /* the handle's own buffers, reused slice after slice: a fresh 4 MiB
   * buffer per slice would be pages faulted in and zeroed every time */
  uint8_t *ch[ZLLM_BITX_MAX_PLANES] = {0};
  const uint8_t *at[ZLLM_BITX_MAX_PLANES];
  uint64_t off[ZLLM_BITX_MAX_PLANES], len[ZLLM_BITX_MAX_PLANES], total = 0;
  size_t es = zllm_dtype_get(view)->size, cs = pt->pl[0].t.chunk_size;
  size_t room = cs < pt->pl[0].t.raw_len ? cs : (size_t)pt->pl[0].t.raw_len;
  int rc = 0;
  for (int p = 0; p < pt->np; p++) {
    zllm_stream_table_span(&pt->pl[p].t, k0, k1, &off[p], &len[p]);
    total += len[p];
  }
  a->blob.len = 0;
  rc = zllm_buf_reserve(&a->blob, (size_t)total + 1);
  for (int p = 0; rc == 0 && p < pt->np; p++) {
    a->pbuf[p].len = 0;
    rc = zllm_buf_reserve(&a->pbuf[p], room + 1);
    ch[p] = (uint8_t *)a->pbuf[p].data;
    at[p] = (const uint8_t *)a->blob.data + a->blob.len;
    rc = rc ? rc : ar_blob_pread(a, &pt->ref, pt->pl[p].at + off[p], len[p], (uint8_t *)a->blob.data + a->blob.len);
    a->blob.len += (size_t)len[p];
  }
  for (uint32_t k = k0; rc == 0 && k < k1; k++) {
    size_t m = 0;
    double t0 = ar_now();
    for (int p = 0; rc == 0 && p < pt->np; p++) {
      rc = zllm_stream_table_decode(a->codec, &pt->pl[p].t, k, at[p], ch[p], &m);
      if (rc < 0)
        rc = zllm_error_set(rc, "%s: blob %lld, plane %d: %s", a->dir, (long long)pt->ref.id, p, zllm_error_last());
      at[p] += zllm_le32(pt->pl[p].t.table + ZLLM_STREAM_ENTRY_LEN * k);
    }
    double t1 = ar_now();
    a->t_planes += t1 - t0;
    size_t out = (size_t)(k - k0) * cs * es;
    if (rc == 0)
      zllm_bitx_merge(view, (const uint8_t *const *)ch, base ? base + out : NULL, m, dst + out);
    a->t_merge += ar_now() - t1;
  }
  return rc;
}

/* The whole part, from the cache or decoded (and then kept there), with
 * the slice copied out: the way for whatever chunks do not cut. */
static int slice_from_whole(zllm_archive *a, int64_t id, uint64_t part, size_t bytes, uint64_t lo, size_t n,
                            uint8_t *dst)
{
  size_t len = 0;
  const uint8_t *hit = a->cache ? ar_cache_get(a->cache, id, part, &len) : NULL;
  if (hit && lo + n <= len) {
    memcpy(dst, hit + lo, n);
    ar_cache_release(a->cache, id, part);
    return 0;
  }
  if (hit)
    ar_cache_release(a->cache, id, part);
  uint8_t *buf = ar_buf_get(a);
  int rc = buf ? ar_tensor_decode_part(a, id, part, buf, 0) : ZLLM_ENOMEM;
  if (rc == 0)
    memcpy(dst, buf + lo, n);
  if (rc == 0 && a->cache)
    ar_cache_put(a->cache, id, part, buf, bytes);
  ar_buf_put(a, buf);
  return rc;
}

/* The base's bytes of the slice [lo, lo + n) of part `part`, as a pointer:
 * the slice store's slice of the base (*held), the part pinned in the cache
 * (*pinned; the pointer is to the part's start), or the part decoded whole
 * into *buf (which the caller puts back; likewise to its start). */
static int base_bytes(zllm_archive *a, const ar_tensor *bt, uint64_t part, size_t bytes, uint64_t lo, size_t n,
                      const uint8_t **out, int *pinned, ar_window *held, uint8_t **buf)
{
  if (a->base_src) {
    ar_window w = {0, bt->id, part, lo, bt->len, n, 0};
    int rc = a->base_src->get(a->base_ctx, a, &w, out);
    if (rc == 0)
      *held = w;
    return rc;
  }
  size_t hl = 0;
  const uint8_t *h = a->cache ? ar_cache_get(a->cache, bt->id, part, &hl) : NULL;
  if (h && hl == bytes) {
    *out = h + lo;
    *pinned = 1;
    return 0;
  }
  if (h)
    ar_cache_release(a->cache, bt->id, part);
  if (!(*buf = ar_buf_get(a)))
    return ZLLM_ENOMEM;
  *out = *buf + lo;
  return ar_tensor_decode_part(a, bt->id, part, *buf, 1); /* depth 1: kept in the cache for the next slice */
}

/* Whether the base's elements under bytes [at, at + n) of a fine-tune of
 * dtype `to` lie in one part of the base (else the part is decoded whole). */
static int cast_fits(const ar_tensor *bt, zllm_dtype to, uint64_t at, size_t n)
{
  size_t eb = zllm_dtype_get(bt->dtype)->size, et = zllm_dtype_get(to)->size;
  uint64_t boff = at / et * eb, blen = n / et * eb, bpart = boff / ZLLM_PART_BYTES;
  return at % et == 0 && n % et == 0 && boff - bpart * ZLLM_PART_BYTES + blen <= ar_part_len(bt->len, bpart);
}

/* The base's elements under bytes [at, at + n) of a fine-tune of dtype
 * `to`, cast to it, into *out (malloc'd): from the store's slice of the
 * base (held in *held until the caller puts it back; a slice of the base
 * that crosses one of its parts is refused, so the caller decodes whole). */
static int base_cast(zllm_archive *a, const ar_tensor *bt, zllm_dtype to, uint64_t at, size_t n,
                     const uint8_t **out, ar_window *held)
{
  size_t eb = zllm_dtype_get(bt->dtype)->size, et = zllm_dtype_get(to)->size;
  uint64_t first = at / et, m = n / et, boff = first * eb, blen = m * eb;
  uint64_t bpart = boff / ZLLM_PART_BYTES, blo = boff - bpart * ZLLM_PART_BYTES;
  const uint8_t *src = NULL;
  if (first + m > bt->nelem)
    return zllm_error_set(ZLLM_EFORMAT, "%s: base tensor %lld is shorter than its fine-tune", a->dir,
                          (long long)bt->id);
  ar_window w = {0, bt->id, bpart, blo, bt->len, (size_t)blen, 0};
  int rc = a->base_src->get(a->base_ctx, a, &w, &src);
  if (rc < 0)
    return rc;
  *held = w;
  /* the handle's cast buffer, taken only now: the base's own decode (on
   * this thread, inside get) may have used it */
  a->cast.len = 0;
  if ((rc = zllm_buf_reserve(&a->cast, n + 1)) < 0)
    return rc;
  uint8_t *dst = (uint8_t *)a->cast.data;
  for (uint64_t i = 0; i < m; i++)
    zllm_dtype_store_float(to, dst + i * et, zllm_dtype_load_float(bt->dtype, src + i * eb));
  *out = dst;
  return 0;
}

/* A dup's slice is the store's slice of the tensor it repeats: a
 * fine-tune's unchanged tensors read the base's slices, decoded once. */
static int dup_slice(zllm_archive *a, const ar_tensor *t, uint64_t part, uint64_t lo, size_t n, uint8_t *dst)
{
  ar_window w = {0, t->dup_of, part, lo, t->len, n, 0};
  const uint8_t *src = NULL;
  if (part >= ar_nparts(t->len) || lo > ar_part_len(t->len, part) || n > ar_part_len(t->len, part) - lo)
    return zllm_error_set(ZLLM_EINVAL, "%s: tensor %lld has no bytes %llu+%zu in part %llu", a->dir,
                          (long long)t->id, (unsigned long long)lo, n, (unsigned long long)part);
  int rc = a->base_src->get(a->base_ctx, a, &w, &src);
  if (rc < 0)
    return rc;
  memcpy(dst, src, n);
  a->base_src->put(a->base_ctx, &w);
  return 0;
}

int ar_tensor_decode_slice(zllm_archive *a, int64_t id, uint64_t part, uint64_t lo, size_t n, uint8_t *dst)
{
  ar_tensor t, bt;
  part_tables pt = {0};
  const uint8_t *base = NULL;
  uint8_t *base_buf = NULL;
  ar_window held = {0};
  int pinned = 0, sliced = 0;
  int rc = ar_tensor_chain(a, id, &t);
  if (rc == 0 && a->base_src && strcmp(t.method, "dup") == 0)
    return dup_slice(a, &t, part, lo, n, dst);
  while (rc == 0 && strcmp(t.method, "dup") == 0) /* the chain was walked: it ends */
    rc = ar_tensor_get(a, t.dup_of, &t);
  size_t bytes = rc ? 0 : ar_part_len(t.len, part);
  if (rc == 0 && (part >= ar_nparts(t.len) || lo > bytes || n > bytes - lo))
    rc = zllm_error_set(ZLLM_EINVAL, "%s: tensor %lld has no bytes %llu+%zu in part %llu", a->dir, (long long)id,
                        (unsigned long long)lo, n, (unsigned long long)part);
  int bitx = rc == 0 && strcmp(t.method, "bitx") == 0;
  if (rc < 0 || n == 0)
    return rc;
  zllm_dtype view = ar_view_dtype(t.dtype, t.layout, t.len);
  size_t es = zllm_dtype_get(view)->size, nelem = bytes / es;
  int64_t blob = 0;
  uint32_t k0 = 0, k1 = 0;
  int plain = strcmp(t.method, "solo") == 0 || bitx;
  if (bitx)
    rc = ar_tensor_get(a, t.base, &bt);
  /* a base of another float width (an upcast fine-tune) is cast slice by slice */
  int cast = bitx && rc == 0 && bt.dtype != t.dtype;
  if (cast && !(a->base_src && zllm_dtype_castable(bt.dtype, t.dtype) && t.layout == AR_LAYOUT_FIELD &&
                cast_fits(&bt, t.dtype, part * ZLLM_PART_BYTES + lo, n)))
    plain = 0;
  if (rc == 0 && plain && zllm_bitx_plane_len(view, nelem) == nelem) {
    rc = ar_part_blob(a, t.id, part, &blob);
    rc = rc ? rc : read_part_tables(a, blob, zllm_bitx_planes(view), &pt);
    sliced = rc == 0 && chunk_bounds(&pt, es, nelem, lo, n, bytes, &k0, &k1);
  }
  if (rc == 0 && sliced && cast)
    rc = base_cast(a, &bt, t.dtype, part * ZLLM_PART_BYTES + lo, n, &base, &held);
  else if (rc == 0 && sliced && bitx)
    rc = base_bytes(a, &bt, part, bytes, lo, n, &base, &pinned, &held, &base_buf);
  if (rc == 0 && sliced)
    rc = merge_chunks(a, &pt, view, k0, k1, base, dst);
  else if (rc == 0)
    rc = slice_from_whole(a, t.id, part, bytes, lo, n, dst);
  if (pinned)
    ar_cache_release(a->cache, bt.id, part);
  if (held.len)
    a->base_src->put(a->base_ctx, &held);
  ar_buf_put(a, base_buf);
  tables_free(&pt);
  return rc;
}

int ar_blob_decode_slice(zllm_archive *a, int64_t blob, uint64_t raw_len, uint64_t lo, size_t n, uint8_t *dst)
{
  plane_table pl = {0};
  ar_blob_ref ref;
  int rc = ar_blob_open(a, blob, &ref);
  if (rc == 0 && (rc = read_table(a, &ref, 0, ref.len, &pl)) < 0)
    rc = zllm_error_set(rc, "%s: blob %lld: %s", a->dir, (long long)blob, zllm_error_last());
  if (rc == 0 && pl.t.raw_len != raw_len)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld decodes to %llu bytes, not the %llu it stands for", a->dir,
                        (long long)blob, (unsigned long long)pl.t.raw_len, (unsigned long long)raw_len);
  if (rc == 0 && (lo > raw_len || n > raw_len - lo))
    rc = zllm_error_set(ZLLM_EINVAL, "%s: blob %lld has no bytes %llu+%zu", a->dir, (long long)blob,
                        (unsigned long long)lo, n);
  uint64_t cs = rc ? 1 : pl.t.chunk_size;
  uint8_t *pay = NULL, *tmp = NULL;
  if (rc == 0 && n && (lo % cs || (n % cs && lo + n != raw_len))) {
    /* off the chunk bounds: the chunks that hold it, then the slice */
    uint64_t first = lo / cs * cs, end = (lo + n + cs - 1) / cs * cs;
    end = end < raw_len ? end : raw_len;
    if (!(tmp = malloc((size_t)(end - first))))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory for a slice");
    rc = rc ? rc : ar_blob_decode_slice(a, blob, raw_len, first, (size_t)(end - first), tmp);
    if (rc == 0)
      memcpy(dst, tmp + (lo - first), n);
    free(tmp);
    free(pl.head);
    return rc;
  }
  uint32_t k0 = rc ? 0 : (uint32_t)(lo / cs), k1 = rc ? 0 : (uint32_t)((lo + n + cs - 1) / cs);
  uint64_t off = 0, len = 0;
  if (rc == 0 && n) {
    zllm_stream_table_span(&pl.t, k0, k1, &off, &len);
    a->blob.len = 0;
    rc = zllm_buf_reserve(&a->blob, (size_t)len + 1);
    pay = rc ? NULL : (uint8_t *)a->blob.data;
    rc = rc ? rc : ar_blob_pread(a, &ref, off, len, pay);
  }
  const uint8_t *at = pay;
  double t0 = ar_now();
  for (uint32_t k = k0; rc == 0 && k < k1; k++) {
    size_t m = 0;
    rc = zllm_stream_table_decode(a->codec, &pl.t, k, at, dst + (size_t)(k - k0) * cs, &m);
    if (rc < 0)
      rc = zllm_error_set(rc, "%s: blob %lld: %s", a->dir, (long long)blob, zllm_error_last());
    at += zllm_le32(pl.t.table + ZLLM_STREAM_ENTRY_LEN * k);
  }
  a->t_planes += ar_now() - t0;
  free(pl.head);
  return rc;
}
