/* The archive's catalog (SQLite) and pack files (append-only blob records). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "pack/archive_internal.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/le.h"
#include "zllm/io.h"
#include "zllm/parallel.h"
#include "zllm/path.h"

#define ZLLM_PACK_NAME "pack-0000.zpk"

/* The secondary indexes: the dup lookups and a file's tensors. */
#define INDEX_FILES_KEY "CREATE INDEX IF NOT EXISTS files_key ON files(key);"
#define INDEX_TENSORS_KEY "CREATE INDEX IF NOT EXISTS tensors_key ON tensors(key);"
#define INDEX_TENSORS_FILE "CREATE INDEX IF NOT EXISTS tensors_file ON tensors(file);"

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS packs(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
    "  committed_len INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS blobs(id INTEGER PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,"
    "  len INTEGER NOT NULL, checksum INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS repos(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, revision TEXT,"
    "  base TEXT, base_reason TEXT);"
    "CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, repo INTEGER NOT NULL, path TEXT NOT NULL,"
    "  size INTEGER NOT NULL, sha256 BLOB NOT NULL, key BLOB NOT NULL, method TEXT NOT NULL,"
    "  dup_of INTEGER, header_blob INTEGER, stored INTEGER NOT NULL DEFAULT 0, note TEXT,"
    "  UNIQUE(repo, path));"
    INDEX_FILES_KEY
    "CREATE TABLE IF NOT EXISTS pieces(file INTEGER NOT NULL, seq INTEGER NOT NULL, len INTEGER NOT NULL,"
    "  blob INTEGER NOT NULL, PRIMARY KEY(file, seq));"
    "CREATE TABLE IF NOT EXISTS tensors(id INTEGER PRIMARY KEY, file INTEGER NOT NULL, idx INTEGER NOT NULL,"
    "  name TEXT NOT NULL, dtype TEXT NOT NULL, shape TEXT NOT NULL, nelem INTEGER NOT NULL,"
    "  len INTEGER NOT NULL, key BLOB NOT NULL, method TEXT NOT NULL, layout TEXT NOT NULL, dup_of INTEGER,"
    "  base INTEGER,"
    "  depth INTEGER NOT NULL, stored INTEGER NOT NULL DEFAULT 0, note TEXT);"
    INDEX_TENSORS_KEY
    INDEX_TENSORS_FILE
    "CREATE TABLE IF NOT EXISTS parts(tensor INTEGER NOT NULL, part INTEGER NOT NULL, blob INTEGER NOT NULL,"
    "  PRIMARY KEY(tensor, part));";

int ar_sql_error(zllm_archive *a, const char *what)
{
  a->broken = 1;
  return zllm_error_set(ZLLM_ERROR, "%s/catalog.sqlite: %s: %s", a->dir, what, sqlite3_errmsg(a->db));
}

int ar_exec(zllm_archive *a, const char *sql)
{
  return sqlite3_exec(a->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ar_sql_error(a, sql);
}

int ar_secondary_indexes(zllm_archive *a, int on)
{
  return ar_exec(a, on ? INDEX_FILES_KEY INDEX_TENSORS_KEY INDEX_TENSORS_FILE
                       : "DROP INDEX IF EXISTS files_key; DROP INDEX IF EXISTS tensors_key;"
                         " DROP INDEX IF EXISTS tensors_file;");
}

int ar_step_done(zllm_archive *a, sqlite3_stmt *st, const char *what)
{
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ar_sql_error(a, what);
  ar_finalize(a, st);
  return rc;
}

int ar_prepare(zllm_archive *a, sqlite3_stmt **st, const char *sql)
{
  for (int i = 0; i < a->nstmts; i++)
    if (!a->stmts[i].busy && strcmp(sqlite3_sql(a->stmts[i].st), sql) == 0) {
      a->stmts[i].busy = 1;
      *st = a->stmts[i].st;
      return 0;
    }
  if (sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK)
    return ar_sql_error(a, sql);
  if (a->nstmts < AR_STMT_CACHE) { /* kept; past the cache's size a statement lives for one use */
    a->stmts[a->nstmts].st = *st;
    a->stmts[a->nstmts++].busy = 1;
  }
  return 0;
}

void ar_finalize(zllm_archive *a, sqlite3_stmt *st)
{
  for (int i = 0; st && i < a->nstmts; i++)
    if (a->stmts[i].st == st) {
      sqlite3_reset(st); /* releases its read lock; the next use binds afresh */
      sqlite3_clear_bindings(st);
      a->stmts[i].busy = 0;
      return;
    }
  sqlite3_finalize(st);
}

static const char *type_name(int t)
{
  switch (t) {
  case SQLITE_INTEGER: return "an integer";
  case SQLITE_FLOAT: return "a real";
  case SQLITE_TEXT: return "text";
  case SQLITE_BLOB: return "a blob";
  default: return "NULL";
  }
}

static int col_check(zllm_archive *a, sqlite3_stmt *st, int col, int want, int null_ok, const char *what)
{
  int t = sqlite3_column_type(st, col);
  if (t == want || (null_ok && t == SQLITE_NULL))
    return 0;
  const char *name = sqlite3_column_name(st, col);
  return zllm_error_set(ZLLM_EFORMAT, "%s/catalog.sqlite: column '%s' holds %s where %s is required", a->dir,
                        name ? name : "?", type_name(t), what);
}

int ar_col_int(zllm_archive *a, sqlite3_stmt *st, int col, int64_t *v)
{
  int rc = col_check(a, st, col, SQLITE_INTEGER, 0, "an integer");
  *v = rc ? 0 : sqlite3_column_int64(st, col);
  return rc;
}

int ar_col_int_or_null(zllm_archive *a, sqlite3_stmt *st, int col, int64_t *v)
{
  int rc = col_check(a, st, col, SQLITE_INTEGER, 1, "an integer or NULL");
  *v = rc ? 0 : sqlite3_column_int64(st, col);
  return rc;
}

int ar_col_text(zllm_archive *a, sqlite3_stmt *st, int col, const char **v)
{
  int rc = col_check(a, st, col, SQLITE_TEXT, 0, "text");
  *v = rc ? NULL : (const char *)sqlite3_column_text(st, col);
  return rc == 0 && !*v ? zllm_error_set(ZLLM_ENOMEM, "out of memory") : rc;
}

int ar_col_text_or_null(zllm_archive *a, sqlite3_stmt *st, int col, const char **v)
{
  int rc = col_check(a, st, col, SQLITE_TEXT, 1, "text or NULL");
  *v = rc ? NULL : (const char *)sqlite3_column_text(st, col);
  return rc;
}

int ar_col_blob(zllm_archive *a, sqlite3_stmt *st, int col, size_t len, const void **v)
{
  int rc = col_check(a, st, col, SQLITE_BLOB, 0, "a blob");
  *v = NULL;
  if (rc == 0 && len && (size_t)sqlite3_column_bytes(st, col) != len) {
    const char *name = sqlite3_column_name(st, col);
    rc = zllm_error_set(ZLLM_EFORMAT, "%s/catalog.sqlite: column '%s' holds %d bytes where %zu are required", a->dir,
                        name ? name : "?", sqlite3_column_bytes(st, col), len);
  }
  if (rc == 0)
    *v = sqlite3_column_blob(st, col);
  return rc;
}

/* ---- the schema check ------------------------------------------------------- */

/* "name TYPE NOT NULL DEFAULT x PRIMARY KEY n" of column `i` of `table`, or
 * "" past the last column. */
static void column_desc(sqlite3 *db, const char *table, int i, char *out, size_t cap)
{
  sqlite3_stmt *st = NULL;
  out[0] = '\0';
  if (sqlite3_prepare_v2(db, "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1) WHERE cid = ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, i);
  if (sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0), *type = (const char *)sqlite3_column_text(st, 1);
    const char *dflt = (const char *)sqlite3_column_text(st, 3);
    int pk = sqlite3_column_int(st, 4);
    snprintf(out, cap, "%s %s%s%s%s%s", name ? name : "?", type ? type : "", sqlite3_column_int(st, 2) ? " NOT NULL" : "",
             dflt ? " DEFAULT " : "", dflt ? dflt : "", pk ? " PRIMARY KEY" : "");
  }
  sqlite3_finalize(st);
}

static int has_table(sqlite3 *db, const char *table)
{
  sqlite3_stmt *st = NULL;
  int yes = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", -1, &st, NULL) ==
                SQLITE_OK &&
            (sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC), sqlite3_step(st) == SQLITE_ROW);
  sqlite3_finalize(st);
  return yes;
}

static int has_name(sqlite3 *db, const char *name)
{
  sqlite3_stmt *st = NULL;
  int yes = name && sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = ?1", -1, &st, NULL) == SQLITE_OK &&
            (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC), sqlite3_step(st) == SQLITE_ROW);
  sqlite3_finalize(st);
  return yes;
}

static int same_columns(zllm_archive *a, sqlite3 *ref, const char *table)
{
  char want[512], got[512];
  for (int i = 0;; i++) {
    column_desc(ref, table, i, want, sizeof want);
    column_desc(a->db, table, i, got, sizeof got);
    if (strcmp(want, got) != 0)
      return zllm_error_set(ZLLM_EFORMAT,
                            "%s/catalog.sqlite: schema differs: table '%s' column %d is '%s' where '%s' is expected",
                            a->dir, table, i, got[0] ? got : "(none)", want[0] ? want : "(none)");
    if (!want[0])
      return 0;
  }
}

/* Whether `db` holds an object of that type, name, table and SQL text. */
static int has_object(sqlite3 *db, const char *type, const char *name, const char *table, const char *sql)
{
  sqlite3_stmt *st = NULL;
  int yes = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2 AND tbl_name = ?3"
                                   " AND sql IS ?4", -1, &st, NULL) == SQLITE_OK;
  if (yes) {
    sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, table, -1, SQLITE_STATIC);
    sql ? sqlite3_bind_text(st, 4, sql, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 4);
    yes = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return yes;
}

