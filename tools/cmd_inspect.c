#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/cmds.h"
#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/hub.h"

void cmd_inspect_usage(FILE *out)
{
  fprintf(out, "usage: zllm inspect FILE|REPO_DIR...\n\n"
               "For each file: its SHA-256 (the Hub's LFS oid) and, for a .safetensors file, every\n"
               "tensor's name, dtype, shape, bytes and XXH3-128.  A REPO_DIR is inspected file by file.\n"
               "Only headers are read into memory; data is streamed once.\n"
               "A malformed file prints one line on stderr naming the file and the broken rule;\n"
               "the others are still inspected, and the exit status is 1.\n");
}

static int inspect_dir(const char *dir)
{
  zllm_repo *repo = NULL;
  int bad = 0;
  if (zllm_repo_open_dir(&repo, dir) < 0) {
    fprintf(stderr, "zllm inspect: %s\n", zllm_error_last());
    return 1;
  }
  for (size_t i = 0; i < repo->nproblems; i++)
    fprintf(stderr, "zllm inspect: %s\n", repo->problems[i]);
  for (size_t i = 0; i < repo->nfiles; i++) {
    char display[2048];
    snprintf(display, sizeof display, "%s/%s", dir, repo->files[i].path);
    if (zllm_inspect_file(stdout, repo->files[i].local_path, display) < 0) {
      fprintf(stderr, "zllm inspect: %s\n", zllm_error_last());
      bad = 1;
    }
  }
  zllm_repo_free(repo);
  return bad;
}

int cmd_inspect(int argc, char **argv)
{
  if (argc < 2) {
    cmd_inspect_usage(stderr);
    return 2;
  }
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      bad |= inspect_dir(argv[i]);
    } else if (zllm_inspect_file(stdout, argv[i], argv[i]) < 0) {
      fprintf(stderr, "zllm inspect: %s\n", zllm_error_last());
      bad = 1;
    }
  }
  fflush(stdout);
  return bad;
}
