/* Reading archived files a piece at a time, at any offset: what a server
 * needs to stream a file it never holds whole, and to answer a Range
 * request by decoding only the tensors (and parts) it overlaps.
 *
 * A file is laid out at open as segments in file order: the header (the
 * length word and the JSON of a safetensors file), then each tensor (read
 * in parts of ZLLM_PART_BYTES); an opaque file is its pieces.  A segment
 * is a catalog row, never a claimed size cut up: what the layout holds
 * grows with the rows the catalog really has, whatever sizes they claim.
 * One window (a part, a piece or the header) is decoded at a time and kept
 * until a read leaves it.  Bytes read in order from the
 * start are hashed as they are decoded; the last segment is checked against
 * the recorded SHA-256 before any of it is handed out, so a reader of the
 * whole file never gets a wrong file with a clean end.  Each tensor whose
 * parts are decoded in order is checked against its recorded XXH3-128 key
 * the same way, so a Range read that covers whole tensors is proven too. */
#include <stdlib.h>
#include <string.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/safetensors.h"

typedef enum { SEG_HEADER, SEG_TENSOR, SEG_PIECE } seg_kind;

typedef struct {
  uint64_t off, len;
  int64_t id;      /* blob (header, piece) or tensor */
  uint64_t nparts; /* SEG_TENSOR: its parts; else 1 */
  uint8_t key[16]; /* SEG_TENSOR: the tensor's key, as recorded */
  seg_kind kind;
} segment;

struct zllm_file_reader {
  zllm_archive *a;     /* borrowed */
  char *name;          /* repo/path, for messages */
  uint64_t size;
  uint8_t sha256[32];  /* recorded at ingest */
  segment *segs;
  size_t nsegs;
  size_t cur;          /* the decoded window's segment, or nsegs when none */
  uint64_t cur_part;   /* and its part (0 but in a tensor) */
  uint64_t win_off, win_len; /* the window's bytes in the file */
  size_t next;         /* ar_reader_take_block's next segment */
  uint64_t next_part;  /* and part */
  uint8_t *buf;        /* the window's bytes, decoded here (no source) */
  size_t cap;
  const uint8_t *win;  /* the window's bytes: buf, or the source's */
  ar_window win_at;    /* what the window is (held from the source until the next) */
  int win_held;
  uint64_t slice;      /* with a source: windows are slices of at most this many bytes */
  const ar_window_source *src;
  void *src_ctx;
  zllm_sha256_ctx *sha;
  uint64_t hashed;     /* bytes [0, hashed) went into sha, in order */
  int verified;        /* the whole file was hashed and matched */
  int whole;           /* read whole, in order: its SHA-256 proves it, tensors' keys are not checked */
  int random;          /* read here and there: nothing is decoded ahead */
  double t_hash;       /* seconds its SHA-256 took */
  int empty_taken;     /* an empty file's one block was taken */
  zllm_xxh128_ctx *xxh; /* NULL: tensors are not checked by key (a whole-file
                         * reader, proven by the SHA-256 alone) */
  int64_t xxh_tensor;  /* the tensor whose bytes go into xxh (0: none) */
  uint64_t xxh_next;   /* its next byte */
};

static int add_segment(zllm_file_reader *r, size_t *cap, seg_kind kind, int64_t id, uint64_t len)
{
  if (r->nsegs == *cap) {
    size_t ncap = *cap ? 2 * *cap : 64;
    segment *n = realloc(r->segs, ncap * sizeof *n);
    if (!n)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    r->segs = n;
    *cap = ncap;
  }
  uint64_t off = r->nsegs ? r->segs[r->nsegs - 1].off + r->segs[r->nsegs - 1].len : 0;
  r->segs[r->nsegs++] = (segment){off, len, id, 1, {0}, kind};
  return 0;
}

