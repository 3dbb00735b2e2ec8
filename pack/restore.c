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
#include "zllm/parallel.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

/* Where restored bytes go: a file (fd >= 0) and/or the hash. */
typedef struct {
  int fd;
  FILE *out;
  zllm_sha256_ctx *sha;
  uint64_t written;
  const char *name;
} sink;

static int sink_put(sink *s, const void *p, size_t n)
{
  int rc = zllm_sha256_ctx_update(s->sha, p, n);
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

/* A stream blob (a header or a piece) decoded whole into the sink. Its
 * decoded length comes from the blob, so it is held to what zllm writes
 * (`max`): a few KiB of constant chunks could otherwise claim terabytes. */
static int put_blob_stream(zllm_archive *a, int64_t blob, uint64_t max, sink *s)
{
  uint8_t *data = NULL, *raw = NULL;
  size_t n = 0;
  uint64_t raw_len = 0;
  uint32_t cs, nch;
  int rc = ar_blob_read(a, blob, &data, &n);
  rc = rc ? rc : zllm_stream_info(data, n, &raw_len, &cs, &nch);
  if (rc == 0 && raw_len > max)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld decodes to %llu bytes, more than the %llu a header or piece holds",
                        a->dir, (long long)blob, (unsigned long long)raw_len, (unsigned long long)max);
  if (rc == 0 && !(raw = malloc(raw_len ? raw_len : 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_stream_decode(a->codec, data, n, raw, raw_len);
  rc = rc ? rc : sink_put(s, raw, raw_len);
  free(data);
  free(raw);
  return rc;
}

static int put_rows(zllm_archive *a, const char *sql, int64_t file, sink *s, int tensors)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, sql), step;
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, file);
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
    rc = tensors ? put_tensor(a, sqlite3_column_int64(st, 0), s)
                 : put_blob_stream(a, sqlite3_column_int64(st, 0), ZLLM_PIECE_BYTES, s);
  sqlite3_finalize(st);
  return rc;
}

/* Rebuilds one file's bytes into the sink, following dups. */
static int put_file(zllm_archive *a, int64_t id, sink *s, int depth)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT method, dup_of, header_blob FROM files WHERE id = ?");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_finalize(st);
    return zllm_error_set(ZLLM_EFORMAT, "%s: file %lld is not in the catalog", a->dir, (long long)id);
  }
  char method[16];
  snprintf(method, sizeof method, "%s", (const char *)sqlite3_column_text(st, 0));
  int64_t dup = sqlite3_column_int64(st, 1), hblob = sqlite3_column_int64(st, 2);
  sqlite3_finalize(st);
  if (strcmp(method, "dup") == 0)
    return depth > 2 ? zllm_error_set(ZLLM_EFORMAT, "%s: file %lld: dup of a dup", a->dir, (long long)id)
                     : put_file(a, dup, s, depth + 1);
  if (strcmp(method, "opaque") == 0)
    return put_rows(a, "SELECT blob FROM pieces WHERE file = ? ORDER BY seq", id, s, 0);
  rc = put_blob_stream(a, hblob, 8 + ZLLM_ST_HEADER_MAX, s); /* the length word and the header */
  return rc ? rc : put_rows(a, "SELECT id FROM tensors WHERE file = ? ORDER BY idx", id, s, 1);
}

/* Rebuilds a file into the sink and checks it against the recorded SHA-256. */
static int proven_file(zllm_archive *a, int64_t id, const uint8_t *want_sha, uint64_t size, sink *s)
{
  zllm_sha256 got;
  int rc = zllm_sha256_ctx_new(&s->sha);
  rc = rc ? rc : put_file(a, id, s, 0);
  rc = rc ? rc : zllm_sha256_ctx_final(s->sha, &got);
  if (rc == 0 && (memcmp(got.b, want_sha, 32) != 0 || s->written != size))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: SHA-256 MISMATCH: the restored bytes are not the ingested file", s->name);
  zllm_sha256_ctx_free(s->sha);
  s->sha = NULL;
  return rc;
}

