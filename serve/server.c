/* `zllm serve`: the HTTP side.  GNU libmicrohttpd runs a pool of threads,
 * each polling its own connections; a connection stays on one thread, so
 * each thread opens its own read-only archive handle the first time it
 * needs one and every file it streams decodes through that handle.
 *
 * A download is a callback response: libmicrohttpd asks for the next block
 * when the socket can take it, and the file reader decodes one segment (a
 * tensor part of 32 MiB at most) when a block crosses into it.  A whole
 * file is checked against its SHA-256 before its last segment goes out; a
 * mismatch (or any decode error) ends the response with an error, so the
 * connection closes short of Content-Length. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/serve.h"

#define MAX_HANDLES 256      /* threads, each with one archive handle */
#define BLOCK_BYTES (256 << 10) /* what one read callback may fill */
#define TOKEN_MAX 512

struct zllm_server {
  struct MHD_Daemon *d;
  zllm_serve_options o;
  char *dir;
  char listen_host[64];
  unsigned port;
  char token[TOKEN_MAX];
  size_t token_len;
  pthread_key_t key;
  int key_made;
  pthread_mutex_t lock;
  int lock_made;
  zllm_archive *handles[MAX_HANDLES];
  int nhandles;
  zs_oid_cache *oids;
  zs_tree_cache *trees; /* each repo's folders and git ids, built once */
  zs_gate *gate;        /* request deadlines, room for new clients */
  zllm_slice_store *store; /* decoded slices shared by every download, in --memory */
};

/* One request, from its request line to its end (what the access log says). */
typedef struct {
  zllm_server *s;
  double t0;
  char uri[320]; /* as received, cut, for the log */
  char method[8];
  unsigned status;
  uint64_t bytes;
  int started;
  zllm_buf body; /* a POST body */
  int body_too_big;
  int nul_in_uri; /* "%00": a name cut short where it decodes */
  char peer[48];
} request;

/* A response body streamed from the archive. */
typedef struct {
  zllm_server *s;
  request *rq; /* its request: reads end before the request does */
  char repo[ZS_REPO_MAX], path[ZS_PATH_MAX];
  uint64_t lo, len;
  zllm_file_reader *rd;
} download;

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* This thread's archive handle (opened on first use, closed at stop). */
static zllm_archive *thread_archive(zllm_server *s)
{
  zllm_archive *a = pthread_getspecific(s->key);
  if (a)
    return a;
  if (zllm_archive_open(&a, s->dir, 0) < 0) /* downloads use the slice store's part cache */
    return NULL;
  pthread_mutex_lock(&s->lock);
  int ok = s->nhandles < MAX_HANDLES;
  if (ok)
    s->handles[s->nhandles++] = a;
  pthread_mutex_unlock(&s->lock);
  if (!ok || pthread_setspecific(s->key, a) != 0) {
    zllm_archive_close(a);
    zllm_error_set(ZLLM_ELIMIT, "more than %d server threads", MAX_HANDLES);
    return NULL;
  }
  return a;
}

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result queue(request *rq, struct MHD_Connection *c, unsigned status, struct MHD_Response *resp)
{
  if (!resp)
    return MHD_NO;
  rq->status = status;
  zs_gate_request_in(rq->s->gate, c); /* its headers and body are in: no deadline while it is answered */
  enum MHD_Result r = MHD_queue_response(c, status, resp);
  MHD_destroy_response(resp);
  return r;
}

static enum MHD_Result send_buf(request *rq, struct MHD_Connection *c, unsigned status, zllm_buf *b,
                                const char *type, const char *link)
{
  size_t len = 0;
  char *data = zllm_buf_detach(b, &len);
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, data ? data : "", data ? MHD_RESPMEM_MUST_FREE
                                                                                          : MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(data);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (link && *link)
    MHD_add_response_header(resp, "Link", link);
  if (strcmp(rq->method, "HEAD") != 0)
    rq->bytes = len;
  return queue(rq, c, status, resp);
}

