/* Families over MPI ranks by architecture signature (docs/CLUSTER.md, "Over
 * ranks").  Each rank sketches its share of the hub's repos (by bytes) and
 * sends each sketch to the rank that owns its shape signature.  Families
 * never cross a shape signature (sketches of two shapes do not compare), so
 * an owner finds the candidates, the comparisons and the families of its
 * signatures alone: the candidates stream in rounds, every compared pair
 * goes to the caller's sink, and only the pairs the families need (related
 * ones and card pairs) stay.  A big signature (one base and its thousands
 * of fine-tunes: the real hub's shape) is shared: its owner sends its
 * sketches to every rank, each compares its chunks of members, and the
 * needed pairs go back to the owner for the families.  The rows, one per
 * repo, then go to their repos' homes (cluster/parts.c).  No rank holds
 * another small signature's sketches, any pair list whole, or the whole
 * family table. */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "zllm/error.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"

#define ROUND_PAIRS ((size_t)1 << 18) /* candidates compared per round: ~25 MB of pairs and keys */

static size_t round_pairs(void)
{
  return zllm_bounded(ROUND_PAIRS, 3);
}

static int owner_of(uint64_t sig_shape, int size)
{
  return (int)(cl_mix64(sig_shape) % (uint64_t)size);
}

/* ---- sketching this rank's share and sending each sketch to its owner ---- */

/* A repo without a sketch goes to the owner of signature 0, as any. */
static int sketch_to_owner(zllm_buf *to, const zllm_hub *hub, size_t i, int size)
{
  zllm_buf one = ZLLM_BUF_INIT;
  uint64_t sig = 0;
  int rc = cl_sketch_hub_repo(&one, hub, i, &sig);
  rc = rc ? rc : zllm_buf_append(&to[owner_of(sig, size)], one.data, one.len);
  zllm_buf_free(&one);
  return rc;
}

typedef struct {
  zllm_sketch *s;
  uint32_t hub_idx;
} owned_sketch;

static int cmp_owned(const void *a, const void *b)
{
  const owned_sketch *x = a, *y = b;
  if (x->s->sig_shape != y->s->sig_shape)
    return x->s->sig_shape < y->s->sig_shape ? -1 : 1;
  return x->hub_idx < y->hub_idx ? -1 : x->hub_idx > y->hub_idx;
}

/* The sketches this rank owns, by signature, then hub order. */
static int receive_sketches(owned_sketch **out, size_t *n, const char *data, size_t len, const zllm_hub *hub)
{
  zllm_reader r = {data, len};
  owned_sketch *v = NULL;
  size_t cap = 0;
  int rc = 0;
  *n = 0;
  while (rc == 0 && r.left > 0) {
    zllm_sketch *s = NULL;
    rc = zllm_grow((void **)&v, &cap, *n + 1, sizeof *v);
    rc = rc ? rc : zllm_sketch_decode(&r, &s);
    long at = rc == 0 ? zllm_hub_find(hub, s->repo) : -1;
    if (rc == 0 && at < 0) {
      rc = zllm_error_set(ZLLM_EFORMAT, "cluster: a sketch of %s, not a repo of the hub", s->repo);
      zllm_sketch_free(s);
    }
    if (rc == 0)
      v[(*n)++] = (owned_sketch){s, (uint32_t)at};
  }
  if (rc == 0 && *n)
    qsort(v, *n, sizeof *v, cmp_owned);
  *out = v;
  return rc;
}

/* ---- one signature's group --------------------------------------------------- */

