/* The batch HTTP engine (see crawl/http_internal.h). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crawl/http_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"

#define ERR_BODY_MAX 2048 /* what is read of an error response (for the message); the rest is cut off */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double zl_http_now(void)
{
  return now_s();
}

int zl_http_init(zl_http *h, const char *token, int jobs, long retry_budget, int progress)
{
  memset(h, 0, sizeof *h);
  h->jobs = jobs > 0 ? jobs : 4;
  h->max_attempts = 8;
  h->retries_left = retry_budget;
  h->backoff_base = 0.25;
  h->backoff_cap = 8.0;
  h->retry_after_cap = 60.0;
  h->low_speed_bytes = ZL_LOW_SPEED_BYTES;
  h->low_speed_seconds = ZL_LOW_SPEED_SECONDS;
  h->min_rate = ZL_MIN_RATE;
  h->progress = progress;
  h->tty = isatty(2);
  zl_pacer_init(&h->pacer);
  if (token && *token) {
    size_t len = strlen(token) + 32;
    if (!(h->auth_header = malloc(len)))
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    snprintf(h->auth_header, len, "Authorization: Bearer %s", token);
  }
  return 0;
}

void zl_http_cleanup(zl_http *h)
{
  if (h->auth_header) { /* do not leave the token in freed memory */
    memset(h->auth_header, 0, strlen(h->auth_header));
    free(h->auth_header);
  }
  h->auth_header = NULL;
  free(h->origin);
  h->origin = NULL;
  zl_pacer_free(&h->pacer);
}

void zl_http_phase(zl_http *h, const char *phase, size_t items, uint64_t bytes)
{
  snprintf(h->phase, sizeof h->phase, "crawl %s", phase);
  h->phase_class = strcmp(phase, "download") == 0 ? ZL_RL_RESOLVERS : ZL_RL_API;
  h->items_total = items;
  h->items_done = 0;
  h->bytes_total = bytes;
  h->bytes_done = 0;
  h->bytes_base = h->bytes_received;
  zllm_progress_begin(&h->pg, h->phase, bytes);
  h->pg.on = h->progress;
}

static void print_progress(zl_http *h, int final)
{
  char note[128];
  if (h->items_total == 0 || (final && h->items_done < h->items_total))
    return;
  double waited = zl_pacer_waited(&h->pacer);
  double eta = zl_pacer_eta(&h->pacer, h->phase_class, h->items_total - h->items_done);
  int n = snprintf(note, sizeof note, "%ld retries", h->retries_used);
  if (waited >= 1 && n > 0 && (size_t)n < sizeof note)
    n += snprintf(note + n, sizeof note - (size_t)n, ", %.0f s waiting for the rate limit", waited);
  if (eta > 0 && n > 0 && (size_t)n < sizeof note)
    snprintf(note + n, sizeof note - (size_t)n, ", >= %.0f min left at the limit", eta / 60);
  zllm_progress_note(&h->pg, note);
  zllm_progress_set(&h->pg, h->bytes_done, h->items_done, h->items_total);
  if (final)
    zllm_progress_end(&h->pg);
}

static void forget_rate_fields(zl_req *r)
{
  free(r->rl_value);
  free(r->rl_policy);
  r->rl_value = r->rl_policy = NULL;
}

void zl_req_reset(zl_req *r)
{
  zllm_buf_free(&r->body);
  free(r->next_url);
  r->next_url = NULL;
  forget_rate_fields(r);
  r->free_waits = 0;
  r->ok = 0;
  r->status = 0;
  r->err[0] = '\0';
  r->attempts = 0;
  r->not_before = 0;
}

void zl_req_free(zl_req *r)
{
  if (!r)
    return;
  zl_req_reset(r);
  free(r->url);
  free(r->path);
  free(r);
}

/* ---- callbacks ----------------------------------------------------------- */

static int is_2xx(long s)
{
  return s >= 200 && s < 300;
}

static void abort_req(zl_req *r, const char *why)
{
  r->aborted = 1;
  snprintf(r->abort_why, sizeof r->abort_why, "%s", why);
}

/* The first write of a resumed download: the server must continue where the
 * file ends, or send the whole file again (then it starts over). */