static int restore_one(zllm_archive *a, const char *repo, const char *path, int64_t id, const uint8_t *sha,
                       uint64_t size, const char *outdir)
{
  if (zllm_path_check_relative(path, repo) < 0 || zllm_repo_id_check(repo) < 0)
    return zllm_error_set(ZLLM_EUNSAFE, "%s: catalog names an unsafe path '%s/%s'", a->dir, repo, path);
  char *rdir = zllm_path_join(outdir, repo), *dst = rdir ? zllm_path_join(rdir, path) : NULL, *tmp = NULL;
  int rc = dst ? 0 : ZLLM_ENOMEM;
  if (rc == 0 && !(tmp = malloc(strlen(dst) + 32)))
    rc = ZLLM_ENOMEM;
  if (rc == 0) {
    snprintf(tmp, strlen(dst) + 32, "%s.zllm-tmp.%ld", dst, (long)getpid());
    char *slash = strrchr(dst, '/');
    *slash = '\0';
    rc = zllm_mkdir_p(dst, 0755);
    *slash = '/';
  }
  sink s = {-1, NULL, NULL, 0, dst};
  if (rc == 0 && (s.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
    rc = zllm_error_set_errno("%s: cannot create", tmp);
  rc = rc ? rc : proven_file(a, id, sha, size, &s);
  if (s.fd >= 0 && close(s.fd) < 0 && rc == 0)
    rc = zllm_error_set_errno("%s: close failed", tmp);
  if (rc == 0 && rename(tmp, dst) < 0)
    rc = zllm_error_set_errno("%s: rename failed", tmp);
  if (rc < 0 && tmp)
    unlink(tmp); /* never leave a wrong file behind */
  free(tmp);
  free(dst);
  free(rdir);
  return rc;
}

static int restore_query(zllm_archive *a, const char *repo, const char *file, const char *outdir, int *count)
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
  *count = 0;
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    if (strcmp((const char *)sqlite3_column_text(st, 5), "skipped") == 0) {
      fprintf(stderr, "zllm restore: %s/%s was not stored (%s)\n", sqlite3_column_text(st, 0),
              sqlite3_column_text(st, 1), sqlite3_column_text(st, 6));
      (*count)++;
      continue;
    }
    if (sqlite3_column_bytes(st, 3) != 32) {
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: a file has no SHA-256", a->dir);
      break;
    }
    rc = restore_one(a, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1),
                     sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3), (uint64_t)sqlite3_column_int64(st, 4),
                     outdir);
    (*count)++;
  }
  sqlite3_finalize(st);
  return rc;
}

int zllm_restore_repo(zllm_archive *a, const char *repo, const char *file, const char *outdir)
{
  int count = 0, rc = restore_query(a, repo, file, outdir, &count);
  if (rc == 0 && count == 0)
    rc = zllm_error_set(ZLLM_ENOTFOUND, "%s: no %s%s%s in the archive", a->dir, repo, file ? "/" : "", file ? file : "");
  return rc;
}

int zllm_restore_all(zllm_archive *a, const char *outdir)
{
  /* one path for all of an archive, threaded or not */
  return zllm_restore_all_threads(a->dir, outdir, 1);
}

int zllm_cat_tensor(zllm_archive *a, const char *repo, const char *tensor, FILE *out)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "SELECT t.id FROM tensors t JOIN files f ON t.file = f.id JOIN repos r ON f.repo = r.id"
                      " WHERE r.name = ? AND t.name = ? ORDER BY f.path LIMIT 1");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, tensor, -1, SQLITE_TRANSIENT);
  int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (!id)
    return zllm_error_set(ZLLM_ENOTFOUND, "%s: no tensor '%s' in %s", a->dir, tensor, repo);
  sink s = {-1, out, NULL, 0, "stdout"};
  rc = zllm_sha256_ctx_new(&s.sha);
  rc = rc ? rc : put_tensor(a, id, &s);
  zllm_sha256_ctx_free(s.sha);
  return rc;
}

