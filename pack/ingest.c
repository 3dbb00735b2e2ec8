/* zllm pack: ingest a hub snapshot into the archive, repo by repo, each in
 * one transaction.  Bases are ingested before their fine-tunes. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pack/archive_internal.h"
#include "pack/extern.h"
#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

#define HEADER_LEVEL 3 /* headers, configs, opaque files: small or generic data */
#define HASH_SLICE ((uint64_t)256 << 10) /* read and hashed together: stays in L2 across the three hashes */

/* What each profile does (see zllm/archive.h). */
typedef struct {
  const char *name;
  int file_dedup, tensor_dedup, parse_safetensors;
  int bitx;              /* use a base when there is one */
  int casts;             /* a base in another float dtype predicts through the cast */
  int base_check;        /* drop a base whose XOR would not be smaller (sampled) */
  ar_layout delta_layout, solo_layout;
  int plane_level;
  zllm_stream_coder plane_coder; /* in a format-2 archive (format 1: zstd) */
} profile_rules;

static const profile_rules profiles[] = {
  [ZLLM_PROFILE_ZLLM] = {"zllm", 1, 1, 1, 1, 1, 1, AR_LAYOUT_FIELD, AR_LAYOUT_FIELD, 1, ZLLM_CODER_RANS0},
  [ZLLM_PROFILE_ZIPLLM] = {"zipllm", 1, 1, 1, 1, 0, 0, AR_LAYOUT_U16, AR_LAYOUT_BYTES, 3, ZLLM_CODER_ZSTD},
  [ZLLM_PROFILE_ZIPNN] = {"zipnn", 0, 0, 1, 0, 0, 0, AR_LAYOUT_FIELD, AR_LAYOUT_FIELD, 1, ZLLM_CODER_ZSTD},
  [ZLLM_PROFILE_ZSTD] = {"zstd", 0, 0, 0, 0, 0, 0, AR_LAYOUT_BYTES, AR_LAYOUT_BYTES, 3, ZLLM_CODER_ZSTD},
};

int zllm_pack_profile_parse(const char *name, zllm_pack_profile *out)
{
  for (int i = 0; i < 4; i++)
    if (strcmp(profiles[i].name, name) == 0) {
      *out = (zllm_pack_profile)i;
      return 0;
    }
  return zllm_error_set(ZLLM_EINVAL, "unknown profile '%s' (zllm, zipllm, zipnn, zstd)", name);
}

/* ---- the base cache ---------------------------------------------------------- */

/* The bytes of a base's tensors as they were stored, kept while the repos
 * that use it are packed, so each fine-tune's BitX reads its base from
 * memory instead of decoding it from the archive again.  Keyed by the
 * catalog row the base lookup returns; within a budget (what does not fit
 * is decoded as before). */
typedef struct {
  int64_t id;      /* tensor row */
  size_t repo;     /* the base repo's index */
  zllm_dtype dtype;
  uint64_t nelem;
  uint8_t *bytes;
} cache_entry;

typedef struct {
  cache_entry *e;
  size_t n, cap;
  uint64_t bytes, budget;
} base_cache;

static void cache_drop_from(base_cache *c, size_t mark)
{
  while (c->n > mark) {
    cache_entry *e = &c->e[--c->n];
    c->bytes -= e->nelem * zllm_dtype_get(e->dtype)->size;
    free(e->bytes);
  }
}

static void cache_drop_repo(base_cache *c, size_t repo)
{
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (c->e[i].repo != repo) {
      c->e[k++] = c->e[i];
      continue;
    }
    c->bytes -= c->e[i].nelem * zllm_dtype_get(c->e[i].dtype)->size;
    free(c->e[i].bytes);
  }
  c->n = k;
}

static void cache_free(base_cache *c)
{
  cache_drop_from(c, 0);
  free(c->e);
  memset(c, 0, sizeof *c);
}

/* ZLLM_BASE_CACHE_MIB, else 512 MiB: one 7B base in BF16 does not fit, a
 * 1B one does; what does not fit is decoded from the archive. */
static uint64_t base_cache_budget(void)
{
  const char *v = getenv("ZLLM_BASE_CACHE_MIB");
  char *end = NULL;
  unsigned long long mib = v ? strtoull(v, &end, 10) : 512;
  return v && (*end || end == v) ? (uint64_t)512 << 20 : (uint64_t)mib << 20;
}

static const cache_entry *cache_find(const base_cache *c, int64_t id)
{
  for (size_t i = c->n; i-- > 0;)
    if (c->e[i].id == id)
      return &c->e[i];
  return NULL;
}

/* The extern reader's way into the cache (pack/extern.h): it reads a tensor
 * whole only when the cache has room, then hands the bytes over. */
static int cache_room(void *ctx, uint64_t len)
{
  const base_cache *c = ctx;
  return c->bytes + len <= c->budget;
}

/* Takes `bytes` (a whole tensor's, malloc'd) into the cache. */
static int cache_adopt(void *ctx, int64_t id, size_t repo, const zllm_st_tensor *t, uint8_t *bytes)
{
  base_cache *c = ctx;
  if (zllm_grow((void **)&c->e, &c->cap, c->n + 1, sizeof *c->e) < 0) {
    free(bytes);
    return ZLLM_ENOMEM;
  }
  c->e[c->n++] = (cache_entry){id, repo, t->dtype, t->nelem, bytes};
  c->bytes += t->end - t->begin;
  return 0;
}

static size_t cache_count(void *ctx)
{
  return ((const base_cache *)ctx)->n;
}

static void cache_forget(void *ctx, size_t mark)
{
  cache_drop_from(ctx, mark);
}

/* A full tensor's bytes; a tensor over the budget is simply not kept. */
static int cache_add(base_cache *c, int64_t id, size_t repo, const zllm_st_tensor *t, const uint8_t *p)
{
  uint64_t len = t->end - t->begin;
  if (c->bytes + len > c->budget || cache_find(c, id))
    return 0;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return 0; /* the cache is an optimisation: without room, the archive decodes */
  if (len)
    memcpy(copy, p, len);
  return cache_adopt(c, id, repo, t, copy);
}