/* The file that holds the bytes: a file dup points at the first copy. */
static int storing_file(zllm_archive *a, int64_t id, int64_t *out, char method[16], int64_t *hblob)
{
  for (int depth = 0; depth < 4; depth++) {
    sqlite3_stmt *st = NULL;
    const char *m = NULL;
    int64_t dup = 0;
    int rc = ar_prepare(a, &st, "SELECT method, dup_of, header_blob FROM files WHERE id = ?");
    if (rc < 0)
      return rc;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st) == SQLITE_ROW ? 0
         : zllm_error_set(ZLLM_EFORMAT, "%s: file %lld is not in the catalog", a->dir, (long long)id);
    rc = rc ? rc : ar_col_text(a, st, 0, &m);
    rc = rc ? rc : ar_col_int_or_null(a, st, 1, &dup);
    rc = rc ? rc : ar_col_int_or_null(a, st, 2, hblob);
    if (rc == 0)
      snprintf(method, 16, "%s", m);
    ar_finalize(a, st);
    if (rc < 0)
      return rc;
    if (strcmp(method, "dup") != 0) {
      *out = id;
      return 0;
    }
    id = dup;
  }
  return zllm_error_set(ZLLM_EFORMAT, "%s: file %lld: a chain of file dups", a->dir, (long long)id);
}

static int layout_pieces(zllm_file_reader *r, int64_t file, size_t *cap)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(r->a, &st, "SELECT blob, len FROM pieces WHERE file = ? ORDER BY seq"), step;
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, file);
  while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t blob = 0, len = 0;
    rc = ar_col_int(r->a, st, 0, &blob);
    rc = rc ? rc : ar_col_int(r->a, st, 1, &len);
    if (rc == 0 && (len < 0 || (uint64_t)len > ZLLM_PIECE_BYTES))
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: a piece of %lld bytes", r->a->dir, r->name, (long long)len);
    rc = rc ? rc : add_segment(r, cap, SEG_PIECE, blob, (uint64_t)len);
  }
  ar_finalize(r->a, st);
  return rc;
}

/* The header is what the tensors leave of the file. */
static int layout_tensors(zllm_file_reader *r, int64_t file, int64_t hblob, size_t *cap)
{
  sqlite3_stmt *st = NULL;
  uint64_t total = 0;
  int rc = ar_prepare(r->a, &st, "SELECT coalesce(sum(len), 0) FROM tensors WHERE file = ?");
  int64_t sum = 0;
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, file);
  rc = sqlite3_step(st) == SQLITE_ROW ? ar_col_int(r->a, st, 0, &sum) : ar_sql_error(r->a, "summing tensors");
  ar_finalize(r->a, st);
  total = (uint64_t)sum;
  if (rc == 0 && (sum < 0 || total + 8 > r->size || r->size - total > 8 + ZLLM_ST_HEADER_MAX))
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: its tensors do not fit its size", r->a->dir, r->name);
  rc = rc ? rc : add_segment(r, cap, SEG_HEADER, hblob, r->size - total);
  rc = rc ? rc : ar_prepare(r->a, &st, "SELECT id, len, key FROM tensors WHERE file = ? ORDER BY idx");
  if (rc < 0)
    return rc;
  sqlite3_bind_int64(st, 1, file);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = 0, len = 0;
    const void *key = NULL;
    rc = ar_col_int(r->a, st, 0, &id);
    rc = rc ? rc : ar_col_int(r->a, st, 1, &len);
    rc = rc ? rc : ar_col_blob(r->a, st, 2, 16, &key);
    if (rc == 0 && len < 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: tensor %lld of %lld bytes", r->a->dir, r->name, (long long)id,
                          (long long)len);
    rc = rc ? rc : add_segment(r, cap, SEG_TENSOR, id, (uint64_t)len);
    if (rc == 0) {
      r->segs[r->nsegs - 1].nparts = len > 0 ? ar_nparts((uint64_t)len) : 0;
      memcpy(r->segs[r->nsegs - 1].key, key, 16);
    }
  }
  ar_finalize(r->a, st);
  return rc;
}

