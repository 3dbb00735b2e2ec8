/* Families and bases from the compared pairs (docs/CLUSTER.md):
 *   related     distance <= threshold between two sketches;
 *   family      a connected component of related models;
 *   twins       related models with bitwise-identical samples and dtypes
 *               (re-uploads, reshards): one unit for ordering;
 *   order       units sorted so that a card's base comes before the model,
 *               an earlier training step before a later one, an earlier
 *               upload (createdAt, when a crawl recorded it) before a later
 *               one, and a model before one that is its cast; free choices go to the unit
 *               named as base by most cards, then the narrower dtype, then
 *               the most central unit, then the repo id;
 *   base        for a unit's first member, the earlier relative with the
 *               smallest delta cost (the declared base wins ties); for the
 *               other members, that first member. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "zllm/error.h"

#define CAST_MARGIN 1.0 /* bits per element: below this, no cast direction is claimed */

typedef struct {
  uint32_t other, pair;
} adj_entry;

typedef struct {
  zllm_sketch *const *s;
  size_t n;
  const zllm_pair *pairs;
  size_t npairs;
  const zllm_cluster_options *o;
  uint32_t *fam, *twin;   /* union-find parents */
  uint32_t *adj_start;    /* CSR over related pairs */
  adj_entry *adj;
  uint32_t *named_by;     /* cards in the same family that name this model */
  long *declared_idx;     /* index of the declared base, or -1 */
  double *centrality;     /* mean distance to related models */
  long *base;             /* chosen base index or -1 */
  long *base_pair;        /* pair index of (model, base) or -1 */
  uint32_t *unit_pos;     /* order of a unit (indexed by its twin root) */
  uint32_t *first_of;     /* a unit's first member (indexed by its twin root) */
  char *cycle;            /* the order had to break conflicting evidence */
  char *const *hub_ids;   /* sorted: every repo of the hub when `s` is one signature's group, else NULL */
  size_t nhub;
} fam_ctx;

/* ---- small helpers ------------------------------------------------------ */

static uint32_t uf_find(uint32_t *p, uint32_t x)
{
  while (p[x] != x) {
    p[x] = p[p[x]];
    x = p[x];
  }
  return x;
}

static void uf_union(uint32_t *p, uint32_t a, uint32_t b)
{
  a = uf_find(p, a);
  b = uf_find(p, b);
  if (a != b)
    p[a < b ? b : a] = a < b ? a : b; /* the smaller index is the root: deterministic */
}

static int related(const fam_ctx *c, const zllm_pair *p)
{
  return p->m.n >= ZLLM_CLUSTER_MIN_SAMPLES && p->m.distance <= c->o->threshold;
}

static int twins(const fam_ctx *c, const zllm_pair *p)
{
  return related(c, p) && p->m.identical >= 1.0 && p->m.distance == 0.0 && c->s[p->a]->sig == c->s[p->b]->sig;
}

/* The cost of coding `who` against the other model of pair p. */
static double cost_of(const zllm_pair *p, uint32_t who)
{
  return who == p->a ? p->m.cost_ab : p->m.cost_ba;
}

static long find_pair(const fam_ctx *c, uint32_t a, uint32_t b)
{
  uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
  size_t l = 0, r = c->npairs;
  while (l < r) {
    size_t m = (l + r) / 2;
    const zllm_pair *p = &c->pairs[m];
    if (p->a == lo && p->b == hi)
      return (long)m;
    if (p->a < lo || (p->a == lo && p->b < hi))
      l = m + 1;
    else
      r = m;
  }
  return -1;
}

/* ---- graph ---------------------------------------------------------------- */

static int build_graph(fam_ctx *c)
{
  uint32_t *deg = calloc(c->n + 1, sizeof *deg);
  if (!deg)
    return ZLLM_ENOMEM;
  for (size_t i = 0; i < c->n; i++)
    c->fam[i] = c->twin[i] = (uint32_t)i;
  for (size_t k = 0; k < c->npairs; k++) {
    const zllm_pair *p = &c->pairs[k];
    if (!related(c, p))
      continue;
    uf_union(c->fam, p->a, p->b);
    if (twins(c, p))
      uf_union(c->twin, p->a, p->b);
    deg[p->a]++;
    deg[p->b]++;
  }
  for (size_t i = 0; i < c->n; i++)
    c->adj_start[i + 1] = c->adj_start[i] + deg[i];
  memset(deg, 0, (c->n + 1) * sizeof *deg);
  for (size_t k = 0; k < c->npairs; k++) {
    const zllm_pair *p = &c->pairs[k];
    if (!related(c, p))
      continue;
    c->adj[c->adj_start[p->a] + deg[p->a]++] = (adj_entry){p->b, (uint32_t)k};
    c->adj[c->adj_start[p->b] + deg[p->b]++] = (adj_entry){p->a, (uint32_t)k};
  }
  free(deg);
  return 0;
}

