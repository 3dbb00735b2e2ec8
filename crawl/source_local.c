/* The local hub source: a snapshot directory in the plain layout, the
 * Hugging Face cache layout, or both side by side (see zllm/hub.h). */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/path.h"
#include "crawl/source_internal.h"

#define WALK_MAX_DEPTH 32
#define REPO_MAX_FILES 100000
#define REPO_MAX_DIRS 100000
#define REF_MAX 256

typedef struct {
  char *id;
  char *dir;     /* plain: the repo dir; cache: the models--* dir */
  bool is_cache;
  char *revision; /* plain: the commit a crawl pinned (.zllm/metadata.jsonl), or NULL */
  int64_t created; /* createdAt from the crawl, seconds since 1970; -1 unknown */
} local_repo;

typedef struct {
  char *root;    /* realpath of the hub root */
  local_repo *repos;
  size_t nrepos;
} local_hub;

static void local_destroy(void *impl)
{
  local_hub *h = impl;
  if (!h)
    return;
  for (size_t i = 0; i < h->nrepos; i++) {
    free(h->repos[i].id);
    free(h->repos[i].dir);
    free(h->repos[i].revision);
  }
  free(h->repos);
  free(h->root);
  free(h);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_repo(const void *a, const void *b)
{
  return strcmp(((const local_repo *)a)->id, ((const local_repo *)b)->id);
}

/* Sorted entry names of a directory, without "." and "..", and without
 * hidden names unless `hidden` (caller frees). */
static int list_dir(const char *dir, bool hidden, char ***names, size_t *n)
{
  DIR *d = opendir(dir);
  char **v = NULL;
  size_t count = 0;
  struct dirent *e;
  *names = NULL;
  *n = 0;
  if (!d)
    return zllm_error_set_errno("%s: cannot list", dir);
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || (!hidden && e->d_name[0] == '.'))
      continue;
    char **nv = realloc(v, (count + 1) * sizeof *nv);
    if (!nv || !(nv[count] = strdup(e->d_name))) {
      zllm_strv_free(nv ? nv : v, count);
      closedir(d);
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    }
    v = nv;
    count++;
  }
  closedir(d);
  if (count)
    qsort(v, count, sizeof *v, cmp_str);
  *names = v;
  *n = count;
  return 0;
}

