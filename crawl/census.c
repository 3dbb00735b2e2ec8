/* zllm crawl --census (zllm_crawl_census, zllm/crawl.h): every model of a
 * hub from its listing alone, one row per repo in OUT/census.tsv.
 *
 * The listing is one chain of cursor pages, each 1,000 entries with the
 * expand[] fields, so the census is ~3,000 requests for the whole Hub, and
 * the rate limit, not the CPU, sets its pace: one rank walks the chain (the
 * others wait; ranks pay off when the selected repos are fetched).  Memory
 * holds one page, never the census.
 *
 * Resumable after kill -9 at any point.  Each page's rows are appended to
 * census.tsv and synced, then one line is appended to OUT/.zllm/census.pages
 * and synced: the page's number, the rows and census.tsv's length after it,
 * the hash of the page's URL (a cursor that loops back to a page done in any
 * run is caught) and the next page's URL relative to the endpoint.  A rerun
 * cuts census.tsv back to the last line's length (rows of a page whose line
 * never made it are written again, once) and asks the next page: no page
 * done is asked twice.  A complete census ends the file with an "end"
 * line; a rerun then asks nothing. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crawl/census_internal.h"
#include "crawl/crawl_internal.h"
#include "crawl/http_internal.h"
#include "zllm/crawl.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/path.h"

#define CENSUS_PAGE_MAX ((size_t)64 << 20) /* one page of 1,000 entries with siblings: a few MiB on the Hub */
#define CENSUS_PAGE_SIZE 1000
#define CENSUS_MAX_PAGES 1000000
#define LOG_MAGIC "#zllm census 1"

typedef struct {
  crawl_ctx *c;
  zllm_census_stats *s;
  char *tsv_path, *log_path, *query; /* query: the first page's URL after the endpoint */
  int tsv_fd, log_fd;
  uint64_t pages, rows, tsv_len;     /* done so far (all runs) */
  char *next;                        /* the next page relative to the endpoint, NULL: the listing is done */
  char last_created[48];             /* the latest createdAt listed: the listing ascends by it */
  int complete;
  int stopped;                       /* a problem stopped the walk: no "end" line, a rerun asks that page again */
  page_seen seen;
} census;

/* ---- the page log ------------------------------------------------------------ */

typedef struct {
  census *k;
  int bad, header_ok;
} log_reader;

/* "PAGE\tROWS\tTSV_LEN\tURL_HASH\tLAST_CREATED\tNEXT" or "end\tROWS\tTSV_LEN" */
static int take_log_line(void *ctx, const char *line, size_t len, size_t lineno)
{
  log_reader *lr = ctx;
  census *k = lr->k;
  if (lr->bad || !line)
    return lr->bad = 1, 0;
  if (lineno == 1) {
    size_t m = strlen(LOG_MAGIC);
    lr->header_ok = len > m + 1 && strncmp(line, LOG_MAGIC "\t", m + 1) == 0 && strcmp(line + m + 1, k->query) == 0;
    if (!lr->header_ok)
      return zllm_error_set(ZLLM_EINVAL, "census: %s holds the census of another listing (%.*s); remove it to start over",
                            k->log_path, (int)(len > 200 ? 200 : len), line);
    return 0;
  }
  uint64_t page, rows, tsv_len, hash;
  char created[48] = "";
  int used = 0;
  if (strncmp(line, "end\t", 4) == 0 && sscanf(line, "end\t%" SCNu64 "\t%" SCNu64 "%n", &rows, &tsv_len, &used) == 2 &&
      (size_t)used == len) {
    k->complete = 1;
    k->rows = rows;
    k->tsv_len = tsv_len;
    free(k->next);
    k->next = NULL;
    return 0;
  }
  if (sscanf(line, "%" SCNu64 "\t%" SCNu64 "\t%" SCNu64 "\t%" SCNx64 "\t%47[^\t]\t%n", &page, &rows, &tsv_len, &hash,
             created, &used) != 5 ||
      page != k->pages + 1 || used <= 0 || (size_t)used >= len)
    return lr->bad = 1, 0;
  snprintf(k->last_created, sizeof k->last_created, "%s", strcmp(created, "-") == 0 ? "" : created);
  /* the next page stays on the endpoint: a URL relative to it, as next_of wrote it */
  const char *rel = line + used;
  if (strcmp(rel, "-") != 0 && ((*rel != '/' && *rel != '?') || strpbrk(rel, " \t\r\n@\\")))
    return lr->bad = 1, 0;
  char *next = strndup(rel, len - (size_t)used);
  if (!next)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  free(k->next);
  k->next = strcmp(next, "-") == 0 ? (free(next), NULL) : next;
  k->pages = page;
  k->rows = rows;
  k->tsv_len = tsv_len;
  cr_page_seen_hash(&k->seen, hash);
  return 0;
}

