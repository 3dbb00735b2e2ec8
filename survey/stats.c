/* The characterization study: OUTDIR/stats.h5, written collectively with
 * parallel HDF5 (docs/STATS.md).  Whole families are dealt to ranks by bytes;
 * each rank reads its models' tensors once (and the tensors of their chosen bases)
 * and computes per-tensor and per-model statistics; rows are written at
 * their hub-order positions, so the file is the same for any number of ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "survey/h5out.h"
#include "survey/rows.h"
#include "survey/survey_internal.h"
#include "zllm/analyze.h"
#include "zllm/archive.h"
#include "zllm/cluster.h"
#include "zllm/dtype.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"
#include "zllm/tally.h"

#define PART_ELEMS ((size_t)1 << 16) /* 128-256 KiB per buffer: the passes over a part stay in L2 */
#define NAME_LEN SV_NAME_LEN
#define ID_LEN 128
#define EXP_BINS SV_EXP_BINS
#define REL_BINS SV_REL_BINS
#define NDT SV_NDT

static const zllm_dtype exp_dtypes[NDT] = {ZLLM_DT_BF16, ZLLM_DT_F16, ZLLM_DT_F32};

typedef sv_trow t_row;
typedef sv_erow e_row;
typedef sv_mrow m_row;

typedef struct {
  sv_run *run;
  uint64_t *first;     /* per repo: global row of its first tensor */
  uint64_t ntensors;
  size_t *mine, nmine; /* this rank's repos */
  t_row *rows;         /* this rank's tensor rows, repo by repo */
  size_t nrows;
  m_row *models;       /* per own repo */
  e_row *exps;         /* per own repo x NDT */
  zllm_progress progress;
  zllm_archive *archive; /* OUTDIR/archive, read-only, when the survey packed */
} st_ctx;

/* ---- which files and bases ---------------------------------------------- */

/* A repo's safetensors headers, in path order (files are in hub order). */
typedef struct {
  zllm_st_header **h;
  int *fd;
  const char **path; /* relative to the repo (borrowed from the file list) */
  size_t n;
} repo_files;

static void close_files(repo_files *f)
{
  for (size_t i = 0; i < f->n; i++) {
    zllm_st_header_free(f->h[i]);
    if (f->fd[i] >= 0)
      close(f->fd[i]);
  }
  free(f->h);
  free(f->fd);
  free(f->path);
  memset(f, 0, sizeof *f);
}

/* Malformed files are left out here: the scan reports them. */
static int open_files(const sv_run *run, size_t repo, repo_files *out)
{
  size_t lo, hi;
  memset(out, 0, sizeof *out);
  sv_repo_files(&run->list, repo, &lo, &hi);
  for (size_t i = lo; i < hi; i++) {
    const sv_file *f = &run->list.files[i];
    if (f->kind != ZLLM_FILE_SAFETENSORS)
      continue;
    zllm_st_header **h = realloc(out->h, (out->n + 1) * sizeof *h);
    int *fd = h ? realloc(out->fd, (out->n + 1) * sizeof *fd) : NULL;
    const char **p = fd ? realloc(out->path, (out->n + 1) * sizeof *p) : NULL;
    if (h)
      out->h = h;
    if (fd)
      out->fd = fd;
    if (!h || !fd || !p)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    out->path = p;
    out->path[out->n] = f->path;
    out->h[out->n] = NULL;
    out->fd[out->n] = -1;
    zllm_hub_file hf = sv_hub_file(f);
    if (zllm_hub_file_open_st(&hf, run->list.repo_ids[repo], &out->h[out->n], &out->fd[out->n]) == 0)
      out->n++;
  }
  return 0;
}

static uint64_t count_tensors(const repo_files *f)
{
  uint64_t n = 0;
  for (size_t i = 0; i < f->n; i++)
    n += f->h[i]->ntensors;
  return n;
}

/* ---- per-tensor statistics ----------------------------------------------- */

typedef struct {
  const zllm_st_header *h;
  int fd;
  size_t idx;
} tensor_ref;

/* The base's tensor of the same name and shape in a float dtype, or none. */
static int find_base(const repo_files *b, const zllm_st_tensor *t, tensor_ref *out)
{
  for (size_t i = 0; b && i < b->n; i++) {
    long k = zllm_st_find(b->h[i], t->name);
    if (k < 0)
      continue;
    const zllm_st_tensor *bt = &b->h[i]->tensors[k];
    int same = bt->ndim == t->ndim && bt->nelem == t->nelem && zllm_tally_dtype(bt->dtype);
    for (uint32_t d = 0; same && d < t->ndim; d++)
      same = bt->shape[d] == t->shape[d];
    if (same) {
      *out = (tensor_ref){b->h[i], b->fd[i], (size_t)k};
      return 1;
    }
  }
  return 0;
}

/* The base's share of a tensor's delta tallies: per tensor (flips, changes)
 * and per model and dtype (the XOR's streams). */
void sv_settle_delta(t_row *r, e_row *e, const zllm_tally_delta *d, size_t es)
{
  r->elements = d->elements;
  r->identical = (double)d->same; /* a count until tensor_stats divides it */
  for (int k = 0; k < EXP_BINS; k++)
    r->exp_change[k] = d->exp_change[k];
  for (int k = 0; k < REL_BINS; k++)
    r->rel_change[k] = d->rel_change[k];
  zllm_tally_flips(d, es, r->flips);
  for (size_t k = 0; k < 4; k++)
    for (unsigned v = 0; v < 256; v++)
      e->planes_xor[k][v] += d->xor_planes[k][v];
  for (unsigned v = 0; v < 256; v++)
    e->hist_xor[v] += d->xor_hist[v];
  e->n_xor += d->elements;
}

/* Reads one tensor in parts: its hash, its plain byte statistics, and the
 * delta statistics against the base's tensor (cast to this dtype) if any
 * (zllm/tally.h; e is the model's row of this float dtype, or NULL). */
static int tensor_stats(t_row *r, e_row *e, const zllm_st_header *h, int fd, size_t ti, const tensor_ref *base,
                        uint8_t *buf, uint8_t *bbuf)
{
  const zllm_st_tensor *t = &h->tensors[ti];
  size_t es = zllm_dtype_get(t->dtype)->size, bes = base ? zllm_dtype_get(base->h->tensors[base->idx].dtype)->size : 0;
  zllm_xxh128_ctx *x = NULL;
  zllm_tally_delta delta;
  memset(&delta, 0, sizeof delta);
  int rc = zllm_xxh128_ctx_new(&x);
  for (uint64_t at = 0; rc == 0 && at < t->nelem; at += PART_ELEMS) {
    size_t n = t->nelem - at < PART_ELEMS ? (size_t)(t->nelem - at) : PART_ELEMS;
    rc = zllm_st_read_tensor(h, fd, ti, at * es, buf, n * es);
    if (rc < 0)
      break;
    zllm_xxh128_ctx_update(x, buf, n * es);
    if (e)
      zllm_tally_plain_add(&e->plain, buf, n, t->dtype);
    if (!base || !e)
      continue;
    zllm_dtype bd = base->h->tensors[base->idx].dtype;
    rc = zllm_st_read_tensor(base->h, base->fd, base->idx, at * bes, bbuf, n * bes);
    if (rc == 0)
      zllm_tally_delta_add(&delta, buf, bbuf, n, t->dtype, bd);
  }
  if (rc == 0 && base && e)
    sv_settle_delta(r, e, &delta, es);
  if (rc == 0) {
    zllm_xxh128 hash;
    zllm_xxh128_ctx_final(x, &hash);
    memcpy(r->key, hash.b, 16);
    zllm_hex(r->xxh, hash.b, 16);
    if (r->elements)
      r->identical /= (double)r->elements;
  }
  zllm_xxh128_ctx_free(x);
  return rc;
}

