/* zllm/fpconv.h - float conversions as training code does them: narrowing
 * with round-to-nearest-even, widening exactly.  Inline; local. */
#ifndef ZLLM_FPCONV_H
#define ZLLM_FPCONV_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint16_t zllm_fp_f32_to_bf16(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000)
    return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static inline uint16_t zllm_fp_f32_to_f16(float f)
{
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, absx = x & 0x7fffffff;
  if (absx >= 0x7f800000)
    return (uint16_t)(sign | (absx > 0x7f800000 ? 0x7e00 : 0x7c00));
  if (absx >= 0x477ff000) /* >= 65520 rounds to infinity */
    return (uint16_t)(sign | 0x7c00);
  if (absx < 0x38800000) { /* below 2^-14: a half subnormal, exact scaling then RNE */
    float a;
    memcpy(&a, &absx, 4);
    return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));
  }
  uint32_t h = ((((absx >> 23) - 127 + 15)) << 10) | ((absx & 0x7fffff) >> 13);
  uint32_t rem = absx & 0x1fff;
  h += rem > 0x1000 || (rem == 0x1000 && (h & 1));
  return (uint16_t)(sign | h);
}

static inline float zllm_fp_bf16_to_f32(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline float zllm_fp_f16_to_f32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) {
    float f = ldexpf((float)m, -24);
    return sign ? -f : f;
  }
  u = e == 31 ? sign | 0x7f800000 | (m << 13) : sign | ((e - 15 + 127) << 23) | (m << 13);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

#endif
