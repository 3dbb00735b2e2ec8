/* Private to crawl/: the crawl job's state, shared by the one-process crawl
 * (crawl.c) and the crawl over ranks (crawl_ranks.c).
 *
 * A crawl is: cr_begin (state directory, the verified ledgers, the HTTP
 * engine) -> cr_plan (the listing, each repo's info and file tree: the
 * repos pinned to their commits) -> cr_fetch (downloads, or safetensors
 * headers with metadata_only, of every file not marked `other`) ->
 * cr_write_metadata -> cr_end.  Over ranks, rank 0 plans, the plan is
 * broadcast, and each rank fetches its share. */
#ifndef ZLLM_CRAWL_CRAWL_INTERNAL_H
#define ZLLM_CRAWL_CRAWL_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "crawl/http_internal.h"
#include "zllm/crawl.h"

#define CR_LEDGER "verified.tsv" /* the one-process ledger, and where ranks' ledgers are folded */

/* Pages already fetched, by a 64-bit hash of their URL: a "next" link back
 * to any of them is a paging loop, not more data.  A hash set: a census
 * walks thousands of pages. */
typedef struct {
  uint64_t *h;
  size_t n, cap;
} page_seen;
uint64_t cr_page_hash(const char *url);
/* Adds a page hash; 1 when it was there already (or out of memory). */
int cr_page_seen_hash(page_seen *s, uint64_t h);

typedef struct {
  char *path;
  uint64_t size;
  char sha256[65]; /* the LFS oid, or "" */
  char oid[41];    /* git blob SHA-1 */
  uint64_t header_len;
  size_t ntensors;
  json_t *dtypes;  /* {dtype: parameters}, from the header */
  char *error;
  int other;       /* another rank fetches it (a crawl over ranks) */
} cr_file;

typedef struct {
  char *id;
  char sha[41];
  json_t *meta;    /* the model info fields kept for metadata.jsonl */
  cr_file *files;
  size_t nfiles;
  char *error;     /* why the repo failed, or NULL */
  char *tree_next; /* the next tree page */
  page_seen tree_pages;
} cr_repo;

typedef struct {
  const zllm_crawl_options *o;
  zllm_crawl_stats *s;
  zl_http http;
  char *endpoint;  /* without a trailing slash */
  char *state;     /* OUT/.zllm */
  cr_repo *repos;
  size_t nrepos, repos_cap;
  page_seen repo_ids; /* hashes of the repos' ids */
  char **verified; /* sorted "repo\tpath\tsize\tmtime\thash" lines */
  size_t nverified;
  const char *ledger; /* the file under state/ that verified files are appended to */
} crawl_ctx;

char *cr_list_url(const zllm_crawl_options *o, const char *prefix, const char *extra);
int cr_begin(crawl_ctx *c, const zllm_crawl_options *o, zllm_crawl_stats *s, const char *ledger);
int cr_plan(crawl_ctx *c);
/* The plan of the repos `ids` (a batch of a selection): each one's info and
 * tree; cr_clear_repos forgets them once fetched and written. */
int cr_plan_repos(crawl_ctx *c, char *const *ids, size_t n);
void cr_clear_repos(crawl_ctx *c);
/* A repo's metadata.jsonl line (without '\n'), or NULL (out of memory). */
char *cr_metadata_line(const cr_repo *r);
/* A crawl of the census rows o->select picks (crawl/selected.c): the
 * selection dealt over `size` ranks (comm MPI_COMM_NULL when size is 1). */
int cr_crawl_selected(const zllm_crawl_options *o, zllm_crawl_stats *s, int rank, int size, MPI_Comm comm);
int cr_fetch(crawl_ctx *c);
int cr_write_metadata(crawl_ctx *c);
/* The ranks' ledgers (verified.RANK.tsv) appended to verified.tsv and removed. */
int cr_fold_ledgers(const crawl_ctx *c);
/* Fills the stats the job owns (repos, failed repos, bytes received,
 * retries) and frees everything. */
void cr_end(crawl_ctx *c);
void cr_problem(crawl_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
