/* Private to survey/: the statistics phase's state, shared by its files:
 * stats.c (the rows: from the one pass, or read from the hub; the phase),
 * deal.c (which repos a rank takes), dups.c (the tensor-duplicate exchange
 * between ranks) and stats_write.c (the HDF5 tables). */
#ifndef ZLLM_SURVEY_STATS_INTERNAL_H
#define ZLLM_SURVEY_STATS_INTERNAL_H

#include <stddef.h>
#include <stdio.h>
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

/* A tensor row's hash and size: what the duplicate exchange needs of it. */
typedef struct {
  uint8_t key[16];
  uint64_t bytes;
} st_key;

/* The phase's state.  Rows are made repo by repo and spilled (a repo's
 * /exponents rows, then its tensor rows) to OUT/.survey; the tables are
 * written in rounds of repos read back from there, so a rank holds a round
 * of rows, not its share.  During a round, mine/nmine, models, rows and
 * exps describe the round's repos only (a view of the whole). */
typedef struct {
  sv_run *run;
  uint64_t *first;     /* per repo: global row of its first tensor */
  uint64_t ntensors;
  size_t *mine, nmine; /* this rank's repos */
  t_row *rows;         /* the tensor rows of the repo being made, or of a round */
  size_t nrows, rows_cap;
  m_row *models;       /* per own repo */
  e_row *exps;         /* per own repo x NDT: of the repo being made, or of a round */
  FILE *spill;         /* the made rows, repo by repo */
  char *spill_path;
  uint64_t *spill_at;  /* per own repo: where its rows start in the spill */
  st_key *keys;        /* per own tensor row, in row order */
  size_t nkeys;
  int64_t *dup_of;     /* per own tensor row: the first row with its hash, or -1 */
  size_t row0;         /* in a round: the own row its first row is */
  zllm_mpi_progress progress; /* the whole job's stats phase */
  zllm_archive *archive; /* OUTDIR/archive, read-only, when the survey packed */
  zllm_family_table *fam; /* the family rows of this rank's repos, asked of their homes */
} st_ctx;


/* This rank's repos for the statistics of a --no-pack survey (c->mine,
 * sorted): whole families dealt by bytes, largest first; with split_big a
 * family bigger than a rank's share is dealt model by model.  Local: every
 * rank computes the same deal.  (After the one pass a rank takes the repos
 * it packed, run->mine.) */
int st_deal_repos(st_ctx *c, int split_big);

/* The family repo `repo` belongs to, as the index of its first model (the
 * repo itself when it has none): run->family_root, on every rank. */
size_t st_family_of(const st_ctx *c, size_t repo);

/* dup_of[i] for each own tensor row (c->keys): the first row anywhere with
 * the same XXH3-128 (or -1), and the duplicate counts by scope.
 * COLLECTIVE. */
int st_duplicates(st_ctx *c, int64_t *dup_of, uint64_t dup[3][2]);

/* The rows of own repos [k0, k1) read back from the spill into c->rows and
 * c->exps (freed by the next call or st_round_free). */
int st_round_load(st_ctx *c, size_t k0, size_t k1, t_row **rows, size_t *nrows, e_row **exps);

/* Every table of stats.h5 (docs/STATS.md) into `o`.  COLLECTIVE. */
int st_write_tables(st_ctx *c, h5_out *o);
/* /census from OUT/hub/census.tsv (survey/census_h5.c; COLLECTIVE). */
int sv_census_write(sv_run *run, h5_out *o);

#endif