/* Every object of the catalog (table, index, trigger, view, SQLite's own
 * statistics tables) is one the format creates, with the format's SQL text
 * to the byte, and the format's are all there: a trigger would run the
 * attacker's SQL inside zllm's own writes, a view or an expression index
 * runs SQL on reads, a COLLATE clause changes what UNIQUE and lookups
 * compare, and none of these changes a column's pragma_table_info. */
static int same_objects(zllm_archive *a, sqlite3 *ref)
{
  static const char *list = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid";
  sqlite3_stmt *st = NULL;
  int rc = 0;
  for (int pass = 0; rc == 0 && pass < 2; pass++) {
    sqlite3 *from = pass ? ref : a->db, *other = pass ? a->db : ref;
    if (sqlite3_prepare_v2(from, list, -1, &st, NULL) != SQLITE_OK)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s/catalog.sqlite: cannot list its objects: %s", a->dir,
                          sqlite3_errmsg(from));
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
      const char *v[4];
      for (int k = 0; k < 4; k++)
        v[k] = (const char *)sqlite3_column_text(st, k);
      if (v[0] && v[1] && v[2] && has_object(other, v[0], v[1], v[2], v[3]))
        continue;
      rc = zllm_error_set(ZLLM_EFORMAT, "%s/catalog.sqlite: schema differs: %s '%s' %s; refused", a->dir,
                          v[0] ? v[0] : "object", v[1] ? v[1] : "?",
                          pass ? "is missing"
                          : has_name(other, v[1]) ? "is not declared as the format declares it"
                                                  : "is not part of the format");
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  return rc;
}

/* Every table the schema declares, with the same columns (name, type, NOT
 * NULL, default, key), and no other table: a catalog rebuilt without the
 * constraints could hold NULLs the readers are promised never to see.  Then
 * every other object, to the byte of its SQL (same_objects). */
