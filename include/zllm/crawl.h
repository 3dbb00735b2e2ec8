/* zllm/crawl.h - crawling a hub over HTTP (the Hugging Face Hub API).
 *
 * Lists models (/api/models, following Link rel="next"), reads each one's
 * info (/api/models/{id}: sha, createdAt, cardData.base_model, ...) and file
 * tree at that sha (/api/models/{id}/tree/{sha}?recursive=true), and
 * downloads its files (/{id}/resolve/{sha}/{path}, redirects followed) into a
 * plain-layout snapshot: OUT/<org>/<name>/<path>.  A file is written under
 * OUT/.zllm/partial/ and renamed into place only after its size and hash
 * check out (SHA-256 = the LFS oid; git's blob SHA-1 for small files); a
 * crawl killed and started again skips what is verified and resumes partial
 * files with Range.  OUT/.zllm/metadata.jsonl holds one line per model (the
 * API's metadata, and with metadata_only each safetensors file's dtypes and
 * parameter counts read from its header by two Range requests).
 * Everything from the server is untrusted: ids and paths are checked
 * (zllm/path.h), JSON is size-capped and strict, a file's listed size caps
 * its body (0 included), an error page is read for at most 2 KiB, a
 * transfer slower than the low-speed limit is ended and retried, and a
 * "next" page already fetched (a paging loop) or too many pages end that
 * listing with a problem.  A bad item is an error for that item, never for
 * the crawl.  Requests are paced inside the server's rate limits (its
 * RateLimit and RateLimit-Policy headers, or `rate`): a request that would
 * pass its class's quota waits for the window, and a 429 waits for the
 * reset without counting as a failure.  zllm_crawl is local; zllm_crawl_mpi is the same crawl shared by
 * the ranks of a communicator (COLLECTIVE).
 */
#ifndef ZLLM_CRAWL_H
#define ZLLM_CRAWL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mpi.h>

typedef struct {
  const char *endpoint;   /* e.g. https://huggingface.co (no trailing slash needed) */
  const char *token;      /* bearer token or NULL; never logged */
  const char *out;        /* snapshot directory */
  const char *author, *search, *filter; /* /api/models query, or NULL */
  long limit;             /* models at most (0: all) */
  const char **include;   /* fnmatch globs on file paths (none: every file) */
  size_t ninclude;
  const char **repos;     /* crawl these ids instead of listing (none: list) */
  size_t nrepos;
  int metadata_only;
  int jobs;               /* concurrent transfers */
  long retry_budget;      /* retries for the whole crawl */
  int progress;           /* progress line on stderr */
  /* A transfer slower than low_speed_bytes per second over low_speed_seconds
   * is ended and retried (a trickling server must not hold the crawl); 0:
   * 1024 bytes over 30 seconds. */
  long low_speed_bytes, low_speed_seconds;
  /* Every request also has a total deadline: low_speed_seconds plus the
   * bytes it may bring (a file's listed size, an API response's cap) at
   * min_rate bytes per second; 0: 65,536 B/s. */
  long min_rate;
  /* Rate limits for a server that states none: "api=N,resolvers=M[,pages=K][,window=S]"
   * (requests per window of S seconds, default 300); NULL: the server's
   * RateLimit-Policy, or none.  The ranks of a crawl split every quota. */
  const char *rate;
  /* Crawl the repos of out/census.tsv (zllm_crawl_census) that this
   * expression selects instead of listing (crawl/census_internal.h gives the
   * grammar: library=transformers,params>=1B,...); NULL: list or o->repos.
   * Over ranks the selection is dealt round-robin and each rank asks the
   * info, tree and files of its own repos, 256 at a time. */
  const char *select;
} zllm_crawl_options;

#define ZLLM_CRAWL_OPTIONS_INIT {NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, 0, 0, 8, 1000, 1, 0, 0, 0, NULL, NULL}

