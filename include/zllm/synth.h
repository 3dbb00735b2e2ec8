/* zllm/synth.h - deterministic synthetic hubs with ground truth (zllm mkhub).
 *
 * A generated hub has families of a base plus fine-tunes with a controlled
 * fraction of changed elements and perturbation scale (BF16, F16, F32),
 * byte-identical re-uploads, a sharded copy, a frozen-tensor fine-tune, an
 * exact F32 upcast of a BF16 fine-tune, a fine-tune of a fine-tune, an
 * unrelated model of the same architecture, model cards whose base_model is
 * right, missing or wrong, and an opaque .bin repo.  <out>/MANIFEST.tsv lists
 * every file with its SHA-256 and the truth (family, true base, relation,
 * delta base, requested changed fraction and scale, and the measured
 * fraction of bitwise-identical elements against the delta base).
 * The same seed and scale give the same bytes.  Tensors are generated one at
 * a time, so memory stays at a few tensors whatever the scale.  Local.
 */
#ifndef ZLLM_SYNTH_H
#define ZLLM_SYNTH_H

#include <stdint.h>

typedef struct {
  uint64_t seed;
  const char *scale; /* tiny | small | medium | bench | large */
  const char *out;   /* directory; <out>/hub/<org>/<name>/ and <out>/MANIFEST.tsv */
  const char *layout; /* "mixed" (NULL: every relation a hub has) or "family" (one base, seven fine-tunes) */
} zllm_mkhub_options;

#define ZLLM_MKHUB_OPTIONS_INIT {1, "small", NULL, NULL}

/* Names of the scales, NULL-terminated (for help texts). */
extern const char *const zllm_mkhub_scales[];

int zllm_mkhub(const zllm_mkhub_options *opts);

/* Deterministic generator (splitmix64), exposed for tests and benchmarks. */
typedef struct { uint64_t s; } zllm_rng;
void zllm_rng_seed(zllm_rng *r, uint64_t seed, const char *a, const char *b, uint64_t salt);
uint64_t zllm_rng_next(zllm_rng *r);
/* Approximately standard normal (Irwin-Hall of 4 uniforms, rescaled). */
float zllm_rng_normal(zllm_rng *r);

/* Float conversions with round-to-nearest-even (what torch's casts do). */
uint16_t zllm_f32_to_bf16(float f);
uint16_t zllm_f32_to_f16(float f);
float zllm_bf16_to_f32(uint16_t h);
float zllm_f16_to_f32(uint16_t h);

#endif