typedef struct {
  zllm_archive *a;
  const zllm_pack_options *o;
  const profile_rules *p;
  zllm_pack_stats *s;
  /* counts wait for their commit: a file's join its repo's when the file is
   * kept, a repo's join *s when it commits (problems count at once) */
  zllm_pack_stats file_counts, repo_counts;
  const zllm_hub *hub; /* the listing (o->hub) */
  char **ids;          /* hub->ids (borrowed) */
  size_t n;
  char **base;  /* per repo: chosen base repo, or NULL */
  char **why;   /* per repo: where the base came from */
  int *state;   /* 0 new, 1 in progress, 2 done */
  char *mine;   /* per repo, once visited: stored by this packer (not skipped, claimed) */
  char *ext_done; /* per repo: recorded as an extern base (pack/extern.h) */
  ar_extern *ext;
  zllm_buf *order; /* dry run: ids in visiting order, NUL-separated */
  size_t *users;   /* per repo: repos still to ingest that use it as their base */
  uint8_t *window; /* the tensor being ingested, when it fits */
  size_t window_len, window_max;
  base_cache cache;
} ingest_ctx;

/* ---- helpers -------------------------------------------------------------- */

static int repo_in_archive(zllm_archive *a, const char *name, int *yes)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT 1 FROM repos WHERE name = ?");
  if (rc == 0) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    *yes = sqlite3_step(st) == SQLITE_ROW;
  }
  ar_finalize(a, st);
  return rc;
}

static long find_id(const ingest_ctx *c, const char *name)
{
  return zllm_hub_find(c->hub, name);
}

/* ---- bases: chosen by the caller (zllm/basemap.h) ---------------------------- */

int zllm_pack_profile_uses_bases(zllm_pack_profile p)
{
  return p >= ZLLM_PROFILE_ZLLM && p <= ZLLM_PROFILE_ZSTD && profiles[p].bitx;
}

int zllm_archive_has_repo(zllm_archive *a, const char *repo)
{
  int yes = 0;
  return repo_in_archive(a, repo, &yes) == 0 && yes;
}

/* Each repo's base and reason from the caller's map (copied: a cycle of
 * declared bases is broken here by dropping one). */
static int take_bases(ingest_ctx *c)
{
  for (size_t i = 0; c->o->bases && i < c->n; i++) {
    const zllm_base_entry *e = zllm_base_map_find(c->o->bases, c->ids[i]);
    if (e && ((e->base && !(c->base[i] = strdup(e->base))) || (e->why && !(c->why[i] = strdup(e->why)))))
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  return 0;
}

/* ---- files ------------------------------------------------------------------ */

/* Each file is read once: the bytes read are hashed (the file's SHA-256 and
 * XXH3-128, each tensor's XXH3-128), compared for dedup, shown to the tap and
 * coded, from memory.  A tensor is read whole into the window when it fits
 * (the window's cap is the memory a tensor may take), else part by part,
 * and then each later pass over it (a dedup comparison, the coding) reads
 * it again and must hash the same, or the file changed while it was read.
 * File dedup needs the whole file's hash, so it is decided at the end: a
 * file found to be a copy of a stored one is rolled back to a dup row. */
typedef struct {
  zllm_sha256_ctx *sha;
  zllm_xxh128_ctx *xxh;
} file_hash;

static int file_hash_new(file_hash *h)
{
  int rc = zllm_sha256_ctx_new(&h->sha);
  return rc ? rc : zllm_xxh128_ctx_new(&h->xxh);
}

static void file_hash_free(file_hash *h)
{
  zllm_sha256_ctx_free(h->sha);
  zllm_xxh128_ctx_free(h->xxh);
}

static int file_hash_reset(file_hash *h)
{
  zllm_xxh128_ctx_reset(h->xxh);
  return zllm_sha256_ctx_reset(h->sha);
}

static int file_hash_feed(file_hash *h, const void *p, size_t n)
{
  zllm_xxh128_ctx_update(h->xxh, p, n);
  return zllm_sha256_ctx_update(h->sha, p, n);
}

typedef struct {
  int64_t repo_row;
  size_t index;     /* the repo's index in the hub listing */
  const char *repo;
  const zllm_repo *listed; /* the repo as the hub listed it */
  const char *base; /* base repo name or NULL */
  uint64_t stored;  /* bytes stored for the current file */
  file_hash read;   /* the current file's bytes as read */
  zllm_xxh128_ctx *again; /* a tensor's bytes as read again */
  zllm_xxh128_ctx *tensor_xxh; /* a tensor's bytes as first read */
  int is_base;      /* a later repo uses this one as its base: its tensors go to the cache */
} repo_job;

static int insert_file(zllm_archive *a, const repo_job *j, const zllm_hub_file *f, const zllm_sha256 *sha,
                       const uint8_t key[16], const char *method, int64_t dup_of, int64_t header_blob,
                       const char *note, int64_t *id)
{
  ar_file_row r = {j->repo_row, f->path, f->size, sha->b, key, method, dup_of, header_blob, 0, note};
  return ar_insert_file(a, &r, id);
}

static int set_stored(zllm_archive *a, const char *table, int64_t id, uint64_t stored)
{
  sqlite3_stmt *st = NULL;
  char sql[96];
  snprintf(sql, sizeof sql, "UPDATE %s SET stored = ? WHERE id = ?", table);
  int rc = ar_prepare(a, &st, sql);
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)stored);
  sqlite3_bind_int64(st, 2, id);
  return ar_step_done(a, st, "recording stored bytes");
}

/* Opaque files: zstd stream containers, one per 64 MiB piece. */
static int store_pieces(zllm_archive *a, int fd, const char *name, uint64_t size, int64_t file_row,
                        file_hash *read, uint64_t *stored)
{
  uint8_t *buf = malloc(ZLLM_PIECE_BYTES);
  int rc = buf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (uint64_t off = 0, seq = 0; rc == 0 && (off < size || (size == 0 && seq == 0)); off += ZLLM_PIECE_BYTES, seq++) {
    size_t n = size - off < ZLLM_PIECE_BYTES ? (size_t)(size - off) : ZLLM_PIECE_BYTES;
    int64_t blob = 0;
    rc = zllm_pread_full(fd, buf, n, off, name);
    rc = rc ? rc : file_hash_feed(read, buf, n);
    rc = rc ? rc : ar_stream_write(a, buf, n, HEADER_LEVEL, 0, &blob, stored);
    rc = rc ? rc : ar_insert_piece(a, file_row, seq, n, blob);
  }
  free(buf);
  return rc;
}

/* ---- tensors ---------------------------------------------------------------- */

/* Where a tensor's bytes are during its ingest: whole in the window, or read
 * part by part from the file (each pass after the first hashed again). */
typedef struct {
  const zllm_st_header *h;
  int fd;
  size_t i;
  uint64_t len;
  const uint8_t *whole; /* the window, or NULL */
  zllm_xxh128 hash;     /* XXH3-128 of the bytes as first read */
  zllm_xxh128_ctx *again;
  const char *name;     /* "repo/path", for messages */
} tensor_src;

/* Part `part` of the tensor: a pointer into the window, or read into
 * `scratch` (and hashed for the end-of-pass check). */
