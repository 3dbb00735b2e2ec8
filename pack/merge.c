/* Merging archives packed from shares of one hub (zllm/archive.h): each
 * repo is copied from the source that holds it, in the single-process
 * visiting order, redoing the cross-share decisions — file dups by SHA-256,
 * tensor dups by hash then bytes — so the catalog reads as if one process
 * had packed the hub.  Blobs are not copied one by one: each source's pack
 * file is moved in (renamed) as one more pack of the destination.  A
 * source's extern repos (pack/extern.h: bases another source stores) are
 * never copied; rows that point at them are pointed at the stored repo. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack/archive_internal.h"
#include "pack/extern.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/path.h"

typedef struct {
  zllm_archive *a;
  int64_t pack;      /* its pack's id in the destination, 0 until copied in */
  int64_t *blob;     /* source blob id -> destination id (0: not yet) */
  int64_t *file;     /* source file id -> destination id */
  int64_t *tensor;   /* source tensor id -> destination id */
  int64_t nblob, nfile, ntensor;
} source;

typedef struct {
  zllm_archive *d;
  source *s;
  size_t ns;
} merge_ctx;

int64_t ar_merge_max_id(zllm_archive *a, const char *table, int *rc)
{
  sqlite3_stmt *st = NULL;
  char sql[64];
  int64_t v = 0;
  snprintf(sql, sizeof sql, "SELECT coalesce(max(id), 0) FROM %s", table);
  if (*rc == 0 && (*rc = ar_prepare(a, &st, sql)) == 0 && sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  ar_finalize(a, st);
  return v;
}

static int open_source(source *x, zllm_archive *a)
{
  int rc = 0;
  memset(x, 0, sizeof *x);
  x->a = a;
  x->nblob = ar_merge_max_id(a, "blobs", &rc) + 1;
  x->nfile = ar_merge_max_id(a, "files", &rc) + 1;
  x->ntensor = ar_merge_max_id(a, "tensors", &rc) + 1;
  if (rc == 0 && (!(x->blob = calloc((size_t)x->nblob, 8)) || !(x->file = calloc((size_t)x->nfile, 8)) ||
                  !(x->tensor = calloc((size_t)x->ntensor, 8))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return rc;
}

static void close_source(source *x)
{
  free(x->blob);
  free(x->file);
  free(x->tensor);
}

int ar_merge_move_pack(const char *from, const char *to, const char *dir)
{
  if (rename(from, to) == 0) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok = dfd >= 0 && fsync(dfd) == 0; /* the new name is durable before the catalog names it */
    if (dfd >= 0)
      close(dfd);
    return ok ? 0 : zllm_error_set(ZLLM_EIO, "%s: cannot sync: %s", dir, strerror(errno));
  }
  if (errno != EXDEV)
    return zllm_error_set(ZLLM_EIO, "cannot move %s to %s: %s", from, to, strerror(errno));
  return zllm_copy_file(from, to);
}

/* The source's pack becomes the destination's next pack, in its own
 * transaction: once moved, it stays registered whatever its repos do. */
static int move_pack(merge_ctx *m, source *x)
{
  char name[32], *from = NULL, *to = NULL, *dir = zllm_path_join(m->d->dir, "packs");
  sqlite3_stmt *st = NULL;
  int rc = dir ? ar_begin(m->d) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int64_t n = ar_merge_max_id(m->d, "packs", &rc) + 1;
  snprintf(name, sizeof name, "pack-m%04lld.zpk", (long long)n);
  if (rc == 0 && (!(from = zllm_path_join(x->a->dir, "packs/pack-0000.zpk")) || !(to = zllm_path_join(dir, name))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : ar_prepare(m->d, &st, "INSERT INTO packs(name, committed_len) VALUES(?, ?)");
  if (rc == 0) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)x->a->committed_len);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ar_sql_error(m->d, "registering a pack");
    x->pack = sqlite3_last_insert_rowid(m->d->db);
  }
  ar_finalize(m->d, st);
  /* the source keeps reading its pack through the descriptor it holds */
  rc = rc ? rc : ar_merge_move_pack(from, to, dir);
  rc = rc ? rc : ar_commit(m->d);
  if (rc < 0) {
    ar_rollback(m->d);
    x->pack = 0;
  }
  free(from);
  free(to);
  free(dir);
  return rc;
}

/* A source blob's row in the destination (added on first use). */
static int map_blob(merge_ctx *m, source *x, int64_t id, int64_t *out)
{
  sqlite3_stmt *st = NULL, *in = NULL;
  int rc = 0;
  if (id <= 0 || id >= x->nblob)
    return zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld out of range", x->a->dir, (long long)id);
  if (x->blob[id]) {
    *out = x->blob[id];
    return 0;
  }
  rc = ar_prepare(x->a, &st, "SELECT offset, len, checksum FROM blobs WHERE id = ?");
  rc = rc ? rc : ar_prepare(m->d, &in, "INSERT INTO blobs(pack, offset, len, checksum) VALUES(?, ?, ?, ?)");
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld missing", x->a->dir, (long long)id);
  }
  if (rc == 0) {
    sqlite3_bind_int64(in, 1, x->pack);
    for (int k = 0; k < 3; k++)
      sqlite3_bind_int64(in, k + 2, sqlite3_column_int64(st, k));
    rc = sqlite3_step(in) == SQLITE_DONE ? 0 : ar_sql_error(m->d, "copying a blob row");
    *out = x->blob[id] = sqlite3_last_insert_rowid(m->d->db);
  }
  ar_finalize(x->a, st);
  ar_finalize(m->d, in);
  return rc;
}