static void score_models(fam_ctx *c)
{
  for (size_t i = 0; i < c->n; i++) {
    double sum = 0;
    uint32_t cnt = c->adj_start[i + 1] - c->adj_start[i];
    for (uint32_t e = c->adj_start[i]; e < c->adj_start[i + 1]; e++)
      sum += c->pairs[c->adj[e].pair].m.distance;
    c->centrality[i] = cnt ? sum / cnt : 1e9;
    long d = c->declared_idx[i];
    if (d >= 0 && uf_find(c->fam, (uint32_t)d) == uf_find(c->fam, (uint32_t)i) &&
        uf_find(c->twin, (uint32_t)d) != uf_find(c->twin, (uint32_t)i))
      c->named_by[d]++;
  }
}

/* ---- order of the units inside each family ------------------------------- */

typedef struct {
  uint32_t root;          /* twin root */
  uint32_t first;         /* the unit's canonical member */
  const char *repo;       /* its repo id (the last tie-break) */
  uint32_t named_by;
  uint32_t width;         /* narrowest dtype size among members' tensors */
  double centrality;
  uint32_t indeg;
} unit;

static uint32_t model_width(const zllm_sketch *s)
{
  uint32_t w = 8;
  for (size_t i = 0; i < s->ntensors; i++)
    if (s->t[i].k && zllm_dtype_get(s->t[i].dtype)->size < w)
      w = zllm_dtype_get(s->t[i].dtype)->size;
  return w;
}

/* Lower is earlier: named as base by more cards, narrower dtype, more central, repo id. */
static int unit_before(const unit *x, const unit *y)
{
  if (x->named_by != y->named_by)
    return x->named_by > y->named_by ? -1 : 1;
  if (x->width != y->width)
    return x->width < y->width ? -1 : 1;
  if (x->centrality != y->centrality)
    return x->centrality < y->centrality ? -1 : 1;
  return 0;
}

typedef struct {
  uint32_t from, to; /* unit slots */
} uedge;

typedef struct {
  fam_ctx *c;
  uint32_t *members; /* of this family, model indices */
  size_t nm;
  unit *u;
  size_t nu;
  uint32_t *slot_of; /* model index -> unit slot (valid for members) */
  uedge *e;
  size_t ne, ecap;
} family_work;

static int cmp_units(const void *a, const void *b)
{
  const unit *x = a, *y = b;
  int r = unit_before(x, y);
  return r ? r : strcmp(x->repo, y->repo);
}

static int add_edge(family_work *w, uint32_t from, uint32_t to)
{
  if (from == to)
    return 0;
  if (w->ne == w->ecap) {
    size_t cap = w->ecap ? 2 * w->ecap : 64;
    uedge *e = realloc(w->e, cap * sizeof *e);
    if (!e)
      return ZLLM_ENOMEM;
    w->e = e;
    w->ecap = cap;
  }
  w->e[w->ne++] = (uedge){from, to};
  return 0;
}

/* Edges from the evidence between two related models a and b. */
static int evidence_edges(family_work *w, const zllm_pair *p)
{
  fam_ctx *c = w->c;
  const zllm_sketch *a = c->s[p->a], *b = c->s[p->b];
  uint32_t ua = w->slot_of[p->a], ub = w->slot_of[p->b];
  int rc = 0;
  if (c->declared_idx[p->b] == (long)p->a)
    rc = add_edge(w, ua, ub);
  if (rc == 0 && c->declared_idx[p->a] == (long)p->b)
    rc = add_edge(w, ub, ua);
  if (rc == 0 && a->step >= 0 && b->step >= 0 && a->step != b->step)
    rc = a->step < b->step ? add_edge(w, ua, ub) : add_edge(w, ub, ua);
  if (rc == 0 && a->created >= 0 && b->created >= 0 && a->created != b->created)
    rc = a->created < b->created ? add_edge(w, ua, ub) : add_edge(w, ub, ua); /* uploaded first */
  if (rc == 0 && p->m.cost_ab > p->m.cost_ba + CAST_MARGIN)
    rc = add_edge(w, ua, ub); /* b is (close to) a cast of a */
  if (rc == 0 && p->m.cost_ba > p->m.cost_ab + CAST_MARGIN)
    rc = add_edge(w, ub, ua);
  return rc;
}

