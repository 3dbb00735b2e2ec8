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
#include "zllm/analyze.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/log.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

#define HEADER_LEVEL 3 /* headers, configs, opaque files: small or generic data */

/* What each profile does (see zllm/archive.h). */
typedef struct {
  const char *name;
  int file_dedup, tensor_dedup, parse_safetensors;
  int bitx;              /* use a base when there is one */
  int casts;             /* a base in another float dtype predicts through the cast */
  int base_check;        /* drop a base whose XOR would not be smaller (sampled) */
  ar_layout delta_layout, solo_layout;
  int plane_level;
} profile_rules;

static const profile_rules profiles[] = {
  [ZLLM_PROFILE_ZLLM] = {"zllm", 1, 1, 1, 1, 1, 1, AR_LAYOUT_FIELD, AR_LAYOUT_FIELD, 1},
  [ZLLM_PROFILE_ZIPLLM] = {"zipllm", 1, 1, 1, 1, 0, 0, AR_LAYOUT_U16, AR_LAYOUT_BYTES, 3},
  [ZLLM_PROFILE_ZIPNN] = {"zipnn", 0, 0, 1, 0, 0, 0, AR_LAYOUT_FIELD, AR_LAYOUT_FIELD, 1},
  [ZLLM_PROFILE_ZSTD] = {"zstd", 0, 0, 0, 0, 0, 0, AR_LAYOUT_BYTES, AR_LAYOUT_BYTES, 3},
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

typedef struct {
  zllm_archive *a;
  const zllm_pack_options *o;
  const profile_rules *p;
  zllm_pack_stats *s;
  /* counts wait for their commit: a file's join its repo's when the file is
   * kept, a repo's join *s when it commits (problems count at once) */
  zllm_pack_stats file_counts, repo_counts;
  zllm_source *src;
  char **ids;
  size_t n;
  char **base;  /* per repo: chosen base repo, or NULL */
  char **why;   /* per repo: where the base came from */
  int *state;   /* 0 new, 1 in progress, 2 done */
  char *judged; /* per repo: the bits gave a verdict */
  int cards_judge_all;
  char *skip;   /* per repo: not in o->only */
  zllm_buf *order; /* dry run: ids in visiting order, NUL-separated */
} ingest_ctx;

/* ---- helpers -------------------------------------------------------------- */

static int step_done(zllm_archive *a, sqlite3_stmt *st, const char *what)
{
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ar_sql_error(a, what);
  sqlite3_finalize(st);
  return rc;
}

static int repo_in_archive(zllm_archive *a, const char *name, int *yes)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT 1 FROM repos WHERE name = ?");
  if (rc == 0) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    *yes = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return rc;
}

static long find_id(const ingest_ctx *c, const char *name)
{
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->ids[i], name) == 0)
      return (long)i;
  return -1;
}

/* ---- bases: --families, else the model card -------------------------------- */

/* The column named "base" in a header line, else the second column. */
static int base_column(const char *header)
{
  int col = 0;
  for (const char *p = header; p; p = strchr(p, '\t'), p = p ? p + 1 : NULL, col++)
    if (strncmp(p, "base", 4) == 0 && (p[4] == '\t' || p[4] == '\0' || p[4] == '\r'))
      return col;
  return 1;
}

static char *tsv_field(char *line, int col)
{
  for (int i = 0; line && i < col; i++) {
    line = strchr(line, '\t');
    line = line ? line + 1 : NULL;
  }
  if (line)
    line[strcspn(line, "\t\r")] = '\0';
  return line;
}

static int set_base(ingest_ctx *c, size_t i, const char *base, const char *why)
{
  free(c->base[i]);
  free(c->why[i]);
  c->base[i] = strdup(base);
  c->why[i] = strdup(why);
  return c->base[i] && c->why[i] ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
}

static int load_families(ingest_ctx *c)
{
  char *text = NULL;
  size_t len = 0;
  int col = 1;
  int rc = zllm_read_small_file(&text, &len, c->o->families, (size_t)256 << 20);
  for (char *line = text, *next; rc == 0 && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    if (strncmp(line, "repo\t", 5) == 0) {
      col = base_column(line);
      continue;
    }
    if (line[0] == '#' || !strchr(line, '\t'))
      continue;
    char *base = tsv_field(line, col);
    line[strcspn(line, "\t")] = '\0';
    long i = find_id(c, line);
    if (i >= 0 && base && base[0] && strcmp(base, "-") != 0 && strcmp(base, line) != 0)
      rc = set_base(c, (size_t)i, base, "families file");
  }
  free(text);
  return rc;
}

