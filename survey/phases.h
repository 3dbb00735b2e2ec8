/* Private to survey/: each phase's entry point, called by the orchestrator
 * (survey.c) in turn.  A phase includes this header for its own
 * declaration only: it reaches the others through the run (survey/run.h). */
#ifndef ZLLM_SURVEY_PHASES_H
#define ZLLM_SURVEY_PHASES_H

#include "survey/run.h"

/* The phases in the order the orchestrator runs them.  Each is COLLECTIVE:
 * every rank calls it, and every rank returns the same outcome. */

/* crawl_phase.c: the ranks crawl opts.endpoint into OUT/hub (zllm_crawl_mpi)
 * and the survey goes on over it; items that fail are reported. */
int sv_crawl(sv_run *run);

/* walk.c: rank 0 lists the hub (and writes the repos and problems rows),
 * every rank gets the listing and the flat file list made from it. */
int sv_walk(sv_run *run);

/* scan.c (--no-pack): each rank reads its repos (whole repos, dealt by
 * size) into its scan records (run->records). */
int sv_scan(sv_run *run);

/* families.c: families and bases by bitwise similarity, then pack's bases
 * (run->families: this rank's part of the table; run->family_root and
 * run->bases: on every rank). */
int sv_families(sv_run *run);

/* pack_phase.c: the one pass.  The hub packed into OUT/archive over the
 * ranks (work units first come, first served, rank 0 merging the staging
 * archives); pass.c's tap turns each read into scan records (run->records)
 * and run->pass rows; files the pass did not see are scanned. */
int sv_pack(sv_run *run);

/* report.c: every rank's scan records into files.tsv, tensors.tsv and
 * problems.tsv (each rank's rows in place), the duplicate counts from the
 * owners of the hashes, repos.tsv, families.tsv, summary.json and the
 * summary table (rank 0). */
int sv_report(sv_run *run);

/* --baselines: rank 0 stores the hub as zstd -3, ZipNN-style and the
 * ZipLLM-equivalent would (zllm pack profiles, into OUT/baselines/, removed
 * after), chunks it with FastCDC, and records bytes and seconds beside file
 * dedup, tensor dedup and zllm.  COLLECTIVE. */
int sv_baselines(sv_run *run);

/* Each repo's unit of work for the one pass (*unit[i], the index of a
 * repo): its family, unless the family is larger than a rank's share, then
 * the repo itself.  Ranks take units first come, first served; a fine-tune
 * whose base another rank took reads the base from the hub (pack/extern.h).
 * Local: every rank computes the same units.  Caller frees *unit. */
int sv_work_units(const sv_run *run, size_t **unit);

/* The pack phase's tap (pass.c, below pack_phase.c): pack's reads feed it,
 * turning this rank's share into scan records (run->records) and
 * run->pass rows. */
typedef struct sv_pass sv_pass;
int sv_pass_new(sv_pass **out, sv_run *run, zllm_mpi_progress *progress);
const zllm_pack_tap *sv_pass_tap(sv_pass *s);
/* After the pack: marks the share's repos the pass saw whole and scans the
 * files it did not see; *bytes is what the pass and that scan read. */
int sv_pass_finish(sv_pass *s, const size_t *mine, size_t nmine, uint64_t *bytes);
void sv_pass_free(sv_pass *s); /* accepts NULL; run->passed stays */
/* After the pass: 1 when it saw repo `repo` whole (*nrows: its tensor rows). */
int sv_pass_complete(const sv_run *run, size_t repo, size_t *nrows);
/* Those rows, read back from the spill (free with sv_repo_pass_free). */
int sv_pass_load(sv_run *run, size_t repo, sv_repo_pass **out);
void sv_repo_pass_free(sv_repo_pass *p); /* accepts NULL */
typedef struct sv_pass_spill sv_pass_spill;
void sv_pass_spill_free(sv_pass_spill *sp); /* removes the spill; accepts NULL */
void sv_pass_rows_free(sv_run *run);

/* OUTDIR/stats.h5 with parallel HDF5 (docs/STATS.md).  COLLECTIVE. */
int sv_stats(sv_run *run);

#endif
