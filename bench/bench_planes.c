/* zllm-bench-planes: what entropy coders do with the archive's weight planes.
 *
 * The groundwork for the plane coder: the BitX and solo planes of real
 * tensors (zllm/codec.h's split), grouped by dtype, kind and plane, coded in
 * independent 256 KiB chunks as the archive codes them, by:
 *   zllm-f1  archive format 1's planes: zstd -1 with the plane settings, noise kept raw
 *   zllm-f2  archive format 2's planes: rANS order 0 (htscodecs), a mostly-zero
 *            chunk as a bitmap of its non-zero bytes plus those bytes, noise kept raw
 *   zstd-3   zstd -3 (what the issue compares to)
 *   rans0    htscodecs rANS 4x16, order 0 (SIMD, 32-way when it pays)
 *   rans1    the same, order 1 (the previous byte as context)
 *   rans0|c  order 0 within sub-streams split by a context the decoder can
 *            recompute: for a BitX plane the base's exponent, for a solo
 *            mantissa plane the element's own exponent (decoded first)
 *   rans0|c4 the same with at most four sub-streams (the three largest
 *            contexts, and the rest together)
 *   arith0   htscodecs' adaptive arithmetic coder, order 0
 *   zr0      zllm's own static rANS (pack/rans.c), one table
 *   zr0|c    the same with a table per frequent context, in one stream
 * beside the plane's order-0 entropy H0 and its entropy given the context
 * H|c (the bounds the coders are measured against).  Every coded chunk is
 * decoded and compared with the original, so a coder that loses bytes fails
 * the run.  Prints ratio (stored / raw) and encode / decode MB/s, medians.
 *
 * Usage: zllm-bench-planes [--mib N] [--repeat R] DIR[=BASE_DIR]...
 *   DIR holds safetensors files; with =BASE_DIR, each tensor that has a
 *   same-name, same-dtype, same-shape tensor in BASE_DIR's files is XORed
 *   with it (BitX), else coded solo.  --mib caps each plane class (default
 *   64 MiB); --repeat the timed runs (default 3). */
#include <dirent.h>
#include <htscodecs/arith_dynamic.h>
#include <htscodecs/rANS_static4x16.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "pack/rans.h"
#include "zllm/codec.h"
#include "zllm/error.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

#define CHUNK ((size_t)256 << 10)
#define MAX_FILES 4096

/* One class of planes: (dtype, BitX or solo, plane index). */
typedef struct {
  zllm_dtype dt;
  int bitx, plane;
  uint8_t *bytes, *ctx; /* ctx[i]: the context of bytes[i] */
  size_t n, cap;
  int has_ctx;
} plane_class;

static plane_class classes[64];
static size_t nclasses, cap_bytes;

static void die(const char *what)
{
  fprintf(stderr, "zllm-bench-planes: %s: %s\n", what, zllm_error_last());
  exit(1);
}

static plane_class *class_of(zllm_dtype dt, int bitx, int plane)
{
  for (size_t i = 0; i < nclasses; i++)
    if (classes[i].dt == dt && classes[i].bitx == bitx && classes[i].plane == plane)
      return &classes[i];
  if (nclasses == sizeof classes / sizeof *classes)
    return NULL;
  classes[nclasses] = (plane_class){.dt = dt, .bitx = bitx, .plane = plane};
  return &classes[nclasses++];
}

/* The exponent field of an element: the context the decoder has (from the
 * base for BitX, from the exponent plane for solo). */
static uint8_t exponent_of(zllm_dtype dt, const uint8_t *e)
{
  switch (dt) {
  case ZLLM_DT_BF16: return (uint8_t)((e[0] >> 7 | e[1] << 1) & 0xff);
  case ZLLM_DT_F16: return (uint8_t)((e[1] >> 2) & 0x1f);
  case ZLLM_DT_F32: return (uint8_t)((e[2] >> 7 | e[3] << 1) & 0xff);
  default: return 0;
  }
}

static void class_add(plane_class *c, const uint8_t *p, const uint8_t *ctx_src, size_t n, int has_ctx)
{
  size_t es = zllm_dtype_get(c->dt)->size;
  if (c->n >= cap_bytes)
    return;
  n = n < cap_bytes - c->n ? n : cap_bytes - c->n;
  if (c->n + n > c->cap) {
    size_t cap = c->cap ? c->cap : (size_t)1 << 20;
    while (cap < c->n + n)
      cap *= 2;
    if (!(c->bytes = realloc(c->bytes, cap)) || !(c->ctx = realloc(c->ctx, cap))) {
      fprintf(stderr, "zllm-bench-planes: out of memory\n");
      exit(1);
    }
    c->cap = cap;
  }
  memcpy(c->bytes + c->n, p, n);
  for (size_t i = 0; i < n; i++)
    c->ctx[c->n + i] = has_ctx ? exponent_of(c->dt, ctx_src + i * es) : 0;
  c->has_ctx |= has_ctx;
  c->n += n;
}

