/* Private to survey/: the statistics phase's state, shared by its files:
 * stats.c (the rows: from the one pass, or read from the hub; the phase),
 * deal.c (which repos a rank takes), dups.c (the tensor-duplicate exchange
 * between ranks) and stats_write.c (the HDF5 tables). */
#ifndef ZLLM_SURVEY_STATS_INTERNAL_H
#define ZLLM_SURVEY_STATS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "survey/h5out.h"
#include "survey/rows.h"
#include "survey/phases.h"
#include "zllm/archive.h"
#include "zllm/log.h"

#define NAME_LEN SV_NAME_LEN
#define ID_LEN 128
#define EXP_BINS SV_EXP_BINS
#define REL_BINS SV_REL_BINS
#define NDT SV_NDT

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
  zllm_mpi_progress progress; /* the whole job's stats phase */
  zllm_archive *archive; /* OUTDIR/archive, read-only, when the survey packed */
} st_ctx;


/* This rank's repos for the statistics of a --no-pack survey (c->mine,
 * sorted): whole families dealt by bytes, largest first; with split_big a
 * family bigger than a rank's share is dealt model by model.  Local: every
 * rank computes the same deal.  (After the one pass a rank takes the repos
 * it packed, run->mine.) */
int st_deal_repos(st_ctx *c, int split_big);

/* The family repo `repo` belongs to (named after its first model), or the
 * repo itself when it has none. */
const char *st_family_of(const st_ctx *c, size_t repo);

/* dup_of[i] for each own tensor row: the first row anywhere with the same
 * XXH3-128 (or -1), and the duplicate counts by scope.  COLLECTIVE. */
int st_duplicates(st_ctx *c, int64_t *dup_of, uint64_t dup[3][2]);

/* Every table of stats.h5 (docs/STATS.md) into `o`.  COLLECTIVE. */
int st_write_tables(st_ctx *c, h5_out *o);

#endif
