/* zllm crawl: a hub over HTTP (the Hugging Face Hub API) into a snapshot. */
#include <curl/curl.h>
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cmds.h"
#include "zllm/crawl.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"

#define MAX_LIST 256

void cmd_crawl_usage(FILE *out)
{
  fprintf(out,
          "usage: [mpirun -n N] zllm crawl --out DIR [--endpoint URL] [--author A] [--search S] [--filter TAG] [--limit N]\n"
          "                  [--repo ORG/NAME]... [--include GLOB]... [--metadata-only] [--jobs K]\n"
          "                  [--retries N] [--low-speed-limit BYTES] [--low-speed-time SECONDS]\n"
          "                  [--min-rate BYTES] [--rate api=N,resolvers=M[,window=S]] [--quiet]\n"
          "       [mpirun -n N] zllm crawl --census --out DIR [--endpoint URL] [--author A] [--search S] [--filter TAG]\n"
          "                  [--limit N] [--select EXPR [--metadata-only] [--include GLOB]...] [--rate ...] [--quiet]\n"
          "       [mpirun -n N] zllm crawl --select EXPR --out DIR [--metadata-only] [--include GLOB]... [...]\n\n"
          "Lists models through the Hub API (/api/models, all pages), reads each one's info and file tree\n"
          "at its current commit, and downloads the files into DIR/<org>/<name>/ (the plain layout\n"
          "`zllm pack` and `zllm-survey` read), K transfers at a time over reused connections.  Each file\n"
          "lands under DIR/.zllm/partial/ and is renamed into place only after its size and hash (the\n"
          "LFS SHA-256, or git's blob id) check out; run it again after an interruption and it skips\n"
          "what is verified and resumes partial files.  429/5xx/resets/timeouts are retried with\n"
          "backoff (at most N retries in all, default 1000); a file that still fails is reported and\n"
          "the crawl goes on.  --repo crawls the given repos instead of listing.  --include keeps the\n"
          "files matching a glob (e.g. '*.safetensors').  --metadata-only reads each safetensors\n"
          "header with two Range requests instead of downloading.  A transfer slower than BYTES per\n"
          "second over SECONDS (default 1024 over 30) is ended and retried, and so is one that takes\n"
          "longer than SECONDS plus its bytes (a file's listed size, a response's cap: 8 MiB for a\n"
          "listing or tree page, 64 MiB for a repo's info) at --min-rate bytes per second (default\n"
          "65536): a server dripping just above the low-speed limit cannot hold it.  An API answer\n"
          "redirected to another origin than the endpoint's is not followed (files may be: the Hub\n"
          "redirects them to its CDN).  Requests stay inside the server's rate limits: its RateLimit\n"
          "and RateLimit-Policy headers (the Hub's: api, resolvers and pages calls per 5-minute window)\n"
          "say how many are left and when the window ends, and a request that would pass its quota\n"
          "waits for the next window instead of meeting a 429 (one that comes anyway waits for the reset,\n"
          "and is not a retry).  --rate gives the quotas of a server that states none (requests per\n"
          "window, 300 s unless window=S).  The ranks of a crawl split every quota.  DIR/.zllm/metadata.jsonl:\n"
          "one line per model (API metadata, files, dtypes and parameters from the headers).\n\n"
          "--census lists every model with the listing's expand[] fields (1,000 per page: ~3,000 requests\n"
          "for the whole Hub) into DIR/census.tsv, one row per repo: id, sha, created_at, last_modified,\n"
          "library, pipeline_tag, base_relation, base_models, params_total, params_by_dtype, gated, files,\n"
          "downloads, likes.  It streams (memory holds one page) and resumes after a kill at any point\n"
          "from its page log (DIR/.zllm/census.pages), asking no page done again.  Entries without a valid\n"
          "id are skipped and fields that break their rules left empty, each named.  --select EXPR then\n"
          "crawls the census rows EXPR picks (info, tree, and files or --metadata-only headers), a\n"
          "conjunction of FIELD OP VALUE terms joined by ',':  id~GLOB  library=X  pipeline_tag=X\n"
          "gated=X  relation=X  base=ORG/NAME  dtype=BF16  params>=7B  files<10  downloads>1K\n"
          "created>=2024-06  modified<2025 (OP: = != < <= > >=).  Over ranks the selection is dealt\n"
          "round-robin and each rank asks the info, tree and files of its own repos, 256 at a time; a\n"
          "rerun skips the repos done.\n\n"
          "Under mpirun/srun the ranks share the crawl: rank 0 lists the hub and pins each repo to\n"
          "its commit, the files are dealt by listed bytes, and each rank downloads its share with the\n"
          "same retries (N is each rank's), limits and checks into DIR, which all ranks must see.\n\n"
          "Environment: HF_ENDPOINT (default endpoint, else https://huggingface.co), HF_TOKEN (sent as\n"
          "'Authorization: Bearer', never printed).  Exit status 1 when anything failed.\n");
}

