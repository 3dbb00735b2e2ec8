/* The cluster phase: families and bases by bitwise similarity over the
 * ranks (cluster/), then pack's bases from them and the cards; the same
 * table on every rank (survey/phases.h). */
#include "survey/phases.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/mpi.h"

int sv_families(sv_run *run)
{
  zllm_cluster_options co = ZLLM_CLUSTER_OPTIONS_INIT;
  int rc = zllm_cluster_hub_mpi(&run->families, run->hub, &co, run->comm);
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