static int reader_layout(zllm_file_reader *r, int64_t id)
{
  char method[16] = "";
  int64_t file = 0, hblob = 0;
  size_t cap = 0;
  int rc = storing_file(r->a, id, &file, method, &hblob);
  if (rc < 0)
    return rc;
  if (strcmp(method, "opaque") == 0)
    rc = layout_pieces(r, file, &cap);
  else if (strcmp(method, "safetensors") == 0)
    rc = layout_tensors(r, file, hblob, &cap);
  else
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: stored as '%s', which has no bytes", r->a->dir, r->name, method);
  uint64_t end = r->nsegs ? r->segs[r->nsegs - 1].off + r->segs[r->nsegs - 1].len : 0;
  if (rc == 0 && end != r->size)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: its stored pieces make %llu bytes, not its %llu", r->a->dir, r->name,
                        (unsigned long long)end, (unsigned long long)r->size);
  return rc;
}

/* The file's catalog row: its id, size and recorded SHA-256. */
static int file_row(zllm_file_reader *r, const char *repo, const char *path, int64_t *id)
{
  sqlite3_stmt *st = NULL;
  int64_t size = 0;
  const void *sha = NULL;
  int rc = ar_prepare(r->a, &st, "SELECT f.id, f.size, f.sha256 FROM files f JOIN repos r ON f.repo = r.id"
                                 " WHERE r.name = ?1 AND f.path = ?2 AND f.method != 'skipped'");
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(st) == SQLITE_ROW
           ? 0
           : zllm_error_set(ZLLM_ENOTFOUND, "%s: %s is not in the archive", r->a->dir, r->name);
  rc = rc ? rc : ar_col_int(r->a, st, 0, id);
  rc = rc ? rc : ar_col_int(r->a, st, 1, &size);
  rc = rc ? rc : ar_col_blob(r->a, st, 2, 32, &sha);
  if (rc == 0) {
    memcpy(r->sha256, sha, 32);
    r->size = (uint64_t)size;
  }
  ar_finalize(r->a, st);
  return rc;
}

/* A reader named `name` for a file whose row is known: lays it out and
 * readies the hashes (tensor keys too when check_keys); frees r on failure. */
static int reader_start(zllm_file_reader *r, int64_t id, int check_keys, zllm_file_reader **out)
{
  int rc = reader_layout(r, id);
  rc = rc ? rc : zllm_sha256_ctx_new(&r->sha);
  if (rc == 0 && check_keys)
    rc = zllm_xxh128_ctx_new(&r->xxh);
  if (rc == 0 && r->size == 0) { /* no segment will be decoded: check the empty file now */
    zllm_sha256 got;
    rc = zllm_sha256_ctx_final(r->sha, &got);
    if (rc == 0 && memcmp(got.b, r->sha256, 32) != 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: SHA-256 MISMATCH: recorded for an empty file", r->a->dir, r->name);
    r->verified = rc == 0;
  }
  if (rc < 0) {
    zllm_file_reader_close(r);
    return rc;
  }
  r->cur = r->nsegs;
  *out = r;
  return 0;
}

static zllm_file_reader *reader_new(zllm_archive *a, const char *name)
{
  zllm_file_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->name = strdup(name))) {
    free(r);
    zllm_error_set(ZLLM_ENOMEM, "out of memory");
    return NULL;
  }
  r->a = a;
  return r;
}

int zllm_file_reader_open(zllm_file_reader **out, zllm_archive *a, const char *repo, const char *path)
{
  char name[1400]; /* a repo id (at most 193 bytes) and a path (1,024): names messages only */
  int64_t id = 0;
  *out = NULL;
  snprintf(name, sizeof name, "%s/%s", repo, path);
  zllm_file_reader *r = reader_new(a, name);
  int rc = r ? file_row(r, repo, path, &id) : ZLLM_ENOMEM;
  if (rc < 0) {
    zllm_file_reader_close(r);
    return rc;
  }
  return reader_start(r, id, 1, out);
}

int ar_reader_open_id(zllm_file_reader **out, zllm_archive *a, int64_t id, const char *name, uint64_t size,
                      const uint8_t sha256[32])
{
  zllm_file_reader *r = reader_new(a, name);
  *out = NULL;
  if (!r)
    return ZLLM_ENOMEM;
  r->size = size;
  memcpy(r->sha256, sha256, 32);
  return reader_start(r, id, 0, out);
}

