/* Restore, cat-tensor, verify and ls: everything that reads the archive.
 * A file is rebuilt into a temporary name while its SHA-256 is computed, and
 * gets its final name only when that matches the SHA-256 recorded at ingest. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/le.h"
#include "zllm/parallel.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

/* Where restored bytes go: a file (fd >= 0) or a stream, and the hashes
 * that are set. */
typedef struct {
  int fd;
  FILE *out;
  zllm_sha256_ctx *sha;
  uint64_t written;
  const char *name;
  zllm_xxh128_ctx *xxh; /* a tensor's key, when checked (or NULL) */
} sink;

static int sink_put(sink *s, const void *p, size_t n)
{
  int rc = s->sha ? zllm_sha256_ctx_update(s->sha, p, n) : 0;
  if (rc == 0 && s->xxh)
    zllm_xxh128_ctx_update(s->xxh, p, n);
  for (size_t done = 0; rc == 0 && s->fd >= 0 && done < n;) {
    ssize_t w = write(s->fd, (const char *)p + done, n - done);
    if (w < 0)
      return zllm_error_set_errno("%s: write failed", s->name);
    done += (size_t)w;
  }
  if (rc == 0 && s->out && fwrite(p, 1, n, s->out) != n)
    rc = zllm_error_set_errno("%s: write failed", s->name);
  s->written += n;
  return rc;
}

static int put_tensor(zllm_archive *a, int64_t id, sink *s)
{
  ar_tensor t;
  int rc = ar_tensor_get(a, id, &t);
  if (rc < 0)
    return rc;
  uint8_t *buf = ar_buf_get(a);
  if (!buf)
    return ZLLM_ENOMEM;
  for (uint64_t part = 0; rc == 0 && t.len && part < ar_nparts(t.len); part++) {
    rc = ar_tensor_decode_part(a, id, part, buf, 0);
    rc = rc ? rc : sink_put(s, buf, ar_part_len(t.len, part));
  }
  ar_buf_put(a, buf);
  return rc;
}

/* Rebuilds a file into the sink through the file reader (pack/reader.c),
 * which checks it against the SHA-256 recorded at ingest before its last
 * bytes come out. */
static int proven_file(zllm_archive *a, int64_t id, const uint8_t *want_sha, uint64_t size, sink *s)
{
  zllm_file_reader *r = NULL;
  const uint8_t *p = NULL;
  size_t n = 0;
  int rc = ar_reader_open_id(&r, a, id, s->name, size, want_sha);
  while (rc == 0 && (rc = ar_reader_next(r, &p, &n)) == 0 && n > 0)
    rc = sink_put(s, p, n);
  if (rc == 0 && !zllm_file_reader_verified(r))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: SHA-256 MISMATCH: the restored bytes are not the ingested file", s->name);
  zllm_file_reader_close(r);
  return rc;
}

