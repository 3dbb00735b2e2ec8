/* zllm-survey: the MPI job.  mpirun -n N zllm-survey [--hub DIR] [--out DIR] */
#include <curl/curl.h>
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
          "usage: mpirun -n N zllm-survey [--hub DIR | --endpoint URL [crawl options]] [--out DIR]\n"
          "                               [--no-pack] [--baselines] [--quiet] [--verbose]\n\n"
          "Surveys a hub across MPI ranks: reads every repo (plain layout DIR/<org>/<name>/ or the\n"
          "Hugging Face cache layout, e.g. --hub \"$HF_HUB_CACHE\"), parses every safetensors header\n"
          "strictly, hashes every file (SHA-256, XXH3-128) and tensor (XXH3-128), groups models into\n"
          "families by bitwise similarity, packs the hub into OUT/archive, and writes the\n"
          "characterization study to OUT/stats.h5 (parallel HDF5), with summary.json, repos.tsv,\n"
          "files.tsv, tensors.tsv, problems.tsv, families.tsv and pairs.tsv.  The hashes, the\n"
          "archive and the statistics come from one read of each file (OUT/archive is replaced).\n"
          "A malformed file is recorded in problems.tsv and the job goes on.\n\n"
          "  --hub DIR       hub snapshot (default: the sample hub shipped with zllm,\n"
          "                  %s)\n"
          "  --endpoint URL  crawl a Hub API first (into OUT/hub, downloads shared by the ranks;\n"
          "                  HF_TOKEN honoured), with\n"
          "                  --author A --search S --filter TAG --limit N --include GLOB --jobs K\n"
          "                  --rate api=N,resolvers=M[,window=S] (quotas of a server that states none)\n"
          "  --census        with --endpoint: a census of the whole listing first (OUT/hub/census.tsv,\n"
          "                  then stats.h5 /census and the report's Hub-scale figures); the files\n"
          "                  crawled and surveyed are then only those of --select EXPR (see\n"
          "                  `zllm crawl --help`: library=transformers,params>=1B,...)\n"
          "  --out DIR       output directory (default: zllm-out)\n"
          "  --no-pack       no archive (stats.h5 then has hash-level reductions only; the hub\n"
          "                  is then read twice: a scan, then the statistics)\n"
          "  --baselines     also store the hub as zstd -3, ZipNN-style and the ZipLLM-equivalent\n"
          "                  would, and chunk it with FastCDC (rank 0; bytes and time of each)\n"
          "  --quiet         no summary table on stdout\n"
          "  --verbose       debug logging (same as ZLLM_LOG=debug)\n",
          ZLLM_SAMPLE_HUB_DIR);
}

/* Returns 0 to run, 1 to exit successfully (help), 2 on a usage error. */
static int parse_args(int argc, char **argv, zllm_survey_options *o)
{
  static const struct option longopts[] = {
    {"hub", required_argument, NULL, 'H'},      {"out", required_argument, NULL, 'o'},
    {"quiet", no_argument, NULL, 'q'},          {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},           {"no-pack", no_argument, NULL, 'P'},
    {"endpoint", required_argument, NULL, 'e'}, {"author", required_argument, NULL, 'a'},
    {"search", required_argument, NULL, 's'},   {"filter", required_argument, NULL, 'f'},
    {"limit", required_argument, NULL, 'l'},    {"include", required_argument, NULL, 'i'},
    {"jobs", required_argument, NULL, 'j'},     {"baselines", no_argument, NULL, 'B'},
    {"census", no_argument, NULL, 'C'},         {"select", required_argument, NULL, 'S'},
    {"rate", required_argument, NULL, 'R'},
    {NULL, 0, NULL, 0},
  };
  static const char *include[256];
  int c;
  o->crawl.include = include;
  opterr = 0; /* rank 0 alone reports usage errors */
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'H': o->hub = optarg; break;
    case 'o': o->out = optarg; break;
    case 'q': o->quiet = 1; break;
    case 'v': zllm_log_set_level(ZLLM_LOG_DEBUG); break;
    case 'h': return 1;
    case 'P': o->no_pack = 1; break;
    case 'B': o->baselines = 1; break;
    case 'e': o->endpoint = optarg; break;
    case 'a': o->crawl.author = optarg; break;
    case 's': o->crawl.search = optarg; break;
    case 'f': o->crawl.filter = optarg; break;
    case 'l': o->crawl.limit = atol(optarg); break;
    case 'i': if (o->crawl.ninclude < 256) include[o->crawl.ninclude++] = optarg; break;
    case 'j': o->crawl.jobs = atoi(optarg); break;
    case 'C': o->census = 1; break;
    case 'S': o->crawl.select = optarg; break;
    case 'R': o->crawl.rate = optarg; break;
    default: return 2;
    }
  }
  if ((o->census || o->crawl.select) && !o->endpoint)
    return 2; /* a census is of a listing */
  if (o->crawl.select && !o->census)
    return 2;
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
  opts.crawl.token = getenv("HF_TOKEN");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = zllm_survey_run(&opts, MPI_COMM_WORLD);
  curl_global_cleanup();
  if (rc < 0 && rank == 0)
    ZLLM_ERR("%s", zllm_error_last());
  MPI_Finalize();
  return rc < 0 ? 1 : 0;
}