static int src_part(tensor_src *s, uint64_t part, uint8_t *scratch, const uint8_t **p, size_t *n)
{
  *n = ar_part_len(s->len, part);
  if (s->whole) {
    *p = s->whole + part * ZLLM_PART_BYTES;
    return 0;
  }
  *p = scratch;
  if (part == 0)
    zllm_xxh128_ctx_reset(s->again);
  int rc = zllm_st_read_tensor(s->h, s->fd, s->i, part * ZLLM_PART_BYTES, scratch, *n);
  if (rc == 0)
    zllm_xxh128_ctx_update(s->again, scratch, *n);
  return rc;
}

/* After a full pass over a tensor read part by part: the same bytes as the
 * first read, or the file changed in between. */
static int src_check(tensor_src *s)
{
  zllm_xxh128 got;
  if (s->whole)
    return 0;
  zllm_xxh128_ctx_final(s->again, &got);
  if (memcmp(got.b, s->hash.b, sizeof got.b) != 0)
    return zllm_error_set(ZLLM_ECHANGED, "%s: changed while it was read (a tensor read twice differs)", s->name);
  return 0;
}

/* Test hook: ZLLM_TEST_CHANGE_AFTER_HASH=<part of "repo/path"> rewrites one byte
 * of that file in place (same size, mtime put back) after the first read of
 * the tensor that holds the file's middle byte: a writer racing the pack
 * that the listing's identity cannot see.  A
 * tensor read part by part is then read again and must fail; one read whole
 * is stored as read. */
static void test_change_after_hash(const zllm_hub_file *f, const char *name, const zllm_st_header *h, size_t i)
{
  const char *at = getenv("ZLLM_TEST_CHANGE_AFTER_HASH");
  struct stat st;
  unsigned char byte;
  off_t mid = (off_t)(f->size / 2); /* rewritten after the read of the tensor that holds it */
  uint64_t lo = h->data_start + h->tensors[i].begin, hi = h->data_start + h->tensors[i].end;
  int fd = at && strstr(name, at) && (uint64_t)mid >= lo && (uint64_t)mid < hi ? open(f->local_path, O_RDWR | O_CLOEXEC)
                                                                              : -1;
  if (fd < 0)
    return;
  if (f->size && fstat(fd, &st) == 0 && pread(fd, &byte, 1, mid) == 1) {
    byte ^= 0x5a;
    if (pwrite(fd, &byte, 1, mid) == 1) {
      struct timespec times[2] = {st.st_atim, st.st_mtim};
      futimens(fd, times);
    }
  }
  close(fd);
}

/* The window's cap: ZLLM_TENSOR_WINDOW_MIB (tests force the part-by-part
 * path with 0), else 256 MiB: a 7B model's largest tensor fits. */
static size_t window_cap(void)
{
  const char *v = getenv("ZLLM_TENSOR_WINDOW_MIB");
  char *end = NULL;
  unsigned long long mib = v ? strtoull(v, &end, 10) : 256;
  return v && (*end || end == v) ? (size_t)256 << 20 : (size_t)(mib << 20);
}

/* The first read of tensor i: whole into the window when it fits, else part
 * by part; either way hashed, fed to the file's hashes, in file order. */
static int src_open(ingest_ctx *c, repo_job *j, const zllm_hub_file *f, int fd, const zllm_st_header *h, size_t i,
                    const char *name, tensor_src *s)
{
  const zllm_st_tensor *t = &h->tensors[i];
  zllm_xxh128_ctx *x = NULL;
  *s = (tensor_src){h, fd, i, t->end - t->begin, NULL, {{0}}, j->again, name};
  if (s->len <= c->window_max && s->len > c->window_len) {
    free(c->window); /* grown to the largest tensor so far, never past the cap */
    c->window_len = 0;
    if (!(c->window = malloc(s->len)))
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    c->window_len = s->len;
  }
  if (s->len <= c->window_len && c->window) {
    /* read in slices, each hashed (three hashes) while it is still in cache */
    int rc = 0;
    zllm_xxh128_ctx_reset(j->tensor_xxh);
    for (uint64_t at = 0; rc == 0 && at < s->len; at += HASH_SLICE) {
      size_t n = s->len - at < HASH_SLICE ? (size_t)(s->len - at) : HASH_SLICE;
      rc = zllm_st_read_tensor(h, fd, i, at, c->window + at, n);
      rc = rc ? rc : file_hash_feed(&j->read, c->window + at, n);
      if (rc == 0)
        zllm_xxh128_ctx_update(j->tensor_xxh, c->window + at, n);
    }
    if (rc == 0)
      zllm_xxh128_ctx_final(j->tensor_xxh, &s->hash);
    s->whole = c->window;
    test_change_after_hash(f, name, h, i); /* too late to matter: nothing reads the tensor again */
    return rc;
  }
  uint8_t *buf = ar_buf_get(c->a);
  int rc = buf ? zllm_xxh128_ctx_new(&x) : ZLLM_ENOMEM;
  for (uint64_t p = 0; rc == 0 && p < ar_nparts(s->len); p++) {
    size_t n = ar_part_len(s->len, p);
    rc = zllm_st_read_tensor(h, fd, i, p * ZLLM_PART_BYTES, buf, n);
    rc = rc ? rc : file_hash_feed(&j->read, buf, n);
    if (rc == 0)
      zllm_xxh128_ctx_update(x, buf, n);
  }
  if (rc == 0)
    zllm_xxh128_ctx_final(x, &s->hash);
  zllm_xxh128_ctx_free(x);
  ar_buf_put(c->a, buf);
  test_change_after_hash(f, name, h, i);
  return rc;
}

/* Part p (n bytes) of a stored tensor of dtype dt: from the base cache when
 * it holds it, else decoded. */
static int stored_part(ingest_ctx *c, int64_t id, zllm_dtype dt, uint64_t p, size_t n, uint8_t *buf,
                       const uint8_t **out)
{
  const cache_entry *e = cache_find(&c->cache, id);
  size_t es = zllm_dtype_get(dt)->size;
  *out = buf;
  if (e && e->dtype == dt && p * ZLLM_PART_BYTES + n <= e->nelem * es) {
    *out = e->bytes + p * ZLLM_PART_BYTES;
    return 0;
  }
  return ar_tensor_decode_part(c->a, id, p, buf, 0); /* an extern tensor: extern_part */
}

