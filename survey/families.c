/* The cluster phase: families and bases by bitwise similarity over the
 * ranks (cluster/), then pack's bases from them and the cards; the same
 * table on every rank (survey/phases.h). */
#include <stdlib.h>

#include "survey/phases.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

/* The pairs each rank compares go to its spill, and from there to
 * pairs.tsv (now) and stats.h5 (the statistics phase). */
static int cluster(sv_run *run)
{
  zllm_cluster_options co = ZLLM_CLUSTER_OPTIONS_INIT;
  char *dir = zllm_path_join(run->opts.out, SV_SPILL_DIR), *tsv = zllm_path_join(run->opts.out, "pairs.tsv");
  int rc = dir && tsv ? sv_pairs_open(&run->pairs, dir, run->rank, run->hub->ids, run->hub->n)
                      : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not open its pairs' spill");
  else
    rc = zllm_cluster_hub_owned(&run->families, run->hub, &co, sv_pairs_sink, run->pairs, run->comm);
  rc = rc ? rc : sv_pairs_settle(run->pairs, run->comm);
  rc = rc ? rc : sv_pairs_write_tsv(run->pairs, tsv, run->comm);
  free(dir);
  free(tsv);
  return rc;
}

int sv_families(sv_run *run)
{
  int rc = cluster(run);
  if (rc < 0)
    return rc;
  /* pack's bases: the families just found, then the cards (a fresh archive holds nothing) */
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  bo.hub = run->hub;
  bo.table = run->families;
  rc = zllm_bases_choose(&run->bases, &bo);
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not choose the bases");
  return 0;
}
