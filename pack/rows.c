/* Catalog rows, one home for writing them: ingest (a hub's files) and merge
 * (rows copied from staging archives) insert files, tensors, parts and
 * pieces through these, so a row means the same whoever wrote it. */
#include "pack/archive_internal.h"

static void bind_id_or_null(sqlite3_stmt *st, int col, int64_t id)
{
  id ? sqlite3_bind_int64(st, col, id) : sqlite3_bind_null(st, col);
}

static void bind_text_or_null(sqlite3_stmt *st, int col, const char *text)
{
  text ? sqlite3_bind_text(st, col, text, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, col);
}

int ar_insert_repo(zllm_archive *a, const char *name, const char *revision, const char *base, const char *why,
                   int64_t *id)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "INSERT INTO repos(name, revision, base, base_reason) VALUES(?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
  bind_text_or_null(st, 2, revision);
  bind_text_or_null(st, 3, base);
  bind_text_or_null(st, 4, why);
  rc = ar_step_done(a, st, "recording a repo");
  *id = sqlite3_last_insert_rowid(a->db);
  return rc;
}

int zllm_archive_set_base_reasons(zllm_archive *a, char *const *repos, char *const *why, size_t n)
{
  int rc = ar_begin(a);
  for (size_t k = 0; rc == 0 && k < n; k++) {
    sqlite3_stmt *st = NULL;
    rc = ar_prepare(a, &st, "UPDATE repos SET base_reason = ? WHERE name = ? AND base_reason IS NULL");
    if (rc == 0) {
      bind_text_or_null(st, 1, why[k]);
      sqlite3_bind_text(st, 2, repos[k], -1, SQLITE_TRANSIENT);
      rc = ar_step_done(a, st, "recording why a repo got its base");
    }
  }
  if (rc < 0) {
    ar_rollback(a);
    return rc;
  }
  return ar_commit(a);
}

int ar_insert_file(zllm_archive *a, const ar_file_row *r, int64_t *id)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "INSERT INTO files(repo, path, size, sha256, key, method, dup_of, header_blob, stored, note)"
                      " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, r->repo);
  sqlite3_bind_text(st, 2, r->path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)r->size);
  sqlite3_bind_blob(st, 4, r->sha256, 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 5, r->key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 6, r->method, -1, SQLITE_TRANSIENT);
  bind_id_or_null(st, 7, r->dup_of);
  bind_id_or_null(st, 8, r->header_blob);
  sqlite3_bind_int64(st, 9, (sqlite3_int64)r->stored);
  bind_text_or_null(st, 10, r->note);
  rc = ar_step_done(a, st, "recording a file");
  *id = sqlite3_last_insert_rowid(a->db);
  return rc;
}

int ar_insert_tensor(zllm_archive *a, const ar_tensor_row *r, int64_t *id)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "INSERT INTO tensors(file, idx, name, dtype, shape, nelem, len, key, method, layout, dup_of, base,"
                      " depth, stored, note) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, r->file);
  sqlite3_bind_int64(st, 2, r->idx);
  sqlite3_bind_text(st, 3, r->name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, r->dtype, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, r->shape, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)r->nelem);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)r->len);
  sqlite3_bind_blob(st, 8, r->key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 9, r->method, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 10, r->layout, -1, SQLITE_TRANSIENT);
  bind_id_or_null(st, 11, r->dup_of);
  bind_id_or_null(st, 12, r->base);
  sqlite3_bind_int64(st, 13, r->depth);
  sqlite3_bind_int64(st, 14, (sqlite3_int64)r->stored);
  bind_text_or_null(st, 15, r->note);
  rc = ar_step_done(a, st, "recording a tensor");
  *id = sqlite3_last_insert_rowid(a->db);
  return rc;
}

int ar_insert_part(zllm_archive *a, int64_t tensor, uint64_t part, int64_t blob)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "INSERT INTO parts(tensor, part, blob) VALUES(?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, tensor);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)part);
  sqlite3_bind_int64(st, 3, blob);
  return ar_step_done(a, st, "recording a tensor part");
}

int ar_insert_piece(zllm_archive *a, int64_t file, uint64_t seq, uint64_t len, int64_t blob)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "INSERT INTO pieces(file, seq, len, blob) VALUES(?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, file);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
  sqlite3_bind_int64(st, 4, blob);
  return ar_step_done(a, st, "recording a piece");
}

/* ---- duplicate lookups: one rule for ingest and merge ------------------------ */

int ar_find_file_dup(zllm_archive *a, const uint8_t key[16], const uint8_t sha[32], int64_t self, int64_t *dup)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, sha256, method, dup_of FROM files"
                              " WHERE key = ? AND method != 'skipped' AND id != ? ORDER BY id");
  int step = SQLITE_DONE;
  *dup = 0;
  if (rc < 0)
    return rc;
  sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, self);
  while (rc == 0 && !*dup && (step = sqlite3_step(st)) == SQLITE_ROW) {
    const void *h = NULL;
    const char *method = NULL;
    rc = ar_col_blob(a, st, 1, 32, &h);
    rc = rc ? rc : ar_col_text(a, st, 2, &method);
    if (rc < 0 || memcmp(h, sha, 32) != 0)
      continue; /* a key collision: different bytes, never merged */
    /* a dup row names the row that holds the bytes */
    rc = strcmp(method, "dup") == 0 ? ar_col_int(a, st, 3, dup) : ar_col_int(a, st, 0, dup);
  }
  if (rc == 0 && !*dup && step != SQLITE_DONE)
    rc = ar_sql_error(a, "looking up a duplicate file");
  ar_finalize(a, st);
  return rc;
}

int ar_find_tensor_dup(zllm_archive *a, const uint8_t key[16], uint64_t len, const char *dtype, ar_same_fn same,
                       void *ctx, int64_t *dup, int64_t *depth)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, depth FROM tensors WHERE key = ? AND len = ? AND dtype = ? AND method != 'dup'");
  int step = SQLITE_DONE;
  *dup = 0;
  *depth = 0;
  if (rc < 0)
    return rc;
  sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
  sqlite3_bind_text(st, 3, dtype, -1, SQLITE_TRANSIENT);
  while (rc == 0 && !*dup && (step = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t cand = 0, d = 0;
    int yes = 0;
    rc = ar_col_int(a, st, 0, &cand);
    rc = rc ? rc : ar_col_int(a, st, 1, &d);
    rc = rc ? rc : same(ctx, cand, &yes); /* a hash hit is confirmed by the bytes */
    if (rc == 0 && yes) {
      *dup = cand;
      *depth = d;
    }
  }
  /* a failed lookup is an error, never "no duplicate": that would store the bytes twice */
  if (rc == 0 && !*dup && step != SQLITE_DONE)
    rc = ar_sql_error(a, "looking up a duplicate tensor");
  ar_finalize(a, st);
  return rc;
}
