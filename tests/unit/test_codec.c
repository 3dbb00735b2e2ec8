/* pack/bitx.c and pack/stream.c: planes and the chunked container. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pack/rans.h"
#include "pack/sparse.h"
#include "zllm/codec.h"
#include "zllm/error.h"
#include "zllm/safetensors.h"

static uint64_t rng_state = 42;
static uint8_t rnd8(void)
{
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint8_t)(rng_state >> 56);
}

static void fill_random(uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    p[i] = rnd8();
}

/* with_base: 0 none, 1 a base, 2 a base merged in place (dst == base, as
 * zllm/codec.h allows).  `skew` offsets every buffer by that many bytes, so
 * the vectorised loops meet unaligned heads and odd tails. */
static void round_trip(zllm_dtype dt, size_t nelem, int with_base, size_t skew)
{
  size_t es = zllm_dtype_get(dt)->size, bytes = nelem * es, pl = zllm_bitx_plane_len(dt, nelem);
  int np = zllm_bitx_planes(dt);
  uint8_t *src = malloc(bytes + 1 + skew), *base = malloc(bytes + 1 + skew), *dst = malloc(bytes + 1 + skew);
  uint8_t *planes[ZLLM_BITX_MAX_PLANES], *mem[ZLLM_BITX_MAX_PLANES];
  uint8_t *s = src + skew, *b = base + skew, *d = dst + skew;
  fill_random(s, bytes);
  fill_random(b, bytes);
  for (int p = 0; p < np; p++)
    planes[p] = (mem[p] = malloc(pl + 1 + skew)) + skew;
  /* planes hold the tensor's bytes; F16's 2-bit mantissa plane adds one byte per element */
  assert_true(np * pl == (dt == ZLLM_DT_F16 ? bytes / 2 * 3 : bytes));
  zllm_bitx_split(dt, s, with_base ? b : NULL, nelem, planes);
  if (with_base == 2) {
    memcpy(d, b, bytes);
    zllm_bitx_merge(dt, (const uint8_t *const *)planes, d, nelem, d);
  } else {
    zllm_bitx_merge(dt, (const uint8_t *const *)planes, with_base ? b : NULL, nelem, d);
  }
  assert_memory_equal(s, d, bytes);
  for (int p = 0; p < np; p++)
    free(mem[p]);
  free(src);
  free(base);
  free(dst);
}

static void test_pack_bitx__round_trip_every_dtype(void **state)
{
  (void)state;
  const size_t sizes[] = {0, 1, 7, 15, 16, 17, 33, 1000, 65537};
  for (int dt = 0; dt < ZLLM_DT_COUNT; dt++)
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
      for (int mode = 0; mode < 3; mode++)
        for (size_t skew = 0; skew < 4; skew += 3)
          round_trip((zllm_dtype)dt, sizes[i], mode, skew);
}

static void split1(zllm_dtype dt, const uint8_t *elem, uint8_t *out)
{
  uint8_t *planes[ZLLM_BITX_MAX_PLANES];
  for (int p = 0; p < zllm_bitx_planes(dt); p++)
    planes[p] = out + p;
  zllm_bitx_split(dt, elem, NULL, 1, planes);
}

/* The planes hold the number's fields, as documented. */
static void test_pack_bitx__field_aligned_planes(void **state)
{
  (void)state;
  uint8_t o[8];
  split1(ZLLM_DT_BF16, (const uint8_t[]){0x80, 0x3f}, o); /* 1.0 */
  assert_int_equal(o[0], 0x7f);
  assert_int_equal(o[1], 0x00);
  split1(ZLLM_DT_BF16, (const uint8_t[]){0x81, 0xbf}, o); /* -1.0078125: sign, mantissa 1 */
  assert_int_equal(o[0], 0x7f);
  assert_int_equal(o[1], 0x81);
  split1(ZLLM_DT_F16, (const uint8_t[]){0x01, 0xbe}, o); /* sign 1, exp 01111, mantissa 10 0000 0001 */
  assert_int_equal(o[0], 0x2f);
  assert_int_equal(o[1], 0x02);
  assert_int_equal(o[2], 0x01);
  split1(ZLLM_DT_F32, (const uint8_t[]){0x03, 0x02, 0xc0, 0xbf}, o); /* -1.5 plus low bits */
  assert_int_equal(o[0], 0x7f);
  assert_int_equal(o[1], 0xc0);
  assert_int_equal(o[2], 0x02);
  assert_int_equal(o[3], 0x03);
}