/* Follows dup_of to the row that holds the bytes. */
static int64_t root_of(zllm_archive *d, const char *table, int64_t id)
{
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT method, dup_of FROM %s WHERE id = ?", table);
  for (int hops = 0; hops < 64; hops++) {
    sqlite3_stmt *st = NULL;
    int dup = 0;
    int64_t next = 0;
    if (ar_prepare(d, &st, sql) < 0)
      return id;
    sqlite3_bind_int64(st, 1, id);
    const char *method = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && ar_col_text(d, st, 0, &method) == 0 &&
        ar_col_int_or_null(d, st, 1, &next) == 0)
      dup = strcmp(method, "dup") == 0;
    ar_finalize(d, st);
    if (!dup || !next)
      return id;
    id = next;
  }
  return id;
}

static int64_t depth_of(zllm_archive *d, int64_t id)
{
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  if (ar_prepare(d, &st, "SELECT depth FROM tensors WHERE id = ?") == 0) {
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
  }
  ar_finalize(d, st);
  return v;
}

/* Byte comparison, part by part, of a source tensor and a destination one. */
static int same_bytes(merge_ctx *m, source *x, int64_t src, int64_t dst, uint64_t len, int *same)
{
  uint8_t *a = ar_buf_get(x->a), *b = ar_buf_get(m->d);
  int rc = a && b ? 0 : ZLLM_ENOMEM;
  *same = 1;
  for (uint64_t p = 0; rc == 0 && *same && len && p < ar_nparts(len); p++) {
    rc = ar_tensor_decode_part(x->a, src, p, a, 0);
    rc = rc ? rc : ar_tensor_decode_part(m->d, dst, p, b, 0);
    *same = rc == 0 && memcmp(a, b, ar_part_len(len, p)) == 0;
  }
  ar_buf_put(x->a, a);
  ar_buf_put(m->d, b);
  return rc;
}

typedef struct {
  merge_ctx *m;
  source *x;
  int64_t src;
  uint64_t len;
} same_ctx;

static int same_as_candidate(void *ctx, int64_t cand, int *same)
{
  same_ctx *c = ctx;
  return same_bytes(c->m, c->x, c->src, cand, c->len, same);
}

/* An earlier destination tensor with the same bytes (key, length and dtype
 * first, then the bytes), as tensor dedup at ingest finds one. */