static int check_schema(zllm_archive *a)
{
  static const char *list =
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name";
  sqlite3 *ref = NULL;
  sqlite3_stmt *st = NULL;
  int rc = 0;
  if (sqlite3_open_v2(":memory:", &ref, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
      sqlite3_exec(ref, schema, NULL, NULL, NULL) != SQLITE_OK)
    rc = zllm_error_set(ZLLM_ERROR, "the reference schema: %s", ref ? sqlite3_errmsg(ref) : "?");
  /* pass 0: the archive's tables, each known and alike; pass 1: none missing */
  for (int pass = 0; rc == 0 && pass < 2; pass++) {
    sqlite3 *from = pass ? ref : a->db, *other = pass ? a->db : ref;
    if (sqlite3_prepare_v2(from, list, -1, &st, NULL) != SQLITE_OK)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s/catalog.sqlite: cannot list tables: %s", a->dir, sqlite3_errmsg(from));
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
      const char *table = (const char *)sqlite3_column_text(st, 0);
      if (!table || !has_table(other, table))
        rc = zllm_error_set(ZLLM_EFORMAT, "%s/catalog.sqlite: schema differs: table '%s' is %s", a->dir,
                            table ? table : "?", pass ? "missing" : "not part of the format");
      else if (pass == 0)
        rc = same_columns(a, ref, table);
    }
    sqlite3_finalize(st);
    st = NULL;
  }
  rc = rc ? rc : same_objects(a, ref);
  sqlite3_close(ref);
  return rc;
}

void ar_hash_key(const zllm_archive *a, const uint8_t *hash, uint8_t key[16])
{
  memcpy(key, hash, 16);
  if (a->hash_bits > 0 && a->hash_bits < 128) {
    /* keep only the first hash_bits bits: different contents then share keys */
    for (int i = 0; i < 16; i++) {
      int keep = a->hash_bits - 8 * i;
      key[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
  }
}

/* A pack file by name, opened without following a symlink anywhere under
 * the archive directory: a pack file (or packs/) that is a link is refused
 * by name, and a missing one is an error, never recreated as zeros. */
static int open_pack_file(zllm_archive *a, const char *name, int writable, int *fd_out)
{
  char shown[PATH_MAX];
  int packs = -1, rc = zllm_open_dir_beneath(a->dir, "packs", 0, 0, &packs);
  snprintf(shown, sizeof shown, "%s/packs/%s", a->dir, name);
  rc = rc ? rc : zllm_open_regular(packs, name, (writable ? O_RDWR : O_RDONLY) | O_NOFOLLOW, shown, fd_out);
  if (rc == ZLLM_EUNSAFE)
    rc = zllm_error_set(rc, "%s: is a symlink; a pack file must be a regular file", shown);
  else if (rc == ZLLM_ENOTFOUND)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: the pack file the catalog names is missing", shown);
  if (packs >= 0)
    close(packs);
  return rc;
}

/* The pack this process appends to; bytes past its committed end are the
 * remains of an interrupted ingest and are cut off. */
static int open_pack(zllm_archive *a, int writable)
{
  sqlite3_stmt *st = NULL;
  char name[64] = ZLLM_PACK_NAME;
  int rc = open_pack_file(a, name, writable, &a->pack_fd);
  /* one writer at a time, locked before the committed length is read: a
   * second writer would append over the first's blobs, or cut them off */
  if (rc == 0 && writable && flock(a->pack_fd, LOCK_EX | LOCK_NB) < 0)
    rc = zllm_error_set(ZLLM_EINVAL, "%s: another zllm pack is writing this archive", a->dir);
  rc = rc ? rc : ar_prepare(a, &st, "SELECT id, committed_len FROM packs WHERE name = ?");
  if (rc == 0) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW)
      rc = ar_sql_error(a, "reading the pack table");
    else {
      int64_t len = 0;
      rc = ar_col_int(a, st, 0, &a->pack_id);
      rc = rc ? rc : ar_col_int(a, st, 1, &len);
      a->committed_len = a->pack_len = (uint64_t)len;
      a->dropped_to = a->pack_len & ~(uint64_t)4095; /* what earlier runs wrote is theirs */
    }
  }
  /* a reader only trusts the committed bytes; a writer also cuts off the rest */
  struct stat pst;
  /* a writer would extend a cut pack with zeros; readers report its blobs */
  if (rc == 0 && writable && fstat(a->pack_fd, &pst) == 0 && (uint64_t)pst.st_size < a->committed_len)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s/packs/%s: %llu bytes, shorter than the %llu the catalog committed", a->dir,
                        name, (unsigned long long)pst.st_size, (unsigned long long)a->committed_len);
  if (rc == 0 && writable && ftruncate(a->pack_fd, (off_t)a->committed_len) < 0)
    rc = zllm_error_set_errno("%s/packs/%s: cannot cut back to %llu bytes", a->dir, name,
                              (unsigned long long)a->committed_len);
  ar_finalize(a, st);
  return rc;
}

static int check_format(zllm_archive *a)
{
  sqlite3_stmt *st = NULL;
  const char *v = NULL;
  int rc = ar_prepare(a, &st, "SELECT value FROM meta WHERE key = 'format'");
  if (rc == 0 && sqlite3_step(st) != SQLITE_ROW)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: the catalog names no archive format", a->dir);
  rc = rc ? rc : ar_col_text(a, st, 0, &v);
  a->format = 0;
  for (int f = ZLLM_ARCHIVE_FORMAT_OLDEST; rc == 0 && f <= ZLLM_ARCHIVE_FORMAT_NEWEST; f++) {
    char name[8];
    snprintf(name, sizeof name, "%d", f);
    if (strcmp(v, name) == 0)
      a->format = f;
  }
  if (rc == 0 && !a->format)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: archive format %.16s, this zllm reads %d to %d", a->dir, v,
                        ZLLM_ARCHIVE_FORMAT_OLDEST, ZLLM_ARCHIVE_FORMAT_NEWEST);
  ar_finalize(a, st);
  return rc;
}

int zllm_archive_format(const zllm_archive *a) { return a->format; }

/* Fault injection for tests: ZLLM_TEST_KILL_AT=<point> kills the process
 * there, a crash at a chosen instant rather than a racing timer. */
int ar_test_kill_at(const char *point)
{
  const char *at = getenv("ZLLM_TEST_KILL_AT");
  return at && strcmp(at, point) == 0;
}

