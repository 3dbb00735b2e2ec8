/* zllm-survey's job over MPI (see zllm/survey.h): the orchestrator, above
 * the phases.  It calls each phase's entry point in turn (survey/phases.h):
 * crawl (with an endpoint) -> walk -> scan (--no-pack) -> families -> pack
 * (the one pass) -> report -> baselines -> stats; the phases share nothing
 * but the run (survey/run.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "survey/phases.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

/* OUT/.survey, once every rank's spills are gone (it stays if a rank's
 * could not be removed). */
static void remove_spill_dir(const sv_run *run)
{
  MPI_Barrier(run->comm);
  char *dir = run->rank == 0 ? zllm_path_join(run->opts.out, SV_SPILL_DIR) : NULL;
  if (dir)
    rmdir(dir);
  free(dir);
}

/* Each rank's scan records go to its spill in OUT/.survey; what an
 * interrupted run left there goes first (rank 0, before anyone writes). */
static int open_records(sv_run *run)
{
  char name[48];
  snprintf(name, sizeof name, "scan-%d.txt", run->rank);
  char *dir = zllm_path_join(run->opts.out, SV_SPILL_DIR), *path = dir ? zllm_path_join(dir, name) : NULL;
  int rc = path ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && run->rank == 0 && access(dir, F_OK) == 0)
    rc = zllm_rm_rf(dir);
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "rank 0 could not clear %s", dir);
  rc = rc ? rc : zllm_mkdir_p(dir, 0755);
  rc = rc ? rc : sv_records_open(&run->records, path);
  free(dir);
  free(path);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not open its spill"));
}

int zllm_survey_run(const zllm_survey_options *opts, MPI_Comm comm)
{
  sv_run run = {.opts = *opts, .comm = comm};
  MPI_Comm_rank(comm, &run.rank);
  MPI_Comm_size(comm, &run.size);
  int rc = run.rank == 0 ? zllm_mkdir_p(opts->out, 0755) : 0;
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_EIO, "rank 0 could not create %s", opts->out);
    goto done;
  }
  if ((rc = open_records(&run)) < 0)
    goto done;
  double tc = MPI_Wtime();
  run.mark_seconds = tc;
  run.mark_bytes = zllm_io_bytes_read();
  if (opts->endpoint) {
    ZLLM_INFO("crawl: %s into %s/hub on %d ranks", opts->endpoint, opts->out, run.size);
    if ((rc = sv_crawl(&run)) < 0)
      goto done;
    ZLLM_INFO("crawl: done in %.2f s", MPI_Wtime() - tc);
  }
  sv_phase_end(&run, SV_CRAWL);
  opts = &run.opts; /* the hub may now be the crawled one */
  double t0 = MPI_Wtime();
  run.times[4] = t0 - tc;
  ZLLM_INFO("walk: listing %s over %d rank%s", opts->hub, run.size, run.size > 1 ? "s" : "");
  if ((rc = sv_walk(&run)) < 0)
    goto done;
  sv_phase_end(&run, SV_WALK);
  double t1 = MPI_Wtime(), t2 = t1;
  ZLLM_INFO("walk: %zu repos, %zu files, done in %.2f s", run.list.nrepos, run.list.nfiles, t1 - t0);
  if (opts->no_pack) { /* no one pass to ride on: the scan reads every file */
    ZLLM_INFO("scan: %zu repos, %zu files over %d ranks", run.list.nrepos, run.list.nfiles, run.size);
    if ((rc = sv_scan(&run)) < 0)
      goto done;
    sv_phase_end(&run, SV_SCAN);
    t2 = MPI_Wtime();
    ZLLM_INFO("scan: done in %.2f s", t2 - t1);
  }
  ZLLM_INFO("cluster: sketching and comparing models over %d ranks", run.size);
  if ((rc = sv_families(&run)) < 0)
    goto done;
  sv_phase_end(&run, SV_CLUSTER);
  double t3 = MPI_Wtime();
  ZLLM_INFO("cluster: %zu families, done in %.2f s", run.families ? run.families->nfamilies : 0, t3 - t2);
  if (!opts->no_pack) {
    ZLLM_INFO("pack: one pass over %s (hashes, dedup, BitX, statistics) into %s/archive, on %d rank%s%s",
              opts->hub, opts->out, run.size, run.size > 1 ? "s taking families (or the models of a big one)" : "",
              run.size > 1 ? " first come, first served, merged by the ranks" : "");
    if ((rc = sv_pack(&run)) < 0)
      goto done;
  }
  run.times[3] = MPI_Wtime() - t3;
  if (!opts->no_pack)
    ZLLM_INFO("pack: %.1f MB read in one pass, done in %.2f s", (double)run.scanned_bytes / 1e6, run.times[3]);
  run.bytes_read = zllm_mpi_sum_u64(zllm_io_bytes_read(), comm);
  run.times[0] = t1 - t0;
  run.times[1] = t2 - t1;
  run.times[2] = t3 - t2;
  rc = sv_report(&run);
  sv_phase_end(&run, SV_REPORT);
  if (rc < 0)
    goto done;
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
  sv_pairs_free(run.pairs);
  sv_records_free(run.records);
  sv_pass_rows_free(&run);
  zllm_strv_free(run.file_dup_of, run.file_dup_of ? run.list.nrepos : 0);
  sv_list_free(&run.list);
  zllm_hub_free(run.hub); /* its listing store is a spill too */
  remove_spill_dir(&run); /* after every spill is gone */
  zllm_buf_free(&run.repos);
  zllm_buf_free(&run.problems);
  zllm_family_table_free(run.families);
  free(run.family_root);
  zllm_base_map_free(run.bases);
  free(run.crawled_hub);
  free(run.mine);
  return rc;
}
