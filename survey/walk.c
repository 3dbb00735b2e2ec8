/* The walk phase: rank 0 lists the hub; every rank holds the listing and
 * the flat file list the later phases deal from (survey/phases.h). */
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

/* Rank 0: the listing's repos.tsv and problem rows. */
static int hub_rows(sv_run *run)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < run->hub->n; i++) {
    const zllm_repo *r = run->hub->repos[i];
    if (!r) { /* one unreadable repo is recorded; the survey goes on */
      rc = put_problem_row(&run->problems, run->hub->ids[i], run->hub->failed[i]);
      continue;
    }
    rc = put_repo_row(&run->repos, r);
    for (size_t p = 0; rc == 0 && p < r->nproblems; p++)
      rc = put_problem_row(&run->problems, r->id, r->problems[p]);
  }
  return rc;
}

/* The flat file list the phases deal from, in hub order (every rank): it
 * borrows the listing's ids and entries, and copies nothing. */
static int list_from_hub(sv_list *l, const zllm_hub *hub)
{
  size_t n = 0;
  for (size_t i = 0; i < hub->n; i++)
    n += hub->repos[i] ? hub->repos[i]->nfiles : 0;
  if (!(l->files = calloc(n + 1, sizeof *l->files)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  l->repo_ids = hub->ids;
  l->nrepos = hub->n;
  for (size_t i = 0; i < hub->n; i++)
    for (size_t f = 0; hub->repos[i] && f < hub->repos[i]->nfiles; f++) {
      const zllm_hub_file *hf = &hub->repos[i]->files[f];
      l->files[l->nfiles++] = (sv_file){.repo = i, .path = hf->path, .size = hf->size, .kind = hf->kind, .hf = hf};
    }
  return 0;
}

/* Phase 1: rank 0 lists the hub, every rank gets the listing (the one every
 * later stage uses) and the flat file list made from it. */
int sv_walk(sv_run *run)
{
  int rc = zllm_hub_open_local_all(&run->hub, run->opts.hub, run->comm);
  if (rc < 0)
    return rc;
  rc = run->rank == 0 ? hub_rows(run) : 0;
  rc = rc ? rc : list_from_hub(&run->list, run->hub);
  return zllm_mpi_alltrue(rc == 0, run->comm) ? 0 : (rc ? rc : ZLLM_ERROR);
}

