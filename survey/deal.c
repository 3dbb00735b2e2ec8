/* Which repos a rank takes for the statistics and the pack. */
#include <stdlib.h>
#include <string.h>

#include "survey/stats_internal.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/parallel.h"


size_t st_family_of(const st_ctx *c, size_t repo)
{
  return c->run->family_root ? c->run->family_root[repo] : repo;
}

/* Each repo's work unit (the index of a repo): its family's, keyed by the
 * repo the family is named after, so a fine-tune and its base go to the
 * same rank and the base is read from its page cache; with split_big, a
 * family larger than a rank's share is split into its models (balance
 * first, locality second) and *bytes gets each unit's bytes. */
static void unit_keys(const sv_run *run, int split_big, size_t *key, uint64_t *bytes)
{
  size_t n = run->list.nrepos;
  st_ctx c = {.run = (sv_run *)run};
  for (size_t i = 0; i < n; i++)
    key[i] = st_family_of(&c, i);
  uint64_t total = 0;
  memset(bytes, 0, (n + 1) * sizeof *bytes);
  for (size_t i = 0; i < n; i++) {
    bytes[key[i]] += run->hub->info[i].bytes;
    total += run->hub->info[i].bytes;
  }
  for (size_t i = 0; split_big && i < n; i++)
    if (bytes[key[i]] > total / (uint64_t)run->size && key[i] != i)
      key[i] = i;
  memset(bytes, 0, (n + 1) * sizeof *bytes);
  for (size_t i = 0; i < n; i++)
    bytes[key[i]] += run->hub->info[i].bytes;
}

int sv_work_units(const sv_run *run, size_t **unit)
{
  size_t n = run->list.nrepos;
  uint64_t *bytes = calloc(n + 1, sizeof *bytes);
  *unit = calloc(n + 1, sizeof **unit);
  int rc = bytes && *unit ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0)
    unit_keys(run, 1, *unit, bytes);
  free(bytes);
  if (rc < 0) {
    free(*unit);
    *unit = NULL;
  }
  return rc;
}

/* Whole families to one rank, by bytes, largest first (split_big: see
 * unit_keys). */
int st_deal_repos(st_ctx *c, int split_big)
{
  sv_run *run = c->run;
  size_t n = run->list.nrepos, *key = calloc(n + 1, sizeof *key), *mine_f = NULL, nmine_f = 0;
  uint64_t *bytes = calloc(n + 1, sizeof *bytes);
  char *is_mine = calloc(n + 1, 1);
  int rc = key && bytes && is_mine && (c->mine = calloc(n + 1, sizeof *c->mine)) ? 0
                                                                                 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0)
    unit_keys(run, split_big, key, bytes);
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
