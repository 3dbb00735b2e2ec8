/* The crawl over ranks (zllm_crawl_mpi, zllm/crawl.h): rank 0 lists the hub
 * and pins every repo to its commit, the plan goes to every rank, each rank
 * fetches the files dealt to it by listed bytes, and rank 0 gathers what the
 * ranks learned about their files and writes metadata.jsonl as one process
 * would.  Every collective call below is made by every rank whatever
 * happened to it before, so a rank that met bad input never leaves another
 * waiting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crawl/crawl_internal.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"

/* ---- the plan: rank 0's repos, pinned, as JSON -------------------------------- */

static json_t *plan_repo(const cr_repo *r)
{
  json_t *files = json_array();
  for (size_t i = 0; files && i < r->nfiles; i++) {
    const cr_file *f = &r->files[i];
    json_array_append_new(files, json_pack("[s,I,s,s]", f->path, (json_int_t)f->size, f->oid, f->sha256));
  }
  return json_pack("{s:s,s:s,s:O?,s:s?,s:o}", "id", r->id, "sha", r->sha, "meta", r->meta, "error", r->error,
                   "files", files);
}

static int plan_encode(const crawl_ctx *c, char **out, size_t *len)
{
  json_t *all = json_array();
  for (size_t i = 0; all && i < c->nrepos; i++)
    if (json_array_append_new(all, plan_repo(&c->repos[i])) < 0) {
      json_decref(all);
      all = NULL;
    }
  *out = all ? json_dumps(all, JSON_COMPACT) : NULL;
  *len = *out ? strlen(*out) : 0;
  json_decref(all);
  return *out ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
}

static int copy_hex(char *dst, size_t cap, const char *src)
{
  if (!src || strlen(src) >= cap)
    return -1;
  memcpy(dst, src, strlen(src) + 1);
  return 0;
}

static int plan_file(cr_file *f, json_t *e)
{
  const char *path = json_string_value(json_array_get(e, 0));
  json_t *size = json_array_get(e, 1);
  if (!path || !json_is_integer(size) || json_integer_value(size) < 0 ||
      copy_hex(f->oid, sizeof f->oid, json_string_value(json_array_get(e, 2))) < 0 ||
      copy_hex(f->sha256, sizeof f->sha256, json_string_value(json_array_get(e, 3))) < 0 || !(f->path = strdup(path)))
    return -1;
  f->size = (uint64_t)json_integer_value(size);
  return 0;
}

static int plan_repo_take(cr_repo *r, json_t *o)
{
  json_t *files = json_object_get(o, "files"), *meta = json_object_get(o, "meta");
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *error = json_string_value(json_object_get(o, "error"));
  if (!id || !json_is_array(files) || copy_hex(r->sha, sizeof r->sha, json_string_value(json_object_get(o, "sha"))))
    return -1;
  r->id = strdup(id);
  r->error = error ? strdup(error) : NULL;
  r->meta = json_is_object(meta) ? json_incref(meta) : NULL;
  r->files = calloc(json_array_size(files) + 1, sizeof *r->files);
  if (!r->id || (error && !r->error) || !r->files)
    return -1;
  for (size_t i = 0; i < json_array_size(files); i++, r->nfiles++)
    if (plan_file(&r->files[i], json_array_get(files, i)) < 0)
      return -1;
  return 0;
}

/* The other ranks' copy of the plan.  It comes from rank 0, not from the
 * server, but is still read strictly: a rank never works from half a plan. */
static int plan_decode(crawl_ctx *c, const char *text, size_t len)
{
  json_error_t err;
  json_t *all = json_loadb(text, len, 0, &err);
  int rc = json_is_array(all) ? 0 : zllm_error_set(ZLLM_EFORMAT, "crawl: the plan from rank 0 is not readable: %s",
                                                   err.text);
  if (rc == 0 && !(c->repos = calloc(json_array_size(all) + 1, sizeof *c->repos)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < json_array_size(all); i++, c->nrepos++)
    if (plan_repo_take(&c->repos[i], json_array_get(all, i)) < 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "crawl: the plan from rank 0 has a bad entry (repo %zu)", i);
  json_decref(all);
  return rc;
}

/* ---- the deal: files by listed bytes -------------------------------------------- */

/* Every rank computes the same deal from the same plan: largest file first to
 * the rank with the fewest bytes so far (with metadata_only each file costs
 * the same two small requests, so each counts one).  A file not dealt to this
 * rank is marked `other`. */
static int deal_files(crawl_ctx *c, int rank, int size)
{
  size_t n = 0, k = 0, *mine = NULL, nmine = 0;
  for (size_t i = 0; i < c->nrepos; i++)
    n += c->repos[i].error ? 0 : c->repos[i].nfiles;
  uint64_t *sizes = calloc(n + 1, sizeof *sizes);
  cr_file **refs = calloc(n + 1, sizeof *refs);
  int rc = sizes && refs ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++)
    for (size_t f = 0; !c->repos[i].error && f < c->repos[i].nfiles; f++, k++) {
      refs[k] = &c->repos[i].files[f];
      sizes[k] = c->o->metadata_only ? 1 : refs[k]->size;
      refs[k]->other = 1;
    }
  rc = rc ? rc : zllm_deal_by_size(sizes, n, size, rank, &mine, &nmine);
  for (size_t i = 0; rc == 0 && i < nmine; i++)
    refs[mine[i]]->other = 0;
  free(mine);
  free(refs);
  free(sizes);
  return rc;
}

