/* zllm serve: an archive as a read-only Hugging Face Hub mirror. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/cmds.h"
#include "zllm/error.h"
#include "zllm/serve.h"

void cmd_serve_usage(FILE *out)
{
  fprintf(out,
          "usage: zllm serve ARCHIVE [--listen HOST:PORT] [--threads N] [--memory MiB] [--token-file F] [--quiet]\n"
          "                  [--timeout SECONDS] [--request-timeout SECONDS] [--max-connections N] [--per-ip N]\n"
          "                  [--page-size N]\n\n"
          "Serves the archive read-only over HTTP/1.1 as a Hugging Face Hub mirror: every Hub client\n"
          "reads from it with HF_ENDPOINT=http://HOST:PORT (huggingface_hub, huggingface-cli download,\n"
          "transformers, the JS client @huggingface/hub, zllm crawl --endpoint).  Files are decoded as\n"
          "they are sent; a whole file is checked against its SHA-256 as it streams and the transfer is\n"
          "broken off (never completed) on a mismatch.  The archive may be packed into meanwhile.\n\n"
          "Endpoints (a repo is ORG/NAME; REV is main, HEAD or the repo's sha):\n"
          "  GET /api/models[?search=S&author=A&limit=N]        models, paged by Link: rel=\"next\"\n"
          "  GET /api/models/REPO[/revision/REV]                 id, sha, siblings\n"
          "  GET /api/models/REPO/tree/REV[/PATH][?recursive=true]  files and folders, paged: oid (git\n"
          "                                                      blob or tree id), size, lfs.oid (SHA-256)\n"
          "  POST /api/models/REPO/paths-info/REV                the same for given paths (JSON or form)\n"
          "  GET|HEAD /REPO/resolve/REV/PATH                     the file: ETag, X-Repo-Commit,\n"
          "                                                      X-Linked-Size/-Etag (LFS), Range requests\n"
          "The sha is the commit recorded at ingest (a crawled hub, an HF cache), else a SHA-1 of the\n"
          "repo's file paths and SHA-256s.\n\n"
          "Options: --listen (default 127.0.0.1:8080; port 0 picks a free one; another address than\n"
          "loopback without a token gets a warning), --threads (worker threads, default 2; each has its\n"
          "own archive handle), --token-file (every request must send 'Authorization: Bearer' with the\n"
          "file's first line, else 401; the token is never logged), --timeout (an idle connection is\n"
          "closed after this many seconds, default 30), --request-timeout (a request's headers and body\n"
          "must be in within this many seconds of its connection's start, or of --timeout after its\n"
          "previous response, default 10; past half --max-connections waiting for requests, the\n"
          "longest waiting are closed so new\n"
          "clients find room), --max-connections (default 64) and --per-ip\n"
          "(default 16), --memory (decoded bytes held at most, default 512 MiB, at least 20; a download\n"
          "holds up to four 4 MiB slices, and one that would not fit gets 503 with Retry-After),\n"
          "--page-size (entries per page of models and trees, default 1000), --quiet (no access log;\n"
          "otherwise one line per request on stderr: client, method, target, status, bytes, ms).\n"
          "Stops on SIGINT or SIGTERM, printing what its slice store decoded and refused.\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
  char *end = NULL;
  unsigned long v = strtoul(s, &end, 10);
  if (!*s || *end || s[0] == '-' || v > max)
    return -1;
  *out = (unsigned)v;
  return 0;
}

int cmd_serve(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"listen", required_argument, NULL, 'l'},  {"threads", required_argument, NULL, 't'},
    {"token-file", required_argument, NULL, 'k'}, {"quiet", no_argument, NULL, 'q'},
    {"timeout", required_argument, NULL, 'T'}, {"max-connections", required_argument, NULL, 'c'},
    {"per-ip", required_argument, NULL, 'p'},  {"page-size", required_argument, NULL, 'P'},
    {"request-timeout", required_argument, NULL, 'R'}, {"memory", required_argument, NULL, 'm'},
    {NULL, 0, NULL, 0},
  };
  zllm_serve_options o = ZLLM_SERVE_OPTIONS_INIT;
  unsigned threads = 2;
  int c, bad = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'l': o.listen = optarg; break;
    case 't': bad |= parse_uint(optarg, 256, &threads) < 0 || threads == 0; break;
    case 'k': o.token_file = optarg; break;
    case 'q': o.quiet = 1; break;
    case 'T': bad |= parse_uint(optarg, 86400, &o.timeout) < 0 || o.timeout == 0; break;
    case 'c': bad |= parse_uint(optarg, 100000, &o.max_connections) < 0 || o.max_connections == 0; break;
    case 'p': bad |= parse_uint(optarg, 100000, &o.per_ip) < 0 || o.per_ip == 0; break;
    case 'P': bad |= parse_uint(optarg, 100000, &o.page_size) < 0 || o.page_size == 0; break;
    case 'R': bad |= parse_uint(optarg, 86400, &o.request_timeout) < 0 || o.request_timeout == 0; break;
    case 'm': bad |= parse_uint(optarg, 1u << 20, &o.memory_mib) < 0 || o.memory_mib < 20; break;
    default: bad = 1; break;
    }
  }
  if (bad || optind != argc - 1) {
    cmd_serve_usage(stderr);
    return 2;
  }
  o.archive = argv[optind];
  o.threads = (int)threads;
  if (zllm_serve_run(&o) < 0) {
    fprintf(stderr, "zllm serve: %s\n", zllm_error_last());
    return 1;
  }
  return 0;
}
