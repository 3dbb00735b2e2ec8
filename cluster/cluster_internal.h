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
/* Receives a round of candidate pairs: sorted unique keys a << 32 | b
 * (indices into the group), every pair of a round's first members. */
typedef int (*cl_emit_pairs)(void *ctx, const uint64_t *keys, size_t n);
/* Which of a group's candidates to make: the pairs (a, b) whose a is in a
 * chunk of `chunk` members numbered part modulo nparts (several ranks share
 * a big group), in rounds of about `round` pairs. */
typedef struct {
  unsigned part, nparts;
  size_t chunk, round;
} cl_group_part;

/* The candidates of one group of sketches of the same shape signature, the
 * very pairs zllm_cluster_candidates gives over a whole hub of `ntotal`
 * sketches (the union over the parts): `s` in hub order, gidx[i] the hub
 * index of s[i] (banding orders buckets by it).  Streamed in rounds, in
 * (a, b) order, so memory holds the group's bands (16 bytes per member and
 * band) and one round, never the group's pair list. */
int cl_candidates_group(zllm_sketch *const *s, const uint32_t *gidx, size_t n, size_t ntotal,
                        const zllm_lsh_options *o, const cl_group_part *part, cl_emit_pairs emit, void *ctx);
/* zllm_cluster_families over one shape signature's group: the same rows as
 * over the whole hub when `pairs` holds the group's related pairs and its
 * card pairs, and hub_ids (sorted, nhub) every repo of the hub (a card
 * naming a repo outside the group names another architecture).  hub_ids
 * NULL: `s` is the whole hub. */
int cl_families_group(zllm_family_table **out, zllm_sketch *const *s, size_t n, const zllm_pair *pairs,
                      size_t npairs, const zllm_cluster_options *o, char *const *hub_ids, size_t nhub);
/* The owners' rows (any repos) sent to their homes: t becomes this rank's
 * part (cluster/parts.c), its counts the whole table's.  COLLECTIVE. */
int cl_rows_to_homes(zllm_family_table *t, const zllm_hub *hub, MPI_Comm comm);
/* Frees a row's strings and zeroes it. */
void cl_family_row_clear(zllm_family_row *r);
/* Repo i of the hub sketched and encoded into `b`: its sketch, or a
 * sketch holding only why it has none (only ENOMEM fails). */
int cl_sketch_hub_repo(zllm_buf *b, const zllm_hub *hub, size_t i, uint64_t *sig_shape);

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