/* Gives the window back to its source (a window decoded here stays). */
static void drop_window(zllm_file_reader *r)
{
  if (r->win_held)
    r->src->put(r->src_ctx, &r->win_at);
  r->win_held = 0;
  r->cur = r->nsegs;
}

void zllm_file_reader_close(zllm_file_reader *r)
{
  if (!r)
    return;
  drop_window(r);
  if (r->src && r->src->done)
    r->src->done(r->src_ctx, r->t_hash, r->hashed);
  zllm_sha256_ctx_free(r->sha);
  zllm_xxh128_ctx_free(r->xxh);
  free(r->segs);
  free(r->buf);
  free(r->name);
  free(r);
}

uint64_t zllm_file_reader_size(const zllm_file_reader *r)
{
  return r->size;
}

void zllm_file_reader_whole(zllm_file_reader *r)
{
  r->whole = 1;
}

int zllm_file_reader_verified(const zllm_file_reader *r)
{
  return r->verified;
}

/* The segment holding byte `off` (off < size). */
static size_t find_segment(const zllm_file_reader *r, uint64_t off)
{
  size_t lo = 0, hi = r->nsegs;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (r->segs[mid].off <= off)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* A header or piece blob into dst (s->len bytes), with handle a (any
 * thread's own: nothing of the reader but its layout is touched). */
static int decode_blob_stream(zllm_archive *a, const char *name, const segment *s, uint8_t *dst)
{
  uint8_t *data = NULL;
  size_t n = 0;
  uint64_t raw_len = 0;
  uint32_t cs, nch;
  /* a blob's decoded length comes from the blob: it is held to what zllm
   * writes, so a few KiB of constant chunks cannot claim terabytes */
  uint64_t max = s->kind == SEG_HEADER ? 8 + ZLLM_ST_HEADER_MAX : ZLLM_PIECE_BYTES;
  int rc = ar_blob_read(a, s->id, &data, &n);
  rc = rc ? rc : zllm_stream_info(data, n, &raw_len, &cs, &nch);
  if (rc == 0 && raw_len > max)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: blob %lld decodes to %llu bytes, more than the %llu a header or piece holds",
                        a->dir, (long long)s->id, (unsigned long long)raw_len, (unsigned long long)max);
  if (rc == 0 && raw_len != s->len)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: blob %lld decodes to %llu bytes, not the %llu it stands for",
                        a->dir, name, (long long)s->id, (unsigned long long)raw_len,
                        (unsigned long long)s->len);
  double t0 = ar_now();
  rc = rc ? rc : zllm_stream_decode(a->codec, data, n, dst, s->len);
  a->t_planes += ar_now() - t0;
  free(data);
  return rc;
}

/* Window (segment i, part) into dst, with handle a. */
static int decode_window(const zllm_file_reader *r, zllm_archive *a, size_t i, uint64_t part, uint8_t *dst)
{
  const segment *s = &r->segs[i];
  return s->kind == SEG_TENSOR ? ar_tensor_decode_part(a, s->id, part, dst, 0) : decode_blob_stream(a, r->name, s, dst);
}

/* A window that continues a tensor read from its first byte goes into its
 * XXH3-128; at its last byte, the key (cut as at ingest) must be the
 * recorded one before the window is handed out.  `at`: the window's first
 * byte in the tensor. */
static int check_tensor(zllm_file_reader *r, const segment *s, uint64_t at)
{
  if (at == 0) {
    zllm_xxh128_ctx_reset(r->xxh);
    r->xxh_tensor = s->id;
    r->xxh_next = 0;
  }
  if (r->xxh_tensor != s->id || r->xxh_next != at) {
    r->xxh_tensor = 0; /* out of order: this tensor goes unchecked by key */
    return 0;
  }
  zllm_xxh128_ctx_update(r->xxh, r->win, (size_t)r->win_len);
  if ((r->xxh_next += r->win_len) < s->len)
    return 0;
  zllm_xxh128 got;
  uint8_t key[16];
  r->xxh_tensor = 0;
  zllm_xxh128_ctx_final(r->xxh, &got);
  ar_hash_key(r->a, got.b, key);
  if (memcmp(key, s->key, 16) != 0)
    return zllm_error_set(ZLLM_EFORMAT, "%s: %s: tensor %lld decodes to bytes whose XXH3-128 is not the one recorded "
                          "at ingest", r->a->dir, r->name, (long long)s->id);
  return 0;
}

