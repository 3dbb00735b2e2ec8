/* The chunked stream container (layout in zllm/codec.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <htscodecs/rANS_static4x16.h>
#include <xxhash.h>
#include <zstd.h>

#include "pack/sparse.h"
#include "zllm/codec.h"
#include "zllm/error.h"
#include "zllm/le.h"

#define HEADER_LEN 24
/* Byte planes have almost no long repeats: zstd's smallest match table (2^6)
 * keeps it from spending time and bits on chance matches (measured: 2% fewer
 * bytes and slightly faster than the default tables on generated hubs). */
#define PLANE_HASH_LOG 6
#define ENTRY_LEN 16
/* order 0; 4- or 32-way interleaving, whichever the chunk's size pays for,
 * with the CPU's SIMD decoder (the choice is in the frame: any CPU decodes it) */
#define RANS0_ORDER (0 | RANS_ORDER_SIMD_AUTO)

struct zllm_codec {
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  uint8_t *scratch; /* one coded chunk */
  size_t scratch_cap;
  uint8_t *sparse; /* a sparse chunk's bitmap and non-zero bytes */
  size_t sparse_cap;
};

int zllm_codec_new(zllm_codec **out)
{
  zllm_codec *c = calloc(1, sizeof *c);
  if (!c || !(c->cctx = ZSTD_createCCtx()) || !(c->dctx = ZSTD_createDCtx())) {
    zllm_codec_free(c);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for a codec");
  }
  *out = c;
  return 0;
}

void zllm_codec_free(zllm_codec *c)
{
  if (!c)
    return;
  ZSTD_freeCCtx(c->cctx);
  ZSTD_freeDCtx(c->dctx);
  free(c->scratch);
  free(c->sparse);
  free(c);
}

static int all_same(const uint8_t *p, size_t n)
{
  /* compare against the shifted self: equal iff every byte equals p[0] */
  return n == 0 || (p[0] == p[n - 1] && memcmp(p, p + 1, n - 1) == 0);
}

/* Grows one of the codec's buffers to n bytes (kept between chunks). */
static int reserve(uint8_t **buf, size_t *cap, size_t n)
{
  if (n <= *cap)
    return 0;
  uint8_t *p = realloc(*buf, n);
  if (!p)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for a %zu-byte chunk", n);
  *buf = p;
  *cap = n;
  return 0;
}

/* What a sample of a plane chunk says about it. */
typedef enum { LOOKS_PLAIN, LOOKS_NOISE, LOOKS_SPARSE } plane_look;

/* Noise: order-0 entropy above 7.9 bits per byte, where no coder gains the
 * 3% a coded chunk must (random mantissa planes are most of a model, and
 * coding them costs more than everything else in ingest).  Sparse: at
 * least SPARSE_ZEROS of the bytes are zero (a BitX plane of a fine-tune). */
#define SPARSE_ZEROS 0.75
static plane_look sample_plane(const uint8_t *p, size_t n)
{
  enum { SAMPLE = 8192 };
  if (n < 4 * SAMPLE)
    return LOOKS_PLAIN;
  uint32_t hist[256] = {0};
  size_t step = n / SAMPLE;
  for (size_t i = 0; i < SAMPLE; i++)
    hist[p[i * step]]++;
  double h = 0;
  for (int v = 0; v < 256; v++)
    if (hist[v]) {
      double q = (double)hist[v] / SAMPLE;
      h -= q * log2(q);
    }
  /* a sample of 8192 from a uniform byte source estimates ~7.98 bits */
  if (h > 7.9)
    return LOOKS_NOISE;
  return hist[0] >= SPARSE_ZEROS * SAMPLE ? LOOKS_SPARSE : LOOKS_PLAIN;
}

/* A sparse chunk's two frames are 10-50 KiB, below the size where
 * htscodecs' automatic choice takes its 32-way (SIMD) layout; forced there,
 * they decode 1.6x faster for ~1% more bytes (measured: bench/README.md). */