static int cmp_edge(const void *a, const void *b)
{
  const uedge *x = a, *y = b;
  if (x->from != y->from)
    return x->from < y->from ? -1 : 1;
  return x->to < y->to ? -1 : x->to > y->to;
}

/* Members grouped by twin unit; inside a unit the one most cards name comes
 * first, then one with a training step. */
typedef struct {
  uint32_t twin, named_by, idx;
  int has_step;
  int64_t created; /* -1 unknown: sorts after every known date */
  const char *repo;
} member_key;

static int cmp_member(const void *a, const void *b)
{
  const member_key *x = a, *y = b;
  if (x->twin != y->twin)
    return x->twin < y->twin ? -1 : 1;
  if (x->named_by != y->named_by)
    return x->named_by > y->named_by ? -1 : 1;
  if (x->has_step != y->has_step) /* a checkpoint with its trainer state, not the copy */
    return x->has_step ? -1 : 1;
  if (x->created != y->created) /* the first upload, not the re-upload */
    return (uint64_t)x->created < (uint64_t)y->created ? -1 : 1;
  return strcmp(x->repo, y->repo);
}

static int sort_members(family_work *w)
{
  fam_ctx *c = w->c;
  member_key *k = calloc(w->nm ? w->nm : 1, sizeof *k);
  if (!k)
    return ZLLM_ENOMEM;
  for (size_t i = 0; i < w->nm; i++) {
    uint32_t m = w->members[i];
    k[i] = (member_key){uf_find(c->twin, m), c->named_by[m], m, c->s[m]->step >= 0, c->s[m]->created, c->s[m]->repo};
  }
  qsort(k, w->nm, sizeof *k, cmp_member);
  for (size_t i = 0; i < w->nm; i++)
    w->members[i] = k[i].idx;
  free(k);
  return 0;
}

static int make_units(family_work *w)
{
  fam_ctx *c = w->c;
  if (sort_members(w) < 0)
    return ZLLM_ENOMEM;
  for (size_t i = 0; i < w->nm; i++) {
    uint32_t m = w->members[i], root = uf_find(c->twin, m);
    if (w->nu == 0 || w->u[w->nu - 1].root != root)
      w->u[w->nu++] = (unit){.root = root, .first = m, .repo = c->s[m]->repo, .width = 8, .centrality = 1e9};
    unit *u = &w->u[w->nu - 1];
    w->slot_of[m] = (uint32_t)(w->nu - 1);
    u->named_by += c->named_by[m];
    if (model_width(c->s[m]) < u->width)
      u->width = model_width(c->s[m]);
    if (c->centrality[m] < u->centrality)
      u->centrality = c->centrality[m];
  }
  return 0;
}

/* Kahn's topological sort, taking the best-ranked ready unit each time; when
 * the evidence conflicts (a cycle), the best-ranked waiting unit goes next. */