static int find_dup(merge_ctx *m, source *x, sqlite3_stmt *t, int64_t *dup)
{
  const void *key = NULL;
  const char *dtype = NULL;
  int64_t depth = 0;
  same_ctx c = {m, x, sqlite3_column_int64(t, 0), (uint64_t)sqlite3_column_int64(t, 6)};
  int rc = ar_col_blob(x->a, t, 7, 16, &key);
  rc = rc ? rc : ar_col_text(x->a, t, 3, &dtype);
  return rc ? rc : ar_find_tensor_dup(m->d, key, c.len, dtype, same_as_candidate, &c, dup, &depth);
}

static int copy_parts(merge_ctx *m, source *x, int64_t src, int64_t dst)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(x->a, &st, "SELECT part, blob FROM parts WHERE tensor = ? ORDER BY part");
  if (rc == 0)
    sqlite3_bind_int64(st, 1, src);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    int64_t blob = 0;
    rc = map_blob(m, x, sqlite3_column_int64(st, 1), &blob);
    rc = rc ? rc : ar_insert_part(m->d, dst, (uint64_t)sqlite3_column_int64(st, 0), blob);
  }
  ar_finalize(x->a, st);
  return rc;
}

/* Columns of a tensor row, source and destination alike. */
#define TENSOR_COLS "id, idx, name, dtype, shape, nelem, len, key, method, layout, dup_of, base, depth, stored, note"

static int insert_tensor_row(merge_ctx *m, source *x, int64_t file, sqlite3_stmt *t, const char *method, int64_t dup_of,
                             int64_t base, int64_t depth, int64_t stored, int keep_note, int64_t *id)
{
  ar_tensor_row r = {file, sqlite3_column_int64(t, 1), NULL, NULL, NULL, (uint64_t)sqlite3_column_int64(t, 5),
                     (uint64_t)sqlite3_column_int64(t, 6), NULL, method, NULL, dup_of, base, depth,
                     (uint64_t)stored, NULL};
  const void *key = NULL;
  int rc = ar_col_text(x->a, t, 2, &r.name);
  rc = rc ? rc : ar_col_text(x->a, t, 3, &r.dtype);
  rc = rc ? rc : ar_col_text(x->a, t, 4, &r.shape);
  rc = rc ? rc : ar_col_blob(x->a, t, 7, 16, &key);
  rc = rc ? rc : ar_col_text(x->a, t, 9, &r.layout);
  if (rc == 0 && keep_note)
    rc = ar_col_text_or_null(x->a, t, 14, &r.note);
  r.key = key;
  return rc ? rc : ar_insert_tensor(m->d, &r, id);
}

static int64_t mapped(const int64_t *map, int64_t n, int64_t id)
{
  return id > 0 && id < n ? map[id] : 0;
}