static void print_stats(const zllm_crawl_stats *s, int metadata_only)
{
  printf("crawl: %llu repos (%llu failed), %llu files downloaded, %llu already verified, %llu failed, "
         "%.1f MB listed, %.1f MB received, %ld retries, %llu problems\n",
         (unsigned long long)s->repos, (unsigned long long)s->repos_failed, (unsigned long long)s->files,
         (unsigned long long)s->files_skipped, (unsigned long long)s->files_failed, (double)s->bytes_listed / 1e6,
         (double)s->bytes_received / 1e6, s->retries, (unsigned long long)s->problems);
  if (s->throttled || s->rate_waited >= 1)
    printf("rate limits: %.0f s waiting for windows, %ld answers of 429\n", s->rate_waited, s->throttled);
  if (s->ranks > 1)
    printf("over %u ranks: each received between %.1f and %.1f MB and made between %llu and %llu of the %llu "
           "requests\n", s->ranks, (double)s->rank_received_min / 1e6, (double)s->rank_received_max / 1e6,
           (unsigned long long)s->rank_requests_min, (unsigned long long)s->rank_requests_max,
           (unsigned long long)s->requests);
  if (metadata_only)
    printf("metadata only: %llu safetensors headers read; received %.3f%% of the listed bytes\n",
           (unsigned long long)s->headers,
           s->bytes_listed ? 100.0 * (double)s->bytes_received / (double)s->bytes_listed : 0.0);
}

/* The stats, the metadata summary, and why the crawl failed if it did. */
static void report(const zllm_crawl_options *o, const zllm_crawl_stats *s, int rc)
{
  print_stats(s, o->metadata_only);
  if (o->metadata_only) {
    char path[4096];
    snprintf(path, sizeof path, "%s/.zllm/metadata.jsonl", o->out);
    if (zllm_crawl_summary(path, stdout) < 0)
      fprintf(stderr, "zllm crawl: %s\n", zllm_error_last());
  }
  if (rc < 0)
    fprintf(stderr, "zllm crawl: %s\n", zllm_error_last());
}

static int run_census(const zllm_crawl_options *o, int mpi, int rank)
{
  zllm_census_stats s;
  int rc = zllm_crawl_census(o, &s, mpi ? MPI_COMM_WORLD : MPI_COMM_NULL);
  if (rank != 0)
    return rc;
  if (rc < 0 && zllm_error_last_code() != ZLLM_ERROR) {
    fprintf(stderr, "zllm crawl: %s\n", zllm_error_last());
    return rc;
  }
  printf("census: %llu repos in %s/census.tsv%s, %llu pages asked by this run (%llu done before), %llu entries "
         "skipped, %llu rows with fields left empty, %.1f MB received, %ld retries, %llu problems\n",
         (unsigned long long)s.rows, o->out, s.complete ? "" : " (listing not complete)", (unsigned long long)s.pages,
         (unsigned long long)s.pages_before, (unsigned long long)s.skipped, (unsigned long long)s.fields_dropped,
         (double)s.bytes_received / 1e6, s.retries, (unsigned long long)s.problems);
  printf("rate limits: %.0f s waiting for windows, %ld answers of 429\n", s.rate_waited, s.throttled);
  if (rc < 0)
    fprintf(stderr, "zllm crawl: %s\n", zllm_error_last());
  return rc;
}