static int order_units(family_work *w, uint32_t *order)
{
  size_t nu = w->nu;
  uint32_t *rank = calloc(nu, sizeof *rank), *by_rank = calloc(nu, sizeof *by_rank);
  uint32_t *first_edge = calloc(nu + 1, sizeof *first_edge);
  char *done = calloc(nu, 1);
  int rc = rank && by_rank && done && first_edge ? 0 : ZLLM_ENOMEM;
  unit *sorted = rc == 0 ? malloc(nu * sizeof *sorted) : NULL;
  if (rc == 0 && !sorted)
    rc = ZLLM_ENOMEM;
  if (rc == 0) {
    memcpy(sorted, w->u, nu * sizeof *sorted);
    qsort(sorted, nu, sizeof *sorted, cmp_units);
    for (size_t r = 0; r < nu; r++) {
      uint32_t slot = w->slot_of[sorted[r].first];
      rank[slot] = (uint32_t)r;
      by_rank[r] = slot;
    }
    if (w->ne)
      qsort(w->e, w->ne, sizeof *w->e, cmp_edge);
    for (size_t k = 0; k < w->ne; k++) {
      w->u[w->e[k].to].indeg++;
      first_edge[w->e[k].from + 1]++;
    }
    for (size_t k = 0; k < nu; k++)
      first_edge[k + 1] += first_edge[k];
  }
  for (size_t step = 0; rc == 0 && step < nu; step++) {
    long pick = -1;
    for (size_t r = 0; r < nu && pick < 0; r++)
      if (!done[by_rank[r]] && w->u[by_rank[r]].indeg == 0)
        pick = by_rank[r];
    for (size_t r = 0; r < nu && pick < 0; r++)
      if (!done[by_rank[r]]) {
        pick = by_rank[r];
        w->c->cycle[w->u[pick].first] = 1;
      }
    done[pick] = 1;
    order[step] = (uint32_t)pick;
    for (size_t k = first_edge[pick]; k < first_edge[pick + 1]; k++)
      if (w->u[w->e[k].to].indeg > 0)
        w->u[w->e[k].to].indeg--;
  }
  free(first_edge);
  free(rank);
  free(by_rank);
  free(done);
  free(sorted);
  return rc;
}

/* ---- bases ----------------------------------------------------------------- */

/* Equal delta cost: the declared base, then a base of the same dtypes (no
 * cast at restore), then the nearer by distance, then the earlier. */
static int better_tie(const fam_ctx *c, uint32_t m, uint32_t o, uint32_t best, const zllm_pair *p,
                      const zllm_pair *q)
{
  int decl_o = c->declared_idx[m] == (long)o, decl_b = c->declared_idx[m] == (long)best;
  if (decl_o != decl_b)
    return decl_o;
  int same_o = c->s[o]->sig == c->s[m]->sig, same_b = c->s[best]->sig == c->s[m]->sig;
  if (same_o != same_b)
    return same_o;
  if (p->m.distance != q->m.distance)
    return p->m.distance < q->m.distance;
  return c->unit_pos[uf_find(c->twin, o)] < c->unit_pos[uf_find(c->twin, best)];
}

static void choose_base(fam_ctx *c, uint32_t m)
{
  uint32_t mypos = c->unit_pos[uf_find(c->twin, m)];
  long best = -1, best_pair = -1;
  for (uint32_t e = c->adj_start[m]; e < c->adj_start[m + 1]; e++) {
    uint32_t o = c->adj[e].other;
    const zllm_pair *p = &c->pairs[c->adj[e].pair];
    if (c->unit_pos[uf_find(c->twin, o)] >= mypos)
      continue;
    if (best >= 0) {
      const zllm_pair *q = &c->pairs[best_pair];
      double dc = cost_of(p, m) - cost_of(q, m);
      if (dc > 0 || (dc == 0 && !better_tie(c, m, o, (uint32_t)best, p, q)))
        continue;
    }
    best = o;
    best_pair = c->adj[e].pair;
  }
  /* a twin's first member is the copy pack stores; the others are file dups of it */
  uint32_t first = best >= 0 ? c->first_of[uf_find(c->twin, (uint32_t)best)] : 0;
  if (best >= 0 && first != (uint32_t)best) {
    long k = find_pair(c, m, first);
    if (k >= 0) {
      best = first;
      best_pair = k;
    }
  }
  c->base[m] = best;
  c->base_pair[m] = best_pair;
}

static int place_family(fam_ctx *c, family_work *w, uint32_t *next_pos)
{
  uint32_t *order = calloc(w->nm, sizeof *order);
  int rc = order ? make_units(w) : ZLLM_ENOMEM;
  for (size_t i = 0; rc == 0 && i < w->nm; i++) {
    uint32_t m = w->members[i];
    for (uint32_t e = c->adj_start[m]; rc == 0 && e < c->adj_start[m + 1]; e++)
      if (c->adj[e].other > m && w->slot_of[c->adj[e].other] != w->slot_of[m])
        rc = evidence_edges(w, &c->pairs[c->adj[e].pair]);
  }
  rc = rc ? rc : order_units(w, order);
  for (size_t k = 0; rc == 0 && k < w->nu; k++) {
    c->unit_pos[w->u[order[k]].root] = (*next_pos)++;
    c->first_of[w->u[order[k]].root] = w->u[order[k]].first;
  }
  for (size_t i = 0; rc == 0 && i < w->nm; i++) {
    uint32_t m = w->members[i];
    const unit *u = &w->u[w->slot_of[m]];
    if (u->first == m) {
      choose_base(c, m);
    } else {
      c->base[m] = u->first;
      c->base_pair[m] = find_pair(c, m, u->first);
    }
  }
  free(order);
  return rc;
}

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Members grouped by family root (the smallest index), families in index order. */
typedef struct {
  uint32_t fam, idx;
} fam_ref;