/* Builds the schema and format of a new catalog in `tmp`, a file nobody else
 * opens, in one transaction. */
static int build_catalog(const char *tmp, int format)
{
  static const char *const leftovers[] = {"", "-journal", "-wal", "-shm"};
  sqlite3 *db = NULL;
  char *sql = NULL, name[PATH_MAX];
  int rc = 0;
  /* the remains of a creation killed before its rename */
  for (size_t i = 0; i < sizeof leftovers / sizeof *leftovers; i++)
    if (snprintf(name, sizeof name, "%s%s", tmp, leftovers[i]) < (int)sizeof name)
      unlink(name);
  sql = sqlite3_mprintf("PRAGMA synchronous=FULL; BEGIN; %s"
                        "INSERT INTO meta(key, value) VALUES('format', '%d');"
                        "INSERT INTO packs(name, committed_len) VALUES('" ZLLM_PACK_NAME "', 0);"
                        "COMMIT; PRAGMA journal_mode=WAL;", schema, format);
  if (!sql)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, NULL) !=
                     SQLITE_OK)
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot create: %s", tmp, db ? sqlite3_errmsg(db) : "?");
  if (rc == 0 && sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot write the schema: %s", tmp, sqlite3_errmsg(db));
  /* closing checkpoints the WAL into the file, so the file alone is whole */
  if (db && sqlite3_close(db) != SQLITE_OK && rc == 0)
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot close", tmp);
  sqlite3_free(sql);
  return rc;
}

/* The pack a new catalog's row names, so a reader of the new archive finds it. */
static int create_empty_pack(const char *dir)
{
  char *packs = zllm_path_join(dir, "packs"), *path = packs ? zllm_path_join(packs, ZLLM_PACK_NAME) : NULL;
  int fd = -1, rc = path ? zllm_mkdir_p(packs, 0755) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && (fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0)
    rc = zllm_error_set_errno("%s: cannot create", path);
  if (fd >= 0)
    close(fd);
  rc = rc ? rc : zllm_sync_path(packs);
  free(packs);
  free(path);
  return rc;
}

/* catalog.sqlite appears by rename(2) with its whole schema, format and
 * (empty) pack, so a pack killed while creating an archive leaves either no
 * catalog or a complete empty archive, never tables without their rows. The
 * directory is locked meanwhile: two packs creating one archive would
 * otherwise build the same temporary file. */