#define SPARSE_X32_MIN 8192

/* One rANS order-0 frame of n bytes into dst (cap bytes); x32 forces the
 * 32-way layout. */
static int rans0(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *len, int x32)
{
  unsigned int got = (unsigned int)cap;
  if (!rans_compress_to_4x16((unsigned char *)src, (unsigned int)n, dst, &got, x32 ? RANS_ORDER_X32 : RANS0_ORDER))
    return -1;
  *len = got;
  return 0;
}

/* A sparse chunk: u32 count of non-zero bytes m | u32 length B of the
 * bitmap's frame | the bitmap's rANS frame (B bytes) | the non-zero bytes'
 * rANS frame.  Returns its length in c->scratch, or 0 when it failed. */
static size_t code_sparse(zllm_codec *c, const uint8_t *src, size_t n)
{
  size_t bl = zs_bitmap_len(n), blen = 0, vlen = 0;
  uint8_t *bitmap = c->sparse, *vals = c->sparse + bl;
  size_t m = zs_split(src, n, bitmap, vals);
  if (rans0(bitmap, bl, c->scratch + 8, c->scratch_cap - 8, &blen, bl >= SPARSE_X32_MIN) < 0 ||
      rans0(vals, m, c->scratch + 8 + blen, c->scratch_cap - 8 - blen, &vlen, m >= SPARSE_X32_MIN) < 0)
    return 0;
  zllm_put_le32(c->scratch, (uint32_t)m);
  zllm_put_le32(c->scratch + 4, (uint32_t)blen);
  return 8 + blen + vlen;
}

/* Codes one chunk; returns its codec, stored length and where the stored
 * bytes are (c->scratch, or src itself for a raw chunk: noise is most of a
 * model's bytes and is not copied twice). */
static int code_chunk(zllm_codec *c, const zllm_stream_options *o, const uint8_t *src, size_t n,
                      zllm_chunk_codec *codec, size_t *stored, const uint8_t **bytes)
{
  *bytes = c->scratch;
  if (all_same(src, n)) {
    c->scratch[0] = n ? src[0] : 0;
    *codec = ZLLM_CHUNK_CONST;
    *stored = 1;
    return 0;
  }
  size_t z = 0;
  zllm_chunk_codec coded = ZLLM_CHUNK_ZSTD;
  plane_look look = o->skip_noise ? sample_plane(src, n) : LOOKS_PLAIN;
  if (look == LOOKS_NOISE) {
    /* stored raw below */
  } else if (o->coder == ZLLM_CODER_RANS0 && look == LOOKS_SPARSE) {
    coded = ZLLM_CHUNK_SPARSE;
    z = code_sparse(c, src, n);
  } else if (o->coder == ZLLM_CODER_RANS0) {
    coded = ZLLM_CHUNK_RANS0;
    if (rans0(src, n, c->scratch, c->scratch_cap, &z, 0) < 0)
      z = 0;
  } else {
    /* byte planes have few long matches: a long minimum match and a tiny
     * match table keep zstd on its fast path, coding mostly literals */
    ZSTD_CCtx_reset(c->cctx, ZSTD_reset_parameters);
    ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_compressionLevel, o->zstd_level);
    if (o->skip_noise) {
      ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_minMatch, 7);
      ZSTD_CCtx_setParameter(c->cctx, ZSTD_c_hashLog, PLANE_HASH_LOG);
    }
    z = ZSTD_compress2(c->cctx, c->scratch, c->scratch_cap, src, n);
  }
  int failed = z == 0 || (coded == ZLLM_CHUNK_ZSTD && ZSTD_isError(z));
  if (!failed && (double)z < o->keep_ratio * (double)n) {
    *codec = coded;
    *stored = z;
    return 0;
  }
  *bytes = src; /* nothing gained: keep the bytes as they are */
  *codec = ZLLM_CHUNK_RAW;
  *stored = n;
  return 0;
}