/* Byte comparison of a candidate's parts with this tensor's bytes. */
static int same_tensor(ingest_ctx *c, tensor_src *s, int64_t cand, int *same)
{
  zllm_archive *a = c->a;
  zllm_dtype dt = s->h->tensors[s->i].dtype;
  uint8_t *scratch = s->whole ? NULL : ar_buf_get(a), *theirs = ar_buf_get(a);
  int rc = theirs && (s->whole || scratch) ? 0 : ZLLM_ENOMEM;
  *same = 1;
  for (uint64_t p = 0; rc == 0 && *same && s->len && p < ar_nparts(s->len); p++) {
    const uint8_t *mine = NULL, *other = NULL;
    size_t n = 0;
    rc = src_part(s, p, scratch, &mine, &n);
    rc = rc ? rc : stored_part(c, cand, dt, p, n, theirs, &other);
    *same = rc == 0 && memcmp(mine, other, n) == 0;
  }
  if (rc == 0 && *same && s->len)
    rc = src_check(s);
  ar_buf_put(a, scratch);
  ar_buf_put(a, theirs);
  return rc;
}

typedef struct {
  ingest_ctx *c;
  tensor_src *s;
} same_ctx;

static int same_as_candidate(void *ctx, int64_t cand, int *same)
{
  same_ctx *x = ctx;
  return same_tensor(x->c, x->s, cand, same);
}

static int find_dup_tensor(ingest_ctx *c, tensor_src *s, const uint8_t key[16], int64_t *dup, int *depth)
{
  zllm_archive *a = c->a;
  const zllm_st_tensor *t = &s->h->tensors[s->i];
  same_ctx x = {c, s};
  int64_t d = 0;
  int rc = ar_find_tensor_dup(a, key, t->end - t->begin, zllm_dtype_get(t->dtype)->name, same_as_candidate, &x, dup, &d);
  *depth = d < 0 || d > ZLLM_MAX_CHAIN ? ZLLM_MAX_CHAIN : (int)d;
  return rc;
}

/* The base's tensor of this name and shape: the same dtype first, else (with
 * casts) one in another float dtype.  A base file stored as a file dup has
 * its tensors under the original file. */
static int find_base_tensor(zllm_archive *a, const char *base_repo, const zllm_st_tensor *t, const char *shape,
                            int casts, int64_t *base, int *depth)
{
  sqlite3_stmt *st = NULL;
  *base = 0;
  if (!base_repo)
    return 0;
  int rc = ar_prepare(a, &st,
                      "SELECT t.id, t.depth, t.dtype FROM files f JOIN repos r ON f.repo = r.id"
                      " JOIN tensors t ON t.file = (CASE WHEN f.method = 'dup' THEN f.dup_of ELSE f.id END)"
                      " WHERE r.name = ? AND t.name = ? AND t.shape = ?"
                      " ORDER BY t.dtype != ?, t.id");
  if (rc < 0)
    return rc;
  const char *mine = zllm_dtype_get(t->dtype)->name;
  sqlite3_bind_text(st, 1, base_repo, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, t->name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, shape, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, mine, -1, SQLITE_STATIC);
  while (rc == 0 && !*base && sqlite3_step(st) == SQLITE_ROW) {
    zllm_dtype dt;
    const char *name = NULL;
    int64_t id = 0, d = 0;
    rc = ar_col_text(a, st, 2, &name);
    rc = rc ? rc : ar_col_int(a, st, 0, &id);
    rc = rc ? rc : ar_col_int(a, st, 1, &d);
    if (rc < 0 || zllm_dtype_from_name(&dt, name) < 0)
      continue;
    if (dt == t->dtype || (casts && zllm_dtype_castable(dt, t->dtype))) {
      *base = id;
      *depth = d < 0 || d > ZLLM_MAX_CHAIN ? ZLLM_MAX_CHAIN : (int)d;
    }
  }
  ar_finalize(a, st);
  return rc;
}

static int insert_tensor(zllm_archive *a, int64_t file_row, size_t idx, const zllm_st_tensor *t, const char *shape,
                         const uint8_t key[16], const char *method, ar_layout layout, int64_t dup_of, int64_t base,
                         int depth, const char *note, int64_t *id)
{
  ar_tensor_row r = {file_row, (int64_t)idx, t->name, zllm_dtype_get(t->dtype)->name, shape, t->nelem,
                     t->end - t->begin, key, method, ar_layout_name(layout), dup_of, base, depth, 0, note};
  return ar_insert_tensor(a, &r, id);
}

/* The base's elements for part `part` of a tensor of dtype `dt` (n
 * elements), cast to dt: from the cache when its bytes are held (no copy
 * in the same dtype), else decoded from the archive into dst. */
static int base_part(ingest_ctx *c, int64_t base, zllm_dtype dt, uint64_t part, size_t n, uint8_t *dst,
                     const uint8_t **out)
{
  size_t es = zllm_dtype_get(dt)->size;
  uint64_t first = part * ZLLM_PART_BYTES / es;
  const cache_entry *e = cache_find(&c->cache, base);
  ar_tensor bt;
  *out = dst;
  if (e && first + n > e->nelem)
    return zllm_error_set(ZLLM_EFORMAT, "%s: base tensor %lld is shorter than its fine-tune", c->a->dir,
                          (long long)base);
  if (e && e->dtype == dt) {
    *out = e->bytes + first * es;
    return 0;
  }
  if (e) {
    size_t eb = zllm_dtype_get(e->dtype)->size;
    for (size_t k = 0; k < n; k++)
      zllm_dtype_store_float(dt, dst + k * es, zllm_dtype_load_float(e->dtype, e->bytes + (first + k) * eb));
    return 0;
  }
  int rc = ar_tensor_get(c->a, base, &bt);
  if (rc == 0 && bt.dtype == dt)
    return ar_tensor_decode_part(c->a, base, part, dst, 0);
  return rc ? rc : ar_base_as(c->a, &bt, dt, first, n, dst, 0);
}

/* Order-0 bits the planes of the first `n` elements would take, XORed with
 * `base` or not: a cheap look at whether a base predicts a tensor at all. */
static double plane_bits(zllm_dtype view, const uint8_t *src, const uint8_t *base, size_t n)
{
  enum { SAMPLE = 1 << 16 };
  static uint8_t buf[ZLLM_BITX_MAX_PLANES][2 * SAMPLE];
  uint8_t *planes[ZLLM_BITX_MAX_PLANES];
  n = n < SAMPLE ? n : SAMPLE;
  for (int p = 0; p < ZLLM_BITX_MAX_PLANES; p++)
    planes[p] = buf[p];
  zllm_bitx_split(view, src, base, n, planes);
  double bits = 0;
  size_t pl = zllm_bitx_plane_len(view, n);
  for (int p = 0; p < zllm_bitx_planes(view); p++) {
    uint32_t hist[256] = {0};
    for (size_t i = 0; i < pl; i++)
      hist[planes[p][i]]++;
    for (int v = 0; v < 256; v++)
      if (hist[v])
        bits -= (double)hist[v] * log2((double)hist[v] / (double)pl);
  }
  return bits;
}