int ar_merge_extern_row(zllm_archive *a, int64_t sid, int tensor, ar_merge_pick pick, void *ctx,
                        zllm_archive **where, int64_t *out)
{
  static const char *src_sql[2] = {
      "SELECT r.name, f.path, 0, f.sha256, f.size FROM files f JOIN repos r ON f.repo = r.id"
      " WHERE f.id = ? AND f.method = '" AR_EXTERN "'",
      "SELECT r.name, f.path, t.idx, t.key, t.len FROM tensors t JOIN files f ON t.file = f.id"
      " JOIN repos r ON f.repo = r.id WHERE t.id = ? AND t.method = '" AR_EXTERN "'"};
  static const char *dst_sql[2] = {
      "SELECT f.id, f.sha256, f.size FROM repos r JOIN files f ON f.repo = r.id"
      " WHERE r.name = ? AND f.path = ? AND f.method != 'skipped' AND ? = 0",
      "SELECT t.id, t.key, t.len FROM repos r JOIN files f ON f.repo = r.id"
      " JOIN tensors t ON t.file = (CASE WHEN f.method = 'dup' THEN f.dup_of ELSE f.id END)"
      " WHERE r.name = ? AND f.path = ? AND t.idx = ?"};
  size_t hlen = tensor ? 16 : 32;
  sqlite3_stmt *s = NULL, *d = NULL;
  zllm_archive *b = NULL;
  const char *repo = NULL, *path = NULL;
  const void *mine = NULL, *theirs = NULL;
  *out = 0;
  int rc = ar_prepare(a, &s, src_sql[tensor]);
  if (rc == 0)
    sqlite3_bind_int64(s, 1, sid);
  if (rc == 0 && sqlite3_step(s) == SQLITE_ROW) {
    rc = ar_col_text(a, s, 0, &repo);
    rc = rc ? rc : ar_col_text(a, s, 1, &path);
    rc = rc ? rc : ar_col_blob(a, s, 3, hlen, &mine);
    rc = rc ? rc : pick(ctx, repo, &b);
    rc = rc ? rc : ar_prepare(b, &d, dst_sql[tensor]);
    if (rc == 0) {
      sqlite3_bind_text(d, 1, repo, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(d, 2, path, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(d, 3, sqlite3_column_int64(s, 2));
      if (sqlite3_step(d) != SQLITE_ROW)
        rc = zllm_error_set(ZLLM_ERROR, "%s/%s: a base another share read is not in the archive", repo, path);
    }
    rc = rc ? rc : ar_col_blob(b, d, 1, hlen, &theirs);
    if (rc == 0 && (memcmp(mine, theirs, hlen) != 0 || sqlite3_column_int64(s, 4) != sqlite3_column_int64(d, 2)))
      rc = zllm_error_set(ZLLM_ECHANGED, "%s/%s: the base bytes one share read differ from the bytes stored"
                                         " (the file changed between the reads)", repo, path);
    if (rc == 0) {
      *out = sqlite3_column_int64(d, 0);
      if (where)
        *where = b;
    }
  }
  ar_finalize(a, s);
  if (b)
    ar_finalize(b, d);
  return rc;
}

/* The serial merge looks every extern base up in the destination. */
static int pick_dst(void *ctx, const char *repo, zllm_archive **out)
{
  (void)repo;
  *out = ((merge_ctx *)ctx)->d;
  return 0;
}

/* The destination's row for what an extern row of the source names, once
 * that repo is merged; 0 when the source row is not extern. */
static int extern_in_dst(merge_ctx *m, source *x, int64_t sid, int tensor, int64_t *out)
{
  return ar_merge_extern_row(x->a, sid, tensor, pick_dst, m, NULL, out);
}

/* A source tensor or file id as a destination id: mapped when merged, else
 * an extern row resolved against the stored repo (then remembered). */
static int in_dst(merge_ctx *m, source *x, int64_t sid, int tensor, int64_t *out)
{
  int64_t *map = tensor ? x->tensor : x->file, n = tensor ? x->ntensor : x->nfile;
  *out = mapped(map, n, sid);
  if (*out || sid <= 0 || sid >= n)
    return 0;
  int rc = extern_in_dst(m, x, sid, tensor, out);
  if (rc == 0)
    map[sid] = *out;
  return rc;
}

/* A stored file's tensors; *dropped gets the stored bytes of those that
 * turn out to be duplicates of earlier repos' tensors. */
static int merge_tensors(merge_ctx *m, source *x, int64_t src_file, int64_t dst_file, int64_t *dropped)
{
  sqlite3_stmt *t = NULL;
  int rc = ar_prepare(x->a, &t, "SELECT " TENSOR_COLS " FROM tensors WHERE file = ? ORDER BY idx");
  *dropped = 0;
  if (rc == 0)
    sqlite3_bind_int64(t, 1, src_file);
  while (rc == 0 && sqlite3_step(t) == SQLITE_ROW) {
    int64_t sid = sqlite3_column_int64(t, 0), id = 0, dup = 0;
    const char *method = NULL;
    if ((rc = ar_col_text(x->a, t, 8, &method)) < 0)
      break;
    if (strcmp(method, "dup") == 0) {
      rc = in_dst(m, x, sqlite3_column_int64(t, 10), 1, &dup);
      dup = rc ? 0 : root_of(m->d, "tensors", dup);
      rc = rc ? rc : dup ? insert_tensor_row(m, x, dst_file, t, "dup", dup, 0, depth_of(m->d, dup), 0, 0, &id)
               : zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld: its dup is not merged", x->a->dir, (long long)sid);
    } else if ((rc = find_dup(m, x, t, &dup)) == 0 && dup) {
      *dropped += sqlite3_column_int64(t, 13);
      rc = insert_tensor_row(m, x, dst_file, t, "dup", dup, 0, depth_of(m->d, dup), 0, 0, &id);
    } else if (rc == 0) {
      int64_t base = 0;
      if (sqlite3_column_type(t, 11) != SQLITE_NULL)
        rc = in_dst(m, x, sqlite3_column_int64(t, 11), 1, &base);
      int64_t depth = base ? depth_of(m->d, base) + 1 : sqlite3_column_int64(t, 12);
      rc = rc ? rc : insert_tensor_row(m, x, dst_file, t, method, 0, base, depth, sqlite3_column_int64(t, 13), 1, &id);
      rc = rc ? rc : copy_parts(m, x, sid, id);
    }
    if (rc == 0 && sid > 0 && sid < x->ntensor)
      x->tensor[sid] = id;
  }
  ar_finalize(x->a, t);
  return rc;
}

/* A file another repo already stored: its tensors are the stored file's. */
static int alias_tensors(merge_ctx *m, source *x, int64_t src_file, int64_t root)
{
  sqlite3_stmt *t = NULL, *q = NULL;
  int rc = ar_prepare(x->a, &t, "SELECT id, idx FROM tensors WHERE file = ?");
  rc = rc ? rc : ar_prepare(m->d, &q, "SELECT id FROM tensors WHERE file = ? AND idx = ?");
  if (rc == 0)
    sqlite3_bind_int64(t, 1, src_file);
  while (rc == 0 && sqlite3_step(t) == SQLITE_ROW) {
    int64_t sid = sqlite3_column_int64(t, 0);
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, root);
    sqlite3_bind_int64(q, 2, sqlite3_column_int64(t, 1));
    if (sqlite3_step(q) == SQLITE_ROW && sid > 0 && sid < x->ntensor)
      x->tensor[sid] = sqlite3_column_int64(q, 0);
  }
  ar_finalize(x->a, t);
  ar_finalize(m->d, q);
  return rc;
}

/* An earlier destination file with the same bytes (ar_find_file_dup). */
static int find_dup_file(merge_ctx *m, source *x, sqlite3_stmt *f, int64_t *dup)
{
  const void *key = NULL, *sha = NULL;
  int rc = ar_col_blob(x->a, f, 4, 16, &key);
  rc = rc ? rc : ar_col_blob(x->a, f, 3, 32, &sha);
  return rc ? rc : ar_find_file_dup(m->d, key, sha, 0, dup);
}

#define FILE_COLS "id, path, size, sha256, key, method, dup_of, header_blob, stored, note"

static int insert_file_row(merge_ctx *m, source *x, int64_t repo, sqlite3_stmt *f, const char *method, int64_t dup_of,
                           int64_t header, int64_t stored, int keep_note, int64_t *id)
{
  ar_file_row r = {repo, NULL, (uint64_t)sqlite3_column_int64(f, 2), NULL, NULL, method, dup_of, header,
                   (uint64_t)stored, NULL};
  const void *sha = NULL, *key = NULL;
  int rc = ar_col_text(x->a, f, 1, &r.path);
  rc = rc ? rc : ar_col_blob(x->a, f, 3, 32, &sha);
  rc = rc ? rc : ar_col_blob(x->a, f, 4, 16, &key);
  if (rc == 0 && keep_note)
    rc = ar_col_text_or_null(x->a, f, 9, &r.note);
  r.sha256 = sha;
  r.key = key;
  return rc ? rc : ar_insert_file(m->d, &r, id);
}

static int copy_pieces(merge_ctx *m, source *x, int64_t src, int64_t dst)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(x->a, &st, "SELECT seq, len, blob FROM pieces WHERE file = ? ORDER BY seq");
  if (rc == 0)
    sqlite3_bind_int64(st, 1, src);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    int64_t blob = 0;
    rc = map_blob(m, x, sqlite3_column_int64(st, 2), &blob);
    rc = rc ? rc : ar_insert_piece(m->d, dst, (uint64_t)sqlite3_column_int64(st, 0),
                                   (uint64_t)sqlite3_column_int64(st, 1), blob);
  }
  ar_finalize(x->a, st);
  return rc;
}