/* ---- loading: every safetensors file of a directory ----------------------------- */

typedef struct {
  zllm_st_header *h[MAX_FILES];
  int fd[MAX_FILES];
  size_t n;
} dir_files;

static void load_dir(dir_files *d, const char *dir)
{
  DIR *dp = opendir(dir);
  struct dirent *e;
  if (!dp) {
    perror(dir);
    exit(1);
  }
  while ((e = readdir(dp)) && d->n < MAX_FILES) {
    size_t len = strlen(e->d_name);
    if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0)
      continue;
    char *path = zllm_path_join(dir, e->d_name);
    if (!path || zllm_st_open(&d->h[d->n], &d->fd[d->n], path) < 0)
      die(path ? path : "out of memory");
    free(path);
    d->n++;
  }
  closedir(dp);
}

static void free_dir(dir_files *d)
{
  for (size_t i = 0; i < d->n; i++) {
    zllm_st_header_free(d->h[i]);
    close(d->fd[i]);
  }
  d->n = 0;
}

static uint8_t *read_whole(const zllm_st_header *h, int fd, size_t i)
{
  const zllm_st_tensor *t = &h->tensors[i];
  uint8_t *buf = malloc(t->end - t->begin + 1);
  if (!buf || zllm_st_read_tensor(h, fd, i, 0, buf, t->end - t->begin) < 0)
    die(h->file);
  return buf;
}

/* The base tensor matching t (name, dtype, shape), read whole, or NULL. */
static uint8_t *base_for(const dir_files *base, const zllm_st_tensor *t)
{
  for (size_t f = 0; f < base->n; f++) {
    long i = zllm_st_find(base->h[f], t->name);
    if (i < 0)
      continue;
    const zllm_st_tensor *b = &base->h[f]->tensors[i];
    if (b->dtype == t->dtype && b->nelem == t->nelem && b->end - b->begin == t->end - t->begin)
      return read_whole(base->h[f], base->fd[f], (size_t)i);
  }
  return NULL;
}

static void take_tensor(const zllm_st_tensor *t, const uint8_t *src, const uint8_t *base)
{
  int np = zllm_bitx_planes(t->dtype);
  size_t plen = zllm_bitx_plane_len(t->dtype, t->nelem);
  uint8_t *planes[ZLLM_BITX_MAX_PLANES];
  for (int p = 0; p < np; p++)
    if (!(planes[p] = malloc(plen + 1)))
      exit(1);
  zllm_bitx_split(t->dtype, src, base, t->nelem, planes);
  for (int p = 0; p < np; p++) {
    plane_class *c = class_of(t->dtype, base != NULL, p);
    /* BitX: the base's exponent; solo: the element's own (not for the
     * exponent plane itself, which is decoded first) */
    const uint8_t *ctx = base ? base : p > 0 ? src : NULL;
    if (c)
      class_add(c, planes[p], ctx, plen, ctx != NULL);
    free(planes[p]);
  }
}

static void take_pair(const char *arg)
{
  char *spec = strdup(arg), *eq = strchr(spec, '=');
  dir_files ft = {0}, base = {0};
  if (eq)
    *eq = '\0';
  load_dir(&ft, spec);
  if (eq)
    load_dir(&base, eq + 1);
  for (size_t f = 0; f < ft.n; f++)
    for (size_t i = 0; i < ft.h[f]->ntensors; i++) {
      const zllm_st_tensor *t = &ft.h[f]->tensors[i];
      if (t->dtype != ZLLM_DT_BF16 && t->dtype != ZLLM_DT_F16 && t->dtype != ZLLM_DT_F32)
        continue;
      uint8_t *src = read_whole(ft.h[f], ft.fd[f], i), *b = base_for(&base, t);
      take_tensor(t, src, b);
      free(src);
      free(b);
    }
  free_dir(&ft);
  free_dir(&base);
  free(spec);
}

/* ---- the bounds --------------------------------------------------------------- */

