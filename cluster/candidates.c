/* Candidate pairs by banding the sketches (locality-sensitive hashing on
 * the signs of sampled elements), never all pairs. */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "zllm/error.h"

typedef struct {
  uint64_t key, order;
  uint32_t idx;
} band_entry;

/* A pair (a < b) packed as a << 32 | b: sorting the keys sorts the pairs. */
typedef struct {
  uint64_t *v;
  size_t n, cap;
} pair_vec;

static int cmp_entry(const void *a, const void *b)
{
  const band_entry *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int comparable(const zllm_sketch *s)
{
  return !s->problem && s->nsamples > 0;
}

static int push_pair(pair_vec *p, uint32_t a, uint32_t b)
{
  if (a == b)
    return 0;
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 1024;
    uint64_t *v = realloc(p->v, cap * sizeof *v);
    if (!v)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    p->v = v;
    p->cap = cap;
  }
  p->v[p->n++] = a < b ? (uint64_t)a << 32 | b : (uint64_t)b << 32 | a;
  return 0;
}

/* LSD radix sort, 16 bits a pass (pair lists reach millions of entries). */
static int radix_sort(uint64_t *v, size_t n)
{
  uint64_t *tmp = malloc(n * sizeof *tmp);
  size_t *count = malloc(65537 * sizeof *count);
  if (!tmp || !count) {
    free(tmp);
    free(count);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (int shift = 0; shift < 64; shift += 16) {
    memset(count, 0, 65537 * sizeof *count);
    for (size_t i = 0; i < n; i++)
      count[((v[i] >> shift) & 0xffff) + 1]++;
    for (size_t d = 0; d < 65536; d++)
      count[d + 1] += count[d];
    for (size_t i = 0; i < n; i++)
      tmp[count[(v[i] >> shift) & 0xffff]++] = v[i];
    memcpy(v, tmp, n * sizeof *v);
  }
  free(tmp);
  free(count);
  return 0;
}

static int sort_unique(pair_vec *p)
{
  size_t k = 0;
  if (p->n == 0)
    return 0;
  if (p->n < 65536)
    qsort(p->v, p->n, sizeof *p->v, cmp_u64);
  else if (radix_sort(p->v, p->n) < 0)
    return ZLLM_ENOMEM;
  for (size_t i = 0; i < p->n; i++)
    if (k == 0 || p->v[k - 1] != p->v[i])
      p->v[k++] = p->v[i];
  p->n = k;
  return 0;
}

/* The dtype of sample `at` (tensors hold consecutive runs of samples). */
static zllm_dtype sample_dtype(const zllm_sketch *s, size_t at)
{
  for (size_t i = 0; i < s->ntensors; i++) {
    if (at < s->t[i].k)
      return s->t[i].dtype;
    at -= s->t[i].k;
  }
  return ZLLM_DT_F32;
}

static uint64_t band_key(const zllm_sketch *s, unsigned band, unsigned per_band)
{
  uint64_t bits = 0, key = cl_mix64(s->sig_shape ^ cl_mix64(band));
  for (unsigned t = 0; t < per_band; t++) {
    size_t at = cl_mix64(s->sig_shape ^ ((uint64_t)band << 32 | t)) % s->nsamples;
    bits = bits << 1 | cl_sign(s->samples[at], sample_dtype(s, at));
    if (t % 64 == 63) {
      key = cl_mix64(key ^ bits);
      bits = 0;
    }
  }
  return cl_mix64(key ^ bits ^ per_band);
}

/* Everyone in a small bucket meets everyone; in a big one, each member meets
 * the next cap/2 in a band-specific shuffle, so the work stays linear. */
static int pair_bucket(pair_vec *p, const band_entry *e, size_t r, unsigned cap)
{
  int rc = 0;
  if (r <= cap) {
    for (size_t i = 0; rc == 0 && i < r; i++)
      for (size_t j = i + 1; rc == 0 && j < r; j++)
        rc = push_pair(p, e[i].idx, e[j].idx);
    return rc;
  }
  for (size_t i = 0; rc == 0 && i < r; i++)
    for (size_t d = 1; rc == 0 && d <= cap / 2; d++)
      rc = push_pair(p, e[i].idx, e[(i + d) % r].idx);
  return rc;
}

/* Groups of at most o->exhaustive_max sketches of one architecture are
 * compared pair by pair: exact, and still linear in the hub's size. */
typedef struct {
  uint64_t sig;
  uint32_t idx;
} sig_ref;

static int cmp_sig(const void *a, const void *b)
{
  const sig_ref *x = a, *y = b;
  if (x->sig != y->sig)
    return x->sig < y->sig ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int small_groups(pair_vec *p, zllm_sketch *const *s, size_t n, unsigned max)
{
  sig_ref *r = calloc(n ? n : 1, sizeof *r);
  size_t m = 0;
  int rc = r ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (comparable(s[i]))
      r[m++] = (sig_ref){s[i]->sig_shape, (uint32_t)i};
  if (rc == 0)
    qsort(r, m, sizeof *r, cmp_sig);
  for (size_t i = 0, j; rc == 0 && i < m; i = j) {
    for (j = i + 1; j < m && r[j].sig == r[i].sig; j++)
      ;
    for (size_t a = i; rc == 0 && j - i <= max && a < j; a++)
      for (size_t b = a + 1; rc == 0 && b < j; b++)
        rc = push_pair(p, r[a].idx, r[b].idx);
  }
  free(r);
  return rc;
}

/* Merges the sorted, unique `add` into the sorted, unique `p`. */
static int merge_pairs(pair_vec *p, const pair_vec *add)
{
  uint64_t *v = malloc((p->n + add->n + 1) * sizeof *v);
  size_t i = 0, j = 0, k = 0;
  if (!v)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  while (i < p->n || j < add->n) {
    int c = i == p->n ? 1 : j == add->n ? -1 : cmp_u64(&p->v[i], &add->v[j]);
    v[k++] = c <= 0 ? p->v[i] : add->v[j];
    i += c <= 0;
    j += c >= 0;
  }
  free(p->v);
  p->v = v;
  p->n = k;
  p->cap = p->n + add->n + 1;
  return 0;
}

static int one_band(pair_vec *p, zllm_sketch *const *s, size_t n, unsigned band, unsigned per_band,
                    const zllm_lsh_options *o, band_entry *e)
{
  pair_vec add = {0};
  size_t m = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i++)
    if (comparable(s[i]))
      e[m++] = (band_entry){band_key(s[i], band, per_band), cl_mix64(i ^ (uint64_t)band << 40), (uint32_t)i};
  qsort(e, m, sizeof *e, cmp_entry);
  for (size_t i = 0, j; rc == 0 && i < m; i = j) {
    for (j = i + 1; j < m && e[j].key == e[i].key; j++)
      ;
    rc = pair_bucket(&add, e + i, j - i, o->bucket_cap);
  }
  rc = rc ? rc : sort_unique(&add);
  rc = rc ? rc : merge_pairs(p, &add);
  free(add.v);
  return rc;
}

/* Random collisions between unrelated models grow with the square of their
 * number, so the key gets longer with log2(M) (sign agreement between
 * unrelated models is ~0.57: 1.25 bits per doubling), and the bands more
 * numerous so that a heavy fine-tune (sign agreement ~0.94) still meets its
 * base with probability > 99.9%. */
static void band_shape(size_t m, const zllm_lsh_options *o, unsigned *bands, unsigned *per_band)
{
  unsigned lg = 0;
  while (lg < 63 && ((size_t)1 << lg) < m)
    lg++;
  *per_band = o->per_band;
  if (lg * 5 / 4 + 2 > *per_band)
    *per_band = lg * 5 / 4 + 2;
  double hit = 1.0;
  for (unsigned b = 0; b < *per_band; b++)
    hit *= 0.94;
  *bands = o->bands;
  if (7.0 / hit > *bands)
    *bands = (unsigned)(7.0 / hit) + 1;
}

typedef struct {
  const char *repo;
  uint32_t idx;
} name_ref;

static int cmp_name(const void *a, const void *b)
{
  return strcmp(((const name_ref *)a)->repo, ((const name_ref *)b)->repo);
}

int cl_declared_index(zllm_sketch *const *s, size_t n, long *idx)
{
  name_ref *names = calloc(n ? n : 1, sizeof *names);
  if (!names)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    names[i] = (name_ref){s[i]->repo, (uint32_t)i};
  qsort(names, n, sizeof *names, cmp_name);
  for (size_t i = 0; i < n; i++) {
    name_ref key = {s[i]->declared_base, 0}, *hit = NULL;
    if (key.repo)
      hit = bsearch(&key, names, n, sizeof *names, cmp_name);
    idx[i] = hit && hit->idx != i ? (long)hit->idx : -1;
  }
  free(names);
  return 0;
}

/* The card's claim is always checked, whatever the bands say. */
static int declared_pairs(pair_vec *p, zllm_sketch *const *s, size_t n)
{
  long *decl = calloc(n ? n : 1, sizeof *decl);
  int rc = decl ? cl_declared_index(s, n, decl) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    long d = decl[i];
    if (d >= 0 && comparable(s[i]) && comparable(s[d]) && s[d]->sig_shape == s[i]->sig_shape)
      rc = push_pair(p, (uint32_t)i, (uint32_t)d);
  }
  free(decl);
  return rc;
}

