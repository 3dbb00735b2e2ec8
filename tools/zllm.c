/* zllm: the command-line front end.  `zllm help`, `zllm CMD --help`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "tools/cmds.h"
#include "zllm/log.h"

static const zllm_cmd commands[] = {
  {"inspect", "print a safetensors file's tensors and any file's SHA-256", cmd_inspect, cmd_inspect_usage},
  {"hub", "list the repos of a hub snapshot with their cards and configs", cmd_hub, cmd_hub_usage},
  {"mkhub", "generate a deterministic synthetic hub with ground truth", cmd_mkhub, cmd_mkhub_usage},
  {"crawl", "download a hub (or its metadata) over the Hugging Face Hub HTTP API", cmd_crawl, cmd_crawl_usage},
  {"cluster", "group models into families and choose bases by bitwise similarity", cmd_cluster, cmd_cluster_usage},
  {"pack", "ingest a hub snapshot into a deduplicated BitX archive", cmd_pack, cmd_pack_usage},
  {"restore", "write repos back from an archive, byte-identical and SHA-256 checked", cmd_restore, cmd_restore_usage},
  {"cat-tensor", "write one tensor's raw bytes from an archive", cmd_cat_tensor, cmd_cat_tensor_usage},
  {"verify", "check every blob and every file's SHA-256 in an archive", cmd_verify, cmd_verify_usage},
  {"ls", "list an archive's files, stored bytes and methods", cmd_ls, cmd_ls_usage},
  {"serve", "serve an archive read-only as a Hugging Face Hub mirror (HF_ENDPOINT)", cmd_serve, cmd_serve_usage},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

/* Started by mpirun/mpiexec or srun: the launchers' environment says so. */
static int launched_by_mpi(void)
{
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    if (getenv(vars[i]))
      return 1;
  return 0;
}

int cmd_mpi_begin(int *rank)
{
  int inited = 0;
  *rank = 0;
  if (!launched_by_mpi())
    return 0;
  MPI_Initialized(&inited);
  if (!inited)
    MPI_Init(NULL, NULL);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  zllm_log_init(*rank);
  return 1;
}

int cmd_wants_help(int argc, char **argv)
{
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return 1;
  return 0;
}

static void usage(FILE *out)
{
  fprintf(out, "usage: zllm COMMAND [ARGS...]\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "  %-10s %s\n", "help", "show this list, or `zllm help COMMAND` for one command");
  fprintf(out, "\nThe MPI survey job is a separate program: mpirun -n N zllm-survey --help\n"
               "Environment: ZLLM_LOG=error|warn|info|debug sets the log level.\n");
}

static const zllm_cmd *find(const char *name)
{
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

int main(int argc, char **argv)
{
  zllm_log_init(-1);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    const zllm_cmd *c = argc > 2 ? find(argv[2]) : NULL;
    if (argc > 2 && !c) {
      fprintf(stderr, "zllm: unknown command '%s'\n", argv[2]);
      return 2;
    }
    c ? c->usage(stdout) : usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("zllm %s\n", ZLLM_VERSION);
    return 0;
  }
  const zllm_cmd *c = find(argv[1]);
  if (!c) {
    fprintf(stderr, "zllm: unknown command '%s' (try `zllm help`)\n", argv[1]);
    return 2;
  }
  if (cmd_wants_help(argc - 1, argv + 1)) {
    c->usage(stdout);
    return 0;
  }
  return c->run(argc - 1, argv + 1);
}