int ar_reader_hash(zllm_file_reader *r, const uint8_t *p, size_t n)
{
  double t0 = ar_now();
  int rc = n ? zllm_sha256_ctx_update(r->sha, p, n) : 0;
  r->t_hash += ar_now() - t0;
  r->hashed += n;
  if (rc == 0 && r->hashed == r->size && !r->verified) {
    zllm_sha256 got;
    rc = zllm_sha256_ctx_final(r->sha, &got);
    if (rc == 0 && memcmp(got.b, r->sha256, 32) != 0)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: %s: SHA-256 MISMATCH: the decoded bytes are not the ingested file",
                          r->a->dir, r->name);
    r->verified = rc == 0;
  }
  return rc;
}

/* The window holding byte off (< size): segment *seg, and what it is: a
 * tensor's part (a slice of it with a source), a header or a piece. */
static void window_at(const zllm_file_reader *r, uint64_t off, size_t *seg, ar_window *w)
{
  size_t i = find_segment(r, off);
  const segment *s = &r->segs[i];
  uint64_t in = off - s->off, part = s->kind == SEG_TENSOR ? in / ZLLM_PART_BYTES : 0;
  uint64_t first = part * ZLLM_PART_BYTES, len = s->kind == SEG_TENSOR ? ar_part_len(s->len, part) : s->len;
  uint64_t lo = r->slice ? (in - first) / r->slice * r->slice : 0;
  uint64_t n = r->slice && len - lo > r->slice ? r->slice : len - lo;
  *w = (ar_window){s->kind != SEG_TENSOR, s->id, part, lo, s->len, (size_t)n, s->off + first + lo};
  *seg = i;
}

/* The window's bytes into r->win: decoded here into r->buf, or held from
 * the source. */
static int fetch_window(zllm_file_reader *r, size_t i, const ar_window *w)
{
  if (r->src) {
    int rc = r->src->get(r->src_ctx, r->a, w, &r->win);
    r->win_held = rc == 0;
    return rc;
  }
  size_t need = r->segs[i].kind == SEG_TENSOR ? ZLLM_PART_BYTES : w->len;
  if (need > r->cap) {
    uint8_t *nb = realloc(r->buf, need ? need : 1);
    if (!nb)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    r->buf = nb;
    r->cap = need;
  }
  r->win = r->buf;
  return decode_window(r, r->a, i, w->part, r->buf);
}

/* Tells the source which windows come next, so they decode meanwhile. */
static void hint_ahead(zllm_file_reader *r, uint64_t end)
{
  for (int k = 0; r->src && r->src->ahead && !r->random && k < AR_READER_AHEAD && end < r->size; k++) {
    size_t seg;
    ar_window w;
    window_at(r, end, &seg, &w);
    r->src->ahead(r->src_ctx, &w);
    end = w.file_off + w.len;
  }
}

/* Loads the window holding byte off, hashing it when it continues the
 * bytes hashed so far; the file's last window is checked against its
 * SHA-256 before it is kept. */
static int load_window(zllm_file_reader *r, uint64_t off)
{
  size_t i;
  ar_window w;
  drop_window(r);
  window_at(r, off, &i, &w);
  const segment *s = &r->segs[i];
  int rc = fetch_window(r, i, &w);
  r->win_at = w;
  r->win_off = w.file_off;
  r->win_len = w.len;
  int in_order = w.file_off == r->hashed;
  if (rc == 0 && s->kind == SEG_TENSOR && r->xxh && !(in_order && r->whole))
    rc = check_tensor(r, s, w.file_off - s->off);
  if (rc == 0 && in_order)
    rc = ar_reader_hash(r, r->win, w.len);
  if (rc < 0) {
    drop_window(r);
    return rc;
  }
  r->cur = i;
  r->cur_part = w.part;
  hint_ahead(r, w.file_off + w.len);
  return 0;
}