static int cmp_u64_first(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct {
  zllm_sketch **s;
  uint32_t *gidx;
  long *declared;
  size_t n;
  const zllm_cluster_options *o;
  zllm_pair_sink sink;
  void *sink_ctx;
  zllm_pair *round, *hub_pairs; /* one round, in group and in hub indices */
  size_t round_cap;
  zllm_pair *kept; /* what the families need */
  size_t nkept, kept_cap;
  uint64_t compared;
} group_run;

static int compare_range(void *ctx, int worker, uint64_t lo, uint64_t hi)
{
  group_run *g = ctx;
  (void)worker;
  for (uint64_t k = lo; k < hi; k++) {
    zllm_pair *p = &g->round[k];
    if (zllm_sketch_compare(g->s[p->a], g->s[p->b], &p->m) < 0)
      memset(&p->m, 0, sizeof p->m); /* n = 0: no verdict */
  }
  return 0;
}

/* Related pairs make the families; a card's pair explains its verdict. */
static int needed(const group_run *g, const zllm_pair *p)
{
  int related = p->m.n >= ZLLM_CLUSTER_MIN_SAMPLES && p->m.distance <= g->o->threshold;
  return related || g->declared[p->a] == (long)p->b || g->declared[p->b] == (long)p->a;
}

/* A round of candidates: compared, handed to the sink, the needed kept. */
static int compare_round(void *ctx, const uint64_t *keys, size_t n)
{
  group_run *g = ctx;
  int rc = 0;
  if (n > g->round_cap) {
    free(g->round);
    free(g->hub_pairs);
    g->round = calloc(n, sizeof *g->round);
    g->hub_pairs = calloc(n, sizeof *g->hub_pairs);
    g->round_cap = g->round && g->hub_pairs ? n : 0;
    if (!g->round_cap)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t k = 0; k < n; k++)
    g->round[k] = (zllm_pair){.a = (uint32_t)(keys[k] >> 32), .b = (uint32_t)keys[k]};
  rc = zllm_parallel_for(n, 256, compare_range, g);
  for (size_t k = 0; rc == 0 && k < n; k++) {
    g->hub_pairs[k] = g->round[k];
    g->hub_pairs[k].a = g->gidx[g->round[k].a];
    g->hub_pairs[k].b = g->gidx[g->round[k].b];
    if (needed(g, &g->round[k])) {
      rc = zllm_grow((void **)&g->kept, &g->kept_cap, g->nkept + 1, sizeof *g->kept);
      if (rc == 0)
        g->kept[g->nkept++] = g->round[k];
    }
  }
  rc = rc ? rc : g->sink ? g->sink(g->sink_ctx, g->hub_pairs, n) : 0;
  g->compared += n;
  return rc;
}

/* --all-pairs (calibration): every pair of the group the whole hub's
 * all-pairs list holds, in rounds (this part's members only). */
static int all_pairs_rounds(group_run *g, const cl_group_part *part)
{
  uint64_t *keys = malloc((part->round + g->n + 1) * sizeof *keys);
  size_t n = 0;
  int rc = keys ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t a = 0; rc == 0 && a < g->n; a++) {
    if ((a / part->chunk) % part->nparts != part->part)
      continue;
    for (size_t b = a + 1; g->s[a]->nsamples && !g->s[a]->problem && b < g->n; b++)
      if (!g->s[b]->problem)
        keys[n++] = (uint64_t)a << 32 | b;
    if (n && n >= part->round) {
      rc = compare_round(g, keys, n);
      n = 0;
    }
  }
  rc = rc ? rc : n ? compare_round(g, keys, n) : 0;
  free(keys);
  return rc;
}

static void group_free(group_run *g)
{
  free(g->s);
  free(g->gidx);
  free(g->declared);
  free(g->round);
  free(g->hub_pairs);
  free(g->kept);
}

/* A group's sketches (hub order) and this rank's part of its comparisons:
 * every compared pair to the sink, the needed ones kept in g->kept. */
static int compare_group(group_run *g, zllm_sketch **s, const uint32_t *gidx, size_t n, const zllm_hub *hub,
                         const cl_group_part *part)
{
  g->n = n;
  g->s = calloc(n + 1, sizeof *g->s);
  g->gidx = calloc(n + 1, sizeof *g->gidx);
  g->declared = calloc(n + 1, sizeof *g->declared);
  int rc = g->s && g->gidx && g->declared ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    g->s[i] = s[i];
    g->gidx[i] = gidx[i];
  }
  rc = rc ? rc : cl_declared_index(g->s, n, g->declared);
  if (rc == 0 && g->o->all_pairs)
    rc = all_pairs_rounds(g, part);
  else if (rc == 0)
    rc = cl_candidates_group(g->s, g->gidx, n, hub->n, &g->o->lsh, part, compare_round, g);
  return rc;
}

/* The group's families from its needed pairs (sorted); rows appended. */
static int group_families(group_run *g, const zllm_pair *kept, size_t nkept, const zllm_hub *hub,
                          zllm_family_table *rows, size_t *rows_cap)
{
  zllm_family_table *t = NULL;
  int rc = cl_families_group(&t, g->s, g->n, kept, nkept, g->o, hub->ids, hub->n);
  rc = rc ? rc : zllm_grow((void **)&rows->rows, rows_cap, rows->n + g->n, sizeof *rows->rows);
  if (rc == 0) { /* the rows move over */
    memcpy(rows->rows + rows->n, t->rows, t->n * sizeof *t->rows);
    rows->n += t->n;
    rows->nfamilies += t->nfamilies;
    t->n = 0;
  }
  zllm_family_table_free(t);
  return rc;
}

