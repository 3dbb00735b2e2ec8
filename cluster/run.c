/* Drivers: candidates -> comparisons -> families, in one process or over MPI
 * ranks; the hub driver; families.tsv. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"

#define MPI_ROUND_PAIRS ((size_t)1 << 22) /* pairs exchanged per allgather round */

typedef struct {
  zllm_sketch *const *s;
  zllm_pair *pairs;
} compare_job;

static int compare_range(void *ctx, int worker, uint64_t lo, uint64_t hi)
{
  compare_job *j = ctx;
  (void)worker;
  for (uint64_t k = lo; k < hi; k++) {
    zllm_pair *p = &j->pairs[k];
    if (zllm_sketch_compare(j->s[p->a], j->s[p->b], &p->m) < 0)
      memset(&p->m, 0, sizeof p->m); /* n = 0: no verdict */
  }
  return 0;
}

/* Every pair of comparable sketches of one architecture (calibration only). */
static int all_pairs(zllm_sketch *const *s, size_t ns, uint32_t (**out)[2], size_t *n)
{
  size_t cap = 0;
  *out = NULL;
  *n = 0;
  for (size_t i = 0; i < ns; i++)
    for (size_t j = i + 1; j < ns; j++) {
      if (s[i]->problem || s[j]->problem || !s[i]->nsamples || s[i]->sig_shape != s[j]->sig_shape)
        continue;
      if (*n == cap) {
        cap = cap ? 2 * cap : 256;
        uint32_t(*v)[2] = realloc(*out, cap * sizeof *v);
        if (!v)
          return zllm_error_set(ZLLM_ENOMEM, "out of memory");
        *out = v;
      }
      (*out)[*n][0] = (uint32_t)i;
      (*out)[(*n)++][1] = (uint32_t)j;
    }
  return 0;
}

static int make_pairs(zllm_pair **out, size_t *n, zllm_sketch *const *s, size_t ns, const zllm_cluster_options *o)
{
  uint32_t(*cand)[2] = NULL;
  int rc = o->all_pairs ? all_pairs(s, ns, &cand, n) : zllm_cluster_candidates(s, ns, &o->lsh, &cand, n);
  if (rc < 0)
    return rc;
  *out = calloc(*n ? *n : 1, sizeof **out);
  if (!*out) {
    free(cand);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t k = 0; k < *n; k++) {
    (*out)[k].a = cand[k][0];
    (*out)[k].b = cand[k][1];
  }
  free(cand);
  return 0;
}

int zllm_cluster_sketches(zllm_family_table **out, zllm_sketch *const *s, size_t n, const zllm_cluster_options *o)
{
  zllm_pair *pairs = NULL;
  size_t np = 0;
  int rc = make_pairs(&pairs, &np, s, n, o);
  compare_job job = {s, pairs};
  rc = rc ? rc : zllm_parallel_for(np, 256, compare_range, &job);
  rc = rc ? rc : zllm_cluster_families(out, s, n, pairs, np, o);
  free(pairs);
  return rc;
}

/* Each round: the ranks compare equal slices of a window of pairs, then
 * every rank receives every slice. */
static int compare_round(zllm_pair *pairs, size_t w0, size_t wn, zllm_sketch *const *s, MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int *counts = calloc((size_t)size, sizeof *counts), *displs = calloc((size_t)size, sizeof *displs);
  zllm_pair_metrics *mine = NULL, *all = calloc(wn ? wn : 1, sizeof *all);
  size_t lo = w0 + wn * (size_t)rank / (size_t)size, hi = w0 + wn * (size_t)(rank + 1) / (size_t)size;
  int rc = counts && displs && all && (mine = calloc(hi - lo + 1, sizeof *mine)) ? 0 : ZLLM_ENOMEM;
  rc = rc ? rc : zllm_parallel_for(hi - lo, 256, compare_range, &(compare_job){s, pairs + lo});
  for (size_t k = lo; rc == 0 && k < hi; k++)
    mine[k - lo] = pairs[k].m;
  for (int r = 0; r < size; r++) {
    size_t rlo = wn * (size_t)r / (size_t)size, rhi = wn * (size_t)(r + 1) / (size_t)size;
    counts[r] = (int)((rhi - rlo) * sizeof *all);
    displs[r] = (int)(rlo * sizeof *all);
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? zllm_error_set(rc, "cluster: out of memory") : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed");
  else if (MPI_Allgatherv(mine, counts[rank], MPI_BYTE, all, counts, displs, MPI_BYTE, comm) != MPI_SUCCESS)
    rc = zllm_error_set(ZLLM_EMPI, "cluster: MPI_Allgatherv failed");
  for (size_t k = 0; rc == 0 && k < wn; k++)
    pairs[w0 + k].m = all[k];
  free(counts);
  free(displs);
  free(mine);
  free(all);
  return rc;
}

/* Each rank bands its share of the bands; everyone gets the union. */
static int share_candidates(zllm_pair **out, size_t *np, zllm_sketch *const *s, size_t n,
                            const zllm_cluster_options *o, MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  uint64_t *mine = NULL, *all = NULL;
  size_t nmine = 0, nall = 0;
  char *bytes = NULL;
  size_t len = 0;
  int rc = cl_candidates_share(s, n, &o->lsh, (unsigned)rank, (unsigned)size, &mine, &nmine);
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    free(mine);
    return rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed");
  }
  rc = zllm_mpi_gather_bytes(mine ? (const char *)mine : "", nmine * sizeof *mine, &bytes, &len, 0, comm);
  free(mine);
  rc = rc ? rc : zllm_mpi_bcast_bytes(&bytes, &len, 0, comm);
  all = (uint64_t *)bytes;
  nall = len / sizeof *all;
  rc = rc ? rc : cl_pairs_sort_unique(all, &nall);
  if (rc == 0 && !(*out = calloc(nall ? nall : 1, sizeof **out)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < nall; k++) {
    (*out)[k].a = (uint32_t)(all[k] >> 32);
    (*out)[k].b = (uint32_t)all[k];
  }
  *np = rc == 0 ? nall : 0;
  free(bytes);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed"));
}

int zllm_cluster_sketches_mpi(zllm_family_table **out, zllm_sketch *const *s, size_t n,
                              const zllm_cluster_options *o, MPI_Comm comm)
{
  zllm_pair *pairs = NULL;
  size_t np = 0;
  int rc = o->all_pairs ? make_pairs(&pairs, &np, s, n, o) : share_candidates(&pairs, &np, s, n, o, comm);
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    free(pairs);
    return rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed");
  }
  for (size_t w0 = 0; rc == 0 && w0 < np; w0 += MPI_ROUND_PAIRS)
    rc = compare_round(pairs, w0, np - w0 < MPI_ROUND_PAIRS ? np - w0 : MPI_ROUND_PAIRS, s, comm);
  rc = rc ? rc : zllm_cluster_families(out, s, n, pairs, np, o);
  free(pairs);
  return rc;
}