int zllm_stream_encode(zllm_codec *c, const zllm_stream_options *o, const uint8_t *src, size_t len,
                       zllm_buf *out)
{
  zllm_stream_options def = ZLLM_STREAM_OPTIONS_INIT;
  o = o ? o : &def;
  uint32_t cs = o->chunk_size ? o->chunk_size : ZLLM_STREAM_CHUNK_DEFAULT;
  if (cs > ZLLM_STREAM_CHUNK_MAX)
    return zllm_error_set(ZLLM_EINVAL, "stream chunk size %u above %u", cs, ZLLM_STREAM_CHUNK_MAX);
  uint64_t nchunks = (len + cs - 1) / cs;
  if (nchunks > UINT32_MAX)
    return zllm_error_set(ZLLM_ELIMIT, "stream of %zu bytes needs too many chunks", len);
  size_t table_at = out->len;
  size_t bound = ZSTD_compressBound(cs) > cs ? ZSTD_compressBound(cs) : cs;
  /* a sparse chunk holds two frames: the bitmap's and the non-zero bytes' */
  size_t rans_bound = 8 + (size_t)rans_compress_bound_4x16(cs, RANS0_ORDER) +
                      rans_compress_bound_4x16((unsigned int)zs_bitmap_len(cs), RANS0_ORDER);
  if (o->coder == ZLLM_CODER_RANS0 && rans_bound > bound)
    bound = rans_bound;
  int rc = reserve(&c->scratch, &c->scratch_cap, bound);
  if (rc == 0 && o->coder == ZLLM_CODER_RANS0)
    rc = reserve(&c->sparse, &c->sparse_cap, zs_bitmap_len(cs) + cs + 8);
  rc = rc ? rc : zllm_buf_reserve(out, HEADER_LEN + ENTRY_LEN * (size_t)nchunks);
  if (rc < 0)
    return rc;
  uint8_t *h = (uint8_t *)out->data + table_at;
  memset(h, 0, HEADER_LEN + ENTRY_LEN * (size_t)nchunks);
  zllm_put_le32(h, ZLLM_STREAM_MAGIC);
  h[4] = ZLLM_STREAM_VERSION;
  zllm_put_le32(h + 8, (uint32_t)len);
  zllm_put_le32(h + 12, (uint32_t)((uint64_t)len >> 32));
  zllm_put_le32(h + 16, cs);
  zllm_put_le32(h + 20, (uint32_t)nchunks);
  out->len += HEADER_LEN + ENTRY_LEN * (size_t)nchunks;
  for (uint64_t k = 0; rc == 0 && k < nchunks; k++) {
    size_t n = len - k * cs < cs ? (size_t)(len - k * cs) : cs, stored = 0;
    zllm_chunk_codec codec;
    const uint8_t *bytes = NULL;
    rc = code_chunk(c, o, src + k * cs, n, &codec, &stored, &bytes);
    rc = rc ? rc : zllm_buf_append(out, bytes, stored);
    if (rc == 0) { /* the buffer may have moved: find the entry again */
      uint8_t *e = (uint8_t *)out->data + table_at + HEADER_LEN + ENTRY_LEN * k;
      zllm_put_le32(e, (uint32_t)stored);
      e[4] = (uint8_t)codec;
      zllm_put_le64(e + 8, XXH3_64bits(src + k * cs, n));
    }
  }
  return rc;
}

typedef struct {
  uint64_t raw_len;
  uint32_t chunk_size, nchunks;
  const uint8_t *table, *payload;
  size_t payload_len;
} layout;

/* The header and chunk table (whose entries are checked), without the
 * payload: what a reader of some chunks holds. */
