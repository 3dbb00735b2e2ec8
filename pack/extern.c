/* Extern repos (pack/extern.h): a base that another packer stores, read
 * from the hub and recorded here as catalog rows without bytes. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack/extern.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/path.h"

typedef struct {
  int64_t id;        /* the tensor's row */
  size_t repo, file; /* hub index of the repo, index of the file in it */
  uint64_t off, len; /* the tensor's bytes in the file */
  zllm_dtype dtype;
  zllm_xxh128 *sums; /* XXH3-128 of each part as first read */
} ext_tensor;

struct ar_extern {
  const zllm_hub *hub;
  ext_tensor *t; /* in id order: rows are inserted with increasing ids */
  size_t n, cap;
  size_t *held, nheld; /* the repos whose listing the rows read from (zllm_hub_get, put at the end) */
};

int ar_extern_new(ar_extern **out, const zllm_hub *hub)
{
  if (!(*out = calloc(1, sizeof **out)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  (*out)->hub = hub;
  return 0;
}

static void drop_from(ar_extern *x, size_t mark)
{
  while (x->n > mark)
    free(x->t[--x->n].sums);
}

void ar_extern_free(ar_extern *x)
{
  if (!x)
    return;
  drop_from(x, 0);
  for (size_t i = 0; i < x->nheld; i++)
    zllm_hub_put(x->hub, x->held[i]);
  free(x->held);
  free(x->t);
  free(x);
}

static const ext_tensor *find(const ar_extern *x, int64_t id)
{
  size_t lo = 0, hi = x ? x->n : 0;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (x->t[m].id < id)
      lo = m + 1;
    else
      hi = m;
  }
  return x && lo < x->n && x->t[lo].id == id ? &x->t[lo] : NULL;
}


/* ---- recording a repo -------------------------------------------------------- */

typedef struct {
  ar_extern *x;
  zllm_archive *a;
  size_t repo;
  const zllm_repo *r;
  zllm_sha256_ctx *sha;
  zllm_xxh128_ctx *fxxh, *txxh;
  int file_hashes;
  const ar_extern_cache *cache;
} ext_job;

/* A file's SHA-256 and XXH3-128 only for a file that is not a parsed
 * safetensors file (j->file_hashes): a copy of a base's config or tokenizer
 * is then a file dup here.  A copy of a base's weights file is found by its
 * tensors (each a dup of the extern tensor), and the merge, which compares
 * SHA-256s in the archive, makes it the file dup one process records:
 * hashing the weights file as a whole on every rank that reads the base
 * would cost more than reading it. */
static int hash_feed(ext_job *j, const void *p, size_t n)
{
  if (!j->file_hashes)
    return 0;
  zllm_xxh128_ctx_update(j->fxxh, p, n);
  return zllm_sha256_ctx_update(j->sha, p, n);
}

static int add_tensor(ext_job *j, size_t file, const zllm_st_header *h, size_t i, ext_tensor **out)
{
  ar_extern *x = j->x;
  if (zllm_grow((void **)&x->t, &x->cap, x->n + 1, sizeof *x->t) < 0)
    return ZLLM_ENOMEM;
  const zllm_st_tensor *t = &h->tensors[i];
  uint64_t len = t->end - t->begin;
  ext_tensor *e = &x->t[x->n];
  *e = (ext_tensor){0, j->repo, file, h->data_start + t->begin, len, t->dtype, NULL};
  if (!(e->sums = calloc(ar_nparts(len), sizeof *e->sums)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  x->n++;
  *out = e;
  return 0;
}

/* One tensor: read part by part (into one buffer when the caller keeps it),
 * each part's sum and the tensor's key taken on the bytes read. */
static int read_tensor(ext_job *j, int fd, const zllm_st_header *h, size_t i, ext_tensor *e, uint8_t *part_buf,
                       uint8_t **whole)
{
  int keep = j->cache && j->cache->room(j->cache->ctx, e->len);
  uint8_t *all = keep ? malloc(e->len ? e->len : 1) : NULL; /* no room after all: read by parts */
  int rc = 0;
  *whole = NULL;
  zllm_xxh128_ctx_reset(j->txxh);
  for (uint64_t p = 0; rc == 0 && p < ar_nparts(e->len); p++) {
    size_t n = ar_part_len(e->len, p);
    uint8_t *dst = all ? all + p * ZLLM_PART_BYTES : part_buf;
    rc = zllm_st_read_tensor(h, fd, i, p * ZLLM_PART_BYTES, dst, n);
    rc = rc ? rc : hash_feed(j, dst, n);
    if (rc == 0)
      zllm_xxh128_ctx_update(j->txxh, dst, n);
    /* a part read again later (the cache dropped it, or a dup row points at
     * it after its users are done) must give the same sum; a tensor of one
     * part has its key's hash for it */
    if (rc == 0 && ar_nparts(e->len) > 1)
      zllm_xxh128_buf(&e->sums[p], dst, n);
  }
  if (rc == 0 && ar_nparts(e->len) == 1)
    zllm_xxh128_ctx_final(j->txxh, &e->sums[0]);
  if (rc == 0)
    *whole = all;
  else
    free(all);
  return rc;
}

static int insert_tensor_row(ext_job *j, int64_t file_row, const zllm_st_header *h, size_t i, ext_tensor *e)
{
  const zllm_st_tensor *t = &h->tensors[i];
  char shape[1024];
  zllm_xxh128 hash;
  uint8_t key[16];
  zllm_st_shape_str(shape, sizeof shape, t);
  zllm_xxh128_ctx_final(j->txxh, &hash);
  ar_hash_key(j->a, hash.b, key);
  ar_tensor_row r = {file_row, (int64_t)i, t->name, zllm_dtype_get(t->dtype)->name, shape, t->nelem, e->len, key,
                     AR_EXTERN, ar_layout_name(AR_LAYOUT_FIELD), 0, 0, 0, 0, NULL};
  return ar_insert_tensor(j->a, &r, &e->id);
}

static int read_tensors(ext_job *j, size_t file, int fd, const zllm_st_header *h, int64_t file_row)
{
  uint8_t *part_buf = ar_buf_get(j->a);
  int rc = part_buf ? hash_feed(j, h->raw, (size_t)h->data_start) : ZLLM_ENOMEM;
  for (size_t i = 0; rc == 0 && i < h->ntensors; i++) {
    ext_tensor *e = NULL;
    uint8_t *whole = NULL;
    rc = add_tensor(j, file, h, i, &e);
    rc = rc ? rc : read_tensor(j, fd, h, i, e, part_buf, &whole);
    rc = rc ? rc : insert_tensor_row(j, file_row, h, i, e);
    if (rc == 0 && whole) /* the cache owns it from here */
      rc = j->cache->keep(j->cache->ctx, e->id, j->repo, &h->tensors[i], whole);
  }
  ar_buf_put(j->a, part_buf);
  return rc;
}

static int read_opaque(ext_job *j, int fd, const zllm_hub_file *f, const char *name)
{
  uint8_t *buf = ar_buf_get(j->a);
  int rc = buf ? 0 : ZLLM_ENOMEM;
  for (uint64_t off = 0; rc == 0 && off < f->size; off += ZLLM_PART_BYTES) {
    size_t n = f->size - off < ZLLM_PART_BYTES ? (size_t)(f->size - off) : ZLLM_PART_BYTES;
    rc = zllm_pread_full(fd, buf, n, off, name);
    rc = rc ? rc : hash_feed(j, buf, n);
  }
  ar_buf_put(j->a, buf);
  return rc;
}

static int record_hashes(ext_job *j, int64_t row)
{
  zllm_sha256 sha = {{0}};
  zllm_xxh128 fx;
  uint8_t key[16] = {0};
  sqlite3_stmt *st = NULL;
  if (!j->file_hashes) /* none taken: no file here is confirmed a copy of it */
    return 0;
  zllm_xxh128_ctx_final(j->fxxh, &fx);
  int rc = zllm_sha256_ctx_final(j->sha, &sha);
  ar_hash_key(j->a, fx.b, key);
  rc = rc ? rc : ar_prepare(j->a, &st, "UPDATE files SET sha256 = ?, key = ? WHERE id = ?");
  if (rc == 0) {
    sqlite3_bind_blob(st, 1, sha.b, 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, key, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, row);
    rc = ar_step_done(j->a, st, "recording an extern file's hashes");
  }
  return rc;
}

/* One file of the repo, as pack would read it: a safetensors file whose
 * header parses gives tensor rows, any other file only its hashes. */
static int extern_file(ext_job *j, int64_t repo_row, size_t file)
{
  static const zllm_sha256 pending;
  static const uint8_t pending_key[16];
  const zllm_hub_file *f = &j->r->files[file];
  zllm_st_header *h = NULL;
  char name[1200];
  int64_t row = 0;
  int fd = -1;
  snprintf(name, sizeof name, "%s/%s", j->r->id, f->path);
  const char *unreadable = getenv("ZLLM_TEST_UNREADABLE"); /* pack's fault injection: the same file fails here */
  int rc = zllm_path_check_relative(f->path, name);
  if (rc == 0 && unreadable && strstr(name, unreadable))
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot open: Permission denied (test)", name);
  rc = rc ? rc : zllm_sha256_ctx_reset(j->sha);
  zllm_xxh128_ctx_reset(j->fxxh);
  rc = rc ? rc : zllm_source_open_file(j->x->hub->src, j->r, f, &fd);
  if (rc == 0)
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  if (rc == 0 && f->kind == ZLLM_FILE_SAFETENSORS && zllm_st_read_header(&h, fd, name) < 0)
    h = NULL; /* pack stores it as opaque bytes: only its hashes matter here */
  j->file_hashes = !h;
  ar_file_row fr = {repo_row, f->path, f->size, pending.b, pending_key, AR_EXTERN, 0, 0, 0, NULL};
  rc = rc ? rc : ar_insert_file(j->a, &fr, &row);
  rc = rc ? rc : h ? read_tensors(j, file, fd, h, row) : read_opaque(j, fd, f, name);
  rc = rc ? rc : zllm_hub_file_check_unchanged(f, fd, name);
  const char *changed = getenv("ZLLM_TEST_EXTERN_CHANGED"); /* test hook: the check above failing, after the reads */
  if (rc == 0 && changed && strstr(name, changed))
    rc = zllm_error_set(ZLLM_ECHANGED, "%s: changed while it was read (test)", name);
  rc = rc ? rc : record_hashes(j, row);
  zllm_st_header_free(h);
  if (fd >= 0)
    close(fd);
  return rc;
}

static size_t cache_mark(const ext_job *j)
{
  return j->cache ? j->cache->mark(j->cache->ctx) : 0;
}

static void cache_drop(const ext_job *j, size_t mark)
{
  if (j->cache)
    j->cache->drop(j->cache->ctx, mark);
}

/* A file that cannot be read is left out, as pack leaves it out (skipped):
 * nothing can be a copy of it or use it as a base. */
static int extern_files(ext_job *j, int64_t repo_row)
{
  int rc = 0;
  for (size_t f = 0; rc == 0 && f < j->r->nfiles; f++) {
    size_t mark = j->x->n, kept = cache_mark(j);
    rc = ar_exec(j->a, "SAVEPOINT ext_file");
    j->a->broken = 0;
    int frc = rc ? rc : extern_file(j, repo_row, f);
    if (rc == 0 && frc == 0) {
      rc = ar_exec(j->a, "RELEASE ext_file");
      continue;
    }
    if (rc < 0 || j->a->broken || frc == ZLLM_ENOMEM)
      return rc ? rc : frc;
    ZLLM_WARN("%s/%s: not read as a base here: %s", j->r->id, j->r->files[f].path, zllm_error_last());
    drop_from(j->x, mark);
    cache_drop(j, kept); /* the rolled-back rows' ids will be given again */
    rc = ar_exec(j->a, "ROLLBACK TO ext_file");
    rc = rc ? rc : ar_exec(j->a, "RELEASE ext_file");
  }
  return rc;
}

/* Whether none of the repo's files could be read (each was rolled back). */
static int no_files_recorded(zllm_archive *a, int64_t repo_row, int *none)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT count(*) FROM files WHERE repo = ?");
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, repo_row);
    rc = sqlite3_step(st) == SQLITE_ROW ? 0 : ar_sql_error(a, "counting an extern repo's files");
    *none = rc == 0 && sqlite3_column_int64(st, 0) == 0;
  }
  ar_finalize(a, st);
  return rc;
}