static bool is_dir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int add_repo(local_hub *h, const char *id, const char *dir, bool is_cache)
{
  if (zllm_repo_id_check(id) < 0) {
    ZLLM_WARN("%s: skipped: %s", dir, zllm_error_last());
    return 0;
  }
  local_repo *r = realloc(h->repos, (h->nrepos + 1) * sizeof *r);
  if (!r)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  h->repos = r;
  r = &h->repos[h->nrepos];
  r->id = strdup(id);
  r->dir = strdup(dir);
  r->is_cache = is_cache;
  r->revision = NULL;
  r->created = -1;
  if (!r->id || !r->dir) {
    free(r->id);
    free(r->dir);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  h->nrepos++;
  return 0;
}

/* models--org--name -> "org/name" (HF encodes '/' as "--"). */
static int add_cache_repo(local_hub *h, const char *entry, const char *dir)
{
  char id[256];
  const char *rest = entry + strlen("models--");
  const char *sep = strstr(rest, "--");
  if (sep)
    snprintf(id, sizeof id, "%.*s/%s", (int)(sep - rest), rest, sep + 2);
  else
    snprintf(id, sizeof id, "%s", rest);
  return add_repo(h, id, dir, true);
}

static bool dir_has_regular_file(const char *dir)
{
  char **names = NULL;
  size_t n = 0;
  bool found = false;
  if (list_dir(dir, false, &names, &n) < 0)
    return false;
  for (size_t i = 0; i < n && !found; i++) {
    char *p = zllm_path_join(dir, names[i]);
    struct stat st;
    found = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
  }
  zllm_strv_free(names, n);
  return found;
}

/* A plain top-level directory is an org holding repos, unless it holds
 * files itself: then it is an org-less repo ("gpt2"). */
static int add_plain_entry(local_hub *h, const char *name, const char *dir)
{
  if (dir_has_regular_file(dir))
    return add_repo(h, name, dir, false);
  char **subs = NULL;
  size_t n = 0;
  int rc = list_dir(dir, false, &subs, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *sub = zllm_path_join(dir, subs[i]), id[512];
    if (!sub) {
      rc = ZLLM_ENOMEM;
      break;
    }
    snprintf(id, sizeof id, "%s/%s", name, subs[i]);
    if (is_dir(sub))
      rc = add_repo(h, id, sub, false);
    free(sub);
  }
  zllm_strv_free(subs, n);
  return rc;
}

static int scan_root(local_hub *h)
{
  char **names = NULL;
  size_t n = 0;
  int rc = list_dir(h->root, false, &names, &n);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char *dir = zllm_path_join(h->root, names[i]);
    if (!dir) {
      rc = ZLLM_ENOMEM;
      break;
    }
    if (!is_dir(dir))
      ; /* version.txt and other loose files at the root */
    else if (strncmp(names[i], "models--", 8) == 0)
      rc = add_cache_repo(h, names[i], dir);
    else if (strncmp(names[i], "datasets--", 10) && strncmp(names[i], "spaces--", 8))
      rc = add_plain_entry(h, names[i], dir);
    free(dir);
  }
  zllm_strv_free(names, n);
  if (rc < 0 || h->nrepos < 2)
    return rc;
  qsort(h->repos, h->nrepos, sizeof *h->repos, cmp_repo);
  /* the same repo in both layouts: keep the first, say so */
  size_t k = 1;
  for (size_t i = 1; i < h->nrepos; i++) {
    if (strcmp(h->repos[k - 1].id, h->repos[i].id) == 0) {
      ZLLM_WARN("%s: repo '%s' also at %s; keeping that one", h->repos[i].dir, h->repos[i].id,
                h->repos[k - 1].dir);
      free(h->repos[i].id);
      free(h->repos[i].dir);
    } else {
      h->repos[k++] = h->repos[i];
    }
  }
  h->nrepos = k;
  return 0;
}

static int local_list_repos(zllm_source *src, char ***ids, size_t *n)
{
  local_hub *h = zllm_source_impl(src);
  char **v = calloc(h->nrepos ? h->nrepos : 1, sizeof *v);
  if (!v)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < h->nrepos; i++) {
    if (!(v[i] = strdup(h->repos[i].id))) {
      zllm_strv_free(v, i);
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    }
  }
  *ids = v;
  *n = h->nrepos;
  return 0;
}

typedef struct {
  uint64_t dev, ino;
} dir_id;

typedef struct {
  zllm_repo *repo;
  const char *contain; /* symlinks must resolve inside this directory */
  size_t cap;
  dir_id *dirs;        /* every directory descended into, by identity */
  size_t ndirs, dircap;
} walk_ctx;

static int problem(walk_ctx *w, const char *rel, const char *rule, const char *detail)
{
  char msg[1024];
  snprintf(msg, sizeof msg, "%s/%s: %s: %s", w->repo->id, rel, rule, detail);
  return zllm_repo_add_problem(w->repo, msg);
}

