/* zllm/hub.h - hub sources: where model repos come from.
 *
 * A source is a small table of functions (zllm_source_ops, versioned) behind
 * an opaque handle, so a local snapshot and an HTTP crawler look the same to
 * the rest of zllm.  zllm_repo_load() builds a repo from any source: its
 * files (sorted by path), its config.json, model card and shard index.  A
 * repo file that cannot be used is not fatal: the reason is appended to
 * repo->problems and the rest of the repo is still returned.  A hub is
 * listed once (zllm_hub: every repo loaded) and that listing is what every
 * stage takes; files are opened only through the source (open_file).
 *
 * The local source reads two layouts under one root, side by side:
 *   plain     <root>/<org>/<name>/<files...>   (or <root>/<name>/<files...>)
 *   HF cache  <root>/models--<org>--<name>/snapshots/<rev>/<files...>, files
 *             being symlinks into ../../blobs/; the revision is refs/main.
 * Symlinks are followed only when they stay inside the repo's own directory
 * (HF cache: the models--* directory; plain: the hub root).  All calls are local.
 */
#ifndef ZLLM_HUB_H
#define ZLLM_HUB_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "zllm/repofiles.h"
#include "zllm/safetensors.h"

typedef enum {
  ZLLM_FILE_SAFETENSORS,
  ZLLM_FILE_SHARD_INDEX,
  ZLLM_FILE_CONFIG,
  ZLLM_FILE_CARD,
  ZLLM_FILE_OPAQUE_WEIGHT, /* .bin .pt .pth .gguf .ckpt .h5 .onnx .msgpack: stored as bytes */
  ZLLM_FILE_OTHER
} zllm_file_kind;

/* What the listing saw of a file: a later open must find the same file. */
typedef struct {
  uint64_t dev, ino;  /* ino 0: not recorded (only the size is compared) */
  int64_t mtime_ns;
} zllm_file_identity;

struct stat;
/* What a listing records of a stat(2) result. */
zllm_file_identity zllm_file_identity_of(const struct stat *st);

typedef struct {
  char *path;       /* relative to the repo root, '/'-separated */
  char *local_path; /* absolute, symlinks resolved at listing (no link on the way) */
  uint64_t size;
  zllm_file_kind kind;
  zllm_file_identity ident;
} zllm_hub_file;

typedef struct {
  char *id;       /* "org/name" */
  char *revision; /* the snapshot's commit (HF cache: refs/main; plain: the crawl's), else NULL */
  int64_t created; /* createdAt recorded by a crawl, seconds since 1970 (UTC); -1 unknown */
  zllm_hub_file *files;
  size_t nfiles;
  zllm_config *config;       /* NULL when absent or unreadable */
  zllm_card *card;           /* NULL when absent or unreadable */
  zllm_shard_index *index;   /* NULL when absent or unreadable */
  char **problems;           /* one line each: "<repo>/<file>: <rule>: <detail>" */
  size_t nproblems;
  size_t nlist_problems;     /* the first ones, found by the listing (the rest by parsing) */
} zllm_repo;

typedef struct zllm_source zllm_source;

#define ZLLM_SOURCE_OPS_VERSION 2

typedef struct {
  unsigned version; /* ZLLM_SOURCE_OPS_VERSION */
  const char *kind; /* "local", "http", ... */
  /* All repo ids, sorted, unique; the caller frees with zllm_strv_free. */
  int (*list_repos)(zllm_source *src, char ***ids, size_t *n);
  /* Fills repo->files (any order) and repo->revision for repo->id. */
  int (*list_files)(zllm_source *src, zllm_repo *repo);
  /* Reads a whole file of at most `max` bytes (NUL-terminated, caller frees). */
  int (*read_file)(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, size_t max,
                   char **buf, size_t *len);
  /* Opens a listed file for reading (a descriptor the caller closes), by
   * the hardening rules of zllm_source_open_file.  Version 2. */
  int (*open_file)(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, int *fd);
  void (*destroy)(void *impl);
} zllm_source_ops;

/* Wraps a backend; takes ownership of `impl` (destroyed by ops->destroy). */
int zllm_source_new(zllm_source **out, const zllm_source_ops *ops, void *impl, const char *name);
void *zllm_source_impl(const zllm_source *src);
const char *zllm_source_name(const zllm_source *src);
void zllm_source_free(zllm_source *src); /* accepts NULL */

/* A local snapshot directory (both layouts, auto-detected per entry). */
int zllm_source_open_local(zllm_source **out, const char *root);

/* One repo directory on its own (for `zllm inspect REPO_DIR`); its id is
 * "<parent>/<dir>" from the path when that is a valid repo id, else "<dir>". */
int zllm_repo_open_dir(zllm_repo **out, const char *dir);

int zllm_source_list_repos(zllm_source *src, char ***ids, size_t *n);
/* One whole file of a repo, at most `max` bytes (NUL-terminated, caller frees). */
int zllm_source_read_file(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, size_t max, char **buf,
                          size_t *len);

/* Opens a listed file for reading, the one way every stage reads hub bytes
 * (the caller closes *fd).  The local source's rules: no symlink is followed
 * on the way (the listing resolved them; one put there since is refused), a
 * FIFO does not block, and the opened file must be a regular file with the
 * listing's device, inode, size and mtime.  A file that changed, vanished
 * or became a link is ZLLM_ECHANGED naming "<repo>/<path>" (retry later);
 * other failures keep their code. */
int zllm_source_open_file(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, int *fd);