static int check_resume(zl_req *r)
{
  if (r->status == 206 && r->range_start != r->have) {
    abort_req(r, "the server resumed at another offset");
    return -1;
  }
  if (r->status == 200 && r->have > 0) {
    if (ftruncate(r->fd, 0) < 0 || lseek(r->fd, 0, SEEK_SET) < 0) {
      abort_req(r, "cannot truncate the partial file");
      return -1;
    }
    r->have = 0;
  }
  r->truncated = 1;
  return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
  zl_req *r = arg;
  size_t n = size * nmemb;
  zl_http *h = r->engine;
  if (!is_2xx(r->status)) { /* an error page: keep a little of it, then end the transfer */
    size_t room = ERR_BODY_MAX - r->body.len;
    zllm_buf_append(&r->body, data, n < room ? n : room);
    if (r->body.len < ERR_BODY_MAX)
      return n;
    r->err_body_cut = 1; /* an endless error body must not hold the request */
    return 0;
  }
  if (r->sink == ZL_SINK_MEM) {
    if (r->body.len + n > r->max_body) {
      abort_req(r, "response larger than its limit");
      return 0;
    }
    h->bytes_received += n;
    return zllm_buf_append(&r->body, data, n) == 0 ? n : 0;
  }
  if (!r->truncated && check_resume(r) < 0)
    return 0;
  if (r->have + n > r->expect_size) { /* the listed size caps every file, 0 included */
    abort_req(r, "more bytes than the listing's size");
    return 0;
  }
  for (size_t done = 0; done < n;) {
    ssize_t w = write(r->fd, data + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      abort_req(r, "cannot write the partial file");
      return 0;
    }
    done += (size_t)w;
  }
  r->have += n;
  h->bytes_received += n;
  return n;
}

static int header_is(const char *line, size_t len, const char *name)
{
  size_t k = strlen(name);
  return len > k && strncasecmp(line, name, k) == 0;
}

static char *header_value(const char *line, size_t len, size_t skip)
{
  const char *v = line + skip;
  size_t n = len - skip;
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
    n--;
  return strndup(v, n);
}

/* Link: <url>; rel="next" (other relations are ignored). */
static void parse_link(zl_req *r, const char *v)
{
  for (const char *p = v; (p = strchr(p, '<'));) {
    const char *end = strchr(p, '>');
    if (!end)
      return;
    const char *rel = strstr(end, "rel=");
    const char *comma = strchr(end, ',');
    if (rel && (!comma || rel < comma) && strncmp(rel + 4, "\"next\"", 6) == 0) {
      free(r->next_url);
      r->next_url = strndup(p + 1, (size_t)(end - p - 1));
      return;
    }
    p = end;
  }
}

static int same_origin(const zl_http *h, const char *loc);

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
  zl_req *r = arg;
  size_t len = size * nmemb;
  if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after a redirect too) */
    /* curl's header lines are not NUL-terminated: parse within len */
    const char *sp = memchr(line, ' ', len), *end = line + len;
    long status = 0;
    for (const char *d = sp ? sp + 1 : end; d < end && *d >= '0' && *d <= '9' && status < 1000; d++)
      status = status * 10 + (*d - '0');
    r->status = status;
    r->retry_after = 0;
    r->range_start = 0; /* the rate fields stay: a resolver's count is told by its answer, not the CDN's */
    free(r->next_url);
    r->next_url = NULL;
    return len;
  }
  char *v = NULL;
  if (header_is(line, len, "link:") && (v = header_value(line, len, 5)))
    parse_link(r, v);
  else if (header_is(line, len, "retry-after:") && (v = header_value(line, len, 12)))
    r->retry_after = v[0] >= '0' && v[0] <= '9' ? strtod(v, NULL) : 5.0; /* an HTTP date: wait a little */
  else if (header_is(line, len, "ratelimit:") && (v = header_value(line, len, 10))) {
    free(r->rl_value);
    r->rl_value = v; /* kept: read when the request finishes */
    v = NULL;
  } else if (header_is(line, len, "ratelimit-policy:") && (v = header_value(line, len, 17))) {
    free(r->rl_policy);
    r->rl_policy = v;
    v = NULL;
  } else if (header_is(line, len, "content-range:") && (v = header_value(line, len, 14)))
    r->range_start = strncmp(v, "bytes ", 6) == 0 ? strtoull(v + 6, NULL, 10) : UINT64_MAX;
  else if (r->status >= 300 && r->status < 400 && r->sink == ZL_SINK_MEM && !r->has_range &&
           header_is(line, len, "location:") && (v = header_value(line, len, 9)) &&
           !same_origin(r->engine, v)) {
    char shown[160];
    zllm_escape_text(shown, sizeof shown, v);
    snprintf(r->abort_why, sizeof r->abort_why, "an API answer redirected to another origin (%s): not followed", shown);
    r->aborted = 1;
    free(v);
    return 0; /* ends the transfer before curl follows it */
  }
  free(v);
  return len;
}