static int table_bases(ingest_ctx *c, const zllm_family_table *t)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->n; i++) {
    const zllm_family_row *r = zllm_family_table_find(t, c->ids[i]);
    char why[1200];
    if (!r)
      continue;
    snprintf(why, sizeof why, "bits (%s): %s", zllm_decision_name(r->decision), r->reason);
    rc = r->base ? set_base(c, i, r->base, why) : 0;
    c->judged[i] = r->decision != ZLLM_DECIDE_NONE;
  }
  return rc;
}

/* Bases by bitwise similarity; a failure leaves the cards to decide. */
static int cluster_bases(ingest_ctx *c)
{
  zllm_family_table *t = NULL;
  zllm_cluster_options co = ZLLM_CLUSTER_OPTIONS_INIT;
  if (c->o->table)
    return table_bases(c, c->o->table);
  if (zllm_cluster_hub(&t, c->o->hub, &co) < 0) {
    if (zllm_error_last_code() == ZLLM_ENOMEM)
      return ZLLM_ENOMEM;
    ZLLM_WARN("pack: clustering failed, using the model cards: %s", zllm_error_last());
    c->cards_judge_all = 1;
    return 0;
  }
  int rc = table_bases(c, t);
  zllm_family_table_free(t);
  return rc;
}

/* The card's base when nothing else chose one.  After clustering, only a
 * base outside the snapshot (already archived) is taken on the card's word:
 * the bits could not judge it, and the sampled entropy check still can. */
static int card_bases(ingest_ctx *c)
{
  for (size_t i = 0; i < c->n; i++) {
    zllm_repo *r = NULL;
    if (c->base[i] || zllm_repo_load(&r, c->src, c->ids[i]) < 0)
      continue;
    if (r->card && r->card->nbase > 0) {
      const char *b = r->card->base_models[0];
      int archived = 0, in_hub = find_id(c, b) >= 0;
      char why[512];
      if (c->a)
        repo_in_archive(c->a, b, &archived);
      int usable = strcmp(b, c->ids[i]) != 0 && (in_hub || archived);
      if (usable && in_hub && c->judged[i] && !c->cards_judge_all)
        usable = 0; /* the bits rejected it: keep their verdict */
      if (usable) {
        c->base[i] = strdup(b);
        c->why[i] = strdup("model card");
      } else if (!c->why[i]) {
        snprintf(why, sizeof why, "model card names %s: not in the snapshot or the archive", b);
        c->why[i] = strdup(why);
      }
    }
    zllm_repo_free(r);
  }
  return 0;
}

/* ---- files ------------------------------------------------------------------ */

/* The hashes of exactly the bytes stored for a file, in file order, fed by
 * the reads that store them: the SHA-256 recorded is this one, and the
 * XXH3-128 must equal the first read's (the file's key and its tensors'
 * keys), or the file changed in between and is not committed. */
typedef struct {
  zllm_sha256_ctx *sha;
  zllm_xxh128_ctx *xxh;
} stored_hash;

static int stored_hash_new(stored_hash *h)
{
  int rc = zllm_sha256_ctx_new(&h->sha);
  return rc ? rc : zllm_xxh128_ctx_new(&h->xxh);
}

static void stored_hash_free(stored_hash *h)
{
  zllm_sha256_ctx_free(h->sha);
  zllm_xxh128_ctx_free(h->xxh);
}

static int stored_hash_reset(stored_hash *h)
{
  zllm_xxh128_ctx_reset(h->xxh);
  return zllm_sha256_ctx_reset(h->sha);
}

static int stored_hash_feed(stored_hash *h, const void *p, size_t n)
{
  zllm_xxh128_ctx_update(h->xxh, p, n);
  return zllm_sha256_ctx_update(h->sha, p, n);
}

static int stored_hash_copy(stored_hash *dst, const stored_hash *src)
{
  zllm_xxh128_ctx_copy(dst->xxh, src->xxh);
  return zllm_sha256_ctx_copy(dst->sha, src->sha);
}

