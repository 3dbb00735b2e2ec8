/* serve/serve_internal.h - the parts of `zllm serve` below the HTTP glue:
 * the request parsers (route.c: what a client sends is untrusted, so these
 * are pure functions with a fuzz target) and the Hub API answers (hubapi.c). */
#ifndef ZLLM_SERVE_INTERNAL_H
#define ZLLM_SERVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/archive.h"
#include "zllm/buf.h"

#define ZS_REPO_MAX 200   /* "org/name": two parts of at most 96 bytes */
#define ZS_REV_MAX 128
#define ZS_PATH_MAX 1100  /* a repo path is at most 1024 bytes (zllm/path.h) */
#define ZS_URL_MAX 4096   /* a longer request target is refused (414) */
#define ZS_BODY_MAX 65536 /* a paths-info request body */

typedef enum { ZS_NONE, ZS_LIST, ZS_INFO, ZS_TREE, ZS_PATHS_INFO, ZS_RESOLVE } zs_kind;

typedef struct {
  zs_kind kind;
  char repo[ZS_REPO_MAX];
  char rev[ZS_REV_MAX]; /* "" when the URL names none (model info: the current one) */
  char path[ZS_PATH_MAX];
} zs_route;

/* Maps a decoded request path to an endpoint: 0, or the HTTP status to
 * answer (404 no such endpoint, 400 a repo id or path the rules refuse;
 * the message says which). */
int zs_route_parse(const char *url, zs_route *r);

/* A Range header against a file of `size` bytes: 1 and [*lo, *hi] (inclusive)
 * for one satisfiable range; 0 to send the whole file (no header, a unit
 * other than bytes, several ranges, a malformed value: RFC 9110 lets a
 * server ignore those); -1 when it cannot be satisfied (416). */
int zs_range_parse(const char *h, uint64_t size, uint64_t *lo, uint64_t *hi);

/* The paths of a paths-info body, JSON ({"paths": [...]}) or a form
 * (paths=a&paths=b, as huggingface_hub sends it).  The caller frees *paths
 * (zllm_strv_free).  0, or 400 with a message. */
int zs_paths_parse(const char *body, size_t len, int form, char ***paths, size_t *n);

/* A repo as the API shows it: its files by path, and its revision: the
 * commit recorded at ingest, else a SHA-1 of its files' paths and SHA-256s
 * (stable, and new whenever a file changes). */
typedef struct {
  char name[ZS_REPO_MAX];
  char revision[41];
  zllm_archive_file *files;
  size_t nfiles;
} zs_repo;

/* Loads `name` (ZLLM_ENOTFOUND when the archive does not hold it). */
int zs_repo_load(zllm_archive *a, const char *name, zs_repo *r);
void zs_repo_free(zs_repo *r);
/* Whether `rev` names the repo's revision ("main", "HEAD" or the sha). */
int zs_repo_rev_ok(const zs_repo *r, const char *rev);

/* Stored in git LFS on the Hub: weights and archives by name (the Hub's
 * default .gitattributes), anything of 10 MiB or more. */
int zs_is_lfs(const char *path, uint64_t size);

/* Git object ids (40 hex): a file's blob id (of its LFS pointer for an LFS
 * file, else of its bytes, which are decoded and hashed once, then kept). */
typedef struct zs_oid_cache zs_oid_cache;
int zs_oid_cache_new(zs_oid_cache **out);
void zs_oid_cache_free(zs_oid_cache *c);
int zs_file_oid(zs_oid_cache *c, zllm_archive *a, const zs_repo *r, const zllm_archive_file *f, char hex[41]);
/* The LFS pointer file's text (for its size: pointerSize). */
size_t zs_lfs_pointer(const zllm_archive_file *f, char *out, size_t cap);

/* The JSON bodies (into *out; 0 or an HTTP status with a message). */
typedef struct {
  const char *base_url; /* "http://host:port", for Link headers */
  unsigned page_size;
} zs_api;

int zs_api_models(const zs_api *api, zllm_archive *a, const char *search, const char *author, const char *limit,
                  const char *cursor, zllm_buf *out, zllm_buf *link);
int zs_api_info(zllm_archive *a, const zs_repo *r, zllm_buf *out);
/* A repo's files and folders with their git ids (serve/tree.c), built once
 * per repo and kept in a bounded cache: a tree or paths-info page then
 * costs its own entries. */
typedef struct {
  char *path;   /* repo-relative; "" is the root */
  uint8_t oid[20];
  int is_dir;
  size_t depth;
  const zllm_archive_file *file; /* a file's catalog entry */
  size_t parent;                 /* its folder's index (the root's: 0) */
  size_t kids_at, nkids;         /* a folder's children: a slice of the tree's kids */
} zs_node;
typedef struct zs_tree zs_tree;
typedef struct zs_tree_cache zs_tree_cache;
int zs_tree_cache_new(zs_tree_cache **out);
void zs_tree_cache_free(zs_tree_cache *c);
/* The tree of repo `name` (ZLLM_ENOTFOUND when the archive does not hold
 * it), held until zs_tree_release. */
int zs_tree_get(zs_tree_cache *c, zs_oid_cache *oids, zllm_archive *a, const char *name, zs_tree **out);
void zs_tree_release(zs_tree_cache *c, zs_tree *t); /* c NULL: a tree built by zs_tree_build */
/* A tree from a loaded repo, whose files it takes (*repo is emptied); the
 * archive decodes small files for their git ids (LFS files need none). */
int zs_tree_build(zs_oid_cache *oids, zllm_archive *a, zs_repo *repo, int64_t repo_id, zs_tree **out);
const zs_repo *zs_tree_repo(const zs_tree *t);
const zs_node *zs_tree_find(const zs_tree *t, const char *path); /* NULL: none */
const zs_node *const *zs_tree_children(const zs_tree *t, const zs_node *dir, size_t *n);
size_t zs_tree_below(const zs_tree *t, const zs_node *dir, size_t *end_out);
const zs_node *zs_tree_node(const zs_tree *t, size_t i);
const char *zs_base_name(const char *path);
int zs_file_oid_raw(zs_oid_cache *c, zllm_archive *a, const zs_repo *r, const zllm_archive_file *f, uint8_t oid[20]);

/* Request deadlines (serve/gate.c): a connection's request must be in
 * (headers and body) within the deadline of its start, or within the idle
 * timeout plus the deadline of its previous response's end; the longest
 * waiting go first when half the connection limit is waiting. */
typedef struct zs_gate zs_gate;
int zs_gate_start(zs_gate **out, unsigned deadline_seconds, unsigned idle_seconds, unsigned limit, int quiet);
void zs_gate_stop(zs_gate *g); /* accepts NULL */
void zs_gate_opened(zs_gate *g, const void *conn, int fd);
void zs_gate_closed(zs_gate *g, const void *conn);
void zs_gate_request_in(zs_gate *g, const void *conn);
void zs_gate_response_done(zs_gate *g, const void *conn);

int zs_api_tree(const zs_api *api, const zs_tree *t, const char *rev, const char *dir, int recursive,
                const char *cursor, zllm_buf *out, zllm_buf *link);
int zs_api_paths_info(const zs_tree *t, char *const *paths, size_t n, zllm_buf *out);

#endif