int cl_candidates_share(zllm_sketch *const *s, size_t n, const zllm_lsh_options *o, unsigned part,
                        unsigned nparts, uint64_t **keys, size_t *nkeys)
{
  pair_vec p = {0}, extra = {0};
  band_entry *e = calloc(n ? n : 1, sizeof *e);
  int rc = e ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (n > UINT32_MAX)
    rc = zllm_error_set(ZLLM_ELIMIT, "cluster: %zu sketches is more than 2^32", n);
  unsigned bands, per_band;
  band_shape(n, o, &bands, &per_band);
  for (unsigned band = part; rc == 0 && band < bands; band += nparts)
    rc = one_band(&p, s, n, band, per_band, o, e);
  if (part == 0) {
    rc = rc ? rc : declared_pairs(&extra, s, n);
    rc = rc ? rc : small_groups(&extra, s, n, o->exhaustive_max);
    rc = rc ? rc : sort_unique(&extra);
    rc = rc ? rc : merge_pairs(&p, &extra);
  }
  free(extra.v);
  free(e);
  if (rc < 0) {
    free(p.v);
    return rc;
  }
  *keys = p.v;
  *nkeys = p.n;
  return 0;
}

int cl_pairs_sort_unique(uint64_t *keys, size_t *n)
{
  pair_vec p = {keys, *n, *n};
  int rc = sort_unique(&p);
  *n = p.n;
  return rc;
}

