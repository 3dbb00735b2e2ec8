/* The crawl phase of a survey given an endpoint (survey/phases.h). */
#include "survey/phases.h"
#include "zllm/crawl.h"
#include "zllm/error.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

/* The ranks crawl the endpoint into OUT/hub together (zllm_crawl_mpi: rank 0
 * lists, each rank downloads its share); items that fail are reported and
 * left out, and the survey goes on with what was crawled. */
int sv_crawl(sv_run *run)
{
  zllm_crawl_options co = run->opts.crawl;
  zllm_crawl_stats cs;
  run->crawled_hub = zllm_path_join(run->opts.out, "hub");
  if (!zllm_mpi_alltrue(run->crawled_hub != NULL, run->comm))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  co.endpoint = run->opts.endpoint;
  co.out = run->crawled_hub;
  co.progress = !run->opts.quiet;
  int rc = 0;
  if (run->opts.census) {
    zllm_census_stats ks;
    rc = zllm_crawl_census(&co, &ks, run->comm);
    if (rc < 0 && zllm_error_last_code() == ZLLM_ERROR) {
      if (run->rank == 0)
        ZLLM_WARN("census: %s; going on with the rows written", zllm_error_last());
      rc = 0;
    }
    if (rc == 0 && run->rank == 0)
      ZLLM_INFO("census: %llu repos from %llu listing pages (%llu done by an earlier run), %.0f s waiting for "
                "rate-limit windows, %ld answers of 429", (unsigned long long)ks.rows,
                (unsigned long long)(ks.pages + ks.pages_before), (unsigned long long)ks.pages_before,
                ks.rate_waited, ks.throttled);
    if (rc < 0 || !co.select) { /* the census alone: no files to crawl */
      run->opts.hub = run->crawled_hub;
      return rc;
    }
  }
  rc = zllm_crawl_mpi(&co, &cs, run->comm);
  if (rc < 0 && zllm_error_last_code() == ZLLM_ERROR) {
    if (run->rank == 0)
      ZLLM_WARN("crawl: %s; surveying what was crawled", zllm_error_last());
    rc = 0;
  }
  if (rc == 0 && run->rank == 0)
    ZLLM_INFO("crawl: %llu files over %u ranks (%llu already verified), %.1f MB received, each rank %.1f-%.1f MB",
              (unsigned long long)cs.files, cs.ranks, (unsigned long long)cs.files_skipped,
              (double)cs.bytes_received / 1e6, (double)cs.rank_received_min / 1e6,
              (double)cs.rank_received_max / 1e6);
  run->opts.hub = run->crawled_hub;
  return rc;
}