static int log_append(census *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int log_append(census *k, const char *fmt, ...)
{
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof line)
    return zllm_error_set(ZLLM_ELIMIT, "census: a page log line is longer than %zu bytes", sizeof line);
  return zllm_append_synced(k->log_fd, line, (size_t)n, k->log_path);
}

/* A line cut by a kill (no '\n' yet) is dropped: a page line is written
 * whole by one write(2), so only the last line can be torn. */
static int trim_torn_tail(census *k)
{
  off_t end = lseek(k->log_fd, 0, SEEK_END), keep = end;
  char ch = '\n';
  while (keep > 0 && pread(k->log_fd, &ch, 1, keep - 1) == 1 && ch != '\n')
    keep--;
  if (keep < end) {
    ZLLM_WARN("census: %s ends with a torn line (a run was killed while writing it): dropped", k->log_path);
    if (ftruncate(k->log_fd, keep) < 0)
      return zllm_error_set(ZLLM_EIO, "%s: truncate: %s", k->log_path, strerror(errno));
  }
  return 0;
}

/* Reads what earlier runs did and cuts census.tsv back to it. */
static int census_resume(census *k)
{
  log_reader lr = {k, 0, 0};
  struct stat st;
  int rc = trim_torn_tail(k);
  if (rc == 0 && fstat(k->log_fd, &st) == 0 && st.st_size > 0)
    rc = zllm_read_lines(k->log_path, 16384, take_log_line, &lr);
  if (rc == 0 && lr.bad)
    rc = zllm_error_set(ZLLM_EINVAL, "census: %s is damaged after page %" PRIu64 "; remove it to start over",
                        k->log_path, k->pages);
  if (rc == 0 && !lr.header_ok) {
    rc = ftruncate(k->log_fd, 0) < 0 ? zllm_error_set(ZLLM_EIO, "%s: truncate: %s", k->log_path, strerror(errno)) : 0;
    rc = rc ? rc : log_append(k, LOG_MAGIC "\t%s\n", k->query);
  }
  if (rc == 0 && k->pages == 0 && !k->complete) {
    k->tsv_len = 0;
    free(k->next);
    if (!(k->next = strdup(k->query)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  if (rc == 0 && fstat(k->tsv_fd, &st) == 0 && (uint64_t)st.st_size < k->tsv_len)
    rc = zllm_error_set(ZLLM_EINVAL, "census: %s is shorter (%lld bytes) than its page log says (%" PRIu64
                        "); remove %s to start over", k->tsv_path, (long long)st.st_size, k->tsv_len, k->log_path);
  if (rc == 0 && ftruncate(k->tsv_fd, (off_t)k->tsv_len) < 0)
    rc = zllm_error_set(ZLLM_EIO, "%s: truncate: %s", k->tsv_path, strerror(errno));
  if (rc == 0 && lseek(k->tsv_fd, 0, SEEK_END) < 0)
    rc = zllm_error_set(ZLLM_EIO, "%s: seek: %s", k->tsv_path, strerror(errno));
  if (rc == 0 && k->tsv_len == 0) {
    rc = zllm_append_synced(k->tsv_fd, ZLLM_CENSUS_COLUMNS "\n", strlen(ZLLM_CENSUS_COLUMNS "\n"), k->tsv_path);
    k->tsv_len = strlen(ZLLM_CENSUS_COLUMNS "\n");
  }
  if (rc == 0 && k->pages)
    ZLLM_INFO("census: resuming after page %" PRIu64 " (%" PRIu64 " repos)%s", k->pages, k->rows,
              k->complete ? ": the listing was complete, nothing to ask" : "");
  k->s->pages_before = k->pages;
  return rc;
}

/* ---- one page ------------------------------------------------------------------ */

static void census_problem(census *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void census_problem(census *k, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cr_problem(k->c, "census: %s", msg);
}

/* A page that goes back in time is an earlier page again (the listing
 * ascends by createdAt): a cursor that loops to it, under another URL. */
static int page_goes_back(census *k, const json_t *page, char *latest, size_t cap)
{
  size_t i;
  json_t *m;
  snprintf(latest, cap, "%s", k->last_created);
  json_array_foreach((json_t *)page, i, m)
  {
    const char *t = json_string_value(json_object_get(m, "createdAt"));
    if (!t || strlen(t) >= cap || strspn(t, "0123456789-T:.Z+") != strlen(t)) /* a bad one is named by its row */
      continue;
    if (latest[0] && strcmp(t, latest) < 0)
      return 1;
    snprintf(latest, cap, "%s", t);
  }
  return 0;
}

/* The rows of one page, in `rows`; entries that break the rules named. */
static int page_rows(census *k, const json_t *page, zllm_buf *rows, uint64_t *nrows)
{
  size_t i;
  json_t *m;
  char why[512], dropped[256];
  int rc = 0;
  *nrows = 0;
  json_array_foreach((json_t *)page, i, m)
  {
    if (k->c->o->limit > 0 && k->rows + *nrows >= (uint64_t)k->c->o->limit)
      break;
    size_t before = rows->len;
    rc = zl_census_row(m, rows, why, sizeof why, dropped, sizeof dropped);
    if (rc < 0)
      break;
    if (rc == 1) {
      census_problem(k, "page %" PRIu64 " entry %zu skipped: %s", k->pages + 1, i, why);
      k->s->skipped++;
      rc = 0;
      continue;
    }
    if (rows->len - before > ZLLM_CENSUS_MAX_LINE) {
      census_problem(k, "page %" PRIu64 " entry %zu skipped: a row of %zu bytes (more than %d)", k->pages + 1, i,
                     rows->len - before, ZLLM_CENSUS_MAX_LINE);
      rows->len = before;
      k->s->skipped++;
      continue;
    }
    if (dropped[0]) {
      char id[256];
      size_t n = strcspn(rows->data + before, "\t");
      snprintf(id, sizeof id, "%.*s", (int)(n < 255 ? n : 255), rows->data + before);
      census_problem(k, "%s: field(s) %s break their rule (type, length, characters or count): left empty", id, dropped);
      k->s->fields_dropped++;
    }
    (*nrows)++;
  }
  return rc;
}

/* Where the listing goes after this page: NULL when it ends here (or must
 * stop: a problem says why). */
static char *next_of(census *k, const zl_req *r, uint64_t rows_total)
{
  if (!r->next_url || (k->c->o->limit > 0 && rows_total >= (uint64_t)k->c->o->limit))
    return NULL;
  size_t n = strlen(k->c->endpoint);
  if (strncmp(r->next_url, k->c->endpoint, n) != 0 || (r->next_url[n] != '/' && r->next_url[n] != '?')) {
    census_problem(k, "listing stopped after page %" PRIu64 ": the next page leaves the endpoint", k->pages + 1);
    return NULL;
  }
  const char *rel = r->next_url + n;
  if (strlen(rel) > 4096 || strpbrk(rel, " \t\n\r@\\")) {
    census_problem(k, "listing stopped after page %" PRIu64 ": the next page's URL breaks the rules (length, characters)",
                   k->pages + 1);
    return NULL;
  }
  if (cr_page_seen_hash(&k->seen, cr_page_hash(rel))) {
    census_problem(k, "listing stopped after page %" PRIu64 ": the next page %s was already listed (a cursor that loops)",
                   k->pages + 1, rel);
    return NULL;
  }
  if (k->pages + 1 >= CENSUS_MAX_PAGES) {
    census_problem(k, "listing stopped: more than %d pages", CENSUS_MAX_PAGES);
    return NULL;
  }
  char *next = strdup(rel);
  if (!next)
    zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return next;
}

/* Asks the next page, appends its rows, logs it.  Returns 0, 1 when the
 * listing ended (or stopped with a problem), or a negative code. */
static int census_page(census *k)
{
  char why[1024];
  size_t ulen = strlen(k->c->endpoint) + strlen(k->next) + 1;
  char *url = malloc(ulen);
  if (!url)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  snprintf(url, ulen, "%s%s", k->c->endpoint, k->next);
  zl_req *r = calloc(1, sizeof *r);
  if (!r) {
    free(url);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  r->url = url;
  r->sink = ZL_SINK_MEM;
  r->max_body = CENSUS_PAGE_MAX;
  r->fd = -1;
  uint64_t page_hash = cr_page_hash(k->next);
  int rc = zl_http_run(&k->c->http, &r, 1);
  json_t *page = NULL;
  zllm_buf rows = ZLLM_BUF_INIT;
  uint64_t nrows = 0;
  char *next = NULL;
  if (rc == 0 && !r->ok) {
    census_problem(k, "listing stopped at page %" PRIu64 ": %s", k->pages + 1, r->err);
    rc = 1;
    k->stopped = 1;
  } else if (rc == 0 && zllm_json_load(&page, r->url, "api-json", r->body.data ? r->body.data : "", r->body.len,
                                       CENSUS_PAGE_MAX) < 0) {
    snprintf(why, sizeof why, "%s", zllm_error_last());
    census_problem(k, "listing stopped at page %" PRIu64 ": %s", k->pages + 1, why);
    rc = 1;
    k->stopped = 1;
  } else if (rc == 0 && !json_is_array(page)) {
    census_problem(k, "listing stopped at page %" PRIu64 ": %s: api-json: not an array", k->pages + 1, r->url);
    rc = 1;
    k->stopped = 1;
  }
  char latest[48] = "";
  if (rc == 0 && page_goes_back(k, page, latest, sizeof latest)) {
    census_problem(k, "listing stopped at page %" PRIu64 ": it goes back to entries created before %s, listed already "
                   "(a cursor that loops)", k->pages + 1, k->last_created);
    rc = 1;
    k->stopped = 1;
  }
  rc = rc ? rc : page_rows(k, page, &rows, &nrows);
  if (rc == 0) {
    snprintf(k->last_created, sizeof k->last_created, "%s", latest);
    cr_page_seen_hash(&k->seen, page_hash);
    next = next_of(k, r, k->rows + nrows);
    rc = rows.len ? zllm_append_synced(k->tsv_fd, rows.data, rows.len, k->tsv_path) : 0;
  }
  if (rc == 0) {
    k->pages++;
    k->rows += nrows;
    k->tsv_len += rows.len;
    k->s->pages++;
    rc = log_append(k, "%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%016" PRIx64 "\t%s\t%s\n", k->pages, k->rows,
                    k->tsv_len, page_hash, k->last_created[0] ? k->last_created : "-", next ? next : "-");
    free(k->next);
    k->next = next;
    next = NULL;
    if (rc == 0 && !k->next)
      rc = 1;
  }
  free(next);
  zllm_buf_free(&rows);
  json_decref(page);
  zl_req_free(r);
  return rc;
}

/* ---- the walk ------------------------------------------------------------------ */

static char *census_query(const zllm_crawl_options *o)
{
  char extra[1024];
  snprintf(extra, sizeof extra, "limit=%d&%s", CENSUS_PAGE_SIZE, ZL_CENSUS_EXPAND);
  return cr_list_url(o, "", extra);
}

static int open_rw(const char *path, int *fd)
{
  *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (*fd < 0)
    return zllm_error_set(ZLLM_EIO, "%s: %s", path, strerror(errno));
  return zllm_fd_regular(*fd, path);
}

static int census_walk(census *k)
{
  int rc = 0;
  zl_http_phase(&k->c->http, "census", 0, 0);
  k->c->http.phase_class = ZL_RL_API;
  while (rc == 0 && k->next)
    rc = census_page(k);
  if (rc == 1)
    rc = 0;
  if (rc == 0 && !k->complete && !k->stopped) {
    k->complete = 1;
    rc = log_append(k, "end\t%" PRIu64 "\t%" PRIu64 "\n", k->rows, k->tsv_len);
  }
  return rc;
}

static int census_run(const zllm_crawl_options *o, zllm_census_stats *s)
{
  crawl_ctx c;
  zllm_crawl_stats cs;
  census k = {.c = &c, .s = s, .tsv_fd = -1, .log_fd = -1};
  int rc = cr_begin(&c, o, &cs, NULL);
  if (rc == 0) {
    k.tsv_path = zllm_path_join(o->out, "census.tsv");
    k.log_path = zllm_path_join(c.state, "census.pages");
    k.query = census_query(o);
    if (!k.tsv_path || !k.log_path || !k.query)
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  rc = rc ? rc : open_rw(k.tsv_path, &k.tsv_fd);
  rc = rc ? rc : open_rw(k.log_path, &k.log_fd);
  rc = rc ? rc : census_resume(&k);
  rc = rc ? rc : census_walk(&k);
  s->rows = k.rows;
  s->complete = k.complete;
  s->bytes_received = c.http.bytes_received;
  s->problems = cs.problems;
  cr_end(&c);
  s->retries = cs.retries;
  s->throttled = cs.throttled;
  s->rate_waited = cs.rate_waited;
  if (k.tsv_fd >= 0)
    close(k.tsv_fd);
  if (k.log_fd >= 0)
    close(k.log_fd);
  free(k.tsv_path);
  free(k.log_path);
  free(k.query);
  free(k.next);
  free(k.seen.h);
  return rc;
}

int zllm_crawl_census(const zllm_crawl_options *o, zllm_census_stats *s, MPI_Comm comm)
{
  int rank = 0;
  memset(s, 0, sizeof *s);
  if (comm == MPI_COMM_NULL) {
    int rc = census_run(o, s);
    if (rc == 0 && s->problems)
      rc = zllm_error_set(ZLLM_ERROR, "census: %" PRIu64 " problems (each reported above)", s->problems);
    return rc;
  }
  MPI_Comm_rank(comm, &rank);
  int rc = rank == 0 ? census_run(o, s) : 0;
  /* the other ranks wait for the one walk: the listing is one cursor chain */
  int code[2] = {rc, 0};
  char msg[1024] = "";
  if (rank == 0 && rc < 0)
    snprintf(msg, sizeof msg, "%s", zllm_error_last());
  MPI_Bcast(code, 2, MPI_INT, 0, comm);
  MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm);
  MPI_Bcast(s, sizeof *s, MPI_BYTE, 0, comm);
  if (rank != 0 && code[0] < 0)
    zllm_error_set(code[0], "%s", msg);
  rc = code[0];
  if (rc == 0 && s->problems)
    rc = zllm_error_set(ZLLM_ERROR, "census: %" PRIu64 " problems (each reported above)", s->problems);
  return rc;
}
