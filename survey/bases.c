/* Pack's bases over the ranks (survey/bases.h). */
#include <stdlib.h>
#include <string.h>

#include "survey/bases.h"
#include "zllm/archive.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/mpi.h"

static int another_rank_failed(int rc, MPI_Comm comm, const char *what)
{
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not %s", what));
}

/* Each repo's base as a hub index (-1: none), the home block's from `block`. */
static int block_bases(const sv_run *run, const zllm_base_map *block, size_t lo, size_t hi, int64_t **out)
{
  int64_t *v = calloc(hi - lo + 1, sizeof *v);
  int rc = v ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = lo; rc == 0 && i < hi; i++) {
    const char *b = block->e[i].base; /* a repo of the hub (sv_bases_choose checks) */
    v[i - lo] = b ? zllm_hub_find(run->hub, b) : -1;
  }
  *out = v;
  return rc;
}

/* Every rank's block of bases, on every rank, into a map with the block's reasons. */
static int spread(sv_run *run, const zllm_base_map *block, size_t lo, size_t hi)
{
  int64_t *mine = NULL;
  char *all = NULL;
  size_t len = 0, n = run->hub->n;
  int rc = block_bases(run, block, lo, hi, &mine);
  rc = another_rank_failed(rc, run->comm, "list its bases");
  rc = rc ? rc : zllm_mpi_allgather_bytes((const char *)mine, (hi - lo) * sizeof *mine, &all, &len, run->comm);
  if (rc == 0 && len != n * sizeof *mine)
    rc = zllm_error_set(ZLLM_EFORMAT, "bases: %zu bytes for %zu repos", len, n);
  rc = rc ? rc : zllm_base_map_new(&run->bases, run->hub->ids, n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    int64_t b;
    memcpy(&b, all + i * sizeof b, sizeof b);
    if (b >= (int64_t)n)
      rc = zllm_error_set(ZLLM_EFORMAT, "bases: base %lld of %zu repos", (long long)b, n);
    else if (i >= lo && i < hi)
      rc = zllm_base_map_set(run->bases, i, block->e[i].base, block->e[i].why);
    else if (b >= 0)
      rc = zllm_base_map_set(run->bases, i, run->hub->ids[b], NULL);
  }
  free(mine);
  free(all);
  return another_rank_failed(rc, run->comm, "spread the bases");
}

int sv_bases_choose(sv_run *run)
{
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_base_map *block = NULL;
  size_t lo, hi;
  zllm_family_part_range(run->hub->n, run->size, run->rank, &lo, &hi);
  bo.hub = run->hub;
  bo.table = run->families; /* the block's rows: what the block's bases need */
  bo.lo = lo;
  bo.hi = hi;
  /* no `archived`: a card's base outside the hub is not taken (a fresh archive holds nothing),
   * so every base is a repo of the hub and travels as its index */
  int rc = zllm_bases_choose(&block, &bo);
  for (size_t i = lo; rc == 0 && i < hi; i++)
    if (block->e[i].base && zllm_hub_find(run->hub, block->e[i].base) < 0)
      rc = zllm_error_set(ZLLM_ERROR, "bases: %s's base %s is not in the hub", block->e[i].repo, block->e[i].base);
  rc = another_rank_failed(rc, run->comm, "choose the bases");
  rc = rc ? rc : spread(run, block, lo, hi);
  zllm_base_map_free(block);
  return rc;
}

/* ---- the reasons, after the pass -------------------------------------------------- */

typedef struct {
  uint64_t repo, asker;
} question;

static int questions_out(sv_run *run, const char *taken, size_t lo, size_t hi, zllm_buf *to)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && taken && i < run->hub->n; i++)
    if (taken[i] && (i < lo || i >= hi)) {
      question q = {i, (uint64_t)run->rank};
      rc = zllm_buf_append(&to[zllm_family_part_home(i, run->hub->n, run->size)], &q, sizeof q);
    }
  return rc;
}