typedef struct {
  int64_t repo_row;
  const char *repo;
  const char *base; /* base repo name or NULL */
  uint64_t stored;  /* bytes stored for the current file */
  stored_hash kept, tentative; /* tentative: a dedup comparison's feed, adopted on a hit */
} repo_job;

/* An earlier file with the same content (key hit confirmed by SHA-256). */
static int find_dup_file(zllm_archive *a, const uint8_t key[16], const zllm_sha256 *sha, int64_t *dup)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, sha256, method, dup_of FROM files WHERE key = ? AND method != 'skipped'");
  *dup = 0;
  if (rc < 0)
    return rc;
  sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
  while (rc == 0 && !*dup && sqlite3_step(st) == SQLITE_ROW) {
    const void *h = NULL;
    const char *method = NULL;
    rc = ar_col_blob(a, st, 1, 32, &h);
    rc = rc ? rc : ar_col_text(a, st, 2, &method);
    if (rc < 0 || memcmp(h, sha->b, 32) != 0)
      continue; /* a key collision: different bytes, never merged */
    rc = strcmp(method, "dup") == 0 ? ar_col_int(a, st, 3, dup) : ar_col_int(a, st, 0, dup);
  }
  sqlite3_finalize(st);
  return rc;
}

static int insert_file(zllm_archive *a, const repo_job *j, const zllm_hub_file *f, const zllm_sha256 *sha,
                       const uint8_t key[16], const char *method, int64_t dup_of, int64_t header_blob,
                       const char *note, int64_t *id)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "INSERT INTO files(repo, path, size, sha256, key, method, dup_of, header_blob, note)"
                      " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, j->repo_row);
  sqlite3_bind_text(st, 2, f->path, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)f->size);
  sqlite3_bind_blob(st, 4, sha->b, 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 5, key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 6, method, -1, SQLITE_STATIC);
  dup_of ? sqlite3_bind_int64(st, 7, dup_of) : sqlite3_bind_null(st, 7);
  header_blob ? sqlite3_bind_int64(st, 8, header_blob) : sqlite3_bind_null(st, 8);
  note ? sqlite3_bind_text(st, 9, note, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 9);
  rc = step_done(a, st, "recording a file");
  *id = sqlite3_last_insert_rowid(a->db);
  return rc;
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
  return step_done(a, st, "recording stored bytes");
}

/* Opaque files: zstd stream containers, one per 64 MiB piece. */
static int store_pieces(zllm_archive *a, int fd, const char *name, uint64_t size, int64_t file_row,
                        stored_hash *kept, uint64_t *stored)
{
  uint8_t *buf = malloc(ZLLM_PIECE_BYTES);
  int rc = buf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (uint64_t off = 0, seq = 0; rc == 0 && (off < size || (size == 0 && seq == 0)); off += ZLLM_PIECE_BYTES, seq++) {
    size_t n = size - off < ZLLM_PIECE_BYTES ? (size_t)(size - off) : ZLLM_PIECE_BYTES;
    int64_t blob = 0;
    sqlite3_stmt *st = NULL;
    rc = zllm_pread_full(fd, buf, n, off, name);
    rc = rc ? rc : stored_hash_feed(kept, buf, n);
    rc = rc ? rc : ar_stream_write(a, buf, n, HEADER_LEVEL, 0, &blob, stored);
    rc = rc ? rc : ar_prepare(a, &st, "INSERT INTO pieces(file, seq, len, blob) VALUES(?, ?, ?, ?)");
    if (rc == 0) {
      sqlite3_bind_int64(st, 1, file_row);
      sqlite3_bind_int64(st, 2, (sqlite3_int64)seq);
      sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
      sqlite3_bind_int64(st, 4, blob);
      rc = step_done(a, st, "recording a piece");
    }
  }
  free(buf);
  return rc;
}

/* ---- tensors ---------------------------------------------------------------- */

/* Bytes [part * ZLLM_PART_BYTES, ...) of tensor i, read from the source. */
static int read_part(int fd, const zllm_st_header *h, size_t i, uint64_t part, uint8_t *dst, size_t *n_out)
{
  const zllm_st_tensor *t = &h->tensors[i];
  *n_out = ar_part_len(t->end - t->begin, part);
  return zllm_st_read_tensor(h, fd, i, part * ZLLM_PART_BYTES, dst, *n_out);
}