/* ---- the hub driver ------------------------------------------------------ */

static int sketch_one(zllm_buf *b, const zllm_hub *hub, size_t i)
{
  uint64_t sig = 0;
  return cl_sketch_hub_repo(b, hub, i, &sig);
}

static int cmp_sketch(const void *a, const void *b)
{
  return strcmp((*(zllm_sketch *const *)a)->repo, (*(zllm_sketch *const *)b)->repo);
}

static int decode_all(zllm_sketch ***out, size_t *n, const char *data, size_t len, size_t expect)
{
  zllm_reader r = {data, len};
  zllm_sketch **v = calloc(expect ? expect : 1, sizeof *v);
  int rc = v ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  size_t k = 0;
  while (rc == 0 && r.left > 0 && k < expect)
    rc = zllm_sketch_decode(&r, &v[k++]);
  if (rc == 0 && (k != expect || r.left))
    rc = zllm_error_set(ZLLM_EFORMAT, "cluster: %zu sketches received, %zu expected", k, expect);
  if (rc < 0) {
    for (size_t i = 0; i < k; i++)
      zllm_sketch_free(v[i]);
    free(v);
    return rc;
  }
  qsort(v, k, sizeof *v, cmp_sketch);
  *out = v;
  *n = k;
  return 0;
}

typedef struct {
  zllm_pair *v;
  size_t n, cap;
} pair_list;

static int collect_pairs(void *ctx, const zllm_pair *p, size_t n)
{
  pair_list *l = ctx;
  int rc = zllm_grow((void **)&l->v, &l->cap, l->n + n, sizeof *l->v);
  if (rc == 0 && n) {
    memcpy(l->v + l->n, p, n * sizeof *p);
    l->n += n;
  }
  return rc;
}

static int cmp_pair(const void *a, const void *b)
{
  const zllm_pair *x = a, *y = b;
  if (x->a != y->a)
    return x->a < y->a ? -1 : 1;
  return x->b < y->b ? -1 : x->b > y->b;
}

/* Every owner's pairs on every rank, in (a, b) order: the table of a hub
 * small enough to hold whole (zllm cluster --pairs). */
static int share_pairs(zllm_family_table *t, pair_list *mine, const zllm_hub *hub, MPI_Comm comm)
{
  char *all = NULL;
  size_t len = 0;
  int rc = zllm_mpi_allgather_bytes((const char *)mine->v, mine->n * sizeof *mine->v, &all, &len, comm);
  if (rc == 0) {
    t->pairs = (zllm_pair *)all;
    t->ncompared = len / sizeof *t->pairs;
    qsort(t->pairs, t->ncompared, sizeof *t->pairs, cmp_pair);
    all = NULL;
  }
  if (rc == 0 && !(t->names = calloc(hub->n + 1, sizeof *t->names)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < hub->n; i++, t->nnames++)
    if (!(t->names[i] = strdup(hub->ids[i])))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  free(all);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "cluster: another rank failed"));
}