static int cmp_fam_ref(const void *a, const void *b)
{
  const fam_ref *x = a, *y = b;
  if (x->fam != y->fam)
    return x->fam < y->fam ? -1 : 1;
  return cmp_u32(&x->idx, &y->idx);
}

static int place_all(fam_ctx *c, size_t *nfamilies)
{
  fam_ref *refs = calloc(c->n ? c->n : 1, sizeof *refs);
  family_work w = {.c = c};
  w.members = calloc(c->n ? c->n : 1, sizeof *w.members);
  w.u = calloc(c->n ? c->n : 1, sizeof *w.u);
  w.slot_of = calloc(c->n ? c->n : 1, sizeof *w.slot_of);
  int rc = refs && w.members && w.u && w.slot_of ? 0 : ZLLM_ENOMEM;
  uint32_t pos = 0;
  *nfamilies = 0;
  for (size_t i = 0; rc == 0 && i < c->n; i++)
    refs[i] = (fam_ref){uf_find(c->fam, (uint32_t)i), (uint32_t)i};
  if (rc == 0)
    qsort(refs, c->n, sizeof *refs, cmp_fam_ref);
  for (size_t i = 0, j; rc == 0 && i < c->n; i = j) {
    for (j = i; j < c->n && refs[j].fam == refs[i].fam; j++)
      w.members[j - i] = refs[j].idx;
    w.nm = j - i;
    w.nu = w.ne = 0;
    rc = place_family(c, &w, &pos);
    (*nfamilies)++;
  }
  free(refs);
  free(w.members);
  free(w.u);
  free(w.slot_of);
  free(w.e);
  return rc;
}

/* ---- rows ------------------------------------------------------------------ */

const char *zllm_decision_name(zllm_decision d)
{
  static const char *names[] = {"solo", "root", "card", "nearer", "override", "bits", "none"};
  return (unsigned)d <= ZLLM_DECIDE_NONE ? names[d] : "?";
}

static int cmp_id(const void *key, const void *elem)
{
  return strcmp(key, *(char *const *)elem);
}

/* The card's base is a repo of the hub outside this group: in a group of
 * one shape signature, that is another architecture (or a model that could
 * not be sketched, which the whole hub's table calls the same). */
static int in_hub_elsewhere(const fam_ctx *c, size_t i)
{
  const char *d = c->s[i]->declared_base;
  return c->hub_ids && d && strcmp(d, c->s[i]->repo) != 0 && bsearch(d, c->hub_ids, c->nhub, sizeof *c->hub_ids, cmp_id);
}

/* Why the card's base is not taken as a relative. */
static void explain_declared(const fam_ctx *c, size_t i, char *buf, size_t cap)
{
  const char *d = c->s[i]->declared_base;
  long di = c->declared_idx[i];
  long k = di >= 0 ? find_pair(c, (uint32_t)i, (uint32_t)di) : -1;
  if (di < 0 && in_hub_elsewhere(c, i))
    snprintf(buf, cap, "card names %s: another architecture", d);
  else if (di < 0)
    snprintf(buf, cap, "card names %s: not in the hub", d);
  else if (c->s[di]->problem || c->s[di]->sig_shape != c->s[i]->sig_shape)
    snprintf(buf, cap, "card names %s: another architecture", d);
  else if (k < 0 || c->pairs[k].m.n < ZLLM_CLUSTER_MIN_SAMPLES)
    snprintf(buf, cap, "card names %s: too few comparable elements", d);
  else
    snprintf(buf, cap, "card names %s: bit distance %.3f > threshold %.2f", d, c->pairs[k].m.distance,
             c->o->threshold);
}