static int merge_file(merge_ctx *m, source *x, int64_t repo, sqlite3_stmt *f)
{
  int64_t sid = sqlite3_column_int64(f, 0), id = 0, dup = 0, header = 0, dropped = 0;
  const char *method = NULL;
  int rc = ar_col_text(x->a, f, 5, &method);
  if (rc < 0)
    return rc;
  if (strcmp(method, "skipped") == 0)
    rc = insert_file_row(m, x, repo, f, method, 0, 0, 0, 1, &id);
  else if (strcmp(method, "dup") == 0) {
    rc = in_dst(m, x, sqlite3_column_int64(f, 6), 0, &dup);
    dup = rc ? 0 : root_of(m->d, "files", dup);
    rc = rc ? rc : dup ? insert_file_row(m, x, repo, f, "dup", dup, 0, 0, 0, &id)
             : zllm_error_set(ZLLM_EFORMAT, "%s: file %lld: its dup is not merged", x->a->dir, (long long)sid);
  } else if ((rc = find_dup_file(m, x, f, &dup)) < 0) {
    return rc;
  } else if (dup) {
    rc = insert_file_row(m, x, repo, f, "dup", dup, 0, 0, 0, &id);
    rc = rc ? rc : alias_tensors(m, x, sid, dup);
  } else {
    if (sqlite3_column_type(f, 7) != SQLITE_NULL)
      rc = map_blob(m, x, sqlite3_column_int64(f, 7), &header);
    rc = rc ? rc : insert_file_row(m, x, repo, f, method, 0, header, sqlite3_column_int64(f, 8), 1, &id);
    rc = rc ? rc : copy_pieces(m, x, sid, id);
    rc = rc ? rc : merge_tensors(m, x, sid, id, &dropped);
    if (rc == 0 && dropped) {
      sqlite3_stmt *up = NULL;
      rc = ar_prepare(m->d, &up, "UPDATE files SET stored = stored - ? WHERE id = ?");
      if (rc == 0) {
        sqlite3_bind_int64(up, 1, dropped);
        sqlite3_bind_int64(up, 2, id);
        rc = sqlite3_step(up) == SQLITE_DONE ? 0 : ar_sql_error(m->d, "updating stored bytes");
      }
      ar_finalize(m->d, up);
    }
  }
  if (rc == 0 && sid > 0 && sid < x->nfile)
    x->file[sid] = id;
  return rc;
}

