/* zllm-survey's job: walk -> scan -> report, over MPI (see zllm/survey.h). */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "survey/survey_internal.h"
#include "zllm/analyze.h"
#include "zllm/archive.h"
#include "zllm/crawl.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"
#include "zllm/parallel.h"

const char *const sv_phase_names[SV_NPHASES] = {"crawl", "walk", "scan", "cluster", "pass", "pass-wait", "merge",
                                                  "report", "baselines", "stats"};

void sv_phase_end(sv_run *run, int k)
{
  double t = MPI_Wtime();
  uint64_t b = zllm_io_bytes_read();
  run->rank_seconds[k] += t - run->mark_seconds;
  run->rank_bytes[k] += b - run->mark_bytes;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    run->rank_peak_rss[k] = (uint64_t)ru.ru_maxrss * 1024; /* Linux: KiB */
  run->mark_seconds = t;
  run->mark_bytes = b;
}

void sv_list_free(sv_list *l)
{
  free(l->files); /* the strings are the listing's */
  memset(l, 0, sizeof *l);
}

long sv_repo_index(const sv_list *l, const char *id)
{
  return zllm_strv_find_sorted(l->repo_ids, l->nrepos, id);
}

static size_t first_file_of(const sv_list *l, size_t repo)
{
  size_t a = 0, b = l->nfiles;
  while (a < b) {
    size_t m = (a + b) / 2;
    if (l->files[m].repo < repo)
      a = m + 1;
    else
      b = m;
  }
  return a;
}

void sv_repo_files(const sv_list *l, size_t repo, size_t *lo, size_t *hi)
{
  *lo = first_file_of(l, repo);
  *hi = first_file_of(l, repo + 1);
}

/* "a,b,c" in a TSV cell, or "-" for an empty list. */
static int put_list(zllm_buf *b, char **v, size_t n)
{
  int rc = n ? 0 : zllm_buf_puts(b, "-");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = i ? zllm_buf_puts(b, ",") : 0;
    rc = rc ? rc : zllm_buf_put_tsv(b, v[i]);
  }
  return rc;
}

static int put_repo_row(zllm_buf *b, const zllm_repo *r)
{
  unsigned long long bytes = 0;
  for (size_t i = 0; i < r->nfiles; i++)
    bytes += r->files[i].size;
  int rc = zllm_buf_put_tsv(b, r->id);
  rc = rc ? rc : zllm_buf_printf(b, "\t%s\t%zu\t%llu\t", r->revision ? r->revision : "-", r->nfiles, bytes);
  rc = rc ? rc : put_list(b, r->config ? r->config->architectures : NULL, r->config ? r->config->narch : 0);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, r->config && r->config->torch_dtype ? r->config->torch_dtype : "-");
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : put_list(b, r->card ? r->card->base_models : NULL, r->card ? r->card->nbase : 0);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, r->card && r->card->license ? r->card->license : "-");
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, r->card && r->card->library_name ? r->card->library_name : "-");
  return rc ? rc : zllm_buf_printf(b, "\t%zu\n", r->nproblems);
}

static int put_problem_row(zllm_buf *b, const char *repo, const char *msg)
{
  int rc = zllm_buf_put_tsv(b, repo);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, msg);
  return rc ? rc : zllm_buf_puts(b, "\n");
}

/* Rank 0: the listing's repos.tsv and problem rows. */
static int hub_rows(sv_run *run)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < run->hub->n; i++) {
    const zllm_repo *r = run->hub->repos[i];
    if (!r) { /* one unreadable repo is recorded; the survey goes on */
      rc = put_problem_row(&run->problems, run->hub->ids[i], run->hub->failed[i]);
      continue;
    }
    rc = put_repo_row(&run->repos, r);
    for (size_t p = 0; rc == 0 && p < r->nproblems; p++)
      rc = put_problem_row(&run->problems, r->id, r->problems[p]);
  }
  return rc;
}

/* The flat file list the phases deal from, in hub order (every rank): it
 * borrows the listing's ids and entries, and copies nothing. */