/* Byte comparison of a candidate's decoded parts with this tensor's bytes.
 * The bytes read are fed to j->tentative (a copy of the stored-bytes hashes),
 * adopted by the caller when the candidate is taken. */
static int same_tensor(zllm_archive *a, repo_job *j, int64_t cand, int fd, const zllm_st_header *h, size_t i,
                       int *same)
{
  uint64_t len = h->tensors[i].end - h->tensors[i].begin;
  uint8_t *mine = ar_buf_get(a), *theirs = ar_buf_get(a);
  int rc = mine && theirs ? 0 : ZLLM_ENOMEM;
  rc = rc ? rc : stored_hash_copy(&j->tentative, &j->kept);
  *same = 1;
  for (uint64_t p = 0; rc == 0 && *same && len && p < ar_nparts(len); p++) {
    size_t n = 0;
    rc = read_part(fd, h, i, p, mine, &n);
    rc = rc ? rc : ar_tensor_decode_part(a, cand, p, theirs, 0);
    rc = rc ? rc : stored_hash_feed(&j->tentative, mine, n);
    *same = rc == 0 && memcmp(mine, theirs, n) == 0;
  }
  ar_buf_put(a, mine);
  ar_buf_put(a, theirs);
  return rc;
}

static int find_dup_tensor(zllm_archive *a, repo_job *j, const uint8_t key[16], int fd, const zllm_st_header *h,
                           size_t i, int64_t *dup, int *depth)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, depth FROM tensors WHERE key = ? AND len = ? AND dtype = ? AND method != 'dup'");
  *dup = 0;
  if (rc < 0)
    return rc;
  const zllm_st_tensor *t = &h->tensors[i];
  sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)(t->end - t->begin));
  sqlite3_bind_text(st, 3, zllm_dtype_get(t->dtype)->name, -1, SQLITE_STATIC);
  while (rc == 0 && !*dup && sqlite3_step(st) == SQLITE_ROW) {
    int64_t cand = 0, d = 0;
    int same = 0;
    rc = ar_col_int(a, st, 0, &cand);
    rc = rc ? rc : ar_col_int(a, st, 1, &d);
    rc = rc ? rc : same_tensor(a, j, cand, fd, h, i, &same);
    if (rc == 0 && same) {
      *dup = cand;
      *depth = d < 0 || d > ZLLM_MAX_CHAIN ? ZLLM_MAX_CHAIN : (int)d;
      rc = stored_hash_copy(&j->kept, &j->tentative);
    }
  }
  sqlite3_finalize(st);
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
  sqlite3_finalize(st);
  return rc;
}

static int insert_tensor(zllm_archive *a, int64_t file_row, size_t idx, const zllm_st_tensor *t, const char *shape,
                         const uint8_t key[16], const char *method, ar_layout layout, int64_t dup_of, int64_t base,
                         int depth, const char *note, int64_t *id)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st,
                      "INSERT INTO tensors(file, idx, name, dtype, shape, nelem, len, key, method, dup_of, base, depth,"
                      " note, layout) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, file_row);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)idx);
  sqlite3_bind_text(st, 3, t->name, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, zllm_dtype_get(t->dtype)->name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, shape, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 6, (sqlite3_int64)t->nelem);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)(t->end - t->begin));
  sqlite3_bind_blob(st, 8, key, 16, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 9, method, -1, SQLITE_STATIC);
  dup_of ? sqlite3_bind_int64(st, 10, dup_of) : sqlite3_bind_null(st, 10);
  base ? sqlite3_bind_int64(st, 11, base) : sqlite3_bind_null(st, 11);
  sqlite3_bind_int(st, 12, depth);
  note ? sqlite3_bind_text(st, 13, note, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 13);
  sqlite3_bind_text(st, 14, ar_layout_name(layout), -1, SQLITE_STATIC);
  rc = step_done(a, st, "recording a tensor");
  *id = sqlite3_last_insert_rowid(a->db);
  return rc;
}

/* The base's bytes for part `part` of a tensor of dtype `dt` (n elements). */
static int base_part(zllm_archive *a, int64_t base, zllm_dtype dt, uint64_t part, size_t n, uint8_t *dst)
{
  ar_tensor bt;
  int rc = ar_tensor_get(a, base, &bt);
  if (rc == 0 && bt.dtype == dt)
    return ar_tensor_decode_part(a, base, part, dst, 0);
  return rc ? rc : ar_base_as(a, &bt, dt, part * ZLLM_PART_BYTES / zllm_dtype_get(dt)->size, n, dst, 0);
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
  return step_done(a, st, "recording a solo fallback");
}

