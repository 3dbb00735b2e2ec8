/* Private to survey/: the run state of one survey and its accessors.  It
 * lies below the phases: a phase (walk and scan, cluster, pass, pack,
 * report, baselines, stats) reads and fills the run through this header
 * only, and never calls another phase or the orchestrator (survey.c), which
 * calls each phase's entry point in turn (survey/phases.h). */
#ifndef ZLLM_SURVEY_RUN_H
#define ZLLM_SURVEY_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/archive.h"
#include "zllm/buf.h"
#include "zllm/cluster.h"
#include "zllm/hub.h"
#include "zllm/mpi.h"
#include "zllm/survey.h"
#include "survey/pairs.h"
#include "survey/records.h"
#include "survey/rows.h"

/* Under OUT: the ranks' spills (bounded memory), removed at the end. */
#define SV_SPILL_DIR ".survey"

/* The hub's files, numbered in hub order (repos sorted, files sorted
 * within a repo) without holding them: a repo's listing is loaded where it
 * is worked on (zllm_hub_get on run->hub) and let go after. */
typedef struct {
  char **repo_ids; /* run->hub->ids (borrowed) */
  size_t nrepos;
  uint64_t *first; /* per repo, and one past the last: its first file's number */
  size_t nfiles;
} sv_list;

/* The phases each rank's time and bytes are recorded for (/ranks in stats.h5). */
enum { SV_CRAWL, SV_WALK, SV_SCAN, SV_CLUSTER, SV_PASS, SV_PASS_WAIT, SV_MERGE, SV_REPORT, SV_BASELINES, SV_STATS,
       SV_NPHASES };
extern const char *const sv_phase_names[SV_NPHASES];

typedef struct {
  zllm_survey_options opts;
  MPI_Comm comm;
  int rank, size;
  zllm_hub *hub;      /* the listing every stage uses, split over the ranks (zllm/hub.h) */
  sv_list list;       /* its files' numbers */
  zllm_buf repos;    /* the repos.tsv rows of the repos this rank listed (a block, in hub order) */
  zllm_buf problems; /* ... and their listing's problem rows */
  uint64_t scanned_bytes;
  uint64_t bytes_read;  /* all ranks' read system calls up to the report (hub, archive, catalog) */
  double times[5];   /* walk, scan, cluster, pack, crawl (seconds) */
  zllm_family_table *families; /* this rank's part: its home block's rows (cluster/parts.c; no pairs: see `pairs`) */
  uint32_t *family_root;       /* per repo, on every rank: its family's first model (zllm_family_roots) */
  sv_pairs *pairs;             /* the pairs this rank compared, spilled (survey/pairs.h) */
  sv_records *records;         /* this rank's scan records, spilled (survey/records.h) */
  zllm_base_map *bases;        /* pack's bases, from the families: every repo's base on every rank, the
                                  reasons of the home block's repos alone (sv_bases_explain) */
  uint64_t reduction[3];       /* rank 0: original, after file dedup, after tensor dedup (bytes) */
  uint64_t stages[4];          /* rank 0: the archive's bytes by stage (zllm_archive_stages) */
  int packed;                  /* the archive was written (same on every rank) */
  char *crawled_hub;           /* OUT/hub when the survey crawled */
  char **file_dup_of;          /* rank 0, per repo: the earlier repo holding all its weight files, or NULL */
  struct {
    const char *method;
    uint64_t stored;
    double seconds;
  } baselines[7];              /* rank 0, with --baselines */
  size_t nbaselines;           /* the same on every rank */
  struct sv_pass_spill *passed; /* what the one pass saw of this rank's repos, spilled (pass.c); NULL without it */
  size_t *mine, nmine;         /* the repos this rank packed in the one pass (sorted) */
  double rank_seconds[SV_NPHASES];  /* this rank's time in each phase (sv_phase_names) */
  uint64_t rank_bytes[SV_NPHASES];  /* ... and the bytes its read system calls returned */
  uint64_t rank_peak_rss[SV_NPHASES]; /* ... and its peak resident memory so far at the phase's end */
  double mark_seconds;              /* the last sv_phase_end */
  uint64_t mark_bytes;
} sv_run;

/* Ends a stretch of phase k on this rank: the time and read bytes since the
 * previous mark are added to run->rank_seconds[k] / rank_bytes[k]. */
void sv_phase_end(sv_run *run, int k);

void sv_list_free(sv_list *l);
/* The index of repo `id` in the sorted repo list, or -1. */
long sv_repo_index(const sv_list *l, const char *id);

/* Seconds the hub's bytes took to read and hash: the scan, plus the pack
 * when the pack's one pass did the reading. */
static inline double sv_read_seconds(const sv_run *run)
{
  return run->times[1] + (run->packed ? run->times[3] : 0);
}
/* The files of repo `repo`: indices [*lo, *hi) (files are in hub order, so a
 * repo's files are contiguous). */
void sv_repo_files(const sv_list *l, size_t repo, size_t *lo, size_t *hi);
/* The repo of file number `file` (< l->nfiles). */
size_t sv_file_repo(const sv_list *l, size_t file);

#endif
