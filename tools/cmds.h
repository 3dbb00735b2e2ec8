/* The subcommands of `zllm`: each is a thin main over libzllm. */
#ifndef ZLLM_TOOLS_CMDS_H
#define ZLLM_TOOLS_CMDS_H

#include <stdio.h>

typedef struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
  void (*usage)(FILE *out);
} zllm_cmd;

int cmd_inspect(int argc, char **argv);
void cmd_inspect_usage(FILE *out);
int cmd_mkhub(int argc, char **argv);
void cmd_mkhub_usage(FILE *out);
int cmd_hub(int argc, char **argv);
void cmd_hub_usage(FILE *out);

int cmd_pack(int argc, char **argv);
void cmd_pack_usage(FILE *out);
int cmd_restore(int argc, char **argv);
void cmd_restore_usage(FILE *out);
int cmd_cat_tensor(int argc, char **argv);
void cmd_cat_tensor_usage(FILE *out);
int cmd_verify(int argc, char **argv);
void cmd_verify_usage(FILE *out);
int cmd_crawl(int argc, char **argv);
int cmd_serve(int argc, char **argv);
void cmd_serve_usage(FILE *out);
void cmd_crawl_usage(FILE *out);
int cmd_cluster(int argc, char **argv);
void cmd_cluster_usage(FILE *out);
int cmd_ls(int argc, char **argv);
void cmd_ls_usage(FILE *out);

/* Under mpirun/mpiexec or srun (the launchers' environment says so): MPI
 * started, *rank set, logging told the rank, returns 1 (the command calls
 * MPI_Finalize at its end).  Alone: returns 0, *rank = 0, and the command
 * runs without MPI (no singleton start-up). */
int cmd_mpi_begin(int *rank);

/* True when argv holds -h or --help before any "--". */
int cmd_wants_help(int argc, char **argv);

#endif