int zllm_archive_verify(zllm_archive *a, FILE *report)
{
  sqlite3_stmt *st = NULL;
  int bad = 0, rc = ar_prepare(a, &st, "SELECT id FROM blobs ORDER BY id");
  uint64_t blobs = 0, files = 0;
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    uint8_t *data = NULL;
    size_t n = 0;
    if (ar_blob_read(a, sqlite3_column_int64(st, 0), &data, &n) < 0) {
      fprintf(report, "verify: %s\n", zllm_error_last());
      bad++;
    }
    free(data);
    blobs++;
  }
  sqlite3_finalize(st);
  rc = rc ? rc : ar_prepare(a, &st,
                            "SELECT r.name, f.path, f.id, f.sha256, f.size FROM files f JOIN repos r ON f.repo = r.id"
                            " WHERE f.method != 'skipped' ORDER BY r.name, f.path");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    char name[1200];
    snprintf(name, sizeof name, "%s/%s", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
    sink s = {-1, NULL, NULL, 0, name};
    if (sqlite3_column_bytes(st, 3) != 32 ||
        proven_file(a, sqlite3_column_int64(st, 2), sqlite3_column_blob(st, 3), (uint64_t)sqlite3_column_int64(st, 4),
                    &s) < 0) {
      fprintf(report, "verify: %s\n", zllm_error_last());
      bad++;
    }
    files++;
  }
  sqlite3_finalize(st);
  if (rc == 0)
    fprintf(report, "verify: %llu blobs, %llu files, %d problems\n", (unsigned long long)blobs,
            (unsigned long long)files, bad);
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
  while (sqlite3_step(st) == SQLITE_ROW) {
    fprintf(out, "%s\t%s\t%lld\t%lld\t%s\t%s\t%s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
            sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_text(st, 4),
            sqlite3_column_text(st, 5) ? (const char *)sqlite3_column_text(st, 5) : "-", sqlite3_column_text(st, 6));
    in += (uint64_t)sqlite3_column_int64(st, 2);
    stored += (uint64_t)sqlite3_column_int64(st, 3);
  }
  sqlite3_finalize(st);
  fprintf(out, "total\t-\t%llu\t%llu\t%.1f%%\t-\t-\n", (unsigned long long)in, (unsigned long long)stored,
          in ? 100.0 * (double)stored / (double)in : 0.0);
  return 0;
}

static uint64_t sum_query(zllm_archive *a, const char *sql, int *rc)
{
  sqlite3_stmt *st = NULL;
  uint64_t v = 0;
  if (*rc == 0 && (*rc = ar_prepare(a, &st, sql)) == 0 && sqlite3_step(st) == SQLITE_ROW)
    v = (uint64_t)sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
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
    sqlite3_finalize(st);
    return ZLLM_ENOTFOUND;
  }
  const char *fm = (const char *)sqlite3_column_text(st, 0), *tm = (const char *)sqlite3_column_text(st, 1);
  snprintf(method, 16, "%s", strcmp(fm, "dup") == 0 ? "file-dup" : tm ? tm : fm);
  *stored = (uint64_t)sqlite3_column_int64(st, 2);
  sqlite3_finalize(st);
  return 0;
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
    sqlite3_finalize(st);
    return ZLLM_ENOTFOUND;
  }
  *stored = (uint64_t)sqlite3_column_int64(st, 0);
  *position = sqlite3_column_int64(st, 1);
  sqlite3_finalize(st);
  return 0;
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
  char *repo, *path;
  uint8_t sha[32];
  uint64_t size;
  int skipped;
} file_ref;

typedef struct {
  const char *dir, *outdir;
  file_ref *files;
  size_t n;
  int threads;
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
  for (uint64_t i = lo; rc == 0 && i < j->n; i += (uint64_t)j->threads) {
    file_ref *f = &j->files[i];
    if (f->skipped)
      fprintf(stderr, "zllm restore: %s/%s was not stored\n", f->repo, f->path);
    else
      rc = restore_one(j->handles[worker], f->repo, f->path, f->id, f->sha, f->size, j->outdir);
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
                      "SELECT f.id, r.name, f.path, f.sha256, f.size, f.method FROM files f JOIN repos r"
                      " ON f.repo = r.id ORDER BY f.size DESC, r.name, f.path");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    file_ref *nv = realloc(v, (count + 1) * sizeof *nv);
    if (!nv) {
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      break;
    }
    v = nv;
    file_ref *f = &v[count++];
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(st, 0);
    f->repo = strdup((const char *)sqlite3_column_text(st, 1));
    f->path = strdup((const char *)sqlite3_column_text(st, 2));
    f->size = (uint64_t)sqlite3_column_int64(st, 4);
    f->skipped = strcmp((const char *)sqlite3_column_text(st, 5), "skipped") == 0;
    if (sqlite3_column_bytes(st, 3) == 32)
      memcpy(f->sha, sqlite3_column_blob(st, 3), 32);
    else if (!f->skipped)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: a file has no SHA-256", a->dir);
    if (!f->repo || !f->path)
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  sqlite3_finalize(st);
  *out = v;
  *n = count;
  return rc;
}

int zllm_restore_all_threads(const char *dir, const char *outdir, int threads)
{
  zllm_archive *a = NULL;
  restore_job j = {.dir = dir, .outdir = outdir};
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
  for (int w = 0; w < 256; w++)
    zllm_archive_close(j.handles[w]);
  for (size_t i = 0; i < n; i++) {
    free(j.files[i].repo);
    free(j.files[i].path);
  }
  free(j.files);
  return rc;
}