/* ---- what the ranks learned, back to rank 0 ------------------------------------------ */

/* One line per file of this rank that carries more than the plan did (a
 * header read, or an error): [repo, file, header_len, tensors, dtypes, error]. */
static int results_encode(const crawl_ctx *c, zllm_buf *b)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++)
    for (size_t k = 0; rc == 0 && k < c->repos[i].nfiles; k++) {
      const cr_file *f = &c->repos[i].files[k];
      if (f->other || (!f->dtypes && !f->error && !f->header_len))
        continue;
      json_t *o = json_pack("[I,I,I,I,O?,s?]", (json_int_t)i, (json_int_t)k, (json_int_t)f->header_len,
                            (json_int_t)f->ntensors, f->dtypes, f->error);
      char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
      rc = line ? zllm_buf_printf(b, "%s\n", line) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
      free(line);
      json_decref(o);
    }
  return rc;
}

static int result_take(crawl_ctx *c, json_t *o)
{
  json_int_t i = json_integer_value(json_array_get(o, 0)), k = json_integer_value(json_array_get(o, 1));
  if (!json_is_array(o) || i < 0 || (size_t)i >= c->nrepos || k < 0 || (size_t)k >= c->repos[i].nfiles)
    return zllm_error_set(ZLLM_EFORMAT, "crawl: a rank's file result names no file of the plan");
  cr_file *f = &c->repos[i].files[k];
  if (!f->other) /* rank 0's own: already in place */
    return 0;
  const char *error = json_string_value(json_array_get(o, 5));
  json_t *dtypes = json_array_get(o, 4);
  f->header_len = (uint64_t)json_integer_value(json_array_get(o, 2));
  f->ntensors = (size_t)json_integer_value(json_array_get(o, 3));
  f->dtypes = json_is_object(dtypes) ? json_incref(dtypes) : NULL;
  f->error = error ? strdup(error) : NULL;
  return error && !f->error ? zllm_error_set(ZLLM_ENOMEM, "out of memory") : 0;
}

static int results_take(crawl_ctx *c, char *all)
{
  int rc = 0;
  for (char *line = all, *next; rc == 0 && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    json_t *o = json_loads(line, 0, NULL);
    rc = result_take(c, o);
    json_decref(o);
  }
  return rc;
}

/* ---- the ledgers ----------------------------------------------------------------------- */

static char *rank_ledger_name(int rank)
{
  char name[64];
  snprintf(name, sizeof name, "verified.%d.tsv", rank);
  return strdup(name);
}

/* ---- the job ----------------------------------------------------------------------------- */