/* ---- one transfer -------------------------------------------------------- */

/* The low-speed time plus what the request may bring at the minimum rate:
 * a file's bytes still to come, a range's length, an API response's cap. */
static long request_deadline_ms(const zl_http *h, const zl_req *r)
{
  uint64_t bytes = r->sink == ZL_SINK_FILE ? r->expect_size - (r->have < r->expect_size ? r->have : r->expect_size)
                   : r->has_range        ? r->range_hi - r->range_lo + 1
                                         : r->max_body;
  double s = (double)h->low_speed_seconds + (double)bytes / (double)(h->min_rate > 0 ? h->min_rate : ZL_MIN_RATE);
  return s > 7 * 86400.0 ? 7 * 86400L * 1000 : (long)(s * 1000) + 1;
}

/* Whether a redirect's target stays on the endpoint's origin: an API
 * answer (JSON the crawl trusts for names and sizes) comes from the
 * endpoint only; files may be redirected anywhere (the Hub's CDN). */
static int same_origin(const zl_http *h, const char *loc)
{
  const char *colon = strstr(loc, "://");
  int absolute = (colon && strcspn(loc, "/?#") > (size_t)(colon - loc)) || strncmp(loc, "//", 2) == 0;
  if (!absolute)
    return 1; /* a path on the same server */
  if (!h || !h->origin || strncmp(loc, "//", 2) == 0)
    return 0; /* no origin to compare with: nowhere else is the endpoint's */
  size_t n = strlen(h->origin);
  return strncasecmp(loc, h->origin, n) == 0 && (loc[n] == '/' || loc[n] == '\0' || loc[n] == '?');
}

static int open_sink(zl_req *r)
{
  if (r->sink != ZL_SINK_FILE)
    return 0;
  /* a planted link is refused, and a FIFO planted there neither blocks the
   * open (O_NONBLOCK: no reader is ENXIO) nor is written to */
  r->fd = open(r->path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  struct stat st;
  if (r->fd < 0)
    return zllm_error_set_errno("%s: cannot open", r->path);
  int rc = zllm_fd_regular(r->fd, r->path);
  if (rc < 0)
    return rc;
  if (fstat(r->fd, &st) < 0)
    return zllm_error_set_errno("%s: cannot stat", r->path);
  r->have = (uint64_t)st.st_size;
  if (r->have > r->expect_size) /* a stale partial file: start over */
    r->have = 0;
  if (ftruncate(r->fd, (off_t)r->have) < 0 || lseek(r->fd, (off_t)r->have, SEEK_SET) < 0)
    return zllm_error_set_errno("%s: cannot position", r->path);
  return 0;
}

/* 0: started; 1: finished without a transfer (ok, or failed with err set);
 * < 0: the engine cannot go on. */
static int start(zl_http *h, CURLM *multi, zl_req *r)
{
  char range[64] = "";
  CURL *e = curl_easy_init();
  r->fd = -1;
  r->truncated = r->aborted = r->err_body_cut = 0;
  r->status = 0;
  r->engine = h;
  forget_rate_fields(r);
  zllm_buf_free(&r->body);
  if (!e)
    return zllm_error_set(ZLLM_ENOMEM, "curl_easy_init failed");
  r->easy = e;
  if (open_sink(r) < 0) {
    snprintf(r->err, sizeof r->err, "%s", zllm_error_last());
    return 1;
  }
  if (r->sink == ZL_SINK_FILE && r->have == r->expect_size) {
    r->ok = 1; /* complete before an interruption: nothing left to ask (a Range past the end is a 416) */
    return 1;
  }
  if (r->sink == ZL_SINK_FILE && r->have > 0)
    snprintf(range, sizeof range, "%llu-", (unsigned long long)r->have);
  else if (r->has_range)
    snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)r->range_lo, (unsigned long long)r->range_hi);
  if (h->auth_header && !(r->headers = curl_slist_append(NULL, h->auth_header)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 20L);
  /* a stalled or trickling body is a timeout (and a retry): slower than
   * low_speed_bytes per second over low_speed_seconds */
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, h->low_speed_bytes);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, h->low_speed_seconds);
  /* and every transfer a total deadline: a server dripping just above the
   * low-speed limit would otherwise hold a request for its whole cap */
  r->deadline_ms = request_deadline_ms(h, r);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->deadline_ms);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "zllm/" ZLLM_VERSION);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  if (r->sink == ZL_SINK_MEM && !r->has_range)
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* JSON compresses well */
  if (range[0])
    curl_easy_setopt(e, CURLOPT_RANGE, range);
  r->attempts++;
  return curl_multi_add_handle(multi, e) == CURLM_OK ? 0 : zllm_error_set(ZLLM_ERROR, "curl_multi_add_handle failed");
}

