/* The scan phase of a --no-pack survey: each rank reads its files into
 * "@index" scan records (survey/phases.h). */
#include <stdlib.h>

#include "survey/phases.h"
#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"

/* Largest file first to the least-loaded rank (the same deal on every rank). */
static int deal_files(sv_run *run, size_t **mine, size_t *nmine)
{
  size_t n = run->list.nfiles;
  uint64_t *sizes = calloc(n ? n : 1, sizeof *sizes);
  if (!sizes)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    sizes[i] = run->list.files[i].size;
  int rc = zllm_deal_by_size(sizes, n, run->size, run->rank, mine, nmine);
  free(sizes);
  return rc;
}

/* Phase 2: scan this rank's files into "@index" blocks. */
int sv_scan(sv_run *run, zllm_buf *out)
{
  size_t *mine = NULL, nmine = 0;
  uint64_t bytes = 0, share = 0;
  zllm_mpi_progress pg;
  int rc = deal_files(run, &mine, &nmine);
  for (size_t i = 0; rc == 0 && i < nmine; i++)
    share += run->list.files[mine[i]].size;
  zllm_mpi_progress_begin(&pg, "scan", share, run->comm);
  for (size_t i = 0; rc == 0 && i < nmine; i++) {
    const sv_file *f = &run->list.files[mine[i]];
    rc = zllm_buf_printf(out, "@%zu\n", mine[i]);
    zllm_hub_file hf = sv_hub_file(f);
    rc = rc ? rc : zllm_scan_file(out, run->hub->src, run->hub->repos[f->repo], &hf);
    bytes += f->size;
    zllm_mpi_progress_add(&pg, f->size);
    ZLLM_DEBUG("scanned %s/%s (%llu bytes)", run->list.repo_ids[f->repo], f->path, (unsigned long long)f->size);
  }
  zllm_mpi_progress_finish(&pg);
  free(mine);
  run->scanned_bytes = zllm_mpi_sum_u64(bytes, run->comm);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}

