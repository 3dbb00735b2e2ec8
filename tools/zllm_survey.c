/* zllm-survey: the MPI job.  mpirun -n N zllm-survey [--hub DIR] [--out DIR] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/survey.h"

static void usage(FILE *out)
{
  fprintf(out,
          "usage: mpirun -n N zllm-survey [--hub DIR] [--out DIR] [--quiet] [--verbose]\n\n"
          "Surveys a hub snapshot across MPI ranks: reads every repo (plain layout DIR/<org>/<name>/\n"
          "or the Hugging Face cache layout, e.g. --hub \"$HF_HUB_CACHE\"), parses every safetensors\n"
          "header strictly, hashes every file (SHA-256, XXH3-128) and tensor (XXH3-128), and writes\n"
          "summary.json, repos.tsv, files.tsv, tensors.tsv and problems.tsv to --out.\n"
          "A malformed file is recorded in problems.tsv and the job goes on.\n\n"
          "  --hub DIR    hub snapshot (default: the sample hub shipped with zllm,\n"
          "               %s)\n"
          "  --out DIR    output directory (default: zllm-out)\n"
          "  --quiet      no summary table on stdout\n"
          "  --verbose    debug logging (same as ZLLM_LOG=debug)\n",
          ZLLM_SAMPLE_HUB_DIR);
}

/* Returns 0 to run, 1 to exit successfully (help), 2 on a usage error. */
static int parse_args(int argc, char **argv, zllm_survey_options *o)
{
  static const struct option longopts[] = {
    {"hub", required_argument, NULL, 'H'}, {"out", required_argument, NULL, 'o'},
    {"quiet", no_argument, NULL, 'q'},     {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
  };
  int c;
  opterr = 0; /* rank 0 alone reports usage errors */
  while ((c = getopt_long(argc, argv, "H:o:qvh", longopts, NULL)) != -1) {
    switch (c) {
    case 'H': o->hub = optarg; break;
    case 'o': o->out = optarg; break;
    case 'q': o->quiet = 1; break;
    case 'v': zllm_log_set_level(ZLLM_LOG_DEBUG); break;
    case 'h': return 1;
    default: return 2;
    }
  }
  return optind == argc ? 0 : 2;
}

int main(int argc, char **argv)
{
  int rank = 0, rc;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  zllm_log_init(rank);
  zllm_survey_options opts = ZLLM_SURVEY_OPTIONS_INIT;
  opts.hub = ZLLM_SAMPLE_HUB_DIR;
  int args = parse_args(argc, argv, &opts);
  if (args != 0) {
    if (rank == 0)
      usage(args == 1 ? stdout : stderr);
    MPI_Finalize();
    return args == 1 ? 0 : 2;
  }
  rc = zllm_survey_run(&opts, MPI_COMM_WORLD);
  if (rc < 0 && rank == 0)
    ZLLM_ERR("%s", zllm_error_last());
  MPI_Finalize();
  return rc < 0 ? 1 : 0;
}