static void stop(CURLM *multi, zl_req *r)
{
  if (r->easy) {
    curl_multi_remove_handle(multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
}

static int transient_curl(CURLcode c)
{
  switch (c) {
  case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR: case CURLE_COULDNT_RESOLVE_HOST:
    return 1;
  default:
    return 0;
  }
}

static int transient_status(long s)
{
  return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* Why this attempt failed, in one line (never with the token). */
static void describe(zl_req *r, CURLcode c, char *buf, size_t cap)
{
  if (r->aborted)
    snprintf(buf, cap, "%s", r->abort_why);
  else if (c == CURLE_OPERATION_TIMEDOUT && r->deadline_ms)
    snprintf(buf, cap, "%s (the request's deadline is %.0f s: its bytes at the minimum rate, plus the low-speed time)",
             curl_easy_strerror(c), r->deadline_ms / 1e3);
  else if (c != CURLE_OK)
    snprintf(buf, cap, "%s", curl_easy_strerror(c));
  else if (r->status == 401 || r->status == 403)
    snprintf(buf, cap, "HTTP %ld (is HF_TOKEN set and allowed to read this repo?)", r->status);
  else
    snprintf(buf, cap, "HTTP %ld", r->status);
}

static double backoff(const zl_http *h, const zl_req *r)
{
  double d = h->backoff_base;
  for (int i = 1; i < r->attempts && d < h->backoff_cap; i++)
    d *= 2;
  d = d > h->backoff_cap ? h->backoff_cap : d;
  d *= 0.5 + (double)rand() / RAND_MAX / 2; /* jitter: ranks and jobs do not retry in step */
  double ra = r->retry_after > h->retry_after_cap ? h->retry_after_cap : r->retry_after;
  return ra > d ? ra : d;
}

#define FREE_429_WAITS 16 /* 429s a request waits out for free; past that, a 429 spends retries */

/* Returns 1 when the request is finished (ok or failed), 0 when it will be retried. */
static int finish(zl_http *h, CURLM *multi, zl_req *r, CURLcode c)
{
  char why[300];
  long status = r->status;
  double now = now_s();
  zl_rl_class cls = zl_rl_class_of(r->url);
  stop(multi, r);
  zl_pacer_observe(&h->pacer, cls, r->rl_value, r->rl_policy, now);
  if (c == CURLE_OK && status == 429 && !r->aborted && r->free_waits < FREE_429_WAITS) {
    /* the limit, met anyway (another client, a lying header): wait for the
     * window, spending neither an attempt nor the retry budget */
    r->free_waits++;
    r->attempts--;
    r->not_before = now + zl_pacer_throttled(&h->pacer, cls, r->retry_after, r->rl_value != NULL, now);
    snprintf(r->err, sizeof r->err, "HTTP 429 (rate limit): waiting for the window");
    return 0;
  }
  if (r->err_body_cut && c == CURLE_WRITE_ERROR)
    c = CURLE_OK; /* we ended an error page ourselves: its status decides */
  if (c == CURLE_OK && !r->aborted && is_2xx(status)) {
    r->ok = 1;
    return 1;
  }
  describe(r, c, why, sizeof why);
  int again = !r->aborted && (transient_curl(c) || (c == CURLE_OK && transient_status(status)));
  if (again && r->attempts < h->max_attempts && h->retries_left > 0) {
    h->retries_left--;
    h->retries_used++;
    r->not_before = now_s() + backoff(h, r);
    snprintf(r->err, sizeof r->err, "%s", why);
    return 0;
  }
  if (again)
    snprintf(r->err, sizeof r->err, "GET %s: gave up after %d attempts%s: %s", r->url, r->attempts,
             h->retries_left > 0 ? "" : " (retry budget spent)", why);
  else
    snprintf(r->err, sizeof r->err, "GET %s: %s", r->url, why);
  return 1;
}

/* Whether r may start now under its class's rate limit; if not, it is held
 * until the window the pacer names. */
static int admitted(zl_http *h, zl_req *r, double now)
{
  zl_rl_class cls = zl_rl_class_of(r->url);
  double when = zl_pacer_when(&h->pacer, cls, now);
  if (when > now) {
    r->not_before = when;
    if (!r->held)
      h->held[cls]++;
    r->held = 1;
    return 0;
  }
  if (r->held)
    h->held[cls]--;
  r->held = 0;
  zl_pacer_spend(&h->pacer, cls, now);
  return 1;
}

/* The time since the last call, added to the waits of the classes with held requests. */
static void count_waits(zl_http *h, double now)
{
  double dt = h->held_since > 0 ? now - h->held_since : 0;
  for (int c = 0; c < ZL_RL_NCLASSES && dt > 0; c++)
    if (h->held[c])
      h->pacer.b[c].waited += dt;
  h->held_since = now;
}

/* Starts r; a request that cannot start is finished at once. */
static int launch(zl_http *h, CURLM *multi, zl_req *r, size_t *active, size_t *done)
{
  int rc = start(h, multi, r);
  if (rc == 0) {
    (*active)++;
  } else if (rc == 1) {
    zl_pacer_refund(&h->pacer, zl_rl_class_of(r->url));
    stop(multi, r);
    (*done)++;
    h->items_done++;
    if (h->on_done)
      h->on_done(r, h->done_ctx);
    rc = 0;
  }
  return rc;
}

int zl_http_run(zl_http *h, zl_req **reqs, size_t n)
{
  CURLM *multi = curl_multi_init();
  size_t next = 0, done = 0, active = 0;
  zl_req **waiting = calloc(n ? n : 1, sizeof *waiting); /* retries, by not_before */
  size_t nwait = 0;
  int rc = multi && waiting ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0)
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->jobs);
  h->held_since = now_s();
  while (rc == 0 && done < n) {
    double t = now_s(), wait_ms = 100;
    count_waits(h, t);
    for (size_t i = 0; rc == 0 && i < nwait && active < (size_t)h->jobs;) {
      if (waiting[i]->not_before <= t && admitted(h, waiting[i], t)) {
        zl_req *r = waiting[i];
        waiting[i] = waiting[--nwait];
        rc = launch(h, multi, r, &active, &done);
      } else {
        double ms = (waiting[i]->not_before - t) * 1000;
        wait_ms = ms < wait_ms ? ms : wait_ms;
        i++;
      }
    }
    while (rc == 0 && next < n && active < (size_t)h->jobs) {
      zl_req *r = reqs[next++];
      if (admitted(h, r, t))
        rc = launch(h, multi, r, &active, &done);
      else
        waiting[nwait++] = r; /* its window comes: held with the retries */
    }
    if (rc < 0)
      break;
    int running = 0;
    curl_multi_perform(multi, &running);
    CURLMsg *m;
    int left, finished = 0;
    while ((m = curl_multi_info_read(multi, &left))) {
      zl_req *r = NULL;
      if (m->msg != CURLMSG_DONE || curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r) != CURLE_OK || !r)
        continue;
      CURLcode result = m->data.result; /* m is invalid once the handle is removed */
      active--;
      finished = 1;
      if (finish(h, multi, r, result)) {
        done++;
        h->items_done++;
        if (h->on_done)
          h->on_done(r, h->done_ctx);
      } else {
        waiting[nwait++] = r;
      }
    }
    h->bytes_done = h->bytes_received - h->bytes_base;
    print_progress(h, 0);
    if (h->on_bytes && h->bytes_received > h->bytes_told) {
      h->on_bytes(h->bytes_received - h->bytes_told, h->bytes_ctx);
      h->bytes_told = h->bytes_received;
    }
    if (done < n && !finished) /* a slot just freed up: fill it before waiting */
      curl_multi_poll(multi, NULL, 0, (int)(wait_ms < 1 ? 1 : wait_ms), NULL);
  }
  print_progress(h, 1);
  for (size_t i = 0; i < next; i++)
    stop(multi, reqs[i]);
  curl_multi_cleanup(multi);
  free(waiting);
  return rc;
}