static int create_catalog(const char *dir, const char *path, int format)
{
  char tmp[PATH_MAX];
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
  if (dfd < 0)
    return zllm_error_set_errno("%s: cannot open", dir);
  /* a file system without flock (Lustre mounted without it) still gets an
   * archive; only two packs creating the same new archive at once would race */
  if (flock(dfd, LOCK_EX) < 0 && errno != ENOLCK && errno != ENOSYS && errno != EOPNOTSUPP)
    rc = zllm_error_set_errno("%s: cannot lock", dir);
  if (rc == 0 && snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
    rc = zllm_error_set(ZLLM_EINVAL, "%s: path too long", path);
  if (rc == 0 && access(path, F_OK) == 0)
    goto done; /* another pack created it first */
  rc = rc ? rc : create_empty_pack(dir);
  rc = rc ? rc : build_catalog(tmp, format);
  rc = rc ? rc : zllm_sync_path(tmp);
  if (rc == 0 && ar_test_kill_at("catalog"))
    raise(SIGKILL);
  if (rc == 0 && rename(tmp, path) < 0)
    rc = zllm_error_set_errno("%s: cannot rename to %s", tmp, path);
  rc = rc ? rc : zllm_sync_path(dir);
done:
  close(dfd); /* also drops the lock */
  return rc;
}

static int open_all_packs(zllm_archive *a);

/* The catalog and the files SQLite opens beside it must be regular files:
 * SQLite's own open would block forever on a FIFO put there (and a device
 * or socket is nothing zllm wrote).  Checked before SQLite opens any. */
static int check_catalog_files(const char *dir)
{
  static const char *const names[] = {"catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm",
                                      "catalog.sqlite-journal"};
  char shown[PATH_MAX];
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
  if (dfd < 0)
    return zllm_error_set_errno("%s: cannot open", dir);
  for (size_t i = 0; rc == 0 && i < sizeof names / sizeof *names; i++) {
    snprintf(shown, sizeof shown, "%s/%s", dir, names[i]);
    rc = zllm_check_regular_if_present(dfd, names[i], shown);
  }
  close(dfd);
  return rc;
}

/* Defence in depth behind the schema check: a catalog from elsewhere runs
 * no trigger, view or SQL function of its schema, and cannot be changed
 * through writable_schema or by a corrupt page on purpose. */
static int harden_connection(zllm_archive *a)
{
  int off = 0, on = 1;
  if (sqlite3_db_config(a->db, SQLITE_DBCONFIG_DEFENSIVE, on, NULL) != SQLITE_OK ||
      sqlite3_db_config(a->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, off, NULL) != SQLITE_OK ||
      sqlite3_db_config(a->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, off, NULL) != SQLITE_OK ||
      sqlite3_db_config(a->db, SQLITE_DBCONFIG_ENABLE_VIEW, off, NULL) != SQLITE_OK)
    return zllm_error_set(ZLLM_ERROR, "%s/catalog.sqlite: cannot configure SQLite: %s", a->dir,
                          sqlite3_errmsg(a->db));
  return 0;
}

int zllm_archive_open(zllm_archive **out, const char *dir, int create)
{
  return zllm_archive_open_format(out, dir, create, 0);
}

int zllm_archive_open_format(zllm_archive **out, const char *dir, int create, int format)
{
  zllm_archive *a = calloc(1, sizeof *a);
  char *db = NULL;
  int rc = 0;
  *out = NULL;
  if (!a || !(a->dir = strdup(dir)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  a ? (void)(a->pack_fd = -1, a->writer = create) : (void)0;
  if (rc == 0 && format && (format < ZLLM_ARCHIVE_FORMAT_OLDEST || format > ZLLM_ARCHIVE_FORMAT_NEWEST))
    rc = zllm_error_set(ZLLM_EINVAL, "%s: no archive format %d (this zllm writes %d to %d)", dir, format,
                        ZLLM_ARCHIVE_FORMAT_OLDEST, ZLLM_ARCHIVE_FORMAT_NEWEST);
  if (rc == 0 && !create && access(dir, F_OK) != 0)
    rc = zllm_error_set(ZLLM_ENOTFOUND, "%s: no archive here", dir);
  if (rc == 0 && create)
    rc = zllm_mkdir_p(dir, 0755);
  if (rc == 0 && !(db = zllm_path_join(dir, "catalog.sqlite")))
    rc = ZLLM_ENOMEM;
  if (rc == 0 && !create && access(db, F_OK) != 0)
    rc = zllm_error_set(ZLLM_ENOTFOUND, "%s: no catalog.sqlite: not a zllm archive", dir);
  if (rc == 0 && create && access(db, F_OK) != 0)
    rc = create_catalog(dir, db, format ? format : ZLLM_ARCHIVE_FORMAT_NEWEST);
  /* readers (restore, verify, ls, cat-tensor, threads of restore) open the
   * catalog read-only, so any number of them never contend for its lock */
  int flags = (create ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOFOLLOW; /* no catalog through a link */
  rc = rc ? rc : check_catalog_files(dir);
  if (rc == 0 && sqlite3_open_v2(db, &a->db, flags, NULL) != SQLITE_OK)
    rc = zllm_error_set(ZLLM_EIO, "%s: cannot open: %s", db, a->db ? sqlite3_errmsg(a->db) : "?");
  rc = rc ? rc : harden_connection(a);
  if (rc == 0)
    sqlite3_busy_timeout(a->db, 30000); /* a writer's commit is short: wait for it */
  /* WAL (set at creation, kept in the file) + FULL sync: a commit is durable,
   * and a crash never tears the catalog */
  if (rc == 0 && create)
    rc = ar_exec(a, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;");
  rc = rc ? rc : check_schema(a);
  rc = rc ? rc : check_format(a);
  if (rc == 0 && format && a->format != format)
    rc = zllm_error_set(ZLLM_EINVAL, "%s: archive format %d, asked for %d (an archive keeps its format)", dir,
                        a->format, format);
  rc = rc ? rc : open_pack(a, create);
  rc = rc || !create ? rc : open_all_packs(a);
  rc = rc ? rc : zllm_codec_new(&a->codec);
  const char *bits = getenv("ZLLM_TEST_HASH_BITS");
  if (rc == 0 && bits)
    a->hash_bits = atoi(bits);
  free(db);
  if (rc < 0) {
    zllm_archive_close(a);
    return rc;
  }
  *out = a;
  return 0;
}

uint8_t *ar_buf_get(zllm_archive *a)
{
  if (a->npool > 0)
    return a->pool[--a->npool];
  uint8_t *b = malloc(ZLLM_PART_BYTES);
  if (!b)
    zllm_error_set(ZLLM_ENOMEM, "out of memory for a %llu-byte buffer", (unsigned long long)ZLLM_PART_BYTES);
  return b;
}

void ar_buf_put(zllm_archive *a, uint8_t *b)
{
  int keep = a->pool_max ? a->pool_max : (int)(sizeof a->pool / sizeof *a->pool);
  if (b && a->npool < keep)
    a->pool[a->npool++] = b;
  else
    free(b);
}

void zllm_archive_keep_written(zllm_archive *a, int keep)
{
  a->keep_written = keep;
}

int zllm_archive_defer_sync(zllm_archive *a)
{
  a->defer_sync = 1;
  return ar_exec(a, "PRAGMA synchronous=OFF");
}

int zllm_archive_sync(zllm_archive *a)
{
  if (fsync(a->pack_fd) < 0)
    return zllm_error_set_errno("%s/packs: fsync failed", a->dir);
  int rc = ar_exec(a, "PRAGMA synchronous=FULL");
  /* the WAL's pages into the database file, synced */
  return rc ? rc : ar_exec(a, "PRAGMA wal_checkpoint(TRUNCATE)");
}

int zllm_archive_set_threads(zllm_archive *a, int threads)
{
  a->threads = threads < 1 ? 1 : threads;
  for (int p = 0; a->threads > 1 && p < ZLLM_BITX_MAX_PLANES; p++)
    if (!a->pcodec[p] && zllm_codec_new(&a->pcodec[p]) < 0)
      return ZLLM_ENOMEM;
  return 0;
}

void zllm_archive_close(zllm_archive *a)
{
  if (!a)
    return;
  for (int p = 0; p < ZLLM_BITX_MAX_PLANES; p++) {
    zllm_codec_free(a->pcodec[p]);
    zllm_buf_free(&a->pbuf[p]);
  }
  while (a->npool > 0)
    free(a->pool[--a->npool]);
  zllm_buf_free(&a->enc);
  zllm_buf_free(&a->blob);
  zllm_buf_free(&a->cast);
  if (a->pack_fd >= 0)
    close(a->pack_fd);
  for (int i = 0; i < a->nother; i++)
    close(a->other[i].fd);
  for (int i = 0; i < a->nstmts; i++)
    sqlite3_finalize(a->stmts[i].st);
  sqlite3_close(a->db);
  zllm_codec_free(a->codec);
  if (!a->cache_borrowed)
    ar_cache_free(a->cache);
  free(a->dir);
  free(a);
}

int ar_begin(zllm_archive *a) { return ar_exec(a, "BEGIN IMMEDIATE"); }

int ar_commit(zllm_archive *a)
{
  sqlite3_stmt *st = NULL;
  int rc = 0;
  /* a file rolled back inside the repo (skipped, or found to be a copy)
   * may have left blobs past the end that counts */
  if (ftruncate(a->pack_fd, (off_t)a->pack_len) < 0)
    return zllm_error_set_errno("%s/packs: cannot cut the pack to its length", a->dir);
  if (!a->defer_sync && fsync(a->pack_fd) < 0)
    return zllm_error_set_errno("%s/packs: fsync failed", a->dir);
  /* on disk now: out of the page cache (zllm_archive_keep_written), whole
   * pages only — the last, partial one takes the next commit's bytes */
  uint64_t whole = a->pack_len & ~(uint64_t)4095;
  if (!a->keep_written && whole > a->dropped_to) {
    (void)posix_fadvise(a->pack_fd, (off_t)a->dropped_to, (off_t)(whole - a->dropped_to), POSIX_FADV_DONTNEED);
    a->dropped_to = whole;
  }
  rc = ar_prepare(a, &st, "UPDATE packs SET committed_len = ? WHERE id = ?");
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a->pack_len);
    sqlite3_bind_int64(st, 2, a->pack_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ar_sql_error(a, "updating the pack length");
  }
  ar_finalize(a, st);
  rc = rc ? rc : ar_exec(a, "COMMIT");
  if (rc == 0)
    a->committed_len = a->pack_len;
  return rc;
}

void ar_rollback(zllm_archive *a)
{
  sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
  a->pack_len = a->committed_len;
  if (ftruncate(a->pack_fd, (off_t)a->committed_len) < 0)
    zllm_error_set_errno("%s/packs: cannot cut back after a failed ingest", a->dir);
}

static void st64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t ld64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* Record: u32 magic, u32 0, u64 length | payload | u64 XXH3-64 of the payload. */
int ar_blob_write(zllm_archive *a, const void *data, size_t len, int64_t *id)
{
  uint8_t head[16], tail[8];
  if ((uint64_t)len > ZLLM_BLOB_MAX) /* what no reader would accept is never written */
    return zllm_error_set(ZLLM_ELIMIT, "%s: a blob of %zu bytes, more than the %llu one may hold", a->dir, len,
                          (unsigned long long)ZLLM_BLOB_MAX);
  uint64_t sum = XXH3_64bits(data, len);
  st64(head, ZLLM_BLOB_MAGIC);
  st64(head + 8, len);
  st64(tail, sum);
  struct {
    const void *p;
    size_t n;
  } parts[3] = {{head, 16}, {data, len}, {tail, 8}};
  uint64_t at = a->pack_len;
  for (int i = 0; i < 3; i++) {
    size_t done = 0;
    while (done < parts[i].n) {
      ssize_t w = pwrite(a->pack_fd, (const char *)parts[i].p + done, parts[i].n - done, (off_t)(at + done));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0) {
        a->broken = 1;
        return zllm_error_set_errno("%s/packs: write failed", a->dir);
      }
      done += (size_t)w;
    }
    at += parts[i].n;
  }
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "INSERT INTO blobs(pack, offset, len, checksum) VALUES(?, ?, ?, ?)");
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, a->pack_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)(a->pack_len + 16));
    sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)sum);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ar_sql_error(a, "recording a blob");
  }
  ar_finalize(a, st);
  if (rc == 0) {
    *id = sqlite3_last_insert_rowid(a->db);
    a->pack_len = at;
  }
  return rc;
}

