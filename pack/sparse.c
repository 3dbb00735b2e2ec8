/* Sparse planes: bitmap + non-zero bytes (pack/sparse.h).
 *
 * Eight bytes at a time, without a branch on the data: in a plane with a
 * few percent of non-zero bytes about half of the groups of eight hold one,
 * so a "skip the empty group" test is mispredicted half the time and costs
 * more than the work it skips.  On x86-64 with SSSE3 a group is compacted
 * and expanded by one byte shuffle from a table of 256 masks. */
#include <string.h>

#include "pack/sparse.h"
#include "zllm/le.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_SHUFFLE 1
#endif

/* One bit per byte of x: set where the byte is not zero (bit k = byte k). */
static inline uint8_t nonzero_mask(uint64_t x)
{
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
  uint64_t t = (((x & low7) + low7) | x) & ~low7; /* the high bit of each non-zero byte */
  return (uint8_t)(((t >> 7) * 0x0102040810204080ull) >> 56);
}

#ifdef HAVE_SHUFFLE
/* compact[b]: the positions of b's set bits, first to last (then 0x80: zero);
 * expand[b]: for each of the 8 positions, which non-zero byte goes there
 * (the count of set bits below it), or 0x80 where b's bit is clear. */
static uint8_t compact[256][8], expand[256][8];
static int tables_ready = -1; /* -1: not decided, 0: no SSSE3, 1: tables built */

static int shuffle_ready(void)
{
  if (__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE) >= 0)
    return tables_ready;
  for (int b = 0; b < 256; b++) {
    int c = 0;
    for (int k = 0; k < 8; k++) {
      compact[b][k] = 0x80;
      expand[b][k] = (uint8_t)(b >> k & 1 ? c : 0x80);
      if (b >> k & 1)
        compact[b][c++] = (uint8_t)k;
    }
  }
  /* threads racing here build the same tables */
  __atomic_store_n(&tables_ready, __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("popcnt"),
                   __ATOMIC_RELEASE);
  return tables_ready;
}

__attribute__((target("ssse3,popcnt"))) static size_t split_shuffle(const uint8_t *src, size_t n,
                                                                    uint8_t *bitmap, uint8_t *vals, size_t *done)
{
  size_t m = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i x = _mm_loadl_epi64((const __m128i *)(src + i));
    unsigned b = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128())) & 0xff;
    bitmap[i / 8] = (uint8_t)b;
    _mm_storel_epi64((__m128i *)(vals + m), _mm_shuffle_epi8(x, _mm_loadl_epi64((const __m128i *)compact[b])));
    m += (size_t)_mm_popcnt_u32(b);
  }
  *done = i;
  return m;
}

__attribute__((target("ssse3,popcnt"))) static size_t merge_shuffle(const uint8_t *bitmap, const uint8_t *vals,
                                                                    size_t m, size_t n, uint8_t *dst, size_t *done)
{
  size_t j = 0, i = 0;
  /* a group reads 8 non-zero bytes from j: stop while 8 are left, the
   * scalar loop does the rest with its checks */
  for (; i + 8 <= n && m - j >= 8; i += 8) {
    unsigned b = bitmap[i / 8];
    __m128i v = _mm_loadl_epi64((const __m128i *)(vals + j));
    _mm_storel_epi64((__m128i *)(dst + i), _mm_shuffle_epi8(v, _mm_loadl_epi64((const __m128i *)expand[b])));
    j += (size_t)_mm_popcnt_u32(b);
  }
  *done = i;
  return j;
}
#endif

size_t zs_split(const uint8_t *src, size_t n, uint8_t *bitmap, uint8_t *vals)
{
  size_t m = 0, i = 0;
#ifdef HAVE_SHUFFLE
  if (shuffle_ready())
    m = split_shuffle(src, n, bitmap, vals, &i);
#endif
  for (; i + 8 <= n; i += 8) {
    uint64_t x = zllm_le64(src + i);
    uint8_t b = nonzero_mask(x);
    bitmap[i / 8] = b;
    for (int k = 0; k < 8; k++) { /* every byte written, the non-zero ones kept */
      vals[m] = (uint8_t)(x >> (8 * k));
      m += b >> k & 1;
    }
  }
  if (i < n) {
    uint8_t b = 0;
    for (size_t k = 0; i + k < n; k++)
      if (src[i + k]) {
        b |= (uint8_t)(1u << k);
        vals[m++] = src[i + k];
      }
    bitmap[i / 8] = b;
  }
  return m;
}

int zs_merge(const uint8_t *bitmap, const uint8_t *vals, size_t m, size_t n, uint8_t *dst)
{
  size_t j = 0, i = 0;
#ifdef HAVE_SHUFFLE
  if (shuffle_ready())
    j = merge_shuffle(bitmap, vals, m, n, dst, &i);
#endif
  for (; i + 8 <= n; i += 8) {
    uint8_t b = bitmap[i / 8];
    if (m - j < 8 && (size_t)__builtin_popcount(b) > m - j)
      return -1; /* names more bytes than there are */
    for (int k = 0; k < 8; k++) {
      uint8_t bit = b >> k & 1;
      dst[i + k] = (uint8_t)(vals[j] & (0u - bit)); /* vals[j] is in range: a bit is left */
      j += bit;
    }
  }
  if (i < n) {
    uint8_t b = bitmap[i / 8];
    if (b >> (n - i))
      return -1; /* a bit past the end */
    for (size_t k = 0; i + k < n; k++) {
      if (b >> k & 1) {
        if (j >= m)
          return -1;
        dst[i + k] = vals[j++];
      } else {
        dst[i + k] = 0;
      }
    }
  }
  return j == m ? 0 : -1;
}