int ar_extern_repo(ar_extern *x, zllm_archive *a, size_t repo, const ar_extern_cache *cache)
{
  const zllm_repo *r = NULL;
  size_t *held = realloc(x->held, (x->nheld + 1) * sizeof *held);
  if (!held)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  x->held = held;
  if (zllm_hub_get(x->hub, repo, &r) < 0) /* not listed: nothing to read, as below */
    return zllm_error_last_code() == ZLLM_ENOMEM ? ZLLM_ENOMEM : 0;
  ext_job j = {x, a, repo, r, NULL, NULL, NULL, 0, cache};
  size_t mark = x->n, kept = cache_mark(&j);
  int64_t row = 0;
  if (r->nfiles == 0) { /* nothing to read: no rows, no base (as pack would find none) */
    zllm_hub_put(x->hub, repo);
    return 0;
  }
  x->held[x->nheld++] = repo; /* read_part reads its files again */
  int rc = zllm_sha256_ctx_new(&j.sha);
  rc = rc ? rc : zllm_xxh128_ctx_new(&j.fxxh);
  rc = rc ? rc : zllm_xxh128_ctx_new(&j.txxh);
  rc = rc ? rc : ar_begin(a);
  rc = rc ? rc : ar_insert_repo(a, r->id, r->revision, NULL, NULL, &row);
  rc = rc ? rc : extern_files(&j, row);
  int none = 0;
  rc = rc ? rc : no_files_recorded(a, row, &none);
  /* a repo row without extern files would look stored here: the merges
   * would take it for the repo its own packer stored */
  if (rc == 0 && none) {
    ar_rollback(a);
    drop_from(x, mark);
    cache_drop(&j, kept);
  } else
    rc = rc ? rc : ar_commit(a);
  if (rc < 0) {
    ar_rollback(a);
    drop_from(x, mark);
    cache_drop(&j, kept);
  }
  zllm_sha256_ctx_free(j.sha);
  zllm_xxh128_ctx_free(j.fxxh);
  zllm_xxh128_ctx_free(j.txxh);
  return rc;
}

