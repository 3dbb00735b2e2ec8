/* Restore, cat-tensor, verify and ls: everything that reads the archive.
 * A file is rebuilt into a temporary name while its SHA-256 is computed, and
 * gets its final name only when that matches the SHA-256 recorded at ingest. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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

/* Where cat-tensor's bytes go: a stream (or nowhere), and the tensor key's
 * hash when it is checked. */
typedef struct {
  FILE *out;
  const char *name;
  zllm_xxh128_ctx *xxh; /* a tensor's key, when checked (or NULL) */
} sink;

static int sink_put(sink *s, const void *p, size_t n)
{
  if (s->xxh)
    zllm_xxh128_ctx_update(s->xxh, p, n);
  if (s->out && fwrite(p, 1, n, s->out) != n)
    return zllm_error_set_errno("%s: write failed", s->name);
  return 0;
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

/* One file that could not be restored: said, and the rest goes on. */
static void report_not_restored(const char *repo, const char *path, const char *why)
{
  char r[512], p[1400], w[1200];
  zllm_escape_text(r, sizeof r, repo);
  zllm_escape_text(p, sizeof p, path);
  zllm_escape_text(w, sizeof w, why ? why : "no reason recorded");
  fprintf(stderr, "zllm restore: %s/%s: not restored: %s\n", r, p, w);
}

/* A file of the archive as a restore or verify lists it. */
typedef struct {
  int64_t id;
  char *repo, *path, *note, *name; /* name: "repo/path", for messages */
  char *error; /* the catalog row itself is bad: this file cannot be restored */
  uint8_t sha[32];
  uint64_t size;
  int skipped;
} file_ref;

static void file_refs_free(file_ref *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].repo);
    free(v[i].path);
    free(v[i].note);
    free(v[i].name);
    free(v[i].error);
  }
  free(v);
}

/* One catalog row into f; a bad row is that file's failure (said when its
 * turn comes), not the listing's. */
static int file_ref_take(zllm_archive *a, sqlite3_stmt *st, file_ref *f)
{
  const char *repo = NULL, *path = NULL, *method = NULL, *note = NULL;
  const void *sha = NULL;
  int64_t size = 0;
  memset(f, 0, sizeof *f);
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
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  repo = repo ? repo : "?";
  path = path ? path : "?";
  size_t nlen = strlen(repo) + strlen(path) + 2;
  if (!(f->repo = strdup(repo)) || !(f->path = strdup(path)) || (note && !(f->note = strdup(note))) ||
      !(f->name = malloc(nlen)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  snprintf(f->name, nlen, "%s/%s", repo, path);
  return 0;
}

/* The files of one repo (or one file of it, or all), in `order`. */
static int list_files(zllm_archive *a, const char *repo, const char *file, const char *order, file_ref **out,
                      size_t *n)
{
  char sql[512];
  sqlite3_stmt *st = NULL;
  file_ref *v = NULL;
  size_t count = 0, cap = 0;
  snprintf(sql, sizeof sql,
           "SELECT f.id, r.name, f.path, f.sha256, f.size, f.method, f.note FROM files f JOIN repos r ON f.repo = r.id"
           " WHERE (?1 IS NULL OR r.name = ?1) AND (?2 IS NULL OR f.path = ?2) ORDER BY %s", order);
  int rc = ar_prepare(a, &st, sql);
  if (rc == 0) {
    repo ? sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 1);
    file ? sqlite3_bind_text(st, 2, file, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 2);
  }
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    if (count == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      file_ref *nv = realloc(v, ncap * sizeof *nv);
      if (!nv) {
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
        break;
      }
      v = nv;
      cap = ncap;
    }
    rc = file_ref_take(a, st, &v[count++]);
  }
  ar_finalize(a, st);
  if (rc < 0) {
    file_refs_free(v, count);
    v = NULL;
    count = 0;
  }
  *out = v;
  *n = count;
  return rc;
}

/* The pipeline's view of the files it is given (skipped ones left out):
 * pipe[k] is refs[idx[k]]. */
static int pipe_files(const file_ref *refs, size_t n, ar_pipe_file **pipe, size_t **idx, size_t *np)
{
  *pipe = calloc(n ? n : 1, sizeof **pipe);
  *idx = calloc(n ? n : 1, sizeof **idx);
  *np = 0;
  if (!*pipe || !*idx)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    if (!refs[i].skipped) {
      (*pipe)[*np] = (ar_pipe_file){refs[i].id, refs[i].name, refs[i].size, refs[i].sha, refs[i].error};
      (*idx)[(*np)++] = i;
    }
  return 0;
}

/* Where one file is being written. */
typedef struct {
  int dfd, fd;
  char *tmp; /* its temporary name in dfd */
} out_file;