/* Reads and checks blob `id` into `b` (grown as needed); *len its length. */
/* "pack-NNNN.zpk" and nothing else: a catalog is data too, and a name with
 * a '/' or ".." would read outside the archive. */
static int safe_pack_name(const char *name)
{
  size_t n = name ? strlen(name) : 0;
  if (n < 10 || n > 32 || strncmp(name, "pack-", 5) != 0 || strcmp(name + n - 4, ".zpk") != 0)
    return 0;
  for (size_t i = 5; i < n - 4; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'z')))
      return 0;
  return 1;
}

/* The descriptor and trusted length of pack `pack`: the write pack, or
 * another one the catalog names (opened read-only once, then kept). */
static int pack_for(zllm_archive *a, int64_t pack, int *fd, uint64_t *len)
{
  if (pack == a->pack_id) {
    *fd = a->pack_fd;
    *len = a->pack_len;
    return 0;
  }
  for (int i = 0; i < a->nother; i++)
    if (a->other[i].id == pack) {
      *fd = a->other[i].fd;
      *len = a->other[i].len;
      return 0;
    }
  sqlite3_stmt *st = NULL;
  int rc = a->nother < ZLLM_MAX_PACKS ? ar_prepare(a, &st, "SELECT name, committed_len FROM packs WHERE id = ?")
                                      : zllm_error_set(ZLLM_ELIMIT, "%s: more than %d pack files", a->dir, ZLLM_MAX_PACKS);
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, pack);
    const char *name = NULL;
    int64_t committed = 0;
    if (sqlite3_step(st) == SQLITE_ROW && (ar_col_text(a, st, 0, &name) < 0 || ar_col_int(a, st, 1, &committed) < 0))
      name = NULL;
    if (!safe_pack_name(name))
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: pack %lld has no usable name in the catalog", a->dir, (long long)pack);
    else if ((rc = open_pack_file(a, name, 0, fd)) == 0) {
      *len = (uint64_t)committed;
      a->other[a->nother].id = pack;
      a->other[a->nother].fd = *fd;
      a->other[a->nother++].len = *len;
    }
  }
  ar_finalize(a, st);
  return rc;
}

/* A writer first opens every pack the catalog names: one that is missing or
 * a link stops the pack before anything is written, not midway through a
 * repo as a dedup lookup reaches it. */
static int open_all_packs(zllm_archive *a)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id FROM packs ORDER BY id");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = 0;
    int fd = -1;
    uint64_t len = 0;
    rc = ar_col_int(a, st, 0, &id);
    rc = rc ? rc : pack_for(a, id, &fd, &len);
  }
  ar_finalize(a, st);
  return rc;
}

/* A reader of an archive that is being packed into (zllm serve) learns of
 * the pack bytes committed since it opened the pack when a blob lies past
 * what it knew: the catalog row of a new repo is only visible after its
 * pack's committed length was raised in the same transaction. */