int cmd_crawl(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"endpoint", required_argument, NULL, 'e'}, {"out", required_argument, NULL, 'o'},
    {"author", required_argument, NULL, 'a'},   {"search", required_argument, NULL, 's'},
    {"filter", required_argument, NULL, 'f'},   {"limit", required_argument, NULL, 'l'},
    {"include", required_argument, NULL, 'i'},  {"repo", required_argument, NULL, 'r'},
    {"metadata-only", no_argument, NULL, 'm'},  {"jobs", required_argument, NULL, 'j'},
    {"retries", required_argument, NULL, 'R'},  {"quiet", no_argument, NULL, 'q'},
    {"low-speed-limit", required_argument, NULL, 'L'}, {"low-speed-time", required_argument, NULL, 'T'},
    {"min-rate", required_argument, NULL, 'M'}, {"rate", required_argument, NULL, 'A'},
    {"census", no_argument, NULL, 'C'},         {"select", required_argument, NULL, 'S'},
    {NULL, 0, NULL, 0},
  };
  zllm_crawl_options o = ZLLM_CRAWL_OPTIONS_INIT;
  const char *include[MAX_LIST], *repos[MAX_LIST];
  int c, census = 0;
  o.include = include;
  o.repos = repos;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'e': o.endpoint = optarg; break;
    case 'o': o.out = optarg; break;
    case 'a': o.author = optarg; break;
    case 's': o.search = optarg; break;
    case 'f': o.filter = optarg; break;
    case 'l': o.limit = atol(optarg); break;
    case 'i': if (o.ninclude < MAX_LIST) include[o.ninclude++] = optarg; break;
    case 'r': if (o.nrepos < MAX_LIST) repos[o.nrepos++] = optarg; break;
    case 'm': o.metadata_only = 1; break;
    case 'j': o.jobs = atoi(optarg); break;
    case 'R': o.retry_budget = atol(optarg); break;
    case 'q': o.progress = 0; break;
    case 'L': o.low_speed_bytes = atol(optarg); break;
    case 'T': o.low_speed_seconds = atol(optarg); break;
    case 'M': o.min_rate = atol(optarg); break;
    case 'A': o.rate = optarg; break;
    case 'C': census = 1; break;
    case 'S': o.select = optarg; break;
    default: cmd_crawl_usage(stderr); return 2;
    }
  }
  if (!o.out || optind != argc || o.jobs < 1 || o.jobs > 256 || o.retry_budget < 0 || o.low_speed_bytes < 0 ||
      o.low_speed_seconds < 0 || o.min_rate < 0 || (census && o.nrepos) || (o.select && o.nrepos)) {
    cmd_crawl_usage(stderr);
    return 2;
  }
  if (!o.endpoint)
    o.endpoint = getenv("HF_ENDPOINT") && *getenv("HF_ENDPOINT") ? getenv("HF_ENDPOINT") : "https://huggingface.co";
  o.token = getenv("HF_TOKEN");
  zllm_crawl_stats s;
  int rank = 0, mpi = cmd_mpi_begin(&rank);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = census ? run_census(&o, mpi, rank) : 0;
  /* a census with problems (entries skipped, named above) still selects from what it wrote */
  int census_failed = rc < 0 && zllm_error_last_code() != ZLLM_ERROR;
  if (!census_failed && (!census || o.select)) {
    int crc = mpi ? zllm_crawl_mpi(&o, &s, MPI_COMM_WORLD) : zllm_crawl(&o, &s);
    if (crc < 0 && zllm_error_last_code() != ZLLM_ERROR) {
      if (rank == 0) /* a rank where it happened has logged why */
        fprintf(stderr, "zllm crawl: %s\n", zllm_error_last());
    } else if (rank == 0)
      report(&o, &s, crc);
    rc = crc < 0 ? crc : rc;
  }
  curl_global_cleanup();
  if (mpi)
    MPI_Finalize();
  return rc < 0 ? 1 : 0;
}