/* Planes of every part, XORed with the base's same part for BitX. */
static int store_planes(ingest_ctx *c, repo_job *j, int64_t id, int fd, const zllm_st_header *h, size_t i,
                        int64_t base, ar_layout layout, uint64_t *stored, int *dropped)
{
  zllm_archive *a = c->a;
  const zllm_st_tensor *t = &h->tensors[i];
  uint64_t len = t->end - t->begin;
  zllm_dtype view = ar_view_dtype(t->dtype, layout, len);
  size_t es = zllm_dtype_get(view)->size;
  int np = zllm_bitx_planes(view);
  uint8_t *src = ar_buf_get(a), *bbuf = base ? ar_buf_get(a) : NULL;
  uint8_t *planes[ZLLM_BITX_MAX_PLANES] = {0};
  int rc = src && (!base || bbuf) ? 0 : ZLLM_ENOMEM;
  for (int p = 0; rc == 0 && p < np; p++) /* a plane never exceeds a part */
    if (!(planes[p] = ar_buf_get(a)))
      rc = ZLLM_ENOMEM;
  for (uint64_t part = 0; rc == 0 && part < ar_nparts(len); part++) {
    size_t n = 0;
    rc = read_part(fd, h, i, part, src, &n);
    rc = rc ? rc : stored_hash_feed(&j->kept, src, n);
    if (rc == 0 && base)
      rc = base_part(a, base, t->dtype, part, n / es, bbuf);
    /* a base that does not predict the tensor (a wrong card, unrelated
     * weights) would cost more than the tensor alone */
    if (rc == 0 && base && part == 0 && c->p->base_check &&
        plane_bits(view, src, bbuf, n / es) >= 0.98 * plane_bits(view, src, NULL, n / es)) {
      rc = drop_base(a, id, "base does not predict this tensor (sampled plane entropy): stored solo");
      base = 0;
      *dropped = 1;
    }
    if (rc == 0)
      zllm_bitx_split(view, src, base ? bbuf : NULL, n / es, planes);
    int64_t blob = 0;
    sqlite3_stmt *st = NULL;
    rc = rc ? rc : ar_part_write(a, planes, np, zllm_bitx_plane_len(view, n / es), c->p->plane_level,
                                 layout == AR_LAYOUT_FIELD && c->p->base_check, &blob, stored);
    rc = rc ? rc : ar_prepare(a, &st, "INSERT INTO parts(tensor, part, blob) VALUES(?, ?, ?)");
    if (rc == 0) {
      sqlite3_bind_int64(st, 1, id);
      sqlite3_bind_int64(st, 2, (sqlite3_int64)part);
      sqlite3_bind_int64(st, 3, blob);
      rc = step_done(a, st, "recording a tensor part");
    }
  }
  for (int p = 0; p < np; p++)
    ar_buf_put(a, planes[p]);
  ar_buf_put(a, src);
  ar_buf_put(a, bbuf);
  return rc;
}

static int ingest_tensor(ingest_ctx *c, repo_job *j, int64_t file_row, int fd, const zllm_st_header *h, size_t i,
                         const zllm_xxh128 *x)
{
  const zllm_st_tensor *t = &h->tensors[i];
  char shape[1024];
  uint8_t key[16];
  int64_t dup = 0, base = 0, id = 0;
  int depth = 0, rc = 0;
  uint64_t stored = 0;
  zllm_st_shape_str(shape, sizeof shape, t);
  ar_hash_key(c->a, x->b, key);
  if (c->p->tensor_dedup)
    rc = find_dup_tensor(c->a, j, key, fd, h, i, &dup, &depth);
  if (rc == 0 && dup) {
    c->file_counts.tensor_dups++;
    return insert_tensor(c->a, file_row, i, t, shape, key, "dup", AR_LAYOUT_FIELD, dup, 0, depth, NULL, &id);
  }
  if (rc == 0 && c->p->bitx)
    rc = find_base_tensor(c->a, j->base, t, shape, c->p->casts, &base, &depth);
  const char *note = NULL;
  if (rc == 0 && c->p->bitx && j->base && !base)
    note = "base has no tensor of this name, dtype and shape: stored solo";
  if (rc == 0 && base && depth + 1 > ZLLM_MAX_CHAIN) {
    base = 0;
    note = "base chain too deep: stored solo";
  }
  ar_layout layout = base ? c->p->delta_layout : c->p->solo_layout;
  rc = rc ? rc : insert_tensor(c->a, file_row, i, t, shape, key, base ? "bitx" : "solo", layout, 0, base,
                               base ? depth + 1 : 0, note, &id);
  int dropped = 0;
  rc = rc ? rc : store_planes(c, j, id, fd, h, i, base, layout, &stored, &dropped);
  rc = rc ? rc : set_stored(c->a, "tensors", id, stored);
  base && !dropped ? c->file_counts.tensors_bitx++ : c->file_counts.tensors_solo++;
  j->stored += stored;
  return rc;
}