/* The coder the stream tests below use: each runs once per coder. */
static zllm_stream_coder coder_under_test = ZLLM_CODER_ZSTD;

static uint8_t *encode(zllm_codec *c, const uint8_t *src, size_t len, uint32_t chunk, size_t *out_len)
{
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  zllm_buf b = ZLLM_BUF_INIT;
  o.chunk_size = chunk;
  o.coder = coder_under_test;
  assert_int_equal(zllm_stream_encode(c, &o, src, len, &b), 0);
  return (uint8_t *)zllm_buf_detach(&b, out_len);
}

static void stream_round_trips(void)
{
  zllm_codec *c;
  assert_int_equal(zllm_codec_new(&c), 0);
  size_t n = 3 * 4096 + 17;
  uint8_t *kinds[4];
  for (int k = 0; k < 4; k++)
    kinds[k] = malloc(n);
  fill_random(kinds[0], n);                        /* incompressible -> raw */
  memset(kinds[1], 0, n);                          /* zeros -> constant */
  for (size_t i = 0; i < n; i++)
    kinds[2][i] = (uint8_t)(i % 3 == 0 ? rnd8() & 3 : 0); /* compressible -> zstd */
  for (size_t i = 0; i < n; i++)
    kinds[3][i] = i < n / 2 ? 7 : rnd8(); /* mixed per chunk */
  const size_t lens[] = {0, 1, 4096, n};
  for (int k = 0; k < 4; k++)
    for (size_t li = 0; li < 4; li++) {
      size_t len = lens[li], blen;
      uint8_t *blob = encode(c, kinds[k], len, 4096, &blen), *back = malloc(len + 1);
      uint64_t raw;
      uint32_t cs, nch;
      assert_int_equal(zllm_stream_info(blob, blen, &raw, &cs, &nch), 0);
      assert_true(raw == len);
      assert_int_equal(nch, (len + 4095) / 4096);
      assert_int_equal(zllm_stream_decode(c, blob, blen, back, len), 0);
      assert_memory_equal(back, kinds[k], len);
      for (uint32_t ch = 0; ch < nch; ch++) { /* any chunk alone */
        uint8_t one[4096];
        size_t got;
        assert_int_equal(zllm_stream_decode_chunk(c, blob, blen, ch, one, &got), 0);
        assert_memory_equal(one, kinds[k] + (size_t)ch * 4096, got);
      }
      if (k == 0)
        assert_true(blen <= len + 24 + 16 * nch); /* raw fallback bounds the overhead */
      if (k == 1)
        assert_true(blen <= 24 + 17 * nch);       /* a zero chunk costs one byte */
      uint64_t counts[ZLLM_CHUNK_CODECS] = {0};
      assert_int_equal(zllm_stream_count_codecs(blob, blen, counts), 0);
      if (k == 2) /* the whole compressible chunks went to the coder asked for */
        assert_true(counts[coder_under_test == ZLLM_CODER_RANS0 ? ZLLM_CHUNK_RANS0 : ZLLM_CHUNK_ZSTD] >= len / 4096);
      free(blob);
      free(back);
    }
  for (int k = 0; k < 4; k++)
    free(kinds[k]);
  zllm_codec_free(c);
}

static void test_pack_stream__round_trips_and_chunks(void **state)
{
  (void)state;
  coder_under_test = ZLLM_CODER_ZSTD;
  stream_round_trips();
  coder_under_test = ZLLM_CODER_RANS0;
  stream_round_trips();
  coder_under_test = ZLLM_CODER_ZSTD;
}

/* Every truncation of a container is refused, and every single-byte change
 * is refused or (a rANS frame has bits its decoder never reads) gives the
 * same bytes back: never a crash, never an overread, never wrong bytes. */
static void stream_corruptions_refused(void)
{
  zllm_codec *c;
  assert_int_equal(zllm_codec_new(&c), 0);
  uint8_t src[3000];
  for (size_t i = 0; i < sizeof src; i++)
    src[i] = (uint8_t)(i < 1000 ? 0 : i < 2000 ? (i * 7) & 3 : rnd8());
  size_t blen;
  uint8_t *blob = encode(c, src, sizeof src, 1000, &blen), out[3000];
  for (size_t cut = 0; cut < blen; cut++)
    assert_int_equal(zllm_stream_decode(c, blob, cut, out, sizeof src), ZLLM_EFORMAT);
  for (size_t i = 0; i < blen; i++) {
    uint8_t *bad = malloc(blen);
    memcpy(bad, blob, blen);
    bad[i] ^= 0x5a;
    if (zllm_stream_decode(c, bad, blen, out, sizeof src) == 0 && memcmp(out, src, sizeof src) != 0)
      fail_msg("a change at byte %zu of %zu gave wrong bytes", i, blen);
    free(bad);
  }
  assert_int_equal(zllm_stream_decode(c, blob, blen, out, sizeof src - 1), ZLLM_EFORMAT);
  free(blob);
  zllm_codec_free(c);
}