static int parse_head(layout *l, const uint8_t *blob, size_t len)
{
  if (len < HEADER_LEN || zllm_le32(blob) != ZLLM_STREAM_MAGIC)
    return zllm_error_set(ZLLM_EFORMAT, "stream: bad magic or truncated header");
  if (blob[4] != ZLLM_STREAM_VERSION || blob[5] || blob[6] || blob[7])
    return zllm_error_set(ZLLM_EFORMAT, "stream: unsupported version %u", blob[4]);
  l->raw_len = zllm_le64(blob + 8);
  l->chunk_size = zllm_le32(blob + 16);
  l->nchunks = zllm_le32(blob + 20);
  /* nchunks x chunk_size cannot overflow 64 bits; raw_len must fill the
   * last chunk partly and no more */
  uint64_t cap = (uint64_t)l->nchunks * l->chunk_size;
  if (l->chunk_size == 0 || l->chunk_size > ZLLM_STREAM_CHUNK_MAX || l->raw_len > cap ||
      (l->nchunks && l->raw_len <= cap - l->chunk_size))
    return zllm_error_set(ZLLM_EFORMAT, "stream: chunk size %u and count %u do not cover %llu bytes",
                          l->chunk_size, l->nchunks, (unsigned long long)l->raw_len);
  if ((len - HEADER_LEN) / ENTRY_LEN < l->nchunks)
    return zllm_error_set(ZLLM_EFORMAT, "stream: chunk table truncated");
  l->table = blob + HEADER_LEN;
  l->payload = l->table + (size_t)ENTRY_LEN * l->nchunks;
  l->payload_len = len - HEADER_LEN - (size_t)ENTRY_LEN * l->nchunks;
  for (uint32_t k = 0; k < l->nchunks; k++) {
    const uint8_t *e = l->table + ENTRY_LEN * k;
    if (e[5] | e[6] | e[7])
      return zllm_error_set(ZLLM_EFORMAT, "stream: chunk %u has non-zero reserved bytes", k);
  }
  return 0;
}

/* What the chunks hold must be the payload, to the byte. */
static int check_payload(const layout *l, uint64_t payload_len)
{
  uint64_t total = 0;
  for (uint32_t k = 0; k < l->nchunks; k++)
    total += zllm_le32(l->table + ENTRY_LEN * k);
  if (total != payload_len)
    return zllm_error_set(ZLLM_EFORMAT, "stream: chunks hold %llu bytes, payload is %llu",
                          (unsigned long long)total, (unsigned long long)payload_len);
  return 0;
}

static int parse_layout(layout *l, const uint8_t *blob, size_t len)
{
  int rc = parse_head(l, blob, len);
  return rc ? rc : check_payload(l, l->payload_len);
}

int zllm_stream_info(const uint8_t *blob, size_t len, uint64_t *raw_len, uint32_t *chunk_size,
                     uint32_t *nchunks)
{
  layout l;
  int rc = parse_layout(&l, blob, len);
  if (rc == 0) {
    *raw_len = l.raw_len;
    *chunk_size = l.chunk_size;
    *nchunks = l.nchunks;
  }
  return rc;
}

int zllm_stream_count_codecs(const uint8_t *blob, size_t len, uint64_t counts[ZLLM_CHUNK_CODECS])
{
  layout l;
  int rc = parse_layout(&l, blob, len);
  for (uint32_t k = 0; rc == 0 && k < l.nchunks; k++)
    if (l.table[ENTRY_LEN * k + 4] < ZLLM_CHUNK_CODECS)
      counts[l.table[ENTRY_LEN * k + 4]]++;
  return rc;
}

static int decode_payload(zllm_codec *c, uint32_t k, uint8_t codec, const uint8_t *src, size_t stored,
                          uint8_t *dst, size_t n);

static int decode_one(zllm_codec *c, const layout *l, uint32_t k, const uint8_t *src, size_t stored,
                      uint8_t *dst, size_t n)
{
  const uint8_t *e = l->table + ENTRY_LEN * k;
  int rc = decode_payload(c, k, e[4], src, stored, dst, n);
  if (rc == 0 && XXH3_64bits(dst, n) != zllm_le64(e + 8))
    rc = zllm_error_set(ZLLM_EFORMAT, "stream: chunk %u fails its checksum", k);
  return rc;
}