/* {"error": msg} with the X-Error-Code Hub clients look at. */
static enum MHD_Result send_error(request *rq, struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *msg)
{
  zllm_buf b = ZLLM_BUF_INIT;
  json_t *e = json_pack("{s:s}", "error", msg ? msg : "error");
  char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
  json_decref(e);
  if (!s || zllm_buf_puts(&b, s) < 0) {
    free(s);
    zllm_buf_free(&b);
    return MHD_NO;
  }
  free(s);
  size_t len = 0;
  char *data = zllm_buf_detach(&b, &len);
  struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(data);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
  if (code)
    MHD_add_response_header(resp, "X-Error-Code", code);
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
  if (status == MHD_HTTP_SERVICE_UNAVAILABLE) /* over --memory: come back when a download ends */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  if (strcmp(rq->method, "HEAD") != 0)
    rq->bytes = len;
  return queue(rq, c, status, resp);
}

/* Where a server error goes: the log (with the file), not the client. */
static enum MHD_Result send_failure(request *rq, struct MHD_Connection *c, int rc)
{
  if (rc == ZLLM_ENOTFOUND)
    return send_error(rq, c, MHD_HTTP_NOT_FOUND, "RepoNotFound", "Repository not found");
  zllm_log(ZLLM_LOG_ERROR, "zllm serve: %s", zllm_error_last());
  return send_error(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "Internal Error");
}

/* ---- downloads -------------------------------------------------------------- */

static ssize_t download_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  download *d = cls;
  if (pos >= d->len)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (!d->rd) /* a HEAD response has no body to read */
    return MHD_CONTENT_READER_END_WITH_ERROR;
  size_t want = d->len - pos < max ? (size_t)(d->len - pos) : max;
  int64_t got = zllm_file_reader_read(d->rd, d->lo + pos, buf, want);
  if (got <= 0) {
    /* the client sees a transfer cut short, never a wrong file that ends cleanly */
    zllm_log(ZLLM_LOG_ERROR, "zllm serve: %s/%s: response broken off at byte %llu: %s", d->repo, d->path,
             (unsigned long long)(d->lo + pos), got < 0 ? zllm_error_last() : "the file ended early");
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  if (d->rq)
    d->rq->bytes += (uint64_t)got;
  return (ssize_t)got;
}

static void download_free(void *cls)
{
  download *d = cls;
  zllm_file_reader_close(d->rd);
  free(d);
}

static const zllm_archive_file *find_file(const zs_repo *r, const char *path)
{
  size_t lo = 0, hi = r->nfiles;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(r->files[mid].path, path);
    if (c == 0)
      return &r->files[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* The headers Hub clients rely on: ETag (the LFS SHA-256, or the git blob
 * id), X-Repo-Commit, X-Linked-Size and X-Linked-Etag for LFS files. */
static int file_headers(zllm_server *s, zllm_archive *a, const zs_repo *r, const zllm_archive_file *f,
                        struct MHD_Response *resp)
{
  char etag[70], hex[65], size[24];
  int lfs = zs_is_lfs(f->path, f->size), rc = 0;
  if (lfs)
    zllm_hex(hex, f->sha256, 32);
  else
    rc = zs_file_oid(s->oids, a, r, f, hex);
  if (rc < 0)
    return rc;
  snprintf(etag, sizeof etag, "\"%s\"", hex);
  snprintf(size, sizeof size, "%llu", (unsigned long long)f->size);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
  MHD_add_response_header(resp, "X-Repo-Commit", r->revision);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
  if (lfs) {
    MHD_add_response_header(resp, "X-Linked-Size", size);
    MHD_add_response_header(resp, "X-Linked-Etag", etag);
  }
  return 0;
}

static enum MHD_Result send_unsatisfiable(request *rq, struct MHD_Connection *c, uint64_t size)
{
  char crange[48];
  snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)size);
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  if (resp)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
  return queue(rq, c, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp);
}

/* A response that streams bytes [lo, lo + len) of the file as they are decoded. */
/* A download's response, which takes the reader (NULL for HEAD). */
static struct MHD_Response *download_response(request *rq, const zs_repo *r, const zllm_archive_file *f,
                                              uint64_t lo, uint64_t len, zllm_file_reader *rd)
{
  download *d = calloc(1, sizeof *d);
  if (!d) {
    zllm_file_reader_close(rd);
    return NULL;
  }
  *d = (download){rq->s, rq, "", "", lo, len, rd};
  snprintf(d->repo, sizeof d->repo, "%s", r->name);
  snprintf(d->path, sizeof d->path, "%s", f->path);
  struct MHD_Response *resp = MHD_create_response_from_callback(len, BLOCK_BYTES, download_read, d, download_free);
  if (!resp)
    download_free(d);
  return resp;
}

