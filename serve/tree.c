/* A repo's folders and files with their git ids, built once per repo and
 * kept, so a tree or paths-info request costs what its page holds.
 *
 * Building is O(N log N) in the repo's files and folders: every path
 * (files, and each folder a file's path names) is sorted once; a node's
 * parent is found by binary search; each folder's children are a slice of
 * one array (in path order, the order pages list); folder ids are hashed
 * deepest first, each from its own children only.  A repo is immutable once
 * ingested, so an entry is keyed by its catalog row and name and never
 * goes stale; the cache holds a bounded number of nodes, least recently
 * used entries leaving first when no request holds them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"
#include "zllm/error.h"
#include "zllm/hash.h"

#define TREE_CACHE_NODES ((size_t)1 << 20) /* nodes the cache keeps at most (one repo may still exceed it) */
#define TREE_CACHE_ENTRIES 16

struct zs_tree {
  zs_repo repo;    /* the files nodes point into */
  int64_t repo_id; /* its catalog row */
  zs_node *v;      /* by path; v[0] is the root ("") */
  size_t n;
  zs_node **kids;  /* every node's children, in path order, one slice each */
  int refs;        /* requests holding it, and the cache itself */
  uint64_t used;   /* the cache's clock when last asked for */
};

struct zs_tree_cache {
  pthread_mutex_t lock;
  zs_tree *e[TREE_CACHE_ENTRIES];
  size_t nodes; /* held by the entries */
  uint64_t clock;
};

const zs_repo *zs_tree_repo(const zs_tree *t) { return &t->repo; }

static void tree_free(zs_tree *t)
{
  if (!t)
    return;
  for (size_t i = 0; t->v && i < t->n; i++)
    free(t->v[i].path);
  free(t->v);
  free(t->kids);
  zs_repo_free(&t->repo);
  free(t);
}

static size_t depth_of(const char *p)
{
  size_t d = *p ? 1 : 0;
  for (; *p; p++)
    d += *p == '/';
  return d;
}

