/* The walk phase: the hub listed over the ranks, split (zllm/hub.h); every
 * rank holds each repo's summary and where its files are numbered from
 * (survey/phases.h). */
#include <stdio.h>
#include <stdlib.h>

#include "survey/phases.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/mpi.h"

/* "a,b,c" in a TSV cell, or "-" for an empty list. */
static int put_list(zllm_buf *b, char **v, size_t n)
{
  int rc = n ? 0 : zllm_buf_puts(b, "-");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = i ? zllm_buf_puts(b, ",") : 0;
    rc = rc ? rc : zllm_buf_put_tsv(b, v[i]);
  }
  return rc;
}

static int put_repo_row(zllm_buf *b, const zllm_repo *r)
{
  unsigned long long bytes = 0;
  for (size_t i = 0; i < r->nfiles; i++)
    bytes += r->files[i].size;
  int rc = zllm_buf_put_tsv(b, r->id);
  rc = rc ? rc : zllm_buf_printf(b, "\t%s\t%zu\t%llu\t", r->revision ? r->revision : "-", r->nfiles, bytes);
  rc = rc ? rc : put_list(b, r->config ? r->config->architectures : NULL, r->config ? r->config->narch : 0);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, r->config && r->config->torch_dtype ? r->config->torch_dtype : "-");
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : put_list(b, r->card ? r->card->base_models : NULL, r->card ? r->card->nbase : 0);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, r->card && r->card->license ? r->card->license : "-");
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, r->card && r->card->library_name ? r->card->library_name : "-");
  return rc ? rc : zllm_buf_printf(b, "\t%zu\n", r->nproblems);
}

static int put_problem_row(zllm_buf *b, const char *repo, const char *msg)
{
  int rc = zllm_buf_put_tsv(b, repo);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, msg);
  return rc ? rc : zllm_buf_puts(b, "\n");
}

/* The walk's rows of one repo of this rank's block: its repos.tsv row and
 * its listing's problems (zllm_hub_open_local_split calls it). */
static int repo_rows(void *ctx, size_t i, const char *id, const zllm_repo *r, const char *why)
{
  sv_run *run = ctx;
  (void)i;
  if (!r) /* one unreadable repo is recorded; the survey goes on */
    return put_problem_row(&run->problems, id, why);
  int rc = put_repo_row(&run->repos, r);
  for (size_t p = 0; rc == 0 && p < r->nproblems; p++)
    rc = put_problem_row(&run->problems, r->id, r->problems[p]);
  return rc;
}

/* Per repo, its first file's index in hub order (files are sorted within a
 * repo, repos by id): what every phase numbers files by. */
static int list_from_hub(sv_list *l, const zllm_hub *hub)
{
  if (!(l->first = calloc(hub->n + 1, sizeof *l->first)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  l->repo_ids = hub->ids;
  l->nrepos = hub->n;
  for (size_t i = 0; i < hub->n; i++)
    l->first[i + 1] = l->first[i] + hub->info[i].nfiles;
  l->nfiles = l->first[hub->n];
  return 0;
}

/* Phase 1: the hub listed over the ranks (each a block of repos, into a
 * store under OUT/.survey: zllm/hub.h); each rank makes its block's
 * repos.tsv and listing problem rows, and every rank gets every repo's
 * summary, which numbers the files. */
int sv_walk(sv_run *run)
{
  char dir[4096]; /* no allocation before the collective: every rank takes part */
  snprintf(dir, sizeof dir, "%s/%s", run->opts.out, SV_SPILL_DIR);
  int rc = zllm_hub_open_local_split(&run->hub, run->opts.hub, dir, repo_rows, run, run->comm);
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    return rc ? rc : zllm_error_set(ZLLM_EMPI, "walk: another rank failed");
  rc = list_from_hub(&run->list, run->hub);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}