static int drop_base(zllm_archive *a, int64_t id, const char *note)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "UPDATE tensors SET method = 'solo', base = NULL, depth = 0, note = ? WHERE id = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, note, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, id);
  return ar_step_done(a, st, "recording a solo fallback");
}

/* What one pass over a tensor's parts does: code its planes (id != 0;
 * XORed with `base` when set) and show the tap its bytes beside the tap's
 * base (`tap_base`, usually the same tensor). */
typedef struct {
  int64_t id, base, tap_base;
  ar_layout layout;
  int same_as_tap_base; /* a dup of the tap's base tensor: its own bytes are the base's */
  uint64_t stored;
  int dropped;
} tensor_pass;

static int pass_part(ingest_ctx *c, tensor_src *s, tensor_pass *tp, uint64_t part, uint8_t *scratch, uint8_t *bbuf,
                     uint8_t **tbuf, uint8_t *const *planes)
{
  const zllm_st_tensor *t = &s->h->tensors[s->i];
  zllm_dtype view = ar_view_dtype(t->dtype, tp->layout, s->len);
  size_t es = zllm_dtype_get(view)->size, n = 0;
  const uint8_t *src = NULL, *base = NULL, *tb = NULL;
  int rc = src_part(s, part, scratch, &src, &n);
  if (rc == 0 && tp->base)
    rc = base_part(c, tp->base, t->dtype, part, n / zllm_dtype_get(t->dtype)->size, bbuf, &base);
  if (rc == 0 && tp->tap_base && tp->same_as_tap_base)
    tb = src;
  else if (rc == 0 && tp->tap_base && tp->tap_base == tp->base)
    tb = base;
  else if (rc == 0 && tp->tap_base) {
    if (!*tbuf && !(*tbuf = ar_buf_get(c->a)))
      return ZLLM_ENOMEM;
    rc = base_part(c, tp->tap_base, t->dtype, part, n / zllm_dtype_get(t->dtype)->size, *tbuf, &tb);
  }
  if (rc == 0 && c->o->tap)
    rc = c->o->tap->tensor_part(c->o->tap->ctx, s->i, part * ZLLM_PART_BYTES, src, n, tb);
  if (rc < 0 || !tp->id)
    return rc;
  /* a base that does not predict the tensor (a wrong card, unrelated
   * weights) would cost more than the tensor alone */
  if (tp->base && part == 0 && c->p->base_check &&
      plane_bits(view, src, base, n / es) >= 0.98 * plane_bits(view, src, NULL, n / es)) {
    rc = drop_base(c->a, tp->id, "base does not predict this tensor (sampled plane entropy): stored solo");
    tp->base = 0;
    base = NULL;
    tp->dropped = 1;
  }
  if (rc == 0)
    zllm_bitx_split(view, src, base, n / es, planes);
  int64_t blob = 0;
  int np = zllm_bitx_planes(view);
  rc = rc ? rc : ar_part_write(c->a, planes, np, zllm_bitx_plane_len(view, n / es), c->p->plane_level,
                               tp->layout == AR_LAYOUT_FIELD && c->p->base_check, c->p->plane_coder, &blob,
                               &tp->stored);
  return rc ? rc : ar_insert_part(c->a, tp->id, part, blob);
}

/* One pass over every part of a tensor (see tensor_pass). */
static int tensor_pass_run(ingest_ctx *c, tensor_src *s, tensor_pass *tp)
{
  zllm_archive *a = c->a;
  const zllm_st_tensor *t = &s->h->tensors[s->i];
  int np = tp->id ? zllm_bitx_planes(ar_view_dtype(t->dtype, tp->layout, s->len)) : 0;
  uint8_t *scratch = s->whole ? NULL : ar_buf_get(a), *bbuf = tp->base ? ar_buf_get(a) : NULL;
  uint8_t *tbuf = NULL; /* the tap's base, when pack's own base does not serve it */
  uint8_t *planes[ZLLM_BITX_MAX_PLANES] = {0};
  int rc = (s->whole || scratch) && (!tp->base || bbuf) ? 0 : ZLLM_ENOMEM;
  for (int p = 0; rc == 0 && p < np; p++) /* a plane never exceeds a part */
    if (!(planes[p] = ar_buf_get(a)))
      rc = ZLLM_ENOMEM;
  for (uint64_t part = 0; rc == 0 && part < ar_nparts(s->len); part++)
    rc = pass_part(c, s, tp, part, scratch, bbuf, &tbuf, planes);
  rc = rc ? rc : src_check(s);
  for (int p = 0; p < np; p++)
    ar_buf_put(a, planes[p]);
  ar_buf_put(a, scratch);
  ar_buf_put(a, bbuf);
  ar_buf_put(a, tbuf);
  return rc;
}

/* The tap's base: the chosen base's tensor of this name and shape in a float
 * dtype (cast as BitX casts), whatever pack then does with the tensor. */
static int tap_base_of(ingest_ctx *c, repo_job *j, const zllm_st_tensor *t, const char *shape, int64_t *base,
                       int *depth, int *asked)
{
  *base = 0;
  *depth = 0;
  *asked = c->o->tap && zllm_dtype_is_float3(t->dtype);
  return *asked ? find_base_tensor(c->a, j->base, t, shape, 1, base, depth) : 0;
}