int zllm_cluster_candidates(zllm_sketch *const *s, size_t n, const zllm_lsh_options *o, uint32_t (**pairs)[2],
                            size_t *npairs)
{
  uint64_t *keys = NULL;
  size_t nk = 0;
  int rc = cl_candidates_share(s, n, o, 0, 1, &keys, &nk);
  uint32_t(*out)[2] = rc == 0 ? malloc((nk ? nk : 1) * sizeof *out) : NULL;
  if (rc == 0 && !out)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < nk; k++) {
    out[k][0] = (uint32_t)(keys[k] >> 32);
    out[k][1] = (uint32_t)keys[k];
  }
  free(keys);
  if (rc < 0)
    return rc;
  *pairs = out;
  *npairs = nk;
  return 0;
}

/* ---- one signature group, streamed ---------------------------------------- */

/* A band's buckets over a group: for each member (local index) its position
 * in the band's sorted order, and for each position the member and its
 * bucket's bounds. */
typedef struct {
  uint32_t *pos, *member, *lo, *hi;
} band_table;

typedef struct {
  zllm_sketch *const *s;
  const uint32_t *gidx;
  size_t n, m; /* members, comparable members */
  const zllm_lsh_options *o;
  unsigned bands, per_band;
  band_table *bt;
  uint64_t *declared; /* sorted unique keys of the card pairs */
  size_t ndeclared;
} group_bands;

static int band_table_fill(group_bands *g, unsigned band, band_entry *e)
{
  band_table *t = &g->bt[band];
  size_t m = 0;
  t->pos = calloc(g->n + 1, sizeof *t->pos);
  t->member = calloc(g->m + 1, sizeof *t->member);
  t->lo = calloc(g->m + 1, sizeof *t->lo);
  t->hi = calloc(g->m + 1, sizeof *t->hi);
  if (!t->pos || !t->member || !t->lo || !t->hi)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < g->n; i++)
    if (comparable(g->s[i])) /* the hub index orders a bucket, as over the whole hub */
      e[m++] = (band_entry){band_key(g->s[i], band, g->per_band), cl_mix64(g->gidx[i] ^ (uint64_t)band << 40),
                            (uint32_t)i};
  qsort(e, m, sizeof *e, cmp_entry);
  for (size_t i = 0, j; i < m; i = j) {
    for (j = i + 1; j < m && e[j].key == e[i].key; j++)
      ;
    for (size_t k = i; k < j; k++) {
      t->member[k] = e[k].idx;
      t->pos[e[k].idx] = (uint32_t)k;
      t->lo[k] = (uint32_t)i;
      t->hi[k] = (uint32_t)j;
    }
  }
  return 0;
}

