/* Private to synth/: the generator's per-element arithmetic, inline so the
 * hot loops in weights.c compile to straight-line code.  rng.c exports the
 * same functions for tests and other modules. */
#ifndef ZLLM_SYNTH_FASTMATH_H
#define ZLLM_SYNTH_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t mk_mix64(uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* splitmix64 is a counter generator: draw i of a stream is mix(state + (i+1)*gamma). */
static inline uint64_t mk_next(uint64_t *s)
{
  *s += 0x9e3779b97f4a7c15ULL;
  return mk_mix64(*s);
}

/* Irwin-Hall(4) of one 64-bit draw, rescaled to mean 0 and variance 1. */
static inline float mk_normal_of(uint64_t x)
{
  uint32_t s = (uint32_t)(x & 0xffff) + (uint32_t)((x >> 16) & 0xffff) + (uint32_t)((x >> 32) & 0xffff) +
               (uint32_t)(x >> 48);
  return ((float)s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

static inline uint16_t mk_f32_to_bf16(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000)
    return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

static inline uint16_t mk_f32_to_f16(float f)
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

static inline float mk_bf16_to_f32(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline float mk_f16_to_f32(uint16_t h)
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