int64_t zllm_file_reader_read(zllm_file_reader *r, uint64_t off, void *dst, size_t n)
{
  if (off >= r->size || n == 0)
    return 0;
  if (r->cur == r->nsegs || off < r->win_off || off >= r->win_off + r->win_len) {
    int rc = load_window(r, off);
    if (rc < 0)
      return rc;
  }
  uint64_t in = off - r->win_off, left = r->win_len - in;
  size_t take = n < left ? n : (size_t)left;
  memcpy(dst, r->win + in, take);
  return (int64_t)take;
}

void zllm_file_reader_random(zllm_file_reader *r)
{
  r->random = 1;
}

/* n bytes at off, all of them: the safetensors reader's source */
static int read_exact(void *ctx, uint64_t off, void *dst, size_t n)
{
  zllm_file_reader *r = ctx;
  for (size_t got = 0; got < n;) {
    int64_t k = zllm_file_reader_read(r, off + got, (uint8_t *)dst + got, n - got);
    if (k < 0)
      return (int)k;
    if (k == 0)
      return zllm_error_set(ZLLM_EFORMAT, "%s: ends at byte %llu, inside its safetensors header", r->name,
                            (unsigned long long)(off + got));
    got += (size_t)k;
  }
  return 0;
}

int zllm_file_reader_st_header(zllm_file_reader *r, zllm_st_header **out)
{
  return zllm_st_read_header_with(out, r->name, r->size, read_exact, r);
}

void ar_reader_use_source(zllm_file_reader *r, uint64_t slice, const ar_window_source *src, void *ctx)
{
  drop_window(r);
  r->slice = slice;
  r->src = src;
  r->src_ctx = ctx;
}

int ar_window_decode(zllm_archive *a, const ar_window *w, uint8_t *dst)
{
  return w->blob ? ar_blob_decode_slice(a, w->id, w->seg_len, w->lo, w->len, dst)
                 : ar_tensor_decode_slice(a, w->id, w->part, w->lo, w->len, dst);
}

void zllm_archive_repos_free(zllm_archive_repo *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].name);
    free(v[i].revision);
  }
  free(v);
}

void zllm_archive_files_free(zllm_archive_file *v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    free(v[i].path);
  free(v);
}

/* Grows *v (of `size`-byte elements) to hold one more. */
static int grow(void **v, size_t n, size_t *cap, size_t size)
{
  if (n < *cap)
    return 0;
  size_t ncap = *cap ? 2 * *cap : 16;
  void *nv = realloc(*v, ncap * size);
  if (!nv)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  *v = nv;
  *cap = ncap;
  return 0;
}

int zllm_archive_repos(zllm_archive *a, zllm_archive_repo **out, size_t *n_out)
{
  sqlite3_stmt *st = NULL;
  zllm_archive_repo *v = NULL;
  size_t n = 0, cap = 0;
  int rc = ar_prepare(a, &st, "SELECT id, name, revision FROM repos ORDER BY id");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *name = NULL, *rev = NULL;
    int64_t id = 0;
    rc = ar_col_int(a, st, 0, &id);
    rc = rc ? rc : ar_col_text(a, st, 1, &name);
    rc = rc ? rc : ar_col_text_or_null(a, st, 2, &rev);
    rc = rc ? rc : grow((void **)&v, n, &cap, sizeof *v);
    if (rc < 0)
      break;
    v[n] = (zllm_archive_repo){id, strdup(name), rev ? strdup(rev) : NULL};
    if (!v[n++].name || (rev && !v[n - 1].revision))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  ar_finalize(a, st);
  if (rc < 0) {
    zllm_archive_repos_free(v, n);
    return rc;
  }
  *out = v;
  *n_out = n;
  return 0;
}