static int ingest_tensor(ingest_ctx *c, repo_job *j, int64_t file_row, tensor_src *s)
{
  const zllm_st_tensor *t = &s->h->tensors[s->i];
  char shape[1024];
  uint8_t key[16];
  int64_t dup = 0, base = 0, tap_base = 0, id = 0;
  int depth = 0, tap_depth = 0, tap_asked = 0, rc = 0;
  zllm_st_shape_str(shape, sizeof shape, t);
  ar_hash_key(c->a, s->hash.b, key);
  if (c->p->tensor_dedup)
    rc = find_dup_tensor(c, s, key, &dup, &depth);
  rc = rc ? rc : tap_base_of(c, j, t, shape, &tap_base, &tap_depth, &tap_asked);
  if (rc == 0 && dup) {
    c->file_counts.tensor_dups++;
    rc = insert_tensor(c->a, file_row, s->i, t, shape, key, "dup", AR_LAYOUT_FIELD, dup, 0, depth, NULL, &id);
    /* only the tap needs the bytes again */
    tensor_pass tp = {0, 0, tap_base, AR_LAYOUT_FIELD, dup == tap_base, 0, 0};
    rc = rc || !c->o->tap ? rc : tensor_pass_run(c, s, &tp);
  } else {
    if (rc == 0 && c->p->bitx && tap_asked && c->p->casts) { /* the same lookup the tap made */
      base = tap_base;
      depth = tap_depth;
    } else if (rc == 0 && c->p->bitx) {
      rc = find_base_tensor(c->a, j->base, t, shape, c->p->casts, &base, &depth);
    }
    const char *note = NULL;
    if (rc == 0 && c->p->bitx && j->base && !base)
      note = "base has no tensor of this name, dtype and shape: stored solo";
    if (rc == 0 && base && depth + 1 > ZLLM_MAX_CHAIN) {
      base = 0;
      note = "base chain too deep: stored solo";
    }
    ar_layout layout = base ? c->p->delta_layout : c->p->solo_layout;
    rc = rc ? rc : insert_tensor(c->a, file_row, s->i, t, shape, key, base ? "bitx" : "solo", layout, 0, base,
                                 base ? depth + 1 : 0, note, &id);
    tensor_pass tp = {id, base, tap_base, layout, 0, 0, 0};
    rc = rc ? rc : tensor_pass_run(c, s, &tp);
    rc = rc ? rc : set_stored(c->a, "tensors", id, tp.stored);
    base && !tp.dropped ? c->file_counts.tensors_bitx++ : c->file_counts.tensors_solo++;
    j->stored += tp.stored;
  }
  if (rc == 0 && j->is_base && s->whole)
    rc = cache_add(&c->cache, id, j->index, t, s->whole);
  if (rc == 0 && c->o->tap)
    rc = c->o->tap->tensor_end(c->o->tap->ctx, s->i, &s->hash, tap_base != 0);
  return rc;
}

/* The SHA-256 recorded is that of the bytes read (and stored). */
static int record_sha(zllm_archive *a, int64_t row, const zllm_sha256 *sha)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "UPDATE files SET sha256 = ? WHERE id = ?");
  if (rc == 0) {
    sqlite3_bind_blob(st, 1, sha->b, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, row);
    rc = ar_step_done(a, st, "recording a file's SHA-256");
  }
  return rc;
}

/* A safetensors file: its header as a stream, then each tensor. */
static int store_safetensors(ingest_ctx *c, repo_job *j, const zllm_hub_file *f, int fd, const zllm_st_header *h,
                             const char *name, const uint8_t *key, int64_t *row)
{
  static const zllm_sha256 pending; /* until the file's hash is known */
  int64_t hblob = 0;
  int rc = file_hash_feed(&j->read, h->raw, (size_t)h->data_start);
  rc = rc ? rc : ar_stream_write(c->a, h->raw, (size_t)h->data_start, HEADER_LEVEL, 0, &hblob, &j->stored);
  rc = rc ? rc : insert_file(c->a, j, f, &pending, key, "safetensors", 0, hblob, NULL, row);
  for (size_t i = 0; rc == 0 && i < h->ntensors; i++) {
    tensor_src s;
    rc = src_open(c, j, f, fd, h, i, name, &s);
    rc = rc ? rc : ingest_tensor(c, j, *row, &s);
  }
  return rc;
}

/* The file's bytes are stored (speculatively: the file's own hash is known
 * only at the end); a copy of a stored file is then rolled back to a dup
 * row pointing at the original. */
static int settle_file(ingest_ctx *c, repo_job *j, const zllm_hub_file *f, int64_t *row, uint64_t pack_mark,
                       size_t cache_mark, zllm_sha256 *sha, zllm_xxh128 *fx)
{
  uint8_t key[16];
  int64_t dup = 0;
  zllm_xxh128_ctx_final(j->read.xxh, fx);
  int rc = zllm_sha256_ctx_final(j->read.sha, sha);
  ar_hash_key(c->a, fx->b, key);
  if (rc == 0 && c->p->file_dedup)
    rc = ar_find_file_dup(c->a, key, sha->b, *row, &dup);
  if (rc == 0 && dup) {
    rc = ar_exec(c->a, "ROLLBACK TO body");
    c->a->pack_len = pack_mark; /* the copy's blobs are overwritten by the next */
    cache_drop_from(&c->cache, cache_mark);
    memset(&c->file_counts, 0, sizeof c->file_counts);
    c->file_counts.file_dups = 1;
    j->stored = 0;
    rc = rc ? rc : insert_file(c->a, j, f, sha, key, "dup", dup, 0, NULL, row);
    return rc ? rc : ar_exec(c->a, "RELEASE body");
  }
  /* the key column was written before the hash was known */
  sqlite3_stmt *st = NULL;
  rc = rc ? rc : record_sha(c->a, *row, sha);
  rc = rc ? rc : ar_prepare(c->a, &st, "UPDATE files SET key = ? WHERE id = ?");
  if (rc == 0) {
    sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, *row);
    rc = ar_step_done(c->a, st, "recording a file's key");
  }
  return rc ? rc : ar_exec(c->a, "RELEASE body");
}

static int tap_begin(ingest_ctx *c, const repo_job *j, const zllm_hub_file *f, const zllm_st_header *h,
                     const char *err)
{
  return c->o->tap ? c->o->tap->file_begin(c->o->tap->ctx, j->repo, f, h, err) : 0;
}

static int tap_end(ingest_ctx *c, const zllm_sha256 *sha, const zllm_xxh128 *x, const char *err)
{
  return c->o->tap ? c->o->tap->file_end(c->o->tap->ctx, sha, x, err) : 0;
}

