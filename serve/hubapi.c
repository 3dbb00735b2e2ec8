/* The Hub API's answers from the catalog: models, model info, tree and
 * paths-info, with the ids Hub clients check (git blob and tree ids, LFS
 * SHA-256s).  The catalog is read at every request, so a repo packed while
 * the server runs appears once its commit lands. */
#include <ctype.h>
#include <fnmatch.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/serve_internal.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/log.h"
#include "zllm/path.h"

#define LFS_MIN_SIZE ((uint64_t)10 << 20) /* the Hub refuses larger files outside LFS */

/* ---- repos and revisions ------------------------------------------------ */

static int is_sha1_hex(const char *s)
{
  return s && strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* What stands for a commit when ingest recorded none: the files decide it. */
static int synth_revision(zs_repo *r)
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned dl = 0;
  int ok = md && EVP_DigestInit_ex(md, EVP_sha1(), NULL) && EVP_DigestUpdate(md, "zllm revision\n", 14) &&
           EVP_DigestUpdate(md, r->name, strlen(r->name) + 1);
  for (size_t i = 0; ok && i < r->nfiles; i++)
    ok = EVP_DigestUpdate(md, r->files[i].path, strlen(r->files[i].path) + 1) &&
         EVP_DigestUpdate(md, r->files[i].sha256, 32);
  ok = ok && EVP_DigestFinal_ex(md, d, &dl) && dl == 20;
  EVP_MD_CTX_free(md);
  if (!ok)
    return zllm_error_set(ZLLM_ERROR, "SHA-1 failed");
  zllm_hex(r->revision, d, 20);
  return 0;
}

/* Keeps the files a client can be sent: a row of an archive from elsewhere
 * (or packed before the path rule held UTF-8) whose name breaks the path
 * rule, or whose size is negative, is left out of every listing and named
 * in the log, never sent as a malformed entry (JSON holds UTF-8 only). */
static void keep_servable(zs_repo *r)
{
  size_t kept = 0;
  for (size_t i = 0; i < r->nfiles; i++) {
    zllm_archive_file *f = &r->files[i];
    char what[512];
    snprintf(what, sizeof what, "%s", r->name);
    int bad_path = zllm_path_check_relative(f->path, what) < 0;
    if (bad_path || f->size > (uint64_t)INT64_MAX) {
      if (bad_path)
        ZLLM_WARN("zllm serve: %s; the file is left out", zllm_error_last());
      else
        ZLLM_WARN("zllm serve: %s: file %lld has a negative size in the catalog; left out", r->name, (long long)f->id);
      free(f->path);
      continue;
    }
    r->files[kept++] = *f;
  }
  r->nfiles = kept;
}

/* A listed repo's files and revision (the recorded one, or the files'). */
static int repo_fill(zllm_archive *a, const char *name, const char *recorded, zs_repo *r)
{
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  if (is_sha1_hex(recorded))
    memcpy(r->revision, recorded, 41);
  int rc = zllm_archive_files(a, name, &r->files, &r->nfiles);
  if (rc == 0)
    keep_servable(r);
  if (rc == 0 && !r->revision[0])
    rc = synth_revision(r);
  if (rc < 0)
    zs_repo_free(r);
  return rc;
}

int zs_repo_load(zllm_archive *a, const char *name, zs_repo *r)
{
  zllm_archive_repo found;
  int rc = zllm_archive_repo_find(a, name, &found);
  if (rc < 0) {
    memset(r, 0, sizeof *r);
    return rc;
  }
  rc = repo_fill(a, name, found.revision, r);
  free(found.name);
  free(found.revision);
  return rc;
}

void zs_repo_free(zs_repo *r)
{
  zllm_archive_files_free(r->files, r->nfiles);
  r->files = NULL;
  r->nfiles = 0;
}