/* The file, or the range of it the request asks for (HEAD: the same headers). */
static enum MHD_Result send_file(request *rq, struct MHD_Connection *c, zllm_archive *a, const zs_repo *r,
                                 const zllm_archive_file *f)
{
  uint64_t lo = 0, hi = f->size ? f->size - 1 : 0;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
  int range = zs_range_parse(h, f->size, &lo, &hi);
  if (range < 0)
    return send_unsatisfiable(rq, c, f->size);
  uint64_t len = f->size ? hi - lo + 1 : 0;
  zllm_file_reader *rd = NULL;
  /* admitted (its slices fit in --memory) before anything is sent: a
   * download is refused whole, never cut off for memory */
  int orc = strcmp(rq->method, "HEAD") != 0 && len ? zllm_slice_store_reader(rq->s->store, a, r->name, f->path, &rd)
                                                   : 0;
  if (orc == ZLLM_ELIMIT)
    return send_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, "The server is busy: try again shortly");
  if (orc < 0)
    return send_failure(rq, c, orc);
  if (rd && lo == 0 && len == f->size)
    zllm_file_reader_whole(rd);
  struct MHD_Response *resp = download_response(rq, r, f, lo, len, rd);
  int rc = resp ? file_headers(rq->s, a, r, f, resp) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && range > 0) {
    char crange[80];
    snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)lo, (unsigned long long)hi,
             (unsigned long long)f->size);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
  }
  if (rc < 0) {
    if (resp)
      MHD_destroy_response(resp);
    return send_failure(rq, c, rc);
  }
  return queue(rq, c, range > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
}

static enum MHD_Result resolve(request *rq, struct MHD_Connection *c, zllm_archive *a, const zs_route *rt)
{
  zs_repo r;
  int rc = zs_repo_load(a, rt->repo, &r);
  if (rc < 0)
    return send_failure(rq, c, rc);
  const zllm_archive_file *f = NULL;
  enum MHD_Result res;
  if (!zs_repo_rev_ok(&r, rt->rev))
    res = send_error(rq, c, MHD_HTTP_NOT_FOUND, "RevisionNotFound", "Invalid rev id");
  else if (!(f = find_file(&r, rt->path)))
    res = send_error(rq, c, MHD_HTTP_NOT_FOUND, "EntryNotFound", "Entry not found");
  else
    res = send_file(rq, c, a, &r, f);
  zs_repo_free(&r);
  return res;
}

/* ---- the API ---------------------------------------------------------------- */