static void test_pack_stream__corrupt_containers_are_refused(void **state)
{
  (void)state;
  coder_under_test = ZLLM_CODER_ZSTD;
  stream_corruptions_refused();
  coder_under_test = ZLLM_CODER_RANS0;
  stream_corruptions_refused();
  coder_under_test = ZLLM_CODER_ZSTD;
}

/* A damaged rANS frame is an error naming its chunk, or (a bit the decoder
 * never reads) the same bytes: every byte of the frame changed in turn. */
static void test_pack_stream__corrupt_rans_frames_name_the_chunk(void **state)
{
  (void)state;
  zllm_codec *c;
  assert_int_equal(zllm_codec_new(&c), 0);
  enum { N = 20000 };
  static uint8_t src[N], out[N];
  for (size_t i = 0; i < N; i++)
    src[i] = (uint8_t)(rnd8() % 5 == 0 ? rnd8() & 15 : 0); /* a BitX exponent plane's look */
  coder_under_test = ZLLM_CODER_RANS0;
  size_t blen;
  uint8_t *blob = encode(c, src, N, N, &blen);
  coder_under_test = ZLLM_CODER_ZSTD;
  uint64_t counts[ZLLM_CHUNK_CODECS] = {0};
  assert_int_equal(zllm_stream_count_codecs(blob, blen, counts), 0);
  assert_true(counts[ZLLM_CHUNK_RANS0] == 1);
  size_t frame = 24 + 16, refused = 0; /* header and the one chunk entry */
  for (size_t i = frame; i < blen; i++) {
    uint8_t *bad = malloc(blen);
    memcpy(bad, blob, blen);
    bad[i] ^= (uint8_t)(1 + rnd8() % 255);
    int rc = zllm_stream_decode(c, bad, blen, out, N);
    if (rc == 0 && memcmp(out, src, N) != 0)
      fail_msg("a change at byte %zu of the rANS frame gave wrong bytes", i - frame);
    if (rc != 0) {
      assert_int_equal(rc, ZLLM_EFORMAT);
      assert_non_null(strstr(zllm_error_last(), "chunk 0"));
      refused++;
    }
    free(bad);
  }
  assert_true(refused > (blen - frame) * 9 / 10); /* the rest are bits nobody reads */
  free(blob);
  zllm_codec_free(c);
}

/* Sparse planes: the bitmap names exactly the non-zero bytes, the split and
 * merge are inverses at every length and density (both code paths: groups
 * of eight and the tail), and a bitmap naming more or fewer bytes than
 * there are is refused. */
static void test_pack_sparse__split_merge_inverse(void **state)
{
  (void)state;
  enum { MAX = 700 };
  static uint8_t src[MAX], bitmap[MAX / 8 + 1], vals[MAX + 8], back[MAX];
  for (int it = 0; it < 5000; it++) {
    size_t n = (size_t)rnd8() * 3 % MAX, want = 0;
    int density = rnd8() % 101;
    for (size_t i = 0; i < n; i++)
      src[i] = (uint8_t)(rnd8() % 100 < density ? 1 + rnd8() % 255 : 0);
    size_t m = zs_split(src, n, bitmap, vals);
    for (size_t i = 0; i < n; i++) {
      assert_int_equal(bitmap[i / 8] >> (i % 8) & 1, src[i] != 0);
      want += src[i] != 0;
    }
    assert_true(m == want);
    assert_int_equal(zs_merge(bitmap, vals, m, n, back), 0);
    assert_memory_equal(back, src, n);
    if (m)
      assert_int_equal(zs_merge(bitmap, vals, m - 1, n, back), -1);
    assert_int_equal(zs_merge(bitmap, vals, m + 1, n, back), -1);
  }
  memset(bitmap, 0, sizeof bitmap);
  bitmap[1] = 0x80; /* position 15 of a 12-byte plane: past its end */
  assert_int_equal(zs_merge(bitmap, vals, 1, 12, back), -1);
}