static void group_bands_free(group_bands *g)
{
  for (unsigned b = 0; g->bt && b < g->bands; b++) {
    free(g->bt[b].pos);
    free(g->bt[b].member);
    free(g->bt[b].lo);
    free(g->bt[b].hi);
  }
  free(g->bt);
  free(g->declared);
}

static int group_bands_init(group_bands *g, size_t ntotal)
{
  band_entry *e = calloc(g->n + 1, sizeof *e);
  pair_vec d = {0};
  int rc = e ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < g->n; i++)
    g->m += comparable(g->s[i]) != 0;
  band_shape(ntotal, g->o, &g->bands, &g->per_band); /* the whole hub's shape: the same bands */
  if (rc == 0 && !(g->bt = calloc(g->bands, sizeof *g->bt)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (unsigned b = 0; rc == 0 && b < g->bands; b++)
    rc = band_table_fill(g, b, e);
  rc = rc ? rc : declared_pairs(&d, g->s, g->n);
  rc = rc ? rc : sort_unique(&d);
  g->declared = d.v;
  g->ndeclared = d.n;
  free(e);
  return rc;
}

/* Every candidate (a, b > a) of member a, as the whole hub's bands, card
 * pairs and small groups would give it. */
static int member_pairs(pair_vec *p, const group_bands *g, uint32_t a, size_t *next_declared)
{
  int rc = 0;
  unsigned half = g->o->bucket_cap / 2;
  while (rc == 0 && *next_declared < g->ndeclared && g->declared[*next_declared] >> 32 == a)
    rc = push_pair(p, a, (uint32_t)g->declared[(*next_declared)++]);
  if (!comparable(g->s[a]))
    return rc;
  if (g->m <= g->o->exhaustive_max)
    for (uint32_t b = a + 1; rc == 0 && b < g->n; b++)
      rc = comparable(g->s[b]) ? push_pair(p, a, b) : 0;
  for (unsigned band = 0; rc == 0 && band < g->bands; band++) {
    const band_table *t = &g->bt[band];
    uint32_t at = t->pos[a], lo = t->lo[at], r = t->hi[at] - lo, off = at - lo;
    if (r <= g->o->bucket_cap) {
      for (uint32_t k = lo; rc == 0 && k < lo + r; k++)
        rc = t->member[k] > a ? push_pair(p, a, t->member[k]) : 0;
      continue;
    }
    for (uint32_t d = 1; rc == 0 && d <= half; d++) { /* the next half and the previous half */
      uint32_t fwd = t->member[lo + (off + d) % r], back = t->member[lo + (off + r - d) % r];
      rc = fwd > a ? push_pair(p, a, fwd) : 0;
      rc = rc ? rc : back > a ? push_pair(p, a, back) : 0;
    }
  }
  return rc;
}

static int emit_round(pair_vec *p, cl_emit_pairs emit, void *ctx)
{
  int rc = sort_unique(p);
  rc = rc ? rc : p->n ? emit(ctx, p->v, p->n) : 0;
  p->n = 0;
  return rc;
}

int cl_candidates_group(zllm_sketch *const *s, const uint32_t *gidx, size_t n, size_t ntotal,
                        const zllm_lsh_options *o, const cl_group_part *part, cl_emit_pairs emit, void *ctx)
{
  group_bands g = {.s = s, .gidx = gidx, .n = n, .o = o};
  pair_vec p = {0};
  size_t next_declared = 0, chunk = part->chunk ? part->chunk : 1;
  int rc = n > UINT32_MAX ? zllm_error_set(ZLLM_ELIMIT, "cluster: %zu sketches is more than 2^32", n) : 0;
  rc = rc ? rc : group_bands_init(&g, ntotal);
  for (uint32_t a = 0; rc == 0 && a < n; a++) {
    if ((a / chunk) % part->nparts != part->part) { /* another part's member: its card pairs too */
      while (next_declared < g.ndeclared && g.declared[next_declared] >> 32 == a)
        next_declared++;
      continue;
    }
    rc = member_pairs(&p, &g, a, &next_declared);
    if (rc == 0 && p.n >= part->round) /* all of a's pairs are in: a round ends here */
      rc = emit_round(&p, emit, ctx);
  }
  rc = rc ? rc : emit_round(&p, emit, ctx);
  free(p.v);
  group_bands_free(&g);
  return rc;
}
