#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "tools/cmds.h"
#include "zllm/error.h"
#include "zllm/synth.h"

void cmd_mkhub_usage(FILE *out)
{
  fprintf(out, "usage: zllm mkhub --out DIR [--seed S] [--scale tiny|small|medium|bench|large]\n"
               "                  [--layout mixed|family]\n\n"
               "Writes a deterministic synthetic hub to DIR/hub (plain layout) and its ground truth to\n"
               "DIR/MANIFEST.tsv.  Same seed and scale, same bytes.  Approximate hub sizes:\n"
               "tiny ~1 MB, small ~7 MB, medium ~130 MB, bench ~3 GB, large ~24 GB (default: small).\n"
               "--layout family writes one base and seven fine-tunes of it instead of the mixed hub\n"
               "(bench: ~2.1 GB, one family holding all the bytes).\n");
}

int cmd_mkhub(int argc, char **argv)
{
  static const struct option longopts[] = {
    {"out", required_argument, NULL, 'o'}, {"seed", required_argument, NULL, 's'},
    {"scale", required_argument, NULL, 'S'}, {"layout", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0},
  };
  zllm_mkhub_options opts = ZLLM_MKHUB_OPTIONS_INIT;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:s:S:l:", longopts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 'o': opts.out = optarg; break;
    case 'S': opts.scale = optarg; break;
    case 'l': opts.layout = optarg; break;
    case 's':
      opts.seed = strtoull(optarg, &end, 0);
      if (*end || !*optarg) {
        fprintf(stderr, "zllm mkhub: --seed wants an integer, not '%s'\n", optarg);
        return 2;
      }
      break;
    default: cmd_mkhub_usage(stderr); return 2;
    }
  }
  if (!opts.out || optind != argc) {
    cmd_mkhub_usage(stderr);
    return 2;
  }
  if (zllm_mkhub(&opts) < 0) {
    fprintf(stderr, "zllm mkhub: %s\n", zllm_error_last());
    return 1;
  }
  printf("hub written to %s/hub, ground truth in %s/MANIFEST.tsv\n", opts.out, opts.out);
  return 0;
}