static const char *arg(struct MHD_Connection *c, const char *key)
{
  return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

/* "http://<Host>" for Link headers: the name the client used, when it is a
 * plain host[:port]; else the address listened on. */
static void base_url(zllm_server *s, struct MHD_Connection *c, char *out, size_t cap)
{
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  if (h && *h && strlen(h) < 200 &&
      strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == strlen(h))
    snprintf(out, cap, "http://%s", h);
  else
    snprintf(out, cap, "http://%s:%u", s->listen_host, s->port);
}

/* The JSON of a repo's endpoint: info, tree or paths-info (0, an HTTP
 * status from a parser, or an error). */
static int repo_body(request *rq, struct MHD_Connection *c, const zs_route *rt, const zs_api *api_ctx,
                     const zs_tree *t, zllm_buf *out, zllm_buf *link)
{
  if (rt->kind == ZS_TREE) {
    const char *rec = arg(c, "recursive");
    int recursive = rec && (strcmp(rec, "true") == 0 || strcmp(rec, "1") == 0);
    return zs_api_tree(api_ctx, t, rt->rev, rt->path, recursive, arg(c, "cursor"), out, link);
  }
  if (rq->body_too_big)
    return zllm_error_set(ZLLM_ELIMIT, "a body of more than %d bytes", ZS_BODY_MAX), 413;
  const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
  int form = type && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0;
  char **paths = NULL;
  size_t np = 0;
  int rc = zs_paths_parse(rq->body.data ? rq->body.data : "", rq->body.len, form, &paths, &np);
  rc = rc ? rc : zs_api_paths_info(t, paths, np, out);
  zllm_strv_free(paths, np);
  return rc;
}

/* The JSON of a repo's endpoint (0, an HTTP status, or an error); *no_rev
 * when the revision asked for is not the repo's. */
static int repo_json(request *rq, struct MHD_Connection *c, zllm_archive *a, const zs_route *rt,
                     const zs_api *api_ctx, zllm_buf *out, zllm_buf *link, int *no_rev)
{
  zs_tree *t = NULL;
  zs_repo r;
  int rc = 0;
  if (rt->kind == ZS_INFO) { /* info lists names only: no git ids, so no tree to build */
    if ((rc = zs_repo_load(a, rt->repo, &r)) < 0)
      return rc;
    *no_rev = !zs_repo_rev_ok(&r, rt->rev);
    rc = *no_rev ? 0 : zs_api_info(a, &r, out);
    zs_repo_free(&r);
    return rc;
  }
  if ((rc = zs_tree_get(rq->s->trees, rq->s->oids, a, rt->repo, &t)) < 0)
    return rc;
  *no_rev = !zs_repo_rev_ok(zs_tree_repo(t), rt->rev);
  rc = *no_rev ? 0 : repo_body(rq, c, rt, api_ctx, t, out, link);
  zs_tree_release(rq->s->trees, t);
  return rc;
}

static enum MHD_Result api(request *rq, struct MHD_Connection *c, zllm_archive *a, const zs_route *rt)
{
  char base[256];
  zllm_buf out = ZLLM_BUF_INIT, link = ZLLM_BUF_INIT;
  int rc = 0, no_rev = 0;
  base_url(rq->s, c, base, sizeof base);
  zs_api api_ctx = {base, rq->s->o.page_size};
  if (rt->kind == ZS_LIST)
    rc = zs_api_models(&api_ctx, a, arg(c, "search"), arg(c, "author"), arg(c, "limit"), arg(c, "cursor"), &out,
                       &link);
  else
    rc = repo_json(rq, c, a, rt, &api_ctx, &out, &link, &no_rev);
  enum MHD_Result res;
  if (no_rev)
    res = send_error(rq, c, MHD_HTTP_NOT_FOUND, "RevisionNotFound", "Invalid rev id");
  else if (rc > 0) /* an HTTP status from a parser */
    res = send_error(rq, c, (unsigned)rc, rc == 404 ? "EntryNotFound" : NULL, zllm_error_last());
  else if (rc < 0)
    res = send_failure(rq, c, rc);
  else
    res = send_buf(rq, c, MHD_HTTP_OK, &out, "application/json", link.data);
  zllm_buf_free(&out);
  zllm_buf_free(&link);
  return res;
}

/* ---- the request cycle --------------------------------------------------- */

/* Constant time in the token's bytes: the comparison says nothing of how
 * much of a guess was right. */
static int authorized(zllm_server *s, struct MHD_Connection *c)
{
  if (!s->token_len)
    return 1;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  if (!h || strncmp(h, "Bearer ", 7) != 0)
    return 0;
  h += 7;
  size_t n = strlen(h);
  unsigned diff = n != s->token_len;
  for (size_t i = 0; i < s->token_len; i++)
    diff |= (unsigned)(s->token[i] ^ (i < n ? h[i] : 0));
  return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  request *rq = *con_cls;
  if (!rq)
    return MHD_NO;
  int post = strcmp(method, "POST") == 0;
  if (!rq->started) {
    /* answered from the next call: a response queued on the first one,
     * before libmicrohttpd read the whole request, would close the
     * connection instead of keeping it for the client's next request */
    rq->started = 1;
    snprintf(rq->method, sizeof rq->method, "%s", method);
    return MHD_YES;
  }
  if (*upload_size) {
    if (rq->body.len + *upload_size > ZS_BODY_MAX)
      rq->body_too_big = 1;
    else if (zllm_buf_append(&rq->body, upload, *upload_size) < 0)
      return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  if (!authorized(rq->s, c))
    return send_error(rq, c, MHD_HTTP_UNAUTHORIZED, NULL, "Invalid credentials in Authorization header");
  if (rq->nul_in_uri) /* libmicrohttpd decodes it to a NUL that ends the name early */
    return send_error(rq, c, MHD_HTTP_BAD_REQUEST, NULL, "a NUL (%00) in the URL");
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 && !post)
    return send_error(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "Method not allowed");
  zs_route rt;
  int status = zs_route_parse(url, &rt);
  if (status == 0 && (post != (rt.kind == ZS_PATHS_INFO)))
    return send_error(rq, c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, "Method not allowed");
  if (status)
    return send_error(rq, c, (unsigned)status, status == 404 ? "EntryNotFound" : NULL, zllm_error_last());
  zllm_archive *a = thread_archive(rq->s);
  if (!a)
    return send_failure(rq, c, ZLLM_ERROR);
  return rt.kind == ZS_RESOLVE ? resolve(rq, c, a, &rt) : api(rq, c, a, &rt);
}

/* Called with the request line, before the headers: the request's clock starts here. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
  request *rq = calloc(1, sizeof *rq);
  if (!rq)
    return NULL;
  rq->s = cls;
  rq->t0 = now_ms();
  rq->nul_in_uri = strstr(uri, "%00") != NULL;
  zllm_escape_text(rq->uri, sizeof rq->uri, uri);
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, rq->peer, sizeof rq->peer);
  return rq;
}

/* Connections as they open and close, for the gate. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
  zllm_server *s = cls;
  (void)socket_context;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
      zs_gate_opened(s->gate, c, ci->connect_fd);
  } else {
    zs_gate_closed(s->gate, c);
  }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
  request *rq = *con_cls;
  zllm_server *s = cls;
  if (!rq)
    return;
  if (!s->o.quiet) {
    const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                      : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)"
                      : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client went away)"
                      : " (broken off)";
    char status[12] = "-";
    if (rq->status)
      snprintf(status, sizeof status, "%u", rq->status);
    fprintf(stderr, "zllm serve: %s %s %s %s %llu %.1f ms%s\n", rq->peer[0] ? rq->peer : "-",
            rq->method[0] ? rq->method : "-", rq->uri, status, (unsigned long long)rq->bytes, now_ms() - rq->t0, how);
  }
  zs_gate_response_done(s->gate, c);
  zllm_buf_free(&rq->body);
  free(rq);
  *con_cls = NULL;
}

/* ---- start and stop --------------------------------------------------------- */

static int read_token(zllm_server *s, const char *file)
{
  char *text = NULL;
  size_t len = 0;
  int rc = zllm_read_small_file(&text, &len, file, TOKEN_MAX);
  if (rc < 0)
    return rc;
  size_t n = strcspn(text, "\r\n");
  while (n && (text[n - 1] == ' ' || text[n - 1] == '\t'))
    n--;
  if (n == 0 || n >= TOKEN_MAX || memchr(text, '\0', n))
    rc = zllm_error_set(ZLLM_EINVAL, "%s: the first line must hold the token", file);
  else {
    memcpy(s->token, text, n);
    s->token_len = n;
  }
  memset(text, 0, len);
  free(text);
  return rc;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa, char *host, size_t cap)
{
  const char *colon = listen ? strrchr(listen, ':') : NULL;
  char h[64] = "127.0.0.1";
  unsigned long port = 8080;
  char *end = NULL;
  if (listen) {
    if (!colon || (size_t)(colon - listen) >= sizeof h)
      return zllm_error_set(ZLLM_EINVAL, "--listen %s: give HOST:PORT (an IPv4 address)", listen);
    memcpy(h, listen, (size_t)(colon - listen));
    h[colon - listen] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || port > 65535)
      return zllm_error_set(ZLLM_EINVAL, "--listen %s: bad port", listen);
    if (strcmp(h, "localhost") == 0 || !h[0])
      snprintf(h, sizeof h, "127.0.0.1");
  }
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, h, &sa->sin_addr) != 1)
    return zllm_error_set(ZLLM_EINVAL, "--listen %s: not an IPv4 address", h);
  snprintf(host, cap, "%s", h);
  return 0;
}