/* zllm_source_open_file, then the safetensors header (caller closes *fd and
 * frees *h; on error neither is left open). */
int zllm_source_open_st(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, zllm_st_header **h,
                        int *fd);

/* After reading: the open file still has the listing's size and mtime (a
 * rewrite in place during the read is ZLLM_ECHANGED). */
int zllm_hub_file_check_unchanged(const zllm_hub_file *f, int fd, const char *name);

/* Loads one repo with its parsed config, card and index. */
int zllm_repo_load(zllm_repo **out, zllm_source *src, const char *id);
/* Appends a problem line (copied).  Returns 0 or ZLLM_ENOMEM. */
int zllm_repo_add_problem(zllm_repo *repo, const char *msg);
/* The file entry with this path, or NULL (borrowed). */
const zllm_hub_file *zllm_repo_find_file(const zllm_repo *repo, const char *path);
void zllm_repo_free(zllm_repo *repo); /* accepts NULL */

/* ---- the listed hub: one listing, handed to every stage ------------------ */

/* What every rank knows of a repo without loading its listing. */
typedef struct {
  uint64_t nfiles, bytes; /* its listed files and their sizes (0 when it could not be loaded) */
  uint64_t st_bytes;      /* ... of which safetensors files */
  char *card_base;        /* its model card's first base_model, or NULL */
  int listed;             /* 0: it could not be loaded (zllm_hub_get says why) */
} zllm_hub_info;

struct zllm_hub_store;

/* A hub as listed once: its source (every file is opened through it) and
 * every repo's listing (files, config, card, index, problems), sorted by
 * id.  Either whole (zllm_hub_load, zllm_hub_bcast: every repo loaded
 * here) or split over MPI ranks (zllm_hub_open_local_split: each rank
 * listed a block of repos into a store on the shared file system, and a
 * repo is loaded where it is used, zllm_hub_get, then let go,
 * zllm_hub_put).  The clusterer, base selection, pack and the merge all
 * take this one listing, through zllm_hub_get. */
typedef struct {
  zllm_source *src;   /* owned */
  char **ids;         /* sorted, unique */
  zllm_repo **repos;  /* per id, loaded: whole, every listed repo; split, those in use (a cache: see get) */
  char **failed;      /* whole: per id, why it could not be loaded, else NULL */
  zllm_hub_info *info; /* per id */
  size_t n;
  struct zllm_hub_store *store; /* split: where each repo's listing lies; NULL when whole */
} zllm_hub;

/* Lists every repo of `src` and loads it; takes ownership of `src`, also
 * on error.  A repo that cannot be loaded is kept with its reason in
 * failed[i] (its listing is not fatal to the hub); ENOMEM is. */
int zllm_hub_load(zllm_hub **out, zllm_source *src);
/* zllm_source_open_local + zllm_hub_load. */
int zllm_hub_open_local(zllm_hub **out, const char *root);
/* The index of repo `id`, or -1. */
long zllm_hub_find(const zllm_hub *hub, const char *id);
/* Rank `root`'s local hub (listed at `root_dir`) on every rank of `comm`:
 * root passes its *hub, the others receive a copy whose source is a local
 * source on the same directory that lists nothing itself (the small files
 * a repo load parses — config, card, index — are read through it).
 * COLLECTIVE; on error *hub is NULL on the non-root ranks. */
int zllm_hub_bcast(zllm_hub **hub, const char *root_dir, int root, MPI_Comm comm);
/* Rank 0 lists the local hub at `root_dir` (zllm_hub_open_local), then
 * zllm_hub_bcast: the same listing on every rank, or the same error on
 * every rank.  COLLECTIVE. */
int zllm_hub_open_local_all(zllm_hub **out, const char *root_dir, MPI_Comm comm);
/* The split listing of the local hub at `root_dir`, COLLECTIVE: rank 0
 * reads the root (the repo ids and where each lies; every rank gets the ids,
 * each lister only its block's entries), each rank lists a contiguous block
 * of repos into `store_dir/listing-<rank>.bin` (which must be on a file
 * system every rank sees, and exist) and keeps none of them, and every rank
 * gets every repo's summary (info).  `each`, when given, sees every repo of
 * this rank's block while it is loaded (repo NULL, `why` set: it could not
 * be loaded); an error from it fails the call.  The same outcome on every
 * rank.  Freeing a split hub is COLLECTIVE: it waits for every rank to be
 * done reading, then removes this rank's file. */
typedef int (*zllm_hub_each_fn)(void *ctx, size_t i, const char *id, const zllm_repo *repo, const char *why);
int zllm_hub_open_local_split(zllm_hub **out, const char *root_dir, const char *store_dir, zllm_hub_each_fn each,
                              void *ctx, MPI_Comm comm);
/* Repo i's listing (borrowed until zllm_hub_put): a split hub reads it from
 * the store and parses its small files on first use, and keeps it while
 * gets outnumber puts.  A repo that could not be listed is an error saying
 * why.  Not thread-safe (the cache is not part of the hub's value). */
int zllm_hub_get(const zllm_hub *hub, size_t i, const zllm_repo **out);
/* Lets go of a successful zllm_hub_get (a split hub frees the repo at its
 * last put; a get that failed holds nothing to let go). */
void zllm_hub_put(const zllm_hub *hub, size_t i);
void zllm_hub_free(zllm_hub *hub); /* accepts NULL; COLLECTIVE for a split hub */

zllm_file_kind zllm_file_kind_of(const char *path);
const char *zllm_file_kind_name(zllm_file_kind kind);

#endif
