#include <string.h>

#include <xxhash.h>

#include "synth/fastmath.h"
#include "zllm/synth.h"

void zllm_rng_seed(zllm_rng *r, uint64_t seed, const char *a, const char *b, uint64_t salt)
{
  /* each (model, tensor, purpose) gets its own stream, so tensors can be
   * generated in any order and still come out the same */
  uint64_t h = mk_mix64(seed + 0x9e3779b97f4a7c15ULL * (salt + 1));
  h ^= XXH3_64bits(a, strlen(a));
  h = mk_mix64(h) ^ XXH3_64bits(b, strlen(b));
  r->s = mk_mix64(h);
}

uint64_t zllm_rng_next(zllm_rng *r) { return mk_next(&r->s); }
float zllm_rng_normal(zllm_rng *r) { return mk_normal_of(mk_next(&r->s)); }
uint16_t zllm_f32_to_bf16(float f) { return mk_f32_to_bf16(f); }
uint16_t zllm_f32_to_f16(float f) { return mk_f32_to_f16(f); }
float zllm_bf16_to_f32(uint16_t h) { return mk_bf16_to_f32(h); }
float zllm_f16_to_f32(uint16_t h) { return mk_f16_to_f32(h); }