void zllm_serve_stop(zllm_server *s)
{
  if (!s)
    return;
  if (s->d)
    MHD_stop_daemon(s->d);
  zs_gate_stop(s->gate); /* after the daemon: no connection is left to notify it */
  for (int i = 0; i < s->nhandles; i++)
    zllm_archive_close(s->handles[i]);
  zllm_slice_store_close(s->store); /* after the handles, which borrowed its part cache */
  if (s->key_made)
    pthread_key_delete(s->key);
  if (s->lock_made)
    pthread_mutex_destroy(&s->lock);
  zs_oid_cache_free(s->oids);
  zs_tree_cache_free(s->trees);
  free(s->dir);
  memset(s->token, 0, sizeof s->token);
  free(s);
}

int zllm_serve_start(zllm_server **out, const zllm_serve_options *o, unsigned *port)
{
  struct sockaddr_in sa;
  zllm_server *s = calloc(1, sizeof *s);
  zllm_archive *probe = NULL;
  int rc = s ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  *out = NULL;
  if (rc == 0) {
    s->o = *o;
    s->o.threads = o->threads > 0 ? (o->threads < MAX_HANDLES ? o->threads : MAX_HANDLES) : 2;
    s->o.page_size = o->page_size ? o->page_size : 1000;
    rc = (s->dir = strdup(o->archive)) ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  rc = rc ? rc : parse_listen(o->listen, &sa, s->listen_host, sizeof s->listen_host);
  rc = rc ? rc : o->token_file ? read_token(s, o->token_file) : 0;
  /* the archive must open before anyone is told the server is up */
  rc = rc ? rc : zllm_archive_open_readonly(&probe, s->dir, 1);
  zllm_archive_close(probe);
  rc = rc ? rc : zllm_slice_store_open(&s->store, s->dir, (size_t)(o->memory_mib ? o->memory_mib : 512) << 20,
                                       s->o.threads);
  rc = rc ? rc : zs_oid_cache_new(&s->oids);
  rc = rc ? rc : zs_tree_cache_new(&s->trees);
  rc = rc ? rc : zs_gate_start(&s->gate, o->request_timeout ? o->request_timeout : 10, o->timeout ? o->timeout : 30u,
                               o->max_connections ? o->max_connections : 64u, o->quiet);
  if (rc == 0 && pthread_key_create(&s->key, NULL) == 0)
    s->key_made = 1;
  if (rc == 0 && pthread_mutex_init(&s->lock, NULL) == 0)
    s->lock_made = 1;
  if (rc == 0 && (!s->key_made || !s->lock_made))
    rc = zllm_error_set(ZLLM_ERROR, "cannot set up threads");
  if (rc == 0) {
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->o.threads,
        MHD_OPTION_CONNECTION_LIMIT, o->max_connections ? o->max_connections : 64u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, o->per_ip ? o->per_ip : 16u, MHD_OPTION_CONNECTION_TIMEOUT,
        o->timeout ? o->timeout : 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 << 10),
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    if (!s->d)
      rc = zllm_error_set(ZLLM_EIO, "cannot listen on %s:%u (%s)", s->listen_host, ntohs(sa.sin_port),
                          strerror(errno));
  }
  if (rc == 0) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : ntohs(sa.sin_port);
    *port = s->port;
    *out = s;
    return 0;
  }
  zllm_serve_stop(s);
  return rc;
}