/* A mostly-zero plane chunk is stored sparse (and decodes exactly); a
 * damaged sparse chunk is an error naming it, never wrong bytes. */
static void test_pack_stream__sparse_planes(void **state)
{
  (void)state;
  zllm_codec *c;
  assert_int_equal(zllm_codec_new(&c), 0);
  size_t n = 3 << 16;
  uint8_t *src = malloc(n), *back = malloc(n);
  for (size_t i = 0; i < n; i++) /* like a BitX exponent plane: 6% changed, small values */
    src[i] = (uint8_t)(rnd8() % 100 < 6 ? 1 + rnd8() % 6 : 0);
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  o.coder = ZLLM_CODER_RANS0;
  o.skip_noise = 1;
  o.chunk_size = 1 << 16;
  zllm_buf b = ZLLM_BUF_INIT;
  assert_int_equal(zllm_stream_encode(c, &o, src, n, &b), 0);
  uint64_t counts[ZLLM_CHUNK_CODECS] = {0};
  assert_int_equal(zllm_stream_count_codecs((uint8_t *)b.data, b.len, counts), 0);
  assert_true(counts[ZLLM_CHUNK_SPARSE] == 3);
  assert_true(b.len < n / 5); /* ~0.33 + 0.06 x 2.6 bits of 8 */
  assert_int_equal(zllm_stream_decode(c, (uint8_t *)b.data, b.len, back, n), 0);
  assert_memory_equal(back, src, n);
  size_t first = 24 + 3 * 16, refused = 0, tries = 0;
  for (size_t i = first; i < first + 4000 && i < b.len; i += 7, tries++) {
    uint8_t *bad = malloc(b.len);
    memcpy(bad, b.data, b.len);
    bad[i] ^= (uint8_t)(1 + rnd8() % 255);
    int rc = zllm_stream_decode(c, bad, b.len, back, n);
    if (rc == 0 && memcmp(back, src, n) != 0)
      fail_msg("a change at byte %zu of a sparse chunk gave wrong bytes", i - first);
    if (rc != 0) {
      assert_int_equal(rc, ZLLM_EFORMAT);
      assert_non_null(strstr(zllm_error_last(), "chunk 0"));
      refused++;
    }
    free(bad);
  }
  assert_true(refused > tries * 9 / 10);
  zllm_buf_free(&b);
  free(src);
  free(back);
  zllm_codec_free(c);
}

/* skip_noise stores noise raw (and only noise): a random chunk comes out the
 * same size as with zstd's own raw fallback, a skewed one still compresses. */
static void test_pack_stream__skip_noise_only_skips_noise(void **state)
{
  (void)state;
  zllm_codec *c;
  assert_int_equal(zllm_codec_new(&c), 0);
  size_t n = 1 << 18;
  uint8_t *noise = malloc(n), *skewed = malloc(n), *back = malloc(n);
  fill_random(noise, n);
  for (size_t i = 0; i < n; i++)
    skewed[i] = (uint8_t)(rnd8() & 0x0f); /* 4 bits of entropy per byte */
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  o.skip_noise = 1;
  zllm_buf a = ZLLM_BUF_INIT, b = ZLLM_BUF_INIT;
  assert_int_equal(zllm_stream_encode(c, &o, noise, n, &a), 0);
  assert_int_equal(zllm_stream_encode(c, &o, skewed, n, &b), 0);
  assert_true(a.len == n + 24 + 16);      /* one raw chunk */
  assert_true(b.len < n * 55 / 100);      /* ~4 bits of 8, plus table overhead */
  assert_int_equal(zllm_stream_decode(c, (uint8_t *)a.data, a.len, back, n), 0);
  assert_memory_equal(back, noise, n);
  assert_int_equal(zllm_stream_decode(c, (uint8_t *)b.data, b.len, back, n), 0);
  assert_memory_equal(back, skewed, n);
  zllm_buf_free(&a);
  zllm_buf_free(&b);
  free(noise);
  free(skewed);
  free(back);
  zllm_codec_free(c);
}

/* On real weights: a fine-tune XORed with its base stores smaller than the
 * same tensor grouped alone, and an identical tensor costs (almost) nothing. */