/* A rANS frame states its own length: it must be exactly n, into exactly n. */
static int unrans0(const uint8_t *src, size_t stored, uint8_t *dst, size_t n)
{
  unsigned int got = (unsigned int)n;
  if (stored > UINT32_MAX || n > UINT32_MAX)
    return -1;
  if (n == 0) /* nothing to decode into (a sparse chunk with no non-zero byte is constant instead) */
    return stored == 0 ? 0 : -1;
  return rans_uncompress_to_4x16((unsigned char *)src, (unsigned int)stored, dst, &got) && got == n ? 0 : -1;
}

static int decode_sparse(zllm_codec *c, uint32_t k, const uint8_t *src, size_t stored, uint8_t *dst, size_t n)
{
  size_t bl = zs_bitmap_len(n);
  uint64_t m = stored >= 8 ? zllm_le32(src) : 0, blen = stored >= 8 ? zllm_le32(src + 4) : 0;
  /* the non-zero bytes go after the bitmap, with 8 bytes to spare (zs_merge reads one ahead) */
  int rc = reserve(&c->sparse, &c->sparse_cap, bl + n + 8);
  if (rc < 0)
    return rc;
  if (stored < 8 || blen > stored - 8 || m > n || unrans0(src + 8, (size_t)blen, c->sparse, bl) < 0 ||
      unrans0(src + 8 + blen, stored - 8 - (size_t)blen, c->sparse + bl, (size_t)m) < 0 ||
      zs_merge(c->sparse, c->sparse + bl, (size_t)m, n, dst) < 0)
    return zllm_error_set(ZLLM_EFORMAT, "stream: sparse chunk %u does not decode to its %zu bytes", k, n);
  return 0;
}