static double entropy_of(const uint64_t *h, uint64_t n)
{
  double e = 0;
  for (int v = 0; v < 256; v++)
    if (h[v]) {
      double q = (double)h[v] / (double)n;
      e -= q * log2(q);
    }
  return e;
}

/* Order-0 entropy and entropy given the context, bits per byte. */
static void bounds(const plane_class *c, double *h0, double *hc)
{
  uint64_t *h = calloc(256 * 257, sizeof *h), *all = h + 256 * 256;
  uint64_t by_ctx[256] = {0};
  for (size_t i = 0; i < c->n; i++) {
    h[c->ctx[i] * 256 + c->bytes[i]]++;
    all[c->bytes[i]]++;
    by_ctx[c->ctx[i]]++;
  }
  *h0 = entropy_of(all, c->n);
  *hc = 0;
  for (int k = 0; k < 256; k++)
    if (by_ctx[k])
      *hc += (double)by_ctx[k] / (double)c->n * entropy_of(h + 256 * k, by_ctx[k]);
  free(h);
}

/* ---- the coders, chunk by chunk --------------------------------------------------- */

typedef struct {
  const char *name;
  /* codes chunk (n bytes, contexts ctx) into out; returns the stored size */
  size_t (*enc)(const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, int arg);
  /* decodes it back into dst (n bytes); returns 0 when it decoded n bytes */
  int (*dec)(const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, int arg);
  int arg;
  int needs_ctx;
} coder;

static zllm_codec *zc;

static size_t zstd_enc(const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, int level)
{
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  zllm_buf b = ZLLM_BUF_INIT;
  (void)ctx;
  o.zstd_level = level < 0 ? 1 : level;
  o.skip_noise = level == 1 || level < 0; /* the archive's plane settings */
  o.coder = level < 0 ? ZLLM_CODER_RANS0 : ZLLM_CODER_ZSTD; /* format 2's planes, or format 1's */
  if (zllm_stream_encode(zc, &o, in, n, &b) < 0 || b.len > cap)
    die("zstd");
  memcpy(out, b.data, b.len);
  size_t len = b.len;
  zllm_buf_free(&b);
  return len;
}

static int zstd_dec(const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, int arg)
{
  (void)ctx;
  (void)arg;
  return zllm_stream_decode(zc, in, len, dst, n);
}

static size_t rans_enc(const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, int order)
{
  unsigned int len = (unsigned int)cap;
  (void)ctx;
  if (!rans_compress_to_4x16((unsigned char *)in, (unsigned int)n, out, &len, order | RANS_ORDER_SIMD_AUTO))
    die("rans");
  return len;
}

static int rans_dec(const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, int arg)
{
  unsigned int got = (unsigned int)n;
  (void)ctx;
  (void)arg;
  return rans_uncompress_to_4x16((unsigned char *)in, (unsigned int)len, dst, &got) && got == n ? 0 : -1;
}

static size_t arith_enc(const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, int order)
{
  unsigned int len = (unsigned int)cap;
  (void)ctx;
  if (!arith_compress_to((unsigned char *)in, (unsigned int)n, out, &len, order))
    die("arith");
  return len;
}

static int arith_dec(const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, int arg)
{
  unsigned int got = (unsigned int)n;
  (void)ctx;
  (void)arg;
  return arith_uncompress_to((unsigned char *)in, (unsigned int)len, dst, &got) && got == n ? 0 : -1;
}

/* Sub-streams by context: the bytes of each context value, in order, coded
 * order-0 one after another, each prefixed by its stored length (u32).  The
 * decoder counts the contexts itself (it has them), so it knows each
 * sub-stream's raw length; contexts with fewer than SMALL bytes share one
 * sub-stream, since a frequency table would cost more than it saves. */
enum { SMALL = 8192 };

static void ctx_counts(const uint8_t *ctx, size_t n, size_t cnt[257], uint8_t bucket[256], int most)
{
  uint8_t own[256] = {0};
  memset(cnt, 0, 257 * sizeof *cnt);
  for (size_t i = 0; i < n; i++)
    cnt[ctx[i]]++;
  /* at most `most` - 1 contexts of their own (0: any number), the largest */
  for (int taken = 0; most == 0 || taken < most - 1; taken++) {
    int best = -1;
    for (int k = 0; k < 256; k++)
      if (!own[k] && cnt[k] >= SMALL && (best < 0 || cnt[k] > cnt[best]))
        best = k;
    if (best < 0)
      break;
    own[best] = 1;
  }
  for (int k = 0; k < 256; k++)
    bucket[k] = own[k] ? (uint8_t)k : 0; /* the others go with context 0 */
  size_t merged[257] = {0};
  for (int k = 0; k < 256; k++)
    merged[bucket[k]] += cnt[k];
  memcpy(cnt, merged, 257 * sizeof *cnt);
}