/* "repo/dir..." and "file" of a catalog path (caller frees *dir). */
static int split_dest(const char *repo, const char *path, char **dir, const char **base)
{
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) : 0, rlen = strlen(repo);
  *base = slash ? slash + 1 : path;
  if (!(*dir = malloc(rlen + dlen + 2)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  memcpy(*dir, repo, rlen);
  (*dir)[rlen] = '/';
  memcpy(*dir + rlen + 1, path, dlen);
  (*dir)[rlen + 1 + dlen] = '\0';
  return 0;
}

/* Writes one file under outdir: directories are opened one by one without
 * following a symlink (unless ZLLM_RESTORE_KEEP_DIR_SYMLINKS), the bytes go
 * to an unpredictable O_EXCL|O_NOFOLLOW temporary name in that directory,
 * which gets the final name only when the SHA-256 matches. */
static int restore_one(zllm_archive *a, const char *repo, const char *path, int64_t id, const uint8_t *sha,
                       uint64_t size, const char *outdir, int flags)
{
  char *rel_dir = NULL, *tmp = NULL, name[1400];
  const char *base = NULL;
  int dfd = -1, rc = 0;
  snprintf(name, sizeof name, "%s/%s", repo, path);
  if (zllm_repo_id_check(repo) < 0 || zllm_path_check_relative(path, name) < 0)
    return zllm_error_set(ZLLM_EUNSAFE, "%s: the catalog names a file that cannot be restored: %s", a->dir,
                          zllm_error_last());
  rc = split_dest(repo, path, &rel_dir, &base);
  rc = rc ? rc : zllm_mkdir_p(outdir, 0755); /* --out itself is the user's to name */
  rc = rc ? rc : zllm_open_dir_beneath(outdir, rel_dir, 1, flags & ZLLM_RESTORE_KEEP_DIR_SYMLINKS, &dfd);
  sink s = {-1, NULL, NULL, 0, name, NULL};
  rc = rc ? rc : zllm_tmp_create(dfd, base, &tmp, &s.fd);
  rc = rc ? rc : proven_file(a, id, sha, size, &s);
  if (s.fd >= 0 && close(s.fd) < 0 && rc == 0)
    rc = zllm_error_set_errno("%s: close failed", name);
  /* rename replaces whatever is at the final name, a symlink included,
   * without following it */
  if (rc == 0 && renameat(dfd, tmp, dfd, base) < 0)
    rc = zllm_error_set_errno("%s/%s: cannot rename into place", outdir, name);
  if (rc < 0 && tmp)
    unlinkat(dfd, tmp, 0); /* never leave a wrong file behind */
  if (dfd >= 0)
    close(dfd);
  free(tmp);
  free(rel_dir);
  return rc;
}

/* One file that could not be restored: said, and the rest goes on. */
static void report_not_restored(const char *repo, const char *path, const char *why)
{
  char r[512], p[1400], w[1200];
  zllm_escape_text(r, sizeof r, repo);
  zllm_escape_text(p, sizeof p, path);
  zllm_escape_text(w, sizeof w, why ? why : "no reason recorded");
  fprintf(stderr, "zllm restore: %s/%s: not restored: %s\n", r, p, w);
}

static int restore_query(zllm_archive *a, const char *repo, const char *file, const char *outdir, int flags,
                         int *count, int *failed, char *first, size_t first_cap)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "SELECT r.name, f.path, f.id, f.sha256, f.size, f.method, f.note FROM files f"
                      " JOIN repos r ON f.repo = r.id"
                      " WHERE (?1 IS NULL OR r.name = ?1) AND (?2 IS NULL OR f.path = ?2) ORDER BY r.name, f.path");
  if (rc < 0)
    return rc;
  repo ? sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 1);
  file ? sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 2);
  *count = *failed = 0;
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *rname = NULL, *path = NULL, *method = NULL, *note = NULL;
    const void *sha = NULL;
    int64_t id = 0, size = 0;
    rc = ar_col_text(a, st, 0, &rname);
    rc = rc ? rc : ar_col_text(a, st, 1, &path);
    rc = rc ? rc : ar_col_int(a, st, 2, &id);
    rc = rc ? rc : ar_col_text(a, st, 5, &method);
    rc = rc ? rc : ar_col_text_or_null(a, st, 6, &note);
    (*count)++;
    if (rc < 0 && rc != ZLLM_ENOMEM) { /* a bad row: that file fails, the others go on */
      fprintf(stderr, "zllm restore: %s\n", zllm_error_last());
      if (!(*failed)++)
        snprintf(first, first_cap, "%s", zllm_error_last());
      rc = 0;
      continue;
    }
    if (rc < 0)
      break;
    if (strcmp(method, "skipped") == 0) {
      report_not_restored(rname, path, note ? note : "skipped at ingest");
      continue;
    }
    rc = ar_col_blob(a, st, 3, 32, &sha);
    rc = rc ? rc : ar_col_int(a, st, 4, &size);
    rc = rc ? rc : restore_one(a, rname, path, id, sha, (uint64_t)size, outdir, flags);
    if (rc < 0 && rc != ZLLM_ENOMEM) {
      fprintf(stderr, "zllm restore: %s\n", zllm_error_last());
      if (!(*failed)++)
        snprintf(first, first_cap, "%s", zllm_error_last());
      rc = 0;
    }
  }
  ar_finalize(a, st);
  return rc;
}

int zllm_restore_repo(zllm_archive *a, const char *repo, const char *file, const char *outdir, int flags)
{
  char first[512] = "";
  int count = 0, failed = 0, rc = ar_cache_enable(a, 1);
  rc = rc ? rc : restore_query(a, repo, file, outdir, flags, &count, &failed, first, sizeof first);
  if (rc == 0 && count == 0)
    rc = zllm_error_set(ZLLM_ENOTFOUND, "%s: no %s%s%s in the archive", a->dir, repo, file ? "/" : "", file ? file : "");
  if (rc == 0 && failed)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %d of %d files not restored (each named above; the first: %s)", a->dir,
                        failed, count, first);
  return rc;
}

