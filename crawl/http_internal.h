/* Private to crawl/: a batch HTTP engine over libcurl's multi interface.
 *
 * zl_http_run() runs a batch of requests, at most `jobs` at a time over
 * reused connections, each to memory (capped) or appended to a file (resumed
 * with Range after a failure).  429 (honouring Retry-After), 408 and 5xx,
 * resets, short bodies and timeouts are retried with capped exponential
 * backoff and jitter, within a per-request attempt limit and a retry budget
 * shared by the whole crawl; after that the request fails with its reason and
 * the batch goes on.  Requests are paced inside the server's rate limits
 * (zl_pacer): one that would pass its class's quota waits for the window, and
 * a 429 that comes anyway waits for the reset without spending a retry.  Redirects are followed (at most 5, http/https only).
 * The bearer token goes in a header only: it is never part of a URL, a log
 * line or a message. */
#ifndef ZLLM_CRAWL_HTTP_INTERNAL_H
#define ZLLM_CRAWL_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "crawl/ratelimit_internal.h"
#include "zllm/buf.h"
#include "zllm/log.h"

typedef enum { ZL_SINK_MEM, ZL_SINK_FILE } zl_sink;

#define ZL_LOW_SPEED_BYTES 1024L /* bytes per second, averaged over ... */
#define ZL_LOW_SPEED_SECONDS 30L /* ... this many seconds */
#define ZL_MIN_RATE 65536L       /* a request's deadline: its bytes at this rate, plus the low-speed time */

typedef struct zl_req {
  /* what to fetch */
  char *url;
  zl_sink sink;
  char *path;            /* ZL_SINK_FILE: the partial file, appended to */
  uint64_t expect_size;  /* ZL_SINK_FILE: the size the listing promises, a hard cap (0 too) */
  size_t max_body;       /* ZL_SINK_MEM: larger responses are an error */
  int has_range;         /* ZL_SINK_MEM: bytes range_lo..range_hi only */
  uint64_t range_lo, range_hi;
  void *user;
  /* what came back */
  int ok;
  long status;
  zllm_buf body;         /* ZL_SINK_MEM */
  char *next_url;        /* Link: <...>; rel="next" */
  char err[512];
  uint64_t have;         /* ZL_SINK_FILE: bytes in the file */
  int attempts;
  /* engine state */
  double not_before, retry_after;
  char *rl_value, *rl_policy; /* the answer's RateLimit and RateLimit-Policy fields */
  int free_waits;        /* 429s waited out without spending a retry */
  int held;              /* waiting for its rate-limit window, not for a retry */
  int fd, truncated, bad_range, aborted, err_body_cut;
  long deadline_ms;      /* this attempt's total time */
  uint64_t range_start;  /* Content-Range start of the current response */
  char abort_why[256];
  void *easy;
  void *engine;          /* the zl_http running it */
  struct curl_slist *headers;
} zl_req;

typedef struct {
  char *auth_header;     /* "Authorization: Bearer ..." or NULL */
  int jobs;
  int max_attempts;
  long retries_left;     /* the crawl's budget */
  long retries_used;
  double backoff_base, backoff_cap, retry_after_cap;
  long low_speed_bytes, low_speed_seconds; /* a slower transfer is ended and retried */
  long min_rate;         /* bytes per second a whole transfer must average (its deadline) */
  char *origin;          /* "scheme://host[:port]" of the endpoint: API answers come from there only */
  zl_pacer pacer;        /* the server's rate limits (crawl/ratelimit_internal.h) */
  size_t held[ZL_RL_NCLASSES]; /* requests waiting for their class's window now */
  double held_since;     /* the engine's clock when the held counts were last added to the waits */
  zl_rl_class phase_class; /* the class of the phase's requests (its ETA under the limit) */
  uint64_t bytes_received;
  /* progress on stderr (zllm/log.h) */
  int progress, tty;
  char phase[48];
  size_t items_total, items_done;
  uint64_t bytes_total, bytes_done, bytes_base;
  zllm_progress pg;
  /* called as each request finishes (ok or failed), before the batch ends:
   * a download is verified and put in place while others still run */
  void (*on_done)(zl_req *r, void *ctx);
  void *done_ctx;
  /* told the body bytes received since the last call (a job-wide progress
   * count over ranks); bytes_told: what it was told so far */
  void (*on_bytes)(uint64_t n, void *ctx);
  void *bytes_ctx;
  uint64_t bytes_told;
} zl_http;

/* The engine's clock: monotonic seconds. */
double zl_http_now(void);
int zl_http_init(zl_http *h, const char *token, int jobs, long retry_budget, int progress);
void zl_http_cleanup(zl_http *h);
/* Starts a progress phase: `items` requests, `bytes` expected (0: unknown). */
void zl_http_phase(zl_http *h, const char *phase, size_t items, uint64_t bytes);
/* Runs every request to completion (ok, or failed with err).  Returns 0, or a
 * negative code only when the engine itself cannot go on (out of memory). */
int zl_http_run(zl_http *h, zl_req **reqs, size_t n);
void zl_req_reset(zl_req *r); /* frees the results, keeps the request */
void zl_req_free(zl_req *r);  /* frees everything; accepts NULL */

#endif