typedef struct {
  uint64_t repos, repos_failed, files, files_skipped, files_failed;
  uint64_t bytes_listed;   /* sizes of the selected files */
  uint64_t bytes_received; /* bodies received, all requests */
  uint64_t headers;        /* metadata_only: safetensors headers read */
  long retries;
  long throttled;          /* 429s received (the limit met anyway) */
  double rate_waited;      /* seconds requests waited for a rate-limit window (summed over ranks) */
  uint64_t problems;       /* untrusted-input rejections and failures, printed as they happen */
  unsigned ranks;          /* ranks that shared the crawl (1: zllm_crawl) */
  uint64_t rank_received_min, rank_received_max; /* bytes received by the ranks, least and most */
  uint64_t requests;                             /* requests started (all ranks) */
  uint64_t rank_requests_min, rank_requests_max; /* requests started by the ranks, least and most */
} zllm_crawl_stats;

/* Returns 0 when everything selected was crawled, ZLLM_ERROR when some items
 * failed (each reported on stderr; the rest is done), or another negative
 * code when the crawl could not run at all. */
int zllm_crawl(const zllm_crawl_options *o, zllm_crawl_stats *stats);

/* The same crawl over the ranks of `comm` (COLLECTIVE; with one rank it is
 * zllm_crawl).  Rank 0 lists the hub and reads every repo's info and tree,
 * pinning each repo to the commit it saw; the plan goes to every rank.  The
 * files are dealt by listed bytes (largest first to the rank with the fewest
 * bytes; with metadata_only, by count), and each rank fetches its own with
 * the same options: the same retries (o->retry_budget is each rank's), limits
 * and verification, placing files in the one snapshot directory, which must
 * be shared by the ranks.  Each rank appends what it verified to its own
 * ledger (OUT/.zllm/verified.RANK.tsv); rank 0 gathers what the ranks
 * learned of their files (headers, errors), writes metadata.jsonl exactly as
 * zllm_crawl would, and folds the ledgers into verified.tsv.  The stats are
 * summed over the ranks.  Every rank returns 0, or ZLLM_ERROR when some
 * items failed (on any rank; the rest is done), or another negative code
 * when the crawl could not run on some rank. */
int zllm_crawl_mpi(const zllm_crawl_options *o, zllm_crawl_stats *stats, MPI_Comm comm);

/* A census of the hub from its listing alone (COLLECTIVE over `comm`): every
 * model listed by /api/models (o->author, o->search, o->filter narrow it;
 * o->limit caps the rows), 1,000 per page with the expand[] fields (sha,
 * createdAt, lastModified, library_name, pipeline_tag, baseModels,
 * safetensors, gated, siblings, downloads, likes), one row per repo in
 * o->out/census.tsv (a header row, then the columns id, sha, created_at,
 * last_modified, library, pipeline_tag, base_relation, base_models,
 * params_total, params_by_dtype, gated, files, downloads, likes).  Memory
 * holds one page.  Rank 0 walks the listing (one cursor chain, paced by the
 * rate limit); the other ranks wait.  Resumable: after a kill at any point a
 * rerun on any number of ranks continues from the last page done
 * (o->out/.zllm/census.pages) and asks no page done again.  An entry without
 * a valid id is skipped and a field that breaks its rule left empty, each
 * named.  comm MPI_COMM_NULL: one process, no MPI.  Returns 0, ZLLM_ERROR when there were problems (the census is still
 * written), or another negative code (on every rank). */
typedef struct {
  uint64_t pages;          /* listing pages fetched by this run */
  uint64_t pages_before;   /* pages earlier runs had done (this run resumed after them) */
  uint64_t rows;           /* rows in census.tsv */
  uint64_t skipped;        /* entries skipped (no valid id, a row too long) */
  uint64_t fields_dropped; /* rows with fields left empty for breaking their rules */
  uint64_t bytes_received, problems;
  long retries, throttled;
  double rate_waited;
  int complete;            /* the listing was walked to its end */
} zllm_census_stats;
int zllm_crawl_census(const zllm_crawl_options *o, zllm_census_stats *stats, MPI_Comm comm);

/* Hub-level statistics from a metadata.jsonl, printed to `out`: models and
 * bytes per quarter (createdAt), parameters per dtype (from the headers when
 * they were read, else the API's count), how many models declare a
 * base_model and how many of those bases were crawled too. */
int zllm_crawl_summary(const char *jsonl, FILE *out);

#endif
