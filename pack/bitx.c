/* BitX byte planes (see zllm/codec.h for the plane layout).  The loops are
 * written per dtype with the XOR folded in, so each compiles to one pass
 * over the input that the compiler can vectorise. */
#include <string.h>

#include "zllm/codec.h"
#include "zllm/le.h"

int zllm_bitx_planes(zllm_dtype dt)
{
  switch (dt) {
  case ZLLM_DT_BF16: return 2;
  case ZLLM_DT_F16: return 3;
  case ZLLM_DT_F32:
  case ZLLM_DT_C64: return 4;
  default: return zllm_dtype_get(dt) ? zllm_dtype_get(dt)->size : 1;
  }
}

size_t zllm_bitx_plane_len(zllm_dtype dt, size_t nelem)
{
  return dt == ZLLM_DT_C64 ? 2 * nelem : nelem;
}

/* The planes never overlap the element arrays: `restrict` on them lets the
 * compiler vectorise the loops without run-time alias checks (more than it
 * will version a loop for).  A merge's base and destination may be the same
 * buffer (zllm/codec.h), so those two stay unqualified. */
#define R restrict
#define INLINE static inline __attribute__((always_inline))

INLINE void split_bf16_impl(const uint8_t *R s, const uint8_t *R b, size_t n, uint8_t *R e, uint8_t *R sm,
                            const int xor)
{
  for (size_t i = 0; i < n; i++) {
    uint16_t x = zllm_le16(s + 2 * i) ^ (xor ? zllm_le16(b + 2 * i) : 0);
    e[i] = (uint8_t)(x >> 7);
    sm[i] = (uint8_t)(((x >> 8) & 0x80) | (x & 0x7f));
  }
}

INLINE void merge_bf16_impl(const uint8_t *R e, const uint8_t *R sm, const uint8_t *b, size_t n, uint8_t *d,
                            const int xor)
{
  for (size_t i = 0; i < n; i++) {
    uint16_t x = (uint16_t)((sm[i] & 0x80) << 8 | e[i] << 7 | (sm[i] & 0x7f));
    x ^= xor ? zllm_le16(b + 2 * i) : 0;
    d[2 * i] = (uint8_t)x;
    d[2 * i + 1] = (uint8_t)(x >> 8);
  }
}

INLINE void split_f16_impl(const uint8_t *R s, const uint8_t *R b, size_t n, uint8_t *R se, uint8_t *R mh,
                           uint8_t *R ml, const int xor)
{
  for (size_t i = 0; i < n; i++) {
    uint16_t x = zllm_le16(s + 2 * i) ^ (xor ? zllm_le16(b + 2 * i) : 0);
    se[i] = (uint8_t)(x >> 10);
    mh[i] = (uint8_t)((x >> 8) & 3);
    ml[i] = (uint8_t)x;
  }
}

INLINE void merge_f16_impl(const uint8_t *R se, const uint8_t *R mh, const uint8_t *R ml, const uint8_t *b,
                           size_t n, uint8_t *d, const int xor)
{
  for (size_t i = 0; i < n; i++) {
    uint16_t x = (uint16_t)(se[i] << 10 | (mh[i] & 3) << 8 | ml[i]);
    x ^= xor ? zllm_le16(b + 2 * i) : 0;
    d[2 * i] = (uint8_t)x;
    d[2 * i + 1] = (uint8_t)(x >> 8);
  }
}

INLINE void split_f32_impl(const uint8_t *R s, const uint8_t *R b, size_t n, uint8_t *R e, uint8_t *R m2,
                           uint8_t *R m1, uint8_t *R m0, const int xor)
{
  for (size_t i = 0; i < n; i++) {
    uint32_t x = zllm_le32(s + 4 * i) ^ (xor ? zllm_le32(b + 4 * i) : 0);
    e[i] = (uint8_t)(x >> 23);
    m2[i] = (uint8_t)(((x >> 24) & 0x80) | ((x >> 16) & 0x7f));
    m1[i] = (uint8_t)(x >> 8);
    m0[i] = (uint8_t)x;
  }
}