int zllm_cluster_hub_mpi(zllm_family_table **out, const zllm_hub *hub, const zllm_cluster_options *o, MPI_Comm comm)
{
  pair_list mine = {0};
  zllm_family_table *part = NULL, *t = NULL;
  int rc = zllm_cluster_hub_owned(&part, hub, o, collect_pairs, &mine, comm);
  rc = rc ? rc : zllm_family_table_share(&t, part, -1, comm);
  zllm_family_table_free(part);
  rc = rc ? rc : share_pairs(t, &mine, hub, comm);
  free(mine.v);
  if (rc < 0) {
    zllm_family_table_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

int zllm_cluster_hub(zllm_family_table **out, const zllm_hub *hub, const zllm_cluster_options *o)
{
  size_t ns = 0;
  zllm_sketch **s = NULL;
  zllm_buf all = ZLLM_BUF_INIT;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < hub->n; i++)
    rc = sketch_one(&all, hub, i);
  rc = rc ? rc : decode_all(&s, &ns, all.data ? all.data : "", all.len, hub->n);
  rc = rc ? rc : zllm_cluster_sketches(out, s, ns, o);
  for (size_t i = 0; i < ns; i++)
    zllm_sketch_free(s[i]);
  free(s);
  zllm_buf_free(&all);
  return rc;
}

/* ---- families.tsv ----------------------------------------------------------- */

static int put_num(zllm_buf *b, double v)
{
  return v < 0 ? zllm_buf_puts(b, "\t-") : zllm_buf_printf(b, "\t%.4f", v);
}

static int put_cell(zllm_buf *b, const char *s)
{
  int rc = zllm_buf_puts(b, "\t");
  return rc ? rc : zllm_buf_put_tsv(b, s && *s ? s : "-");
}

const char zllm_families_tsv_header[] = "repo\tfamily\tbase\tdeclared_base\tbit_distance\tidentical_fraction\t"
                                       "delta_bits\tdecision\treason\n";

int zllm_family_row_put(zllm_buf *b, const zllm_family_row *r)
{
  int rc = zllm_buf_put_tsv(b, r->repo);
  rc = rc ? rc : put_cell(b, r->family);
  rc = rc ? rc : put_cell(b, r->base);
  rc = rc ? rc : put_cell(b, r->declared_base);
  rc = rc ? rc : put_num(b, r->distance);
  rc = rc ? rc : put_num(b, r->identical);
  rc = rc ? rc : put_num(b, r->cost);
  rc = rc ? rc : put_cell(b, zllm_decision_name(r->decision));
  rc = rc ? rc : put_cell(b, r->reason);
  return rc ? rc : zllm_buf_puts(b, "\n");
}

int zllm_family_table_write(const zllm_family_table *t, const char *path)
{
  zllm_buf b = ZLLM_BUF_INIT;
  int rc = zllm_buf_puts(&b, zllm_families_tsv_header);
  for (size_t i = 0; rc == 0 && i < t->n; i++)
    rc = zllm_family_row_put(&b, &t->rows[i]);
  rc = rc ? rc : zllm_write_file_atomic(path, b.data, b.len);
  zllm_buf_free(&b);
  return rc;
}

const char zllm_pairs_tsv_header[] = "a\tb\tsamples\tbit_distance\tidentical_fraction\tdelta_bits_a_given_b\t"
                                    "delta_bits_b_given_a\n";

int zllm_pair_row_put(zllm_buf *b, const char *a, const char *other, const zllm_pair_metrics *m)
{
  int rc = zllm_buf_put_tsv(b, a);
  rc = rc ? rc : put_cell(b, other);
  return rc ? rc : zllm_buf_printf(b, "\t%u\t%.4f\t%.4f\t%.4f\t%.4f\n", m->n, m->distance, m->identical,
                                   m->cost_ab, m->cost_ba);
}

int zllm_family_table_write_pairs(const zllm_family_table *t, const char *path)
{
  zllm_buf b = ZLLM_BUF_INIT;
  int rc = zllm_buf_puts(&b, zllm_pairs_tsv_header);
  for (size_t k = 0; rc == 0 && k < t->ncompared; k++)
    rc = zllm_pair_row_put(&b, t->names[t->pairs[k].a], t->names[t->pairs[k].b], &t->pairs[k].m);
  rc = rc ? rc : zllm_write_file_atomic(path, b.data, b.len);
  zllm_buf_free(&b);
  return rc;
}

const zllm_family_row *zllm_family_table_find(const zllm_family_table *t, const char *repo)
{
  size_t l = 0, r = t->n;
  while (l < r) {
    size_t m = (l + r) / 2;
    int c = strcmp(t->rows[m].repo, repo);
    if (c == 0)
      return &t->rows[m];
    if (c < 0)
      l = m + 1;
    else
      r = m;
  }
  return NULL;
}

void cl_family_row_clear(zllm_family_row *r)
{
  free(r->repo);
  free(r->family);
  free(r->base);
  free(r->declared_base);
  free(r->reason);
  memset(r, 0, sizeof *r);
}

void zllm_family_table_free(zllm_family_table *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    cl_family_row_clear(&t->rows[i]);
  free(t->rows);
  free(t->pairs);
  zllm_strv_free(t->names, t->nnames);
  free(t);
}