int zllm_restore_all(zllm_archive *a, const char *outdir, int flags)
{
  /* one path for all of an archive, threaded or not */
  return zllm_restore_all_threads(a->dir, outdir, 1, flags);
}

/* The decoded tensor's XXH3-128, cut to a key as at ingest, must be the
 * recorded one: a swapped base or part decodes to other bytes. */
static int check_tensor_key(zllm_archive *a, int64_t id, sink *s, const uint8_t want[16])
{
  zllm_xxh128 got;
  uint8_t key[16];
  int rc = 0;
  zllm_xxh128_ctx_final(s->xxh, &got);
  {
    ar_hash_key(a, got.b, key);
    if (memcmp(key, want, 16) != 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld decodes to bytes whose XXH3-128 is not the one recorded at ingest",
                          a->dir, (long long)id);
  }
  return rc;
}

int zllm_cat_tensor(zllm_archive *a, const char *repo, const char *tensor, FILE *out)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "SELECT t.id, t.key FROM tensors t JOIN files f ON t.file = f.id JOIN repos r ON f.repo = r.id"
                      " WHERE r.name = ? AND t.name = ? ORDER BY f.path LIMIT 1");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, tensor, -1, SQLITE_TRANSIENT);
  int64_t id = 0;
  const void *key = NULL;
  uint8_t want[16];
  if (sqlite3_step(st) == SQLITE_ROW && (rc = ar_col_int(a, st, 0, &id)) == 0 && (rc = ar_col_blob(a, st, 1, 16, &key)) == 0)
    memcpy(want, key, 16);
  ar_finalize(a, st);
  if (rc < 0)
    return rc;
  if (!id)
    return zllm_error_set(ZLLM_ENOTFOUND, "%s: no tensor '%s' in %s", a->dir, tensor, repo);
  /* a partial read has no file SHA-256 to prove it: the tensor is decoded
   * and checked against its recorded key before a byte is written */
  sink check = {-1, NULL, NULL, 0, "check", NULL}, s = {-1, out, NULL, 0, "stdout", NULL};
  rc = zllm_xxh128_ctx_new(&check.xxh);
  rc = rc ? rc : put_tensor(a, id, &check);
  rc = rc ? rc : check_tensor_key(a, id, &check, want);
  rc = rc ? rc : put_tensor(a, id, &s);
  zllm_xxh128_ctx_free(check.xxh);
  return rc;
}

/* A blob's chunks by codec: a stream container, or a tensor part's.  What
 * does not parse is left to the decode that follows to name. */
static void count_chunks(const uint8_t *p, size_t n, uint64_t counts[ZLLM_CHUNK_CODECS])
{
  size_t offs[ZLLM_BITX_MAX_PLANES], lens[ZLLM_BITX_MAX_PLANES];
  int np = 0, bad;
  if (n >= 4 && zllm_le32(p) == ZLLM_STREAM_MAGIC)
    (void)zllm_stream_count_codecs(p, n, counts);
  else if (!ar_part_layout(p, n, &np, offs, lens, &bad))
    for (int k = 0; k < np; k++)
      (void)zllm_stream_count_codecs(p + offs[k], lens[k], counts);
}

