/* zllm/tally.h - the characterization tallies of stats.h5 over float
 * tensors (BF16, F16, F32), fed part by part as the bytes are read.
 *
 * Plain tallies count a model's elements: the exponent field and each byte
 * of the element (the byte streams a coder sees).  Delta tallies compare a
 * fine-tune's elements with its base's (a base of another float dtype is cast
 * as cast-aware BitX predicts: round-to-nearest-even down, exact up): how many
 * are bitwise identical, the exponent change, floor(log2) of the relative
 * change, and the byte and exponent-field histograms of the XOR (from which
 * bit flips per position follow).  Unchanged elements cost a vector compare:
 * the per-element work is done only where an element changed.  Every counter
 * is exact; the results do not depend on how the bytes are cut into parts.
 * Local calls, no allocation. */
#ifndef ZLLM_TALLY_H
#define ZLLM_TALLY_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/dtype.h"

#define ZLLM_TALLY_EXP_BINS 17  /* exponent change -8..+8, clipped */
#define ZLLM_TALLY_REL_BINS 40  /* floor(log2(|ft - base| / |base|)) -32..+7, clipped */
#define ZLLM_TALLY_REL_MIN (-32)

typedef struct {
  uint64_t hist[256];      /* exponent field (F16: 5 bits) */
  uint64_t planes[4][256]; /* byte k of each element, k = 0 least significant */
  uint64_t n;              /* elements */
} zllm_tally_plain;

typedef struct {
  uint64_t elements, same; /* compared, and bitwise identical */
  uint64_t exp_change[ZLLM_TALLY_EXP_BINS];
  uint64_t rel_change[ZLLM_TALLY_REL_BINS]; /* finite, non-zero base only */
  uint64_t xor_planes[4][256]; /* byte k of each element's XOR */
  uint64_t xor_hist[256];      /* exponent field of the XOR */
} zllm_tally_delta;

/* True for the dtypes tallied here (BF16, F16, F32). */
int zllm_tally_dtype(zllm_dtype d);

/* Adds `n` elements of dtype d (little-endian bytes at p). */
void zllm_tally_plain_add(zllm_tally_plain *t, const uint8_t *p, size_t n, zllm_dtype d);

/* Adds `n` elements of dtype d at ft against the base's n elements of dtype
 * bd at base (either float dtype). */
void zllm_tally_delta_add(zllm_tally_delta *t, const uint8_t *ft, const uint8_t *base, size_t n, zllm_dtype d,
                          zllm_dtype bd);

/* Bit flips per position (bit 8k + b is bit b of byte k) from the XOR byte
 * histograms of an element `es` bytes wide; adds to flips[0 .. 8 es). */
void zllm_tally_flips(const zllm_tally_delta *t, size_t es, uint64_t flips[32]);

#endif