/* Each question answered from the home block: the repo and its reason. */
static int answers_out(sv_run *run, const char *got, size_t len, size_t lo, size_t hi, zllm_buf *to)
{
  int rc = len % sizeof(question) ? zllm_error_set(ZLLM_EFORMAT, "bases: a torn question for reasons") : 0;
  for (size_t k = 0; rc == 0 && k < len / sizeof(question); k++) {
    question q;
    memcpy(&q, got + k * sizeof q, sizeof q);
    if (q.repo < lo || q.repo >= hi || q.asker >= (uint64_t)run->size)
      rc = zllm_error_set(ZLLM_EFORMAT, "bases: the reason of repo %llu asked of the wrong home",
                          (unsigned long long)q.repo);
    const char *why = rc == 0 ? run->bases->e[q.repo].why : NULL;
    rc = rc ? rc : zllm_buf_put_u64(&to[q.asker], q.repo);
    rc = rc ? rc : zllm_buf_put_u64(&to[q.asker], why != NULL);
    rc = rc ? rc : zllm_buf_put_str(&to[q.asker], why ? why : "");
  }
  return rc;
}

/* The answers (reasons present) into the staging archive, in one transaction. */
static int record(const sv_run *run, const char *stage, const char *got, size_t len)
{
  zllm_reader r = {got, len};
  char **repos = NULL, **why = NULL;
  size_t n = 0, cap_repos = 0, cap_why = 0;
  zllm_archive *a = NULL;
  int rc = 0;
  while (rc == 0 && r.left > 0) {
    uint64_t repo = 0, has = 0;
    char *text = NULL;
    rc = zllm_reader_u64(&r, &repo);
    rc = rc ? rc : zllm_reader_u64(&r, &has);
    rc = rc ? rc : zllm_reader_str(&r, &text);
    if (rc == 0 && repo >= run->hub->n)
      rc = zllm_error_set(ZLLM_EFORMAT, "bases: the reason of repo %llu", (unsigned long long)repo);
    rc = rc || !has ? rc : zllm_grow((void **)&repos, &cap_repos, n + 1, sizeof *repos);
    rc = rc || !has ? rc : zllm_grow((void **)&why, &cap_why, n + 1, sizeof *why);
    if (rc == 0 && has) {
      repos[n] = run->hub->ids[repo]; /* borrowed */
      why[n++] = text;
      text = NULL;
    }
    free(text);
  }
  rc = rc || !n ? rc : zllm_archive_open(&a, stage, 1);
  rc = rc || !a ? rc : zllm_archive_defer_sync(a);
  rc = rc || !a ? rc : zllm_archive_set_base_reasons(a, repos, why, n);
  rc = rc || !a ? rc : zllm_archive_sync(a);
  zllm_archive_close(a);
  for (size_t k = 0; k < n; k++)
    free(why[k]);
  free(why);
  free(repos);
  return rc;
}

int sv_bases_explain(sv_run *run, const char *stage, const char *taken)
{
  zllm_buf *to = calloc((size_t)run->size, sizeof *to);
  char *got = NULL;
  size_t len = 0, lo, hi;
  zllm_family_part_range(run->hub->n, run->size, run->rank, &lo, &hi);
  int rc = to ? questions_out(run, taken, lo, hi, to) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_test_fail("reasons", run->rank);
  rc = another_rank_failed(rc, run->comm, "ask for the bases' reasons");
  rc = rc ? rc : zllm_mpi_alltoall_bufs(to, &got, &len, run->comm);
  rc = rc ? rc : answers_out(run, got, len, lo, hi, to);
  free(got);
  got = NULL;
  rc = another_rank_failed(rc, run->comm, "answer for the bases' reasons");
  rc = rc ? rc : zllm_mpi_alltoall_bufs(to, &got, &len, run->comm);
  rc = rc ? rc : record(run, stage, got, len);
  free(got);
  for (int r = 0; to && r < run->size; r++)
    zllm_buf_free(&to[r]);
  free(to);
  return another_rank_failed(rc, run->comm, "record the bases' reasons");
}