int zllm_serve_run(const zllm_serve_options *o)
{
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  /* blocked before the threads start, so they inherit it and sigwait gets them */
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  zllm_server *s = NULL;
  unsigned port = 0;
  int rc = zllm_serve_start(&s, o, &port), sig = 0;
  if (rc < 0)
    return rc;
  if (strcmp(s->listen_host, "127.0.0.1") != 0 && !s->token_len)
    fprintf(stderr, "zllm serve: warning: listening on %s without --token-file: anyone who reaches it reads the "
                    "archive\n", s->listen_host);
  fprintf(stderr, "zllm serve: %s on http://%s:%u (%d threads%s); HF_ENDPOINT=http://%s:%u\n", s->dir,
          s->listen_host, port, s->o.threads, s->token_len ? ", token required" : "", s->listen_host, port);
  sigwait(&set, &sig);
  fprintf(stderr, "zllm serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  zllm_slice_store_stats st;
  zllm_slice_store_stats_get(s->store, &st);
  fprintf(stderr, "zllm serve: slices: %llu decoded (%.1f MB), %llu read again while kept, %llu waited for "
          "another thread's decode; %llu downloads refused for memory (503); decoded slices held at most %.1f MB\n",
          (unsigned long long)st.decoded, st.decoded_bytes / 1e6, (unsigned long long)st.hits,
          (unsigned long long)st.waits, (unsigned long long)st.refused, st.peak_bytes / 1e6);
  fprintf(stderr, "zllm serve: stages: decode %.2f thread-s (%.0f MB/s per thread), SHA-256 %.2f thread-s "
          "(%.0f MB/s per thread)\n", st.decode_seconds,
          st.decode_seconds > 0 ? st.decoded_bytes / 1e6 / st.decode_seconds : 0.0, st.hash_seconds,
          st.hash_seconds > 0 ? st.hashed_bytes / 1e6 / st.hash_seconds : 0.0);
  zllm_serve_stop(s);
  return 0;
}