typedef struct {
  const char *dir, *outdir;
  int flags;
  const file_ref *refs;
  const size_t *idx;
  out_file *out;
  pthread_mutex_t mu; /* the counts below: begin runs on any worker */
  int failed;
  char first[512];    /* the first file that failed */
} restore_run;

static void restore_failed(restore_run *j, const char *why)
{
  pthread_mutex_lock(&j->mu);
  fprintf(stderr, "zllm restore: %s\n", why);
  if (!j->failed++)
    snprintf(j->first, sizeof j->first, "%s", why);
  pthread_mutex_unlock(&j->mu);
}

/* Opens the file's directory under outdir one component at a time without
 * following a symlink (unless ZLLM_RESTORE_KEEP_DIR_SYMLINKS), and an
 * unpredictable O_EXCL|O_NOFOLLOW temporary name in it: nothing is written
 * under the final name until the SHA-256 matched. */
static int restore_begin(void *ctx, size_t k, zllm_archive *h)
{
  restore_run *j = ctx;
  const file_ref *f = &j->refs[j->idx[k]];
  out_file *o = &j->out[k];
  char *rel_dir = NULL;
  const char *base = NULL;
  o->dfd = o->fd = -1;
  if (zllm_repo_id_check(f->repo) < 0 || zllm_path_check_relative(f->path, f->name) < 0)
    return zllm_error_set(ZLLM_EUNSAFE, "%s: the catalog names a file that cannot be restored: %s", h->dir,
                          zllm_error_last());
  int rc = split_dest(f->repo, f->path, &rel_dir, &base);
  rc = rc ? rc : zllm_mkdir_p(j->outdir, 0755); /* --out itself is the user's to name */
  rc = rc ? rc : zllm_open_dir_beneath(j->outdir, rel_dir, 1, j->flags & ZLLM_RESTORE_KEEP_DIR_SYMLINKS, &o->dfd);
  rc = rc ? rc : zllm_tmp_create(o->dfd, base, &o->tmp, &o->fd);
  free(rel_dir);
  return rc;
}

static int restore_put(void *ctx, size_t k, uint64_t off, const uint8_t *p, size_t n)
{
  restore_run *j = ctx;
  int rc = zllm_pwrite_full(j->out[k].fd, p, n, off, j->refs[j->idx[k]].name);
  if (rc == 0 && off > 0 && ar_test_kill_at("restore")) /* a file half written */
    raise(SIGKILL);
  return rc;
}

/* The file matched: it gets its final name (rename replaces whatever is
 * there, a symlink included, without following it).  Else the temporary
 * file goes: never a wrong file left behind. */
static void restore_end(void *ctx, size_t k, int rc)
{
  restore_run *j = ctx;
  const file_ref *f = &j->refs[j->idx[k]];
  out_file *o = &j->out[k];
  const char *base = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
  if (o->fd >= 0 && close(o->fd) < 0 && rc == 0)
    rc = zllm_error_set_errno("%s: close failed", f->name);
  if (rc == 0 && renameat(o->dfd, o->tmp, o->dfd, base) < 0)
    rc = zllm_error_set_errno("%s/%s: cannot rename into place", j->outdir, f->name);
  if (rc < 0 && o->tmp)
    unlinkat(o->dfd, o->tmp, 0);
  if (o->dfd >= 0)
    close(o->dfd);
  free(o->tmp);
  *o = (out_file){-1, -1, NULL};
  if (rc < 0)
    restore_failed(j, zllm_error_last());
}

int zllm_restore(const char *dir, const zllm_restore_opts *o, zllm_read_stats *stats)
{
  zllm_archive *a = NULL;
  file_ref *refs = NULL;
  ar_pipe_file *pipe = NULL;
  size_t n = 0, np = 0, *idx = NULL;
  restore_run j = {.dir = dir, .outdir = o->outdir, .flags = o->flags};
  pthread_mutex_init(&j.mu, NULL);
  int rc = zllm_archive_open(&a, dir, 0);
  /* largest first: a big file gets every thread, then small ones go one per thread */
  rc = rc ? rc : list_files(a, o->repo, o->file, "f.size DESC, r.name, f.path", &refs, &n);
  zllm_archive_close(a);
  if (rc == 0 && n == 0 && o->repo)
    rc = zllm_error_set(ZLLM_ENOTFOUND, "%s: no %s%s%s in the archive", dir, o->repo, o->file ? "/" : "",
                        o->file ? o->file : "");
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (refs[i].skipped)
      report_not_restored(refs[i].repo, refs[i].path, refs[i].note ? refs[i].note : "skipped at ingest");
  rc = rc ? rc : pipe_files(refs, n, &pipe, &idx, &np);
  if (rc == 0 && !(j.out = calloc(np ? np : 1, sizeof *j.out)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < np; k++)
    j.out[k] = (out_file){-1, -1, NULL};
  j.refs = refs;
  j.idx = idx;
  ar_pipe_sink files_sink = {restore_begin, restore_put, restore_end, 0};
  rc = rc ? rc : ar_pipe_run(dir, pipe, np, o->threads, &files_sink, &j, stats);
  if (rc == 0 && j.failed)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %d of %zu files not restored (each named above; the first: %s)", dir,
                        j.failed, n, j.first);
  file_refs_free(refs, n);
  free(pipe);
  free(idx);
  free(j.out);
  pthread_mutex_destroy(&j.mu);
  return rc;
}