static void sum_stats(zllm_crawl_stats *s, MPI_Comm comm)
{
  unsigned long long v[9] = {s->files, s->files_skipped, s->files_failed, s->bytes_listed, s->bytes_received,
                             s->headers, (unsigned long long)s->retries, s->problems,
                             (unsigned long long)s->throttled};
  unsigned long long mine = s->bytes_received, lo = 0, hi = 0, req = s->requests, rlo = 0, rhi = 0;
  MPI_Allreduce(&req, &rlo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm);
  MPI_Allreduce(&req, &rhi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm);
  MPI_Allreduce(MPI_IN_PLACE, &req, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  s->requests = req;
  s->rank_requests_min = rlo;
  s->rank_requests_max = rhi;
  MPI_Allreduce(MPI_IN_PLACE, v, 9, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  MPI_Allreduce(MPI_IN_PLACE, &s->rate_waited, 1, MPI_DOUBLE, MPI_SUM, comm);
  MPI_Allreduce(&mine, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, comm);
  MPI_Allreduce(&mine, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm);
  s->files = v[0];
  s->files_skipped = v[1];
  s->files_failed = v[2];
  s->bytes_listed = v[3];
  s->bytes_received = v[4];
  s->headers = v[5];
  s->retries = (long)v[6];
  s->problems = v[7];
  s->throttled = (long)v[8];
  s->rank_received_min = lo;
  s->rank_received_max = hi;
}

/* Rank 0's plan on every rank (or every rank's error). */
static int share_plan(crawl_ctx *c, int rc, int rank, MPI_Comm comm)
{
  char *plan = NULL;
  size_t len = 0;
  if (rank == 0 && rc == 0)
    rc = cr_plan(c);
  if (rank == 0 && rc == 0)
    rc = plan_encode(c, &plan, &len);
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    free(plan);
    return rc ? rc : zllm_error_set(ZLLM_EMPI, "crawl: another rank could not start or list the hub");
  }
  rc = zllm_mpi_bcast_bytes(&plan, &len, 0, comm);
  if (rc == 0 && rank != 0)
    rc = plan_decode(c, plan, len);
  free(plan);
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_EMPI, "crawl: a rank has no plan"));
}

/* Every rank's file results to rank 0, which writes metadata.jsonl and
 * folds the ledgers. */
static int gather_results(crawl_ctx *c, int rc, int rank, MPI_Comm comm)
{
  zllm_buf mine = ZLLM_BUF_INIT;
  char *all = NULL;
  size_t all_len = 0;
  if (rc == 0)
    rc = results_encode(c, &mine);
  int grc = zllm_mpi_gather_bytes(mine.data ? mine.data : "", rc == 0 ? mine.len : 0, &all, &all_len, 0, comm);
  rc = rc ? rc : grc;
  if (rank == 0 && rc == 0)
    rc = results_take(c, all);
  if (rank == 0 && rc == 0)
    rc = cr_write_metadata(c);
  if (rank == 0 && rc == 0)
    rc = cr_fold_ledgers(c);
  zllm_buf_free(&mine);
  free(all);
  return rc;
}

/* ZLLM_TEST_CRAWL_FAIL=RANK: that rank fails before its downloads, as on
 * running out of memory (a test that no other rank waits for it). */
static int test_fails_here(int rank)
{
  const char *v = getenv("ZLLM_TEST_CRAWL_FAIL");
  return v && *v && atoi(v) == rank;
}

/* This rank's share of the listed bytes. */
static uint64_t own_bytes(const crawl_ctx *c)
{
  uint64_t n = 0;
  for (size_t i = 0; i < c->nrepos; i++)
    for (size_t k = 0; !c->repos[i].error && k < c->repos[i].nfiles; k++)
      n += c->repos[i].files[k].other ? 0 : c->repos[i].files[k].size;
  return n;
}

static void add_progress(uint64_t n, void *ctx)
{
  zllm_mpi_progress_add(ctx, n);
}

/* The rate limits rank 0 learned while it planned, on every rank, with the
 * rest of the current window split: from here on each rank spends its share
 * of every quota (the ranks together stay under it). */
static void share_rate_limits(crawl_ctx *c, int size, MPI_Comm comm)
{
  zl_pacer *p = &c->http.pacer;
  double now = zl_http_now(), v[ZL_RL_NCLASSES][5];
  for (int k = 0; k < ZL_RL_NCLASSES; k++) {
    const zl_rl_bucket *b = &p->b[k];
    v[k][0] = (double)b->quota;
    v[k][1] = b->window;
    v[k][2] = b->reset_at > now ? b->reset_at - now : -1; /* clocks differ between nodes: send what is left */
    v[k][3] = (double)b->spent;
    v[k][4] = b->told;
  }
  MPI_Bcast(v, 5 * ZL_RL_NCLASSES, MPI_DOUBLE, 0, comm);
  for (int k = 0; k < ZL_RL_NCLASSES; k++) {
    zl_rl_bucket *b = &p->b[k];
    b->quota = (long)v[k][0];
    b->window = v[k][1];
    b->reset_at = v[k][2] > 0 ? now + v[k][2] : 0;
    b->spent = v[k][2] > 0 ? (long)((v[k][3] + size - 1) / size) : 0;
    b->remaining = -1;
    b->told = v[k][4] > 0 && b->reset_at > 0;
  }
  p->shares = size;
}