static int decode_payload(zllm_codec *c, uint32_t k, uint8_t codec, const uint8_t *src, size_t stored,
                          uint8_t *dst, size_t n)
{
  switch (codec) {
  case ZLLM_CHUNK_RAW:
    if (stored != n)
      return zllm_error_set(ZLLM_EFORMAT, "stream: raw chunk %u holds %zu bytes, wants %zu", k, stored, n);
    memcpy(dst, src, n);
    return 0;
  case ZLLM_CHUNK_CONST:
    if (stored != 1)
      return zllm_error_set(ZLLM_EFORMAT, "stream: constant chunk %u is %zu bytes", k, stored);
    memset(dst, src[0], n);
    return 0;
  case ZLLM_CHUNK_ZSTD: {
    size_t got = ZSTD_decompressDCtx(c->dctx, dst, n, src, stored);
    if (ZSTD_isError(got) || got != n)
      return zllm_error_set(ZLLM_EFORMAT, "stream: zstd chunk %u: %s", k,
                            ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong length");
    return 0;
  }
  case ZLLM_CHUNK_RANS0:
    if (unrans0(src, stored, dst, n) < 0)
      return zllm_error_set(ZLLM_EFORMAT, "stream: rANS chunk %u does not decode to its %zu bytes", k, n);
    return 0;
  case ZLLM_CHUNK_SPARSE:
    return decode_sparse(c, k, src, stored, dst, n);
  default:
    return zllm_error_set(ZLLM_EFORMAT, "stream: chunk %u has unknown codec %u", k, codec);
  }
}

int zllm_stream_decode(zllm_codec *c, const uint8_t *blob, size_t len, uint8_t *dst, size_t dst_len)
{
  layout l;
  int rc = parse_layout(&l, blob, len);
  if (rc == 0 && l.raw_len != dst_len)
    rc = zllm_error_set(ZLLM_EFORMAT, "stream: holds %llu bytes, %zu expected", (unsigned long long)l.raw_len,
                        dst_len);
  size_t at = 0;
  for (uint32_t k = 0; rc == 0 && k < l.nchunks; k++) {
    size_t stored = zllm_le32(l.table + ENTRY_LEN * k);
    size_t n = dst_len - (size_t)k * l.chunk_size < l.chunk_size ? dst_len - (size_t)k * l.chunk_size : l.chunk_size;
    rc = decode_one(c, &l, k, l.payload + at, stored, dst + (size_t)k * l.chunk_size, n);
    at += stored;
  }
  return rc;
}

int zllm_stream_decode_chunk(zllm_codec *c, const uint8_t *blob, size_t len, uint32_t k, uint8_t *dst,
                             size_t *out_len)
{
  layout l;
  int rc = parse_layout(&l, blob, len);
  if (rc == 0 && k >= l.nchunks)
    rc = zllm_error_set(ZLLM_EINVAL, "stream: no chunk %u of %u", k, l.nchunks);
  if (rc < 0)
    return rc;
  size_t at = 0;
  for (uint32_t i = 0; i < k; i++)
    at += zllm_le32(l.table + ENTRY_LEN * i);
  uint64_t start = (uint64_t)k * l.chunk_size;
  size_t n = l.raw_len - start < l.chunk_size ? (size_t)(l.raw_len - start) : l.chunk_size;
  *out_len = n;
  return decode_one(c, &l, k, l.payload + at, zllm_le32(l.table + ENTRY_LEN * k), dst, n);
}

uint32_t zllm_stream_head_chunks(const uint8_t head[ZLLM_STREAM_HEAD_LEN])
{
  return zllm_le32(head + 20);
}

int zllm_stream_table_parse(zllm_stream_table *t, const uint8_t *head, size_t head_len, uint64_t total)
{
  layout l;
  if (head_len < HEADER_LEN || total < HEADER_LEN)
    return zllm_error_set(ZLLM_EFORMAT, "stream: truncated header");
  uint32_t nch = zllm_le32(head + 20);
  if ((total - HEADER_LEN) / ENTRY_LEN < nch || head_len < HEADER_LEN + (size_t)ENTRY_LEN * nch)
    return zllm_error_set(ZLLM_EFORMAT, "stream: chunk table truncated");
  int rc = parse_head(&l, head, HEADER_LEN + (size_t)ENTRY_LEN * nch);
  /* checked as the whole container would be: its chunks add up to the rest */
  rc = rc ? rc : check_payload(&l, total - HEADER_LEN - (uint64_t)ENTRY_LEN * nch);
  if (rc == 0)
    *t = (zllm_stream_table){l.raw_len, total, l.chunk_size, l.nchunks, l.table};
  return rc;
}

void zllm_stream_table_span(const zllm_stream_table *t, uint32_t k0, uint32_t k1, uint64_t *off, uint64_t *len)
{
  uint64_t at = HEADER_LEN + (uint64_t)ENTRY_LEN * t->nchunks, n = 0;
  for (uint32_t k = 0; k < k1 && k < t->nchunks; k++) {
    uint64_t stored = zllm_le32(t->table + ENTRY_LEN * k);
    if (k < k0)
      at += stored;
    else
      n += stored;
  }
  *off = at;
  *len = n;
}

int zllm_stream_table_decode(zllm_codec *c, const zllm_stream_table *t, uint32_t k, const uint8_t *src,
                             uint8_t *dst, size_t *n)
{
  if (k >= t->nchunks)
    return zllm_error_set(ZLLM_EINVAL, "stream: no chunk %u of %u", k, t->nchunks);
  layout l = {t->raw_len, t->chunk_size, t->nchunks, t->table, NULL, 0};
  uint64_t start = (uint64_t)k * t->chunk_size;
  *n = t->raw_len - start < t->chunk_size ? (size_t)(t->raw_len - start) : t->chunk_size;
  return decode_one(c, &l, k, src, zllm_le32(t->table + ENTRY_LEN * k), dst, *n);
}
