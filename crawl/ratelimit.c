/* Pacing inside a server's rate limits (crawl/ratelimit_internal.h). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crawl/ratelimit_internal.h"
#include "zllm/error.h"

static const char *const class_names[ZL_RL_NCLASSES] = {"api", "resolvers", "pages"};

const char *zl_rl_class_name(zl_rl_class cls)
{
  return cls >= 0 && cls < ZL_RL_NCLASSES ? class_names[cls] : "?";
}

void zl_pacer_init(zl_pacer *p)
{
  memset(p, 0, sizeof *p);
  p->shares = 1;
  for (int c = 0; c < ZL_RL_NCLASSES; c++) {
    p->b[c].window = ZL_RL_WINDOW_DEFAULT;
    p->b[c].remaining = -1;
  }
}

void zl_pacer_free(zl_pacer *p)
{
  for (int c = 0; c < ZL_RL_NCLASSES; c++) {
    free(p->b[c].starts);
    p->b[c].starts = NULL;
    p->b[c].starts_cap = p->b[c].starts_n = p->b[c].starts_head = 0;
  }
}

static int class_by_name(const char *name, size_t n)
{
  for (int c = 0; c < ZL_RL_NCLASSES; c++)
    if (strlen(class_names[c]) == n && strncmp(name, class_names[c], n) == 0)
      return c;
  return -1;
}

int zl_pacer_configure(zl_pacer *p, const char *spec)
{
  double window = ZL_RL_WINDOW_DEFAULT;
  long quota[ZL_RL_NCLASSES] = {0};
  for (const char *s = spec; s && *s;) {
    size_t n = strcspn(s, ",");
    const char *eq = memchr(s, '=', n);
    char *end = NULL;
    double v = eq ? strtod(eq + 1, &end) : 0;
    int c = eq ? class_by_name(s, (size_t)(eq - s)) : -1;
    int is_window = eq && eq - s == 6 && strncmp(s, "window", 6) == 0;
    if (!eq || end != s + n || !(v >= 1) || (s[n] == ',' && s[n + 1] == '\0') || (c < 0 && !is_window) || (c >= 0 && v > ZL_RL_QUOTA_MAX) ||
        (is_window && v > ZL_RL_WINDOW_MAX))
      return zllm_error_set(ZLLM_EINVAL,
                            "--rate %s: want CLASS=REQUESTS (api, resolvers, pages) or window=SECONDS, "
                            "comma-separated, each at least 1", spec);
    if (is_window)
      window = v;
    else
      quota[c] = (long)v;
    s += n + (s[n] == ',');
  }
  for (int c = 0; c < ZL_RL_NCLASSES; c++)
    if (quota[c]) {
      p->b[c].quota = quota[c];
      p->b[c].window = window;
      p->b[c].configured = 1;
    }
  return 0;
}

zl_rl_class zl_rl_class_of(const char *url)
{
  const char *path = strstr(url, "://");
  path = path ? strchr(path + 3, '/') : url;
  if (!path)
    return ZL_RL_PAGES;
  if (strncmp(path, "/api/", 5) == 0)
    return ZL_RL_API;
  size_t n = strcspn(path, "?#");
  for (const char *at = path; (at = strstr(at, "/resolve/")) && at < path + n; at++)
    return ZL_RL_RESOLVERS;
  return ZL_RL_PAGES;
}

/* ---- the header fields ------------------------------------------------------------ */