static int ingest_file(ingest_ctx *c, repo_job *j, const zllm_hub_file *f)
{
  zllm_st_header *h = NULL;
  static const uint8_t pending_key[16];
  zllm_sha256 sha;
  zllm_xxh128 fx;
  char name[1200], note[1024] = "";
  int64_t row = 0;
  const char *unreadable = getenv("ZLLM_TEST_UNREADABLE"); /* fault injection for tests */
  int fd = -1, rc = 0;
  uint64_t pack_mark = c->a->pack_len;
  size_t cache_mark = c->cache.n;
  snprintf(name, sizeof name, "%s/%s", j->repo, f->path);
  j->stored = 0;
  /* one rule for names at ingest and restore: what is stored can be written back */
  if ((rc = zllm_path_check_relative(f->path, name)) < 0)
    return zllm_error_set(rc, "cannot be restored: %s", zllm_error_last());
  if (unreadable && strstr(name, unreadable))
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot open: Permission denied (test)", name);
  rc = rc ? rc : file_hash_reset(&j->read);
  rc = rc ? rc : zllm_source_open_file(c->hub->src, j->listed, f, &fd);
  if (rc == 0) /* read front to back, once: a larger readahead helps a cold cache */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  /* a malformed safetensors file is kept as opaque bytes, with the reason */
  if (rc == 0 && f->kind == ZLLM_FILE_SAFETENSORS && c->p->parse_safetensors && zllm_st_read_header(&h, fd, name) < 0) {
    snprintf(note, sizeof note, "stored opaque: %s", zllm_error_last());
    ZLLM_WARN("%s", note);
    c->s->problems++;
  }
  /* the tap sees every file pack tries to read, failed ones too (with the reason at the end) */
  int trc = tap_begin(c, j, f, rc == 0 ? h : NULL, note[0] ? note + strlen("stored opaque: ") : NULL);
  rc = rc ? rc : trc;
  rc = rc ? rc : ar_exec(c->a, "SAVEPOINT body");
  if (rc == 0 && h) {
    rc = store_safetensors(c, j, f, fd, h, name, pending_key, &row);
  } else if (rc == 0) {
    static const zllm_sha256 pending;
    rc = insert_file(c->a, j, f, &pending, pending_key, "opaque", 0, 0, note[0] ? note : NULL, &row);
    rc = rc ? rc : store_pieces(c->a, fd, name, f->size, row, &j->read, &j->stored);
    c->file_counts.opaque_files++;
  }
  /* the listing's size and mtime still hold after the last read */
  rc = rc ? rc : zllm_hub_file_check_unchanged(f, fd, name);
  rc = rc ? rc : settle_file(c, j, f, &row, pack_mark, cache_mark, &sha, &fx);
  rc = rc ? rc : set_stored(c->a, "files", row, j->stored);
  if (rc == 0) {
    c->file_counts.files++;
    c->file_counts.bytes_in += f->size;
    c->file_counts.bytes_stored += j->stored;
  }
  trc = tap_end(c, rc == 0 ? &sha : NULL, rc == 0 ? &fx : NULL, rc == 0 ? NULL : zllm_error_last());
  rc = rc ? rc : trc;
  if (rc < 0)
    cache_drop_from(&c->cache, cache_mark);
  zllm_st_header_free(h);
  if (fd >= 0)
    close(fd);
  return rc;
}

/* A file whose input fails (unreadable, changed while read) is recorded as
 * skipped with the reason, and the repo goes on; a failure of the archive
 * itself (a write, SQL) still stops the repo. */
static void add_counts(zllm_pack_stats *to, const zllm_pack_stats *from)
{
  to->repos += from->repos;
  to->repos_skipped += from->repos_skipped;
  to->files += from->files;
  to->bytes_in += from->bytes_in;
  to->bytes_stored += from->bytes_stored;
  to->file_dups += from->file_dups;
  to->tensor_dups += from->tensor_dups;
  to->tensors_bitx += from->tensors_bitx;
  to->tensors_solo += from->tensors_solo;
  to->opaque_files += from->opaque_files;
  to->problems += from->problems;
}

static int ingest_file_guarded(ingest_ctx *c, repo_job *j, const zllm_hub_file *f)
{
  zllm_archive *a = c->a;
  uint64_t mark = a->pack_len;
  int rc = ar_exec(a, "SAVEPOINT file");
  a->broken = 0;
  memset(&c->file_counts, 0, sizeof c->file_counts);
  rc = rc ? rc : ingest_file(c, j, f);
  rc = rc ? rc : ar_exec(a, "RELEASE file");
  if (rc == 0) {
    add_counts(&c->repo_counts, &c->file_counts);
    return 0;
  }
  /* a file that changed under us fails its repo: nothing of it is
   * committed, and the next pack lists and ingests it again */
  if (a->broken || rc == ZLLM_ENOMEM || rc == ZLLM_ECHANGED)
    return rc;
  char note[1024];
  snprintf(note, sizeof note, "skipped: %s", zllm_error_last());
  ZLLM_WARN("%s", note);
  c->s->problems++;
  rc = ar_exec(a, "ROLLBACK TO file");
  rc = rc ? rc : ar_exec(a, "RELEASE file");
  a->pack_len = mark; /* the skipped file's blobs are overwritten by the next */
  static const zllm_sha256 none;
  static const uint8_t nokey[16];
  int64_t row = 0;
  return rc ? rc : insert_file(a, j, f, &none, nokey, "skipped", 0, 0, note, &row);
}

/* ---- repos ------------------------------------------------------------------ */

static int ingest_repo(ingest_ctx *c, size_t i)
{
  const zllm_repo *r = NULL;
  int rc = zllm_hub_get(c->hub, i, &r), got = rc == 0;
  repo_job j = {0, i, c->ids[i], r, c->base[i], 0, {NULL, NULL}, NULL, NULL, c->users[i] > 0};
  rc = rc ? rc : file_hash_new(&j.read);
  rc = rc ? rc : zllm_xxh128_ctx_new(&j.again);
  rc = rc ? rc : zllm_xxh128_ctx_new(&j.tensor_xxh);
  if (rc < 0)
    goto done;
  memset(&c->repo_counts, 0, sizeof c->repo_counts);
  rc = ar_begin(c->a);
  rc = rc ? rc : ar_insert_repo(c->a, r->id, r->revision, c->base[i], c->why[i], &j.repo_row);
  for (size_t f = 0; rc == 0 && f < r->nfiles; f++)
    rc = ingest_file_guarded(c, &j, &r->files[f]);
  rc = rc ? rc : ar_commit(c->a);
  if (rc < 0) {
    ar_rollback(c->a);
    cache_drop_repo(&c->cache, i); /* its rows are gone */
  } else {
    add_counts(c->s, &c->repo_counts);
    c->s->repos++;
  }
done:
  file_hash_free(&j.read);
  zllm_xxh128_ctx_free(j.again);
  zllm_xxh128_ctx_free(j.tensor_xxh);
  if (got)
    zllm_hub_put(c->hub, i);
  return rc;
}

/* Whether repo i is this packer's: claimed, when packers share the hub. */
static int take_repo(ingest_ctx *c, size_t i, int *mine)
{
  *mine = 1;
  return c->o->claim ? c->o->claim(c->o->claim_ctx, i, mine) : 0;
}

/* A repo of mine whose base another packer stores: the base's bytes from
 * the hub, recorded once as an extern repo (pack/extern.h).  Without them
 * the repo is packed as if its base had no tensors; the merge then keeps
 * that, so it is an error only when the archive fails. */