/* Test hook: ZLLM_TEST_CHANGE_AFTER_HASH=<part of "repo/path"> rewrites one byte
 * of that file in place (same size, mtime put back) after it was hashed and
 * before it is stored: a writer racing the pack that the listing's identity
 * cannot see. */
static void test_change_after_hash(const zllm_hub_file *f, const char *name)
{
  const char *at = getenv("ZLLM_TEST_CHANGE_AFTER_HASH");
  struct stat st;
  unsigned char byte;
  int fd = at && strstr(name, at) ? open(f->local_path, O_RDWR | O_CLOEXEC) : -1;
  if (fd < 0)
    return;
  off_t mid = (off_t)(f->size / 2);
  if (f->size && fstat(fd, &st) == 0 && pread(fd, &byte, 1, mid) == 1) {
    byte ^= 0x5a;
    if (pwrite(fd, &byte, 1, mid) == 1) {
      struct timespec times[2] = {st.st_atim, st.st_mtim};
      futimens(fd, times);
    }
  }
  close(fd);
}

/* The stored bytes are the first read's (same XXH3-128), and the SHA-256
 * recorded is theirs: else the file changed between the reads, and nothing
 * of it may be committed. */
static int record_stored_hash(zllm_archive *a, repo_job *j, int64_t row, const zllm_xxh128 *first, const char *name)
{
  zllm_sha256 sha;
  zllm_xxh128 got;
  sqlite3_stmt *st = NULL;
  zllm_xxh128_ctx_final(j->kept.xxh, &got);
  int rc = zllm_sha256_ctx_final(j->kept.sha, &sha);
  if (rc == 0 && memcmp(got.b, first->b, sizeof got.b) != 0)
    return zllm_error_set(ZLLM_ECHANGED, "%s: changed while it was read (the stored bytes differ from the first read)",
                          name);
  rc = rc ? rc : ar_prepare(a, &st, "UPDATE files SET sha256 = ? WHERE id = ?");
  if (rc == 0) {
    sqlite3_bind_blob(st, 1, sha.b, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, row);
    rc = step_done(a, st, "recording a file's SHA-256");
  }
  return rc;
}

/* File dedup: a key hit is only a candidate; its SHA-256 must be this
 * file's, which takes one more read (only for candidates: re-uploads). */
static int file_dup_of(ingest_ctx *c, int fd, const char *name, const uint8_t key[16], const zllm_xxh128 *first,
                       zllm_sha256 *sha, int64_t *dup)
{
  sqlite3_stmt *st = NULL;
  zllm_xxh128 again;
  int rc = ar_prepare(c->a, &st, "SELECT 1 FROM files WHERE key = ? AND method != 'skipped' LIMIT 1"), hit = 0;
  *dup = 0;
  if (rc == 0) {
    sqlite3_bind_blob(st, 1, key, 16, SQLITE_TRANSIENT);
    hit = sqlite3_step(st) == SQLITE_ROW;
  }
  sqlite3_finalize(st);
  if (rc < 0 || !hit)
    return rc;
  rc = zllm_analyze_hash_fd(fd, name, NULL, sha, &again, NULL);
  if (rc == 0 && memcmp(again.b, first->b, sizeof again.b) != 0)
    return zllm_error_set(ZLLM_ECHANGED, "%s: changed while it was read (its hash differs between two reads)", name);
  return rc ? rc : find_dup_file(c->a, key, sha, dup);
}

