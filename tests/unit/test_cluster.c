/* cluster/: sketches, pair metrics, candidates and the family rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster/cluster_internal.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/fpconv.h"

#define K 512

static uint64_t mix(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* A weight near 0.02 in magnitude, as F32 bits. */
static uint32_t weight(uint64_t seed, uint32_t i)
{
  uint64_t r = mix(seed * 7919 + i);
  float f = ((float)(r & 0xffffff) / 16777216.0f - 0.5f) * 0.08f;
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static zllm_sketch *make(const char *repo, zllm_dtype dt, const uint32_t *f32, const char *declared, int64_t step)
{
  zllm_sketch *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->repo = strdup(repo);
  s->t = calloc(1, sizeof *s->t);
  s->samples = calloc(K, sizeof *s->samples);
  s->ntensors = 1;
  s->nsamples = K;
  s->t[0] = (zllm_sketch_tensor){.name_hash = 7, .shape_hash = 9, .nelem = 1 << 20, .dtype = dt, .k = K};
  for (int i = 0; i < K; i++) {
    float f;
    memcpy(&f, &f32[i], 4);
    s->samples[i] = dt == ZLLM_DT_F32 ? f32[i] : dt == ZLLM_DT_BF16 ? zllm_fp_f32_to_bf16(f) : zllm_fp_f32_to_f16(f);
  }
  s->sig_shape = 99;
  s->sig = 99 ^ (uint64_t)dt;
  s->declared_base = declared ? strdup(declared) : NULL;
  s->step = step;
  s->created = -1;
  return s;
}

/* The F32 values of a fine-tune: each element moved by up to `rel` of itself. */
static void tune(uint32_t *dst, const uint32_t *src, uint64_t seed, float rel)
{
  for (int i = 0; i < K; i++) {
    float f;
    memcpy(&f, &src[i], 4);
    f *= 1.0f + rel * (((float)(mix(seed * 31 + (uint64_t)i) & 0xffff) / 65536.0f) - 0.5f);
    memcpy(&dst[i], &f, 4);
  }
}

static void test_compare_rules(void **state)
{
  (void)state;
  uint32_t v[K], w[K], x[K];
  for (int i = 0; i < K; i++)
    v[i] = weight(1, (uint32_t)i), w[i] = weight(2, (uint32_t)i);
  tune(x, v, 3, 0.05f);
  zllm_sketch *f32 = make("a/f32", ZLLM_DT_F32, v, NULL, -1), *bf = make("a/bf16", ZLLM_DT_BF16, v, NULL, -1);
  zllm_sketch *other = make("b/other", ZLLM_DT_F32, w, NULL, -1), *ft = make("a/ft", ZLLM_DT_F32, x, NULL, -1);
  zllm_pair_metrics m;

  assert_int_equal(zllm_sketch_compare(f32, f32, &m), 0);
  assert_true(m.distance == 0 && m.identical == 1 && m.cost_ab == 0);

  /* a BF16 cast: identical at BF16 precision; the cast costs nothing given the
   * F32 model, the F32 model costs its low half given the cast */
  assert_int_equal(zllm_sketch_compare(f32, bf, &m), 0);
  assert_true(m.distance == 0 && m.identical == 1);
  assert_true(m.cost_ba == 0 && m.cost_ab > 10);

  /* an exact F32 upcast of BF16 weights: zero low halves cost nothing either way */
  uint32_t up[K];
  for (int i = 0; i < K; i++)
    up[i] = (uint32_t)bf->samples[i] << 16;
  zllm_sketch *upc = make("a/up", ZLLM_DT_F32, up, NULL, -1);
  assert_int_equal(zllm_sketch_compare(upc, bf, &m), 0);
  assert_true(m.identical == 1 && m.cost_ab == 0 && m.cost_ba == 0);

  /* a fine-tune is near, an unrelated model of the same shape far */
  assert_int_equal(zllm_sketch_compare(f32, ft, &m), 0);
  double near = m.distance;
  assert_int_equal(zllm_sketch_compare(f32, other, &m), 0);
  assert_true(near < ZLLM_CLUSTER_THRESHOLD && m.distance > ZLLM_CLUSTER_THRESHOLD);

  /* another architecture is not compared */
  other->sig_shape = 1;
  assert_int_equal(zllm_sketch_compare(f32, other, &m), ZLLM_ENOTFOUND);
  zllm_sketch_free(f32);
  zllm_sketch_free(bf);
  zllm_sketch_free(other);
  zllm_sketch_free(ft);
  zllm_sketch_free(upc);
}

static void test_encode_decode(void **state)
{
  (void)state;
  uint32_t v[K];
  for (int i = 0; i < K; i++)
    v[i] = weight(5, (uint32_t)i);
  zllm_sketch *s = make("org/model", ZLLM_DT_BF16, v, "org/base", 42), *back = NULL;
  zllm_buf b = ZLLM_BUF_INIT;
  assert_int_equal(zllm_sketch_encode(&b, s), 0);
  zllm_reader r = {b.data, b.len};
  assert_int_equal(zllm_sketch_decode(&r, &back), 0);
  assert_int_equal(r.left, 0);
  assert_string_equal(back->repo, "org/model");
  assert_string_equal(back->declared_base, "org/base");
  assert_int_equal(back->step, 42);
  assert_int_equal(back->nsamples, K);
  assert_memory_equal(back->samples, s->samples, K * sizeof *s->samples);
  zllm_sketch_free(back);
  /* every truncation is an error, never an overread (ASan watches) */
  for (size_t cut = 0; cut < b.len; cut += 1 + cut / 8) {
    zllm_reader t = {b.data, cut};
    back = NULL;
    assert_true(zllm_sketch_decode(&t, &back) < 0);
    assert_null(back);
  }
  zllm_buf_free(&b);
  zllm_sketch_free(s);
}

static const zllm_family_row *row(const zllm_family_table *t, const char *repo)
{
  const zllm_family_row *r = zllm_family_table_find(t, repo);
  assert_non_null(r);
  return r;
}

static void assert_base(const zllm_family_table *t, const char *repo, const char *base)
{
  const zllm_family_row *r = row(t, repo);
  if (!base)
    assert_null(r->base);
  else
    assert_string_equal(r->base ? r->base : "(none)", base);
}

/* A checkpoint series whose names sort against its training order: the steps
 * orient the chain, so the first checkpoint is the root. */
static void test_steps_orient_a_chain(void **state)
{
  (void)state;
  uint32_t v[4][K];
  for (int i = 0; i < K; i++)
    v[0][i] = weight(11, (uint32_t)i);
  for (int c = 1; c < 4; c++)
    tune(v[c], v[c - 1], 100 + (uint64_t)c, 0.03f);
  const char *names[4] = {"run/ckpt-d", "run/ckpt-c", "run/ckpt-b", "run/ckpt-a"};
  zllm_sketch *s[4];
  for (int c = 0; c < 4; c++)
    s[c] = make(names[c], ZLLM_DT_F32, v[c], NULL, 100 * (c + 1));
  zllm_family_table *t = NULL;
  zllm_cluster_options o = ZLLM_CLUSTER_OPTIONS_INIT;
  assert_int_equal(zllm_cluster_sketches(&t, s, 4, &o), 0);
  assert_int_equal(t->nfamilies, 1);
  assert_base(t, "run/ckpt-d", NULL);
  assert_int_equal(row(t, "run/ckpt-d")->decision, ZLLM_DECIDE_ROOT);
  assert_base(t, "run/ckpt-c", "run/ckpt-d");
  assert_base(t, "run/ckpt-b", "run/ckpt-c");
  assert_base(t, "run/ckpt-a", "run/ckpt-b");
  zllm_family_table_free(t);
  for (int c = 0; c < 4; c++)
    zllm_sketch_free(s[c]);
}

/* Cards: a right one is confirmed, a wrong one overridden, a missing one
 * found by the bits; a re-upload is a twin of its source; an unrelated
 * model of the same architecture stays alone. */
static void test_cards_and_twins(void **state)
{
  (void)state;
  uint32_t base[K], ft1[K], ft2[K], other[K];
  for (int i = 0; i < K; i++)
    base[i] = weight(21, (uint32_t)i), other[i] = weight(22, (uint32_t)i);
  tune(ft1, base, 23, 0.04f);
  tune(ft2, base, 24, 0.04f);
  zllm_sketch *s[6] = {
    make("org/base", ZLLM_DT_BF16, base, NULL, -1),
    make("org/ft-right", ZLLM_DT_BF16, ft1, "org/base", -1),
    make("org/ft-wrong", ZLLM_DT_BF16, ft2, "zz/other", -1),
    make("mirror/ft-right", ZLLM_DT_BF16, ft1, "org/base", -1),
    make("zz/other", ZLLM_DT_BF16, other, NULL, -1),
    make("org/ft-absent", ZLLM_DT_BF16, ft2, "nowhere/base", -1),
  };
  zllm_family_table *t = NULL;
  zllm_cluster_options o = ZLLM_CLUSTER_OPTIONS_INIT;
  assert_int_equal(zllm_cluster_sketches(&t, s, 6, &o), 0);
  for (size_t i = 0; getenv("DEBUG_CLUSTER") && i < t->n; i++)
    fprintf(stderr, "%s %s %s %s %s\n", t->rows[i].repo, t->rows[i].family, t->rows[i].base ? t->rows[i].base : "-",
            zllm_decision_name(t->rows[i].decision), t->rows[i].reason);
  assert_int_equal(t->nfamilies, 2);
  assert_base(t, "org/base", NULL);
  /* twins (a re-upload): one is stored against the card's base, the other
   * against it at zero distance; which one is first is the repo id's call */
  const zllm_family_row *first = row(t, "mirror/ft-right"), *copy = row(t, "org/ft-right");
  assert_int_equal(first->decision, ZLLM_DECIDE_CARD);
  assert_string_equal(first->base, "org/base");
  assert_string_equal(copy->base, "mirror/ft-right");
  assert_true(copy->distance == 0 && copy->identical == 1);
  assert_non_null(strstr(copy->reason, "identical"));
  /* a wrong card is overridden with its reason, and the bits find the family */
  const zllm_family_row *w = row(t, "org/ft-wrong");
  assert_true(w->decision == ZLLM_DECIDE_OVERRIDE || w->decision == ZLLM_DECIDE_NEARER);
  assert_non_null(strstr(w->reason, "zz/other"));
  assert_string_equal(w->family, "org/base");
  /* org/ft-absent is a twin of org/ft-wrong, whichever is first */
  const zllm_family_row *a = row(t, "org/ft-absent");
  assert_non_null(a->base);
  assert_int_equal(row(t, "zz/other")->decision, ZLLM_DECIDE_SOLO);
  assert_string_equal(row(t, "zz/other")->family, "zz/other");
  assert_string_equal(row(t, "org/ft-right")->family, "org/base");
  zllm_family_table_free(t);
  for (int i = 0; i < 6; i++)
    zllm_sketch_free(s[i]);
}

/* The bands alone (no pair-by-pair groups) find every family of 2,000
 * sketches of one architecture, comparing a few pairs per model. */
static void test_bands_find_families(void **state)
{
  (void)state;
  enum { FAMS = 200, PER = 10, N = FAMS * PER };
  zllm_sketch **s = calloc(N, sizeof *s);
  uint32_t v[K], x[K];
  char name[64];
  for (int f = 0; f < FAMS; f++) {
    for (int i = 0; i < K; i++)
      v[i] = weight(1000 + (uint64_t)f, (uint32_t)i);
    for (int m = 0; m < PER; m++) {
      tune(x, v, (uint64_t)(f * PER + m), m ? 0.3f : 0.0f); /* heavy fine-tunes */
      snprintf(name, sizeof name, "f%03d/m%d", f, m);
      s[f * PER + m] = make(name, ZLLM_DT_BF16, x, NULL, -1);
    }
  }
  zllm_family_table *t = NULL;
  zllm_cluster_options o = ZLLM_CLUSTER_OPTIONS_INIT;
  o.lsh.exhaustive_max = 0;
  assert_int_equal(zllm_cluster_sketches(&t, s, N, &o), 0);
  assert_int_equal(t->nfamilies, FAMS);
  assert_true(t->ncompared < (size_t)N * PER); /* not all pairs: N * (N - 1) / 2 would be 2 million */
  for (size_t i = 0; i < t->n; i++)
    assert_memory_equal(t->rows[i].family, t->rows[i].repo, 4); /* "fNNN" */
  zllm_family_table_free(t);
  for (int i = 0; i < N; i++)
    zllm_sketch_free(s[i]);
  free(s);
}

/* ---- one signature at a time (what each owner rank does) ---------------------- */

typedef struct {
  uint64_t *keys; /* hub indices a << 32 | b */
  size_t n, cap;
  const uint32_t *gidx;
  size_t rounds;
} group_keys;

static int take_round(void *ctx, const uint64_t *keys, size_t n)
{
  group_keys *g = ctx;
  assert_int_equal(zllm_grow((void **)&g->keys, &g->cap, g->n + n, sizeof *g->keys), 0);
  for (size_t k = 0; k < n; k++) {
    uint32_t a = (uint32_t)(keys[k] >> 32), b = (uint32_t)keys[k];
    assert_true(a < b);
    if (k) /* rounds are in (a, b) order, without repeats */
      assert_true(keys[k - 1] < keys[k]);
    g->keys[g->n++] = (uint64_t)g->gidx[a] << 32 | g->gidx[b];
  }
  g->rounds++;
  return 0;
}

static int cmp_key(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* A hub of three architectures: a big one whose models all share their sign
 * bits (every band one bucket, far above the bucket cap), a small one (every
 * pair compared) and one of fine-tune families; cards name bases inside and
 * outside their architecture and outside the hub. */
static zllm_sketch **mixed_hub(size_t *n)
{
  enum { BIG = 700, SMALL = 20, FAMS = 30, PER = 8 };
  zllm_sketch **s = calloc(BIG + SMALL + FAMS * PER, sizeof *s);
  uint32_t v[K], x[K];
  char name[64], decl[64];
  size_t m = 0;
  for (int i = 0; i < BIG; i++) {
    for (int j = 0; j < K; j++)
      v[j] = weight(5, (uint32_t)j) & 0x7fffffffu; /* all positive: one bucket per band */
    tune(x, v, (uint64_t)i, 0.01f);
    snprintf(name, sizeof name, "big/m%04d", i);
    snprintf(decl, sizeof decl, i % 7 == 3 ? "small/m%04d" : "big/m%04d", i % 7 == 3 ? 2 : i / 2);
    s[m++] = make(name, ZLLM_DT_BF16, x, i % 5 == 0 ? decl : i % 11 == 0 ? "nowhere/else" : NULL, -1);
  }
  for (int i = 0; i < SMALL; i++) {
    for (int j = 0; j < K; j++)
      v[j] = weight(900 + (uint64_t)(i / 4), (uint32_t)j);
    snprintf(name, sizeof name, "small/m%04d", i);
    s[m] = make(name, ZLLM_DT_F32, v, i % 4 ? "big/m0001" : NULL, -1);
    s[m++]->sig_shape = 77;
  }
  for (int f = 0; f < FAMS; f++) {
    for (int j = 0; j < K; j++)
      v[j] = weight(2000 + (uint64_t)f, (uint32_t)j);
    for (int i = 0; i < PER; i++) {
      tune(x, v, (uint64_t)(f * PER + i), i ? 0.3f : 0.0f);
      snprintf(name, sizeof name, "fam%02d/m%d", f, i);
      snprintf(decl, sizeof decl, "fam%02d/m0", f);
      s[m] = make(name, ZLLM_DT_BF16, x, i == 3 ? decl : NULL, i);
      s[m++]->sig_shape = 55;
    }
  }
  *n = m;
  return s;
}

static int cmp_sketch_repo(const void *a, const void *b)
{
  return strcmp((*(zllm_sketch *const *)a)->repo, (*(zllm_sketch *const *)b)->repo);
}

/* Each signature's group alone, streamed in small rounds, gives the whole
 * hub's candidates, and its families the whole hub's rows, from the pairs
 * an owner keeps (related and card pairs). */
static void test_groups_match_whole_hub(void **state)
{
  (void)state;
  size_t n = 0;
  zllm_sketch **s = mixed_hub(&n);
  qsort(s, n, sizeof *s, cmp_sketch_repo); /* hub order */
  char **ids = calloc(n, sizeof *ids);
  for (size_t i = 0; i < n; i++)
    ids[i] = s[i]->repo;
  zllm_cluster_options o = ZLLM_CLUSTER_OPTIONS_INIT;
  zllm_family_table *whole = NULL;
  assert_int_equal(zllm_cluster_sketches(&whole, s, n, &o), 0);
  uint64_t sigs[3] = {99, 77, 55};
  group_keys all = {0};
  zllm_sketch **g = calloc(n, sizeof *g);
  uint32_t *gidx = calloc(n, sizeof *gidx);
  zllm_pair *kept = calloc(whole->ncompared + 1, sizeof *kept);
  size_t rows_seen = 0;
  for (int k = 0; k < 3; k++) {
    size_t m = 0, nkept = 0;
    for (size_t i = 0; i < n; i++)
      if (s[i]->sig_shape == sigs[k]) {
        gidx[m] = (uint32_t)i;
        g[m++] = s[i];
      }
    group_keys one = {.gidx = gidx};
    cl_group_part whole_group = {0, 1, 1, 37};
    assert_int_equal(cl_candidates_group(g, gidx, m, n, &o.lsh, &whole_group, take_round, &one), 0);
    assert_true(one.rounds > (k == 0 ? 10u : 0u));
    /* three ranks sharing the group in chunks of 5 members make the same pairs between them */
    group_keys parts = {.gidx = gidx};
    for (unsigned part = 0; part < 3; part++) {
      cl_group_part share = {part, 3, 5, 11};
      assert_int_equal(cl_candidates_group(g, gidx, m, n, &o.lsh, &share, take_round, &parts), 0);
    }
    qsort(parts.keys, parts.n, sizeof *parts.keys, cmp_key);
    assert_int_equal(parts.n, one.n);
    for (size_t i = 0; i < one.n; i++)
      assert_true(parts.keys[i] == one.keys[i]);
    free(parts.keys);
    for (size_t i = 0; i < one.n; i++) {
      assert_int_equal(zllm_grow((void **)&all.keys, &all.cap, all.n + 1, sizeof *all.keys), 0);
      all.keys[all.n++] = one.keys[i];
    }
    /* the pairs an owner keeps, from the whole hub's metrics */
    long *decl = calloc(m, sizeof *decl);
    assert_int_equal(cl_declared_index(g, m, decl), 0);
    size_t *local = calloc(n, sizeof *local);
    for (size_t i = 0; i < m; i++)
      local[gidx[i]] = i;
    for (size_t p = 0; p < whole->ncompared; p++) {
      const zllm_pair *q = &whole->pairs[p];
      if (s[q->a]->sig_shape != sigs[k])
        continue;
      zllm_pair l = *q;
      l.a = (uint32_t)local[q->a];
      l.b = (uint32_t)local[q->b];
      int related = q->m.n >= ZLLM_CLUSTER_MIN_SAMPLES && q->m.distance <= o.threshold;
      if (related || decl[l.a] == (long)l.b || decl[l.b] == (long)l.a)
        kept[nkept++] = l;
    }
    zllm_family_table *part = NULL;
    assert_int_equal(cl_families_group(&part, g, m, kept, nkept, &o, ids, n), 0);
    for (size_t i = 0; i < part->n; i++, rows_seen++) {
      const zllm_family_row *a = &part->rows[i], *b = row(whole, a->repo);
      assert_string_equal(a->family, b->family);
      assert_string_equal(a->reason, b->reason);
      assert_int_equal(a->decision, b->decision);
      assert_true((a->base == NULL) == (b->base == NULL));
      if (a->base)
        assert_string_equal(a->base, b->base);
      assert_true(a->cost == b->cost && a->distance == b->distance);
    }
    zllm_family_table_free(part);
    free(decl);
    free(local);
    free(one.keys);
  }
  assert_int_equal(rows_seen, n);
  qsort(all.keys, all.n, sizeof *all.keys, cmp_key);
  assert_int_equal(all.n, whole->ncompared);
  for (size_t p = 0; p < all.n; p++)
    assert_true(all.keys[p] == ((uint64_t)whole->pairs[p].a << 32 | whole->pairs[p].b));
  zllm_family_table_free(whole);
  free(all.keys);
  free(g);
  free(gidx);
  free(kept);
  free(ids);
  for (size_t i = 0; i < n; i++)
    zllm_sketch_free(s[i]);
  free(s);
}

/* ---- pack's bases (zllm_bases_choose) ------------------------------------------- */

static const char *base_of(const zllm_base_map *m, const char *repo)
{
  const zllm_base_entry *e = zllm_base_map_find(m, repo);
  assert_non_null(e);
  return e->base ? e->base : "-";
}

static const char *why_of(const zllm_base_map *m, const char *repo)
{
  const zllm_base_entry *e = zllm_base_map_find(m, repo);
  assert_non_null(e);
  return e->why ? e->why : "-";
}

static int archive_holds_elsewhere(void *ctx, const char *repo)
{
  (void)ctx;
  return strcmp(repo, "llama2c/stories260K") == 0;
}

/* The sample hub's cards: alpha-frozen's names the wrong base (beta-base);
 * the bits overrule it, the cards alone do not, a families file wins. */
static void test_bases_choose(void **state)
{
  (void)state;
  zllm_bases_options o = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *m = NULL;
  zllm_hub *hub = NULL;
  assert_int_equal(zllm_hub_open_local(&hub, ZLLM_SAMPLE_DIR "/hub"), 0);
  o.hub = hub;
  o.from_cards = 1;
  assert_int_equal(zllm_bases_choose(&m, &o), 0);
  assert_string_equal(base_of(m, "chatco/alpha-chat"), "alpha-labs/alpha-base");
  assert_string_equal(why_of(m, "chatco/alpha-chat"), "model card");
  assert_string_equal(base_of(m, "frozenco/alpha-frozen"), "beta-labs/beta-base");
  assert_string_equal(base_of(m, "alpha-labs/alpha-base"), "-");
  zllm_base_map_free(m);

  o.from_cards = 0; /* bitwise similarity, then the cards */
  o.archived = archive_holds_elsewhere;
  assert_int_equal(zllm_bases_choose(&m, &o), 0);
  assert_string_not_equal(base_of(m, "frozenco/alpha-frozen"), "beta-labs/beta-base");
  assert_true(strncmp(why_of(m, "chatco/alpha-chat"), "bits (", 6) == 0);
  assert_string_equal(base_of(m, "alpha-labs/alpha-base"), "-");
  zllm_base_map_free(m);

  char path[] = "/tmp/zllm-bases-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  fputs("repo\tfamily\tbase\nchatco/alpha-chat\talpha\tbeta-labs/beta-base\n"
        "codeco/alpha-code\talpha\tcodeco/alpha-code\nnobody/here\tx\talpha-labs/alpha-base\n", f);
  fclose(f);
  o.families = path;
  assert_int_equal(zllm_bases_choose(&m, &o), 0);
  unlink(path);
  assert_string_equal(base_of(m, "chatco/alpha-chat"), "beta-labs/beta-base"); /* the file's word */
  assert_string_equal(why_of(m, "chatco/alpha-chat"), "families file");
  assert_null(zllm_base_map_find(m, "nobody/here")); /* not in the hub: no entry */
  assert_string_equal(base_of(m, "frozenco/alpha-frozen"), "beta-labs/beta-base"); /* cards fill the rest */
  zllm_base_map_free(m);
  zllm_hub_free(hub);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_compare_rules),
    cmocka_unit_test(test_encode_decode),
    cmocka_unit_test(test_steps_orient_a_chain),
    cmocka_unit_test(test_cards_and_twins),
    cmocka_unit_test(test_bands_find_families),
    cmocka_unit_test(test_groups_match_whole_hub),
    cmocka_unit_test(test_bases_choose),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