static int add_file(walk_ctx *w, const char *rel, char *real, const struct stat *st)
{
  zllm_repo *r = w->repo;
  if (r->nfiles >= REPO_MAX_FILES)
    return problem(w, rel, "file-count", "repo has too many files; the rest are skipped");
  if (r->nfiles == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 16;
    zllm_hub_file *f = realloc(r->files, cap * sizeof *f);
    if (!f)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    r->files = f;
    w->cap = cap;
  }
  zllm_hub_file *f = &r->files[r->nfiles];
  f->path = strdup(rel);
  f->local_path = strdup(real);
  f->size = (uint64_t)st->st_size;
  f->kind = zllm_file_kind_of(rel);
  f->ident = zllm_file_identity_of(st);
  if (!f->path || !f->local_path) {
    free(f->path);
    free(f->local_path);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  r->nfiles++;
  return 0;
}

static bool skip_name(const char *name)
{
  /* VCS data and huggingface_hub's local-dir bookkeeping are not repo files */
  return strcmp(name, ".git") == 0 || strcmp(name, ".cache") == 0;
}

/* A directory seen before (a symlink loop, or two names for one directory)
 * is not descended again: each file is listed once and a loop ends. */
static int first_visit(walk_ctx *w, const struct stat *st, bool *first)
{
  *first = false;
  for (size_t i = 0; i < w->ndirs; i++)
    if (w->dirs[i].dev == (uint64_t)st->st_dev && w->dirs[i].ino == (uint64_t)st->st_ino)
      return 0;
  if (w->ndirs >= REPO_MAX_DIRS)
    return 0;
  if (w->ndirs == w->dircap) {
    size_t cap = w->dircap ? 2 * w->dircap : 16;
    dir_id *d = realloc(w->dirs, cap * sizeof *d);
    if (!d)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    w->dirs = d;
    w->dircap = cap;
  }
  w->dirs[w->ndirs++] = (dir_id){(uint64_t)st->st_dev, (uint64_t)st->st_ino};
  *first = true;
  return 0;
}

static int walk(walk_ctx *w, const char *dir, const char *rel, int depth);

/* `full` is listed by its resolved path, which must stay inside the repo's
 * directory: later opens then follow no link at all. */
static int walk_entry(walk_ctx *w, const char *full, const char *rel, int depth)
{
  struct stat st;
  char *real = realpath(full, NULL);
  int rc;
  if (!real || !zllm_path_is_within(w->contain, real))
    rc = problem(w, rel, "symlink", "dangling, or points outside the repo; skipped");
  else if (stat(real, &st) < 0)
    rc = problem(w, rel, "unreadable", "cannot stat");
  else if (S_ISDIR(st.st_mode))
    rc = walk(w, real, rel, depth + 1);
  else if (!S_ISREG(st.st_mode))
    rc = problem(w, rel, "file-type", "not a regular file; skipped");
  else
    rc = add_file(w, rel, real, &st);
  free(real);
  return rc;
}

static int walk(walk_ctx *w, const char *dir, const char *rel, int depth)
{
  char **names = NULL;
  size_t n = 0;
  struct stat st;
  bool first = false;
  int rc;
  if (depth > WALK_MAX_DEPTH)
    return problem(w, rel, "depth", "directories nested too deep; skipped");
  if (stat(dir, &st) < 0)
    return problem(w, rel[0] ? rel : ".", "unreadable", "cannot stat");
  if ((rc = first_visit(w, &st, &first)) < 0)
    return rc;
  if (!first)
    return problem(w, rel[0] ? rel : ".", "directory-loop",
                   w->ndirs >= REPO_MAX_DIRS ? "repo has too many directories; skipped"
                                             : "directory already listed (a symlink loop or a second name); skipped");
  if ((rc = list_dir(dir, true, &names, &n)) < 0)
    return problem(w, rel[0] ? rel : ".", "unreadable", zllm_error_last());
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (skip_name(names[i]))
      continue;
    char *full = zllm_path_join(dir, names[i]);
    char *sub = rel[0] ? zllm_path_join(rel, names[i]) : strdup(names[i]);
    rc = full && sub ? walk_entry(w, full, sub, depth) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    free(full);
    free(sub);
  }
  zllm_strv_free(names, n);
  return rc;
}

