/* The pack phase: the survey's one pass over the bytes, packing the hub
 * into OUT/archive over the ranks while pass.c's tap turns the reads into
 * scan records and statistics rows (survey/phases.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/bases.h"
#include "survey/phases.h"
#include "zllm/archive.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

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
  if (rc == 0) /* the merge reads it next */
    zllm_archive_keep_written(a, 1);
  /* made again by a rerun, never resumed: durable once, before the merge reads it */
  rc = rc ? rc : zllm_archive_defer_sync(a);
  rc = rc ? rc : zllm_pack_hub(a, &po, &ps);
  rc = rc ? rc : zllm_archive_sync(a);
  zllm_archive_close(a);
  return rc;
}

/* Rank 0 merges the staging archives in the one-process order, repo by
 * repo: what it does when the ranks cannot merge them together. */
static int merge_serially(sv_run *run, zllm_archive *dst, char **stages, char *const *order, size_t norder)
{
  zllm_archive **src = calloc((size_t)run->size, sizeof *src);
  int rc = src ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int r = 0; rc == 0 && r < run->size; r++)
    rc = zllm_archive_open(&src[r], stages[r], 0);
  rc = rc ? rc : zllm_archive_merge(dst, src, (size_t)run->size, order, norder);
  for (int r = 0; src && r < run->size; r++)
    zllm_archive_close(src[r]);
  free(src);
  return rc;
}

/* The staging archives merged into `dir` by every rank
 * (zllm_archive_merge_ranks); when that cannot be done as a whole (a base
 * that changed between two ranks' reads), rank 0 merges repo by repo and
 * leaves out what cannot be merged.  ZLLM_TEST_SERIAL_MERGE=1 asks for the
 * serial merge (the tests compare the two). */
static int merge_shares(sv_run *run, const char *dir, char **stages, const char *stage_root)
{
  zllm_archive *dst = NULL;
  zllm_pack_options po = ZLLM_PACK_OPTIONS_INIT;
  char **order = NULL;
  size_t norder = 0;
  const char *serial = getenv("ZLLM_TEST_SERIAL_MERGE");
  int fallback = 0; /* 1: the shares are untouched, rank 0 merges them repo by repo */
  po.hub = run->hub;
  po.bases = run->bases;
  int rc = zllm_pack_order(&po, &order, &norder);
  if (rc == 0 && run->rank == 0) {
    rc = zllm_archive_open(&dst, dir, 1);
    rc = rc ? rc : zllm_archive_defer_sync(dst); /* the survey's archive is made again by a rerun */
  }
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not order the repos or open the archive");
  else if (serial && strcmp(serial, "1") == 0) {
    rc = ZLLM_ERROR;
    fallback = 1;
  } else
    rc = zllm_archive_merge_ranks(dst, stages, stage_root, order, norder, &fallback, run->comm);
  if (rc < 0 && fallback && run->rank == 0 && dst) {
    if (!serial)
      ZLLM_WARN("pack: the ranks could not merge the archive together (%s); rank 0 merges it repo by repo",
                zllm_error_last());
    rc = merge_serially(run, dst, stages, order, norder);
  } else if (rc < 0 && fallback && run->rank != 0)
    rc = 0; /* rank 0 merges alone */
  if (rc == 0 && dst)
    rc = zllm_archive_sync(dst);
  rc = rc || !dst ? rc : zllm_archive_stages(dst, run->stages);
  zllm_archive_close(dst);
  zllm_strv_free(order, norder);
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
    rc = rc ? rc : zllm_archive_defer_sync(a); /* the survey's archive is made again by a rerun */
    rc = rc ? rc : zllm_pack_hub(a, &po, &ps);
    rc = rc ? rc : zllm_archive_sync(a);
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
    else {
      double tm = MPI_Wtime();
      /* the reasons of the bases of what it packed, from their homes (survey/bases.h) */
      rc = sv_bases_explain(run, stages[run->rank], claims->taken);
      rc = rc ? rc : merge_shares(run, dir, stages, stage_root);
      /* the shards and pack files are all read: rank 0 removes what is left */
      if (zllm_mpi_alltrue(rc == 0, run->comm) && run->rank == 0)
        rc = zllm_rm_rf(stage_root);
      if (run->rank == 0)
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
int sv_pack(sv_run *run)
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
  for (size_t i = 0; i < run->list.nrepos; i++)
    total += run->hub->info[i].bytes;
  /* the whole job's bytes, counted by whoever reads them */
  zllm_mpi_progress_begin(&progress, "pass", run->rank == 0 ? total : 0, run->comm);
  rc = rc ? rc : sv_pass_new(&pass, run, &progress);
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