/* The families of one signature's group, by its owner alone. */
static int cluster_group(owned_sketch *v, size_t n, const zllm_hub *hub, const zllm_cluster_options *o,
                         zllm_pair_sink sink, void *sink_ctx, zllm_family_table *rows, size_t *rows_cap)
{
  group_run g = {.o = o, .sink = sink, .sink_ctx = sink_ctx};
  zllm_sketch **s = calloc(n + 1, sizeof *s);
  uint32_t *gidx = calloc(n + 1, sizeof *gidx);
  cl_group_part whole = {0, 1, 1, round_pairs()};
  int rc = s && gidx ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    s[i] = v[i].s;
    gidx[i] = v[i].hub_idx;
  }
  rc = rc ? rc : compare_group(&g, s, gidx, n, hub, &whole);
  rc = rc ? rc : group_families(&g, g.kept, g.nkept, hub, rows, rows_cap);
  rows->ncompared += g.compared;
  group_free(&g);
  free(s);
  free(gidx);
  return rc;
}

/* ---- a big signature, shared by every rank --------------------------------- */

#define BIG_GROUP zllm_bounded(512, 3) /* a signature of this many models is compared by every rank */
#define BIG_CHUNK zllm_bounded(64, 2)  /* members dealt to the ranks in chunks of this many */

/* The big groups of every owner, in signature order: (owner, first, n)
 * triples, `first` an index into the owner's sorted sketches. */
static int list_big_groups(const owned_sketch *v, size_t nv, uint64_t **out, size_t *nout, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  zllm_buf mine = ZLLM_BUF_INIT;
  char *all = NULL;
  size_t len = 0;
  int rc = 0;
  for (size_t i = 0, j; rc == 0 && i < nv; i = j) {
    for (j = i + 1; j < nv && v[j].s->sig_shape == v[i].s->sig_shape; j++)
      ;
    if (j - i >= BIG_GROUP) {
      rc = zllm_buf_put_u64(&mine, v[i].s->sig_shape);
      rc = rc ? rc : zllm_buf_put_u64(&mine, (uint64_t)rank);
      rc = rc ? rc : zllm_buf_put_u64(&mine, i);
      rc = rc ? rc : zllm_buf_put_u64(&mine, j - i);
    }
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ENOMEM, "cluster: out of memory on another rank");
  rc = rc ? rc : zllm_mpi_allgather_bytes(mine.data, mine.len, &all, &len, comm);
  zllm_buf_free(&mine);
  if (rc == 0) { /* sig, owner, first, n: sorted by sig (each has one owner) */
    *out = (uint64_t *)all;
    *nout = len / (4 * sizeof(uint64_t));
    qsort(*out, *nout, 4 * sizeof(uint64_t), cmp_u64_first);
    return 0;
  }
  free(all);
  return rc;
}

/* The group's sketches from its owner to every rank, in hub order. */
static int share_group(const owned_sketch *v, size_t first, size_t n, int owner, zllm_sketch ***s, uint32_t **gidx,
                       const zllm_hub *hub, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  zllm_buf b = ZLLM_BUF_INIT;
  char *data = NULL;
  size_t len = 0;
  int rc = 0;
  for (size_t i = 0; rank == owner && rc == 0 && i < n; i++)
    rc = zllm_sketch_encode(&b, v[first + i].s);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ENOMEM, "cluster: out of memory on another rank");
  data = b.data;
  len = b.len;
  b.data = NULL;
  rc = rc ? rc : zllm_mpi_bcast_bytes(&data, &len, owner, comm);
  *s = calloc(n + 1, sizeof **s);
  *gidx = calloc(n + 1, sizeof **gidx);
  if (rc == 0 && (!*s || !*gidx))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  zllm_reader r = {data, len};
  for (size_t i = 0; rc == 0 && i < n; i++) {
    long at;
    rc = zllm_sketch_decode(&r, &(*s)[i]);
    if (rc == 0 && (at = zllm_hub_find(hub, (*s)[i]->repo)) < 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "cluster: a sketch of %s, not a repo of the hub", (*s)[i]->repo);
    if (rc == 0)
      (*gidx)[i] = (uint32_t)at;
  }
  free(data);
  zllm_buf_free(&b);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "cluster: another rank failed"));
}

static int cmp_pair(const void *a, const void *b)
{
  const zllm_pair *x = a, *y = b;
  if (x->a != y->a)
    return x->a < y->a ? -1 : 1;
  return x->b < y->b ? -1 : x->b > y->b;
}

/* One big group: every rank compares its chunks of members; the needed
 * pairs go to the owner, which finds the families. */