static void test_pack_bitx__real_finetune_against_base(void **state)
{
  (void)state;
  zllm_st_header *hf = NULL, *hb = NULL;
  int ff = -1, fb = -1;
  assert_int_equal(zllm_st_open(&hf, &ff, ZLLM_SAMPLE_DIR "/hub/tinytales/stories260K-manpages-lr1e-5/model.safetensors"), 0);
  assert_int_equal(zllm_st_open(&hb, &fb, ZLLM_SAMPLE_DIR "/hub/llama2c/stories260K-bf16/model.safetensors"), 0);
  zllm_codec *c;
  assert_int_equal(zllm_codec_new(&c), 0);
  size_t solo = 0, delta = 0, same = 0, raw = 0;
  for (size_t i = 0; i < hf->ntensors; i++) {
    const zllm_st_tensor *t = &hf->tensors[i];
    long j = zllm_st_find(hb, t->name);
    assert_true(j >= 0);
    size_t n = t->end - t->begin;
    uint8_t *a = malloc(n), *b = malloc(n), *back = malloc(n), *pl[2];
    assert_int_equal(zllm_st_read_tensor(hf, ff, i, 0, a, n), 0);
    assert_int_equal(zllm_st_read_tensor(hb, fb, (size_t)j, 0, b, n), 0);
    for (int p = 0; p < 2; p++)
      pl[p] = malloc(n / 2);
    const uint8_t *bases[3] = {NULL, b, a};
    size_t *sizes[3] = {&solo, &delta, &same};
    for (int mode = 0; mode < 3; mode++) {
      zllm_buf blob[2] = {ZLLM_BUF_INIT, ZLLM_BUF_INIT};
      zllm_bitx_split(ZLLM_DT_BF16, a, bases[mode], n / 2, pl);
      for (int p = 0; p < 2; p++) {
        assert_int_equal(zllm_stream_encode(c, NULL, pl[p], n / 2, &blob[p]), 0);
        *sizes[mode] += blob[p].len;
        memset(pl[p], 0xee, n / 2);
        assert_int_equal(zllm_stream_decode(c, (uint8_t *)blob[p].data, blob[p].len, pl[p], n / 2), 0);
        zllm_buf_free(&blob[p]);
      }
      zllm_bitx_merge(ZLLM_DT_BF16, (const uint8_t *const *)pl, bases[mode], n / 2, back);
      assert_memory_equal(back, a, n);
    }
    raw += n;
    for (int p = 0; p < 2; p++)
      free(pl[p]);
    free(a);
    free(b);
    free(back);
  }
  printf("# stories260K lr1e-5 vs bf16 base: raw %zu, solo planes %zu, BitX %zu, identical %zu bytes\n", raw, solo,
         delta, same);
  assert_true(delta < solo);
  assert_true(same < raw / 100);
  zllm_codec_free(c);
  close(ff);
  close(fb);
  zllm_st_header_free(hf);
  zllm_st_header_free(hb);
}

/* ---- the plane coder's rANS stage (pack/rans.c) ---------------------------------- */

static uint64_t zr_rng = 88172645463325252ull;
static uint32_t zr_next(void)
{
  zr_rng ^= zr_rng << 13;
  zr_rng ^= zr_rng >> 7;
  zr_rng ^= zr_rng << 17;
  return (uint32_t)zr_rng;
}

/* Skewed bytes whose distribution depends on the context, as a BitX plane's
 * does on the base's exponent. */
static void zr_fill(uint8_t *in, uint8_t *ctx, size_t n, int kinds)
{
  for (size_t i = 0; i < n; i++) {
    ctx[i] = (uint8_t)(120 + zr_next() % (uint32_t)kinds);
    uint32_t r = zr_next();
    in[i] = (uint8_t)(ctx[i] & 1 ? r % 3 : (r >> 8) % 64 < 48 ? 0 : r >> 16);
  }
}

static size_t zr_round_trip(const uint8_t *in, const uint8_t *ctx, size_t n)
{
  size_t cap = zr_bound(n), len = 0;
  uint8_t *out = malloc(cap), *back = malloc(n + 1);
  assert_non_null(out);
  assert_non_null(back);
  assert_int_equal(zr_encode(NULL, in, ctx, n, out, cap, &len), 0);
  assert_true(len <= cap);
  assert_int_equal(zr_decode(NULL, out, len, ctx, n, back, "test"), 0);
  if (n)
    assert_memory_equal(back, in, n);
  free(out);
  free(back);
  return len;
}