static size_t ctx_enc(const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, int order)
{
  size_t cnt[257], start[257], at = 0;
  uint8_t bucket[256], *sorted = malloc(n + 1);
  ctx_counts(ctx, n, cnt, bucket, order >> 8);
  order &= 0xff;
  for (int k = 0; k < 256; k++) {
    start[k] = at;
    at += cnt[k];
  }
  for (size_t i = 0; i < n; i++)
    sorted[start[bucket[ctx[i]]]++] = in[i];
  size_t len = 0, from = 0;
  for (int k = 0; k < 256; k++) {
    if (!cnt[k])
      continue;
    unsigned int z = (unsigned int)(cap - len - 4);
    if (!rans_compress_to_4x16(sorted + from, (unsigned int)cnt[k], out + len + 4, &z, order | RANS_ORDER_SIMD_AUTO))
      die("rans by context");
    memcpy(out + len, &z, 4);
    len += 4 + z;
    from += cnt[k];
  }
  free(sorted);
  return len;
}

static int ctx_dec(const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, int arg)
{
  size_t cnt[257], start[257], at = 0, pos = 0;
  uint8_t bucket[256], *sorted = malloc(n + 1);
  int rc = 0;
  ctx_counts(ctx, n, cnt, bucket, arg >> 8);
  for (int k = 0; rc == 0 && k < 256; k++) {
    start[k] = at;
    if (!cnt[k])
      continue;
    unsigned int z, got = (unsigned int)cnt[k];
    if (pos + 4 > len)
      rc = -1;
    else {
      memcpy(&z, in + pos, 4);
      rc = z <= len - pos - 4 && rans_uncompress_to_4x16((unsigned char *)in + pos + 4, z, sorted + at, &got) &&
                   got == cnt[k]
               ? 0
               : -1;
      pos += 4 + (size_t)z;
    }
    at += cnt[k];
  }
  for (size_t i = 0; rc == 0 && i < n; i++)
    dst[i] = sorted[start[bucket[ctx[i]]]++];
  free(sorted);
  return rc;
}

static zr_work *zw;

static size_t zr_enc(const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, int use_ctx)
{
  size_t len = 0;
  if (zr_encode(zw, in, use_ctx ? ctx : NULL, n, out, cap, &len) < 0)
    die("zllm rANS");
  return len;
}

static int zr_dec(const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, int use_ctx)
{
  return zr_decode(zw, in, len, use_ctx ? ctx : NULL, n, dst, "bench");
}

static const coder coders[] = {
  {"zllm-f1", zstd_enc, zstd_dec, 1, 0}, {"zllm-f2", zstd_enc, zstd_dec, -1, 0},
  {"zstd-3", zstd_enc, zstd_dec, 3, 0},
  {"rans0", rans_enc, rans_dec, 0, 0},  {"rans1", rans_enc, rans_dec, 1, 0},
  {"rans0|c", ctx_enc, ctx_dec, 0, 1},  {"rans0|c4", ctx_enc, ctx_dec, 4 << 8, 1},
  {"arith0", arith_enc, arith_dec, 0, 0},
  {"zr0", zr_enc, zr_dec, 0, 0},        {"zr0|c", zr_enc, zr_dec, 1, 1},
};
#define NCODERS (sizeof coders / sizeof *coders)

/* One coder over a class: stored bytes, and encode / decode seconds. */
static void run_coder(const coder *k, const plane_class *c, uint8_t *out, size_t out_cap, uint8_t *back,
                      size_t *stored, double *enc_s, double *dec_s)
{
  size_t nchunks = (c->n + CHUNK - 1) / CHUNK, *len = calloc(nchunks + 1, sizeof *len), *at = calloc(nchunks + 1, sizeof *at);
  double t0 = bench_now();
  size_t total = 0;
  for (size_t j = 0; j < nchunks; j++) {
    size_t n = c->n - j * CHUNK < CHUNK ? c->n - j * CHUNK : CHUNK;
    at[j] = total;
    len[j] = k->enc(c->bytes + j * CHUNK, c->ctx + j * CHUNK, n, out + total, out_cap - total, k->arg);
    total += len[j];
  }
  double t1 = bench_now();
  for (size_t j = 0; j < nchunks; j++) {
    size_t n = c->n - j * CHUNK < CHUNK ? c->n - j * CHUNK : CHUNK;
    if (k->dec(out + at[j], len[j], c->ctx + j * CHUNK, n, back + j * CHUNK, k->arg) < 0) {
      fprintf(stderr, "zllm-bench-planes: %s failed to decode a chunk\n", k->name);
      exit(1);
    }
  }
  double t2 = bench_now();
  if (memcmp(back, c->bytes, c->n) != 0) {
    fprintf(stderr, "zllm-bench-planes: %s did not give the bytes back\n", k->name);
    exit(1);
  }
  *stored = total;
  *enc_s = t1 - t0;
  *dec_s = t2 - t1;
  free(len);
  free(at);
}