static zllm_decision decide(const fam_ctx *c, size_t i, size_t family_size, char *why, size_t cap)
{
  const zllm_sketch *s = c->s[i];
  long di = c->declared_idx[i], b = c->base[i];
  int decl_in_family = di >= 0 && uf_find(c->fam, (uint32_t)di) == uf_find(c->fam, (uint32_t)i);
  char tmp[512] = "";
  if (s->declared_base && !decl_in_family)
    explain_declared(c, i, tmp, sizeof tmp);
  if (s->problem) {
    snprintf(why, cap, "%s", s->problem);
    return ZLLM_DECIDE_NONE;
  }
  if (family_size == 1) {
    snprintf(why, cap, "%s%sno relative within the threshold", tmp, tmp[0] ? "; " : "");
    return ZLLM_DECIDE_SOLO;
  }
  if (b < 0) {
    snprintf(why, cap, "%s%sfirst of its family%s (named as base by %u card%s)", tmp, tmp[0] ? "; " : "",
             c->cycle[i] ? ", evidence in conflict" : "", c->named_by[i], c->named_by[i] == 1 ? "" : "s");
    return ZLLM_DECIDE_ROOT;
  }
  const char *twin = uf_find(c->twin, (uint32_t)i) == uf_find(c->twin, (uint32_t)b) ? "bitwise-identical weights; " : "";
  if (di == b) {
    snprintf(why, cap, "%sthe card's base_model, confirmed by the bits", twin);
    return ZLLM_DECIDE_CARD;
  }
  if (decl_in_family) {
    long k = find_pair(c, (uint32_t)i, (uint32_t)di);
    if (k >= 0 && related(c, &c->pairs[k]))
      snprintf(why, cap, "%scard names %s (%.3f bits/element); %s is closer (%.3f)", twin, s->declared_base,
               cost_of(&c->pairs[k], (uint32_t)i), c->s[b]->repo, cost_of(&c->pairs[c->base_pair[i]], (uint32_t)i));
    else
      snprintf(why, cap, "%scard names %s, a relative not compared directly; %s is the nearest", twin,
               s->declared_base, c->s[b]->repo);
    return ZLLM_DECIDE_NEARER;
  }
  if (di >= 0 || in_hub_elsewhere(c, i)) { /* the card names a model of the hub that the bits reject */
    snprintf(why, cap, "%s%s; the bits point to %s", twin, tmp, c->s[b]->repo);
    return ZLLM_DECIDE_OVERRIDE;
  }
  snprintf(why, cap, "%s%s; the nearest earlier relative", twin, s->declared_base ? tmp : "no base_model in the card");
  return ZLLM_DECIDE_BITS;
}

static int fill_row(const fam_ctx *c, size_t i, const uint32_t *fam_size, const uint32_t *fam_first,
                    zllm_family_row *r)
{
  char why[1024];
  const zllm_sketch *s = c->s[i];
  uint32_t f = uf_find(c->fam, (uint32_t)i);
  r->decision = decide(c, i, fam_size[f], why, sizeof why);
  r->repo = strdup(s->repo);
  r->family = strdup(r->decision == ZLLM_DECIDE_NONE ? "-" : c->s[fam_first[f]]->repo);
  r->base = c->base[i] >= 0 ? strdup(c->s[c->base[i]]->repo) : NULL;
  r->declared_base = s->declared_base ? strdup(s->declared_base) : NULL;
  r->reason = strdup(why);
  r->created = s->created;
  r->distance = r->identical = r->cost = -1;
  if (c->base_pair[i] >= 0) {
    const zllm_pair *p = &c->pairs[c->base_pair[i]];
    r->distance = p->m.distance;
    r->identical = p->m.identical;
    r->cost = cost_of(p, (uint32_t)i);
  }
  if (!r->repo || !r->family || !r->reason || (c->base[i] >= 0 && !r->base) || (s->declared_base && !r->declared_base))
    return ZLLM_ENOMEM;
  return 0;
}

static int cmp_row(const void *a, const void *b)
{
  return strcmp(((const zllm_family_row *)a)->repo, ((const zllm_family_row *)b)->repo);
}