int zllm_archive_verify(zllm_archive *a, FILE *report)
{
  sqlite3_stmt *st = NULL;
  int bad = 0, rc = ar_cache_enable(a, 1); /* every file is decoded: a family's base once */
  rc = rc ? rc : ar_prepare(a, &st, "SELECT id FROM blobs ORDER BY id");
  uint64_t blobs = 0, files = 0, chunks[ZLLM_CHUNK_CODECS] = {0};
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    uint8_t *data = NULL;
    size_t n = 0;
    int64_t blob = 0;
    if (ar_col_int(a, st, 0, &blob) < 0 || ar_blob_read(a, blob, &data, &n) < 0) {
      fprintf(report, "verify: %s\n", zllm_error_last());
      bad++;
    } else {
      count_chunks(data, n, chunks);
    }
    free(data);
    blobs++;
  }
  ar_finalize(a, st);
  rc = rc ? rc : ar_prepare(a, &st,
                            "SELECT r.name, f.path, f.id, f.sha256, f.size, f.method FROM files f JOIN repos r"
                            " ON f.repo = r.id WHERE f.method IS NOT 'skipped' ORDER BY r.name, f.path");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    char name[1200];
    const char *repo = NULL, *path = NULL, *method = NULL;
    const void *sha = NULL;
    int64_t id = 0, size = 0;
    int ok = ar_col_text(a, st, 0, &repo) == 0 && ar_col_text(a, st, 1, &path) == 0 && ar_col_int(a, st, 2, &id) == 0 &&
             ar_col_blob(a, st, 3, 32, &sha) == 0 && ar_col_int(a, st, 4, &size) == 0 &&
             ar_col_text(a, st, 5, &method) == 0;
    snprintf(name, sizeof name, "%s/%s", repo ? repo : "?", path ? path : "?");
    sink s = {-1, NULL, NULL, 0, name, NULL};
    if (!ok || proven_file(a, id, sha, (uint64_t)size, &s) < 0) {
      fprintf(report, "verify: %s\n", zllm_error_last());
      bad++;
    }
    files++;
  }
  ar_finalize(a, st);
  if (rc == 0)
    fprintf(report,
            "verify: archive format %d (tensor planes: %s); chunks: %llu raw, %llu constant, %llu zstd, "
            "%llu rANS, %llu sparse\n"
            "verify: %llu blobs, %llu files, %d problems\n",
            a->format, a->format >= 2 ? "rANS" : "zstd", (unsigned long long)chunks[ZLLM_CHUNK_RAW],
            (unsigned long long)chunks[ZLLM_CHUNK_CONST], (unsigned long long)chunks[ZLLM_CHUNK_ZSTD],
            (unsigned long long)chunks[ZLLM_CHUNK_RANS0], (unsigned long long)chunks[ZLLM_CHUNK_SPARSE],
            (unsigned long long)blobs, (unsigned long long)files, bad);
  return rc ? rc : bad ? zllm_error_set(ZLLM_EFORMAT, "%s: %d problems found", a->dir, bad) : 0;
}

int zllm_archive_ls(zllm_archive *a, const char *repo, FILE *out)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "SELECT r.name, f.path, f.size, f.stored, f.method,"
                      " (SELECT group_concat(m || ':' || c, ' ') FROM (SELECT method AS m, count(*) AS c FROM tensors"
                      "   WHERE file = f.id GROUP BY method)), coalesce(r.base, '-')"
                      " FROM files f JOIN repos r ON f.repo = r.id WHERE (?1 IS NULL OR r.name = ?1)"
                      " ORDER BY r.name, f.path");
  if (rc < 0)
    return rc;
  repo ? sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 1);
  fprintf(out, "repo\tfile\tbytes\tstored\tmethod\ttensors\tbase\n");
  uint64_t in = 0, stored = 0;
  zllm_buf row = ZLLM_BUF_INIT;
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *text[7] = {NULL};
    int64_t size = 0, kept = 0;
    rc = ar_col_text(a, st, 0, &text[0]);
    rc = rc ? rc : ar_col_text(a, st, 1, &text[1]);
    rc = rc ? rc : ar_col_int(a, st, 2, &size);
    rc = rc ? rc : ar_col_int(a, st, 3, &kept);
    rc = rc ? rc : ar_col_text(a, st, 4, &text[4]);
    rc = rc ? rc : ar_col_text_or_null(a, st, 5, &text[5]);
    rc = rc ? rc : ar_col_text(a, st, 6, &text[6]);
    /* names come from a hub: a tab or newline in one must not break the TSV */
    row.len = 0;
    for (int k = 0; rc == 0 && k < 7; k++) {
      rc = k ? zllm_buf_puts(&row, "\t") : 0;
      if (rc == 0 && (k == 2 || k == 3))
        rc = zllm_buf_printf(&row, "%lld", (long long)(k == 2 ? size : kept));
      else if (rc == 0)
        rc = zllm_buf_put_tsv(&row, text[k] ? text[k] : "-");
    }
    rc = rc ? rc : zllm_buf_puts(&row, "\n");
    if (rc == 0)
      fwrite(row.data, 1, row.len, out);
    in += (uint64_t)size;
    stored += (uint64_t)kept;
  }
  zllm_buf_free(&row);
  ar_finalize(a, st);
  if (rc < 0)
    return rc;
  fprintf(out, "total\t-\t%llu\t%llu\t%.1f%%\t-\t-\n", (unsigned long long)in, (unsigned long long)stored,
          in ? 100.0 * (double)stored / (double)in : 0.0);
  return 0;
}

static uint64_t sum_query(zllm_archive *a, const char *sql, int *rc)
{
  sqlite3_stmt *st = NULL;
  uint64_t v = 0;
  int64_t x = 0;
  if (*rc == 0 && (*rc = ar_prepare(a, &st, sql)) == 0 && sqlite3_step(st) == SQLITE_ROW && (*rc = ar_col_int(a, st, 0, &x)) == 0)
    v = (uint64_t)x;
  ar_finalize(a, st);
  return v;
}