int zs_repo_rev_ok(const zs_repo *r, const char *rev)
{
  return !rev[0] || strcmp(rev, "main") == 0 || strcmp(rev, "HEAD") == 0 || strcmp(rev, r->revision) == 0;
}

/* ---- LFS and git ids ------------------------------------------------------ */

int zs_is_lfs(const char *path, uint64_t size)
{
  static const char *const patterns[] = {
      "*.7z",  "*.arrow", "*.bin",  "*.bz2",     "*.ckpt", "*.ftz",  "*.gz",  "*.h5",    "*.joblib",
      "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot",  "*.parquet", "*.pb",
      "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite",
      "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*", "*.gguf"};
  if (size >= LFS_MIN_SIZE || strncmp(path, "saved_model/", 12) == 0)
    return 1;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++)
    if (fnmatch(patterns[i], base, 0) == 0)
      return 1;
  return 0;
}

size_t zs_lfs_pointer(const zllm_archive_file *f, char *out, size_t cap)
{
  char hex[65];
  zllm_hex(hex, f->sha256, 32);
  int n = snprintf(out, cap, "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %llu\n", hex,
                   (unsigned long long)f->size);
  return n < 0 ? 0 : (size_t)n;
}

struct zs_oid_cache {
  pthread_mutex_t lock;
  int64_t *ids;
  uint8_t (*oids)[20];
  size_t n, cap; /* open addressing, cap a power of two, at most half full */
};