static const char *skip_ws(const char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* A number parameter's value: finite, not negative, bounded; else -1. */
static double number(const char *s, size_t n, double max)
{
  char buf[32];
  if (n == 0 || n >= sizeof buf)
    return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *end = NULL;
  double v = strtod(buf, &end);
  return end == buf + n && isfinite(v) && v >= 0 && v <= max ? v : -1;
}

/* One item of an entry: a quoted or bare name, or key=value. */
static void take_item(zl_rl_entry *e, const char *s, size_t n)
{
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  const char *eq = memchr(s, '=', n);
  if (eq && eq - s == 1) {
    double v = number(eq + 1, n - 2, s[0] == 't' || s[0] == 'w' ? ZL_RL_WINDOW_MAX * 1000 : ZL_RL_QUOTA_MAX);
    if (s[0] == 'r')
      e->r = v < 0 ? -1 : (long)v;
    else if (s[0] == 'q')
      e->q = v < 0 ? -1 : (long)v;
    else if (s[0] == 't')
      e->t = v;
    else if (s[0] == 'w')
      e->w = v;
    return;
  }
  if (eq)
    return; /* another parameter (pk=, qu=, ...) */
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
    s++, n -= 2;
  if (n && n < sizeof e->name) { /* the last name wins: "fixed window";"api" names the class last */
    memcpy(e->name, s, n);
    e->name[n] = '\0';
  }
}

size_t zl_rl_parse(const char *value, zl_rl_entry *out, size_t cap)
{
  size_t n = 0;
  const char *s = value ? value : "";
  while (*s && n < cap) {
    zl_rl_entry e = {.r = -1, .q = -1, .t = -1, .w = -1};
    int quoted = 0;
    const char *item = s = skip_ws(s);
    for (;; s++) { /* items end at ';', entries at ',' outside quotes */
      if (*s == '"')
        quoted = !quoted;
      if (*s == '\0' || (!quoted && (*s == ';' || *s == ','))) {
        take_item(&e, item, (size_t)(s - item));
        if (*s != ';')
          break;
        item = skip_ws(s + 1);
      }
    }
    if (e.r >= 0 || e.q >= 0 || e.t >= 0 || e.w >= 0)
      out[n++] = e;
    if (*s == ',')
      s++;
  }
  return n;
}

/* ---- pacing ------------------------------------------------------------------------ */

/* This process's part of a window's quota: the ranks split it evenly, so
 * that together they stay under it. */
static long share(const zl_pacer *p, const zl_rl_bucket *b)
{
  long s = b->quota / (p->shares > 0 ? p->shares : 1);
  return s > 0 ? s : 1;
}

/* How late our estimate of a window's end may be: t is given in whole
 * seconds (2% of the window, at most a second, is added for a server that
 * rounds it down). */
static double late_margin(double w)
{
  return 0.02 * w < 1.0 ? 0.02 * w : 1.0;
}

/* A window that ended gives way to the next one. */
static void roll(zl_rl_bucket *b, double now)
{
  if (b->reset_at > 0 && now >= b->reset_at) {
    double w = b->window > 0 ? b->window : ZL_RL_WINDOW_DEFAULT;
    /* Requests started just before our estimate of the end may have been
     * counted in the server's next window already (the estimate errs late):
     * they are spent in the new one. */
    double edge = b->reset_at - 2 * late_margin(w);
    long late = 0;
    for (size_t i = 0; i < b->starts_n; i++)
      late += b->starts[(b->starts_head + i) % b->starts_cap] >= edge;
    /* without a quota there is no window of ours to keep: the server's next word starts one */
    b->reset_at = b->quota > 0 ? b->reset_at + w * (1 + floor((now - b->reset_at) / w)) : 0;
    b->spent = late;
    b->remaining = -1; /* the next answer says */
  }
}

static void apply(zl_rl_bucket *b, const zl_rl_entry *e, int policy, int shares, double now)
{
  if (policy) {
    if (!b->configured && e->q >= 1)
      b->quota = e->q;
    if (!b->configured && e->w >= 1 && e->w <= ZL_RL_WINDOW_MAX)
      b->window = e->w;
    return;
  }
  double w = b->window > 0 ? b->window : ZL_RL_WINDOW_DEFAULT;
  if (e->t >= 0) { /* the server's window, not ours: a reset further than a window is not believed */
    /* t comes in whole seconds: rounded up, each answer bounds the reset
     * from above, and the lowest bound of the window's answers is the
     * closest (a short window would lose up to a second of each otherwise) */
    double at = now + (e->t < w ? e->t : w) + late_margin(w);
    b->reset_at = b->told && b->reset_at > now && b->reset_at < at ? b->reset_at : at;
    b->told = 1;
  }
  /* what is left is the whole client's: each of the ranks takes its share
   * of it (rounded down: together they never pass it), less this process's
   * requests still in flight (the server had not counted them yet) */
  if (e->r >= 0) {
    long mine = (shares > 1 ? e->r / shares : e->r) - b->inflight;
    b->remaining = mine > 0 ? mine : 0;
  }
}

static void observe_field(zl_pacer *p, zl_rl_class cls, const char *value, int policy, double now)
{
  zl_rl_entry e[8];
  size_t n = zl_rl_parse(value, e, 8);
  for (size_t i = 0; i < n; i++) {
    int c = class_by_name(e[i].name, strlen(e[i].name));
    apply(&p->b[c >= 0 ? c : (int)cls], &e[i], policy, p->shares, now);
  }
}

void zl_pacer_observe(zl_pacer *p, zl_rl_class cls, const char *ratelimit, const char *policy, double now)
{
  if (cls < 0 || cls >= ZL_RL_NCLASSES)
    return;
  p->b[cls].answered = 1;
  if (p->b[cls].inflight > 0)
    p->b[cls].inflight--;
  roll(&p->b[cls], now);
  if (policy) /* first: the window's length bounds the reset */
    observe_field(p, cls, policy, 1, now);
  if (ratelimit)
    observe_field(p, cls, ratelimit, 0, now);
}

#define STARTS_MAX ((size_t)1 << 20) /* a sliding log longer than this counts the rest as fixed windows */

/* The sliding log: how many of the last starts lie within one window of
 * now, and when the oldest of them leaves it. */
static size_t starts_within(zl_rl_bucket *b, double now, double *oldest)
{
  double w = b->window > 0 ? b->window : ZL_RL_WINDOW_DEFAULT;
  while (b->starts_n && b->starts[b->starts_head] <= now - w) {
    b->starts_head = (b->starts_head + 1) % b->starts_cap;
    b->starts_n--;
  }
  *oldest = b->starts_n ? b->starts[b->starts_head] + w : now;
  return b->starts_n;
}

static void starts_add(zl_rl_bucket *b, long share_, double now)
{
  size_t want = (size_t)share_ < STARTS_MAX ? (size_t)share_ : STARTS_MAX;
  if (b->starts_cap < want) { /* grown once (the share is known by now), kept in order */
    double *v = malloc(want * sizeof *v);
    if (!v)
      return; /* without the log the fixed windows still hold */
    for (size_t i = 0; i < b->starts_n; i++)
      v[i] = b->starts[(b->starts_head + i) % b->starts_cap];
    free(b->starts);
    b->starts = v;
    b->starts_cap = want;
    b->starts_head = 0;
  }
  if (!b->starts_cap)
    return;
  if (b->starts_n == b->starts_cap) { /* full: the oldest goes */
    b->starts_head = (b->starts_head + 1) % b->starts_cap;
    b->starts_n--;
  }
  b->starts[(b->starts_head + b->starts_n++) % b->starts_cap] = now;
}

void zl_pacer_refund(zl_pacer *p, zl_rl_class cls)
{
  zl_rl_bucket *b = &p->b[cls];
  if (b->spent > 0)
    b->spent--;
  if (b->requests > 0)
    b->requests--;
  if (b->inflight > 0)
    b->inflight--;
  if (b->quota > 0 && b->starts_n > 0) /* the newest start is this one's */
    b->starts_n--;
  if (b->requests == 0 && !b->answered)
    b->asked = 0; /* the class's first request is still to come */
}

double zl_pacer_when(zl_pacer *p, zl_rl_class cls, double now)
{
  zl_rl_bucket *b = &p->b[cls];
  roll(b, now);
  if (b->quota == 0 && b->asked && !b->answered)
    return now + 0.02; /* the first answer tells the policy: wait for it */
  if (b->quota > 0 && !b->told) { /* no window of the server's known: a sliding one */
    double oldest;
    size_t n = starts_within(b, now, &oldest);
    return n < (size_t)share(p, b) && n < STARTS_MAX ? now : oldest;
  }
  int out_of_share = b->quota > 0 && b->spent >= share(p, b);
  int server_says_none = b->remaining == 0;
  if (!out_of_share && !server_says_none)
    return now;
  if (b->reset_at <= now) /* no window known yet: ours starts with the first request */
    b->reset_at = now + (b->window > 0 ? b->window : ZL_RL_WINDOW_DEFAULT);
  return b->reset_at;
}

void zl_pacer_spend(zl_pacer *p, zl_rl_class cls, double now)
{
  zl_rl_bucket *b = &p->b[cls];
  roll(b, now);
  if (b->quota > 0 && b->reset_at <= 0)
    b->reset_at = now + (b->window > 0 ? b->window : ZL_RL_WINDOW_DEFAULT);
  b->asked = 1;
  b->spent++;
  b->requests++;
  b->inflight++;
  if (b->remaining > 0)
    b->remaining--;
  if (b->quota > 0)
    starts_add(b, share(p, b), now);
}

double zl_pacer_throttled(zl_pacer *p, zl_rl_class cls, double retry_after, int told_reset, double now)
{
  zl_rl_bucket *b = &p->b[cls];
  double w = b->window > 0 ? b->window : ZL_RL_WINDOW_DEFAULT;
  b->throttled++;
  /* the answer's own word first (its RateLimit t, just observed), then its
   * Retry-After, then the window we know of */
  double until = told_reset && b->reset_at > now ? b->reset_at
                 : retry_after > 0           ? now + retry_after
                 : b->reset_at > now         ? b->reset_at
                                             : now + w;
  if (until > now + w)
    until = now + w;
  /* The class waits as a whole when the server keeps a limit for it (it
   * said so, or --rate did): its window is spent for every request.  A bare
   * 429 with only a Retry-After on a class without a known limit is that
   * request's answer: the others go on. */
  if (told_reset || b->quota > 0) {
    b->remaining = 0;
    b->reset_at = until;
  }
  return until - now;
}

double zl_pacer_waited(const zl_pacer *p)
{
  double s = 0;
  for (int c = 0; c < ZL_RL_NCLASSES; c++)
    s += p->b[c].waited;
  return s;
}

double zl_pacer_eta(const zl_pacer *p, zl_rl_class cls, size_t left)
{
  const zl_rl_bucket *b = &p->b[cls];
  if (b->quota <= 0 || left == 0)
    return 0;
  return ceil((double)left / (double)share(p, b)) * b->window;
}