static int pack_refresh(zllm_archive *a, int64_t pack, uint64_t *len)
{
  sqlite3_stmt *st = NULL;
  int64_t committed = 0;
  int rc = ar_prepare(a, &st, "SELECT committed_len FROM packs WHERE id = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, pack);
  rc = sqlite3_step(st) == SQLITE_ROW ? ar_col_int(a, st, 0, &committed) : ar_sql_error(a, "reading the pack table");
  ar_finalize(a, st);
  if (rc < 0 || (uint64_t)committed <= *len)
    return rc;
  *len = (uint64_t)committed;
  if (pack == a->pack_id)
    a->pack_len = a->committed_len = *len;
  for (int i = 0; i < a->nother; i++)
    if (a->other[i].id == pack)
      a->other[i].len = *len;
  return 0;
}

/* Where blob `id` is: its pack's descriptor, offset, length and checksum,
 * once its record's own header and trailer agree with the catalog. */
static int blob_locate(zllm_archive *a, int64_t id, int *fd_out, uint64_t *off_out, uint64_t *len_out,
                       uint64_t *sum_out)
{
  sqlite3_stmt *st = NULL;
  uint8_t head[16], tail[8];
  int fd = -1;
  uint64_t pack_len = 0;
  int rc = ar_prepare(a, &st, "SELECT offset, len, checksum, pack FROM blobs WHERE id = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    ar_finalize(a, st);
    return zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld is not in the catalog", a->dir, (long long)id);
  }
  int64_t v[4] = {0};
  for (int k = 0; rc == 0 && k < 4; k++)
    rc = ar_col_int(a, st, k, &v[k]);
  ar_finalize(a, st);
  uint64_t off = (uint64_t)v[0], n = (uint64_t)v[1], sum = (uint64_t)v[2];
  int64_t pack = v[3];
  if (rc < 0 || (rc = pack_for(a, pack, &fd, &pack_len)) < 0)
    return rc;
  if (!a->writer && off + n + 8 > pack_len && (rc = pack_refresh(a, pack, &pack_len)) < 0)
    return rc;
  if (off < 16 || n > ZLLM_BLOB_MAX || off + n + 8 > pack_len)
    return zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld: offset or length outside the pack (or over the %llu bytes "
                          "a blob may hold)", a->dir, (long long)id, (unsigned long long)ZLLM_BLOB_MAX);
  /* the record's own header and trailer first: a row pointing anywhere else
   * in the pack (a sparse hole, the middle of another blob) is refused
   * before its claimed length sizes a buffer or a read */
  rc = zllm_pread_full(fd, head, 16, off - 16, "pack");
  rc = rc ? rc : zllm_pread_full(fd, tail, 8, off + n, "pack");
  if (rc == 0 && (ld64(head) != ZLLM_BLOB_MAGIC || ld64(head + 8) != n || ld64(tail) != sum))
    return zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld: no blob record at offset %llu of pack %lld (its header or "
                          "trailer is not the catalog's)", a->dir, (long long)id, (unsigned long long)off,
                          (long long)pack);
  *fd_out = fd;
  *off_out = off;
  *len_out = n;
  *sum_out = sum;
  return rc;
}

static int blob_read_into(zllm_archive *a, int64_t id, zllm_buf *b, size_t *len)
{
  int fd = -1;
  uint64_t off = 0, n = 0, sum = 0;
  int rc = blob_locate(a, id, &fd, &off, &n, &sum);
  b->len = 0;
  rc = rc ? rc : zllm_buf_reserve(b, (size_t)n);
  uint8_t *buf = (uint8_t *)b->data;
  rc = rc ? rc : zllm_pread_full(fd, buf, n, off, "pack");
  if (rc == 0 && XXH3_64bits(buf, n) != sum)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld fails its checksum", a->dir, (long long)id);
  *len = (size_t)n;
  return rc;
}

int ar_blob_open(zllm_archive *a, int64_t id, ar_blob_ref *ref)
{
  uint64_t sum = 0;
  ref->id = id;
  return blob_locate(a, id, &ref->fd, &ref->off, &ref->len, &sum);
}

int ar_blob_pread(zllm_archive *a, const ar_blob_ref *ref, uint64_t off, uint64_t n, uint8_t *dst)
{
  /* the whole blob's checksum cannot be checked on a range: each chunk's
   * own checksum (and the file's SHA-256) prove what is decoded from it */
  if (off > ref->len || n > ref->len - off)
    return zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld: bytes %llu+%llu are past its %llu", a->dir,
                          (long long)ref->id, (unsigned long long)off, (unsigned long long)n,
                          (unsigned long long)ref->len);
  return zllm_pread_full(ref->fd, dst, n, ref->off + off, "pack");
}

int ar_blob_read(zllm_archive *a, int64_t id, uint8_t **data, size_t *len)
{
  zllm_buf b = ZLLM_BUF_INIT;
  int rc = blob_read_into(a, id, &b, len);
  if (rc < 0) {
    zllm_buf_free(&b);
    *data = NULL;
    return rc;
  }
  *data = (uint8_t *)zllm_buf_detach(&b, NULL);
  return 0;
}

int ar_stream_write(zllm_archive *a, const uint8_t *src, size_t len, int level, int skip_noise, int64_t *id,
                    uint64_t *stored)
{
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  o.zstd_level = level;
  o.skip_noise = skip_noise;
  a->enc.len = 0;
  int rc = zllm_stream_encode(a->codec, &o, src, len, &a->enc);
  rc = rc ? rc : ar_blob_write(a, a->enc.data, a->enc.len, id);
  if (rc == 0 && stored)
    *stored += a->enc.len + 24;
  return rc;
}

int ar_stream_read(zllm_archive *a, int64_t id, uint8_t *dst, size_t dst_len)
{
  size_t n = 0;
  int rc = blob_read_into(a, id, &a->blob, &n);
  rc = rc ? rc : zllm_stream_decode(a->codec, (const uint8_t *)a->blob.data, n, dst, dst_len);
  if (rc == ZLLM_EFORMAT && strncmp(zllm_error_last(), "stream: ", 8) == 0) /* name the blob */
    rc = zllm_error_set(rc, "%s: blob %lld: %s", a->dir, (long long)id, zllm_error_last());
  return rc;
}

#define PARALLEL_MIN ((size_t)1 << 20) /* smaller planes are not worth a thread start */