/* refs/main when it names an existing snapshot, else the newest snapshot. */
static int pick_snapshot(zllm_repo *repo, const char *cache_dir, char **rev_out)
{
  char *snaps = zllm_path_join(cache_dir, "snapshots"), *refpath = zllm_path_join(cache_dir, "refs/main");
  char *ref = NULL, **names = NULL;
  size_t reflen = 0, n = 0;
  int rc = snaps && refpath ? 0 : ZLLM_ENOMEM;
  *rev_out = NULL;
  int had_ref = 0;
  if (rc == 0 && zllm_read_small_file(&ref, &reflen, refpath, REF_MAX) == 0) {
    ref[strcspn(ref, "\r\n")] = '\0';
    char *snap = strchr(ref, '/') || strstr(ref, "..") || !ref[0] ? NULL : zllm_path_join(snaps, ref);
    had_ref = 1;
    if (snap && is_dir(snap))
      *rev_out = strdup(ref);
    free(snap);
  }
  if (rc == 0 && had_ref && !*rev_out) { /* a ref naming nothing in this cache (or outside it) is said */
    char msg[512], shown[200];
    zllm_escape_text(shown, sizeof shown, ref);
    snprintf(msg, sizeof msg, "%s: refs/main: '%s' is not a snapshot of this repo (a name in snapshots/); ignored",
             repo->id, shown);
    rc = zllm_repo_add_problem(repo, msg);
  }
  if (rc == 0 && !*rev_out && list_dir(snaps, false, &names, &n) == 0 && n > 0) {
    time_t best = 0;
    for (size_t i = 0; i < n; i++) {
      char *p = zllm_path_join(snaps, names[i]);
      struct stat st;
      if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (!*rev_out || st.st_mtime > best)) {
        free(*rev_out);
        *rev_out = strdup(names[i]);
        best = st.st_mtime;
      }
      free(p);
    }
    if (*rev_out && n > 1) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s: refs/main: no usable ref; chose the newest of %zu snapshots (%s)",
               repo->id, n, *rev_out);
      rc = zllm_repo_add_problem(repo, msg);
    }
  }
  if (rc == 0 && !*rev_out)
    rc = zllm_error_set(ZLLM_ENOTFOUND, "%s: snapshots: no snapshot directory", cache_dir);
  zllm_strv_free(names, n);
  free(ref);
  free(refpath);
  free(snaps);
  return rc;
}