void sv_describe_tensor(t_row *r, const zllm_st_tensor *t, int64_t model)
{
  r->model = model;
  snprintf(r->name, sizeof r->name, "%s", t->name);
  snprintf(r->dtype, sizeof r->dtype, "%s", zllm_dtype_get(t->dtype)->name);
  zllm_st_shape_str(r->shape, sizeof r->shape, t);
  r->bytes = t->end - t->begin;
  r->identical = 0; /* a count until tensor_stats divides it */
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The architecture signatures: names, shapes and dtypes, and names and
 * shapes alone, each tensor hashed, the hashes sorted (shard order does not
 * matter), then hashed together. */
void sv_tensor_sig(const zllm_st_tensor *x, uint64_t *full, uint64_t *shape_only)
{
  char shape[512], buf[1024];
  zllm_st_shape_str(shape, sizeof shape, x);
  int len = snprintf(buf, sizeof buf, "%s\t%s", x->name, shape);
  *shape_only = XXH3_64bits(buf, (size_t)(len < (int)sizeof buf ? len : (int)sizeof buf - 1));
  len = snprintf(buf, sizeof buf, "%s\t%s\t%s", x->name, shape, zllm_dtype_get(x->dtype)->name);
  *full = XXH3_64bits(buf, (size_t)(len < (int)sizeof buf ? len : (int)sizeof buf - 1));
}

void sv_finish_sig(m_row *m, uint64_t *a, uint64_t *b, size_t n)
{
  if (n) { /* a repo without tensors has no arrays at all */
    qsort(a, n, 8, cmp_u64);
    qsort(b, n, 8, cmp_u64);
  }
  snprintf(m->sig, sizeof m->sig, "%016llx", n ? (unsigned long long)XXH3_64bits(a, n * 8) : 0ULL);
  snprintf(m->shape_sig, sizeof m->shape_sig, "%016llx", n ? (unsigned long long)XXH3_64bits(b, n * 8) : 0ULL);
}

static int signatures(m_row *m, const repo_files *f)
{
  uint64_t n = count_tensors(f), k = 0;
  uint64_t *a = calloc(n + 1, 8), *b = calloc(n + 1, 8);
  if (!a || !b) {
    free(a);
    free(b);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < f->n; i++)
    for (size_t t = 0; t < f->h[i]->ntensors; t++, k++)
      sv_tensor_sig(&f->h[i]->tensors[t], &a[k], &b[k]);
  sv_finish_sig(m, a, b, n);
  free(a);
  free(b);
  return 0;
}

int sv_exp_slot(zllm_dtype d)
{
  for (int k = 0; k < NDT; k++)
    if (exp_dtypes[k] == d)
      return k;
  return -1;
}

/* All tensors of one repo, read from the hub, against its chosen base's
 * (what the one pass did not see whole). */
static int repo_read(st_ctx *c, size_t k, uint8_t *buf, uint8_t *bbuf)
{
  sv_run *run = c->run;
  size_t repo = c->mine[k];
  const zllm_family_row *fr = run->families ? zllm_family_table_find(run->families, run->list.repo_ids[repo]) : NULL;
  long b = fr && fr->base ? sv_repo_index(&run->list, fr->base) : -1;
  repo_files mine, base = {0};
  int rc = open_files(run, repo, &mine);
  if (rc == 0 && b >= 0)
    rc = open_files(run, (size_t)b, &base);
  m_row *m = &c->models[k];
  for (size_t f = 0; rc == 0 && f < mine.n; f++)
    for (size_t ti = 0; rc == 0 && ti < mine.h[f]->ntensors; ti++) {
      const zllm_st_tensor *t = &mine.h[f]->tensors[ti];
      t_row *r = &c->rows[c->nrows++];
      tensor_ref br;
      int has = zllm_tally_dtype(t->dtype) && b >= 0 && find_base(&base, t, &br);
      int slot = sv_exp_slot(t->dtype);
      e_row *e = slot >= 0 ? &c->exps[k * NDT + (size_t)slot] : NULL;
      sv_describe_tensor(r, t, (int64_t)repo);
      r->path = mine.path[f];
      r->idx = ti;
      r->has_base = (int8_t)has;
      m->tensors++;
      m->params[t->dtype] += t->nelem;
      rc = tensor_stats(r, e, mine.h[f], mine.fd[f], ti, has ? &br : NULL, buf, bbuf);
      zllm_progress_add(&c->progress, r->bytes);
      if (has) {
        m->same += (uint64_t)llround(r->identical * (double)r->elements);
        m->compared += r->elements;
      } else {
        r->identical = NAN;
      }
    }
  if (rc == 0)
    rc = signatures(m, &mine);
  close_files(&mine);
  close_files(&base);
  return rc;
}

/* The rows the one pass filled for a repo it read whole. */
static void repo_from_pass(st_ctx *c, size_t k, sv_repo_pass *p)
{
  m_row *m = &c->models[k];
  if (p->nrows) /* a repo without tensors has no rows at all */
    memcpy(c->rows + c->nrows, p->rows, p->nrows * sizeof *p->rows);
  c->nrows += p->nrows;
  for (int d = 0; d < NDT; d++)
    c->exps[k * NDT + (size_t)d] = p->exps[d];
  *m = p->model;
  for (size_t i = 0; i < p->nrows; i++)
    zllm_progress_add(&c->progress, p->rows[i].bytes);
}

/* A repo's rows: from the one pass or read now; then what the archive
 * holds of it (methods, stored bytes, ingest position). */
static int repo_stats(st_ctx *c, size_t k, uint8_t *buf, uint8_t *bbuf)
{
  sv_run *run = c->run;
  size_t repo = c->mine[k], first = c->nrows, lo, hi;
  sv_repo_pass *p = run->pass ? &run->pass[repo] : NULL;
  int rc = 0;
  if (p && p->complete)
    repo_from_pass(c, k, p);
  else
    rc = repo_read(c, k, buf, bbuf);
  m_row *m = &c->models[k];
  sv_repo_files(&run->list, repo, &lo, &hi);
  m->bytes = m->weight_bytes = 0;
  for (size_t i = lo; i < hi; i++) {
    m->bytes += run->list.files[i].size;
    m->weight_bytes += run->list.files[i].kind == ZLLM_FILE_SAFETENSORS ? run->list.files[i].size : 0;
  }
  for (size_t i = first; rc == 0 && i < c->nrows; i++) {
    t_row *r = &c->rows[i];
    snprintf(r->method, sizeof r->method, "-");
    if (c->archive &&
        zllm_archive_tensor_info(c->archive, run->list.repo_ids[repo], r->path, r->idx, r->method, &r->stored) < 0)
      snprintf(r->method, sizeof r->method, "-");
  }
  m->ingested = -1;
  if (rc == 0 && c->archive &&
      zllm_archive_repo_info(c->archive, run->list.repo_ids[repo], &m->stored, &m->ingested) < 0) {
    m->ingested = -1; /* a repo the pack skipped (unreadable): not in the archive */
    m->stored = 0;
  }
  return rc;
}

/* ---- the phases ------------------------------------------------------------ */

static const char *family_of(const st_ctx *c, size_t repo)
{
  const zllm_family_row *f = c->run->families ? zllm_family_table_find(c->run->families, c->run->list.repo_ids[repo]) : NULL;
  return f && f->family && strcmp(f->family, "-") != 0 ? f->family : c->run->list.repo_ids[repo];
}

/* Whole families to one rank, by bytes, largest first: a fine-tune and its
 * base are read by the same rank, so the base is read from its page cache.
 * A family is keyed by the index of the repo it is named after; a family
 * larger than a rank's share is dealt model by model. */
static int deal_repos(st_ctx *c, int split_big)
{
  sv_run *run = c->run;
  size_t n = run->list.nrepos, *key = calloc(n + 1, sizeof *key), *mine_f = NULL, nmine_f = 0;
  uint64_t *bytes = calloc(n + 1, sizeof *bytes);
  char *is_mine = calloc(n + 1, 1);
  int rc = key && bytes && is_mine && (c->mine = calloc(n + 1, sizeof *c->mine)) ? 0
                                                                                 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    long k = sv_repo_index(&run->list, family_of(c, i));
    key[i] = k >= 0 ? (size_t)k : i;
  }
  uint64_t total = 0;
  for (size_t i = 0; rc == 0 && i < run->list.nfiles; i++) {
    bytes[key[run->list.files[i].repo]] += run->list.files[i].size;
    total += run->list.files[i].size;
  }
  /* a family bigger than a rank's share would leave the others idle: its
   * models are dealt one by one instead (balance first, locality second) */
  for (size_t i = 0; rc == 0 && split_big && i < n; i++)
    if (bytes[key[i]] > total / (uint64_t)run->size && key[i] != i)
      key[i] = i;
  memset(bytes, 0, (n + 1) * sizeof *bytes);
  for (size_t i = 0; rc == 0 && i < run->list.nfiles; i++)
    bytes[key[run->list.files[i].repo]] += run->list.files[i].size;
  rc = rc ? rc : zllm_deal_by_size(bytes, n, run->size, run->rank, &mine_f, &nmine_f);
  for (size_t k = 0; rc == 0 && k < nmine_f; k++)
    is_mine[mine_f[k]] = 1;
  /* rows are written in file order: HDF5 fills a union of hyperslabs in increasing offsets */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (is_mine[key[i]])
      c->mine[c->nmine++] = i;
  free(is_mine);
  free(mine_f);
  free(key);
  free(bytes);
  return rc;
}

