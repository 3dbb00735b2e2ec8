/* zllm cluster: families and bases by bitwise similarity (docs/CLUSTER.md).
 * Runs alone or under mpirun/srun: the comparisons are split over ranks. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cmds.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"

void cmd_cluster_usage(FILE *out)
{
  fprintf(out, "usage: [mpirun -n N] zllm cluster --hub DIR --out FAMILIES.tsv [--threshold BITS] [--pairs PAIRS.tsv]\n"
               "                                  [--all-pairs | --bands-only] [--quiet]\n\n"
               "Sketches every model of the snapshot (a deterministic sample of each float tensor), compares\n"
               "models of the same architecture (names and shapes; dtypes may differ) whose sketches share a\n"
               "band, and groups them into families by bit distance (mean Hamming bits per element on the\n"
               "BF16 view, default threshold %.2f).  Each model gets as base the earlier relative with the\n"
               "smallest delta; the model card's base_model is kept when the bits agree and overridden,\n"
               "with the reason, when they do not.  Columns: repo, family, base, declared_base,\n"
               "bit_distance, identical_fraction, delta_bits, decision, reason.  `zllm pack` clusters the\n"
               "same way by default.  The result does not depend on the number of ranks.\n"
               "--pairs writes every compared pair with its metrics; --all-pairs compares every pair of\n"
               "the same architecture instead of the banded candidates (quadratic: for calibration);\n"
               "--bands-only uses the bands even where an architecture has few models (small ones are\n"
               "otherwise compared pair by pair).\n",
          ZLLM_CLUSTER_THRESHOLD);
}

static void print_summary(const zllm_family_table *t)
{
  size_t by[ZLLM_DECIDE_NONE + 1] = {0};
  for (size_t i = 0; i < t->n; i++)
    by[t->rows[i].decision]++;
  printf("%zu models, %zu families, %zu pairs compared:", t->n, t->nfamilies, t->ncompared);
  for (int d = 0; d <= ZLLM_DECIDE_NONE; d++)
    if (by[d])
      printf(" %zu %s", by[d], zllm_decision_name((zllm_decision)d));
  printf("\n");
}

int cmd_cluster(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"hub", required_argument, NULL, 'H'}, {"out", required_argument, NULL, 'o'},
    {"threshold", required_argument, NULL, 't'}, {"quiet", no_argument, NULL, 'q'},
    {"pairs", required_argument, NULL, 'p'}, {"all-pairs", no_argument, NULL, 'A'},
    {"bands-only", no_argument, NULL, 'B'}, {NULL, 0, NULL, 0},
  };
  const char *hub = NULL, *out = NULL, *pairs = NULL;
  int quiet = 0, c, rank = 0;
  zllm_cluster_options o = ZLLM_CLUSTER_OPTIONS_INIT;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'H': hub = optarg; break;
    case 'o': out = optarg; break;
    case 't': o.threshold = atof(optarg); break;
    case 'q': quiet = 1; break;
    case 'p': pairs = optarg; break;
    case 'A': o.all_pairs = 1; break;
    case 'B': o.lsh.exhaustive_max = 0; break;
    default: cmd_cluster_usage(stderr); return 2;
    }
  }
  if (!hub || !out || optind != argc || !(o.threshold > 0 && o.threshold < 16)) {
    cmd_cluster_usage(stderr);
    return 2;
  }
  int mpi = cmd_mpi_begin(&rank);
  zllm_family_table *t = NULL;
  zllm_hub *listed = NULL;
  /* listed once (rank 0 under mpirun), the listing handed to every rank */
  int rc = mpi ? zllm_hub_open_local_all(&listed, hub, MPI_COMM_WORLD) : zllm_hub_open_local(&listed, hub);
  if (rc == 0)
    rc = mpi ? zllm_cluster_hub_mpi(&t, listed, &o, MPI_COMM_WORLD) : zllm_cluster_hub(&t, listed, &o);
  if (rc == 0 && rank == 0)
    rc = zllm_family_table_write(t, out);
  if (rc == 0 && rank == 0 && pairs)
    rc = zllm_family_table_write_pairs(t, pairs);
  if (rc == 0 && rank == 0 && !quiet)
    print_summary(t);
  int ok = mpi ? zllm_mpi_alltrue(rc == 0, MPI_COMM_WORLD) : rc == 0;
  if (!ok && rc < 0)
    fprintf(stderr, "zllm cluster: %s\n", zllm_error_last());
  zllm_family_table_free(t);
  zllm_hub_free(listed);
  if (mpi)
    MPI_Finalize();
  return ok ? 0 : 1;
}