/* CODERS=a,b,... in the environment runs only those (for quick comparisons). */
static int coder_wanted(const coder *k)
{
  const char *list = getenv("CODERS");
  if (!list || !*list)
    return 1;
  size_t n = strlen(k->name);
  for (const char *p = list; (p = strstr(p, k->name)) != NULL; p += n)
    if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
      return 1;
  return 0;
}

static const char *plane_name(const plane_class *c)
{
  static char s[64];
  static const char *bf16[] = {"exp", "sign+man"}, *f16[] = {"sign+exp", "man-hi", "man-lo"},
                    *f32[] = {"exp", "sign+man-hi", "man-mid", "man-lo"};
  const char *p = c->dt == ZLLM_DT_BF16 ? bf16[c->plane] : c->dt == ZLLM_DT_F16 ? f16[c->plane] : f32[c->plane];
  snprintf(s, sizeof s, "%s %s %s", zllm_dtype_get(c->dt)->name, c->bitx ? "bitx" : "solo", p);
  return s;
}

int main(int argc, char **argv)
{
  size_t mib;
  int repeat;
  if (bench_args(argc, argv, "zllm-bench-planes [--mib N] [--repeat R] DIR[=BASE_DIR]...", &mib, &repeat))
    return 2;
  if (optind >= argc) {
    fprintf(stderr, "usage: zllm-bench-planes [--mib N] [--repeat R] DIR[=BASE_DIR]...\n");
    return 2;
  }
  cap_bytes = mib << 20;
  for (int i = optind; i < argc; i++)
    take_pair(argv[i]);
  if (zllm_codec_new(&zc) < 0 || zr_work_new(&zw) < 0)
    die("codec");
  printf("%-24s %10s %6s %6s", "plane", "bytes", "H0", "H|c");
  for (size_t k = 0; k < NCODERS; k++)
    printf(" | %-7s %5s %5s", coders[k].name, "enc", "dec");
  printf("\n%-24s %10s %6s %6s", "", "", "b/B", "b/B");
  for (size_t k = 0; k < NCODERS; k++)
    printf(" | %-7s %5s %5s", "ratio", "MB/s", "MB/s");
  printf("\n");
  for (size_t i = 0; i < nclasses; i++) {
    const plane_class *c = &classes[i];
    double h0, hc;
    if (c->n < CHUNK)
      continue; /* too few bytes to time */
    bounds(c, &h0, &hc);
    size_t cap = 2 * c->n + 65536 * ((c->n + CHUNK - 1) / CHUNK + 1);
    uint8_t *out = malloc(cap), *back = malloc(c->n);
    printf("%-24s %10zu %6.3f %6.3f", plane_name(c), c->n, h0, c->has_ctx ? hc : h0);
    for (size_t k = 0; k < NCODERS; k++) {
      double enc[16], dec[16];
      size_t stored = 0;
      int r = repeat < 1 ? 1 : repeat > 16 ? 16 : repeat;
      if (!coder_wanted(&coders[k]) || (coders[k].needs_ctx && !c->has_ctx)) {
        printf(" | %-7s %5s %5s", "-", "-", "-");
        continue;
      }
      for (int j = 0; j < r; j++)
        run_coder(&coders[k], c, out, cap, back, &stored, &enc[j], &dec[j]);
      printf(" | %-7.4f %5.0f %5.0f", (double)stored / (double)c->n, (double)c->n / 1e6 / bench_median(enc, r),
             (double)c->n / 1e6 / bench_median(dec, r));
    }
    printf("\n");
    fflush(stdout);
    free(out);
    free(back);
  }
  zllm_codec_free(zc);
  return 0;
}
