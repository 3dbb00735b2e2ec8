/* Private to crawl/: pacing requests inside a server's rate limits.
 *
 * The Hugging Face Hub counts requests per client in fixed windows (5
 * minutes), in classes: "api" (/api/...), "resolvers" (/resolve/...) and
 * "pages".  Every answer says where the client stands, in the IETF draft's
 * headers (draft-ietf-httpapi-ratelimit-headers, as the Hub's docs give
 * them):
 *
 *   RateLimit: "api";r=REMAINING;t=SECONDS_TO_RESET
 *   RateLimit-Policy: "fixed window";"api";q=QUOTA;w=WINDOW_SECONDS
 *
 * A pacer keeps, per class, the quota and window (from the policy header,
 * else from --rate), this process's share of the quota (the ranks of a
 * crawl split it evenly, so together they never pass it), what it spent in
 * the current window, and the server's last word on what is left and when
 * the window ends.  A request starts only while the share and the server's
 * remainder allow; otherwise it waits for the window to end, instead of
 * meeting a 429.  A 429 that comes anyway waits for the reset the server
 * names (capped at one window: a server that lies about t cannot hold the
 * crawl) and is not a failure.  Everything in these headers is untrusted:
 * numbers are bounded, anything unparsable is ignored. */
#ifndef ZLLM_CRAWL_RATELIMIT_INTERNAL_H
#define ZLLM_CRAWL_RATELIMIT_INTERNAL_H

#include <stddef.h>

typedef enum { ZL_RL_API, ZL_RL_RESOLVERS, ZL_RL_PAGES, ZL_RL_NCLASSES } zl_rl_class;

#define ZL_RL_WINDOW_DEFAULT 300.0  /* the Hub's: 5 minutes */
#define ZL_RL_WINDOW_MAX 3600.0     /* a longer window (or reset) than this is not believed */
#define ZL_RL_QUOTA_MAX 100000000L  /* nor a larger quota or remainder */

/* One class's state as the server last described it. */
typedef struct {
  long quota;       /* requests per window for the whole client; 0: not limited (unknown) */
  double window;    /* its length, seconds */
  int configured;   /* quota and window came from --rate (headers do not override them) */
  long spent;       /* requests this process started in the current window */
  double reset_at;  /* when the current window ends (monotonic seconds; 0: not known yet) */
  long remaining;   /* what the server said is left in this window for the client; -1: unknown */
  long inflight;    /* requests started and not answered yet: an answer's remainder does not count them */
  double waited;    /* seconds requests of this class spent waiting for a window */
  long throttled;   /* 429s received anyway */
  long requests;    /* requests started */
  int told;         /* the server has said when its window ends (RateLimit t) */
  int asked, answered; /* the class's first request went out / came back: until then it goes alone,
                          so that ranks starting together learn the policy before they burst */
  /* Until it does, the windows cannot be lined up with the server's: then
   * no span of one window may hold more than the share (a sliding log of
   * the last `share` start times), so no fixed window of the server's can
   * either. */
  double *starts;
  size_t starts_cap, starts_head, starts_n;
} zl_rl_bucket;

typedef struct {
  zl_rl_bucket b[ZL_RL_NCLASSES];
  int shares;       /* the quota is split over this many processes (ranks); 1: all of it is ours */
} zl_pacer;

/* One entry of a RateLimit or RateLimit-Policy field: its class name and
 * the parameters it carries (-1 when absent). */
typedef struct {
  char name[32];
  long r, q;
  double t, w;
} zl_rl_entry;

void zl_pacer_init(zl_pacer *p);
void zl_pacer_free(zl_pacer *p);
/* "--rate api=N,resolvers=M[,pages=K][,window=S]": quotas for a server
 * that sends no policy.  Returns 0 or ZLLM_EINVAL with the reason. */
int zl_pacer_configure(zl_pacer *p, const char *spec);
/* The class of a request by its URL (API calls, resolvers, anything else
 * counted as a page). */
zl_rl_class zl_rl_class_of(const char *url);
/* Parses one RateLimit / RateLimit-Policy field value into at most `cap`
 * entries; returns how many (0: nothing usable).  Never fails. */
size_t zl_rl_parse(const char *value, zl_rl_entry *out, size_t cap);
/* The fields of one answer to a request of class `cls`, at time `now`. */
void zl_pacer_observe(zl_pacer *p, zl_rl_class cls, const char *ratelimit, const char *policy, double now);
/* When a request of class `cls` may start (now or later). */
double zl_pacer_when(zl_pacer *p, zl_rl_class cls, double now);
/* A request of class `cls` starts now. */
void zl_pacer_spend(zl_pacer *p, zl_rl_class cls, double now);
/* The request just spent for never went out (nothing left to fetch, or
 * its file could not be opened): the share gets it back. */
void zl_pacer_refund(zl_pacer *p, zl_rl_class cls);
/* A 429 answer: how long to wait before asking again (the reset the
 * answer's RateLimit field named, told_reset 1, else its Retry-After, else
 * the rest of the window; at most one window).  When the server keeps a
 * limit for the class (its fields, or --rate) the class waits as a whole:
 * its window is spent; a bare 429 on a class without one holds only its
 * request. */
double zl_pacer_throttled(zl_pacer *p, zl_rl_class cls, double retry_after, int told_reset, double now);
/* Seconds all classes waited, and the shortest time the `left` requests of
 * class `cls` still need under its limit (0: not limited). */
double zl_pacer_waited(const zl_pacer *p);
double zl_pacer_eta(const zl_pacer *p, zl_rl_class cls, size_t left);
const char *zl_rl_class_name(zl_rl_class cls);

#endif