static int make_rows(fam_ctx *c, zllm_family_table *t)
{
  uint32_t *fam_size = calloc(c->n ? c->n : 1, sizeof *fam_size);
  uint32_t *fam_first = calloc(c->n ? c->n : 1, sizeof *fam_first);
  int rc = fam_size && fam_first && (t->rows = calloc(c->n ? c->n : 1, sizeof *t->rows)) ? 0 : ZLLM_ENOMEM;
  for (size_t i = 0; rc == 0 && i < c->n; i++) {
    uint32_t f = uf_find(c->fam, (uint32_t)i);
    if (fam_size[f]++ == 0 || c->unit_pos[uf_find(c->twin, (uint32_t)i)] <
                                   c->unit_pos[uf_find(c->twin, fam_first[f])] ||
        (c->unit_pos[uf_find(c->twin, (uint32_t)i)] == c->unit_pos[uf_find(c->twin, fam_first[f])] && c->base[i] < 0))
      fam_first[f] = (uint32_t)i;
  }
  for (size_t i = 0; rc == 0 && i < c->n; i++, t->n++)
    rc = fill_row(c, i, fam_size, fam_first, &t->rows[i]);
  if (rc == 0)
    qsort(t->rows, t->n, sizeof *t->rows, cmp_row);
  free(fam_size);
  free(fam_first);
  return rc;
}

int zllm_cluster_families(zllm_family_table **out, zllm_sketch *const *s, size_t n, const zllm_pair *pairs,
                          size_t npairs, const zllm_cluster_options *o)
{
  return cl_families_group(out, s, n, pairs, npairs, o, NULL, 0);
}

int cl_families_group(zllm_family_table **out, zllm_sketch *const *s, size_t n, const zllm_pair *pairs,
                      size_t npairs, const zllm_cluster_options *o, char *const *hub_ids, size_t nhub)
{
  fam_ctx c = {.s = s, .n = n, .pairs = pairs, .npairs = npairs, .o = o, .hub_ids = hub_ids, .nhub = nhub};
  size_t nn = n ? n : 1;
  zllm_family_table *t = calloc(1, sizeof *t);
  c.fam = calloc(nn, sizeof *c.fam);
  c.twin = calloc(nn, sizeof *c.twin);
  c.adj_start = calloc(nn + 1, sizeof *c.adj_start);
  c.adj = calloc(2 * npairs + 1, sizeof *c.adj);
  c.named_by = calloc(nn, sizeof *c.named_by);
  c.declared_idx = calloc(nn, sizeof *c.declared_idx);
  c.centrality = calloc(nn, sizeof *c.centrality);
  c.base = calloc(nn, sizeof *c.base);
  c.base_pair = calloc(nn, sizeof *c.base_pair);
  c.unit_pos = calloc(nn, sizeof *c.unit_pos);
  c.first_of = calloc(nn, sizeof *c.first_of);
  c.cycle = calloc(nn, 1);
  int rc = t && c.fam && c.twin && c.adj_start && c.adj && c.named_by && c.declared_idx && c.centrality && c.base &&
                   c.base_pair && c.unit_pos && c.first_of && c.cycle
               ? 0
               : ZLLM_ENOMEM;
  rc = rc ? rc : cl_declared_index(s, n, c.declared_idx);
  rc = rc ? rc : build_graph(&c);
  if (rc == 0)
    score_models(&c);
  rc = rc ? rc : place_all(&c, &t->nfamilies);
  rc = rc ? rc : make_rows(&c, t);
  if (rc == 0 && (t->pairs = malloc((npairs ? npairs : 1) * sizeof *pairs)) &&
      (t->names = calloc(n ? n : 1, sizeof *t->names))) {
    if (npairs)
      memcpy(t->pairs, pairs, npairs * sizeof *pairs);
    t->ncompared = npairs;
    t->total = t->n;
    for (size_t i = 0; rc == 0 && i < n; i++, t->nnames++)
      if (!(t->names[i] = strdup(s[i]->repo)))
        rc = ZLLM_ENOMEM;
  } else if (rc == 0) {
    rc = ZLLM_ENOMEM;
  }
  free(c.fam);
  free(c.twin);
  free(c.adj_start);
  free(c.adj);
  free(c.named_by);
  free(c.declared_idx);
  free(c.centrality);
  free(c.base);
  free(c.base_pair);
  free(c.unit_pos);
  free(c.first_of);
  free(c.cycle);
  if (rc < 0) {
    zllm_family_table_free(t);
    return rc == ZLLM_ENOMEM ? zllm_error_set(ZLLM_ENOMEM, "out of memory") : rc;
  }
  *out = t;
  return 0;
}
