/* Static rANS with context-chosen frequency tables (pack/rans.h).
 *
 * The coder is the textbook one (Duda's rANS; byte renormalisation; the
 * encoder divides by a reciprocal, exact for states below 2^31), written
 * for planes: eight states interleaved so the decoder's eight chains run in
 * parallel, a table lookup per symbol, and the context only picks which
 * table — so the base's exponent conditions a BitX plane without splitting
 * it into sub-streams. */
#include <stdlib.h>
#include <string.h>

#include "pack/rans.h"
#include "zllm/error.h"
#include "zllm/le.h"

#define PROB_BITS 12
#define PROB_SCALE (1u << PROB_BITS)
#define RANS_L (1u << 15) /* states live in [RANS_L, RANS_L << 16): below 2^31, where the
                              encoder's reciprocal is exact; 16 bits move at a time, at most once */
#define LANES 8
#define MAX_TABLES 17 /* the shared one and 16 of single contexts */
#define TABLE_MAX (32 + 2 * 256)
#define TAG 1

size_t zr_bound(size_t n)
{
  /* a byte costs at most 12 bits (a frequency of 1 in 4096), plus renormalisation slack */
  return n + n / 2 + 2 + (MAX_TABLES - 1) + MAX_TABLES * TABLE_MAX + 4 * LANES + 16;
}

typedef struct {
  uint32_t x_max, rcp, bias;
  uint16_t cmpl;
  uint8_t shift;
} enc_sym;

/* Tables big enough for the most a block can use, kept between blocks:
 * allocating them per 256 KiB block cost more than a fifth of decoding (the
 * allocator returns fresh pages for a block this size). */
struct zr_work {
  uint32_t count[MAX_TABLES][256];
  enc_sym enc[MAX_TABLES][256];
  uint32_t dec[MAX_TABLES * PROB_SCALE];  /* frequency | slot - start << 16 */
  uint8_t dec_sym[MAX_TABLES * PROB_SCALE];
};