static int list_from_hub(sv_list *l, const zllm_hub *hub)
{
  size_t n = 0;
  for (size_t i = 0; i < hub->n; i++)
    n += hub->repos[i] ? hub->repos[i]->nfiles : 0;
  if (!(l->files = calloc(n + 1, sizeof *l->files)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  l->repo_ids = hub->ids;
  l->nrepos = hub->n;
  for (size_t i = 0; i < hub->n; i++)
    for (size_t f = 0; hub->repos[i] && f < hub->repos[i]->nfiles; f++) {
      const zllm_hub_file *hf = &hub->repos[i]->files[f];
      l->files[l->nfiles++] = (sv_file){.repo = i, .path = hf->path, .size = hf->size, .kind = hf->kind, .hf = hf};
    }
  return 0;
}

/* Phase 1: rank 0 lists the hub, every rank gets the listing (the one every
 * later stage uses) and the flat file list made from it. */
static int phase_walk(sv_run *run)
{
  int rc = zllm_hub_open_local_all(&run->hub, run->opts.hub, run->comm);
  if (rc < 0)
    return rc;
  rc = run->rank == 0 ? hub_rows(run) : 0;
  rc = rc ? rc : list_from_hub(&run->list, run->hub);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}

/* Largest file first to the least-loaded rank (the same deal on every rank). */
static int deal_files(sv_run *run, size_t **mine, size_t *nmine)
{
  size_t n = run->list.nfiles;
  uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
  if (!sizes)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    sizes[i] = run->list.files[i].size;
  int rc = zllm_deal_by_size(sizes, n, run->size, run->rank, mine, nmine);
  free(sizes);
  return rc;
}

/* Phase 2: scan this rank's files into "@index" blocks. */
static int phase_scan(sv_run *run, zllm_buf *out)
{
  size_t *mine = NULL, nmine = 0;
  uint64_t bytes = 0, share = 0;
  zllm_mpi_progress pg;
  int rc = deal_files(run, &mine, &nmine);
  for (size_t i = 0; rc == 0 && i < nmine; i++)
    share += run->list.files[mine[i]].size;
  zllm_mpi_progress_begin(&pg, "scan", share, run->comm);
  for (size_t i = 0; rc == 0 && i < nmine; i++) {
    const sv_file *f = &run->list.files[mine[i]];
    rc = zllm_buf_printf(out, "@%zu\n", mine[i]);
    zllm_hub_file hf = sv_hub_file(f);
    rc = rc ? rc : zllm_scan_file(out, run->hub->src, run->hub->repos[f->repo], &hf);
    bytes += f->size;
    zllm_mpi_progress_add(&pg, f->size);
    ZLLM_DEBUG("scanned %s/%s (%llu bytes)", run->list.repo_ids[f->repo], f->path, (unsigned long long)f->size);
  }
  zllm_mpi_progress_finish(&pg);
  free(mine);
  run->scanned_bytes = zllm_mpi_sum_u64(bytes, run->comm);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}

/* The pass's work units, taken first come, first served: a repo is this
 * rank's when its unit is; what the rank took is recorded for the tap's
 * share and the statistics. */
typedef struct {
  sv_run *run;
  const size_t *unit;
  zllm_mpi_claims claims;
  char *taken; /* per repo */
  int dealt;   /* ZLLM_TEST_DEAL=modulo */
} sv_claims;

static int claim_repo(void *ctx, size_t repo, int *mine)
{
  sv_claims *c = ctx;
  int rc = 0;
  /* test hook: unit u goes to rank u mod size, so a family split into its
   * models surely has fine-tunes packed away from their base */
  if (c->dealt)
    *mine = c->unit[repo] % (size_t)c->run->size == (size_t)c->run->rank;
  else
    rc = zllm_mpi_claims_take(&c->claims, c->unit[repo], mine);
  if (rc == 0 && *mine)
    c->taken[repo] = 1;
  return rc;
}

/* This rank's units into its own staging archive (its own pack file). */
static int pack_share(sv_run *run, const char *stage, sv_claims *claims, const zllm_pack_tap *tap)
{
  zllm_archive *a = NULL;
  zllm_pack_options po = ZLLM_PACK_OPTIONS_INIT;
  zllm_pack_stats ps;
  int rc = 0;
  po.hub = run->hub;
  po.bases = run->bases;
  po.claim = claim_repo;
  po.claim_ctx = claims;
  po.tap = tap;
  if (access(stage, F_OK) == 0)
    rc = zllm_rm_rf(stage);
  rc = rc ? rc : zllm_archive_open(&a, stage, 1);
  if (rc == 0) /* rank 0's merge reads it next */
    zllm_archive_keep_written(a, 1);
  rc = rc ? rc : zllm_pack_hub(a, &po, &ps);
  zllm_archive_close(a);
  return rc;
}

/* Rank 0 merges the staging archives in the one-process order. */
static int merge_shares(sv_run *run, const char *dir, char **stages)
{
  zllm_archive *dst = NULL, **src = calloc((size_t)run->size, sizeof *src);
  zllm_pack_options po = ZLLM_PACK_OPTIONS_INIT;
  char **order = NULL;
  size_t norder = 0;
  po.hub = run->hub;
  po.bases = run->bases;
  int rc = src ? zllm_pack_order(&po, &order, &norder) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_archive_open(&dst, dir, 1);
  for (int r = 0; rc == 0 && r < run->size; r++)
    rc = zllm_archive_open(&src[r], stages[r], 0);
  rc = rc ? rc : zllm_archive_merge(dst, src, (size_t)run->size, order, norder);
  rc = rc ? rc : zllm_archive_stages(dst, run->stages);
  for (int r = 0; src && r < run->size; r++)
    zllm_archive_close(src[r]);
  zllm_archive_close(dst);
  zllm_strv_free(order, norder);
  free(src);
  return rc;
}

/* The hub into OUT/archive with the clustered bases: one process packs it
 * alone; with more ranks, each takes work units (sv_work_units) first come,
 * first served into its own staging archive and rank 0 merges them, making
 * the decisions one process would (zllm_archive_merge), so the catalog is
 * the same for any number of ranks.  Pack's read of each file is the
 * survey's one pass: `tap` turns it into the scan records and statistics
 * rows of what this rank packed (claims->taken). */
static int phase_pack(sv_run *run, sv_claims *claims, const zllm_pack_tap *tap, zllm_mpi_progress *progress)
{
  char *dir = zllm_path_join(run->opts.out, "archive"), *stage_root = zllm_path_join(run->opts.out, "archive.stage");
  char **stages = calloc((size_t)run->size + 1, sizeof *stages);
  int rc = dir && stage_root && stages ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int r = 0; rc == 0 && r < run->size; r++) {
    char name[32];
    snprintf(name, sizeof name, "rank-%d", r);
    if (!(stages[r] = zllm_path_join(stage_root, name)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  if (rc == 0 && run->size == 1) {
    zllm_archive *a = NULL;
    zllm_pack_options po = ZLLM_PACK_OPTIONS_INIT;
    zllm_pack_stats ps;
    po.hub = run->hub;
    po.bases = run->bases;
    po.tap = tap;
    rc = zllm_archive_open(&a, dir, 1);
    rc = rc ? rc : zllm_pack_hub(a, &po, &ps);
    rc = rc ? rc : zllm_archive_stages(a, run->stages);
    zllm_archive_close(a);
  } else if (run->size > 1) {
    rc = rc ? rc : pack_share(run, stages[run->rank], claims, tap);
    /* fault injection for tests: ZLLM_TEST_FAIL_SHARE=R fails rank R's share */
    const char *fail = getenv("ZLLM_TEST_FAIL_SHARE");
    if (rc == 0 && fail && atoi(fail) == run->rank)
      rc = zllm_error_set(ZLLM_ERROR, "ZLLM_TEST_FAIL_SHARE: rank %d's share fails on purpose", run->rank);
  }
  sv_phase_end(run, SV_PASS);
  /* every rank, failed or not: rank 0 shows the others' bytes while it waits */
  zllm_mpi_progress_finish(progress);
  zllm_mpi_claims_end(&claims->claims);
  sv_phase_end(run, SV_PASS_WAIT); /* for the others to finish theirs */
  if (run->size > 1) {
    if (rc < 0) /* said here: the others only learn that this rank failed */
      zllm_log(ZLLM_LOG_ERROR, "rank %d could not pack its share: %s", run->rank, zllm_error_last());
    if (!zllm_mpi_alltrue(rc == 0, run->comm))
      rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not pack its share");
    else if (run->rank == 0) {
      double tm = MPI_Wtime();
      rc = merge_shares(run, dir, stages);
      if (rc == 0)
        rc = zllm_rm_rf(stage_root);
      ZLLM_INFO("pack: %d shares merged in %.2f s", run->size, MPI_Wtime() - tm);
    }
  }
  zllm_strv_free(stages, stages ? (size_t)run->size : 0);
  free(dir);
  free(stage_root);
  int merged = zllm_mpi_alltrue(rc == 0, run->comm);
  sv_phase_end(run, SV_MERGE); /* on the other ranks: waiting for rank 0's merge */
  if (!merged)
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "rank 0 could not merge the archive");
  run->packed = 1;
  return 0;
}

/* What this rank packed, as the sorted list the tap and the statistics use
 * (one rank: everything). */
static int taken_list(sv_run *run, const sv_claims *claims)
{
  if (!(run->mine = calloc(run->list.nrepos + 1, sizeof *run->mine)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  run->nmine = 0;
  for (size_t i = 0; i < run->list.nrepos; i++)
    if (run->size == 1 || claims->taken[i])
      run->mine[run->nmine++] = i;
  return 0;
}

/* The one pass: the hub packed by every rank, its bytes tallied as read;
 * files the pass did not see are scanned after.  A survey's archive is its
 * own: an earlier run's is replaced, so that every file is read by this one. */
static int phase_pass(sv_run *run, zllm_buf *blocks)
{
  sv_pass *pass = NULL;
  const char *deal = getenv("ZLLM_TEST_DEAL");
  sv_claims claims = {.run = run, .dealt = deal && strcmp(deal, "modulo") == 0};
  uint64_t bytes = 0, total = 0;
  zllm_mpi_progress progress;
  char *dir = run->rank == 0 ? zllm_path_join(run->opts.out, "archive") : NULL;
  int rc = run->rank == 0 && !dir ? zllm_error_set(ZLLM_ENOMEM, "out of memory") : 0;
  if (rc == 0 && dir && access(dir, F_OK) == 0)
    rc = zllm_rm_rf(dir);
  free(dir);
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "rank 0 could not replace the earlier archive");
  size_t *unit = NULL;
  rc = sv_work_units(run, &unit);
  claims.unit = unit;
  if (rc == 0 && !(claims.taken = calloc(run->list.nrepos + 1, 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  /* collective whatever happened before: every rank takes part */
  int crc = zllm_mpi_claims_begin(&claims.claims, run->list.nrepos, run->comm);
  rc = rc ? rc : crc;
  for (size_t i = 0; i < run->list.nfiles; i++)
    total += run->list.files[i].size;
  /* the whole job's bytes, counted by whoever reads them */
  zllm_mpi_progress_begin(&progress, "pass", run->rank == 0 ? total : 0, run->comm);
  rc = rc ? rc : sv_pass_new(&pass, run, blocks, &progress);
  int prc = phase_pack(run, &claims, pass ? sv_pass_tap(pass) : NULL, &progress);
  rc = rc ? rc : prc;
  rc = rc ? rc : taken_list(run, &claims);
  if (rc == 0)
    rc = sv_pass_finish(pass, run->mine, run->nmine, &bytes);
  sv_pass_free(pass);
  free(claims.taken);
  free(unit);
  sv_phase_end(run, SV_PASS); /* the files the pass did not see, scanned */
  run->scanned_bytes = zllm_mpi_sum_u64(bytes, run->comm);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}

/* The ranks crawl the endpoint into OUT/hub together (zllm_crawl_mpi: rank 0
 * lists, each rank downloads its share); items that fail are reported and
 * left out, and the survey goes on with what was crawled. */
static int phase_crawl(sv_run *run)
{
  zllm_crawl_options co = run->opts.crawl;
  zllm_crawl_stats cs;
  run->crawled_hub = zllm_path_join(run->opts.out, "hub");
  if (!zllm_mpi_alltrue(run->crawled_hub != NULL, run->comm))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  co.endpoint = run->opts.endpoint;
  co.out = run->crawled_hub;
  co.progress = !run->opts.quiet;
  int rc = zllm_crawl_mpi(&co, &cs, run->comm);
  if (rc < 0 && zllm_error_last_code() == ZLLM_ERROR) {
    if (run->rank == 0)
      ZLLM_WARN("crawl: %s; surveying what was crawled", zllm_error_last());
    rc = 0;
  }
  if (rc == 0 && run->rank == 0)
    ZLLM_INFO("crawl: %llu files over %u ranks (%llu already verified), %.1f MB received, each rank %.1f-%.1f MB",
              (unsigned long long)cs.files, cs.ranks, (unsigned long long)cs.files_skipped,
              (double)cs.bytes_received / 1e6, (double)cs.rank_received_min / 1e6,
              (double)cs.rank_received_max / 1e6);
  run->opts.hub = run->crawled_hub;
  return rc;
}

int zllm_survey_run(const zllm_survey_options *opts, MPI_Comm comm)
{
  sv_run run = {.opts = *opts, .comm = comm};
  zllm_buf blocks = ZLLM_BUF_INIT;
  char *all = NULL;
  size_t all_len = 0;
  MPI_Comm_rank(comm, &run.rank);
  MPI_Comm_size(comm, &run.size);
  int rc = run.rank == 0 ? zllm_mkdir_p(opts->out, 0755) : 0;
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_EIO, "rank 0 could not create %s", opts->out);
    goto done;
  }
  double tc = MPI_Wtime();
  run.mark_seconds = tc;
  run.mark_bytes = zllm_io_bytes_read();
  if (opts->endpoint) {
    ZLLM_INFO("crawl: %s into %s/hub on %d ranks", opts->endpoint, opts->out, run.size);
    if ((rc = phase_crawl(&run)) < 0)
      goto done;
    ZLLM_INFO("crawl: done in %.2f s", MPI_Wtime() - tc);
  }
  sv_phase_end(&run, SV_CRAWL);
  opts = &run.opts; /* the hub may now be the crawled one */
  double t0 = MPI_Wtime();
  run.times[4] = t0 - tc;
  ZLLM_INFO("walk: reading %s on rank 0", opts->hub);
  if ((rc = phase_walk(&run)) < 0)
    goto done;
  sv_phase_end(&run, SV_WALK);
  double t1 = MPI_Wtime(), t2 = t1;
  ZLLM_INFO("walk: %zu repos, %zu files, done in %.2f s", run.list.nrepos, run.list.nfiles, t1 - t0);
  if (opts->no_pack) { /* no one pass to ride on: the scan reads every file */
    ZLLM_INFO("scan: %zu repos, %zu files over %d ranks", run.list.nrepos, run.list.nfiles, run.size);
    if ((rc = phase_scan(&run, &blocks)) < 0)
      goto done;
    sv_phase_end(&run, SV_SCAN);
    t2 = MPI_Wtime();
    ZLLM_INFO("scan: done in %.2f s", t2 - t1);
  }
  ZLLM_INFO("cluster: sketching and comparing models over %d ranks", run.size);
  zllm_cluster_options co = ZLLM_CLUSTER_OPTIONS_INIT;
  if ((rc = zllm_cluster_hub_mpi(&run.families, run.hub, &co, comm)) < 0)
    goto done;
  /* pack's bases: the families just found, then the cards (a fresh archive holds nothing) */
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  bo.hub = run.hub;
  bo.table = run.families;
  rc = zllm_bases_choose(&run.bases, &bo);
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not choose the bases");
    goto done;
  }
  sv_phase_end(&run, SV_CLUSTER);
  double t3 = MPI_Wtime();
  ZLLM_INFO("cluster: %zu families, done in %.2f s", run.families ? run.families->nfamilies : 0, t3 - t2);
  if (!opts->no_pack) {
    ZLLM_INFO("pack: one pass over %s (hashes, dedup, BitX, statistics) into %s/archive, on %d rank%s%s",
              opts->hub, opts->out, run.size, run.size > 1 ? "s taking families (or the models of a big one)" : "",
              run.size > 1 ? " first come, first served, merged on rank 0" : "");
    if ((rc = phase_pass(&run, &blocks)) < 0)
      goto done;
  }
  run.times[3] = MPI_Wtime() - t3;
  if (!opts->no_pack)
    ZLLM_INFO("pack: %.1f MB read in one pass, done in %.2f s", (double)run.scanned_bytes / 1e6, run.times[3]);
  run.bytes_read = zllm_mpi_sum_u64(zllm_io_bytes_read(), comm);
  if ((rc = zllm_mpi_gather_bytes(blocks.data ? blocks.data : "", blocks.len, &all, &all_len, 0, comm)) < 0)
    goto done;
  if (run.rank == 0) {
    run.times[0] = t1 - t0;
    run.times[1] = t2 - t1;
    run.times[2] = t3 - t2;
    rc = sv_report(&run, all, all_len);
  }
  int reported = zllm_mpi_alltrue(rc == 0, comm);
  sv_phase_end(&run, SV_REPORT);
  if (!reported) {
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "rank 0 could not write the report");
    goto done;
  }
  if (opts->baselines) {
    ZLLM_INFO("baselines: zstd, FastCDC, ZipNN-style, ZipLLM-equivalent on rank 0");
    double tb = MPI_Wtime();
    if ((rc = sv_baselines(&run)) < 0)
      goto done;
    sv_phase_end(&run, SV_BASELINES);
    ZLLM_INFO("baselines: done in %.2f s", MPI_Wtime() - tb);
  }
  ZLLM_INFO("stats: delta statistics over %d ranks into %s/stats.h5", run.size, opts->out);
  double ts = MPI_Wtime();
  rc = sv_stats(&run);
  if (rc == 0)
    ZLLM_INFO("stats: done in %.2f s", MPI_Wtime() - ts);
done:
  free(all);
  zllm_buf_free(&blocks);
  zllm_buf_free(&run.repos);
  zllm_buf_free(&run.problems);
  zllm_family_table_free(run.families);
  zllm_base_map_free(run.bases);
  free(run.crawled_hub);
  zllm_strv_free(run.file_dup_of, run.file_dup_of ? run.list.nrepos : 0);
  sv_pass_rows_free(&run);
  free(run.mine);
  sv_list_free(&run.list);
  zllm_hub_free(run.hub);
  return rc;
}
