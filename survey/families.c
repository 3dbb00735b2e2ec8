/* The cluster phase: families and bases by bitwise similarity over the
 * ranks (cluster/), then pack's bases from them and the cards: each rank
 * keeps its part of the family table, every rank every repo's family root
 * and base (survey/phases.h, survey/bases.h). */
#include <stdlib.h>

#include "survey/bases.h"
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
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not find the families");
  rc = zllm_family_roots(&run->family_root, run->families, run->hub, run->comm);
  /* pack's bases: the families just found, then the cards (a fresh archive holds nothing) */
  return rc ? rc : sv_bases_choose(run);
}
