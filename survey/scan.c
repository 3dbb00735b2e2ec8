/* The scan phase of a --no-pack survey: each rank reads its repos into
 * its scan records (survey/phases.h). */
#include <stdlib.h>

#include "survey/phases.h"
#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"

/* Whole repos, largest first to the least-loaded rank (the same deal on
 * every rank): a repo's records are one rank's, as its rows are. */
static int deal_repos(sv_run *run, size_t **mine, size_t *nmine)
{
  uint64_t *sizes = calloc(run->list.nrepos + 1, sizeof *sizes);
  if (!sizes)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < run->list.nrepos; i++)
    sizes[i] = run->hub->info[i].bytes;
  int rc = zllm_deal_by_size(sizes, run->list.nrepos, run->size, run->rank, mine, nmine);
  free(sizes);
  return rc;
}

/* Phase 2: scan this rank's repos into its records. */
int sv_scan(sv_run *run)
{
  size_t *mine = NULL, nmine = 0;
  uint64_t bytes = 0, share = 0;
  zllm_mpi_progress pg;
  int rc = deal_repos(run, &mine, &nmine);
  for (size_t k = 0; rc == 0 && k < nmine; k++)
    share += run->hub->info[mine[k]].bytes;
  zllm_mpi_progress_begin(&pg, "scan", share, run->comm);
  for (size_t k = 0; rc == 0 && k < nmine; k++) {
    size_t lo, hi;
    const zllm_repo *r = NULL;
    sv_repo_files(&run->list, mine[k], &lo, &hi);
    if (lo == hi) /* nothing listed (or not listable: the walk said why) */
      continue;
    rc = zllm_hub_get(run->hub, mine[k], &r);
    for (size_t i = lo; rc == 0 && i < hi; i++) {
      const zllm_hub_file *f = &r->files[i - lo];
      rc = zllm_scan_file(sv_records_begin(run->records), run->hub->src, r, f);
      rc = rc ? rc : sv_records_end(run->records, i);
      bytes += f->size;
      zllm_mpi_progress_add(&pg, f->size);
      ZLLM_DEBUG("scanned %s/%s (%llu bytes)", r->id, f->path, (unsigned long long)f->size);
    }
    if (r)
      zllm_hub_put(run->hub, mine[k]);
  }
  zllm_mpi_progress_finish(&pg);
  free(mine);
  run->scanned_bytes = zllm_mpi_sum_u64(bytes, run->comm);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}