int zs_oid_cache_new(zs_oid_cache **out)
{
  zs_oid_cache *c = calloc(1, sizeof *c);
  if (!c || pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  *out = c;
  return 0;
}

void zs_oid_cache_free(zs_oid_cache *c)
{
  if (!c)
    return;
  pthread_mutex_destroy(&c->lock);
  free(c->ids);
  free(c->oids);
  free(c);
}

static size_t slot_of(const zs_oid_cache *c, int64_t id)
{
  size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (c->cap - 1);
  while (c->ids[i] && c->ids[i] != id)
    i = (i + 1) & (c->cap - 1);
  return i;
}

static int cache_get(zs_oid_cache *c, int64_t id, uint8_t oid[20])
{
  pthread_mutex_lock(&c->lock);
  int hit = c->cap && c->ids[slot_of(c, id)] == id;
  if (hit)
    memcpy(oid, c->oids[slot_of(c, id)], 20);
  pthread_mutex_unlock(&c->lock);
  return hit;
}

static void cache_put(zs_oid_cache *c, int64_t id, const uint8_t oid[20])
{
  pthread_mutex_lock(&c->lock);
  if (2 * (c->n + 1) > c->cap) { /* grow; a failure only forgets */
    size_t ncap = c->cap ? 2 * c->cap : 1024;
    int64_t *ids = calloc(ncap, sizeof *ids);
    uint8_t(*oids)[20] = calloc(ncap, sizeof *oids);
    if (ids && oids) {
      zs_oid_cache old = *c;
      c->ids = ids;
      c->oids = oids;
      c->cap = ncap;
      for (size_t i = 0; i < old.cap; i++)
        if (old.ids[i]) {
          size_t s = slot_of(c, old.ids[i]);
          c->ids[s] = old.ids[i];
          memcpy(c->oids[s], old.oids[i], 20);
        }
      free(old.ids);
      free(old.oids);
    } else {
      free(ids);
      free(oids);
    }
  }
  if (2 * (c->n + 1) <= c->cap) {
    size_t s = slot_of(c, id);
    if (!c->ids[s])
      c->n++;
    c->ids[s] = id;
    memcpy(c->oids[s], oid, 20);
  }
  pthread_mutex_unlock(&c->lock);
}

/* git's blob id of a small file's bytes, decoded through a reader (which
 * also checks them against their SHA-256). */
static int blob_oid_of_bytes(zllm_archive *a, const zs_repo *r, const zllm_archive_file *f, uint8_t oid[20])
{
  zllm_file_reader *rd = NULL;
  uint8_t *bytes = malloc(f->size ? f->size : 1);
  int rc = bytes ? zllm_file_reader_open(&rd, a, r->name, f->path) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (uint64_t off = 0; rc == 0 && off < f->size;) {
    int64_t got = zllm_file_reader_read(rd, off, bytes + off, (size_t)(f->size - off));
    rc = got < 0 ? (int)got : got == 0 ? zllm_error_set(ZLLM_EFORMAT, "%s: ends early", f->path) : 0;
    off += got > 0 ? (uint64_t)got : 0;
  }
  if (rc == 0 && !zllm_file_reader_verified(rd))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s/%s: not verified", r->name, f->path);
  rc = rc ? rc : zllm_git_oid(oid, "blob", bytes, (size_t)f->size);
  zllm_file_reader_close(rd);
  free(bytes);
  return rc;
}

int zs_file_oid_raw(zs_oid_cache *c, zllm_archive *a, const zs_repo *r, const zllm_archive_file *f,
                        uint8_t oid[20])
{
  if (zs_is_lfs(f->path, f->size)) {
    char ptr[200];
    return zllm_git_oid(oid, "blob", ptr, zs_lfs_pointer(f, ptr, sizeof ptr));
  }
  if (cache_get(c, f->id, oid))
    return 0;
  int rc = blob_oid_of_bytes(a, r, f, oid);
  if (rc == 0)
    cache_put(c, f->id, oid);
  return rc;
}

int zs_file_oid(zs_oid_cache *c, zllm_archive *a, const zs_repo *r, const zllm_archive_file *f, char hex[41])
{
  uint8_t oid[20];
  int rc = zs_file_oid_raw(c, a, r, f, oid);
  if (rc == 0)
    zllm_hex(hex, oid, 20);
  return rc;
}

/* ---- JSON bodies ---------------------------------------------------------- */

static int dump(json_t *v, zllm_buf *out)
{
  char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  json_decref(v);
  if (!s)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int rc = zllm_buf_puts(out, s);
  free(s);
  return rc;
}

/* A file's entry in tree and paths-info. */
static json_t *file_entry(const zllm_archive_file *f, const uint8_t oid[20])
{
  char hex[65], ptr[200];
  json_t *e = json_object();
  zllm_hex(hex, oid, 20);
  json_object_set_new(e, "type", json_string("file"));
  json_object_set_new(e, "oid", json_string(hex));
  json_object_set_new(e, "size", json_integer((json_int_t)f->size));
  json_object_set_new(e, "path", json_string(f->path));
  if (zs_is_lfs(f->path, f->size)) {
    json_t *lfs = json_object();
    zllm_hex(hex, f->sha256, 32);
    json_object_set_new(lfs, "oid", json_string(hex));
    json_object_set_new(lfs, "size", json_integer((json_int_t)f->size));
    json_object_set_new(lfs, "pointerSize", json_integer((json_int_t)zs_lfs_pointer(f, ptr, sizeof ptr)));
    json_object_set_new(e, "lfs", lfs);
  }
  return e;
}

static json_t *dir_entry(const zs_node *d)
{
  char hex[41];
  json_t *e = json_object();
  zllm_hex(hex, d->oid, 20);
  json_object_set_new(e, "type", json_string("directory"));
  json_object_set_new(e, "oid", json_string(hex));
  json_object_set_new(e, "size", json_integer(0));
  json_object_set_new(e, "path", json_string(d->path));
  return e;
}

static int parse_cursor(const char *cursor, size_t *start)
{
  char *end = NULL;
  *start = 0;
  if (!cursor || !*cursor)
    return 0;
  unsigned long long v = strtoull(cursor, &end, 10);
  if (*end || cursor[0] == '-' || v > (1ull << 40))
    return zllm_error_set(ZLLM_EINVAL, "bad cursor"), 400;
  *start = (size_t)v;
  return 0;
}

static int icontains(const char *hay, const char *needle)
{
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return 1;
  return n == 0;
}

/* The link to the next page: the same query with cursor = next. */
static int next_link(zllm_buf *link, const char *base, const char *path, const char *query, size_t next)
{
  return zllm_buf_printf(link, "<%s%s?%s%scursor=%zu>; rel=\"next\"", base, path, query, *query ? "&" : "", next);
}

/* A query parameter's value, %-escaped for a URL. */
/* %-escapes all but unreserved characters (and '/' when keep_slash). */
static int put_escaped(zllm_buf *b, const char *v, int keep_slash)
{
  int rc = 0;
  for (const unsigned char *p = (const unsigned char *)v; rc == 0 && *p; p++)
    rc = isalnum(*p) || strchr("-._~", *p) || (keep_slash && *p == '/') ? zllm_buf_append(b, p, 1)
                                                                        : zllm_buf_printf(b, "%%%02X", *p);
  return rc;
}

/* A query parameter, "&key=value" with the value %-escaped. */
static int put_param(zllm_buf *q, const char *key, const char *v)
{
  if (!v || !*v)
    return 0;
  int rc = zllm_buf_printf(q, "%s%s=", q->len ? "&" : "", key);
  return rc ? rc : put_escaped(q, v, 0);
}

int zs_api_models(const zs_api *api, zllm_archive *a, const char *search, const char *author, const char *limit,
                  const char *cursor, zllm_buf *out, zllm_buf *link)
{
  zllm_archive_repo *repos = NULL;
  size_t n = 0, start = 0, cap = SIZE_MAX, taken = 0, seen = 0;
  char *end = NULL;
  if (limit && *limit) {
    unsigned long long l = strtoull(limit, &end, 10);
    if (*end || limit[0] == '-')
      return zllm_error_set(ZLLM_EINVAL, "bad limit"), 400;
    cap = l ? (size_t)(l < SIZE_MAX ? l : SIZE_MAX) : SIZE_MAX;
  }
  int rc = parse_cursor(cursor, &start);
  rc = rc ? rc : zllm_archive_repos(a, &repos, &n);
  json_t *arr = json_array();
  for (size_t i = 0; rc == 0 && i < n && seen < cap; i++) {
    const char *id = repos[i].name, *slash = strchr(id, '/');
    if ((search && !icontains(id, search)) ||
        (author && *author && (!slash || strlen(author) != (size_t)(slash - id) || strncmp(id, author, strlen(author)))))
      continue;
    if (seen++ < start)
      continue;
    if (taken == api->page_size) {
      zllm_buf q = ZLLM_BUF_INIT;
      rc = put_param(&q, "search", search);
      rc = rc ? rc : put_param(&q, "author", author);
      rc = rc ? rc : put_param(&q, "limit", limit);
      rc = rc ? rc : next_link(link, api->base_url, "/api/models", q.data ? q.data : "", start + taken);
      zllm_buf_free(&q);
      break;
    }
    zs_repo r;
    if ((rc = repo_fill(a, id, repos[i].revision, &r)) < 0)
      break;
    json_t *e = json_object();
    json_object_set_new(e, "_id", json_stringn(r.revision, 24));
    json_object_set_new(e, "id", json_string(id));
    json_object_set_new(e, "modelId", json_string(id));
    json_object_set_new(e, "sha", json_string(r.revision));
    json_object_set_new(e, "private", json_false());
    json_object_set_new(e, "likes", json_integer(0));
    json_object_set_new(e, "downloads", json_integer(0));
    json_object_set_new(e, "tags", json_array());
    json_array_append_new(arr, e);
    zs_repo_free(&r);
    taken++;
  }
  zllm_archive_repos_free(repos, n);
  if (rc)
    json_decref(arr);
  return rc ? rc : dump(arr, out);
}

int zs_api_info(zllm_archive *a, const zs_repo *r, zllm_buf *out)
{
  json_t *e = json_object(), *sib = json_array();
  json_object_set_new(e, "_id", json_stringn(r->revision, 24));
  json_object_set_new(e, "id", json_string(r->name));
  json_object_set_new(e, "modelId", json_string(r->name));
  json_object_set_new(e, "sha", json_string(r->revision));
  json_object_set_new(e, "private", json_false());
  json_object_set_new(e, "gated", json_false());
  json_object_set_new(e, "disabled", json_false());
  json_object_set_new(e, "likes", json_integer(0));
  json_object_set_new(e, "downloads", json_integer(0));
  json_object_set_new(e, "tags", json_array());
  uint64_t used = 0;
  for (size_t i = 0; i < r->nfiles; i++) {
    json_t *s = json_object();
    json_object_set_new(s, "rfilename", json_string(r->files[i].path));
    json_array_append_new(sib, s);
    used += r->files[i].size;
  }
  json_object_set_new(e, "siblings", sib);
  json_object_set_new(e, "usedStorage", json_integer((json_int_t)used));
  return dump(e, out);
}

/* Link to the next page of a tree: repo, revision and folder escaped. */
static int tree_link(zllm_buf *link, const zs_api *api, const zs_repo *r, const char *rev, const char *dir,
                     int recursive, size_t next)
{
  zllm_buf path = ZLLM_BUF_INIT;
  int rc = zllm_buf_printf(&path, "/api/models/%s/tree/", r->name);
  rc = rc ? rc : put_escaped(&path, rev, 0);
  if (rc == 0 && *dir)
    rc = zllm_buf_puts(&path, "/");
  rc = rc ? rc : put_escaped(&path, dir, 1);
  rc = rc ? rc : next_link(link, api->base_url, path.data, recursive ? "recursive=true" : "", next);
  zllm_buf_free(&path);
  return rc;
}

static json_t *node_entry(const zs_node *v)
{
  return v->is_dir ? dir_entry(v) : file_entry(v->file, v->oid);
}

/* A page of a folder's entries (or of everything below it, when
 * recursive), by path, so each folder comes before what it holds: a slice
 * of the repo's tree, so the page costs its own entries only. */
int zs_api_tree(const zs_api *api, const zs_tree *t, const char *rev, const char *dir, int recursive,
                const char *cursor, zllm_buf *out, zllm_buf *link)
{
  size_t start = 0, k = 0, first = 0;
  const zs_node *d = zs_tree_find(t, dir), *const *kids = NULL;
  int rc = parse_cursor(cursor, &start);
  if (rc == 0 && (!d || !d->is_dir))
    rc = (zllm_error_set(ZLLM_ENOTFOUND, "Entry not found"), 404);
  if (rc == 0 && recursive) {
    size_t end = 0;
    first = zs_tree_below(t, d, &end);
    k = end - first;
  } else if (rc == 0) {
    kids = zs_tree_children(t, d, &k);
  }
  json_t *arr = json_array();
  size_t end = start < k ? (api->page_size < k - start ? start + api->page_size : k) : start;
  for (size_t i = start; rc == 0 && i < end; i++)
    json_array_append_new(arr, node_entry(kids ? kids[i] : zs_tree_node(t, first + i)));
  if (rc == 0 && end < k)
    rc = tree_link(link, api, zs_tree_repo(t), rev, dir, recursive, end);
  if (rc)
    json_decref(arr);
  return rc ? rc : dump(arr, out);
}

int zs_api_paths_info(const zs_tree *t, char *const *paths, size_t np, zllm_buf *out)
{
  json_t *arr = json_array();
  for (size_t i = 0; i < np; i++) {
    const zs_node *v = *paths[i] ? zs_tree_find(t, paths[i]) : NULL;
    if (v)
      json_array_append_new(arr, node_entry(v));
  }
  return dump(arr, out);
}
