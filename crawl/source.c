#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "crawl/source_internal.h"

struct zllm_source {
  const zllm_source_ops *ops;
  void *impl;
  char *name;
};

int zllm_source_new(zllm_source **out, const zllm_source_ops *ops, void *impl, const char *name)
{
  if (!ops || ops->version != ZLLM_SOURCE_OPS_VERSION)
    return zllm_error_set(ZLLM_EINVAL, "source '%s': ops table version mismatch", name);
  zllm_source *s = calloc(1, sizeof *s);
  if (!s || !(s->name = strdup(name))) {
    free(s);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  s->ops = ops;
  s->impl = impl;
  *out = s;
  return 0;
}

void *zllm_source_impl(const zllm_source *src) { return src->impl; }
const char *zllm_source_name(const zllm_source *src) { return src->name; }

void zllm_source_free(zllm_source *src)
{
  if (!src)
    return;
  if (src->ops->destroy)
    src->ops->destroy(src->impl);
  free(src->name);
  free(src);
}

int zllm_source_list_repos(zllm_source *src, char ***ids, size_t *n)
{
  return src->ops->list_repos(src, ids, n);
}

int zllm_source_read_file(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, size_t max, char **buf,
                          size_t *len)
{
  return src->ops->read_file(src, repo, f, max, buf, len);
}

zllm_file_identity zllm_file_identity_of(const struct stat *st)
{
  return (zllm_file_identity){(uint64_t)st->st_dev, (uint64_t)st->st_ino,
                              (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec};
}

/* Why an open file is not the one the listing saw, or NULL. */
static const char *identity_differs(const zllm_hub_file *f, const struct stat *st, int check_inode)
{
  if (!S_ISREG(st->st_mode))
    return "no longer a regular file";
  if ((uint64_t)st->st_size != f->size)
    return "its size changed";
  if (f->ident.ino && check_inode && ((uint64_t)st->st_dev != f->ident.dev || (uint64_t)st->st_ino != f->ident.ino))
    return "it is another file (device or inode differ)";
  if (f->ident.ino && zllm_file_identity_of(st).mtime_ns != f->ident.mtime_ns)
    return "its mtime changed";
  return NULL;
}

/* Test hook: ZLLM_TEST_SWAP=<part of a path>=<target> replaces a listed file
 * by a symlink to <target> just before it is opened: the hub changed by
 * someone else between the listing and the read. */
static void test_swap_before_open(const zllm_hub_file *f)
{
  const char *spec = getenv("ZLLM_TEST_SWAP"), *eq = spec ? strchr(spec, '=') : NULL;
  struct stat st;
  if (!eq || eq == spec || lstat(f->local_path, &st) < 0 || !S_ISREG(st.st_mode))
    return;
  char part[512];
  snprintf(part, sizeof part, "%.*s", (int)(eq - spec), spec);
  if (strstr(f->path, part) && unlink(f->local_path) == 0 && symlink(eq + 1, f->local_path) < 0)
    perror("ZLLM_TEST_SWAP");
}

int zllm_local_file_open(const zllm_hub_file *f, const char *repo_id, int *fd_out)
{
  char name[1400];
  int fd = -1, rc;
  struct stat st;
  *fd_out = -1;
  test_swap_before_open(f);
  snprintf(name, sizeof name, "%s/%s", repo_id, f->path);
  if ((rc = zllm_open_nofollow(f->local_path, &fd)) < 0) {
    /* gone or a link now: the hub changed under us, not a bad file */
    int code = rc == ZLLM_EUNSAFE || rc == ZLLM_ENOTFOUND ? ZLLM_ECHANGED : rc;
    return zllm_error_set(code, "%s: changed since the hub was listed: %s", name, zllm_error_last());
  }
  if (fstat(fd, &st) < 0) {
    rc = zllm_error_set_errno("%s: cannot stat", name);
    close(fd);
    return rc;
  }
  const char *why = identity_differs(f, &st, 1);
  if (why) {
    close(fd);
    return zllm_error_set(ZLLM_ECHANGED, "%s: changed since the hub was listed: %s", name, why);
  }
  *fd_out = fd;
  return 0;
}

int zllm_source_open_file(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, int *fd)
{
  *fd = -1;
  return src->ops->open_file(src, repo, f, fd);
}

int zllm_source_open_st(zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f, zllm_st_header **h,
                        int *fd_out)
{
  char name[1400];
  int fd = -1, rc = zllm_source_open_file(src, repo, f, &fd);
  *h = NULL;
  *fd_out = -1;
  snprintf(name, sizeof name, "%s/%s", repo->id, f->path);
  rc = rc ? rc : zllm_st_read_header(h, fd, name);
  if (rc < 0 && fd >= 0)
    close(fd);
  else
    *fd_out = fd;
  return rc;
}

int zllm_hub_file_check_unchanged(const zllm_hub_file *f, int fd, const char *name)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return zllm_error_set_errno("%s: cannot stat", name);
  const char *why = identity_differs(f, &st, 0);
  return why ? zllm_error_set(ZLLM_ECHANGED, "%s: changed while it was read: %s", name, why) : 0;
}

static const struct {
  const char *suffix;
  zllm_file_kind kind;
} kind_by_suffix[] = {
  {".safetensors.index.json", ZLLM_FILE_SHARD_INDEX},
  {".safetensors", ZLLM_FILE_SAFETENSORS},
  {".bin", ZLLM_FILE_OPAQUE_WEIGHT}, {".pt", ZLLM_FILE_OPAQUE_WEIGHT},
  {".pth", ZLLM_FILE_OPAQUE_WEIGHT}, {".gguf", ZLLM_FILE_OPAQUE_WEIGHT},
  {".ckpt", ZLLM_FILE_OPAQUE_WEIGHT}, {".h5", ZLLM_FILE_OPAQUE_WEIGHT},
  {".onnx", ZLLM_FILE_OPAQUE_WEIGHT}, {".msgpack", ZLLM_FILE_OPAQUE_WEIGHT},
};

static int has_suffix(const char *s, const char *suffix)
{
  size_t ls = strlen(s), lx = strlen(suffix);
  return ls > lx && strcmp(s + ls - lx, suffix) == 0;
}

zllm_file_kind zllm_file_kind_of(const char *path)
{
  if (strcmp(path, "config.json") == 0)
    return ZLLM_FILE_CONFIG;
  if (strcmp(path, "README.md") == 0)
    return ZLLM_FILE_CARD;
  for (size_t i = 0; i < sizeof kind_by_suffix / sizeof *kind_by_suffix; i++)
    if (has_suffix(path, kind_by_suffix[i].suffix))
      return kind_by_suffix[i].kind;
  return ZLLM_FILE_OTHER;
}

const char *zllm_file_kind_name(zllm_file_kind kind)
{
  static const char *names[] = {"safetensors", "shard-index", "config", "card", "opaque-weight", "other"};
  return (unsigned)kind <= ZLLM_FILE_OTHER ? names[kind] : "?";
}

int zllm_repo_add_problem(zllm_repo *repo, const char *msg)
{
  char **p = realloc(repo->problems, (repo->nproblems + 1) * sizeof *p);
  if (!p)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  repo->problems = p;
  if (!(p[repo->nproblems] = strdup(msg)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  repo->nproblems++;
  return 0;
}

void zllm_repo_free(zllm_repo *repo)
{
  if (!repo)
    return;
  for (size_t i = 0; i < repo->nfiles; i++) {
    free(repo->files[i].path);
    free(repo->files[i].local_path);
  }
  free(repo->files);
  zllm_config_free(repo->config);
  zllm_card_free(repo->card);
  zllm_index_free(repo->index);
  zllm_strv_free(repo->problems, repo->nproblems);
  free(repo->id);
  free(repo->revision);
  free(repo);
}

static int cmp_file(const void *a, const void *b)
{
  return strcmp(((const zllm_hub_file *)a)->path, ((const zllm_hub_file *)b)->path);
}

const zllm_hub_file *zllm_repo_find_file(const zllm_repo *repo, const char *path)
{
  zllm_hub_file key = {.path = (char *)path};
  return bsearch(&key, repo->files, repo->nfiles, sizeof key, cmp_file);
}

typedef int (*meta_parser)(void **out, const char *name, const char *text, size_t len);

static int parse_card(void **out, const char *n, const char *t, size_t l)
{
  return zllm_card_parse((zllm_card **)out, n, t, l);
}
static int parse_config(void **out, const char *n, const char *t, size_t l)
{
  return zllm_config_parse((zllm_config **)out, n, t, l);
}
static int parse_index(void **out, const char *n, const char *t, size_t l)
{
  return zllm_index_parse((zllm_shard_index **)out, n, t, l);
}

/* Reads and parses one small file; a failure becomes a problem line, not an
 * error, so one bad README does not cost the repo its weights. */
static int load_meta(zllm_source *src, zllm_repo *repo, const zllm_hub_file *f, size_t max,
                     meta_parser parse, void **out)
{
  char *text = NULL, *name = NULL;
  size_t len = 0;
  int rc = 0;
  size_t nlen = strlen(repo->id) + strlen(f->path) + 2;
  if (!(name = malloc(nlen)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  snprintf(name, nlen, "%s/%s", repo->id, f->path);
  if (src->ops->read_file(src, repo, f, max, &text, &len) < 0 || parse(out, name, text, len) < 0) {
    rc = zllm_error_last_code() == ZLLM_ENOMEM ? ZLLM_ENOMEM : zllm_repo_add_problem(repo, zllm_error_last());
    *out = NULL;
  }
  free(text);
  free(name);
  return rc;
}

/* The shard index to use: model.safetensors.index.json, else the first one. */
static const zllm_hub_file *pick_index(const zllm_repo *repo)
{
  const zllm_hub_file *f = zllm_repo_find_file(repo, "model.safetensors.index.json");
  for (size_t i = 0; !f && i < repo->nfiles; i++)
    if (repo->files[i].kind == ZLLM_FILE_SHARD_INDEX && !strchr(repo->files[i].path, '/'))
      f = &repo->files[i];
  return f;
}

int zllm_repo_load_meta(zllm_source *src, zllm_repo *repo)
{
  const zllm_hub_file *f;
  int rc = 0;
  if ((f = zllm_repo_find_file(repo, "config.json")))
    rc = load_meta(src, repo, f, ZLLM_JSON_FILE_MAX, parse_config, (void **)&repo->config);
  if (rc == 0 && (f = zllm_repo_find_file(repo, "README.md")))
    rc = load_meta(src, repo, f, ZLLM_CARD_MAX, parse_card, (void **)&repo->card);
  if (rc == 0 && (f = pick_index(repo)))
    rc = load_meta(src, repo, f, ZLLM_JSON_FILE_MAX, parse_index, (void **)&repo->index);
  return rc;
}

void zllm_repo_sort_files(zllm_repo *repo)
{
  qsort(repo->files, repo->nfiles, sizeof *repo->files, cmp_file);
}

int zllm_repo_load(zllm_repo **out, zllm_source *src, const char *id)
{
  zllm_repo *repo = calloc(1, sizeof *repo);
  int rc;
  *out = NULL;
  if (!repo || !(repo->id = strdup(id))) {
    free(repo);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  repo->created = -1;
  if ((rc = src->ops->list_files(src, repo)) < 0)
    goto done;
  zllm_repo_sort_files(repo);
  repo->nlist_problems = repo->nproblems;
  if ((rc = zllm_repo_load_meta(src, repo)) < 0)
    goto done;
  *out = repo;
  repo = NULL;
done:
  zllm_repo_free(repo);
  return rc;
}
