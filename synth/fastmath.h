/* Private to synth/: the generator's per-element arithmetic, inline so the
 * hot loops in weights.c compile to straight-line code.  rng.c exports the
 * same functions for tests and other modules. */
#ifndef ZLLM_SYNTH_FASTMATH_H
#define ZLLM_SYNTH_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "zllm/fpconv.h"

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

/* the casts live in zllm/fpconv.h, shared with the archive's cast predictor */
#define mk_f32_to_bf16 zllm_fp_f32_to_bf16
#define mk_f32_to_f16 zllm_fp_f32_to_f16
#define mk_bf16_to_f32 zllm_fp_bf16_to_f32
#define mk_f16_to_f32 zllm_fp_f16_to_f32

#endif
