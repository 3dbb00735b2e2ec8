/* zllm/survey.h - the MPI survey job (zllm-survey).
 *
 * Phases (each ends with every rank agreeing on the outcome):
 *   walk   rank 0 reads the hub (repos, cards, configs, shard indexes) and
 *          broadcasts the file list;
 *   scan   files are dealt to ranks by size, largest first, to the least
 *          loaded rank; each rank parses headers and hashes files and tensors
 *          in one streaming pass; a bad file is recorded, not fatal;
 *   crawl   with an endpoint, rank 0 first crawls it into OUT/hub (zllm/crawl.h),
 *          which every rank then reads (a shared file system is assumed);
 *   cluster every rank sketches its share of the models (dealt by bytes), the
 *          sketches are shared, comparisons split over the ranks, and every
 *          rank ends with the same family table (zllm/cluster.h);
 *   pack    every rank packs whole families (dealt by bytes) into its own
 *          staging archive with those bases; rank 0 merges them into
 *          OUT/archive in the one-process order (zllm_archive_merge);
 *   stats   every rank reads its share of the models and their bases and the
 *          rows go into OUT/stats.h5 with collective parallel HDF5;
 *   report records are gathered to rank 0 in hub order, so every output is
 *          the same whatever the number of ranks.
 * Outputs in opts.out: summary.json, repos.tsv, files.tsv, tensors.tsv,
 * problems.tsv, families.tsv, pairs.tsv, stats.h5, archive/ (unless no_pack)
 * and hub/ (with an endpoint).  COLLECTIVE over `comm`.
 */
#ifndef ZLLM_SURVEY_H
#define ZLLM_SURVEY_H

#include <mpi.h>

#include "zllm/crawl.h"

typedef struct {
  const char *hub;      /* a local snapshot directory (ignored with `endpoint`) */
  const char *out;      /* output directory (created) */
  int quiet;            /* no summary table on stdout */
  int no_pack;          /* skip the archive */
  int baselines;        /* also measure zstd, FastCDC, ZipNN-style, ZipLLM-equivalent (rank 0) */
  const char *endpoint; /* crawl this Hub API into OUT/hub first (rank 0), or NULL */
  zllm_crawl_options crawl; /* the crawl's selection (endpoint/out are set by the survey) */
} zllm_survey_options;

#define ZLLM_SURVEY_OPTIONS_INIT {NULL, "zllm-out", 0, 0, 0, NULL, ZLLM_CRAWL_OPTIONS_INIT}

/* Returns the same code on every rank. */
int zllm_survey_run(const zllm_survey_options *opts, MPI_Comm comm);

#endif