int sv_deal_families(sv_run *run, size_t **mine, size_t *nmine)
{
  st_ctx c = {.run = run};
  int rc = deal_repos(&c, 0);
  *mine = c.mine;
  *nmine = c.nmine;
  return rc;
}

/* Rows of the tensor table: each rank counts its repos', a sum gives all. */
static int layout_rows(st_ctx *c)
{
  sv_run *run = c->run;
  size_t n = run->list.nrepos;
  uint64_t *counts = calloc(n + 1, sizeof *counts);
  c->first = calloc(n + 1, sizeof *c->first);
  int rc = counts && c->first ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < c->nmine; k++) {
    repo_files f;
    if (run->pass && run->pass[c->mine[k]].complete) {
      counts[c->mine[k]] = run->pass[c->mine[k]].nrows;
      continue;
    }
    rc = open_files(run, c->mine[k], &f);
    counts[c->mine[k]] = count_tensors(&f);
    close_files(&f);
  }
  if (!zllm_mpi_alltrue(rc == 0, run->comm)) {
    free(counts);
    return rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  }
  if (MPI_Allreduce(MPI_IN_PLACE, counts, (int)n, MPI_UINT64_T, MPI_SUM, run->comm) != MPI_SUCCESS)
    rc = zllm_error_set(ZLLM_EMPI, "stats: MPI_Allreduce failed");
  for (size_t i = 0; rc == 0 && i < n; i++)
    c->first[i + 1] = c->first[i] + counts[i];
  c->ntensors = rc == 0 ? c->first[n] : 0;
  uint64_t own = 0;
  for (size_t k = 0; rc == 0 && k < c->nmine; k++)
    own += counts[c->mine[k]];
  free(counts);
  if (rc == 0 && (!(c->rows = calloc(own + 1, sizeof *c->rows)) ||
                  !(c->models = calloc(c->nmine + 1, sizeof *c->models)) ||
                  !(c->exps = calloc(c->nmine * NDT + 1, sizeof *c->exps))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return rc;
}

static int compute(st_ctx *c)
{
  uint8_t *buf = malloc(PART_ELEMS * 4), *bbuf = malloc(PART_ELEMS * 4);
  int rc = buf && bbuf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  uint64_t share = 0;
  for (size_t k = 0; k < c->nmine; k++) {
    size_t lo, hi;
    sv_repo_files(&c->run->list, c->mine[k], &lo, &hi);
    for (size_t i = lo; i < hi; i++)
      share += c->run->list.files[i].kind == ZLLM_FILE_SAFETENSORS ? c->run->list.files[i].size : 0;
  }
  zllm_progress_begin(&c->progress, "stats", share);
  if (rc == 0 && c->run->packed) { /* every rank reads the catalog: per-tensor methods and stored bytes */
    char *dir = zllm_path_join(c->run->opts.out, "archive");
    if (!dir || zllm_archive_open(&c->archive, dir, 0) < 0)
      rc = dir ? zllm_error_prefix("stats") : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    free(dir);
  }
  for (size_t k = 0; rc == 0 && k < c->nmine; k++) /* rows go repo by repo, in repo order */
    rc = repo_stats(c, k, buf, bbuf);
  zllm_progress_end(&c->progress);
  zllm_archive_close(c->archive);
  c->archive = NULL;
  free(buf);
  free(bbuf);
  return zllm_mpi_alltrue(rc == 0, c->run->comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed"));
}


/* ---- writing --------------------------------------------------------------- */

typedef struct {
  h5_out *o;
  hid_t s8, s16, s32, s64, s128, s256;
} writer;

static h5_range *own_ranges(const st_ctx *c, int per_repo_rows, size_t *n)
{
  h5_range *r = calloc(c->nmine + 1, sizeof *r);
  *n = 0;
  for (size_t k = 0; r && k < c->nmine; k++) {
    size_t repo = c->mine[k];
    h5_range x = per_repo_rows ? (h5_range){repo * (uint64_t)per_repo_rows, (repo + 1) * (uint64_t)per_repo_rows}
                               : (h5_range){c->first[repo], c->first[repo + 1]};
    if (x.hi > x.lo)
      r[(*n)++] = x;
  }
  return r;
}

/* Copies a field of every own row into a packed column. */
#define COLUMN(type, expr)                                                                                  \
  ({                                                                                                        \
    type *col_ = calloc(c->nrows + 1, sizeof(type));                                                        \
    for (size_t i_ = 0; col_ && i_ < c->nrows; i_++) {                                                      \
      const t_row *r = &c->rows[i_];                                                                        \
      col_[i_] = (expr);                                                                                    \
    }                                                                                                       \
    col_;                                                                                                   \
  })

static int write_strings(writer *w, const char *path, hid_t type, size_t width, uint64_t nrows, const h5_range *rg,
                         size_t nrg, const char *(*get)(const void *, size_t), const void *ctx, size_t n,
                         const char *desc)
{
  char *buf = calloc(n + 1, width);
  for (size_t i = 0; buf && i < n; i++)
    strncpy(buf + i * width, get(ctx, i), width); /* NUL-padded fixed width */
  int rc = buf ? h5_table(w->o, path, type, nrows, 0, rg, nrg, buf, desc, "text")
               : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  free(buf);
  return rc;
}

static const char *get_name(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].name; }
static const char *get_dtype(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].dtype; }
static const char *get_shape(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].shape; }
static const char *get_xxh(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].xxh; }
static const char *get_tensor_method(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].method; }