const char *zs_base_name(const char *p)
{
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static int by_path(const void *x, const void *y)
{
  return strcmp(((const zs_node *)x)->path, ((const zs_node *)y)->path);
}

/* git sorts tree entries by name, a folder's name as if it ended in '/'. */
static int git_order(const void *x, const void *y)
{
  const zs_node *a = *(zs_node *const *)x, *b = *(zs_node *const *)y;
  const char *an = zs_base_name(a->path), *bn = zs_base_name(b->path);
  size_t al = strlen(an), bl = strlen(bn), m = al < bl ? al : bl;
  int c = memcmp(an, bn, m);
  if (c)
    return c;
  unsigned ac = al > m ? (unsigned char)an[m] : a->is_dir ? '/' : 0;
  unsigned bc = bl > m ? (unsigned char)bn[m] : b->is_dir ? '/' : 0;
  return (ac > bc) - (ac < bc);
}

/* The node of `path` (first `len` bytes), or n. */
static size_t find_len(const zs_tree *t, const char *path, size_t len)
{
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strncmp(t->v[mid].path, path, len);
    if (c == 0 && t->v[mid].path[len])
      c = 1; /* longer than the prefix: after it */
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < t->n && strlen(t->v[lo].path) == len && strncmp(t->v[lo].path, path, len) == 0 ? lo : t->n;
}

const zs_node *zs_tree_find(const zs_tree *t, const char *path)
{
  size_t i = find_len(t, path, strlen(path));
  return i < t->n ? &t->v[i] : NULL;
}

/* Every file and each folder its path names, sorted by path, folders once. */
static int collect_nodes(zs_tree *t)
{
  size_t cap = 1, n = 0;
  for (size_t i = 0; i < t->repo.nfiles; i++)
    cap += depth_of(t->repo.files[i].path);
  zs_node *v = calloc(cap, sizeof *v);
  int rc = v ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !(v[n++].path = strdup("")))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  v[0].is_dir = 1;
  for (size_t i = 0; rc == 0 && i < t->repo.nfiles; i++) {
    const char *p = t->repo.files[i].path;
    for (const char *s = strchr(p, '/'); rc == 0 && s; s = strchr(s + 1, '/')) {
      v[n].is_dir = 1;
      if (!(v[n++].path = strndup(p, (size_t)(s - p))))
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    }
    v[n].file = &t->repo.files[i];
    if (rc == 0 && !(v[n++].path = strdup(p)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  if (rc == 0)
    qsort(v, n, sizeof *v, by_path);
  size_t kept = 0; /* a folder named by several files is one node */
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (kept && strcmp(v[kept - 1].path, v[i].path) == 0 && v[i].is_dir) {
      free(v[i].path);
      continue;
    }
    v[kept] = v[i];
    v[kept].depth = depth_of(v[kept].path);
    kept++;
  }
  t->v = v;
  t->n = rc == 0 ? kept : n;
  return rc;
}

/* Parents by binary search, then each node's children as a slice of kids. */
static int link_children(zs_tree *t)
{
  size_t *count = calloc(t->n + 1, sizeof *count);
  int rc = count && (t->kids = malloc((t->n ? t->n : 1) * sizeof *t->kids)) ? 0
                                                                          : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 1; rc == 0 && i < t->n; i++) {
    const char *slash = strrchr(t->v[i].path, '/');
    t->v[i].parent = slash ? find_len(t, t->v[i].path, (size_t)(slash - t->v[i].path)) : 0;
    if (t->v[i].parent == t->n)
      rc = zllm_error_set(ZLLM_ERROR, "%s: no folder for %s", t->repo.name, t->v[i].path);
    else
      count[t->v[i].parent]++;
  }
  size_t at = 0;
  for (size_t i = 0; rc == 0 && i < t->n; i++) {
    t->v[i].kids_at = at;
    at += count[i];
    count[i] = 0;
  }
  for (size_t i = 1; rc == 0 && i < t->n; i++) { /* in path order: each slice sorted by path */
    zs_node *p = &t->v[t->v[i].parent];
    t->kids[p->kids_at + count[t->v[i].parent]++] = &t->v[i];
    p->nkids++;
  }
  free(count);
  return rc;
}

static int by_depth_desc(const void *x, const void *y)
{
  const zs_node *a = *(zs_node *const *)x, *b = *(zs_node *const *)y;
  return (a->depth < b->depth) - (a->depth > b->depth);
}

/* One tree object: "tree <len>\0" then "<mode> <name>\0<20-byte id>" per
 * entry in git's order; folders deepest first, so each child's id is known. */
static int hash_folders(zs_tree *t)
{
  zs_node **dirs = malloc(t->n * sizeof *dirs), **tmp = malloc(t->n * sizeof *tmp);
  size_t nd = 0;
  zllm_buf body = ZLLM_BUF_INIT;
  int rc = dirs && tmp ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < t->n; i++)
    if (t->v[i].is_dir)
      dirs[nd++] = &t->v[i];
  if (rc == 0)
    qsort(dirs, nd, sizeof *dirs, by_depth_desc);
  for (size_t d = 0; rc == 0 && d < nd; d++) {
    zs_node *dir = dirs[d];
    memcpy(tmp, t->kids + dir->kids_at, dir->nkids * sizeof *tmp);
    qsort(tmp, dir->nkids, sizeof *tmp, git_order);
    body.len = 0;
    for (size_t i = 0; rc == 0 && i < dir->nkids; i++) {
      rc = zllm_buf_printf(&body, "%s %s", tmp[i]->is_dir ? "40000" : "100644", zs_base_name(tmp[i]->path));
      rc = rc ? rc : zllm_buf_append(&body, "", 1);
      rc = rc ? rc : zllm_buf_append(&body, tmp[i]->oid, 20);
    }
    rc = rc ? rc : zllm_git_oid(dir->oid, "tree", body.data ? body.data : "", body.len);
  }
  zllm_buf_free(&body);
  free(dirs);
  free(tmp);
  return rc;
}

int zs_tree_build(zs_oid_cache *oids, zllm_archive *a, zs_repo *repo, int64_t repo_id, zs_tree **out)
{
  zs_tree *t = calloc(1, sizeof *t);
  int rc = t ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (t) { /* the tree owns the repo's files from here on */
    t->repo = *repo;
    memset(repo, 0, sizeof *repo);
  }
  *out = NULL;
  rc = rc ? rc : collect_nodes(t);
  for (size_t i = 0; rc == 0 && i < t->n; i++)
    if (!t->v[i].is_dir)
      rc = zs_file_oid_raw(oids, a, &t->repo, t->v[i].file, t->v[i].oid);
  rc = rc ? rc : link_children(t);
  rc = rc ? rc : hash_folders(t);
  if (rc < 0) {
    tree_free(t);
    return rc;
  }
  t->repo_id = repo_id;
  t->refs = 1;
  *out = t;
  return 0;
}