/* One progress line for the whole job on rank 0 instead of each rank's own. */
static void begin_progress(crawl_ctx *c, zllm_mpi_progress *pg, uint64_t share, MPI_Comm comm)
{
  zllm_mpi_progress_begin(pg, "crawl download", share, comm);
  c->http.progress = 0;
  c->http.on_bytes = add_progress;
  c->http.bytes_ctx = pg;
  c->http.bytes_told = c->http.bytes_received;
}

/* A selection from the census: each rank asks its own repos (selected.c). */
static int crawl_selected_mpi(const zllm_crawl_options *o, zllm_crawl_stats *stats, int rank, int size, MPI_Comm comm)
{
  zllm_crawl_options mine = *o;
  mine.progress = o->progress && rank == 0;
  int rc = cr_crawl_selected(&mine, stats, rank, size, comm);
  sum_stats(stats, comm);
  unsigned long long repos[2] = {stats->repos, stats->repos_failed};
  MPI_Allreduce(MPI_IN_PLACE, repos, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm);
  stats->repos = repos[0];
  stats->repos_failed = repos[1];
  stats->ranks = (unsigned)size;
  int ok = zllm_mpi_alltrue(rc == 0, comm);
  if (ok && (stats->problems || stats->files_failed || stats->repos_failed))
    return zllm_error_set(ZLLM_ERROR, "crawl: %llu problems (each reported above)",
                          (unsigned long long)stats->problems);
  if (ok)
    return 0;
  if (rc < 0 && rc != ZLLM_ERROR && rc != ZLLM_EMPI)
    ZLLM_ERR("crawl failed on this rank: %s", zllm_error_last());
  return rc < 0 && rc != ZLLM_ERROR ? rc : zllm_error_set(ZLLM_EMPI, "crawl: another rank failed");
}

int zllm_crawl_mpi(const zllm_crawl_options *o, zllm_crawl_stats *stats, MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (size == 1)
    return zllm_crawl(o, stats);
  if (o->select)
    return crawl_selected_mpi(o, stats, rank, size, comm);
  zllm_crawl_options mine = *o;
  mine.progress = o->progress && rank == 0; /* rank 0's listing; the downloads' line is the job's */
  char *ledger = rank == 0 ? strdup(CR_LEDGER) : rank_ledger_name(rank);
  crawl_ctx c = {.o = &mine, .s = stats};
  memset(stats, 0, sizeof *stats);
  int rc = ledger ? cr_begin(&c, &mine, stats, ledger) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = share_plan(&c, rc, rank, comm);
  if (rc == 0)
    rc = deal_files(&c, rank, size);
  share_rate_limits(&c, size, comm);
  if (rc == 0 && test_fails_here(rank))
    rc = zllm_error_set(ZLLM_ENOMEM, "crawl: out of memory (ZLLM_TEST_CRAWL_FAIL)");
  /* the downloads' progress counts every rank's bytes (the same choice on
   * every rank: begin and finish are collective) */
  zllm_mpi_progress pg;
  int jobwide = o->progress && !o->metadata_only;
  if (jobwide)
    begin_progress(&c, &pg, rc == 0 ? own_bytes(&c) : 0, comm);
  if (rc == 0)
    rc = cr_fetch(&c);
  if (jobwide)
    zllm_mpi_progress_finish(&pg);
  /* gather_results is collective: every rank gets here, errors or not */
  int grc = gather_results(&c, rc, rank, comm);
  rc = rc ? rc : grc;
  cr_end(&c);
  sum_stats(stats, comm);
  stats->ranks = (unsigned)size;
  int ok = zllm_mpi_alltrue(rc == 0, comm);
  free(ledger);
  if (ok && (stats->problems || stats->files_failed || stats->repos_failed))
    return zllm_error_set(ZLLM_ERROR, "crawl: %llu problems (each reported above)",
                          (unsigned long long)stats->problems);
  if (ok)
    return 0;
  if (rc < 0) /* said here, by the rank it happened on; the others only learn that it did */
    ZLLM_ERR("crawl failed on this rank: %s", zllm_error_last());
  /* the crawl itself failed on some rank: every rank says so with a code that
   * is not ZLLM_ERROR (which means "some items failed, the rest is done"), so
   * callers decide alike on every rank */
  if (rc < 0 && rc != ZLLM_ERROR)
    return rc;
  return zllm_error_set(ZLLM_EMPI, "crawl: %s", rc < 0 ? zllm_error_last() : "another rank failed");
}
