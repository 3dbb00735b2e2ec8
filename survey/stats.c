/* The characterization study: OUTDIR/stats.h5, written collectively with
 * parallel HDF5 (docs/STATS.md).  Each rank takes its repos' rows from the
 * one pass (survey/pass.c), or reads the repos the pass did not see whole
 * (with --no-pack, all of them: their tensors and their chosen bases'), then
 * the rows are written at their hub-order positions (stats_write.c), so the
 * file is the same for any number of ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "survey/stats_internal.h"
#include "zllm/analyze.h"
#include "zllm/archive.h"
#include "zllm/cluster.h"
#include "zllm/dtype.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"
#include "zllm/tally.h"

#define PART_ELEMS ((size_t)1 << 16) /* 128-256 KiB per buffer: the passes over a part stay in L2 */


/* ---- which files and bases ---------------------------------------------- */

/* A repo's safetensors headers, in path order (files are in hub order). */
typedef struct {
  zllm_st_header **h;
  int *fd;
  uint32_t *file;    /* each one's index in its repo's listing */
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
  free(f->file);
  memset(f, 0, sizeof *f);
}

/* Malformed files are left out here: the scan reports them. */
static int open_files(const sv_run *run, size_t repo, repo_files *out)
{
  const zllm_repo *r = NULL;
  memset(out, 0, sizeof *out);
  if (run->list.first[repo] == run->list.first[repo + 1])
    return 0; /* nothing listed (or not listable: the walk said why) */
  int rc = zllm_hub_get(run->hub, repo, &r);
  for (size_t i = 0; rc == 0 && i < r->nfiles; i++) {
    const zllm_hub_file *f = &r->files[i];
    if (f->kind != ZLLM_FILE_SAFETENSORS)
      continue;
    zllm_st_header **h = realloc(out->h, (out->n + 1) * sizeof *h);
    int *fd = h ? realloc(out->fd, (out->n + 1) * sizeof *fd) : NULL;
    uint32_t *k = fd ? realloc(out->file, (out->n + 1) * sizeof *k) : NULL;
    if (h)
      out->h = h;
    if (fd)
      out->fd = fd;
    if (k)
      out->file = k;
    if (!h || !fd || !k) {
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      break;
    }
    out->file[out->n] = (uint32_t)i;
    out->h[out->n] = NULL;
    out->fd[out->n] = -1;
    if (zllm_source_open_st(run->hub->src, r, f, &out->h[out->n], &out->fd[out->n]) == 0)
      out->n++;
  }
  if (r)
    zllm_hub_put(run->hub, repo);
  return rc;
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


/* All tensors of one repo, read from the hub, against its chosen base's
 * (what the one pass did not see whole). */
static int repo_read(st_ctx *c, size_t k, uint8_t *buf, uint8_t *bbuf)
{
  sv_run *run = c->run;
  size_t repo = c->mine[k];
  const zllm_family_row *fr = c->fam ? zllm_family_table_find(c->fam, run->list.repo_ids[repo]) : NULL;
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
      e_row *e = slot >= 0 ? &c->exps[slot] : NULL;
      sv_describe_tensor(r, t, (int64_t)repo);
      r->file = mine.file[f];
      r->idx = ti;
      r->has_base = (int8_t)has;
      m->tensors++;
      m->params[t->dtype] += t->nelem;
      rc = tensor_stats(r, e, mine.h[f], mine.fd[f], ti, has ? &br : NULL, buf, bbuf);
      zllm_mpi_progress_add(&c->progress, r->bytes);
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
    c->exps[d] = p->exps[d];
  *m = p->model;
  for (size_t i = 0; i < p->nrows; i++)
    zllm_mpi_progress_add(&c->progress, p->rows[i].bytes);
}

/* A repo's rows: from the one pass or read now; then what the archive
 * holds of it (methods, stored bytes, ingest position). */
static int repo_stats(st_ctx *c, size_t k, uint8_t *buf, uint8_t *bbuf)
{
  sv_run *run = c->run;
  size_t repo = c->mine[k], first = c->nrows;
  sv_repo_pass *p = NULL;
  int rc = 0;
  if (sv_pass_complete(run, repo, NULL) && (rc = sv_pass_load(run, repo, &p)) == 0)
    repo_from_pass(c, k, p);
  else if (rc == 0)
    rc = repo_read(c, k, buf, bbuf);
  sv_repo_pass_free(p);
  m_row *m = &c->models[k];
  const zllm_repo *lr = NULL;
  m->bytes = run->hub->info[repo].bytes; /* the walk's summary: no second load for sizes */
  m->weight_bytes = run->hub->info[repo].st_bytes;
  for (size_t i = first; i < c->nrows; i++)
    snprintf(c->rows[i].method, sizeof c->rows[i].method, "-");
  /* the archive is asked by path: the listing is loaded only then */
  if (rc == 0 && c->archive && c->nrows > first)
    rc = zllm_hub_get(run->hub, repo, &lr);
  for (size_t i = first; rc == 0 && lr && i < c->nrows; i++) {
    t_row *r = &c->rows[i];
    if (r->file >= lr->nfiles)
      rc = zllm_error_set(ZLLM_ERROR, "stats: %s: a row of file %u of %zu", lr->id, r->file, lr->nfiles);
    else if (zllm_archive_tensor_info(c->archive, lr->id, lr->files[r->file].path, r->idx, r->method, &r->stored) < 0)
      snprintf(r->method, sizeof r->method, "-");
  }
  if (lr)
    zllm_hub_put(run->hub, repo);
  m->ingested = -1;
  if (rc == 0 && c->archive &&
      zllm_archive_repo_info(c->archive, run->list.repo_ids[repo], &m->stored, &m->ingested) < 0) {
    m->ingested = -1; /* a repo the pack skipped (unreadable): not in the archive */
    m->stored = 0;
  }
  return rc;
}

static int layout_rows(st_ctx *c)
{
  sv_run *run = c->run;
  size_t n = run->list.nrepos;
  uint64_t *counts = calloc(n + 1, sizeof *counts);
  c->first = calloc(n + 1, sizeof *c->first);
  int rc = counts && c->first ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < c->nmine; k++) {
    repo_files f;
    size_t passed = 0;
    if (sv_pass_complete(run, c->mine[k], &passed)) {
      counts[c->mine[k]] = passed;
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
  if (rc == 0 && (!(c->keys = calloc(own + 1, sizeof *c->keys)) ||
                  !(c->models = calloc(c->nmine + 1, sizeof *c->models)) ||
                  !(c->spill_at = calloc(c->nmine + 1, sizeof *c->spill_at)) ||
                  !(c->exps = calloc(NDT, sizeof *c->exps))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return rc;
}

/* Room for repo k's rows (the layout counted them). */
static int rows_for(st_ctx *c, size_t k)
{
  size_t n = (size_t)(c->first[c->mine[k] + 1] - c->first[c->mine[k]]);
  c->nrows = 0;
  memset(c->exps, 0, NDT * sizeof *c->exps);
  int rc = zllm_grow((void **)&c->rows, &c->rows_cap, n + 1, sizeof *c->rows);
  if (rc == 0) /* a row without a base keeps its delta fields zero */
    memset(c->rows, 0, (n + 1) * sizeof *c->rows);
  return rc;
}

/* Repo k's rows made, then spilled: its /exponents rows, its tensor rows;
 * the tensors' hashes stay for the duplicate exchange. */
static int make_repo(st_ctx *c, size_t k, uint8_t *buf, uint8_t *bbuf)
{
  size_t want = (size_t)(c->first[c->mine[k] + 1] - c->first[c->mine[k]]);
  int rc = rows_for(c, k);
  rc = rc ? rc : repo_stats(c, k, buf, bbuf);
  if (rc == 0 && c->nrows != want)
    rc = zllm_error_set(ZLLM_ERROR, "stats: %s has %zu tensors, %zu counted before (it changed while read)",
                        c->run->list.repo_ids[c->mine[k]], c->nrows, want);
  zllm_buf body = ZLLM_BUF_INIT; /* a u64 length, then the tallies and the rows, sparse */
  rc = rc ? rc : zllm_buf_put_u64(&body, 0);
  rc = rc ? rc : sv_sparse_put(&body, c->exps, NDT * sizeof *c->exps);
  rc = rc ? rc : sv_sparse_put(&body, c->rows, c->nrows * sizeof *c->rows);
  if (rc == 0) {
    uint64_t len = body.len - 8;
    memcpy(body.data, &len, 8);
  }
  off_t at = rc == 0 ? ftello(c->spill) : -1;
  if (rc == 0 && (at < 0 || fwrite(body.data, 1, body.len, c->spill) != body.len))
    rc = zllm_error_set_errno("%s: cannot write the statistics' spill", c->spill_path);
  zllm_buf_free(&body);
  c->spill_at[k] = (uint64_t)at;
  for (size_t i = 0; rc == 0 && i < c->nrows; i++) {
    memcpy(c->keys[c->nkeys].key, c->rows[i].key, sizeof c->rows[i].key);
    c->keys[c->nkeys++].bytes = c->rows[i].bytes;
  }
  return rc;
}

int st_round_load(st_ctx *c, size_t k0, size_t k1, t_row **rows, size_t *nrows, e_row **exps)
{
  size_t n = 0;
  for (size_t k = k0; k < k1; k++)
    n += (size_t)(c->first[c->mine[k] + 1] - c->first[c->mine[k]]);
  free(*rows);
  free(*exps);
  *rows = calloc(n + 1, sizeof **rows);
  *exps = calloc((k1 - k0) * NDT + 1, sizeof **exps);
  *nrows = 0;
  int rc = *rows && *exps ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && fflush(c->spill) != 0)
    rc = zllm_error_set_errno("%s: cannot write the statistics' spill", c->spill_path);
  zllm_buf body = ZLLM_BUF_INIT;
  for (size_t k = k0; rc == 0 && k < k1; k++) {
    size_t m = (size_t)(c->first[c->mine[k] + 1] - c->first[c->mine[k]]);
    uint64_t len = 0;
    rc = zllm_pread_full(fileno(c->spill), &len, 8, c->spill_at[k], c->spill_path);
    body.len = 0;
    rc = rc ? rc : zllm_buf_reserve(&body, (size_t)len + 1);
    rc = rc ? rc : zllm_pread_full(fileno(c->spill), body.data, (size_t)len, c->spill_at[k] + 8, c->spill_path);
    zllm_reader r = {body.data, (size_t)len};
    rc = rc ? rc : sv_sparse_get(&r, *exps + (k - k0) * NDT, NDT * sizeof **exps);
    rc = rc ? rc : sv_sparse_get(&r, *rows + *nrows, m * sizeof **rows);
    *nrows += m;
  }
  zllm_buf_free(&body);
  return rc;
}

static int open_spill(st_ctx *c)
{
  char name[48];
  snprintf(name, sizeof name, "stats-%d.bin", c->run->rank);
  char *dir = zllm_path_join(c->run->opts.out, SV_SPILL_DIR);
  c->spill_path = dir ? zllm_path_join(dir, name) : NULL;
  free(dir);
  if (!c->spill_path)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (!(c->spill = fopen(c->spill_path, "w+b")))
    return zllm_error_set_errno("%s: cannot create the statistics' spill", c->spill_path);
  return 0;
}

static int compute(st_ctx *c)
{
  uint8_t *buf = malloc(PART_ELEMS * 4), *bbuf = malloc(PART_ELEMS * 4);
  int rc = buf && bbuf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  uint64_t share = 0;
  for (size_t k = 0; k < c->nmine; k++)
    share += c->run->hub->info[c->mine[k]].st_bytes;
  zllm_mpi_progress_begin(&c->progress, "stats", share, c->run->comm);
  if (rc == 0 && c->run->packed) { /* every rank reads the catalog: per-tensor methods and stored bytes */
    char *dir = zllm_path_join(c->run->opts.out, "archive");
    if (!dir || zllm_archive_open(&c->archive, dir, 0) < 0)
      rc = dir ? zllm_error_prefix("stats") : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    free(dir);
  }
  rc = rc ? rc : zllm_test_fail("stats", c->run->rank);
  for (size_t k = 0; rc == 0 && k < c->nmine; k++) /* rows go repo by repo, in repo order */
    rc = make_repo(c, k, buf, bbuf);
  zllm_mpi_progress_finish(&c->progress);
  zllm_archive_close(c->archive);
  c->archive = NULL;
  free(buf);
  free(bbuf);
  return zllm_mpi_alltrue(rc == 0, c->run->comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed"));
}


int sv_stats(sv_run *run)
{
  st_ctx c = {.run = run};
  h5_out o;
  char path[4096];
  snprintf(path, sizeof path, "%s/stats.h5", run->opts.out);
  /* after the one pass each rank holds the rows of the repos it packed */
  int rc = 0;
  if (run->passed) {
    c.mine = malloc((run->nmine + 1) * sizeof *c.mine);
    rc = c.mine ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    for (size_t k = 0; rc == 0 && k < run->nmine; k++)
      c.mine[c.nmine++] = run->mine[k];
  } else {
    rc = st_deal_repos(&c, 1);
  }
  /* the rows of this rank's repos, from their homes (every rank asks, even after a failure) */
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  else if (run->families)
    rc = zllm_family_rows_ask(&c.fam, run->families, c.mine, c.nmine, run->comm);
  rc = rc ? rc : open_spill(&c);
  rc = rc ? rc : layout_rows(&c);
  rc = rc ? rc : compute(&c);
  sv_phase_end(run, SV_STATS); /* the tables' writing is not in the tables */
  if (!zllm_mpi_alltrue(rc == 0, run->comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
    goto done;
  }
  rc = h5_open(&o, path, run->comm);
  if (rc == 0) {
    rc = st_write_tables(&c, &o);
    if (rc == 0 && run->opts.census)
      rc = sv_census_write(run, &o);
    int closed = h5_close(&o);
    rc = rc ? rc : closed;
  }
done:
  if (c.spill) {
    fclose(c.spill);
    unlink(c.spill_path);
  }
  free(c.spill_path);
  free(c.spill_at);
  free(c.keys);
  free(c.dup_of);
  free(c.first);
  free(c.mine);
  free(c.rows);
  free(c.models);
  free(c.exps);
  zllm_family_table_free(c.fam);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed"));
}