static int local_list_files(zllm_source *src, zllm_repo *repo)
{
  local_hub *h = zllm_source_impl(src);
  local_repo key = {.id = repo->id}, *lr = bsearch(&key, h->repos, h->nrepos, sizeof key, cmp_repo);
  char *top = NULL, *contain = NULL, *snap_rel = NULL;
  int rc = 0;
  if (!lr)
    return zllm_error_set(ZLLM_ENOTFOUND, "%s: no repo '%s'", h->root, repo->id);
  if (lr->is_cache) {
    if ((rc = pick_snapshot(repo, lr->dir, &repo->revision)) < 0)
      return rc;
    size_t len = strlen(repo->revision) + 16;
    if (!(snap_rel = malloc(len)))
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    snprintf(snap_rel, len, "snapshots/%s", repo->revision);
    top = zllm_path_join(lr->dir, snap_rel);
  } else {
    top = strdup(lr->dir);
    if (lr->revision && !(repo->revision = strdup(lr->revision)))
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  repo->created = lr->created;
  /* a cache repo's links point into its own blobs/; a plain repo stays in the hub */
  contain = realpath(lr->is_cache ? lr->dir : h->root, NULL);
  if (!top || !contain) {
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot resolve the repo directory", lr->dir);
    goto done;
  }
  walk_ctx w = {repo, contain, 0, NULL, 0, 0};
  char *real_top = realpath(top, NULL);
  if (!real_top || !zllm_path_is_within(contain, real_top))
    rc = problem(&w, ".", "symlink", "the repo directory leads outside the hub; skipped");
  else
    rc = walk(&w, real_top, "", 0);
  free(real_top);
  free(w.dirs);
done:
  free(snap_rel);
  free(top);
  free(contain);
  return rc;
}

static int local_read_file(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, size_t max,
                           char **buf, size_t *len)
{
  (void)src;
  char name[1400];
  int fd = -1, rc = zllm_local_file_open(f, repo->id, &fd);
  snprintf(name, sizeof name, "%s/%s", repo->id, f->path);
  *buf = NULL;
  if (rc == 0 && f->size > max)
    rc = zllm_error_set(ZLLM_ELIMIT, "%s: size-limit: %llu bytes is more than the %zu allowed", name,
                        (unsigned long long)f->size, max);
  if (rc == 0 && !(*buf = malloc((size_t)f->size + 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_pread_full(fd, *buf, (size_t)f->size, 0, name);
  rc = rc ? rc : zllm_hub_file_check_unchanged(f, fd, name);
  if (rc == 0) {
    (*buf)[f->size] = '\0';
    *len = (size_t)f->size;
  } else {
    free(*buf);
    *buf = NULL;
  }
  if (fd >= 0)
    close(fd);
  return rc;
}

static int local_open_file(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, int *fd)
{
  (void)src;
  return zllm_local_file_open(f, repo->id, fd);
}

static const zllm_source_ops local_ops = {
  .version = ZLLM_SOURCE_OPS_VERSION,
  .kind = "local",
  .list_repos = local_list_repos,
  .list_files = local_list_files,
  .read_file = local_read_file,
  .open_file = local_open_file,
  .destroy = local_destroy,
};

/* A local_hub rooted at the realpath of `dir` (a directory), no repos yet. */
static int local_hub_new(local_hub **out, const char *dir)
{
  local_hub *h = calloc(1, sizeof *h);
  int rc = 0;
  *out = NULL;
  if (!h)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (!(h->root = realpath(dir, NULL)))
    rc = zllm_error_set_errno("%s: cannot open", dir);
  else if (!is_dir(h->root))
    rc = zllm_error_set(ZLLM_EINVAL, "%s: not a directory", dir);
  if (rc < 0)
    local_destroy(h);
  else
    *out = h;
  return rc;
}

/* "2024-03-01T12:34:56(.sss)Z" -> seconds since 1970 (UTC), or -1. */
static int64_t parse_iso_time(const char *s)
{
  struct tm tm = {0};
  if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                   &tm.tm_sec) != 6 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  return t == (time_t)-1 ? -1 : (int64_t)t;
}

static void take_crawl_line(local_hub *h, const char *line, size_t len, const char *name)
{
  json_t *m = NULL;
  if (zllm_json_load(&m, name, "metadata-json", line, len, ZLLM_METADATA_LINE_MAX) < 0) {
    ZLLM_WARN("%s", zllm_error_last());
    return;
  }
  const char *id = json_string_value(json_object_get(m, "id"));
  const char *sha = json_string_value(json_object_get(m, "sha"));
  local_repo key = {.id = (char *)id}, *r = id ? bsearch(&key, h->repos, h->nrepos, sizeof key, cmp_repo) : NULL;
  if (r && !r->is_cache) {
    if (sha && strlen(sha) == 40 && strspn(sha, "0123456789abcdef") == 40 && !r->revision)
      r->revision = strdup(sha);
    r->created = parse_iso_time(json_string_value(json_object_get(m, "createdAt")));
  }
  json_decref(m);
}

typedef struct {
  local_hub *h;
  const char *path;
} metadata_read;

static int take_metadata_line(void *ctx, const char *line, size_t len, size_t lineno)
{
  metadata_read *m = ctx;
  if (!line)
    ZLLM_WARN("%s: line %zu: longer than the %zu bytes a crawl writes for one repo; skipped", m->path, lineno,
              ZLLM_METADATA_LINE_MAX);
  else if (len)
    take_crawl_line(m->h, line, len, m->path);
  return 0;
}

/* A crawl's record of each repo (zllm crawl writes .zllm/metadata.jsonl at
 * the snapshot's root): the commit it is pinned to and its createdAt.  Read
 * a line at a time: the file is part of a snapshot someone else may have
 * made, so its size (a sparse file, a line without end) must not size the
 * memory, and anything but a regular file there (a FIFO) is refused, not
 * waited on. */
static void load_crawl_metadata(local_hub *h)
{
  char *path = zllm_path_join(h->root, ".zllm/metadata.jsonl");
  metadata_read m = {h, path};
  struct stat st;
  if (path && lstat(path, &st) == 0 && zllm_read_lines(path, ZLLM_METADATA_LINE_MAX, take_metadata_line, &m) < 0)
    ZLLM_WARN("%s", zllm_error_last());
  free(path);
}

int zllm_source_attach_local(zllm_source **out, const char *root)
{
  local_hub *h = NULL;
  int rc;
  *out = NULL;
  if ((rc = local_hub_new(&h, root)) < 0)
    return rc;
  if ((rc = zllm_source_new(out, &local_ops, h, h->root)) < 0)
    local_destroy(h);
  return rc;
}

int zllm_source_open_local(zllm_source **out, const char *root)
{
  local_hub *h = NULL;
  int rc;
  *out = NULL;
  if ((rc = local_hub_new(&h, root)) < 0)
    return rc;
  if ((rc = scan_root(h)) == 0)
    load_crawl_metadata(h);
  if (rc < 0 || (rc = zllm_source_new(out, &local_ops, h, h->root)) < 0)
    local_destroy(h);
  return rc;
}

/* "<parent>/<dir>" of a path, or just "<dir>", whichever is a valid id. */
static void id_from_path(char *id, size_t cap, const char *real)
{
  const char *base = strrchr(real, '/');
  base = base ? base + 1 : real;
  const char *pend = base > real ? base - 1 : real, *pstart = pend;
  while (pstart > real && pstart[-1] != '/')
    pstart--;
  snprintf(id, cap, "%.*s/%s", (int)(pend - pstart), pstart, base);
  if (zllm_repo_id_check(id) < 0)
    snprintf(id, cap, "%s", base);
  zllm_error_clear();
}

int zllm_repo_open_dir(zllm_repo **out, const char *dir)
{
  zllm_source *src = NULL;
  local_hub *h = NULL;
  char id[512];
  int rc;
  *out = NULL;
  if ((rc = local_hub_new(&h, dir)) < 0)
    return rc;
  id_from_path(id, sizeof id, h->root);
  if ((rc = add_repo(h, id, h->root, false)) < 0 || h->nrepos != 1) {
    local_destroy(h);
    return rc < 0 ? rc : zllm_error_set(ZLLM_EINVAL, "%s: cannot name this directory as a repo", dir);
  }
  if ((rc = zllm_source_new(&src, &local_ops, h, h->root)) < 0) {
    local_destroy(h);
    return rc;
  }
  rc = zllm_repo_load(out, src, id);
  zllm_source_free(src);
  return rc;
}

/* ---- a split listing: each rank takes the entries of the repos it lists ---- */

int zllm_source_local_put_entries(zllm_source *src, size_t lo, size_t hi, zllm_buf *b)
{
  const local_hub *h = zllm_source_impl(src);
  int rc = hi <= h->nrepos && lo <= hi ? zllm_buf_put_u64(b, hi - lo) : zllm_error_set(ZLLM_EINVAL, "bad entry range");
  for (size_t i = lo; rc == 0 && i < hi; i++) {
    const local_repo *r = &h->repos[i];
    rc = zllm_buf_put_str(b, r->id);
    rc = rc ? rc : zllm_buf_put_str(b, r->dir);
    rc = rc ? rc : zllm_buf_put_u64(b, r->is_cache);
    rc = rc ? rc : zllm_buf_put_u64(b, r->revision != NULL);
    rc = rc || !r->revision ? rc : zllm_buf_put_str(b, r->revision);
    rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)r->created);
  }
  return rc;
}

static int take_entry(local_hub *h, zllm_reader *r)
{
  local_repo e = {0};
  uint64_t cache = 0, has = 0, created = 0;
  int rc = zllm_reader_str(r, &e.id);
  rc = rc ? rc : zllm_reader_str(r, &e.dir);
  rc = rc ? rc : zllm_reader_u64(r, &cache);
  rc = rc ? rc : zllm_reader_u64(r, &has);
  rc = rc || !has ? rc : zllm_reader_str(r, &e.revision);
  rc = rc ? rc : zllm_reader_u64(r, &created);
  e.is_cache = cache != 0;
  e.created = (int64_t)created;
  if (rc == 0 && h->nrepos && strcmp(h->repos[h->nrepos - 1].id, e.id) >= 0)
    rc = zllm_error_set(ZLLM_EFORMAT, "hub entries: '%s' out of order", e.id);
  local_repo *v = rc == 0 ? realloc(h->repos, (h->nrepos + 1) * sizeof *v) : NULL;
  if (rc == 0 && !v)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc < 0) {
    free(e.id);
    free(e.dir);
    free(e.revision);
    return rc;
  }
  h->repos = v;
  h->repos[h->nrepos++] = e;
  return 0;
}

int zllm_source_local_take_entries(zllm_source *src, const char *data, size_t len)
{
  local_hub *h = zllm_source_impl(src);
  zllm_reader r = {data, len};
  uint64_t n = 0;
  int rc = zllm_reader_u64(&r, &n);
  if (rc == 0 && n > r.left)
    rc = zllm_error_set(ZLLM_EFORMAT, "hub entries: bad count");
  for (uint64_t i = 0; rc == 0 && i < n; i++)
    rc = take_entry(h, &r);
  return rc;
}
