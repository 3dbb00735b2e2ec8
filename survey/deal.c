/* Which repos a rank takes for the statistics and the pack. */
#include <stdlib.h>
#include <string.h>

#include "survey/stats_internal.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/parallel.h"


const char *st_family_of(const st_ctx *c, size_t repo)
{
  const zllm_family_row *f = c->run->families ? zllm_family_table_find(c->run->families, c->run->list.repo_ids[repo]) : NULL;
  return f && f->family && strcmp(f->family, "-") != 0 ? f->family : c->run->list.repo_ids[repo];
}

/* Whole families to one rank, by bytes, largest first: a fine-tune and its
 * base are read by the same rank, so the base is read from its page cache.
 * A family is keyed by the index of the repo it is named after; a family
 * larger than a rank's share is dealt model by model. */
int st_deal_repos(st_ctx *c, int split_big)
{
  sv_run *run = c->run;
  size_t n = run->list.nrepos, *key = calloc(n + 1, sizeof *key), *mine_f = NULL, nmine_f = 0;
  uint64_t *bytes = calloc(n + 1, sizeof *bytes);
  char *is_mine = calloc(n + 1, 1);
  int rc = key && bytes && is_mine && (c->mine = calloc(n + 1, sizeof *c->mine)) ? 0
                                                                                 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    long k = sv_repo_index(&run->list, st_family_of(c, i));
    key[i] = k >= 0 ? (size_t)k : i;
  }
  uint64_t total = 0;
  for (size_t i = 0; rc == 0 && i < run->list.nfiles; i++) {
    bytes[key[run->list.files[i].repo]] += run->list.files[i].size;
    total += run->list.files[i].size;
  }
  /* a family bigger than a rank's share would leave the others idle: its
   * models are dealt one by one instead (balance first, locality second) */
  for (size_t i = 0; rc == 0 && split_big && i < n; i++)
    if (bytes[key[i]] > total / (uint64_t)run->size && key[i] != i)
      key[i] = i;
  memset(bytes, 0, (n + 1) * sizeof *bytes);
  for (size_t i = 0; rc == 0 && i < run->list.nfiles; i++)
    bytes[key[run->list.files[i].repo]] += run->list.files[i].size;
  rc = rc ? rc : zllm_deal_by_size(bytes, n, run->size, run->rank, &mine_f, &nmine_f);
  for (size_t k = 0; rc == 0 && k < nmine_f; k++)
    is_mine[mine_f[k]] = 1;
  /* rows are written in file order: HDF5 fills a union of hyperslabs in increasing offsets */
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (is_mine[key[i]])
      c->mine[c->nmine++] = i;
  free(is_mine);
  free(mine_f);
  free(key);
  free(bytes);
  return rc;
}

int sv_deal_families(sv_run *run, size_t **mine, size_t *nmine)
{
  st_ctx c = {.run = run};
  int rc = st_deal_repos(&c, 0);
  *mine = c.mine;
  *nmine = c.nmine;
  return rc;
}

/* Rows of the tensor table: each rank counts its repos', a sum gives all. */