int zllm_restore_repo(zllm_archive *a, const char *repo, const char *file, const char *outdir, int flags)
{
  zllm_restore_opts o = {repo, file, outdir, a->threads, flags};
  return zllm_restore(a->dir, &o, NULL);
}

int zllm_restore_all(zllm_archive *a, const char *outdir, int flags)
{
  return zllm_restore_all_threads(a->dir, outdir, 1, flags);
}

int zllm_restore_all_threads(const char *dir, const char *outdir, int threads, int flags)
{
  zllm_restore_opts o = {NULL, NULL, outdir, threads, flags};
  return zllm_restore(dir, &o, NULL);
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

#define CAT_HOLD ((uint64_t)512 << 20) /* a tensor cat-tensor keeps decoded while it checks its key */

/* Every part of tensor t decoded once into dst (t->len bytes), hashed into s. */
static int decode_held(zllm_archive *a, const ar_tensor *t, uint8_t *dst, sink *s)
{
  int rc = 0;
  for (uint64_t part = 0; rc == 0 && t->len && part < ar_nparts(t->len); part++) {
    uint8_t *at = dst + part * ZLLM_PART_BYTES;
    size_t n = ar_part_len(t->len, part);
    if (n == ZLLM_PART_BYTES || part + 1 < ar_nparts(t->len)) {
      rc = ar_tensor_decode_part(a, t->id, part, at, 0);
    } else { /* the last part decodes into a part-sized buffer: dst ends at the tensor's end */
      uint8_t *buf = ar_buf_get(a);
      rc = buf ? ar_tensor_decode_part(a, t->id, part, buf, 0) : ZLLM_ENOMEM;
      if (rc == 0)
        memcpy(at, buf, n);
      ar_buf_put(a, buf);
    }
    rc = rc ? rc : sink_put(s, at, n);
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
   * and checked against its recorded key before a byte is written; up to
   * CAT_HOLD bytes it is kept decoded meanwhile, a larger one is decoded
   * twice (checked, then written) */
  sink check = {NULL, "check", NULL}, s = {out, "stdout", NULL};
  ar_tensor t;
  uint8_t *held = NULL;
  rc = ar_tensor_get(a, id, &t);
  rc = rc ? rc : zllm_xxh128_ctx_new(&check.xxh);
  if (rc == 0 && t.len <= CAT_HOLD && !(held = malloc(t.len ? (size_t)t.len : 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory for a %llu-byte tensor", (unsigned long long)t.len);
  rc = rc ? rc : held ? decode_held(a, &t, held, &check) : put_tensor(a, id, &check);
  rc = rc ? rc : check_tensor_key(a, id, &check, want);
  if (rc == 0 && held)
    rc = out && t.len && fwrite(held, 1, (size_t)t.len, out) != t.len ? zllm_error_set_errno("stdout: write failed") : 0;
  else if (rc == 0)
    rc = put_tensor(a, id, &s);
  free(held);
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

typedef struct {
  FILE *report;
  int bad;
} verify_run;

static void verify_end(void *ctx, size_t k, int rc)
{
  verify_run *v = ctx;
  (void)k;
  if (rc < 0) {
    fprintf(v->report, "verify: %s\n", zllm_error_last());
    v->bad++;
  }
}

/* Every file decoded through the read pipeline (a->threads decoders and
 * the hash thread), each proved by its SHA-256; what fails is reported. */
static int verify_files(zllm_archive *a, FILE *report, uint64_t *files, int *bad)
{
  file_ref *refs = NULL;
  ar_pipe_file *pipe = NULL;
  size_t n = 0, np = 0, *idx = NULL;
  verify_run v = {report, 0};
  ar_pipe_sink check_sink = {NULL, NULL, verify_end, 0};
  int rc = list_files(a, NULL, NULL, "r.name, f.path", &refs, &n);
  rc = rc ? rc : pipe_files(refs, n, &pipe, &idx, &np);
  rc = rc ? rc : ar_pipe_run(a->dir, pipe, np, a->threads, &check_sink, &v, NULL);
  *files = np;
  *bad += v.bad;
  file_refs_free(refs, n);
  free(pipe);
  free(idx);
  return rc;
}

int zllm_archive_verify(zllm_archive *a, FILE *report)
{
  sqlite3_stmt *st = NULL;
  int bad = 0, rc = 0;
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
  rc = rc ? rc : verify_files(a, report, &files, &bad);
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