int zr_work_new(zr_work **out)
{
  if (!(*out = malloc(sizeof **out)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for rANS tables");
  return 0;
}

void zr_work_free(zr_work *w) { free(w); }

/* ---- frequency tables -------------------------------------------------------- */

/* Counts scaled to sum PROB_SCALE, every present symbol at least 1. */
static void normalise(const uint32_t *count, uint64_t total, uint16_t *freq)
{
  uint32_t sum = 0;
  memset(freq, 0, 256 * sizeof *freq);
  if (total == 0) { /* an unused table: one symbol, free */
    freq[0] = PROB_SCALE;
    return;
  }
  for (int s = 0; s < 256; s++)
    if (count[s]) {
      uint64_t f = (uint64_t)count[s] * PROB_SCALE / total;
      freq[s] = (uint16_t)(f ? f : 1);
      sum += freq[s];
    }
  while (sum != PROB_SCALE) { /* the rounding goes to (or comes from) the likeliest symbol */
    int big = 0;
    for (int s = 1; s < 256; s++)
      if (freq[s] > freq[big])
        big = s;
    if (sum < PROB_SCALE) {
      freq[big] = (uint16_t)(freq[big] + (PROB_SCALE - sum));
      sum = PROB_SCALE;
    } else {
      uint32_t cut = sum - PROB_SCALE < freq[big] - 1u ? sum - PROB_SCALE : freq[big] - 1u;
      freq[big] = (uint16_t)(freq[big] - cut);
      sum -= cut;
    }
  }
}

static size_t put_table(uint8_t *p, const uint16_t *freq)
{
  size_t at = 32;
  memset(p, 0, 32);
  for (int s = 0; s < 256; s++) {
    if (!freq[s])
      continue;
    p[s >> 3] |= (uint8_t)(1u << (s & 7));
    if (freq[s] < 128) {
      p[at++] = (uint8_t)freq[s];
    } else {
      p[at++] = (uint8_t)(0x80 | freq[s] >> 8);
      p[at++] = (uint8_t)freq[s];
    }
  }
  return at;
}

static int get_table(const uint8_t *p, size_t len, size_t *used, uint16_t *freq, uint16_t *start)
{
  size_t at = 32;
  uint32_t sum = 0;
  if (len < 32)
    return -1;
  for (int s = 0; s < 256; s++) {
    freq[s] = 0;
    start[s] = (uint16_t)sum;
    if (!(p[s >> 3] >> (s & 7) & 1))
      continue;
    if (at >= len)
      return -1;
    uint32_t f = p[at++];
    if (f & 0x80) {
      if (at >= len)
        return -1;
      f = (f & 0x7f) << 8 | p[at++];
    }
    if (f == 0 || f > PROB_SCALE - sum)
      return -1;
    freq[s] = (uint16_t)f;
    sum += f;
  }
  *used = at;
  return sum == PROB_SCALE ? 0 : -1;
}

/* ---- which contexts get a table ----------------------------------------------- */

/* A context earns its own table when it holds at least 1/32 of the block
 * (and 2 KiB): below that its table would cost more than it saves.  The 16
 * largest such, listed ascending; *tab_of maps each context to its table. */
static int choose_tables(const uint8_t *ctx, size_t n, uint8_t *list, uint8_t tab_of[256])
{
  uint64_t cnt[256] = {0};
  int nlist = 0;
  memset(tab_of, 0, 256);
  if (!ctx)
    return 0;
  for (size_t i = 0; i < n; i++)
    cnt[ctx[i]]++;
  uint64_t need = n / 32 > 2048 ? n / 32 : 2048;
  while (nlist < MAX_TABLES - 1) {
    int best = -1;
    for (int k = 0; k < 256; k++)
      if (cnt[k] >= need && !tab_of[k] && (best < 0 || cnt[k] > cnt[best]))
        best = k;
    if (best < 0)
      break;
    tab_of[best] = 1; /* taken; numbered below */
    nlist++;
  }
  nlist = 0;
  for (int k = 0; k < 256; k++)
    if (tab_of[k]) {
      list[nlist] = (uint8_t)k;
      tab_of[k] = (uint8_t)++nlist;
    }
  return nlist;
}

/* ---- encoding ------------------------------------------------------------------------ */

static void enc_sym_init(enc_sym *e, uint32_t start, uint32_t freq)
{
  e->x_max = ((RANS_L >> PROB_BITS) << 16) * freq;
  e->cmpl = (uint16_t)(PROB_SCALE - freq);
  if (freq < 2) { /* q = x - 1, and the bias makes up the rest */
    e->rcp = ~0u;
    e->shift = 0;
    e->bias = start + PROB_SCALE - 1;
  } else {
    uint32_t s = 0;
    while (freq > (1u << s))
      s++;
    e->rcp = (uint32_t)(((1ull << (s + 31)) + freq - 1) / freq);
    e->shift = (uint8_t)(s - 1);
    e->bias = start;
  }
}

/* One symbol onto a state.  At most one 16-bit word goes out (a state is
 * below 2^31, x_max at least 2^19), without a branch: it is written below
 * *p and the pointer moves by its size or not at all. */
static inline uint32_t enc_step(const enc_sym *e, uint32_t x, uint8_t **pp)
{
  uint8_t *p = *pp;
  uint32_t k = x >= e->x_max;
  p[-2] = (uint8_t)x;
  p[-1] = (uint8_t)(x >> 8);
  *pp = p - 2 * k;
  x >>= 16 * k;
  uint32_t q = (uint32_t)(((uint64_t)x * e->rcp) >> 32) >> e->shift;
  return x + e->bias + q * e->cmpl;
}

int zr_encode(zr_work *w, const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, size_t *len)
{
  uint8_t list[MAX_TABLES], tab_of[256];
  uint16_t freq[256];
  zr_work *own = NULL;
  int rc = w ? 0 : zr_work_new(&own);
  if (rc < 0)
    return rc;
  w = w ? w : own;
  uint32_t(*count)[256] = w->count;
  enc_sym(*enc)[256] = w->enc;
  if (cap < zr_bound(n) || n >= (size_t)1 << 31) {
    rc = zllm_error_set(ZLLM_EINVAL, "rans: %zu bytes into %zu", n, cap);
    goto done;
  }
  int nlist = choose_tables(ctx, n, list, tab_of), ntables = nlist + 1;
  memset(count, 0, (size_t)ntables * sizeof *count);
  for (size_t i = 0; i < n; i++)
    count[ctx ? tab_of[ctx[i]] : 0][in[i]]++;
  size_t at = 0;
  out[at++] = TAG;
  out[at++] = (uint8_t)ntables;
  memcpy(out + at, list, (size_t)nlist);
  at += (size_t)nlist;
  for (int t = 0; t < ntables; t++) {
    uint64_t total = 0;
    for (int s = 0; s < 256; s++)
      total += count[t][s];
    normalise(count[t], total, freq);
    at += put_table(out + at, freq);
    for (uint32_t s = 0, start = 0; s < 256; start += freq[s], s++)
      enc_sym_init(&enc[t][s], start, freq[s]);
  }
  /* the words go backwards from the end of out, the decoder reads them forwards */
  uint8_t *end = out + cap, *p = end;
  uint32_t st[LANES];
  for (int l = 0; l < LANES; l++)
    st[l] = RANS_L;
  size_t i = n;
  while (i % LANES) { /* the tail past the last whole group of eight first (the decoder ends with it) */
    i--;
    st[i % LANES] = enc_step(&enc[ctx ? tab_of[ctx[i]] : 0][in[i]], st[i % LANES], &p);
  }
  uint32_t x0 = st[0], x1 = st[1], x2 = st[2], x3 = st[3], x4 = st[4], x5 = st[5], x6 = st[6], x7 = st[7];
  for (; i > 0; i -= LANES) {
#define ENC(x, j) (x) = enc_step(&enc[ctx ? tab_of[ctx[i - LANES + (j)]] : 0][in[i - LANES + (j)]], (x), &p)
    ENC(x7, 7);
    ENC(x6, 6);
    ENC(x5, 5);
    ENC(x4, 4);
    ENC(x3, 3);
    ENC(x2, 2);
    ENC(x1, 1);
    ENC(x0, 0);
#undef ENC
  }
  st[0] = x0, st[1] = x1, st[2] = x2, st[3] = x3, st[4] = x4, st[5] = x5, st[6] = x6, st[7] = x7;
  for (int l = 0; l < LANES; l++, at += 4)
    zllm_put_le32(out + at, st[l]);
  size_t body = (size_t)(end - p);
  memmove(out + at, p, body); /* cap >= the bound keeps the two apart */
  *len = at + body;
done:
  free(own);
  return rc;
}

/* ---- decoding ------------------------------------------------------------------------ */

/* Per slot of a table: the symbol's frequency (low 16 bits) and the slot's
 * distance from the symbol's start (high 16) in one word, the symbol in a
 * byte table beside it: two independent loads, and the state update is one
 * multiply and one add. */

/* One lane's step; refilled by arithmetic, not a branch (refills are
 * unpredictable). */
#define DEC_STEP(x, t, sy, pos)                                                                  \
  do {                                                                                            \
    uint32_t slot_ = (x) & (PROB_SCALE - 1), e_ = (t)[slot_];                                      \
    uint32_t v_ = (e_ & 0xffff) * ((x) >> PROB_BITS) + (e_ >> 16);                                \
    uint32_t a_ = v_ < RANS_L, w_ = (uint32_t)p[0] | (uint32_t)p[1] << 8;                          \
    dst[pos] = (sy)[slot_];                                                                        \
    (x) = v_ << (16 * a_) | (w_ & (0u - a_));                                                      \
    p += 2 * a_;                                                                                   \
  } while (0)

/* Decodes whole groups of eight from p (the caller checked that 16 bytes
 * per group are there), the eight states in registers.  Inlined twice, with
 * and without contexts, so neither tests per symbol. */
static inline __attribute__((always_inline)) const uint8_t *
dec_groups(uint32_t *st, const uint8_t *p, const uint32_t *tab, const uint8_t *syms, const uint8_t *tab_of,
           const uint8_t *ctx, uint8_t *dst, size_t i, size_t groups)
{
  uint32_t x0 = st[0], x1 = st[1], x2 = st[2], x3 = st[3], x4 = st[4], x5 = st[5], x6 = st[6], x7 = st[7];
  for (size_t g = 0; g < groups; g++, i += LANES) {
#define LANE(x, j)                                                                               \
  do {                                                                                            \
    size_t o_ = ctx ? (size_t)tab_of[ctx[i + (j)]] * PROB_SCALE : 0;                               \
    DEC_STEP(x, tab + o_, syms + o_, i + (j));                                                     \
  } while (0)
    LANE(x0, 0);
    LANE(x1, 1);
    LANE(x2, 2);
    LANE(x3, 3);
    LANE(x4, 4);
    LANE(x5, 5);
    LANE(x6, 6);
    LANE(x7, 7);
#undef LANE
  }
  st[0] = x0, st[1] = x1, st[2] = x2, st[3] = x3, st[4] = x4, st[5] = x5, st[6] = x6, st[7] = x7;
  return p;
}

int zr_decode(zr_work *w, const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst,
              const char *name)
{
  uint8_t tab_of[256] = {0};
  uint16_t freq[256], start[256];
  uint32_t st[LANES];
  size_t at = 2, i = 0;
  zr_work *own = NULL;
  int rc = w ? 0 : zr_work_new(&own), ntables = len >= 2 ? in[1] : 0;
  if (rc < 0)
    return rc;
  uint32_t *tab = w ? w->dec : own->dec;
  uint8_t *syms = w ? w->dec_sym : own->dec_sym;
  if (len < 2 || in[0] != TAG || ntables < 1 || ntables > MAX_TABLES || (ntables > 1 && !ctx) ||
      len - 2 < (size_t)ntables - 1)
    goto bad;
  for (int t = 1; t < ntables; t++) { /* the contexts with tables, strictly ascending */
    uint8_t k = in[at++];
    if (tab_of[k] || (t > 1 && k <= in[at - 2]))
      goto bad;
    tab_of[k] = (uint8_t)t;
  }
  for (int t = 0; t < ntables; t++) {
    size_t used = 0;
    if (get_table(in + at, len - at, &used, freq, start) < 0)
      goto bad;
    at += used;
    for (uint32_t s = 0; s < 256; s++)
      for (uint32_t k = 0; k < freq[s]; k++)
        tab[t * PROB_SCALE + start[s] + k] = freq[s] | k << 16, syms[t * PROB_SCALE + start[s] + k] = (uint8_t)s;
  }
  if (len - at < 4 * LANES)
    goto bad;
  for (int l = 0; l < LANES; l++, at += 4)
    if ((st[l] = zllm_le32(in + at)) < RANS_L || st[l] >= RANS_L << 16)
      goto bad;
  const uint8_t *p = in + at, *end = in + len;
  for (;;) { /* as many groups as the bytes left surely cover, without checks */
    size_t groups = (size_t)(end - p) / (2 * LANES);
    groups = groups < (n - i) / LANES ? groups : (n - i) / LANES;
    if (groups == 0)
      break;
    p = ntables > 1 ? dec_groups(st, p, tab, syms, tab_of, ctx, dst, i, groups)
                    : dec_groups(st, p, tab, syms, tab_of, NULL, dst, i, groups);
    i += groups * LANES;
  }
  for (; i < n; i++) { /* the rest, every word checked */
    int l = (int)(i % LANES);
    uint32_t x = st[l];
    size_t slot = (ctx ? tab_of[ctx[i]] : 0) * PROB_SCALE + (x & (PROB_SCALE - 1));
    x = (tab[slot] & 0xffff) * (x >> PROB_BITS) + (tab[slot] >> 16);
    dst[i] = syms[slot];
    if (x < RANS_L) {
      if (end - p < 2)
        goto bad;
      x = x << 16 | (uint32_t)p[0] | (uint32_t)p[1] << 8;
      p += 2;
    }
    st[l] = x;
  }
  /* every byte used, every state back where the encoder began */
  if (p != end)
    goto bad;
  for (int l = 0; l < LANES; l++)
    if (st[l] != RANS_L)
      goto bad;
  goto done;
bad:
  rc = zllm_error_set(ZLLM_EFORMAT, "%s: corrupt rANS block", name ? name : "rANS block");
done:
  free(own);
  return rc;
}