int zs_tree_cache_new(zs_tree_cache **out)
{
  zs_tree_cache *c = calloc(1, sizeof *c);
  if (!c || pthread_mutex_init(&c->lock, NULL) != 0) {
    free(c);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  *out = c;
  return 0;
}

void zs_tree_cache_free(zs_tree_cache *c)
{
  if (!c)
    return;
  for (int i = 0; i < TREE_CACHE_ENTRIES; i++)
    tree_free(c->e[i]);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

/* Drops least recently used entries no request holds until `t` fits. */
static void make_room(zs_tree_cache *c, size_t need)
{
  for (;;) {
    int victim = -1, free_slot = -1;
    for (int i = 0; i < TREE_CACHE_ENTRIES; i++) {
      if (!c->e[i])
        free_slot = free_slot < 0 ? i : free_slot;
      else if (c->e[i]->refs == 1 && (victim < 0 || c->e[i]->used < c->e[victim]->used))
        victim = i;
    }
    if ((free_slot >= 0 && c->nodes + need <= TREE_CACHE_NODES) || victim < 0)
      return;
    c->nodes -= c->e[victim]->n;
    tree_free(c->e[victim]);
    c->e[victim] = NULL;
  }
}

static void cache_insert(zs_tree_cache *c, zs_tree *t)
{
  make_room(c, t->n);
  for (int i = 0; i < TREE_CACHE_ENTRIES; i++)
    if (!c->e[i] && c->nodes + t->n <= TREE_CACHE_NODES) {
      c->e[i] = t;
      t->refs++;
      c->nodes += t->n;
      return;
    }
  /* no room (every entry is in use, or this repo alone is over the bound):
   * this request keeps it to itself */
}

int zs_tree_get(zs_tree_cache *c, zs_oid_cache *oids, zllm_archive *a, const char *name, zs_tree **out)
{
  zllm_archive_repo row;
  int rc = zllm_archive_repo_find(a, name, &row);
  *out = NULL;
  if (rc < 0)
    return rc;
  free(row.name);
  free(row.revision);
  pthread_mutex_lock(&c->lock);
  for (int i = 0; i < TREE_CACHE_ENTRIES && !*out; i++)
    if (c->e[i] && c->e[i]->repo_id == row.id && strcmp(c->e[i]->repo.name, name) == 0) {
      *out = c->e[i];
      (*out)->refs++;
      (*out)->used = ++c->clock;
    }
  pthread_mutex_unlock(&c->lock);
  if (*out)
    return 0;
  /* built outside the lock: another request may build the same repo at
   * once; both are correct and the second is simply not kept */
  zs_tree *t = NULL;
  zs_repo repo;
  if ((rc = zs_repo_load(a, name, &repo)) < 0 || (rc = zs_tree_build(oids, a, &repo, row.id, &t)) < 0) {
    zs_repo_free(&repo);
    return rc;
  }
  pthread_mutex_lock(&c->lock);
  t->used = ++c->clock;
  int present = 0;
  for (int i = 0; i < TREE_CACHE_ENTRIES; i++)
    present |= c->e[i] && c->e[i]->repo_id == row.id && strcmp(c->e[i]->repo.name, name) == 0;
  if (!present)
    cache_insert(c, t);
  pthread_mutex_unlock(&c->lock);
  *out = t;
  return 0;
}

void zs_tree_release(zs_tree_cache *c, zs_tree *t)
{
  if (!t)
    return;
  if (!c) { /* built outside a cache */
    tree_free(t);
    return;
  }
  pthread_mutex_lock(&c->lock);
  int last = --t->refs == 0;
  pthread_mutex_unlock(&c->lock);
  if (last)
    tree_free(t);
}

const zs_node *const *zs_tree_children(const zs_tree *t, const zs_node *dir, size_t *n)
{
  *n = dir->nkids;
  return (const zs_node *const *)t->kids + dir->kids_at;
}

/* The nodes below `dir` (at any depth) are one run of the path order: the
 * strings that start with "dir/" are contiguous when sorted (not always
 * right after dir itself: "a!b" sorts between "a" and "a/b").  Returns the
 * run's first index and sets *end_out past its last. */
size_t zs_tree_below(const zs_tree *t, const zs_node *dir, size_t *end_out)
{
  size_t len = strlen(dir->path);
  if (len == 0) { /* the root: every other node */
    *end_out = t->n;
    return 1;
  }
  size_t lo = 0, hi = t->n;
  while (lo < hi) { /* the first path >= "dir/" */
    size_t mid = lo + (hi - lo) / 2;
    int c = strncmp(t->v[mid].path, dir->path, len);
    if (c == 0)
      c = (unsigned char)t->v[mid].path[len] < '/' ? -1 : 0;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t start = lo;
  hi = t->n;
  while (lo < hi) { /* the first path past the run */
    size_t mid = lo + (hi - lo) / 2;
    const char *p = t->v[mid].path;
    if (strncmp(p, dir->path, len) == 0 && p[len] == '/')
      lo = mid + 1;
    else
      hi = mid;
  }
  *end_out = lo;
  return start;
}

const zs_node *zs_tree_node(const zs_tree *t, size_t i) { return &t->v[i]; }
