/* zllm/survey.h - the MPI survey job (zllm-survey).
 *
 * Phases (each ends with every rank agreeing on the outcome):
 *   crawl   with an endpoint, the ranks first crawl it into OUT/hub together
 *          (zllm_crawl_mpi: rank 0 lists, each rank downloads its share by
 *          listed bytes), which every rank then reads (a shared file system
 *          is assumed);
 *   walk   rank 0 lists the hub once (zllm_hub: repos, files, cards,
 *          configs, shard indexes) and broadcasts the listing; the cluster,
 *          base selection, pass and merge all take it;
 *   cluster every rank sketches its share of the models (dealt by bytes; a
 *          small sampled read), the sketches are shared, comparisons split
 *          over the ranks, and every rank ends with the same family table
 *          (zllm/cluster.h);
 *   bases   every rank turns the family table (then the cards) into the
 *          base map pack is handed (zllm_bases_choose, zllm/basemap.h);
 *   pass    the one pass over the bytes: every rank takes work units (a
 *          family, or a model of a family bigger than a rank's share) first
 *          come, first served, and packs them into its own staging archive
 *          with those bases (a fine-tune whose base another rank took reads
 *          the base from the hub); pack's single read of each file
 *          (zllm_pack_tap) also yields
 *          the file's scan record (SHA-256, XXH3-128 of the file and its
 *          tensors) and its statistics rows (tallies against the base);
 *          rank 0 moves the staging packs into OUT/archive and merges the
 *          rows in the one-process order (zllm_archive_merge).  A file the pass could
 *          not read whole is scanned after it, and its repo's statistics
 *          read by the stats phase;
 *   scan   only with no_pack: files dealt by size, each hashed in one
 *          streaming pass; a bad file is recorded, not fatal;
 *   report records are gathered to rank 0 in hub order, so every output is
 *          the same whatever the number of ranks;
 *   stats   the rows go into OUT/stats.h5 with collective parallel HDF5, with
 *          each tensor's method and stored bytes from the archive (with
 *          no_pack, every rank first reads its share of the models and their
 *          bases).
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
  const char *endpoint; /* crawl this Hub API into OUT/hub first (all ranks), or NULL */
  zllm_crawl_options crawl; /* the crawl's selection (endpoint/out are set by the survey) */
  /* With `endpoint`: first a census of the listing (zllm_crawl_census into
   * OUT/hub/census.tsv, then stats.h5 /census); the files crawled and
   * surveyed are then those of crawl.select (none without it). */
  int census;
} zllm_survey_options;

#define ZLLM_SURVEY_OPTIONS_INIT {NULL, "zllm-out", 0, 0, 0, NULL, ZLLM_CRAWL_OPTIONS_INIT, 0}

/* Returns the same code on every rank. */
int zllm_survey_run(const zllm_survey_options *opts, MPI_Comm comm);

#endif