/* ---- reading it back ---------------------------------------------------------- */

/* Part `part` of an extern tensor, read from the hub again: the same bytes
 * as the first read (its sum), or the file changed in between. */
static int read_part(const ar_extern *x, const ext_tensor *e, uint64_t part, uint8_t *dst)
{
  const zllm_repo *r = x->hub->repos[e->repo];
  const zllm_hub_file *f = &r->files[e->file];
  char name[1200];
  size_t n = ar_part_len(e->len, part);
  zllm_xxh128 got;
  int fd = -1;
  snprintf(name, sizeof name, "%s/%s", r->id, f->path);
  int rc = zllm_source_open_file(x->hub->src, r, f, &fd);
  rc = rc ? rc : zllm_pread_full(fd, dst, n, e->off + part * ZLLM_PART_BYTES, name);
  if (fd >= 0)
    close(fd);
  if (rc == 0)
    zllm_xxh128_buf(&got, dst, n);
  if (rc == 0 && memcmp(got.b, e->sums[part].b, sizeof got.b) != 0)
    rc = zllm_error_set(ZLLM_ECHANGED, "%s: changed while it was read (a base tensor read twice differs)", name);
  return rc;
}

int ar_extern_part(const ar_extern *x, zllm_archive *a, int64_t id, uint64_t part, uint8_t *dst)
{
  const ext_tensor *e = find(x, id);
  if (!e)
    return zllm_error_set(ZLLM_EINVAL, "tensor %lld is not an extern base", (long long)id);
  if (part * ZLLM_PART_BYTES > e->len)
    return zllm_error_set(ZLLM_EFORMAT, "%s: base tensor %lld is shorter than its fine-tune", a->dir, (long long)id);
  /* the part as it was read, in its own dtype: the decoder casts (a tensor
   * of no bytes has nothing to read) */
  return ar_part_len(e->len, part) ? read_part(x, e, part, dst) : 0;
}