typedef struct {
  uint8_t key[16];
  uint64_t row, bytes;
  int64_t src;  /* the rank that owns the row */
  int64_t dup;  /* the owner's answer: first row with this key, or -1 */
} key_row;

static int cmp_key_row(const void *a, const void *b)
{
  const key_row *x = a, *y = b;
  int k = memcmp(x->key, y->key, 16);
  return k ? k : (x->row < y->row ? -1 : x->row > y->row);
}

static int cmp_src_row(const void *a, const void *b)
{
  const key_row *x = a, *y = b;
  if (x->src != y->src)
    return x->src < y->src ? -1 : 1;
  return x->row < y->row ? -1 : x->row > y->row;
}

static size_t repo_of_row(const st_ctx *c, uint64_t row)
{
  size_t l = 0, r = c->run->list.nrepos;
  while (l + 1 < r) { /* the last repo whose first row is <= row */
    size_t m = (l + r) / 2;
    if (c->first[m] <= row)
      l = m;
    else
      r = m;
  }
  return l;
}


static int owner_of(const uint8_t key[16], int size)
{
  uint64_t h;
  memcpy(&h, key, 8);
  return (int)(h % (uint64_t)size);
}

/* Records travel as bytes: counts and displacements in bytes, within int. */
/* COLLECTIVE: a rank that comes with ok == 0 still takes part, and then
 * every rank returns an error instead of exchanging. */
static int exchange(int ok, key_row *send, const int *scount, key_row **recv, size_t *nrecv, MPI_Comm comm)
{
  int size;
  MPI_Comm_size(comm, &size);
  int *sc = calloc((size_t)size, sizeof *sc), *sd = calloc((size_t)size, sizeof *sd), *rc_ = calloc((size_t)size, sizeof *rc_),
      *rd = calloc((size_t)size, sizeof *rd);
  int rc = sc && sd && rc_ && rd ? 0 : ZLLM_ENOMEM;
  long long stot = 0, rtot = 0;
  for (int r = 0; rc == 0 && ok && r < size; r++) {
    sc[r] = scount[r] * (int)sizeof(key_row);
    sd[r] = (int)stot;
    stot += sc[r];
  }
  *recv = NULL;
  if (!zllm_mpi_alltrue(ok && rc == 0 && stot < INT32_MAX, comm))
    rc = rc ? rc : ok ? ZLLM_ELIMIT : ZLLM_ERROR;
  else if (MPI_Alltoall(sc, 1, MPI_INT, rc_, 1, MPI_INT, comm) != MPI_SUCCESS)
    rc = ZLLM_EMPI;
  for (int r = 0; rc == 0 && r < size; r++) {
    rd[r] = (int)rtot;
    rtot += rc_[r];
  }
  if (rc == 0 && !(*recv = malloc((size_t)rtot + 1)))
    rc = ZLLM_ENOMEM;
  if (!zllm_mpi_alltrue(rc == 0 && rtot < INT32_MAX, comm))
    rc = rc ? rc : ZLLM_ELIMIT;
  else if (MPI_Alltoallv(send, sc, sd, MPI_BYTE, *recv, rc_, rd, MPI_BYTE, comm) != MPI_SUCCESS)
    rc = ZLLM_EMPI;
  *nrecv = rc == 0 ? (size_t)rtot / sizeof(key_row) : 0;
  free(sc);
  free(sd);
  free(rc_);
  free(rd);
  return rc ? zllm_error_set(rc, "stats: exchanging tensor hashes failed (%s)", zllm_error_name(rc)) : 0;
}

/* The owner of a group of equal hashes answers for each record, and counts
 * the duplicates within a model, a family and the hub. */
static void answer(const st_ctx *c, key_row *k, size_t n, uint64_t dup[3][2])
{
  if (n)
    qsort(k, n, sizeof *k, cmp_key_row);
  for (size_t i = 0, g = 0; i < n; i++) {
    if (i == 0 || memcmp(k[i].key, k[i - 1].key, 16) != 0)
      g = i;
    k[i].dup = i == g ? -1 : (int64_t)k[g].row;
    if (i == g)
      continue;
    size_t r = repo_of_row(c, k[i].row);
    int in_model = 0, in_family = 0;
    for (size_t j = g; j < i && !(in_model && in_family); j++) { /* an earlier copy in the same model / family */
      size_t rj = repo_of_row(c, k[j].row);
      in_model |= rj == r;
      in_family |= strcmp(family_of(c, rj), family_of(c, r)) == 0;
    }
    dup[0][0] += in_model;
    dup[0][1] += in_model ? k[i].bytes : 0;
    dup[1][0] += in_family;
    dup[1][1] += in_family ? k[i].bytes : 0;
    dup[2][0]++;
    dup[2][1] += k[i].bytes;
  }
}

/* duplicate_of for own rows: each XXH3-128 record goes to the rank that owns
 * its hash (MPI_Alltoallv), the owner decides for the whole group (the first
 * row in hub order), and the answers come back the same way. */
