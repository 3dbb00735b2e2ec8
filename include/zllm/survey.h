/* zllm/survey.h - the MPI survey job (zllm-survey).
 *
 * Phases (each ends with every rank agreeing on the outcome):
 *   walk   rank 0 reads the hub (repos, cards, configs, shard indexes) and
 *          broadcasts the file list;
 *   scan   files are dealt to ranks by size, largest first, to the least
 *          loaded rank; each rank parses headers and hashes files and tensors
 *          in one streaming pass; a bad file is recorded, not fatal;
 *   cluster every rank sketches its share of the models (dealt by bytes), the
 *          sketches are shared, comparisons split over the ranks, and every
 *          rank ends with the same family table (zllm/cluster.h);
 *   report records are gathered to rank 0 in hub order, so every output is
 *          the same whatever the number of ranks.
 * Outputs in opts.out: summary.json, repos.tsv, files.tsv, tensors.tsv,
 * problems.tsv, families.tsv, pairs.tsv.  COLLECTIVE over `comm`.
 */
#ifndef ZLLM_SURVEY_H
#define ZLLM_SURVEY_H

#include <mpi.h>

typedef struct {
  const char *hub; /* a local snapshot directory */
  const char *out; /* output directory (created) */
  int quiet;       /* no summary table on stdout */
} zllm_survey_options;

#define ZLLM_SURVEY_OPTIONS_INIT {NULL, "zllm-out", 0}

/* Returns the same code on every rank. */
int zllm_survey_run(const zllm_survey_options *opts, MPI_Comm comm);

#endif