int zllm_archive_tensor_info(zllm_archive *a, const char *repo, const char *path, size_t idx, char method[16],
                             uint64_t *stored)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "SELECT f.method, t.method, coalesce(t.stored, 0) FROM files f JOIN repos r ON f.repo = r.id"
                      " LEFT JOIN tensors t ON t.file = f.id AND t.idx = ?3 WHERE r.name = ?1 AND f.path = ?2");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)idx);
  if (sqlite3_step(st) != SQLITE_ROW) {
    ar_finalize(a, st);
    return ZLLM_ENOTFOUND;
  }
  const char *fm = NULL, *tm = NULL;
  int64_t kept = 0;
  rc = ar_col_text(a, st, 0, &fm);
  rc = rc ? rc : ar_col_text_or_null(a, st, 1, &tm);
  rc = rc ? rc : ar_col_int(a, st, 2, &kept);
  if (rc == 0)
    snprintf(method, 16, "%s", strcmp(fm, "dup") == 0 ? "file-dup" : tm ? tm : fm);
  *stored = (uint64_t)kept;
  ar_finalize(a, st);
  return rc;
}

int zllm_archive_repo_info(zllm_archive *a, const char *repo, uint64_t *stored, int64_t *position)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "SELECT coalesce(sum(f.stored), 0), r.id - 1"
                      " FROM repos r LEFT JOIN files f ON f.repo = r.id WHERE r.name = ?1 GROUP BY r.id");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) != SQLITE_ROW) {
    ar_finalize(a, st);
    return ZLLM_ENOTFOUND;
  }
  int64_t kept = 0;
  rc = ar_col_int(a, st, 0, &kept);
  rc = rc ? rc : ar_col_int(a, st, 1, position);
  *stored = (uint64_t)kept;
  ar_finalize(a, st);
  return rc;
}

int zllm_archive_stages(zllm_archive *a, uint64_t stages[4])
{
  int rc = 0;
  uint64_t in = sum_query(a, "SELECT coalesce(sum(size), 0) FROM files", &rc);
  uint64_t file_dups = sum_query(a, "SELECT coalesce(sum(size), 0) FROM files WHERE method = 'dup'", &rc);
  uint64_t tensor_dups = sum_query(a, "SELECT coalesce(sum(t.len), 0) FROM tensors t JOIN files f ON t.file = f.id"
                                      " WHERE f.method != 'dup' AND t.method = 'dup'", &rc);
  uint64_t stored = sum_query(a, "SELECT coalesce(sum(stored), 0) FROM files", &rc);
  stages[0] = in;
  stages[1] = in - file_dups;
  stages[2] = in - file_dups - tensor_dups;
  stages[3] = stored;
  return rc;
}

int zllm_archive_print_stages(zllm_archive *a, FILE *out)
{
  static const char *names[4] = {"original", "file dedup", "tensor dedup", "BitX/solo coding"};
  uint64_t v[4];
  int rc = zllm_archive_stages(a, v);
  if (rc < 0)
    return rc;
  fprintf(out, "stage\tbytes\tof original\n");
  for (int i = 0; i < 4; i++)
    fprintf(out, "%s\t%llu\t%.1f%%\n", names[i], (unsigned long long)v[i], v[0] ? 100.0 * (double)v[i] / (double)v[0] : 0);
  return 0;
}

typedef struct {
  int64_t id;
  char *repo, *path, *note;
  char *error; /* the catalog row itself is bad: this file cannot be restored */
  uint8_t sha[32];
  uint64_t size;
  int skipped;
} file_ref;

typedef struct {
  const char *dir, *outdir;
  file_ref *files;
  size_t n;
  int threads, flags;
  int failed[256];
  char first[256][512]; /* each worker's first file that failed */
  zllm_archive *handles[256];
  char err[256][512];
} restore_job;

/* Worker w restores files w, w + T, w + 2T, ... of the largest-first list,
 * so the big files are spread over the workers. */