typedef struct {
  zllm_archive *a;
  uint8_t *const *planes;
  size_t plane_len;
  zllm_stream_options o;
  const uint8_t *blob;      /* decode: the part blob */
  size_t offs[ZLLM_BITX_MAX_PLANES], lens[ZLLM_BITX_MAX_PLANES];
  char err[ZLLM_BITX_MAX_PLANES][256]; /* a worker's message (messages are per thread) */
} part_job;

/* Brings a worker's message back to the calling thread, naming the blob
 * and plane (`id` 0: a part being written, not yet a blob). */
static int part_job_error(const part_job *j, int64_t id, int rc)
{
  for (int p = 0; rc < 0 && p < ZLLM_BITX_MAX_PLANES; p++)
    if (j->err[p][0])
      return id ? zllm_error_set(rc, "%s: blob %lld, plane %d: %s", j->a->dir, (long long)id, p, j->err[p])
                : zllm_error_set(rc, "%s", j->err[p]);
  return rc;
}

static int encode_planes(void *ctx, int worker, uint64_t lo, uint64_t hi)
{
  part_job *j = ctx;
  (void)worker;
  int rc = 0;
  for (uint64_t p = lo; rc == 0 && p < hi; p++) {
    j->a->pbuf[p].len = 0;
    rc = zllm_stream_encode(j->a->pcodec[p], &j->o, j->planes[p], j->plane_len, &j->a->pbuf[p]);
    if (rc < 0)
      snprintf(((part_job *)ctx)->err[p], sizeof j->err[p], "%s", zllm_error_last());
  }
  return rc;
}

static int decode_planes(void *ctx, int worker, uint64_t lo, uint64_t hi)
{
  part_job *j = ctx;
  (void)worker;
  int rc = 0;
  for (uint64_t p = lo; rc == 0 && p < hi; p++) {
    zllm_codec *c = j->a->threads > 1 && j->plane_len >= PARALLEL_MIN ? j->a->pcodec[p] : j->a->codec;
    rc = zllm_stream_decode(c, j->blob + j->offs[p], j->lens[p], j->planes[p], j->plane_len);
    if (rc < 0)
      snprintf(j->err[p], sizeof j->err[p], "%s", zllm_error_last());
  }
  return rc;
}

int ar_part_write(zllm_archive *a, uint8_t *const *planes, int np, size_t plane_len, int level, int skip_noise,
                  zllm_stream_coder coder, int64_t *id, uint64_t *stored)
{
  part_job j = {.a = a, .planes = planes, .plane_len = plane_len, .o = ZLLM_STREAM_OPTIONS_INIT};
  size_t head = 8 + 8 * (size_t)np;
  j.o.zstd_level = level;
  j.o.skip_noise = skip_noise;
  j.o.coder = a->format >= 2 ? coder : ZLLM_CODER_ZSTD;
  a->enc.len = 0;
  int rc = zllm_buf_reserve(&a->enc, head);
  if (rc < 0)
    return rc;
  memset(a->enc.data, 0, head);
  a->enc.len = head;
  if (a->threads > 1 && plane_len >= PARALLEL_MIN) {
    /* each plane is coded on its own thread, then laid out in order */
    rc = part_job_error(&j, 0, zllm_parallel_for_n((uint64_t)np, 1, a->threads, encode_planes, &j));
    for (int p = 0; rc == 0 && p < np; p++) {
      st64((uint8_t *)a->enc.data + 8 + 8 * (size_t)p, a->pbuf[p].len);
      rc = zllm_buf_append(&a->enc, a->pbuf[p].data, a->pbuf[p].len);
    }
  } else {
    for (int p = 0; rc == 0 && p < np; p++) {
      size_t before = a->enc.len;
      rc = zllm_stream_encode(a->codec, &j.o, planes[p], plane_len, &a->enc);
      if (rc == 0)
        st64((uint8_t *)a->enc.data + 8 + 8 * (size_t)p, a->enc.len - before);
    }
  }
  if (rc < 0)
    return rc;
  zllm_put_le32((uint8_t *)a->enc.data, ZLLM_PART_MAGIC);
  zllm_put_le32((uint8_t *)a->enc.data + 4, (uint32_t)np);
  rc = ar_blob_write(a, a->enc.data, a->enc.len, id);
  if (rc == 0 && stored)
    *stored += a->enc.len + 24;
  return rc;
}

const char *ar_part_layout(const uint8_t *b, size_t n, int *np, size_t *offs, size_t *lens, int *bad)
{
  *bad = -1;
  if (n < 8 || (uint32_t)ld64(b) != ZLLM_PART_MAGIC || ld64(b) >> 32 > ZLLM_BITX_MAX_PLANES ||
      n < 8 + 8 * (ld64(b) >> 32))
    return "no part header";
  *np = (int)(ld64(b) >> 32);
  size_t at = 8 + 8 * (size_t)*np;
  for (int p = 0; p < *np; p++) {
    uint64_t len = ld64(b + 8 + 8 * (size_t)p);
    if (len > n - at) {
      *bad = p;
      return "runs past the blob";
    }
    offs[p] = at;
    lens[p] = (size_t)len;
    at += (size_t)len;
  }
  return at == n ? NULL : "trailing bytes after its planes";
}

int ar_part_read(zllm_archive *a, int64_t id, int np, size_t plane_len, uint8_t *const *planes)
{
  size_t n = 0;
  int rc = blob_read_into(a, id, &a->blob, &n), got = 0, bad = -1;
  part_job j = {.a = a, .planes = planes, .plane_len = plane_len, .blob = (const uint8_t *)a->blob.data};
  const char *why = rc ? NULL : ar_part_layout(j.blob, n, &got, j.offs, j.lens, &bad);
  if (rc == 0 && !why && got != np)
    why = "another plane count";
  if (rc == 0 && why)
    rc = bad >= 0 ? zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld: plane %d %s", a->dir, (long long)id, bad, why)
                  : zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld is not a part of %d planes (%s)", a->dir,
                                   (long long)id, np, why);
  int threads = plane_len >= PARALLEL_MIN ? a->threads : 1;
  return rc ? rc : part_job_error(&j, id, zllm_parallel_for_n((uint64_t)np, 1, threads, decode_planes, &j));
}