static void test_pack_rans__round_trips_with_and_without_contexts(void **state)
{
  (void)state;
  static const size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 100, 4096, 65537, 262144};
  size_t big = 262144;
  uint8_t *in = malloc(big), *ctx = malloc(big);
  assert_non_null(in);
  assert_non_null(ctx);
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    zr_fill(in, ctx, sizes[k], 6);
    zr_round_trip(in, NULL, sizes[k]);
    zr_round_trip(in, ctx, sizes[k]);
  }
  /* the context pays: its tables see the two distributions apart */
  zr_fill(in, ctx, big, 2);
  size_t plain = zr_round_trip(in, NULL, big), with_ctx = zr_round_trip(in, ctx, big);
  assert_true(with_ctx < plain * 9 / 10);
  /* one symbol costs next to nothing; noise costs about its size */
  memset(in, 7, big);
  assert_true(zr_round_trip(in, NULL, big) < 600);
  for (size_t i = 0; i < big; i++)
    in[i] = (uint8_t)zr_next();
  size_t noise = zr_round_trip(in, NULL, big);
  assert_true(noise > big && noise < big + big / 50);
  /* every byte value, every frequency edge: a table where one symbol has 4095 */
  for (size_t i = 0; i < big; i++)
    in[i] = i % 5000 == 0 ? (uint8_t)(i / 5000) : 0;
  zr_round_trip(in, NULL, big);
  free(in);
  free(ctx);
}

static void test_pack_rans__corrupt_blocks_are_errors_not_crashes(void **state)
{
  (void)state;
  enum { N = 20000 };
  uint8_t in[N], ctx[N], out[N * 2 + 16384], back[N];
  size_t len = 0;
  zr_fill(in, ctx, N, 2); /* two contexts of ~10,000 bytes: each gets a table */
  assert_true(sizeof out >= zr_bound(N));
  assert_int_equal(zr_encode(NULL, in, ctx, N, out, sizeof out, &len), 0);
  /* cut short anywhere: refused, naming the block */
  for (size_t cut = 0; cut < len; cut += 1 + cut / 16) {
    assert_int_equal(zr_decode(NULL, out, cut, ctx, N, back, "blob 9"), ZLLM_EFORMAT);
    assert_non_null(strstr(zllm_error_last(), "blob 9: corrupt rANS block"));
  }
  /* tables used without the contexts they need */
  assert_int_equal(zr_decode(NULL, out, len, NULL, N, back, "blob 9"), ZLLM_EFORMAT);
  /* any byte changed: an error, or (rarely, where the change is in a
   * renormalisation word that ends the same) bytes the container's checksum
   * refuses — never a read or write outside the buffers (ASan runs this) */
  int refused = 0;
  for (int k = 0; k < 3000; k++) {
    uint8_t bad[sizeof out];
    memcpy(bad, out, len);
    bad[zr_next() % len] ^= (uint8_t)(1 + zr_next() % 255);
    refused += zr_decode(NULL, bad, len, ctx, N, back, "blob 9") == ZLLM_EFORMAT;
  }
  assert_true(refused > 2900);
  /* too many tables, a frequency table that does not sum to 4096 */
  uint8_t hdr[64] = {1, 18};
  assert_int_equal(zr_decode(NULL, hdr, sizeof hdr, ctx, N, back, "x"), ZLLM_EFORMAT);
  memset(hdr, 0, sizeof hdr);
  hdr[0] = 1;
  hdr[1] = 1;
  hdr[2] = 1;        /* symbol 0 present */
  hdr[2 + 32] = 100; /* with frequency 100 of 4096 */
  assert_int_equal(zr_decode(NULL, hdr, sizeof hdr, NULL, 10, back, "x"), ZLLM_EFORMAT);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pack_bitx__round_trip_every_dtype),
    cmocka_unit_test(test_pack_bitx__field_aligned_planes),
    cmocka_unit_test(test_pack_stream__round_trips_and_chunks),
    cmocka_unit_test(test_pack_stream__corrupt_containers_are_refused),
    cmocka_unit_test(test_pack_stream__corrupt_rans_frames_name_the_chunk),
    cmocka_unit_test(test_pack_stream__skip_noise_only_skips_noise),
    cmocka_unit_test(test_pack_sparse__split_merge_inverse),
    cmocka_unit_test(test_pack_stream__sparse_planes),
    cmocka_unit_test(test_pack_bitx__real_finetune_against_base),
    cmocka_unit_test(test_pack_rans__round_trips_with_and_without_contexts),
    cmocka_unit_test(test_pack_rans__corrupt_blocks_are_errors_not_crashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