static int ingest_file(ingest_ctx *c, repo_job *j, const zllm_hub_file *f)
{
  zllm_st_header *h = NULL;
  zllm_xxh128 fx, *tx = NULL;
  static const zllm_sha256 pending; /* until the stored bytes' own hash is recorded */
  zllm_sha256 sha;
  uint8_t key[16];
  char name[1200], note[1024] = "";
  int64_t dup = 0, row = 0, hblob = 0;
  const char *unreadable = getenv("ZLLM_TEST_UNREADABLE"); /* fault injection for tests */
  int fd = -1, rc = 0;
  snprintf(name, sizeof name, "%s/%s", j->repo, f->path);
  j->stored = 0;
  /* one rule for names at ingest and restore: what is stored can be written back */
  if ((rc = zllm_path_check_relative(f->path, name)) < 0)
    return zllm_error_set(rc, "cannot be restored: %s", zllm_error_last());
  if (unreadable && strstr(f->path, unreadable))
    return zllm_error_set(ZLLM_EIO, "%s: cannot open: Permission denied (test)", name);
  if ((rc = stored_hash_reset(&j->kept)) < 0 || (rc = zllm_hub_file_open(f, j->repo, &fd)) < 0)
    return rc;
  /* a malformed safetensors file is kept as opaque bytes, with the reason */
  if (f->kind == ZLLM_FILE_SAFETENSORS && c->p->parse_safetensors && zllm_st_read_header(&h, fd, name) < 0) {
    snprintf(note, sizeof note, "stored opaque: %s", zllm_error_last());
    ZLLM_WARN("%s", note);
    c->s->problems++;
  }
  if (h && !(tx = calloc(h->ntensors ? h->ntensors : 1, sizeof *tx)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  /* the first read: the keys (no SHA-256: the one recorded comes from the bytes stored) */
  rc = rc ? rc : zllm_analyze_hash_fd(fd, name, h, NULL, &fx, tx);
  test_change_after_hash(f, name);
  if (rc == 0)
    ar_hash_key(c->a, fx.b, key);
  if (rc == 0 && c->p->file_dedup)
    rc = file_dup_of(c, fd, name, key, &fx, &sha, &dup);
  if (rc == 0 && dup) {
    c->file_counts.file_dups++;
    rc = insert_file(c->a, j, f, &sha, key, "dup", dup, 0, NULL, &row);
  } else if (rc == 0 && h) {
    rc = stored_hash_feed(&j->kept, h->raw, (size_t)h->data_start);
    rc = rc ? rc : ar_stream_write(c->a, h->raw, (size_t)h->data_start, HEADER_LEVEL, 0, &hblob, &j->stored);
    rc = rc ? rc : insert_file(c->a, j, f, &pending, key, "safetensors", 0, hblob, NULL, &row);
    for (size_t i = 0; rc == 0 && i < h->ntensors; i++)
      rc = ingest_tensor(c, j, row, fd, h, i, &tx[i]);
    rc = rc ? rc : record_stored_hash(c->a, j, row, &fx, name);
  } else if (rc == 0) {
    rc = insert_file(c->a, j, f, &pending, key, "opaque", 0, 0, note[0] ? note : NULL, &row);
    rc = rc ? rc : store_pieces(c->a, fd, name, f->size, row, &j->kept, &j->stored);
    rc = rc ? rc : record_stored_hash(c->a, j, row, &fx, name);
    c->file_counts.opaque_files++;
  }
  /* the listing's size and mtime still hold after the last read */
  rc = rc ? rc : zllm_hub_file_check_unchanged(f, fd, name);
  rc = rc ? rc : set_stored(c->a, "files", row, j->stored);
  if (rc == 0) {
    c->file_counts.files++;
    c->file_counts.bytes_in += f->size;
    c->file_counts.bytes_stored += j->stored;
  }
  free(tx);
  zllm_st_header_free(h);
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

static int insert_repo(zllm_archive *a, const zllm_repo *r, const char *base, const char *why, int64_t *row)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "INSERT INTO repos(name, revision, base, base_reason) VALUES(?, ?, ?, ?)");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
  r->revision ? sqlite3_bind_text(st, 2, r->revision, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 2);
  base ? sqlite3_bind_text(st, 3, base, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 3);
  why ? sqlite3_bind_text(st, 4, why, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 4);
  rc = step_done(a, st, "recording a repo");
  *row = sqlite3_last_insert_rowid(a->db);
  return rc;
}

static int ingest_repo(ingest_ctx *c, size_t i)
{
  zllm_repo *r = NULL;
  repo_job j = {0, c->ids[i], c->base[i], 0, {NULL, NULL}, {NULL, NULL}};
  int rc = zllm_repo_load(&r, c->src, c->ids[i]);
  rc = rc ? rc : stored_hash_new(&j.kept);
  rc = rc ? rc : stored_hash_new(&j.tentative);
  if (rc < 0)
    goto done;
  memset(&c->repo_counts, 0, sizeof c->repo_counts);
  rc = ar_begin(c->a);
  rc = rc ? rc : insert_repo(c->a, r, c->base[i], c->why[i], &j.repo_row);
  for (size_t f = 0; rc == 0 && f < r->nfiles; f++)
    rc = ingest_file_guarded(c, &j, &r->files[f]);
  rc = rc ? rc : ar_commit(c->a);
  if (rc < 0) {
    ar_rollback(c->a);
  } else {
    add_counts(c->s, &c->repo_counts);
    c->s->repos++;
  }
done:
  stored_hash_free(&j.kept);
  stored_hash_free(&j.tentative);
  zllm_repo_free(r);
  return rc;
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
  if (c->skip && c->skip[i]) { /* another share's repo: its packer stores it */
    c->state[i] = 2;
    return 0;
  }
  c->state[i] = 1;
  long b = c->base[i] ? find_id(c, c->base[i]) : -1;
  int rc = b >= 0 ? visit(c, (size_t)b, depth + 1) : 0;
  int have = 0;
  if (rc == 0 && c->order) {
    rc = zllm_buf_append(c->order, c->ids[i], strlen(c->ids[i]) + 1);
    c->state[i] = 2;
    return rc;
  }
  if (rc == 0)
    rc = repo_in_archive(c->a, c->ids[i], &have);
  if (rc == 0 && !have) {
    if (c->o->verbose)
      ZLLM_INFO("pack: %s%s%s", c->ids[i], c->base[i] ? " (base " : "", c->base[i] ? c->base[i] : "");
    if (ingest_repo(c, i) < 0) {
      if (zllm_error_last_code() == ZLLM_ENOMEM)
        return ZLLM_ENOMEM;
      ZLLM_ERR("pack: %s skipped: %s", c->ids[i], zllm_error_last());
      c->s->repos_skipped++;
      c->s->problems++;
    }
  }
  c->state[i] = 2;
  return rc;
}

static int mark_only(ingest_ctx *c)
{
  if (!c->o->only)
    return 0;
  if (!(c->skip = malloc(c->n + 1)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  memset(c->skip, 1, c->n + 1);
  for (size_t k = 0; k < c->o->nonly; k++) {
    long i = find_id(c, c->o->only[k]);
    if (i >= 0)
      c->skip[i] = 0;
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

static int pack_run(zllm_archive *a, const zllm_pack_options *o, zllm_pack_stats *stats, zllm_buf *order)
{
  ingest_ctx c = {.a = a, .o = o, .s = stats, .p = &profiles[o->profile], .order = order};
  memset(stats, 0, sizeof *stats);
  int rc = zllm_source_open_local(&c.src, o->hub);
  rc = rc ? rc : zllm_source_list_repos(c.src, &c.ids, &c.n);
  if (rc == 0 && (!(c.base = calloc(c.n + 1, sizeof *c.base)) || !(c.why = calloc(c.n + 1, sizeof *c.why)) ||
                  !(c.state = calloc(c.n + 1, sizeof *c.state)) || !(c.judged = calloc(c.n + 1, 1))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  c.cards_judge_all = o->bases == ZLLM_BASES_CARDS || o->families;
  if (rc == 0 && o->families)
    rc = load_families(&c);
  else if (rc == 0 && o->bases == ZLLM_BASES_CLUSTER && c.p->bitx)
    rc = cluster_bases(&c);
  rc = rc ? rc : card_bases(&c);
  rc = rc ? rc : mark_only(&c);
  for (size_t i = 0; rc == 0 && i < c.n; i++)
    rc = visit(&c, i, 0);
  zllm_strv_free(c.base, c.n);
  zllm_strv_free(c.why, c.n);
  zllm_strv_free(c.ids, c.n);
  free(c.state);
  free(c.judged);
  free(c.skip);
  zllm_source_free(c.src);
  return rc;
}
