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
  free(l->first); /* the ids are the hub's */
  memset(l, 0, sizeof *l);
}

long sv_repo_index(const sv_list *l, const char *id)
{
  return zllm_strv_find_sorted(l->repo_ids, l->nrepos, id);
}

void sv_repo_files(const sv_list *l, size_t repo, size_t *lo, size_t *hi)
{
  *lo = (size_t)l->first[repo];
  *hi = (size_t)l->first[repo + 1];
}

size_t sv_file_repo(const sv_list *l, size_t file)
{
  size_t a = 0, b = l->nrepos; /* the last repo whose first file is <= file (past the empty ones) */
  while (b - a > 1) {
    size_t m = a + (b - a) / 2;
    if (l->first[m] <= file)
      a = m;
    else
      b = m;
  }
  return a;
}