static int cluster_big_group(const owned_sketch *v, const uint64_t *big, const zllm_hub *hub,
                             const zllm_cluster_options *o, zllm_pair_sink sink, void *sink_ctx,
                             zllm_family_table *rows, size_t *rows_cap, MPI_Comm comm)
{
  int rank, size, owner = (int)big[1];
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  size_t n = (size_t)big[3];
  zllm_sketch **s = NULL;
  uint32_t *gidx = NULL;
  char *kept = NULL;
  size_t len = 0;
  group_run g = {.o = o, .sink = sink, .sink_ctx = sink_ctx};
  cl_group_part part = {(unsigned)rank, (unsigned)size, BIG_CHUNK, round_pairs()};
  int rc = share_group(v, (size_t)big[2], n, owner, &s, &gidx, hub, comm);
  rc = rc ? rc : compare_group(&g, s, gidx, n, hub, &part);
  rows->ncompared += g.compared;
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "cluster: another rank failed");
  rc = rc ? rc : zllm_mpi_gather_bytes(g.kept ? (const char *)g.kept : "", g.nkept * sizeof *g.kept, &kept, &len,
                                       owner, comm);
  if (rc == 0 && rank == owner) {
    size_t nk = len / sizeof *g.kept;
    qsort(kept, nk, sizeof *g.kept, cmp_pair);
    rc = group_families(&g, (const zllm_pair *)kept, nk, hub, rows, rows_cap);
  }
  free(kept);
  for (size_t i = 0; s && i < n; i++)
    zllm_sketch_free(s[i]);
  free(s);
  free(gidx);
  group_free(&g);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "cluster: another rank failed"));
}

/* ---- the driver ---------------------------------------------------------------- */

/* This rank's share of the repos, sketched and sent to their owners. */
static int exchange_sketches(owned_sketch **v, size_t *nv, const zllm_hub *hub, MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  zllm_buf *to = calloc((size_t)size, sizeof *to);
  char **send = calloc((size_t)size, sizeof *send), *got = NULL;
  size_t *send_len = calloc((size_t)size, sizeof *send_len), *mine = NULL, nmine = 0, len = 0;
  uint64_t *sizes = calloc(hub->n + 1, sizeof *sizes);
  int rc = to && send && send_len && sizes ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < hub->n; i++)
    sizes[i] = hub->info[i].bytes;
  rc = rc ? rc : zllm_deal_by_size(sizes, hub->n, size, rank, &mine, &nmine);
  for (size_t k = 0; rc == 0 && k < nmine; k++)
    rc = sketch_to_owner(to, hub, mine[k], size);
  rc = rc ? rc : zllm_test_fail("cluster", rank);
  for (int r = 0; to && send && send_len && r < size; r++) {
    send[r] = to[r].data;
    send_len[r] = to[r].len;
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed while sketching");
  else
    rc = zllm_mpi_alltoall_bytes(send, send_len, &got, &len, comm);
  for (int r = 0; to && r < size; r++)
    zllm_buf_free(&to[r]);
  free(to);
  free(send);
  free(send_len);
  free(sizes);
  free(mine);
  rc = rc ? rc : receive_sketches(v, nv, got, len, hub);
  free(got);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed"));
}

int zllm_cluster_hub_owned(zllm_family_table **out, const zllm_hub *hub, const zllm_cluster_options *o,
                           zllm_pair_sink sink, void *sink_ctx, MPI_Comm comm)
{
  owned_sketch *v = NULL;
  size_t nv = 0, cap = 0;
  zllm_family_table *t = calloc(1, sizeof *t);
  int rc = t ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    free(t);
    return rc ? rc : zllm_error_set(ZLLM_ENOMEM, "cluster: out of memory on another rank");
  }
  uint64_t *big = NULL;
  size_t nbig = 0;
  rc = exchange_sketches(&v, &nv, hub, comm);
  rc = rc ? rc : list_big_groups(v, nv, &big, &nbig, comm);
  for (size_t i = 0, j; rc == 0 && i < nv; i = j) { /* each owner its small signatures, alone */
    for (j = i + 1; j < nv && v[j].s->sig_shape == v[i].s->sig_shape; j++)
      ;
    rc = j - i < BIG_GROUP ? cluster_group(v + i, j - i, hub, o, sink, sink_ctx, t, &cap) : 0;
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed");
  for (size_t k = 0; rc == 0 && k < nbig; k++) /* the big ones, every rank in turn */
    rc = cluster_big_group(v, big + 4 * k, hub, o, sink, sink_ctx, t, &cap, comm);
  free(big);
  for (size_t i = 0; i < nv; i++)
    zllm_sketch_free(v[i].s);
  free(v);
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed");
  rc = rc ? rc : cl_rows_to_homes(t, hub, comm);
  if (rc < 0) {
    zllm_family_table_free(t);
    return rc;
  }
  *out = t;
  return 0;
}
