/* Pair metrics between two sketches of the same architecture. */
#include "cluster/cluster_internal.h"
#include "zllm/error.h"

typedef struct {
  uint64_t n, hamming, identical, cost_ab, cost_ba;
} tally;

static inline unsigned bitlen(uint32_t x)
{
  return x ? 32u - (unsigned)__builtin_clz(x) : 0u;
}

/* Population count of 16 bits without a libgcc call (no -mpopcnt on the
 * x86-64 baseline Debian builds for). */
static inline unsigned popcount16(uint32_t x)
{
  x = x - ((x >> 1) & 0x5555);
  x = (x & 0x3333) + ((x >> 2) & 0x3333);
  x = (x + (x >> 4)) & 0x0f0f;
  return (x + (x >> 8)) & 0x1f;
}

static int equal_at_common_precision(uint32_t ua, zllm_dtype da, uint32_t ub, zllm_dtype db)
{
  if (da == db)
    return ua == ub;
  size_t sa = zllm_dtype_get(da)->size, sb = zllm_dtype_get(db)->size;
  if (sa == sb) /* BF16 against F16: neither holds the other */
    return cl_view16(ua, da) == cl_view16(ub, db);
  zllm_dtype narrow = sa < sb ? da : db;
  return cl_cast(ua, da, narrow) == cl_cast(ub, db, narrow);
}

/* Low bit positions that are zero in every XOR of the tensor cost nothing
 * once coded (an exact F32 upcast of a BF16 model XORs to zeros in its low
 * half), so the cost of an element is its XOR's bit length above them. */
static unsigned common_zero_bits(uint32_t any)
{
  return any ? (unsigned)__builtin_ctz(any) : 0u;
}

static void tally_tensor(tally *t, const uint32_t *a, zllm_dtype da, const uint32_t *b, zllm_dtype db, uint32_t k)
{
  uint32_t or_ab = 0, or_ba = 0;
  for (uint32_t i = 0; i < k; i++) {
    or_ab |= a[i] ^ cl_cast(b[i], db, da);
    or_ba |= b[i] ^ cl_cast(a[i], da, db);
  }
  unsigned z_ab = common_zero_bits(or_ab), z_ba = common_zero_bits(or_ba);
  for (uint32_t i = 0; i < k; i++) {
    uint32_t x_ab = a[i] ^ cl_cast(b[i], db, da), x_ba = b[i] ^ cl_cast(a[i], da, db);
    t->hamming += popcount16(cl_view16(a[i], da) ^ cl_view16(b[i], db));
    t->identical += equal_at_common_precision(a[i], da, b[i], db);
    t->cost_ab += x_ab ? bitlen(x_ab) - z_ab : 0;
    t->cost_ba += x_ba ? bitlen(x_ba) - z_ba : 0;
  }
  t->n += k;
}

int zllm_sketch_compare(const zllm_sketch *a, const zllm_sketch *b, zllm_pair_metrics *m)
{
  tally t = {0};
  memset(m, 0, sizeof *m);
  if (a->sig_shape != b->sig_shape || a->ntensors != b->ntensors || a->ntensors == 0)
    return ZLLM_ENOTFOUND;
  const uint32_t *pa = a->samples, *pb = b->samples;
  for (size_t i = 0; i < a->ntensors; pa += a->t[i].k, pb += b->t[i].k, i++)
    if (a->t[i].k == b->t[i].k && a->t[i].k > 0)
      tally_tensor(&t, pa, a->t[i].dtype, pb, b->t[i].dtype, a->t[i].k);
  if (t.n < ZLLM_CLUSTER_MIN_SAMPLES)
    return ZLLM_ENOTFOUND;
  m->n = (uint32_t)t.n;
  m->distance = (double)t.hamming / (double)t.n;
  m->identical = (double)t.identical / (double)t.n;
  m->cost_ab = (double)t.cost_ab / (double)t.n;
  m->cost_ba = (double)t.cost_ba / (double)t.n;
  return 0;
}