static int duplicates(st_ctx *c, int64_t *dup_of, uint64_t dup[3][2])
{
  int size = c->run->size;
  size_t nrecv = 0, nback = 0;
  key_row *send = calloc(c->nrows + 1, sizeof *send), *recv = NULL, *back = NULL;
  int *count = calloc((size_t)size, sizeof *count), *at = calloc((size_t)size, sizeof *at);
  int rc = send && count && at ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  memset(dup, 0, sizeof(uint64_t) * 6);
  for (size_t i = 0; rc == 0 && i < c->nrows; i++)
    count[owner_of(c->rows[i].key, size)]++;
  for (int r = 1; rc == 0 && r < size; r++)
    at[r] = at[r - 1] + count[r - 1];
  for (size_t k = 0, i = 0; rc == 0 && k < c->nmine; k++)
    for (uint64_t row = c->first[c->mine[k]]; row < c->first[c->mine[k] + 1]; row++, i++) {
      key_row *x = &send[at[owner_of(c->rows[i].key, size)]++];
      memcpy(x->key, c->rows[i].key, 16);
      x->row = row;
      x->bytes = c->rows[i].bytes;
      x->src = c->run->rank;
    }
  rc = exchange(rc == 0, send, count, &recv, &nrecv, c->run->comm);
  if (rc == 0) {
    answer(c, recv, nrecv, dup);
    qsort(recv, nrecv, sizeof *recv, cmp_src_row); /* grouped by the rank to answer */
    memset(count, 0, (size_t)size * sizeof *count);
    for (size_t i = 0; i < nrecv; i++)
      count[recv[i].src]++;
  }
  int sent = rc == 0;
  rc = exchange(sent, recv, count, &back, &nback, c->run->comm);
  if (rc == 0 && nback != c->nrows)
    rc = zllm_error_set(ZLLM_EMPI, "stats: %zu answers for %zu tensors", nback, c->nrows);
  if (rc == 0) {
    qsort(back, nback, sizeof *back, cmp_src_row); /* own rows in row order = the local order */
    for (size_t i = 0; i < nback; i++)
      dup_of[i] = back[i].dup;
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  else if (MPI_Allreduce(MPI_IN_PLACE, dup, 6, MPI_UINT64_T, MPI_SUM, c->run->comm) != MPI_SUCCESS)
    rc = zllm_error_set(ZLLM_EMPI, "stats: MPI_Allreduce failed");
  free(send);
  free(recv);
  free(back);
  free(count);
  free(at);
  return rc;
}

static int write_tensor_tables(st_ctx *c, writer *w, uint64_t dup[3][2])
{
  size_t nrg = 0;
  h5_range *rg = own_ranges(c, 0, &nrg);
  int64_t *model = COLUMN(int64_t, r->model), *dup_of = calloc(c->nrows + 1, sizeof *dup_of);
  uint64_t *bytes = COLUMN(uint64_t, r->bytes), *elems = COLUMN(uint64_t, r->elements),
           *stored = COLUMN(uint64_t, r->stored);
  int8_t *has = COLUMN(int8_t, r->has_base);
  double *ident = COLUMN(double, r->identical);
  uint64_t *flips = calloc(c->nrows * 32 + 1, 8), *expc = calloc(c->nrows * EXP_BINS + 1, 8),
           *rel = calloc(c->nrows * REL_BINS + 1, 8);
  int rc = rg && model && dup_of && bytes && elems && stored && has && ident && flips && expc && rel
               ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < c->nrows; i++) {
    memcpy(flips + i * 32, c->rows[i].flips, sizeof c->rows[i].flips);
    memcpy(expc + i * EXP_BINS, c->rows[i].exp_change, sizeof c->rows[i].exp_change);
    memcpy(rel + i * REL_BINS, c->rows[i].rel_change, sizeof c->rows[i].rel_change);
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : duplicates(c, dup_of, dup);
  uint64_t n = c->ntensors;
  rc = rc ? rc : h5_group(w->o, "/tensors", "one row per tensor of every safetensors file, hub order");
  rc = rc ? rc : h5_table(w->o, "/tensors/model", H5T_NATIVE_INT64, n, 0, rg, nrg, model, "row of the tensor's model in /models", "index");
  rc = rc ? rc : write_strings(w, "/tensors/name", w->s256, NAME_LEN, n, rg, nrg, get_name, c, c->nrows, "tensor name (cut at 255 bytes)");
  rc = rc ? rc : write_strings(w, "/tensors/dtype", w->s8, 8, n, rg, nrg, get_dtype, c, c->nrows, "safetensors dtype");
  rc = rc ? rc : write_strings(w, "/tensors/shape", w->s64, 64, n, rg, nrg, get_shape, c, c->nrows, "shape as [d0, d1, ...]");
  rc = rc ? rc : h5_table(w->o, "/tensors/bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, bytes, "tensor size", "bytes");
  rc = rc ? rc : write_strings(w, "/tensors/xxh3_128", w->s32, 32, n, rg, nrg, get_xxh, c, c->nrows, "XXH3-128 of the tensor bytes, hex");
  rc = rc ? rc : h5_table(w->o, "/tensors/duplicate_of", H5T_NATIVE_INT64, n, 0, rg, nrg, dup_of, "first row (hub order) with the same XXH3-128, -1 if this is the first (hash level; the archive confirms bytes)", "index");
  rc = rc ? rc : write_strings(w, "/tensors/method", w->s16, 16, n, rg, nrg, get_tensor_method, c, c->nrows, "how OUTDIR/archive stores it: dup, bitx, solo, file-dup (the whole file is a dup), opaque; - without an archive");
  rc = rc ? rc : h5_table(w->o, "/tensors/stored_bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, stored, "its bytes in the archive's packs (0 for dups and without an archive)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/tensors/has_base", H5T_NATIVE_INT8, n, 0, rg, nrg, has, "1 when the chosen base has a float tensor of this name and shape (the delta rows are filled)", "flag");
  rc = rc ? rc : h5_group(w->o, "/deltas", "per tensor (rows as /tensors) against the chosen base's tensor cast to this dtype; empty when has_base is 0");
  rc = rc ? rc : h5_table(w->o, "/deltas/identical_fraction", H5T_NATIVE_DOUBLE, n, 0, rg, nrg, ident, "fraction of elements bitwise identical to the base (delta sparsity); NaN without a base", "fraction");
  rc = rc ? rc : h5_table(w->o, "/deltas/elements", H5T_NATIVE_UINT64, n, 0, rg, nrg, elems, "elements compared with the base", "elements");
  rc = rc ? rc : h5_table(w->o, "/deltas/bit_flips", H5T_NATIVE_UINT64, n, 32, rg, nrg, flips, "XOR flips per bit position (bit 0 = least significant; 16-bit dtypes use 0..15)", "elements");
  rc = rc ? rc : h5_table(w->o, "/deltas/exponent_change", H5T_NATIVE_UINT64, n, EXP_BINS, rg, nrg, expc, "changed elements by exponent change (fine-tune minus base), bins -8..+8, ends clipped", "elements");
  rc = rc ? rc : h5_table(w->o, "/deltas/log2_relative_change", H5T_NATIVE_UINT64, n, REL_BINS, rg, nrg, rel, "changed elements by floor(log2(|ft - base| / |base|)), bins -32..+7, ends clipped (base 0 or non-finite left out)", "elements");
  free(rg); free(model); free(dup_of); free(bytes); free(elems); free(stored); free(has); free(ident); free(flips); free(expc); free(rel);
  return rc;
}

static double entropy(const uint64_t *h, uint64_t n)
{
  double e = 0;
  for (int i = 0; i < 256 && n; i++)
    if (h[i]) {
      double p = (double)h[i] / (double)n;
      e -= p * log2(p);
    }
  return e;
}

static const char *get_repo(const void *c, size_t i)
{
  const st_ctx *x = c;
  return x->run->list.repo_ids[x->mine[i]];
}

typedef struct {
  const st_ctx *c;
  int field;
} fam_get;

static const char *fam_field(const st_ctx *c, size_t i, int field)
{
  const zllm_family_row *f = c->run->families ? zllm_family_table_find(c->run->families, c->run->list.repo_ids[c->mine[i]]) : NULL;
  const char *v = !f ? NULL : field == 0 ? f->family : field == 1 ? f->base : field == 2 ? f->declared_base
                                                                      : zllm_decision_name(f->decision);
  return v ? v : "-";
}
static const char *get_family(const void *c, size_t i) { return fam_field(c, i, 0); }
static const char *get_base(const void *c, size_t i) { return fam_field(c, i, 1); }
static const char *get_declared(const void *c, size_t i) { return fam_field(c, i, 2); }
static const char *get_decision(const void *c, size_t i) { return fam_field(c, i, 3); }
static const char *get_sig(const void *c, size_t i) { return ((const st_ctx *)c)->models[i].sig; }
static const char *get_shape_sig(const void *c, size_t i) { return ((const st_ctx *)c)->models[i].shape_sig; }
static const char *get_file_dup(const void *c, size_t i)
{
  const sv_run *run = ((const st_ctx *)c)->run;
  return run->file_dup_of && run->file_dup_of[i] ? run->file_dup_of[i] : "-";
}

static int write_model_table(st_ctx *c, writer *w)
{
  size_t nrg = 0, n = c->run->list.nrepos, m = c->nmine;
  h5_range *rg = own_ranges(c, 1, &nrg);
  uint64_t *bytes = calloc(m + 1, 8), *wbytes = calloc(m + 1, 8), *tensors = calloc(m + 1, 8),
           *params = calloc(m * ZLLM_DT_COUNT + 1, 8), *stored = calloc(m + 1, 8);
  int64_t *ingested = calloc(m + 1, 8), *created = calloc(m + 1, 8);
  double *ident = calloc(m + 1, sizeof *ident), *dist = calloc(m + 1, sizeof *dist);
  int rc = rg && bytes && wbytes && tensors && params && stored && ingested && created && ident && dist
               ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < m; k++) {
    const m_row *x = &c->models[k];
    const zllm_family_row *f = c->run->families ? zllm_family_table_find(c->run->families, c->run->list.repo_ids[c->mine[k]]) : NULL;
    bytes[k] = x->bytes;
    wbytes[k] = x->weight_bytes;
    tensors[k] = x->tensors;
    memcpy(params + k * ZLLM_DT_COUNT, x->params, sizeof x->params);
    ident[k] = x->compared ? (double)x->same / (double)x->compared : NAN;
    dist[k] = f && f->distance >= 0 ? f->distance : NAN;
    stored[k] = x->stored;
    ingested[k] = x->ingested;
    created[k] = f ? f->created : -1;
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : h5_group(w->o, "/models", "one row per repo of the hub, sorted by repo id");
  rc = rc ? rc : write_strings(w, "/models/repo", w->s128, ID_LEN, n, rg, nrg, get_repo, c, m, "repo id");
  rc = rc ? rc : write_strings(w, "/models/family", w->s128, ID_LEN, n, rg, nrg, get_family, c, m, "family (named after its first model), \"-\" when not sketched");
  rc = rc ? rc : write_strings(w, "/models/base", w->s128, ID_LEN, n, rg, nrg, get_base, c, m, "base chosen by bitwise similarity, \"-\" for none");
  rc = rc ? rc : write_strings(w, "/models/declared_base", w->s128, ID_LEN, n, rg, nrg, get_declared, c, m, "the model card's base_model, \"-\" for none");
  rc = rc ? rc : write_strings(w, "/models/decision", w->s16, 16, n, rg, nrg, get_decision, c, m, "how the base was chosen (docs/CLUSTER.md)");
  rc = rc ? rc : h5_table(w->o, "/models/bit_distance", H5T_NATIVE_DOUBLE, n, 0, rg, nrg, dist, "bit distance to the chosen base (BF16 view); NaN without a base", "bits per element");
  rc = rc ? rc : h5_table(w->o, "/models/bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, bytes, "all files of the repo", "bytes");
  rc = rc ? rc : h5_table(w->o, "/models/weight_bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, wbytes, "safetensors files of the repo", "bytes");
  rc = rc ? rc : h5_table(w->o, "/models/tensors", H5T_NATIVE_UINT64, n, 0, rg, nrg, tensors, "tensors in its readable safetensors files", "tensors");
  rc = rc ? rc : h5_table(w->o, "/models/parameters", H5T_NATIVE_UINT64, n, ZLLM_DT_COUNT, rg, nrg, params, "parameters per dtype; column j is dtype j of the root attribute dtype_names", "parameters");
  for (size_t k = 0; rc == 0 && k < m; k++)
    for (int d = 0; d < ZLLM_DT_COUNT; d++)
      params[k * ZLLM_DT_COUNT + (size_t)d] *= zllm_dtype_get((zllm_dtype)d)->size;
  rc = rc ? rc : h5_table(w->o, "/models/bytes_by_dtype", H5T_NATIVE_UINT64, n, ZLLM_DT_COUNT, rg, nrg, params, "tensor bytes per dtype; columns as /models/parameters", "bytes");
  rc = rc ? rc : write_strings(w, "/models/signature", w->s16, 16, n, rg, nrg, get_sig, c, m, "architecture signature: XXH3-64 of the sorted (name, shape, dtype) list, hex");
  rc = rc ? rc : write_strings(w, "/models/shape_signature", w->s16, 16, n, rg, nrg, get_shape_sig, c, m, "the same without dtypes (an F32 upload matches its BF16 relatives), hex");
  h5_range all = {0, n};
  rc = rc ? rc : write_strings(w, "/models/file_duplicate_of", w->s128, ID_LEN, n, &all, c->run->rank == 0, get_file_dup, c, c->run->rank == 0 ? n : 0, "the first earlier repo holding every weight file of this one byte for byte (SHA-256), \"-\" for none");
  rc = rc ? rc : h5_table(w->o, "/models/identical_fraction", H5T_NATIVE_DOUBLE, n, 0, rg, nrg, ident, "fraction of elements bitwise identical to the chosen base over its compared tensors; NaN without a base", "fraction");
  rc = rc ? rc : h5_table(w->o, "/models/stored_bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, stored, "the repo's files as OUTDIR/archive stores them (0 without an archive)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/models/ingest_order", H5T_NATIVE_INT64, n, 0, rg, nrg, ingested, "position in the order the archive ingested the repos (bases first); -1 without an archive", "index");
  rc = rc ? rc : h5_table(w->o, "/models/created_at", H5T_NATIVE_INT64, n, 0, rg, nrg, created, "createdAt recorded by a crawl (.zllm/metadata.jsonl); -1 when unknown", "seconds since 1970-01-01 UTC");
  free(rg); free(bytes); free(wbytes); free(tensors); free(params); free(stored); free(ingested); free(created);
  free(ident); free(dist);
  return rc;
}

static const char *get_exp_dtype(const void *c, size_t i)
{
  (void)c;
  return zllm_dtype_get(exp_dtypes[i % NDT])->name;
}

static int write_exponent_table(st_ctx *c, writer *w)
{
  size_t nrg = 0, n = c->run->list.nrepos * NDT, m = c->nmine * NDT;
  h5_range *rg = own_ranges(c, NDT, &nrg);
  int64_t *model = calloc(m + 1, 8);
  uint64_t *cnt = calloc(m + 1, 8), *cnt_x = calloc(m + 1, 8), *h = calloc(m * 256 + 1, 8), *hx = calloc(m * 256 + 1, 8);
  double *ent = calloc(m * 4 + 1, 8), *ent_x = calloc(m * 4 + 1, 8);
  int rc = rg && model && cnt && cnt_x && h && hx && ent && ent_x ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < m; i++) {
    const e_row *e = &c->exps[i];
    model[i] = (int64_t)c->mine[i / NDT];
    cnt[i] = e->plain.n;
    cnt_x[i] = e->n_xor;
    memcpy(h + i * 256, e->plain.hist, sizeof e->plain.hist);
    memcpy(hx + i * 256, e->hist_xor, sizeof e->hist_xor);
    for (int k = 0; k < 4; k++) {
      ent[i * 4 + k] = entropy(e->plain.planes[k], e->plain.n);
      ent_x[i * 4 + k] = entropy(e->planes_xor[k], e->n_xor);
    }
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : h5_group(w->o, "/exponents", "per model and float dtype (rows model*3 + {BF16, F16, F32}): exponent fields and byte streams before and after the XOR with the base");
  rc = rc ? rc : h5_table(w->o, "/exponents/model", H5T_NATIVE_INT64, n, 0, rg, nrg, model, "row in /models", "index");
  rc = rc ? rc : write_strings(w, "/exponents/dtype", w->s8, 8, n, rg, nrg, get_exp_dtype, c, m, "dtype of this row");
  rc = rc ? rc : h5_table(w->o, "/exponents/elements", H5T_NATIVE_UINT64, n, 0, rg, nrg, cnt, "elements of this dtype in the model", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/elements_xor", H5T_NATIVE_UINT64, n, 0, rg, nrg, cnt_x, "elements XORed with a base tensor", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/histogram", H5T_NATIVE_UINT64, n, 256, rg, nrg, h, "exponent field of the model's elements (F16: 5 bits, bins 0..31)", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/histogram_xor", H5T_NATIVE_UINT64, n, 256, rg, nrg, hx, "exponent field of the XOR with the base (0 = unchanged exponent and sign-free)", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/byte_entropy", H5T_NATIVE_DOUBLE, n, 4, rg, nrg, ent, "order-0 entropy of byte k of the elements (k = 0 least significant; unused bytes 0)", "bits per byte");
  rc = rc ? rc : h5_table(w->o, "/exponents/byte_entropy_xor", H5T_NATIVE_DOUBLE, n, 4, rg, nrg, ent_x, "order-0 entropy of byte k of the XOR with the base", "bits per byte");
  free(rg); free(model); free(cnt); free(cnt_x); free(h); free(hx); free(ent); free(ent_x);
  return rc;
}

/* Tables of the whole hub, known on rank 0 (the others write no rows). */
typedef struct {
  const char *const *names;
  size_t n;
} str_list;

static const char *get_list(const void *l, size_t i)
{
  return ((const str_list *)l)->names[i];
}

static int small_table(st_ctx *c, writer *w, const char *group, const char *gdesc, const char *label_path,
                       const char *const *labels, size_t n, const char *cols[], const uint64_t *vals, size_t ncols,
                       const char *descs[], const char *units[])
{
  int root = c->run->rank == 0;
  h5_range all = {0, n};
  str_list l = {labels, n};
  int rc = h5_group(w->o, group, gdesc);
  rc = rc ? rc : write_strings(w, label_path, w->s32, 32, n, &all, root, get_list, &l, root ? n : 0, "row label");
  uint64_t *col = calloc(n + 1, 8);
  for (size_t j = 0; rc == 0 && j < ncols; j++) {
    for (size_t i = 0; col && i < n; i++)
      col[i] = vals[i * ncols + j];
    rc = col ? h5_table(w->o, cols[j], H5T_NATIVE_UINT64, n, 0, &all, root, col, descs[j], units[j])
             : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  free(col);
  return rc;
}

static int write_hub_tables(st_ctx *c, writer *w, uint64_t dup[3][2])
{
  sv_run *run = c->run;
  static const char *const stages[] = {"original", "file dedup", "tensor dedup", "BitX/solo coding"};
  uint64_t red[4] = {run->reduction[0], run->reduction[1], run->reduction[2], 0};
  if (run->packed) /* the archive's confirmed numbers (zllm ls --stages) */
    memcpy(red, run->stages, sizeof red);
  const char *rcols[] = {"/reduction/bytes"},
             *rdesc[] = {run->packed ? "bytes left after each stage in OUTDIR/archive (hits confirmed byte for byte; as zllm ls --stages)"
                                     : "bytes left after each stage, hash level (SHA-256 files, XXH3-128 tensors; no archive: --no-pack)"},
             *runits[] = {"bytes"};
  int rc = small_table(c, w, "/reduction", "storage by stage", "/reduction/stage", stages, run->packed ? 4 : 3, rcols,
                       red, 1, rdesc, runits);
  uint64_t hashl[3] = {run->reduction[0], run->reduction[1], run->reduction[2]};
  h5_range all3 = {0, 3};
  rc = rc ? rc : h5_table(w->o, "/reduction/hash_level_bytes", H5T_NATIVE_UINT64, 3, 0, &all3, run->rank == 0, hashl,
                          "the first three stages estimated from hashes alone (SHA-256 files, XXH3-128 tensors), as summary.json", "bytes");
  static const char *const scopes[] = {"model", "family", "hub"};
  uint64_t dv[6] = {dup[0][0], dup[0][1], dup[1][0], dup[1][1], dup[2][0], dup[2][1]};
  const char *dcols[] = {"/duplication/tensors", "/duplication/bytes"},
             *ddesc[] = {"tensors whose XXH3-128 appeared earlier (hub order) within the same model / family / anywhere",
                         "bytes of those tensors"},
             *dunits[] = {"tensors", "bytes"};
  rc = rc ? rc : small_table(c, w, "/duplication", "tensor-hash duplication by scope", "/duplication/scope", scopes, 3, dcols, dv, 2, ddesc, dunits);
  uint64_t files = run->list.nfiles, bytes = run->reduction[0];
  static const char *const grains[] = {"chunk (FastCDC, 64 KiB average)", "tensor", "file"};
  uint64_t ov[9] = {(bytes + 65535) / 65536, 64, (bytes + 65535) / 65536 * 64, c->ntensors, 64, c->ntensors * 64, files, 64, files * 64};
  const char *ocols[] = {"/overhead/entries", "/overhead/bytes_per_entry", "/overhead/bytes"},
             *odesc[] = {"index entries a dedup at this granularity needs (chunks: bytes / 64 KiB, an estimate)",
                         "bytes per index entry (a hash and a location, as in the ZipLLM paper)",
                         "index size"},
             *ounits[] = {"entries", "bytes", "bytes"};
  rc = rc ? rc : small_table(c, w, "/overhead", "metadata overhead per dedup granularity", "/overhead/granularity", grains, 3, ocols, ov, 3, odesc, ounits);
  return rc;
}

static const char *get_method(const void *r, size_t i)
{
  return ((const sv_run *)r)->baselines[i].method;
}

static int write_baselines(st_ctx *c, writer *w)
{
  sv_run *run = c->run;
  size_t n = run->nbaselines, mine = run->rank == 0 ? n : 0;
  h5_range all = {0, n};
  uint64_t stored[8] = {0};
  double secs[8] = {0}, rate[8] = {0}, red[8] = {0};
  for (size_t i = 0; i < mine; i++) {
    stored[i] = run->baselines[i].stored;
    secs[i] = run->baselines[i].seconds;
    rate[i] = secs[i] > 0 ? (double)run->reduction[0] / secs[i] / 1e6 : 0;
    red[i] = run->reduction[0] ? 1.0 - (double)stored[i] / (double)run->reduction[0] : 0;
  }
  int rc = h5_group(w->o, "/baselines", "the same hub through each method, in this run (--baselines); empty without it");
  rc = rc ? rc : write_strings(w, "/baselines/method", w->s32, 32, n, &all, mine > 0, get_method, run, mine, "file dedup, tensor dedup, FastCDC, zstd, zipnn, zipllm, zllm");
  rc = rc ? rc : h5_table(w->o, "/baselines/stored_bytes", H5T_NATIVE_UINT64, n, 0, &all, mine > 0, stored, "bytes each method keeps (FastCDC: unique chunk bytes, uncompressed; dedups: hash level)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/baselines/reduction", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, red, "1 - stored / original", "fraction");
  rc = rc ? rc : h5_table(w->o, "/baselines/seconds", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, secs, "time of the method over the whole hub (dedups: the scan over all ranks; the others: rank 0 alone, page cache warm)", "seconds");
  rc = rc ? rc : h5_table(w->o, "/baselines/throughput", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, rate, "original bytes / seconds", "MB/s");
  return rc;
}

static const char *get_pair_a(const void *t, size_t i)
{
  const zllm_family_table *f = t;
  return f->names[f->pairs[i].a];
}

static const char *get_pair_b(const void *t, size_t i)
{
  const zllm_family_table *f = t;
  return f->names[f->pairs[i].b];
}

static int write_pairs(st_ctx *c, writer *w)
{
  const zllm_family_table *t = c->run->families;
  size_t n = t ? t->ncompared : 0, mine = c->run->rank == 0 ? n : 0;
  h5_range all = {0, n};
  double *d = calloc(n + 1, 8), *id = calloc(n + 1, 8);
  int rc = d && id ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    d[i] = t->pairs[i].m.n ? t->pairs[i].m.distance : NAN;
    id[i] = t->pairs[i].m.n ? t->pairs[i].m.identical : NAN;
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : h5_group(w->o, "/pairs", "model pairs compared by the clustering (families.tsv, pairs.tsv)");
  rc = rc ? rc : write_strings(w, "/pairs/a", w->s128, ID_LEN, n, &all, mine > 0, get_pair_a, t, mine, "first repo");
  rc = rc ? rc : write_strings(w, "/pairs/b", w->s128, ID_LEN, n, &all, mine > 0, get_pair_b, t, mine, "second repo");
  rc = rc ? rc : h5_table(w->o, "/pairs/bit_distance", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, d, "mean Hamming distance per element on the BF16 view; NaN: not comparable", "bits per element");
  rc = rc ? rc : h5_table(w->o, "/pairs/identical_fraction", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, id, "fraction of sampled elements equal at the common precision", "fraction");
  free(d);
  free(id);
  return rc;
}

static int root_attributes(st_ctx *c, writer *w)
{
  char names[ZLLM_DT_COUNT * 8] = "";
  for (int d = 0; d < ZLLM_DT_COUNT; d++) {
    strcat(names, zllm_dtype_get((zllm_dtype)d)->name);
    strcat(names, d + 1 < ZLLM_DT_COUNT ? "," : "");
  }
  hid_t root = H5Gopen2(w->o->file, "/", H5P_DEFAULT);
  int rc = root >= 0 ? 0 : zllm_error_set(ZLLM_EIO, "stats.h5: cannot open /");
  rc = rc ? rc : h5_attr_str(w->o, root, "tool", "zllm-survey " ZLLM_VERSION);
  rc = rc ? rc : h5_attr_str(w->o, root, "hub", c->run->opts.hub);
  rc = rc ? rc : h5_attr_str(w->o, root, "schema", "docs/STATS.md");
  rc = rc ? rc : h5_attr_str(w->o, root, "dtype_names", names);
  if (root >= 0)
    H5Gclose(root);
  return rc;
}

static int open_writer(writer *w, h5_out *o)
{
  w->o = o;
  w->s8 = h5_str_type(8);
  w->s16 = h5_str_type(16);
  w->s32 = h5_str_type(32);
  w->s64 = h5_str_type(64);
  w->s128 = h5_str_type(ID_LEN);
  w->s256 = h5_str_type(NAME_LEN);
  return w->s8 >= 0 && w->s16 >= 0 && w->s32 >= 0 && w->s64 >= 0 && w->s128 >= 0 && w->s256 >= 0
             ? 0 : zllm_error_set(ZLLM_EIO, "stats.h5: string types");
}

static void close_writer(writer *w)
{
  hid_t t[] = {w->s8, w->s16, w->s32, w->s64, w->s128, w->s256};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (t[i] >= 0)
      H5Tclose(t[i]);
}

int sv_stats(sv_run *run)
{
  st_ctx c = {.run = run};
  h5_out o;
  writer w = {0};
  uint64_t dup[3][2] = {{0}};
  char path[4096];
  snprintf(path, sizeof path, "%s/stats.h5", run->opts.out);
  /* after the one pass each rank holds the rows of the repos it packed */
  int rc = deal_repos(&c, !run->pass);
  rc = rc ? rc : layout_rows(&c);
  rc = rc ? rc : compute(&c);
  if (!zllm_mpi_alltrue(rc == 0, run->comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
    goto done;
  }
  rc = h5_open(&o, path, run->comm);
  rc = rc ? rc : open_writer(&w, &o);
  if (zllm_mpi_alltrue(rc == 0, run->comm)) {
    rc = root_attributes(&c, &w);
    rc = rc ? rc : write_model_table(&c, &w);
    rc = rc ? rc : write_tensor_tables(&c, &w, dup);
    rc = rc ? rc : write_exponent_table(&c, &w);
    rc = rc ? rc : write_hub_tables(&c, &w, dup);
    rc = rc ? rc : write_pairs(&c, &w);
    rc = rc ? rc : write_baselines(&c, &w);
  }
  close_writer(&w);
  int closed = h5_close(&o);
  rc = rc ? rc : closed;
done:
  free(c.first);
  free(c.mine);
  free(c.rows);
  free(c.models);
  free(c.exps);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed"));
}