static int restore_slice(void *ctx, int worker, uint64_t lo, uint64_t hi)
{
  restore_job *j = ctx;
  (void)hi;
  int rc = zllm_archive_open(&j->handles[worker], j->dir, 0);
  /* the part caches of all workers share one budget */
  rc = rc ? rc : ar_cache_enable(j->handles[worker], j->threads);
  for (uint64_t i = lo; rc == 0 && i < j->n; i += (uint64_t)j->threads) {
    file_ref *f = &j->files[i];
    if (f->skipped) {
      report_not_restored(f->repo, f->path, f->note ? f->note : "skipped at ingest");
      continue;
    }
    rc = f->error ? zllm_error_set(ZLLM_EFORMAT, "%s", f->error) : 0;
    rc = rc ? rc : restore_one(j->handles[worker], f->repo, f->path, f->id, f->sha, f->size, j->outdir, j->flags);
    if (rc < 0 && rc != ZLLM_ENOMEM) { /* one bad file: said, and the others still restore */
      fprintf(stderr, "zllm restore: %s\n", zllm_error_last());
      if (!j->failed[worker]++)
        snprintf(j->first[worker], sizeof j->first[worker], "%s", zllm_error_last());
      rc = 0;
    }
  }
  if (rc < 0)
    snprintf(j->err[worker], sizeof j->err[worker], "%s", zllm_error_last());
  return rc;
}

static int list_files(zllm_archive *a, file_ref **out, size_t *n)
{
  sqlite3_stmt *st = NULL;
  file_ref *v = NULL;
  size_t count = 0;
  int rc = ar_prepare(a, &st,
                      "SELECT f.id, r.name, f.path, f.sha256, f.size, f.method, f.note FROM files f JOIN repos r"
                      " ON f.repo = r.id ORDER BY f.size DESC, r.name, f.path");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    file_ref *nv = realloc(v, (count + 1) * sizeof *nv);
    if (!nv) {
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      break;
    }
    v = nv;
    file_ref *f = &v[count++];
    const char *repo = NULL, *path = NULL, *method = NULL, *note = NULL;
    const void *sha = NULL;
    int64_t size = 0;
    memset(f, 0, sizeof *f);
    /* a bad row is that file's failure (said when its turn comes), not the restore's */
    int bad = ar_col_int(a, st, 0, &f->id) < 0 || ar_col_text(a, st, 1, &repo) < 0 || ar_col_text(a, st, 2, &path) < 0 ||
              ar_col_int(a, st, 4, &size) < 0 || ar_col_text(a, st, 5, &method) < 0 ||
              ar_col_text_or_null(a, st, 6, &note) < 0;
    f->size = (uint64_t)size;
    f->skipped = !bad && strcmp(method, "skipped") == 0;
    if (!bad && !f->skipped && ar_col_blob(a, st, 3, 32, &sha) == 0)
      memcpy(f->sha, sha, 32);
    else if (!bad && !f->skipped)
      bad = 1;
    if (bad && !(f->error = strdup(zllm_error_last())))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    if (rc == 0 && (!(f->repo = strdup(repo ? repo : "?")) || !(f->path = strdup(path ? path : "?")) ||
                    (note && !(f->note = strdup(note)))))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  ar_finalize(a, st);
  *out = v;
  *n = count;
  return rc;
}

int zllm_restore_all_threads(const char *dir, const char *outdir, int threads, int flags)
{
  zllm_archive *a = NULL;
  restore_job j = {.dir = dir, .outdir = outdir, .flags = flags};
  size_t n = 0;
  int rc = zllm_archive_open(&a, dir, 0);
  rc = rc ? rc : list_files(a, &j.files, &n);
  zllm_archive_close(a);
  j.n = n;
  j.threads = threads < 1 ? 1 : threads > 256 ? 256 : threads;
  if (rc == 0) /* one slice per worker: each takes every T-th file */
    rc = zllm_parallel_for_n((uint64_t)j.threads, 1, j.threads, restore_slice, &j);
  for (int w = 0; rc < 0 && w < 256; w++)
    if (j.err[w][0]) {
      rc = zllm_error_set(rc, "%s", j.err[w]);
      break;
    }
  int failed = 0;
  const char *first = NULL;
  for (int w = 0; w < 256; w++) {
    failed += j.failed[w];
    first = first || !j.failed[w] ? first : j.first[w];
  }
  if (rc == 0 && failed)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %d of %zu files not restored (each named above; the first: %s)", dir,
                        failed, n, first);
  for (int w = 0; w < 256; w++)
    zllm_archive_close(j.handles[w]);
  for (size_t i = 0; i < n; i++) {
    free(j.files[i].repo);
    free(j.files[i].path);
    free(j.files[i].note);
    free(j.files[i].error);
  }
  free(j.files);
  return rc;
}