static int extern_base(ingest_ctx *c, long b)
{
  int have = 0;
  if (b < 0 || c->mine[b] || c->ext_done[b])
    return 0;
  c->ext_done[b] = 1;
  ar_extern_cache keep = {&c->cache, cache_room, cache_adopt, cache_count, cache_forget};
  int rc = repo_in_archive(c->a, c->ids[b], &have);
  rc = rc || have ? rc : ar_extern_repo(c->ext, c->a, (size_t)b, &keep);
  if (rc < 0 && !c->a->broken && zllm_error_last_code() != ZLLM_ENOMEM) {
    ZLLM_WARN("pack: base %s not read here: %s", c->ids[b], zllm_error_last());
    rc = 0;
  }
  return rc;
}

static int store_repo(ingest_ctx *c, size_t i, long b)
{
  int have = 0;
  int rc = repo_in_archive(c->a, c->ids[i], &have);
  if (rc < 0 || have)
    return rc;
  if ((rc = extern_base(c, b)) < 0)
    return rc;
  if (c->o->verbose)
    ZLLM_INFO("pack: %s%s%s", c->ids[i], c->base[i] ? " (base " : "", c->base[i] ? c->base[i] : "");
  if (ingest_repo(c, i) < 0) {
    if (zllm_error_last_code() == ZLLM_ENOMEM)
      return ZLLM_ENOMEM;
    ZLLM_ERR("pack: %s skipped: %s", c->ids[i], zllm_error_last());
    c->s->repos_skipped++;
    c->s->problems++;
  }
  return 0;
}

/* Depth-first: a repo's base goes in before the repo itself. */
static int visit(ingest_ctx *c, size_t i, int depth)
{
  if (c->state[i] == 2)
    return 0;
  if (c->state[i] == 1 || depth > 64) { /* a cycle of declared bases: break it here */
    ZLLM_WARN("%s: base '%s' forms a cycle; stored without a base", c->ids[i], c->base[i]);
    free(c->base[i]);
    c->base[i] = NULL;
    return 0;
  }
  c->state[i] = 1;
  long b = c->base[i] ? find_id(c, c->base[i]) : -1;
  int rc = b >= 0 ? visit(c, (size_t)b, depth + 1) : 0;
  int mine = 0;
  if (rc == 0 && c->order) {
    rc = zllm_buf_append(c->order, c->ids[i], strlen(c->ids[i]) + 1);
    c->state[i] = 2;
    return rc;
  }
  rc = rc ? rc : take_repo(c, i, &mine);
  c->mine[i] = (char)mine;
  if (rc == 0 && mine) /* a repo another packer took is stored by that packer */
    rc = store_repo(c, i, b);
  /* a base's bytes are kept only while repos that use it are still to come */
  if (rc == 0 && b >= 0 && c->users[b] > 0 && --c->users[b] == 0)
    cache_drop_repo(&c->cache, (size_t)b);
  c->state[i] = 2;
  return rc;
}

/* How many repos use each repo as their base (whoever packs them: a base's
 * bytes stay cached until the visit has passed them all). */
static int count_users(ingest_ctx *c)
{
  if (!(c->users = calloc(c->n + 1, sizeof *c->users)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n; i++) {
    long b = c->base[i] ? find_id(c, c->base[i]) : -1;
    if (b >= 0)
      c->users[b]++;
  }
  return 0;
}

static int pack_run(zllm_archive *a, const zllm_pack_options *o, zllm_pack_stats *stats, zllm_buf *order);

int zllm_pack_hub(zllm_archive *a, const zllm_pack_options *o, zllm_pack_stats *stats)
{
  return pack_run(a, o, stats, NULL);
}

int zllm_pack_order(const zllm_pack_options *o, char ***ids, size_t *n)
{
  zllm_pack_stats s;
  zllm_buf b = ZLLM_BUF_INIT;
  size_t k = 0;
  int rc = pack_run(NULL, o, &s, &b);
  for (size_t i = 0; rc == 0 && i < b.len; i++)
    k += b.data[i] == '\0';
  *ids = NULL;
  *n = 0;
  if (rc == 0 && !(*ids = calloc(k + 1, sizeof **ids)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t at = 0; rc == 0 && at < b.len; at += strlen(b.data + at) + 1)
    if (!((*ids)[(*n)++] = strdup(b.data + at)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  zllm_buf_free(&b);
  return rc;
}

/* The archive's way to an extern tensor's bytes (a base decoded for a
 * fine-tune may itself be a BitX of an extern tensor): the cache, or the hub. */
static int extern_part(void *ctx, int64_t id, uint64_t part, uint8_t *dst, int depth)
{
  ingest_ctx *c = ctx;
  const cache_entry *e = cache_find(&c->cache, id);
  size_t es = e ? zllm_dtype_get(e->dtype)->size : 0;
  (void)depth;
  if (e) {
    size_t n = ar_part_len(e->nelem * es, part);
    if (n)
      memcpy(dst, e->bytes + part * ZLLM_PART_BYTES, n);
    return 0;
  }
  return ar_extern_part(c->ext, c->a, id, part, dst);
}

static int pack_run(zllm_archive *a, const zllm_pack_options *o, zllm_pack_stats *stats, zllm_buf *order)
{
  ingest_ctx c = {.a = a, .o = o, .s = stats, .p = &profiles[o->profile], .order = order};
  memset(stats, 0, sizeof *stats);
  int rc = o->hub ? 0 : zllm_error_set(ZLLM_EINVAL, "pack: no hub");
  c.hub = o->hub;
  c.ids = o->hub ? o->hub->ids : NULL;
  c.n = o->hub ? o->hub->n : 0;
  if (rc == 0 && (!(c.base = calloc(c.n + 1, sizeof *c.base)) || !(c.why = calloc(c.n + 1, sizeof *c.why)) ||
                  !(c.state = calloc(c.n + 1, sizeof *c.state)) || !(c.mine = calloc(c.n + 1, 1)) ||
                  !(c.ext_done = calloc(c.n + 1, 1))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : ar_extern_new(&c.ext, c.hub);
  rc = rc ? rc : take_bases(&c);
  rc = rc ? rc : count_users(&c);
  if (a) {
    a->extern_part = extern_part;
    a->extern_ctx = &c;
  }
  c.window_max = window_cap();
  c.cache.budget = base_cache_budget();
  for (size_t i = 0; rc == 0 && i < c.n; i++)
    rc = visit(&c, i, 0);
  if (a) {
    a->extern_part = NULL;
    a->extern_ctx = NULL;
  }
  cache_free(&c.cache);
  ar_extern_free(c.ext);
  free(c.mine);
  free(c.ext_done);
  free(c.window);
  free(c.users);
  zllm_strv_free(c.base, c.n);
  zllm_strv_free(c.why, c.n);
  free(c.state);
  return rc;
}