static int merge_repo(merge_ctx *m, source *x, int64_t src_repo)
{
  sqlite3_stmt *r = NULL, *in = NULL, *f = NULL;
  int rc = ar_prepare(x->a, &r, "SELECT name, revision, base, base_reason FROM repos WHERE id = ?");
  rc = rc ? rc : ar_prepare(m->d, &in, "INSERT INTO repos(name, revision, base, base_reason) VALUES(?, ?, ?, ?)");
  if (rc == 0) {
    sqlite3_bind_int64(r, 1, src_repo);
    rc = sqlite3_step(r) == SQLITE_ROW ? 0 : zllm_error_set(ZLLM_EFORMAT, "%s: repo %lld vanished", x->a->dir, (long long)src_repo);
  }
  if (rc == 0) {
    for (int k = 0; k < 4; k++)
      sqlite3_bind_value(in, k + 1, sqlite3_column_value(r, k));
    rc = sqlite3_step(in) == SQLITE_DONE ? 0 : ar_sql_error(m->d, "copying a repo");
  }
  int64_t repo = sqlite3_last_insert_rowid(m->d->db);
  rc = rc ? rc : ar_prepare(x->a, &f, "SELECT " FILE_COLS " FROM files WHERE repo = ? ORDER BY id");
  if (rc == 0)
    sqlite3_bind_int64(f, 1, src_repo);
  while (rc == 0 && sqlite3_step(f) == SQLITE_ROW)
    rc = merge_file(m, x, repo, f);
  ar_finalize(x->a, r);
  ar_finalize(m->d, in);
  ar_finalize(x->a, f);
  return rc;
}