INLINE void merge_f32_impl(const uint8_t *R e, const uint8_t *R m2, const uint8_t *R m1, const uint8_t *R m0,
                           const uint8_t *b, size_t n, uint8_t *d, const int xor)
{
  for (size_t i = 0; i < n; i++) {
    uint32_t x = (uint32_t)(m2[i] & 0x80) << 24 | (uint32_t)e[i] << 23 | (uint32_t)(m2[i] & 0x7f) << 16 |
                 (uint32_t)m1[i] << 8 | m0[i];
    x ^= xor ? zllm_le32(b + 4 * i) : 0;
    d[4 * i] = (uint8_t)x;
    d[4 * i + 1] = (uint8_t)(x >> 8);
    d[4 * i + 2] = (uint8_t)(x >> 16);
    d[4 * i + 3] = (uint8_t)(x >> 24);
  }
}

/* Each field loop is instantiated twice, with and without the XOR, so neither
 * copy tests for a base per element. */
static void split_bf16(const uint8_t *s, const uint8_t *b, size_t n, uint8_t *const *p)
{
  if (b)
    split_bf16_impl(s, b, n, p[0], p[1], 1);
  else
    split_bf16_impl(s, NULL, n, p[0], p[1], 0);
}

static void merge_bf16(const uint8_t *const *p, const uint8_t *b, size_t n, uint8_t *d)
{
  if (b)
    merge_bf16_impl(p[0], p[1], b, n, d, 1);
  else
    merge_bf16_impl(p[0], p[1], NULL, n, d, 0);
}

static void split_f16(const uint8_t *s, const uint8_t *b, size_t n, uint8_t *const *p)
{
  if (b)
    split_f16_impl(s, b, n, p[0], p[1], p[2], 1);
  else
    split_f16_impl(s, NULL, n, p[0], p[1], p[2], 0);
}

static void merge_f16(const uint8_t *const *p, const uint8_t *b, size_t n, uint8_t *d)
{
  if (b)
    merge_f16_impl(p[0], p[1], p[2], b, n, d, 1);
  else
    merge_f16_impl(p[0], p[1], p[2], NULL, n, d, 0);
}

static void split_f32(const uint8_t *s, const uint8_t *b, size_t n, uint8_t *const *p)
{
  if (b)
    split_f32_impl(s, b, n, p[0], p[1], p[2], p[3], 1);
  else
    split_f32_impl(s, NULL, n, p[0], p[1], p[2], p[3], 0);
}

static void merge_f32(const uint8_t *const *p, const uint8_t *b, size_t n, uint8_t *d)
{
  if (b)
    merge_f32_impl(p[0], p[1], p[2], p[3], b, n, d, 1);
  else
    merge_f32_impl(p[0], p[1], p[2], p[3], NULL, n, d, 0);
}
#undef R
#undef INLINE

/* Any other width: plane k holds byte k of every element. */
static void split_bytes(const uint8_t *s, const uint8_t *b, size_t n, size_t w, uint8_t *const *pl)
{
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < w; k++)
      pl[k][i] = (uint8_t)(s[w * i + k] ^ (b ? b[w * i + k] : 0));
}

static void merge_bytes(const uint8_t *const *pl, const uint8_t *b, size_t n, size_t w, uint8_t *d)
{
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < w; k++)
      d[w * i + k] = (uint8_t)(pl[k][i] ^ (b ? b[w * i + k] : 0));
}

void zllm_bitx_split(zllm_dtype dt, const uint8_t *src, const uint8_t *base, size_t nelem,
                     uint8_t *const *planes)
{
  switch (dt) {
  case ZLLM_DT_BF16: split_bf16(src, base, nelem, planes); break;
  case ZLLM_DT_F16: split_f16(src, base, nelem, planes); break;
  case ZLLM_DT_F32: split_f32(src, base, nelem, planes); break;
  case ZLLM_DT_C64: split_f32(src, base, 2 * nelem, planes); break;
  default: split_bytes(src, base, nelem, (size_t)zllm_bitx_planes(dt), planes);
  }
}

void zllm_bitx_merge(zllm_dtype dt, const uint8_t *const *planes, const uint8_t *base, size_t nelem,
                     uint8_t *dst)
{
  switch (dt) {
  case ZLLM_DT_BF16: merge_bf16(planes, base, nelem, dst); break;
  case ZLLM_DT_F16: merge_f16(planes, base, nelem, dst); break;
  case ZLLM_DT_F32: merge_f32(planes, base, nelem, dst); break;
  case ZLLM_DT_C64: merge_f32(planes, base, 2 * nelem, dst); break;
  default: merge_bytes(planes, base, nelem, (size_t)zllm_bitx_planes(dt), dst);
  }
}
