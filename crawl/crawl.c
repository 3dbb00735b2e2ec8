/* zllm crawl: the Hugging Face Hub API into a plain-layout snapshot (see
 * zllm/crawl.h).  Phases: list -> info -> tree -> download (or headers). */
#include <curl/curl.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "crawl/crawl_internal.h"
#include "crawl/http_internal.h"
#include "zllm/crawl.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

#define API_MAX ((size_t)64 << 20) /* one API response (a repo's info: its siblings) */
#define API_PAGE_MAX ((size_t)8 << 20) /* one listing or tree page: 1,000 entries are a few MiB */
#define MAX_REPOS 10000000
#define MAX_FILES_PER_REPO 100000
#define MAX_LIST_PAGES 100000 /* /api/models pages in one crawl */
#define MAX_TREE_PAGES 10000  /* tree pages of one repo */

/* Adds a page's hash to the set (open addressing, load at most 1/2);
 * 1 when it was there before (or on out-of-memory: stop rather than loop). */
int cr_page_seen_hash(page_seen *s, uint64_t h)
{
  h |= 1; /* 0 marks an empty slot */
  if (2 * (s->n + 1) > s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    uint64_t *v = calloc(cap, sizeof *v);
    if (!v)
      return 1;
    for (size_t i = 0; i < s->cap; i++)
      for (size_t j = s->h[i] % cap; s->h[i]; j = (j + 1) % cap)
        if (!v[j]) {
          v[j] = s->h[i];
          break;
        }
    free(s->h);
    s->h = v;
    s->cap = cap;
  }
  size_t j = h % s->cap;
  for (; s->h[j]; j = (j + 1) % s->cap)
    if (s->h[j] == h)
      return 1;
  s->h[j] = h;
  s->n++;
  return 0;
}

uint64_t cr_page_hash(const char *url)
{
  return XXH3_64bits(url, strlen(url));
}

/* 1 when `url` was seen before (or on out-of-memory). */
static int page_seen_add(page_seen *s, const char *url)
{
  return cr_page_seen_hash(s, cr_page_hash(url));
}

/* ---- small helpers ------------------------------------------------------- */