int zllm_archive_repo_find(zllm_archive *a, const char *name, zllm_archive_repo *out)
{
  sqlite3_stmt *st = NULL;
  const char *rev = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, revision FROM repos WHERE name = ?1");
  memset(out, 0, sizeof *out);
  if (rc < 0)
    return rc;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
  rc = sqlite3_step(st) == SQLITE_ROW ? 0 : zllm_error_set(ZLLM_ENOTFOUND, "%s: repo %s is not in the archive",
                                                            a->dir, name);
  rc = rc ? rc : ar_col_int(a, st, 0, &out->id);
  rc = rc ? rc : ar_col_text_or_null(a, st, 1, &rev);
  if (rc == 0 && (!(out->name = strdup(name)) || (rev && !(out->revision = strdup(rev)))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  ar_finalize(a, st);
  if (rc < 0) {
    free(out->name);
    free(out->revision);
    memset(out, 0, sizeof *out);
  }
  return rc;
}

int zllm_archive_files(zllm_archive *a, const char *repo, zllm_archive_file **out, size_t *n_out)
{
  sqlite3_stmt *st = NULL;
  zllm_archive_file *v = NULL;
  size_t n = 0, cap = 0;
  int rc = ar_prepare(a, &st, "SELECT f.id, f.path, f.size, f.sha256 FROM files f JOIN repos r ON f.repo = r.id"
                              " WHERE r.name = ?1 AND f.method != 'skipped' ORDER BY f.path");
  if (rc == 0)
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_TRANSIENT);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *path = NULL;
    const void *sha = NULL;
    int64_t id = 0, size = 0;
    rc = ar_col_int(a, st, 0, &id);
    rc = rc ? rc : ar_col_text(a, st, 1, &path);
    rc = rc ? rc : ar_col_int(a, st, 2, &size);
    rc = rc ? rc : ar_col_blob(a, st, 3, 32, &sha);
    rc = rc ? rc : grow((void **)&v, n, &cap, sizeof *v);
    if (rc < 0)
      break;
    v[n].id = id;
    v[n].size = (uint64_t)size;
    memcpy(v[n].sha256, sha, 32);
    if (!(v[n++].path = strdup(path)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  ar_finalize(a, st);
  if (rc < 0) {
    zllm_archive_files_free(v, n);
    return rc;
  }
  *out = v;
  *n_out = n;
  return 0;
}

/* The window after (seg, part) with any bytes, or seg == nsegs. */
static void next_window(const zllm_file_reader *r, size_t *seg, uint64_t *part)
{
  if (++*part >= r->segs[*seg].nparts) {
    ++*seg;
    *part = 0;
  }
  while (*seg < r->nsegs && r->segs[*seg].len == 0)
    ++*seg;
}

static uint64_t window_len(const zllm_file_reader *r, size_t seg, uint64_t part)
{
  const segment *s = &r->segs[seg];
  return s->kind == SEG_TENSOR ? ar_part_len(s->len, part) : s->len;
}

int ar_reader_take_block(zllm_file_reader *r, uint64_t cap, ar_block *b)
{
  while (r->next < r->nsegs && r->segs[r->next].len == 0)
    r->next++;
  memset(b, 0, sizeof *b);
  if (r->next == r->nsegs) { /* an empty file still has its one (empty) block, so its end is seen */
    if (r->size || r->empty_taken)
      return 0;
    r->empty_taken = 1;
    b->seg = r->nsegs;
    return 1;
  }
  b->seg = r->next;
  b->part = r->next_part;
  b->off = r->segs[b->seg].off + b->part * ZLLM_PART_BYTES;
  while (r->next < r->nsegs) {
    uint64_t w = window_len(r, r->next, r->next_part);
    if (b->nwin && b->len + w > cap)
      break;
    b->len += w;
    b->nwin++;
    next_window(r, &r->next, &r->next_part);
  }
  return 1;
}

int ar_reader_decode_block(const zllm_file_reader *r, zllm_archive *a, const ar_block *b, uint8_t *dst)
{
  size_t seg = b->seg;
  uint64_t part = b->part, at = 0;
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < b->nwin; k++) {
    rc = decode_window(r, a, seg, part, dst + at);
    at += window_len(r, seg, part);
    next_window(r, &seg, &part);
  }
  return rc;
}
