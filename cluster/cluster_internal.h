/* Private to cluster/: helpers shared by the sketch, compare and family code. */
#ifndef ZLLM_CLUSTER_INTERNAL_H
#define ZLLM_CLUSTER_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "zllm/cluster.h"
#include "zllm/dtype.h"
#include "zllm/le.h"

uint64_t cl_mix64(uint64_t x);
int cl_sampled_dtype(zllm_dtype d);

/* The candidate pairs of bands part, part + nparts, ... (part 0 also adds
 * the card and small-group pairs), as sorted unique keys a << 32 | b.  The
 * union over all parts is zllm_cluster_candidates' list. */
int cl_candidates_share(zllm_sketch *const *s, size_t n, const zllm_lsh_options *o, unsigned part,
                        unsigned nparts, uint64_t **keys, size_t *nkeys);
/* idx[i]: the index of sketch i's declared base among the sketches, or -1. */
int cl_declared_index(zllm_sketch *const *s, size_t n, long *idx);
/* Sorts keys and drops repeats in place. */
int cl_pairs_sort_unique(uint64_t *keys, size_t *n);

/* A sample as another dtype, as a training script would cast it (RNE when
 * narrowing, exact when widening): what cast-aware BitX predicts with. */
static inline uint32_t cl_cast(uint32_t u, zllm_dtype from, zllm_dtype to)
{
  uint8_t in[4], out[4] = {0};
  if (from == to)
    return u;
  zllm_put_le32(in, u);
  zllm_dtype_store_float(to, out, zllm_dtype_load_float(from, in));
  return zllm_le32(out);
}

/* A sample's value (its bits in the low end of u). */
static inline float cl_to_float(uint32_t u, zllm_dtype d)
{
  uint8_t in[4];
  zllm_put_le32(in, u);
  return zllm_dtype_load_float(d, in);
}

/* The BF16 view every dtype is compared on: sign, exponent, 7 mantissa bits. */
static inline uint32_t cl_view16(uint32_t u, zllm_dtype d)
{
  return d == ZLLM_DT_BF16 ? u : zllm_fp_f32_to_bf16(cl_to_float(u, d));
}

/* Band keys use the sign: a fine-tune keeps it for ~94% or more of its
 * elements even when heavily trained, an unrelated model for ~57% (measured
 * in docs/CLUSTER.md); exponents move too often under heavy training. */
static inline uint32_t cl_sign(uint32_t u, zllm_dtype d)
{
  return cl_view16(u, d) >> 15;
}

#endif
