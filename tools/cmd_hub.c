#include <stdio.h>
#include <string.h>

#include "tools/cmds.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/json.h"

void cmd_hub_usage(FILE *out)
{
  fprintf(out, "usage: zllm hub DIR [--files]\n\n"
               "Lists the model repos of a hub snapshot: the plain layout DIR/<org>/<name>/ and the\n"
               "Hugging Face cache layout DIR/models--<org>--<name>/snapshots/<rev>/ (e.g. DIR =\n"
               "$HF_HUB_CACHE or ~/.cache/huggingface/hub).  One block per repo: revision, files,\n"
               "config (architectures, torch_dtype), card (base_model, license, library_name, tags),\n"
               "shard index, and any problem found.  --files lists every file with its kind.\n");
}

/* Names and card values come from the hub: a newline or tab in one must not
 * split a line or a column (escaped as \xNN). */
static const char *esc(char *buf, size_t cap, const char *s)
{
  zllm_escape_text(buf, cap, s ? s : "-");
  return buf;
}

static void print_list(const char *label, char **v, size_t n)
{
  char e[1024];
  printf("  %-14s", label);
  for (size_t i = 0; i < n; i++)
    printf("%s%s", i ? ", " : "", esc(e, sizeof e, v[i]));
  printf("%s\n", n ? "" : "-");
}

static void print_repo(const zllm_repo *r, int files)
{
  unsigned long long bytes = 0;
  char e[4096], e2[1024];
  for (size_t i = 0; i < r->nfiles; i++)
    bytes += r->files[i].size;
  printf("%s\n  %-14s%s\n  %-14s%zu (%llu bytes)\n", r->id, "revision", esc(e, sizeof e, r->revision), "files",
         r->nfiles, bytes);
  if (r->config) {
    print_list("architectures", r->config->architectures, r->config->narch);
    printf("  %-14s%s\n", "torch_dtype", esc(e, sizeof e, r->config->torch_dtype));
  }
  if (r->card) {
    print_list("base_model", r->card->base_models, r->card->nbase);
    printf("  %-14s%s\n  %-14s%s\n", "license", esc(e, sizeof e, r->card->license), "library_name",
           esc(e2, sizeof e2, r->card->library_name));
    print_list("tags", r->card->tags, r->card->ntags);
  }
  if (r->index)
    printf("  %-14s%zu tensors in %zu shards\n", "shard index", r->index->n, r->index->nfiles);
  for (size_t i = 0; files && i < r->nfiles; i++)
    printf("    %-14s %12llu  %s\n", zllm_file_kind_name(r->files[i].kind), (unsigned long long)r->files[i].size,
           esc(e, sizeof e, r->files[i].path));
  for (size_t i = 0; i < r->nproblems; i++)
    printf("  problem       %s\n", esc(e, sizeof e, r->problems[i]));
}

int cmd_hub(int argc, char **argv)
{
  const char *dir = NULL;
  int files = 0, rc = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--files") == 0)
      files = 1;
    else if (!dir)
      dir = argv[i];
    else {
      cmd_hub_usage(stderr);
      return 2;
    }
  }
  if (!dir) {
    cmd_hub_usage(stderr);
    return 2;
  }
  zllm_source *src = NULL;
  char **ids = NULL;
  size_t n = 0;
  if (zllm_source_open_local(&src, dir) < 0 || zllm_source_list_repos(src, &ids, &n) < 0) {
    fprintf(stderr, "zllm hub: %s\n", zllm_error_last());
    zllm_source_free(src);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    zllm_repo *r = NULL;
    if (zllm_repo_load(&r, src, ids[i]) < 0) {
      fprintf(stderr, "zllm hub: %s\n", zllm_error_last());
      rc = 1;
      continue;
    }
    print_repo(r, files);
    zllm_repo_free(r);
  }
  printf("%zu repos\n", n);
  zllm_strv_free(ids, n);
  zllm_source_free(src);
  return rc;
}
