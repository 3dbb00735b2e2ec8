/* The run state's accessors (survey/run.h): what every phase may use. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "survey/run.h"
#include "zllm/io.h"
#include "zllm/json.h"

const char *const sv_phase_names[SV_NPHASES] = {"crawl", "walk", "scan", "cluster", "pass", "pass-wait", "merge",
                                                  "report", "baselines", "stats"};

void sv_phase_end(sv_run *run, int k)
{
  double t = MPI_Wtime();
  uint64_t b = zllm_io_bytes_read();
  run->rank_seconds[k] += t - run->mark_seconds;
  run->rank_bytes[k] += b - run->mark_bytes;
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    run->rank_peak_rss[k] = (uint64_t)ru.ru_maxrss * 1024; /* Linux: KiB */
  run->mark_seconds = t;
  run->mark_bytes = b;
}

void sv_list_free(sv_list *l)
{
  free(l->files); /* the strings are the listing's */
  memset(l, 0, sizeof *l);
}

long sv_repo_index(const sv_list *l, const char *id)
{
  return zllm_strv_find_sorted(l->repo_ids, l->nrepos, id);
}

static size_t first_file_of(const sv_list *l, size_t repo)
{
  size_t a = 0, b = l->nfiles;
  while (a < b) {
    size_t m = (a + b) / 2;
    if (l->files[m].repo < repo)
      a = m + 1;
    else
      b = m;
  }
  return a;
}

void sv_repo_files(const sv_list *l, size_t repo, size_t *lo, size_t *hi)
{
  *lo = first_file_of(l, repo);
  *hi = first_file_of(l, repo + 1);
}

