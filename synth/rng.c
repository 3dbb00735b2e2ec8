#include <math.h>
#include <string.h>

#include <xxhash.h>

#include "zllm/synth.h"

static uint64_t mix64(uint64_t z)
{
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void zllm_rng_seed(zllm_rng *r, uint64_t seed, const char *a, const char *b, uint64_t salt)
{
  /* each (model, tensor, purpose) gets its own stream, so tensors can be
   * generated in any order and still come out the same */
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL * (salt + 1));
  h ^= XXH3_64bits(a, strlen(a));
  h = mix64(h) ^ XXH3_64bits(b, strlen(b));
  r->s = mix64(h);
}

uint64_t zllm_rng_next(zllm_rng *r)
{
  r->s += 0x9e3779b97f4a7c15ULL;
  return mix64(r->s);
}

float zllm_rng_normal(zllm_rng *r)
{
  uint64_t x = zllm_rng_next(r);
  uint32_t s = (uint32_t)(x & 0xffff) + (uint32_t)((x >> 16) & 0xffff) + (uint32_t)((x >> 32) & 0xffff) +
               (uint32_t)(x >> 48);
  /* sum of 4 U(0,1) has mean 2 and variance 1/3 */
  return ((float)s / 65536.0f - 2.0f) * 1.7320508f;
}

uint16_t zllm_f32_to_bf16(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000)
    return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

uint16_t zllm_f32_to_f16(float f)
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
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
    h++;
  return (uint16_t)(sign | h);
}

float zllm_bf16_to_f32(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float zllm_f16_to_f32(uint16_t h)
{
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0) {
    float f = ldexpf((float)m, -24);
    return sign ? -f : f;
  }
  if (e == 31)
    u = sign | 0x7f800000 | (m << 13);
  else
    u = sign | ((e - 15 + 127) << 23) | (m << 13);
  float f;
  memcpy(&f, &u, 4);
  return f;
}