void cr_problem(crawl_ctx *c, const char *fmt, ...)
{
  char msg[1024], safe[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  zllm_escape_text(safe, sizeof safe, msg);
  if (c->o->progress && c->http.tty)
    fprintf(stderr, "\n");
  ZLLM_ERR("crawl: %s", safe);
  c->s->problems++;
}

static int is_hex(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return s[n] == '\0';
}

static char *fmt_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_alloc(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s) {
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return s;
}

/* A repo file path with each segment percent-encoded, '/' kept. */
static char *escape_path(const char *path)
{
  zllm_buf b = ZLLM_BUF_INIT;
  const char *p = path;
  int rc = 0;
  while (rc == 0 && *p) {
    size_t n = strcspn(p, "/");
    char *e = curl_easy_escape(NULL, p, (int)n);
    rc = e ? zllm_buf_puts(&b, e) : ZLLM_ENOMEM;
    curl_free(e);
    p += n;
    if (rc == 0 && *p == '/') {
      rc = zllm_buf_puts(&b, "/");
      p++;
    }
  }
  if (rc < 0) {
    zllm_buf_free(&b);
    return NULL;
  }
  return b.data ? zllm_buf_detach(&b, NULL) : strdup("");
}

static zl_req *new_req(char *url, size_t max_body)
{
  zl_req *r = calloc(1, sizeof *r);
  if (!r || !url) {
    free(r);
    free(url);
    return NULL;
  }
  r->url = url;
  r->sink = ZL_SINK_MEM;
  r->max_body = max_body;
  r->fd = -1;
  return r;
}

static void free_reqs(zl_req **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    zl_req_free(v[i]);
  free(v);
}

/* Parses a JSON response; on failure the repo or listing gets the reason. */
static json_t *parse_json(const zl_req *r, char *why, size_t cap)
{
  json_t *root = NULL;
  if (zllm_json_load(&root, r->url, "api-json", r->body.data ? r->body.data : "", r->body.len, API_MAX) < 0) {
    snprintf(why, cap, "%s", zllm_error_last());
    return NULL;
  }
  return root;
}

/* A "next" link must stay on the endpoint: a server does not get to send the
 * crawler (and its token) elsewhere. */
static int same_endpoint(const crawl_ctx *c, const char *url)
{
  size_t n = strlen(c->endpoint);
  return strncmp(url, c->endpoint, n) == 0 && (url[n] == '/' || url[n] == '?');
}

/* ---- listing --------------------------------------------------------------- */

/* "/api/models?sort=createdAt&direction=1[&EXTRA]" with the listing's
 * filters (o->author, o->search, o->filter), after `prefix` (the endpoint,
 * or "" for a URL relative to it). */
char *cr_list_url(const zllm_crawl_options *o, const char *prefix, const char *extra)
{
  zllm_buf b = ZLLM_BUF_INIT;
  const char *keys[] = {"author", "search", "filter"};
  const char *vals[] = {o->author, o->search, o->filter};
  int rc = zllm_buf_printf(&b, "%s/api/models?sort=createdAt&direction=1%s%s", prefix, extra ? "&" : "", extra ? extra : "");
  for (int i = 0; rc == 0 && i < 3; i++) {
    if (!vals[i])
      continue;
    char *e = curl_easy_escape(NULL, vals[i], 0);
    rc = e ? zllm_buf_printf(&b, "&%s=%s", keys[i], e) : ZLLM_ENOMEM;
    curl_free(e);
  }
  if (rc < 0) {
    zllm_buf_free(&b);
    return NULL;
  }
  return zllm_buf_detach(&b, NULL);
}

static char *list_url(const crawl_ctx *c)
{
  char limit[32];
  snprintf(limit, sizeof limit, "limit=%ld", c->o->limit);
  return cr_list_url(c->o, c->endpoint, c->o->limit > 0 ? limit : NULL);
}

/* A repo once: an id's hash already in the set is confirmed by a scan (a
 * hash collision must not drop a repo), so adding n repos is O(n), not
 * O(n^2): a plan from a census holds tens of thousands. */
static int repo_known(crawl_ctx *c, const char *id)
{
  if (!cr_page_seen_hash(&c->repo_ids, cr_page_hash(id)))
    return 0;
  for (size_t i = 0; i < c->nrepos; i++)
    if (strcmp(c->repos[i].id, id) == 0)
      return 1;
  return 0;
}

static int add_repo(crawl_ctx *c, const char *id)
{
  if (zllm_repo_id_check(id) < 0) {
    cr_problem(c, "listing: %s", zllm_error_last());
    return 0;
  }
  if (repo_known(c, id))
    return 0;
  if (c->nrepos == c->repos_cap) {
    size_t cap = c->repos_cap ? 2 * c->repos_cap : 64;
    cr_repo *v = realloc(c->repos, cap * sizeof *v);
    if (!v)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    c->repos = v;
    c->repos_cap = cap;
  }
  cr_repo *v = c->repos;
  memset(&v[c->nrepos], 0, sizeof *v);
  if (!(v[c->nrepos].id = strdup(id)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  c->nrepos++;
  return 0;
}

static int take_page(crawl_ctx *c, json_t *page)
{
  size_t i;
  json_t *m;
  int rc = 0;
  json_array_foreach(page, i, m)
  {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (c->o->limit > 0 && (long)c->nrepos >= c->o->limit)
      break;
    if (!id) {
      cr_problem(c, "listing: an entry without an \"id\" string");
      continue;
    }
    if ((rc = add_repo(c, id)) < 0)
      break;
  }
  return rc;
}

/* Pages through /api/models.  A bad page ends the listing with a problem;
 * the models listed so far are still crawled. */
static int list_models(crawl_ctx *c)
{
  char *url = list_url(c), why[1024];
  page_seen pages = {NULL, 0, 0};
  int rc = url ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  zl_http_phase(&c->http, "list", 0, 0);
  if (url)
    page_seen_add(&pages, url);
  while (rc == 0 && url && (c->o->limit <= 0 || (long)c->nrepos < c->o->limit) && c->nrepos < MAX_REPOS) {
    zl_req *r = new_req(url, API_PAGE_MAX);
    url = NULL;
    if (!r)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = zl_http_run(&c->http, &r, 1);
    json_t *page = NULL;
    if (rc == 0 && !r->ok)
      cr_problem(c, "listing stopped: %s", r->err);
    else if (rc == 0 && !(page = parse_json(r, why, sizeof why)))
      cr_problem(c, "listing stopped: %s", why);
    else if (rc == 0 && !json_is_array(page))
      cr_problem(c, "listing stopped: %s: api-json: not an array", r->url);
    else if (rc == 0)
      rc = take_page(c, page);
    if (rc == 0 && page && json_is_array(page) && r->next_url) {
      if (!same_endpoint(c, r->next_url))
        cr_problem(c, "listing stopped: the next page leaves the endpoint");
      else if (page_seen_add(&pages, r->next_url))
        cr_problem(c, "listing stopped: the next page %s was already fetched (a paging loop)", r->next_url);
      else if (pages.n > MAX_LIST_PAGES)
        cr_problem(c, "listing stopped: more than %d pages", MAX_LIST_PAGES);
      else
        url = strdup(r->next_url);
    }
    json_decref(page);
    zl_req_free(r);
  }
  free(url);
  free(pages.h);
  return rc;
}

/* ---- model info ------------------------------------------------------------ */

static json_t *keep_fields(json_t *info)
{
  static const char *keys[] = {"id", "sha", "createdAt", "lastModified", "downloads", "likes", "tags",
                               "library_name", "pipeline_tag", "safetensors", "gated", "private"};
  json_t *m = json_object();
  for (size_t i = 0; m && i < sizeof keys / sizeof *keys; i++) {
    json_t *v = json_object_get(info, keys[i]);
    if (v)
      json_object_set(m, keys[i], v);
  }
  json_t *card = json_object_get(info, "cardData"), *bm = card ? json_object_get(card, "base_model") : NULL;
  if (m && (json_is_string(bm) || json_is_array(bm)))
    json_object_set_new(m, "base_model", json_is_string(bm) ? json_pack("[O]", bm) : json_deep_copy(bm));
  return m;
}

static void take_info(crawl_ctx *c, cr_repo *repo, zl_req *r)
{
  char why[1024];
  json_t *info = r->ok ? parse_json(r, why, sizeof why) : NULL;
  const char *sha = info ? json_string_value(json_object_get(info, "sha")) : NULL;
  if (!r->ok)
    snprintf(why, sizeof why, "%s", r->err);
  else if (info && (!sha || strlen(sha) != 40 || !is_hex(sha, 40)))
    snprintf(why, sizeof why, "%s: api-json: \"sha\" is not a 40-digit hex commit", r->url);
  if (info && sha && strlen(sha) == 40 && is_hex(sha, 40)) {
    memcpy(repo->sha, sha, 41);
    repo->meta = keep_fields(info);
  } else {
    repo->error = strdup(why);
    cr_problem(c, "%s: %s", repo->id, why);
  }
  json_decref(info);
}

static int fetch_info(crawl_ctx *c)
{
  zl_req **v = calloc(c->nrepos ? c->nrepos : 1, sizeof *v);
  int rc = v ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++)
    if (!(v[i] = new_req(fmt_alloc("%s/api/models/%s", c->endpoint, c->repos[i].id), API_MAX)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  zl_http_phase(&c->http, "info", c->nrepos, 0);
  rc = rc ? rc : zl_http_run(&c->http, v, c->nrepos);
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++)
    take_info(c, &c->repos[i], v[i]);
  free_reqs(v, c->nrepos);
  return rc;
}

/* ---- the file tree ----------------------------------------------------------- */

static int selected(const crawl_ctx *c, const char *path)
{
  if (c->o->ninclude == 0)
    return 1;
  for (size_t i = 0; i < c->o->ninclude; i++)
    if (fnmatch(c->o->include[i], path, 0) == 0)
      return 1;
  return 0;
}

static int add_file(crawl_ctx *c, cr_repo *repo, json_t *e)
{
  const char *path = json_string_value(json_object_get(e, "path"));
  const char *oid = json_string_value(json_object_get(e, "oid"));
  json_t *size = json_object_get(e, "size"), *lfs = json_object_get(e, "lfs");
  const char *sha = lfs ? json_string_value(json_object_get(lfs, "oid")) : NULL;
  if (!path || !json_is_integer(size) || json_integer_value(size) < 0 || !oid || strlen(oid) != 40 ||
      !is_hex(oid, 40) || (lfs && (!sha || strlen(sha) != 64 || !is_hex(sha, 64)))) {
    cr_problem(c, "%s: tree: an entry without a valid path, size, oid or lfs.oid", repo->id);
    return 0;
  }
  if (zllm_path_check_relative(path, repo->id) < 0) {
    cr_problem(c, "%s: tree: %s", repo->id, zllm_error_last());
    return 0;
  }
  if (strncmp(path, ".zllm/", 6) == 0 || strcmp(path, ".zllm") == 0) {
    /* the snapshot keeps its own state there, and every reader skips it */
    char shown[1100];
    zllm_escape_text(shown, sizeof shown, path);
    cr_problem(c, "%s: tree: %s: .zllm/ is reserved for the snapshot's own state; not fetched", repo->id, shown);
    return 0;
  }
  if (!selected(c, path))
    return 0;
  if (repo->nfiles >= MAX_FILES_PER_REPO) {
    cr_problem(c, "%s: tree: more than %d files; the rest are skipped", repo->id, MAX_FILES_PER_REPO);
    return 0;
  }
  cr_file *v = realloc(repo->files, (repo->nfiles + 1) * sizeof *v);
  if (!v)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  repo->files = v;
  cr_file *f = &v[repo->nfiles];
  memset(f, 0, sizeof *f);
  if (!(f->path = strdup(path)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  f->size = (uint64_t)json_integer_value(size);
  memcpy(f->oid, oid, 41);
  if (sha)
    memcpy(f->sha256, sha, 65);
  repo->nfiles++;
  return 0;
}

static int take_tree_page(crawl_ctx *c, cr_repo *repo, zl_req *r)
{
  char why[1024];
  json_t *page = r->ok ? parse_json(r, why, sizeof why) : NULL, *e;
  size_t i;
  int rc = 0;
  free(repo->tree_next);
  repo->tree_next = NULL;
  if (!r->ok || !json_is_array(page)) {
    if (r->ok && page)
      snprintf(why, sizeof why, "%s: api-json: not an array", r->url);
    repo->error = strdup(r->ok ? why : r->err);
    cr_problem(c, "%s: %s", repo->id, repo->error ? repo->error : "tree failed");
    json_decref(page);
    return 0;
  }
  json_array_foreach(page, i, e)
  {
    const char *type = json_string_value(json_object_get(e, "type"));
    if (type && strcmp(type, "file") == 0 && (rc = add_file(c, repo, e)) < 0)
      break;
  }
  int loop = rc == 0 && r->next_url && page_seen_add(&repo->tree_pages, r->next_url);
  if (rc == 0 && r->next_url && !same_endpoint(c, r->next_url))
    cr_problem(c, "%s: tree: the next page leaves the endpoint; the rest is skipped", repo->id);
  else if (loop || (rc == 0 && r->next_url && repo->tree_pages.n > MAX_TREE_PAGES)) {
    /* a listing cut short would crawl a repo without some of its files */
    repo->error = loop ? fmt_alloc("tree: the next page %s was already fetched (a paging loop)", r->next_url)
                       : fmt_alloc("tree: more than %d pages", MAX_TREE_PAGES);
    cr_problem(c, "%s: %s; the repo is not crawled", repo->id, repo->error ? repo->error : "tree: paging loop");
  } else if (rc == 0 && r->next_url)
    repo->tree_next = strdup(r->next_url);
  json_decref(page);
  return rc;
}

/* Every repo's first page, then the next pages of those that have more. */
static int fetch_trees(crawl_ctx *c)
{
  int rc = 0, first = 1;
  for (;;) {
    size_t n = 0;
    zl_req **v = calloc(c->nrepos ? c->nrepos : 1, sizeof *v);
    cr_repo **who = calloc(c->nrepos ? c->nrepos : 1, sizeof *who);
    if (!v || !who)
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < c->nrepos; i++) {
      cr_repo *r = &c->repos[i];
      if (r->error || (!first && !r->tree_next))
        continue;
      char *url = first ? fmt_alloc("%s/api/models/%s/tree/%s?recursive=true", c->endpoint, r->id, r->sha)
                        : strdup(r->tree_next);
      if (first && url)
        page_seen_add(&r->tree_pages, url);
      if (!(v[n] = new_req(url, API_PAGE_MAX)))
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      who[n++] = r;
    }
    zl_http_phase(&c->http, "tree", n, 0);
    rc = rc ? rc : zl_http_run(&c->http, v, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
      rc = take_tree_page(c, who[i], v[i]);
    free_reqs(v, n);
    free(who);
    first = 0;
    if (rc < 0 || n == 0)
      return rc;
  }
}

/* ---- verification -------------------------------------------------------- */

/* git's object id of a blob: SHA-1 of "blob <size>\0" and the bytes. */
static int git_blob_sha1(const char *path, uint64_t size, char hex[41])
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char out[20], *buf = malloc(1 << 20);
  char head[64];
  int n = snprintf(head, sizeof head, "blob %llu", (unsigned long long)size);
  int fd = -1, rc = zllm_open_regular(AT_FDCWD, path, O_RDONLY, path, &fd); /* no FIFO planted there */
  FILE *f = rc == 0 ? fdopen(fd, "rb") : NULL;
  if (!f && fd >= 0)
    close(fd);
  if (rc == 0 && !(md && buf && f && EVP_DigestInit_ex(md, EVP_sha1(), NULL) &&
                   EVP_DigestUpdate(md, head, (size_t)n + 1)))
    rc = zllm_error_set_errno("%s: cannot hash", path);
  size_t got;
  while (rc == 0 && (got = fread(buf, 1, 1 << 20, f)) > 0)
    if (!EVP_DigestUpdate(md, buf, got))
      rc = zllm_error_set(ZLLM_ERROR, "%s: SHA-1 failed", path);
  if (rc == 0 && (ferror(f) || !EVP_DigestFinal_ex(md, out, NULL)))
    rc = zllm_error_set(ZLLM_EIO, "%s: read failed", path);
  if (rc == 0)
    zllm_hex(hex, out, 20);
  if (f)
    fclose(f);
  free(buf);
  EVP_MD_CTX_free(md);
  return rc;
}

/* The file's hash as the tree lists it: SHA-256 for LFS files, else git's. */
static int file_hash(const cr_file *f, const char *path, char *hex)
{
  if (!f->sha256[0])
    return git_blob_sha1(path, f->size, hex);
  zllm_sha256 sha;
  int rc = zllm_sha256_file(&sha, path);
  if (rc == 0)
    zllm_hex(hex, sha.b, 32);
  return rc;
}

static const char *listed_hash(const cr_file *f)
{
  return f->sha256[0] ? f->sha256 : f->oid;
}

/* ---- the verified record ------------------------------------------------- */

static int cmp_line(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the lines of one ledger file to c->verified (unsorted). */
static int load_ledger(crawl_ctx *c, const char *path)
{
  char *text = NULL;
  size_t len = 0;
  int rc = access(path, F_OK) == 0 ? zllm_read_small_file(&text, &len, path, (size_t)1 << 30) : 0;
  for (char *line = text, *next; rc == 0 && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    char **v = realloc(c->verified, (c->nverified + 1) * sizeof *v);
    if (!v || !(v[c->nverified] = strdup(line))) {
      c->verified = v ? v : c->verified;
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      break;
    }
    c->verified = v;
    c->nverified++;
  }
  free(text);
  return rc;
}

/* verified.tsv and the ledgers of ranks of an earlier crawl over ranks that
 * were not folded into it (the job was killed): every rank reads them all,
 * so a crawl resumes whatever the rank count was. */
static int load_verified(crawl_ctx *c)
{
  char *path = zllm_path_join(c->state, CR_LEDGER), *pattern = zllm_path_join(c->state, "verified.*.tsv");
  glob_t g = {0};
  int rc = path && pattern ? load_ledger(c, path) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int grc = rc == 0 ? glob(pattern, 0, NULL, &g) : GLOB_NOMATCH;
  for (size_t i = 0; rc == 0 && grc == 0 && i < g.gl_pathc; i++)
    rc = load_ledger(c, g.gl_pathv[i]);
  if (grc == 0)
    globfree(&g);
  if (rc == 0 && c->nverified)
    qsort(c->verified, c->nverified, sizeof *c->verified, cmp_line);
  free(pattern);
  free(path);
  return rc;
}

static char *record_line(const char *repo, const cr_file *f, const struct stat *st)
{
  return fmt_alloc("%s\t%s\t%llu\t%lld.%09ld\t%s", repo, f->path, (unsigned long long)f->size,
                   (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, listed_hash(f));
}

static int append_verified(crawl_ctx *c, const char *line)
{
  char *path = zllm_path_join(c->state, c->ledger);
  if (!path)
    return ZLLM_ENOMEM;
  FILE *f = fopen(path, "a");
  int rc = f && fprintf(f, "%s\n", line) > 0 && fflush(f) == 0 ? 0 : zllm_error_set_errno("%s: cannot append", path);
  if (f)
    fclose(f);
  free(path);
  return rc;
}

/* True when the final file is already there and verified (by the record, or
 * by hashing it when the record is missing or stale). */
static int already_verified(crawl_ctx *c, const char *repo, const cr_file *f, const char *final)
{
  struct stat st;
  char hex[65];
  if (stat(final, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->size)
    return 0;
  char *line = record_line(repo, f, &st);
  int hit = line && c->nverified && bsearch(&line, c->verified, c->nverified, sizeof *c->verified, cmp_line);
  if (!hit && line && file_hash(f, final, hex) == 0 && strcmp(hex, listed_hash(f)) == 0) {
    hit = 1;
    append_verified(c, line);
  }
  free(line);
  return hit;
}

/* After every rank is done: the ledgers of ranks (this crawl's, or an
 * earlier crawl's over ranks that was killed) appended to verified.tsv, then
 * removed.  Killed in between, a line is there twice, which is harmless; a
 * ledger never folded is still read by the next crawl. */
int cr_fold_ledgers(const crawl_ctx *c)
{
  char *pattern = zllm_path_join(c->state, "verified.*.tsv"), *main = zllm_path_join(c->state, CR_LEDGER);
  glob_t g = {0};
  int rc = pattern && main ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int grc = rc == 0 ? glob(pattern, 0, NULL, &g) : GLOB_NOMATCH;
  FILE *out = grc == 0 ? fopen(main, "a") : NULL;
  if (grc == 0 && !out)
    rc = zllm_error_set_errno("%s: cannot append", main);
  for (size_t i = 0; rc == 0 && grc == 0 && i < g.gl_pathc; i++) {
    char *text = NULL;
    size_t len = 0;
    rc = zllm_read_small_file(&text, &len, g.gl_pathv[i], (size_t)1 << 30);
    if (rc == 0 && len && fwrite(text, 1, len, out) != len)
      rc = zllm_error_set_errno("%s: cannot append", main);
    if (rc == 0 && fflush(out) == 0 && fsync(fileno(out)) == 0)
      unlink(g.gl_pathv[i]);
    free(text);
  }
  if (out && fclose(out) != 0 && rc == 0)
    rc = zllm_error_set_errno("%s: cannot append", main);
  if (grc == 0)
    globfree(&g);
  free(pattern);
  free(main);
  return rc;
}

/* ---- downloads ------------------------------------------------------------- */

typedef struct {
  cr_repo *repo;
  cr_file *file;
  char *final;
} dl_job;

static char *partial_path(const crawl_ctx *c, const cr_repo *repo, const cr_file *f)
{
  char *key = fmt_alloc("%s/%s", repo->id, f->path);
  char *p = key ? fmt_alloc("%s/partial/%s-%016llx.part", c->state, listed_hash(f),
                            (unsigned long long)XXH3_64bits(key, strlen(key)))
                : NULL;
  free(key);
  return p;
}

/* The verified partial file renamed to OUT/<repo>/<path>: the directories
 * under OUT are opened one by one without following a symlink (a snapshot
 * directory someone linked elsewhere is an error, not a redirect). */
static int place_file(crawl_ctx *c, const dl_job *j, const char *partial)
{
  char *rel = fmt_alloc("%s/%s", j->repo->id, j->file->path);
  char *slash = rel ? strrchr(rel, '/') : NULL;
  int dfd = -1, rc = rel ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0)
    *slash = '\0';
  rc = rc ? rc : zllm_open_dir_beneath(c->o->out, rel, 1, 0, &dfd);
  if (rc == 0 && renameat(AT_FDCWD, partial, dfd, slash + 1) < 0)
    rc = zllm_error_set_errno("cannot move the file into the snapshot");
  if (dfd >= 0)
    close(dfd);
  free(rel);
  return rc;
}

/* Size and hash check, then the rename into the snapshot. */
static void settle(crawl_ctx *c, dl_job *j, zl_req *r)
{
  char hex[65];
  struct stat st;
  if (!r->ok) {
    cr_problem(c, "%s/%s: %s", j->repo->id, j->file->path, r->err);
    c->s->files_failed++;
    return;
  }
  const char *why = NULL;
  if (stat(r->path, &st) < 0 || (uint64_t)st.st_size != j->file->size)
    why = "size differs from the listing";
  else if (file_hash(j->file, r->path, hex) < 0)
    why = zllm_error_last();
  else if (strcmp(hex, listed_hash(j->file)) != 0)
    why = j->file->sha256[0] ? "sha256 differs from the listed LFS oid" : "git blob id differs from the listing";
  if (!why && place_file(c, j, r->path) < 0)
    why = zllm_error_last();
  if (why) {
    unlink(r->path); /* a bad file is fetched again next time, never kept */
    cr_problem(c, "%s/%s: %s (listed %s)", j->repo->id, j->file->path, why, listed_hash(j->file));
    c->s->files_failed++;
    return;
  }
  char *line = stat(j->final, &st) == 0 ? record_line(j->repo->id, j->file, &st) : NULL;
  if (line)
    append_verified(c, line);
  free(line);
  c->s->files++;
}

static void settle_done(zl_req *r, void *ctx)
{
  settle(ctx, r->user, r);
}

static int plan_downloads(crawl_ctx *c, dl_job **jobs, zl_req ***reqs, size_t *n, uint64_t *bytes)
{
  size_t total = 0;
  for (size_t i = 0; i < c->nrepos; i++)
    total += c->repos[i].error ? 0 : c->repos[i].nfiles;
  *jobs = calloc(total ? total : 1, sizeof **jobs);
  *reqs = calloc(total ? total : 1, sizeof **reqs);
  *n = 0;
  *bytes = 0;
  if (!*jobs || !*reqs)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->nrepos; i++) {
    cr_repo *repo = &c->repos[i];
    for (size_t k = 0; !repo->error && k < repo->nfiles; k++) {
      cr_file *f = &repo->files[k];
      if (f->other)
        continue;
      char *final = fmt_alloc("%s/%s/%s", c->o->out, repo->id, f->path);
      if (!final)
        return zllm_error_set(ZLLM_ENOMEM, "out of memory");
      c->s->bytes_listed += f->size;
      if (already_verified(c, repo->id, f, final)) {
        c->s->files_skipped++;
        if (c->http.on_bytes) /* done already: the job-wide count includes it */
          c->http.on_bytes(f->size, c->http.bytes_ctx);
        free(final);
        continue;
      }
      char *esc = escape_path(f->path);
      zl_req *r = new_req(esc ? fmt_alloc("%s/%s/resolve/%s/%s", c->endpoint, repo->id, repo->sha, esc) : NULL, 0);
      free(esc);
      if (!r || !(r->path = partial_path(c, repo, f))) {
        free(final);
        zl_req_free(r);
        return zllm_error_set(ZLLM_ENOMEM, "out of memory");
      }
      r->sink = ZL_SINK_FILE;
      r->expect_size = f->size;
      (*jobs)[*n] = (dl_job){repo, f, final};
      (*reqs)[(*n)++] = r;
      *bytes += f->size;
    }
  }
  return 0;
}

static int download(crawl_ctx *c)
{
  dl_job *jobs = NULL;
  zl_req **reqs = NULL;
  size_t n = 0;
  uint64_t bytes = 0;
  char *partial = zllm_path_join(c->state, "partial");
  int rc = partial ? zllm_mkdir_p(partial, 0755) : ZLLM_ENOMEM;
  rc = rc ? rc : plan_downloads(c, &jobs, &reqs, &n, &bytes);
  zl_http_phase(&c->http, "download", n, bytes);
  for (size_t i = 0; rc == 0 && i < n; i++)
    reqs[i]->user = &jobs[i];
  c->http.on_done = settle_done;
  c->http.done_ctx = c;
  rc = rc ? rc : zl_http_run(&c->http, reqs, n);
  c->http.on_done = NULL;
  for (size_t i = 0; jobs && i < n; i++)
    free(jobs[i].final);
  free(jobs);
  free_reqs(reqs, n);
  free(partial);
  return rc;
}

/* ---- metadata only: safetensors headers by Range ---------------------------- */

static void summarize_header(crawl_ctx *c, cr_repo *repo, cr_file *f, zl_req *r8, zl_req *rh)
{
  uint8_t *prefix = malloc(8 + rh->body.len + 1);
  zllm_st_header *h = NULL;
  char name[1200];
  snprintf(name, sizeof name, "%s/%s", repo->id, f->path);
  if (!prefix)
    return;
  memcpy(prefix, r8->body.data, 8);
  memcpy(prefix + 8, rh->body.data ? rh->body.data : "", rh->body.len);
  if (zllm_st_parse(&h, name, prefix, 8 + rh->body.len, f->size) < 0) {
    f->error = strdup(zllm_error_last());
    cr_problem(c, "%s", zllm_error_last());
  } else {
    f->ntensors = h->ntensors;
    f->dtypes = json_object();
    for (size_t t = 0; t < h->ntensors && f->dtypes; t++) {
      const char *dt = zllm_dtype_get(h->tensors[t].dtype)->name;
      json_t *v = json_object_get(f->dtypes, dt);
      json_object_set_new(f->dtypes, dt,
                          json_integer((json_int_t)(h->tensors[t].nelem + (v ? (uint64_t)json_integer_value(v) : 0))));
    }
    c->s->headers++;
  }
  zllm_st_header_free(h);
  free(prefix);
}

static uint64_t header_length(const zl_req *r)
{
  const uint8_t *p = (const uint8_t *)r->body.data;
  uint64_t n = 0;
  for (int i = 7; r->body.len == 8 && i >= 0; i--)
    n = n << 8 | p[i];
  return n;
}

typedef struct {
  cr_repo *repo;
  cr_file *file;
} st_ref;

static int read_headers(crawl_ctx *c)
{
  size_t n = 0;
  for (size_t i = 0; i < c->nrepos; i++)
    for (size_t k = 0; !c->repos[i].error && k < c->repos[i].nfiles; k++)
      n += strstr(c->repos[i].files[k].path, ".safetensors") != NULL;
  st_ref *refs = calloc(n ? n : 1, sizeof *refs);
  zl_req **r8 = calloc(n ? n : 1, sizeof *r8), **rh = calloc(n ? n : 1, sizeof *rh);
  int rc = refs && r8 && rh ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  size_t m = 0;
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++)
    for (size_t k = 0; rc == 0 && !c->repos[i].error && k < c->repos[i].nfiles; k++) {
      cr_file *f = &c->repos[i].files[k];
      size_t len = strlen(f->path);
      if (f->other)
        continue;
      c->s->bytes_listed += f->size;
      if (len < 12 || strcmp(f->path + len - 12, ".safetensors") != 0)
        continue;
      char *esc = escape_path(f->path);
      r8[m] = new_req(esc ? fmt_alloc("%s/%s/resolve/%s/%s", c->endpoint, c->repos[i].id, c->repos[i].sha, esc)
                          : NULL, 8);
      free(esc);
      if (!r8[m])
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      else {
        r8[m]->has_range = 1;
        r8[m]->range_hi = 7;
        refs[m++] = (st_ref){&c->repos[i], f};
      }
    }
  zl_http_phase(&c->http, "header lengths", m, 8 * m);
  rc = rc ? rc : zl_http_run(&c->http, r8, m);
  size_t mh = 0;
  uint64_t want = 0;
  zl_req **hv = calloc(m ? m : 1, sizeof *hv);
  for (size_t i = 0; rc == 0 && i < m; i++) {
    cr_file *f = refs[i].file;
    uint64_t len = header_length(r8[i]);
    if (!r8[i]->ok || r8[i]->body.len != 8 || len == 0 || len > ZLLM_ST_HEADER_MAX || len > f->size - 8) {
      f->error = strdup(r8[i]->ok ? "safetensors: header-length: not a valid header length" : r8[i]->err);
      cr_problem(c, "%s/%s: %s", refs[i].repo->id, f->path, f->error ? f->error : "header");
      continue;
    }
    f->header_len = len;
    if (!(rh[i] = new_req(strdup(r8[i]->url), (size_t)len)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    else {
      rh[i]->has_range = 1;
      rh[i]->range_lo = 8;
      rh[i]->range_hi = 8 + len - 1;
      hv[mh++] = rh[i];
      want += len;
    }
  }
  zl_http_phase(&c->http, "headers", mh, want);
  rc = rc ? rc : zl_http_run(&c->http, hv, mh);
  for (size_t i = 0; rc == 0 && i < m; i++) {
    if (!rh[i])
      continue;
    if (rh[i]->ok && rh[i]->body.len == refs[i].file->header_len)
      summarize_header(c, refs[i].repo, refs[i].file, r8[i], rh[i]);
    else
      cr_problem(c, "%s/%s: %s", refs[i].repo->id, refs[i].file->path, rh[i]->ok ? "header cut short" : rh[i]->err);
  }
  free(hv);
  free_reqs(r8, m);
  free_reqs(rh, m);
  free(refs);
  return rc;
}

/* ---- metadata.jsonl ---------------------------------------------------------- */

static json_t *repo_json(const cr_repo *r)
{
  json_t *o = r->meta ? json_deep_copy(r->meta) : json_pack("{s:s}", "id", r->id), *files = json_array();
  for (size_t i = 0; o && files && i < r->nfiles; i++) {
    const cr_file *f = &r->files[i];
    json_t *jf = json_pack("{s:s,s:I,s:s}", "path", f->path, "size", (json_int_t)f->size, "git_oid", f->oid);
    if (jf && f->sha256[0])
      json_object_set_new(jf, "lfs_sha256", json_string(f->sha256));
    if (jf && f->dtypes) {
      json_object_set_new(jf, "header_bytes", json_integer((json_int_t)f->header_len));
      json_object_set_new(jf, "tensors", json_integer((json_int_t)f->ntensors));
      json_object_set(jf, "parameters", f->dtypes);
    }
    if (jf && f->error)
      json_object_set_new(jf, "error", json_string(f->error));
    json_array_append_new(files, jf);
  }
  if (o) {
    json_object_set_new(o, "files", files);
    if (r->error)
      json_object_set_new(o, "error", json_string(r->error));
  } else {
    json_decref(files);
  }
  return o;
}

int cr_write_metadata(crawl_ctx *c)
{
  zllm_buf b = ZLLM_BUF_INIT;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++) {
    char *line = cr_metadata_line(&c->repos[i]);
    rc = line ? zllm_buf_printf(&b, "%s\n", line) : ZLLM_ENOMEM;
    free(line);
  }
  char *path = zllm_path_join(c->state, "metadata.jsonl");
  rc = rc ? rc : path ? zllm_write_file_atomic(path, b.data ? b.data : "", b.len) : ZLLM_ENOMEM;
  free(path);
  zllm_buf_free(&b);
  return rc;
}

/* ---- the job ------------------------------------------------------------------ */

static void free_repos(crawl_ctx *c)
{
  for (size_t i = 0; i < c->nrepos; i++) {
    cr_repo *r = &c->repos[i];
    for (size_t k = 0; k < r->nfiles; k++) {
      free(r->files[k].path);
      free(r->files[k].error);
      json_decref(r->files[k].dtypes);
    }
    free(r->files);
    free(r->id);
    free(r->error);
    free(r->tree_next);
    free(r->tree_pages.h);
    json_decref(r->meta);
  }
  free(c->repos);
  free(c->repo_ids.h);
  c->repo_ids = (page_seen){NULL, 0, 0};
  c->repos_cap = 0;
}

int cr_begin(crawl_ctx *c, const zllm_crawl_options *o, zllm_crawl_stats *s, const char *ledger)
{
  memset(c, 0, sizeof *c);
  memset(s, 0, sizeof *s);
  c->o = o;
  c->s = s;
  c->ledger = ledger;
  s->ranks = 1;
  size_t n = strlen(o->endpoint);
  while (n && o->endpoint[n - 1] == '/')
    n--;
  if (strncmp(o->endpoint, "http://", 7) != 0 && strncmp(o->endpoint, "https://", 8) != 0)
    return zllm_error_set(ZLLM_EINVAL, "crawl: the endpoint must be an http:// or https:// URL");
  c->endpoint = strndup(o->endpoint, n);
  c->state = zllm_path_join(o->out, ".zllm");
  if (!c->endpoint || !c->state)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int rc = zllm_mkdir_p(c->state, 0755);
  rc = rc ? rc : load_verified(c);
  rc = rc ? rc : zl_http_init(&c->http, o->token, o->jobs, o->retry_budget, o->progress);
  if (rc == 0 && o->low_speed_bytes > 0)
    c->http.low_speed_bytes = o->low_speed_bytes;
  if (rc == 0 && o->low_speed_seconds > 0)
    c->http.low_speed_seconds = o->low_speed_seconds;
  if (rc == 0 && o->min_rate > 0)
    c->http.min_rate = o->min_rate;
  if (rc == 0 && o->rate)
    rc = zl_pacer_configure(&c->http.pacer, o->rate);
  /* the endpoint's origin ("scheme://host[:port]"): API answers come from there */
  const char *host = strstr(c->endpoint, "://") + 3;
  size_t olen = (size_t)(host - c->endpoint) + strcspn(host, "/?#");
  if (rc == 0 && !(c->http.origin = strndup(c->endpoint, olen)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return rc;
}

int cr_plan_repos(crawl_ctx *c, char *const *ids, size_t n)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = add_repo(c, ids[i]);
  rc = rc ? rc : fetch_info(c);
  return rc ? rc : fetch_trees(c);
}

void cr_clear_repos(crawl_ctx *c)
{
  free_repos(c);
  c->repos = NULL;
  c->nrepos = 0;
}

char *cr_metadata_line(const cr_repo *r)
{
  json_t *o = repo_json(r);
  char *line = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if (!line)
    zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return line;
}

/* The repos given, or listed; each one's info and file tree. */
int cr_plan(crawl_ctx *c)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->o->nrepos; i++)
    rc = add_repo(c, c->o->repos[i]);
  if (rc == 0 && c->o->nrepos == 0)
    rc = list_models(c);
  rc = rc ? rc : fetch_info(c);
  return rc ? rc : fetch_trees(c);
}

int cr_fetch(crawl_ctx *c)
{
  return c->o->metadata_only ? read_headers(c) : download(c);
}

void cr_end(crawl_ctx *c)
{
  c->s->repos = c->nrepos;
  for (size_t i = 0; i < c->nrepos; i++)
    c->s->repos_failed += c->repos[i].error != NULL;
  c->s->bytes_received = c->http.bytes_received;
  c->s->retries = c->http.retries_used;
  c->s->rate_waited = zl_pacer_waited(&c->http.pacer);
  for (int k = 0; k < ZL_RL_NCLASSES; k++) {
    c->s->throttled += c->http.pacer.b[k].throttled;
    c->s->requests += (uint64_t)c->http.pacer.b[k].requests;
  }
  c->s->rank_requests_min = c->s->rank_requests_max = c->s->requests;
  zl_http_cleanup(&c->http);
  free_repos(c);
  zllm_strv_free(c->verified, c->nverified);
  free(c->endpoint);
  free(c->state);
  c->repos = NULL;
  c->verified = NULL;
  c->endpoint = c->state = NULL;
}

int zllm_crawl(const zllm_crawl_options *o, zllm_crawl_stats *stats)
{
  crawl_ctx c;
  if (o->select) {
    int rc = cr_crawl_selected(o, stats, 0, 1, MPI_COMM_NULL);
    if (rc == 0 && (stats->problems || stats->files_failed || stats->repos_failed))
      rc = zllm_error_set(ZLLM_ERROR, "crawl: %llu problems (each reported above)", (unsigned long long)stats->problems);
    return rc;
  }
  int rc = cr_begin(&c, o, stats, CR_LEDGER);
  rc = rc ? rc : cr_plan(&c);
  rc = rc ? rc : cr_fetch(&c);
  rc = rc ? rc : cr_write_metadata(&c);
  rc = rc ? rc : cr_fold_ledgers(&c);
  cr_end(&c);
  if (rc == 0 && (stats->problems || stats->files_failed || stats->repos_failed))
    rc = zllm_error_set(ZLLM_ERROR, "crawl: %llu problems (each reported above)",
                        (unsigned long long)stats->problems);
  return rc;
}