int64_t ar_merge_repo_row(zllm_archive *a, const char *name)
{
  sqlite3_stmt *st = NULL;
  int64_t id = 0;
  if (ar_prepare(a, &st, "SELECT id FROM repos WHERE name = ? AND NOT EXISTS"
                         " (SELECT 1 FROM files WHERE files.repo = repos.id AND files.method = '" AR_EXTERN "')") == 0) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW)
      id = sqlite3_column_int64(st, 0);
  }
  ar_finalize(a, st);
  return id;
}

/* One repo, one transaction.  A repo that cannot be merged (a base whose
 * bytes changed between two shares' reads, a dup of a repo that failed) is
 * left out with an error, as pack leaves out a repo it cannot read; only a
 * failure of the destination stops the merge. */
static int merge_repo_tx(merge_ctx *m, source *x, int64_t r)
{
  int rc = ar_begin(m->d);
  rc = rc ? rc : merge_repo(m, x, r);
  rc = rc ? rc : ar_commit(m->d);
  if (rc == 0)
    return 0;
  ar_rollback(m->d);
  if (m->d->broken || zllm_error_last_code() == ZLLM_ENOMEM)
    return rc;
  ZLLM_ERR("merge: %s: repo %lld left out: %s", x->a->dir, (long long)r, zllm_error_last());
  return 0;
}

typedef struct {
  merge_ctx *m;
  source *x;
} extern_ctx;

/* A source's extern tensor, decoded where it is stored: the destination
 * (its repo is merged before any repo that uses it). */
static int extern_part(void *ctx, int64_t id, uint64_t part, uint8_t *dst, int depth)
{
  extern_ctx *e = ctx;
  int64_t did = 0;
  int rc = in_dst(e->m, e->x, id, 1, &did);
  if (rc == 0 && !did)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld is not an extern tensor", e->x->a->dir, (long long)id);
  return rc ? rc : ar_tensor_decode_part(e->m->d, did, part, dst, depth);
}

int zllm_archive_merge(zllm_archive *dst, zllm_archive *const *src, size_t nsrc, char *const *order, size_t norder)
{
  merge_ctx m = {dst, calloc(nsrc + 1, sizeof *m.s), nsrc};
  int rc = m.s ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  /* blobs move as they are: a newer format's codecs would break an older archive's readers */
  for (size_t k = 0; rc == 0 && k < nsrc; k++)
    if (src[k]->format > dst->format)
      rc = zllm_error_set(ZLLM_EINVAL, "%s: archive format %d cannot merge into %s (format %d)", src[k]->dir,
                          src[k]->format, dst->dir, dst->format);
  extern_ctx *ec = m.s ? calloc(nsrc + 1, sizeof *ec) : NULL;
  if (rc == 0 && !ec)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < nsrc; k++) {
    rc = open_source(&m.s[k], src[k]);
    ec[k] = (extern_ctx){&m, &m.s[k]};
    src[k]->extern_part = extern_part;
    src[k]->extern_ctx = &ec[k];
  }
  for (size_t i = 0; rc == 0 && i < norder; i++) {
    if (ar_merge_repo_row(dst, order[i]))
      continue; /* already merged (a rerun after an interruption) */
    for (size_t k = 0; rc == 0 && k < nsrc; k++) {
      int64_t r = ar_merge_repo_row(src[k], order[i]);
      if (!r)
        continue;
      rc = m.s[k].pack ? 0 : move_pack(&m, &m.s[k]);
      rc = rc ? rc : merge_repo_tx(&m, &m.s[k], r);
      break;
    }
  }
  for (size_t k = 0; m.s && k < nsrc; k++) {
    close_source(&m.s[k]);
    src[k]->extern_part = NULL;
    src[k]->extern_ctx = NULL;
  }
  free(ec);
  free(m.s);
  return rc;
}
