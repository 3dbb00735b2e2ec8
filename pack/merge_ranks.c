/* The merge of staging archives over the ranks that packed them
 * (zllm_archive_merge_ranks, zllm/archive.h).
 *
 * zllm_archive_merge (merge.c) makes its decisions repo by repo in visiting
 * order on one process.  Here every decision is made where its inputs meet,
 * and every row gets its final id from counts, so that each rank writes
 * its own repos' rows and rank 0 only copies them in bulk:
 *   1. each rank reads its own staging archive (its repos in visiting
 *      order); per-repo file counts, summed over the ranks in visiting
 *      order, give every file its final id;
 *   2. files go to the owner of their SHA-256: the first id with the same
 *      key and SHA-256 holds the bytes, the others are its dups
 *      (ar_find_file_dup's rule: dups name the row that holds the bytes);
 *   3. the tensors of the files that hold bytes are counted, so every
 *      tensor has its final id; tensors go to the owner of their key: the
 *      first with the same key, length and dtype and the same bytes (both
 *      decoded from the staging archives) holds them (ar_find_tensor_dup);
 *   4. what a row names in another repo (a base tensor, the tensor a dup
 *      points at, an extern base's tensor) is asked of the rank that packed
 *      that repo, in rounds, until every chain depth is known;
 *   5. blobs are numbered in order of first use, packs in order of their
 *      first repo; each rank writes its rows into a shard, and rank 0
 *      copies the shards (INSERT ... SELECT) and moves the pack files in.
 * Anything the rule of merge.c would leave out (a base that changed
 * between two shares' reads) fails the whole attempt before the archive is
 * touched, so that the caller can merge serially, repo by repo. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack/archive_internal.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

enum { MF_SKIPPED, MF_STORED, MF_DUP };

typedef struct { /* a file of this rank's repos, in visiting order */
  int64_t sid, fid;      /* its row in the staging archive, in the merged one */
  int64_t dup_of;        /* merged: the file holding its bytes (0: this one) */
  int64_t header;        /* staging blob of its header, 0: none */
  int64_t stored, dropped;
  uint32_t repo;         /* visiting index */
  uint32_t t0, nt, p0, np; /* its tensors and pieces (staging rows, stored files only) */
  uint8_t kind;
  uint8_t key[16], sha[32];
} mr_file;

typedef struct { /* a tensor of a file this rank's share stored */
  int64_t sid, tid, idx;
  int64_t src_dup, src_base, src_depth, stored;
  int64_t dup_of, base, depth; /* merged; depth -1 until known */
  uint64_t len;
  uint32_t file, q0, nq; /* local file; its parts */
  uint8_t is_dup;        /* a dup in the share, or found to be one */
  uint8_t found;         /* found to be one here */
  uint8_t key[16];
  char dtype[16];
  /* what it waits for: the merged tensor (want_fid, want_idx), or, with
   * want_fid < 0, staging tensor -want_fid of rank want_idx */
  int64_t want_fid, want_idx;
  uint8_t want_kind;
} mr_tensor;

enum { WANT_NONE, WANT_DUP, WANT_BASE, WANT_ROOT };

typedef struct {
  int64_t a, b; /* pieces: seq, len; parts: part, 0 */
  int64_t blob;
} mr_ref;

typedef struct {
  MPI_Comm comm;
  int rank, size;
  char *const *stages;
  char *const *order;
  size_t norder;
  struct named { const char *name; size_t i; } *by_name; /* repos sorted by name */
  int32_t *packer;        /* per repo: the rank whose staging archive stores it, or m->size */
  /* Per repo, in visiting order (norder + 1 entries): first its count
   * (files, tensors, blobs), summed over the ranks, then turned in place
   * into what the repos before it hold: repo i's merged ids are
   * base[i] + 1 .. base[i + 1]. */
  int64_t *fbase, *tbase, *bbase;
  int64_t *rid;           /* per repo: its merged id, 0 when no share holds it */
  zllm_archive **st;      /* staging archives, opened when first needed */
  struct ext_ctx *ext;
  /* this rank's share */
  uint32_t *repos;        /* visiting indices of my repos, in order */
  int64_t *repo_sid;
  int32_t *local_repo;    /* per repo: index in repos[], -1 */
  uint32_t *repo_f0;      /* per my repo: first local file */
  size_t nrepos;
  mr_file *f;
  size_t nf_local, cap_f;
  mr_tensor *t;
  size_t nt_local, cap_t;
  mr_ref *pieces, *parts;
  size_t npieces, cap_pieces, nparts, cap_parts;
  int64_t *tmap;          /* staging tensor id -> local tensor + 1 */
  int64_t ntmap;
  int64_t *bfinal;        /* staging blob id -> merged id */
  int64_t nbfinal;
  int64_t pack_id, first_pack, committed_len;
  /* what the merge found, for its log line */
  unsigned long long file_dups, tensor_dups, compares, rounds;
  int said;   /* this rank's failure was logged */
  int picked; /* the rank pick_packer last gave */
} mr_ctx;

#define GROW(arr, n, cap) zllm_grow((void **)&(arr), &(cap), (n) + 1, sizeof *(arr))

/* ---- where a repo is ------------------------------------------------------ */

static int cmp_name(const void *a, const void *b)
{
  return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

static long repo_by_name(const mr_ctx *m, const char *name)
{
  size_t lo = 0, hi = m->norder;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(m->by_name[mid].name, name);
    if (c == 0)
      return (long)m->by_name[mid].i;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* The repo whose files' merged ids hold fid (-1: none). */
static long repo_of_fid(const mr_ctx *m, int64_t fid)
{
  size_t lo = 0, hi = m->norder;
  while (lo < hi) { /* the first repo whose files end at or past fid */
    size_t mid = (lo + hi) / 2;
    if (m->fbase[mid + 1] < fid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < m->norder && fid > m->fbase[lo] ? (long)lo : -1;
}

/* ---- the staging archives, and extern tensors decoded where stored ---------- */

struct ext_ctx {
  mr_ctx *m;
  int k;
};

static int stage(mr_ctx *m, int k, zllm_archive **out);

/* The staging archive of the rank that stored a repo. */
static int pick_packer(void *ctx, const char *repo, zllm_archive **out)
{
  mr_ctx *m = ctx;
  long r = repo_by_name(m, repo);
  if (r < 0 || m->packer[r] >= m->size)
    return zllm_error_set(ZLLM_ERROR, "%s: a base another share read is not in the archive", repo);
  m->picked = m->packer[r];
  return stage(m, m->packer[r], out);
}

/* An extern tensor of staging archive k: the same tensor (repo, path,
 * index) in the staging archive of the rank that stored its repo (*where),
 * checked by key and length. */
static int ext_locate(mr_ctx *m, int k, int64_t id, int *where, int64_t *tid)
{
  zllm_archive *a = NULL;
  int rc = stage(m, k, &a);
  rc = rc ? rc : ar_merge_extern_row(a, id, 1, pick_packer, m, NULL, tid);
  if (rc == 0 && !*tid)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld is not an extern tensor", a->dir, (long long)id);
  *where = m->picked;
  return rc;
}

static int ext_part(void *ctx, int64_t id, uint64_t part, uint8_t *dst, int depth)
{
  struct ext_ctx *e = ctx;
  zllm_archive *b = NULL;
  int64_t tid = 0;
  int k = 0;
  int rc = ext_locate(e->m, e->k, id, &k, &tid);
  rc = rc ? rc : stage(e->m, k, &b);
  return rc ? rc : ar_tensor_decode_part(b, tid, part, dst, depth);
}

static int stage(mr_ctx *m, int k, zllm_archive **out)
{
  int rc = 0;
  if (!m->st[k]) {
    rc = zllm_archive_open(&m->st[k], m->stages[k], 0);
    if (rc == 0) {
      m->ext[k] = (struct ext_ctx){m, k};
      m->st[k]->extern_part = ext_part;
      m->st[k]->extern_ctx = &m->ext[k];
    }
  }
  *out = m->st[k];
  return rc;
}

/* Other ranks' staging archives opened to compare bytes keep decode
 * buffers of a part (32 MiB) each: past a few, they are closed again. */
static void close_foreign(mr_ctx *m, int keep)
{
  int open = 0;
  for (int k = 0; k < m->size; k++)
    open += k != m->rank && m->st[k];
  for (int k = 0; open > keep && k < m->size; k++)
    if (k != m->rank && m->st[k]) {
      zllm_archive_close(m->st[k]);
      m->st[k] = NULL;
    }
}

/* ---- 1. this rank's share, read ------------------------------------------- */

static int read_refs(zllm_archive *a, const char *sql, int64_t of, int three, mr_ref **arr, size_t *n, size_t *cap)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, sql);
  if (rc == 0)
    sqlite3_bind_int64(st, 1, of);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW && (rc = GROW(*arr, *n, *cap)) == 0) {
    mr_ref *r = &(*arr)[(*n)++];
    r->a = sqlite3_column_int64(st, 0);
    r->b = three ? sqlite3_column_int64(st, 1) : 0;
    r->blob = sqlite3_column_int64(st, three ? 2 : 1);
  }
  ar_finalize(a, st);
  return rc;
}

static int read_tensors(mr_ctx *m, zllm_archive *a, mr_file *f, uint32_t fi)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, idx, dtype, len, key, method, dup_of, base, depth, stored"
                              " FROM tensors WHERE file = ? ORDER BY idx");
  f->t0 = (uint32_t)m->nt_local;
  if (rc == 0)
    sqlite3_bind_int64(st, 1, f->sid);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW && (rc = GROW(m->t, m->nt_local, m->cap_t)) == 0) {
    mr_tensor *t = &m->t[m->nt_local];
    const char *dtype = NULL, *method = NULL;
    const void *key = NULL;
    memset(t, 0, sizeof *t);
    t->sid = sqlite3_column_int64(st, 0);
    t->idx = sqlite3_column_int64(st, 1);
    rc = ar_col_text(a, st, 2, &dtype);
    t->len = (uint64_t)sqlite3_column_int64(st, 3);
    rc = rc ? rc : ar_col_blob(a, st, 4, 16, &key);
    rc = rc ? rc : ar_col_text(a, st, 5, &method);
    rc = rc ? rc : ar_col_int_or_null(a, st, 6, &t->src_dup);
    rc = rc ? rc : ar_col_int_or_null(a, st, 7, &t->src_base);
    t->src_depth = sqlite3_column_int64(st, 8);
    t->stored = sqlite3_column_int64(st, 9);
    if (rc < 0)
      break;
    if (strlen(dtype) >= sizeof t->dtype)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld: dtype '%s' is too long", a->dir, (long long)t->sid, dtype);
    memcpy(t->key, key, 16);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->is_dup = strcmp(method, "dup") == 0;
    t->file = fi;
    t->depth = -1;
    t->q0 = (uint32_t)m->nparts;
    rc = rc || t->is_dup ? rc : read_refs(a, "SELECT part, blob FROM parts WHERE tensor = ? ORDER BY part", t->sid, 0,
                                          &m->parts, &m->nparts, &m->cap_parts);
    t->nq = (uint32_t)(m->nparts - t->q0);
    m->nt_local++;
  }
  f->nt = (uint32_t)(m->nt_local - f->t0);
  ar_finalize(a, st);
  return rc;
}

static int read_files(mr_ctx *m, zllm_archive *a, size_t r)
{
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, sha256, key, method, header_blob, stored FROM files"
                              " WHERE repo = ? ORDER BY id");
  if (rc == 0)
    sqlite3_bind_int64(st, 1, m->repo_sid[r]);
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW && (rc = GROW(m->f, m->nf_local, m->cap_f)) == 0) {
    mr_file *f = &m->f[m->nf_local];
    const void *sha = NULL, *key = NULL;
    const char *method = NULL;
    memset(f, 0, sizeof *f);
    f->sid = sqlite3_column_int64(st, 0);
    f->repo = m->repos[r];
    rc = ar_col_blob(a, st, 1, 32, &sha);
    rc = rc ? rc : ar_col_blob(a, st, 2, 16, &key);
    rc = rc ? rc : ar_col_text(a, st, 3, &method);
    rc = rc ? rc : ar_col_int_or_null(a, st, 4, &f->header);
    f->stored = sqlite3_column_int64(st, 5);
    if (rc < 0)
      break;
    memcpy(f->sha, sha, 32);
    memcpy(f->key, key, 16);
    f->kind = strcmp(method, "skipped") == 0 ? MF_SKIPPED : strcmp(method, "dup") == 0 ? MF_DUP : MF_STORED;
    f->p0 = (uint32_t)m->npieces;
    m->nf_local++;
    if (f->kind == MF_STORED) {
      uint32_t fi = (uint32_t)(m->nf_local - 1);
      rc = read_refs(a, "SELECT seq, len, blob FROM pieces WHERE file = ? ORDER BY seq", f->sid, 1, &m->pieces,
                     &m->npieces, &m->cap_pieces);
      m->f[fi].np = (uint32_t)(m->npieces - m->f[fi].p0);
      rc = rc ? rc : read_tensors(m, a, &m->f[fi], fi);
    }
  }
  ar_finalize(a, st);
  return rc;
}

/* The repos this rank's staging archive stores (not its extern ones), as
 * packer candidates: a repo two archives hold (an extern repo none of
 * whose files could be read looks stored) is the lowest rank's, as the
 * serial merge takes the first source that has it. */
static int list_share(mr_ctx *m)
{
  zllm_archive *a = NULL;
  sqlite3_stmt *st = NULL;
  int rc = stage(m, m->rank, &a);
  rc = rc ? rc : ar_prepare(a, &st, "SELECT name FROM repos WHERE NOT EXISTS (SELECT 1 FROM files"
                                    " WHERE files.repo = repos.id AND files.method = '" AR_EXTERN "')");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    const char *name = NULL;
    rc = ar_col_text(a, st, 0, &name);
    long i = rc ? -1 : repo_by_name(m, name);
    if (i >= 0 && m->packer[i] > m->rank)
      m->packer[i] = m->rank; /* a repo outside the visiting order is not merged, as by the serial merge */
  }
  ar_finalize(a, st);
  return rc;
}

/* This rank's repos, in visiting order, with their files, tensors, pieces
 * and parts (what the decisions and the shard need; names and strings are
 * read again when the rows are written). */
static int read_share(mr_ctx *m)
{
  zllm_archive *a = m->st[m->rank];
  int rc = 0;
  if (!(m->repos = calloc(m->norder + 1, sizeof *m->repos)) ||
      !(m->repo_sid = calloc(m->norder + 1, sizeof *m->repo_sid)) ||
      !(m->repo_f0 = calloc(m->norder + 2, sizeof *m->repo_f0)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < m->norder; i++) /* in visiting order */
    if (m->packer[i] == m->rank)
      m->repos[m->nrepos++] = (uint32_t)i;
  for (size_t r = 0; rc == 0 && r < m->nrepos; r++) {
    uint32_t i = m->repos[r];
    m->repo_sid[r] = ar_merge_repo_row(a, m->order[i]);
    m->local_repo[i] = (int32_t)r;
    m->repo_f0[r] = (uint32_t)m->nf_local;
    rc = m->repo_sid[r] ? read_files(m, a, r)
                        : zllm_error_set(ZLLM_EFORMAT, "%s: repo %s vanished", a->dir, m->order[i]);
    m->fbase[i] = (int64_t)(m->nf_local - m->repo_f0[r]);
  }
  m->repo_f0[m->nrepos] = (uint32_t)m->nf_local;
  m->ntmap = ar_merge_max_id(a, "tensors", &rc) + 1;
  m->nbfinal = ar_merge_max_id(a, "blobs", &rc) + 1;
  if (rc == 0 && (!(m->tmap = calloc((size_t)m->ntmap, 8)) || !(m->bfinal = calloc((size_t)m->nbfinal, 8))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < m->nt_local; i++) {
    if (m->t[i].sid <= 0 || m->t[i].sid >= m->ntmap)
      rc = zllm_error_set(ZLLM_EFORMAT, "%s: tensor %lld out of range", a->dir, (long long)m->t[i].sid);
    else
      m->tmap[m->t[i].sid] = (int64_t)i + 1;
  }
  m->committed_len = (int64_t)a->committed_len;
  return rc;
}

/* ---- sums over the ranks in visiting order --------------------------------- */

/* Per-repo counts summed over the ranks, then in place what the repos
 * before each hold (v[norder]: the total). */
static int to_bases(mr_ctx *m, int64_t *v)
{
  if (MPI_Allreduce(MPI_IN_PLACE, v, (int)m->norder, MPI_INT64_T, MPI_SUM, m->comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "merge: summing per-repo counts failed");
  int64_t at = 0;
  for (size_t i = 0; i <= m->norder; i++) {
    int64_t n = i < m->norder ? v[i] : 0;
    v[i] = at;
    at += n;
  }
  return 0;
}

/* Whether every rank got this far; a rank that did not says why here (the
 * others only learn that it failed). */
static int agree(mr_ctx *m, int rc)
{
  if (rc < 0 && !m->said) {
    ZLLM_WARN("merge: rank %d: %s", m->rank, zllm_error_last());
    m->said = 1;
  }
  if (zllm_mpi_alltrue(rc == 0, m->comm))
    return 0;
  m->said = 1; /* by the rank that failed */
  return rc ? rc : zllm_error_set(ZLLM_ERROR, "merge: another rank failed");
}

/* ---- exchanges with the owners ---------------------------------------------- */

/* Sends each rank's buffer to it (out may be NULL: nothing, but this rank
 * still takes part); *in gets what every rank sent here. */
static int exchange(mr_ctx *m, zllm_buf *out, char **in, size_t *in_len)
{
  char **send = calloc((size_t)m->size, sizeof *send);
  size_t *len = calloc((size_t)m->size, sizeof *len);
  int rc = send && len ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int r = 0; rc == 0 && out && r < m->size; r++) {
    send[r] = out[r].data;
    len[r] = out[r].len;
  }
  /* collective whatever happened here: an empty send still takes part */
  int xrc = zllm_mpi_alltoall_bytes(send, len, in, in_len, m->comm);
  free(send);
  free(len);
  for (int r = 0; out && r < m->size; r++)
    zllm_buf_free(&out[r]);
  return rc ? rc : xrc;
}

/* One question-and-answer round with the owners: questions out to each
 * rank, what came in, answers back to each asker, what came back. */
typedef struct {
  zllm_buf *out, *ans;
  char *in, *back;
  size_t in_len, back_len;
} mr_round;

static int round_begin(mr_ctx *m, mr_round *x)
{
  memset(x, 0, sizeof *x);
  x->out = calloc((size_t)m->size, sizeof *x->out);
  x->ans = calloc((size_t)m->size, sizeof *x->ans);
  return x->out && x->ans ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
}

static void round_end(mr_round *x)
{
  free(x->out);
  free(x->ans);
  free(x->in);
  free(x->back);
}

static int owner_of(const mr_ctx *m, const uint8_t *h)
{
  uint64_t v = 0;
  memcpy(&v, h, 8);
  return (int)(v % (uint64_t)m->size);
}

typedef struct {
  uint8_t key[16], sha[32];
  int64_t fid;
  uint32_t req;
  int32_t rank;
} file_rec;

typedef struct {
  uint32_t req;
  int32_t pad;
  int64_t root;
} file_ans;

static int cmp_file_rec(const void *a, const void *b)
{
  const file_rec *x = a, *y = b;
  int c = memcmp(x->key, y->key, 16);
  c = c ? c : memcmp(x->sha, y->sha, 32);
  return c ? c : (x->fid > y->fid) - (x->fid < y->fid);
}

/* 2. Files by SHA-256: the first with its key and SHA-256 holds the bytes. */
static int decide_files(mr_ctx *m)
{
  mr_round x;
  int rc = round_begin(m, &x);
  for (size_t i = 0; rc == 0 && i < m->nf_local; i++) {
    mr_file *f = &m->f[i];
    f->fid = m->fbase[f->repo] + (int64_t)(i - m->repo_f0[m->local_repo[f->repo]]) + 1;
    if (f->kind == MF_SKIPPED)
      continue;
    file_rec r = {.fid = f->fid, .req = (uint32_t)i, .rank = m->rank};
    memcpy(r.key, f->key, 16);
    memcpy(r.sha, f->sha, 32);
    rc = zllm_buf_append(&x.out[owner_of(m, f->sha)], &r, sizeof r);
  }
  int xrc = exchange(m, x.out, &x.in, &x.in_len);
  rc = rc ? rc : xrc;
  file_rec *rec = (file_rec *)x.in;
  size_t n = x.in_len / sizeof *rec;
  if (rc == 0)
    qsort(rec, n, sizeof *rec, cmp_file_rec);
  for (size_t i = 0, first = 0; rc == 0 && i < n; i++) {
    if (memcmp(rec[i].key, rec[first].key, 16) || memcmp(rec[i].sha, rec[first].sha, 32))
      first = i;
    file_ans a = {rec[i].req, 0, rec[first].fid};
    if (rec[i].rank < 0 || rec[i].rank >= m->size)
      rc = zllm_error_set(ZLLM_EMPI, "merge: a file record from rank %d", rec[i].rank);
    else
      rc = zllm_buf_append(&x.ans[rec[i].rank], &a, sizeof a);
  }
  xrc = exchange(m, x.ans, &x.back, &x.back_len);
  rc = rc ? rc : xrc;
  for (size_t i = 0; rc == 0 && i < x.back_len / sizeof(file_ans); i++) {
    const file_ans *a = (const file_ans *)x.back + i;
    mr_file *f = a->req < m->nf_local ? &m->f[a->req] : NULL;
    if (!f)
      rc = zllm_error_set(ZLLM_EMPI, "merge: an answer for file %u", a->req);
    else if (a->root != f->fid) {
      f->dup_of = a->root;
      m->file_dups += f->kind == MF_STORED;
    }
    else if (f->kind == MF_DUP) /* a dup in its share whose original is nowhere */
      rc = zllm_error_set(ZLLM_ERROR, "%s: file %lld: its dup is not merged", m->stages[m->rank], (long long)f->sid);
  }
  round_end(&x);
  return rc;
}

static int file_holds(const mr_file *f)
{
  return f->kind == MF_STORED && !f->dup_of;
}

/* 3a. Every tensor of a file that holds its bytes gets its merged id. */
static int number_tensors(mr_ctx *m)
{
  for (size_t i = 0; i < m->nf_local; i++)
    if (file_holds(&m->f[i]))
      m->tbase[m->f[i].repo] += m->f[i].nt;
  int rc = to_bases(m, m->tbase);
  if (rc < 0)
    return rc;
  uint32_t last = UINT32_MAX;
  int64_t next = 0;
  for (size_t i = 0; i < m->nf_local; i++) {
    mr_file *f = &m->f[i];
    if (f->repo != last) {
      last = f->repo;
      next = m->tbase[f->repo] + 1;
    }
    if (file_holds(f))
      for (uint32_t k = 0; k < f->nt; k++)
        m->t[f->t0 + k].tid = next++;
  }
  return 0;
}

typedef struct {
  uint8_t key[16];
  char dtype[16];
  uint64_t len;
  int64_t tid, fid, idx, sid;
  uint32_t req;
  int32_t rank;
} tensor_rec;

typedef struct {
  uint32_t req;
  int32_t pad;
  int64_t root_tid, root_fid, root_idx;
} tensor_ans;

static int cmp_tensor_rec(const void *a, const void *b)
{
  const tensor_rec *x = a, *y = b;
  int c = memcmp(x->key, y->key, 16);
  c = c ? c : strcmp(x->dtype, y->dtype);
  c = c ? c : (x->len > y->len) - (x->len < y->len);
  return c ? c : (x->tid > y->tid) - (x->tid < y->tid);
}

static int same_group(const tensor_rec *x, const tensor_rec *y)
{
  return memcmp(x->key, y->key, 16) == 0 && strcmp(x->dtype, y->dtype) == 0 && x->len == y->len;
}

/* Both tensors decoded from their staging archives, part by part. */
static int same_bytes(mr_ctx *m, const tensor_rec *x, const tensor_rec *y, int *same)
{
  zllm_archive *a = NULL, *b = NULL;
  int rc = stage(m, x->rank, &a);
  rc = rc ? rc : stage(m, y->rank, &b);
  uint8_t *p = rc ? NULL : ar_buf_get(a), *q = rc ? NULL : ar_buf_get(b);
  rc = rc ? rc : p && q ? 0 : ZLLM_ENOMEM;
  *same = 1;
  for (uint64_t k = 0; rc == 0 && *same && x->len && k < ar_nparts(x->len); k++) {
    rc = ar_tensor_decode_part(a, x->sid, k, p, 0);
    rc = rc ? rc : ar_tensor_decode_part(b, y->sid, k, q, 0);
    *same = rc == 0 && memcmp(p, q, ar_part_len(x->len, k)) == 0;
  }
  if (a)
    ar_buf_put(a, p);
  if (b)
    ar_buf_put(b, q);
  return rc;
}

/* One group of tensors with the same key, length and dtype, in merged
 * order: each is a dup of the first earlier holder with the same bytes. */
static int judge_group(mr_ctx *m, tensor_rec *g, size_t n, zllm_buf *ans)
{
  size_t *holders = calloc(n + 1, sizeof *holders), nh = 0;
  int rc = holders ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    tensor_ans a = {g[i].req, 0, 0, 0, 0};
    for (size_t h = 0; rc == 0 && h < nh && !a.root_tid; h++) {
      int same = 0;
      m->compares++;
      rc = same_bytes(m, &g[holders[h]], &g[i], &same); /* a hash hit is confirmed by the bytes */
      if (rc == 0 && same)
        a = (tensor_ans){g[i].req, 0, g[holders[h]].tid, g[holders[h]].fid, g[holders[h]].idx};
    }
    if (rc == 0 && !a.root_tid)
      holders[nh++] = i;
    if (rc == 0 && (g[i].rank < 0 || g[i].rank >= m->size))
      rc = zllm_error_set(ZLLM_EMPI, "merge: a tensor record from rank %d", g[i].rank);
    rc = rc ? rc : zllm_buf_append(&ans[g[i].rank], &a, sizeof a);
  }
  free(holders);
  return rc;
}

/* 3b. Tensors by key: a tensor an earlier file holds becomes its dup. */
static int decide_tensors(mr_ctx *m)
{
  mr_round x;
  int rc = round_begin(m, &x);
  for (size_t i = 0; rc == 0 && i < m->nt_local; i++) {
    mr_tensor *t = &m->t[i];
    const mr_file *f = &m->f[t->file];
    if (!file_holds(f) || t->is_dup)
      continue;
    tensor_rec r = {.len = t->len, .tid = t->tid, .fid = f->fid, .idx = t->idx, .sid = t->sid, .req = (uint32_t)i,
                    .rank = m->rank};
    memcpy(r.key, t->key, 16);
    memcpy(r.dtype, t->dtype, sizeof r.dtype);
    rc = zllm_buf_append(&x.out[owner_of(m, t->key)], &r, sizeof r);
  }
  int xrc = exchange(m, x.out, &x.in, &x.in_len);
  rc = rc ? rc : xrc;
  tensor_rec *rec = (tensor_rec *)x.in;
  size_t n = x.in_len / sizeof *rec;
  for (size_t i = 0; i < n; i++) /* strcmp below stays inside each record */
    rec[i].dtype[sizeof rec[i].dtype - 1] = '\0';
  if (rc == 0)
    qsort(rec, n, sizeof *rec, cmp_tensor_rec);
  for (size_t i = 0, j = 0; rc == 0 && i < n; i = j) {
    for (j = i + 1; j < n && same_group(&rec[i], &rec[j]); j++)
      ;
    rc = judge_group(m, rec + i, j - i, x.ans);
    close_foreign(m, (int)zllm_bounded(4, 0)); /* tests: closed after every group */
  }
  xrc = exchange(m, x.ans, &x.back, &x.back_len);
  rc = rc ? rc : xrc;
  for (size_t i = 0; rc == 0 && i < x.back_len / sizeof(tensor_ans); i++) {
    const tensor_ans *a = (const tensor_ans *)x.back + i;
    mr_tensor *t = a->req < m->nt_local ? &m->t[a->req] : NULL;
    if (!t)
      rc = zllm_error_set(ZLLM_EMPI, "merge: an answer for tensor %u", a->req);
    else if (a->root_tid) {
      t->is_dup = t->found = 1;
      t->dup_of = a->root_tid;
      t->want_kind = WANT_ROOT;
      t->want_fid = a->root_fid;
      t->want_idx = a->root_idx;
      m->f[t->file].dropped += t->stored;
      m->tensor_dups++;
    }
  }
  round_end(&x);
  close_foreign(m, 0); /* what comes next only looks rows up */
  return rc;
}

/* ---- 4. what rows name in other repos, asked of their packers ------------------ */

/* What staging tensor `sid` of this share became in the merged archive:
 * (file holding it, index), or for an extern tensor the staging tensor of
 * the rank that stored its repo (the packer answers for it). */
static int want_of(mr_ctx *m, int64_t sid, mr_tensor *t)
{
  int64_t at = sid > 0 && sid < m->ntmap ? m->tmap[sid] : 0;
  if (at) {
    const mr_tensor *u = &m->t[at - 1];
    const mr_file *f = &m->f[u->file];
    t->want_fid = f->dup_of ? f->dup_of : f->fid;
    t->want_idx = u->idx;
    return 0;
  }
  int64_t tid = 0;
  int k = 0;
  int rc = ext_locate(m, m->rank, sid, &k, &tid);
  t->want_fid = -tid;
  t->want_idx = k;
  return rc;
}

typedef struct {
  int64_t fid, idx; /* fid < 0: -(staging tensor id) in the answering rank's archive */
  uint32_t req;
  int32_t rank;
} ask_rec;

enum { ANS_ROW, ANS_LATER, ANS_REDIRECT, ANS_ERR };

typedef struct {
  uint32_t req;
  int32_t status;
  int64_t id, root, depth, fid, idx;
} ask_ans;

static int cmp_tensor_idx(const void *key, const void *elem)
{
  int64_t k = *(const int64_t *)key, i = ((const mr_tensor *)elem)->idx;
  return (k > i) - (k < i);
}

static ask_ans answer(mr_ctx *m, const ask_rec *q)
{
  ask_ans a = {q->req, ANS_ERR, 0, 0, 0, 0, 0};
  const mr_tensor *t = NULL;
  if (q->fid < 0) { /* by staging id: a tensor of one of my stored files, or of a file that became a dup */
    int64_t sid = -q->fid, at = sid < m->ntmap ? m->tmap[sid] : 0, tid = 0;
    int k = 0;
    if (!at) { /* an extern tensor here too (a dup of one): where its packer stored it */
      if (ext_locate(m, m->rank, sid, &k, &tid) == 0)
        a = (ask_ans){q->req, ANS_REDIRECT, 0, 0, 0, -tid, k};
      return a;
    }
    const mr_tensor *u = &m->t[at - 1];
    const mr_file *f = &m->f[u->file];
    if (f->dup_of) {
      a.status = ANS_REDIRECT;
      a.fid = f->dup_of;
      a.idx = u->idx;
      return a;
    }
    t = u;
  } else {
    long r = repo_of_fid(m, q->fid);
    if (r < 0 || m->local_repo[r] < 0)
      return a;
    const mr_file *f = &m->f[m->repo_f0[m->local_repo[r]] + (size_t)(q->fid - m->fbase[r] - 1)];
    if (f->kind == MF_SKIPPED)
      return a;
    if (f->dup_of) {
      a.status = ANS_REDIRECT;
      a.fid = f->dup_of;
      a.idx = q->idx;
      return a;
    }
    t = bsearch(&q->idx, m->t + f->t0, f->nt, sizeof *m->t, cmp_tensor_idx);
    if (!t)
      return a;
  }
  if (t->depth < 0) {
    a.status = ANS_LATER;
    return a;
  }
  a.status = ANS_ROW;
  a.id = t->tid;
  a.root = t->is_dup ? t->dup_of : 0;
  a.depth = t->depth;
  return a;
}

/* The answer taken by the tensor that asked. */
static int take_answer(mr_ctx *m, mr_tensor *t, const ask_ans *a, int *moved)
{
  if (a->status == ANS_ERR)
    return zllm_error_set(ZLLM_ERROR, "%s: tensor %lld: what it names is not in the merged archive",
                          m->stages[m->rank], (long long)t->sid);
  if (a->status == ANS_LATER)
    return 0;
  *moved = 1;
  if (a->status == ANS_REDIRECT) {
    t->want_fid = a->fid;
    t->want_idx = a->idx;
    return 0;
  }
  if (t->want_kind == WANT_DUP) {
    t->dup_of = a->root ? a->root : a->id;
    t->depth = a->depth;
  } else if (t->want_kind == WANT_ROOT) {
    t->depth = a->depth;
  } else {
    t->base = a->id;
    t->depth = a->depth + 1;
  }
  t->want_kind = WANT_NONE;
  return 0;
}

static int ask_round(mr_ctx *m, size_t *open, int *moved)
{
  mr_round x;
  int rc = round_begin(m, &x);
  *open = 0;
  for (size_t i = 0; rc == 0 && i < m->nt_local; i++) {
    mr_tensor *t = &m->t[i];
    if (!file_holds(&m->f[t->file]) || t->want_kind == WANT_NONE)
      continue;
    int to = 0;
    if (t->want_fid < 0 && (t->want_idx < 0 || t->want_idx >= m->size)) {
      rc = zllm_error_set(ZLLM_EMPI, "merge: tensor %lld is to be asked of rank %lld", (long long)t->sid,
                          (long long)t->want_idx);
      break;
    } else if (t->want_fid < 0)
      to = (int)t->want_idx; /* the packer of an extern tensor's repo */
    else {
      long r = repo_of_fid(m, t->want_fid);
      if (r < 0 || m->packer[r] >= m->size) {
        rc = zllm_error_set(ZLLM_ERROR, "%s: tensor %lld names file %lld, which no share holds", m->stages[m->rank],
                            (long long)t->sid, (long long)t->want_fid);
        break;
      }
      to = m->packer[r];
    }
    ask_rec q = {t->want_fid, t->want_idx, (uint32_t)i, m->rank};
    rc = zllm_buf_append(&x.out[to], &q, sizeof q);
    (*open)++;
  }
  int xrc = exchange(m, x.out, &x.in, &x.in_len);
  rc = rc ? rc : xrc;
  for (size_t i = 0; rc == 0 && i < x.in_len / sizeof(ask_rec); i++) {
    const ask_rec *q = (const ask_rec *)x.in + i;
    ask_ans a = answer(m, q);
    if (q->rank < 0 || q->rank >= m->size)
      rc = zllm_error_set(ZLLM_EMPI, "merge: a question from rank %d", q->rank);
    else
      rc = zllm_buf_append(&x.ans[q->rank], &a, sizeof a);
  }
  xrc = exchange(m, x.ans, &x.back, &x.back_len);
  rc = rc ? rc : xrc;
  for (size_t i = 0; rc == 0 && i < x.back_len / sizeof(ask_ans); i++) {
    const ask_ans *a = (const ask_ans *)x.back + i;
    rc = a->req < m->nt_local ? take_answer(m, &m->t[a->req], a, moved)
                              : zllm_error_set(ZLLM_EMPI, "merge: an answer for tensor %u", a->req);
  }
  round_end(&x);
  return rc;
}

/* What each tensor waits for, then rounds of questions until no rank
 * waits: a chain of bases is resolved one link per round. */
static int resolve_names(mr_ctx *m)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < m->nt_local; i++) {
    mr_tensor *t = &m->t[i];
    if (!file_holds(&m->f[t->file]) || t->found)
      continue;
    if (t->is_dup) {
      t->want_kind = WANT_DUP;
      rc = want_of(m, t->src_dup, t);
    } else if (t->src_base) {
      t->want_kind = WANT_BASE;
      rc = want_of(m, t->src_base, t);
    } else
      t->depth = t->src_depth;
  }
  for (int round = 0;; round++) {
    size_t open = 0;
    int moved = 0;
    int arc = ask_round(m, &open, &moved);
    rc = rc ? rc : arc;
    unsigned long long left = zllm_mpi_sum_u64(rc == 0 ? open : 1, m->comm);
    unsigned long long went = zllm_mpi_sum_u64(moved, m->comm);
    if ((rc = agree(m, rc)) < 0)
      return rc;
    m->rounds = (unsigned long long)round + 1;
    if (!left)
      return 0;
    if (!went || round > 4 * ZLLM_MAX_CHAIN + 64)
      return zllm_error_set(ZLLM_ERROR, "merge: %llu tensors name rows that never resolve", left);
  }
}

/* ---- 5. blobs, rows, shards ------------------------------------------------------ */

static void use_blob(mr_ctx *m, int64_t sid, int64_t *next, int assign)
{
  if (sid <= 0 || sid >= m->nbfinal || m->bfinal[sid])
    return;
  ++*next;
  m->bfinal[sid] = assign ? *next : -1; /* counting: only marked as used */
}

/* Blobs in order of first use (a file's header, its pieces, its tensors'
 * parts), counted per repo, then numbered. */
static int number_blobs(mr_ctx *m)
{
  int rc = 0;
  for (int pass = 0; rc == 0 && pass < 2; pass++) {
    memset(m->bfinal, 0, (size_t)m->nbfinal * 8);
    uint32_t last = UINT32_MAX;
    int64_t next = 0;
    for (size_t i = 0; i < m->nf_local; i++) {
      const mr_file *f = &m->f[i];
      if (f->repo != last) {
        if (pass == 0 && last != UINT32_MAX)
          m->bbase[last] = next;
        last = f->repo;
        next = pass ? m->bbase[f->repo] : 0;
      }
      if (!file_holds(f))
        continue;
      use_blob(m, f->header, &next, pass);
      for (uint32_t k = 0; k < f->np; k++)
        use_blob(m, m->pieces[f->p0 + k].blob, &next, pass);
      for (uint32_t k = 0; k < f->nt; k++) {
        const mr_tensor *t = &m->t[f->t0 + k];
        for (uint32_t q = 0; !t->is_dup && q < t->nq; q++)
          use_blob(m, m->parts[t->q0 + q].blob, &next, pass);
      }
    }
    if (pass == 0 && last != UINT32_MAX)
      m->bbase[last] = next;
    if (pass == 0)
      rc = to_bases(m, m->bbase);
  }
  return rc;
}

/* The catalog's tables and columns in its order (catalog.c's schema: the
 * shards are copied in with SELECT *), without its constraints and indexes:
 * rank 0's catalog checks the rows as they come in. */
static const char *shard_schema =
    "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
    "CREATE TABLE packs(id INTEGER PRIMARY KEY, name TEXT, committed_len INTEGER);"
    "CREATE TABLE blobs(id INTEGER PRIMARY KEY, pack INTEGER, offset INTEGER, len INTEGER, checksum INTEGER);"
    "CREATE TABLE repos(id INTEGER PRIMARY KEY, name TEXT, revision TEXT, base TEXT, base_reason TEXT);"
    "CREATE TABLE files(id INTEGER PRIMARY KEY, repo INTEGER, path TEXT, size INTEGER, sha256 BLOB, key BLOB,"
    " method TEXT, dup_of INTEGER, header_blob INTEGER, stored INTEGER, note TEXT);"
    "CREATE TABLE pieces(file INTEGER, seq INTEGER, len INTEGER, blob INTEGER);"
    "CREATE TABLE tensors(id INTEGER PRIMARY KEY, file INTEGER, idx INTEGER, name TEXT, dtype TEXT, shape TEXT,"
    " nelem INTEGER, len INTEGER, key BLOB, method TEXT, layout TEXT, dup_of INTEGER, base INTEGER,"
    " depth INTEGER, stored INTEGER, note TEXT);"
    "CREATE TABLE parts(tensor INTEGER, part INTEGER, blob INTEGER);";

typedef struct {
  sqlite3 *db;
  const char *path;
  sqlite3_stmt *ins[7];
} shard;

enum { S_PACK, S_BLOB, S_REPO, S_FILE, S_PIECE, S_TENSOR, S_PART };

static const char *shard_insert[7] = {
    "INSERT INTO packs VALUES(?, ?, ?)",
    "INSERT INTO blobs VALUES(?, ?, ?, ?, ?)",
    "INSERT INTO repos VALUES(?, ?, ?, ?, ?)",
    "INSERT INTO files VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO pieces VALUES(?, ?, ?, ?)",
    "INSERT INTO tensors VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT INTO parts VALUES(?, ?, ?)"};

static int shard_error(shard *s, const char *what)
{
  return zllm_error_set(ZLLM_ERROR, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int shard_step(shard *s, int which)
{
  sqlite3_stmt *st = s->ins[which];
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : shard_error(s, shard_insert[which]);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc;
}

static void bind_id(sqlite3_stmt *st, int col, int64_t v)
{
  v ? sqlite3_bind_int64(st, col, v) : sqlite3_bind_null(st, col);
}

/* Column `col` of `from` into parameter `to` of `st`, whatever its type. */
static void bind_col(sqlite3_stmt *st, int to, sqlite3_stmt *from, int col)
{
  sqlite3_bind_value(st, to, sqlite3_column_value(from, col));
}

static int write_blobs(mr_ctx *m, shard *s)
{
  zllm_archive *a = m->st[m->rank];
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT id, offset, len, checksum FROM blobs ORDER BY id");
  while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
    int64_t sid = sqlite3_column_int64(st, 0);
    if (sid <= 0 || sid >= m->nbfinal || m->bfinal[sid] <= 0)
      continue;
    sqlite3_bind_int64(s->ins[S_BLOB], 1, m->bfinal[sid]);
    sqlite3_bind_int64(s->ins[S_BLOB], 2, m->pack_id);
    for (int k = 1; k < 4; k++)
      bind_col(s->ins[S_BLOB], k + 2, st, k);
    rc = shard_step(s, S_BLOB);
  }
  ar_finalize(a, st);
  return rc;
}

static int64_t blob_of(const mr_ctx *m, int64_t sid)
{
  return sid > 0 && sid < m->nbfinal && m->bfinal[sid] > 0 ? m->bfinal[sid] : 0;
}

static int write_tensors(mr_ctx *m, shard *s, const mr_file *f)
{
  zllm_archive *a = m->st[m->rank];
  sqlite3_stmt *st = NULL;
  int rc = ar_prepare(a, &st, "SELECT idx, name, dtype, shape, nelem, len, key, method, layout, note"
                              " FROM tensors WHERE file = ? ORDER BY idx");
  if (rc == 0)
    sqlite3_bind_int64(st, 1, f->sid);
  for (uint32_t k = 0; rc == 0 && k < f->nt; k++) {
    const mr_tensor *t = &m->t[f->t0 + k];
    sqlite3_stmt *in = s->ins[S_TENSOR];
    if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != t->idx) {
      rc = zllm_error_set(ZLLM_ERROR, "%s: file %lld changed during the merge", a->dir, (long long)f->sid);
      break;
    }
    sqlite3_bind_int64(in, 1, t->tid);
    sqlite3_bind_int64(in, 2, f->fid);
    for (int c = 0; c < 9; c++) /* idx, name, dtype, shape, nelem, len, key, method, layout */
      bind_col(in, c + 3, st, c);
    if (t->is_dup)
      sqlite3_bind_text(in, 10, "dup", -1, SQLITE_STATIC);
    bind_id(in, 12, t->is_dup ? t->dup_of : 0);
    bind_id(in, 13, t->is_dup ? 0 : t->base);
    sqlite3_bind_int64(in, 14, t->depth);
    sqlite3_bind_int64(in, 15, t->is_dup ? 0 : t->stored);
    if (!t->is_dup)
      bind_col(in, 16, st, 9);
    rc = shard_step(s, S_TENSOR);
    for (uint32_t q = 0; rc == 0 && !t->is_dup && q < t->nq; q++) {
      sqlite3_bind_int64(s->ins[S_PART], 1, t->tid);
      sqlite3_bind_int64(s->ins[S_PART], 2, m->parts[t->q0 + q].a);
      sqlite3_bind_int64(s->ins[S_PART], 3, blob_of(m, m->parts[t->q0 + q].blob));
      rc = shard_step(s, S_PART);
    }
  }
  ar_finalize(a, st);
  return rc;
}

static int write_file(mr_ctx *m, shard *s, sqlite3_stmt *st, const mr_file *f, int64_t repo)
{
  sqlite3_stmt *in = s->ins[S_FILE];
  int holds = file_holds(f);
  sqlite3_bind_int64(in, 1, f->fid);
  sqlite3_bind_int64(in, 2, repo);
  for (int c = 0; c < 4; c++) /* path, size, sha256, key */
    bind_col(in, c + 3, st, c + 1);
  if (f->dup_of)
    sqlite3_bind_text(in, 7, "dup", -1, SQLITE_STATIC);
  else
    bind_col(in, 7, st, 5);
  bind_id(in, 8, f->dup_of);
  bind_id(in, 9, holds ? blob_of(m, f->header) : 0);
  sqlite3_bind_int64(in, 10, holds ? f->stored - f->dropped : 0);
  if (!f->dup_of)
    bind_col(in, 11, st, 6);
  int rc = shard_step(s, S_FILE);
  for (uint32_t k = 0; rc == 0 && holds && k < f->np; k++) {
    const mr_ref *p = &m->pieces[f->p0 + k];
    sqlite3_bind_int64(s->ins[S_PIECE], 1, f->fid);
    sqlite3_bind_int64(s->ins[S_PIECE], 2, p->a);
    sqlite3_bind_int64(s->ins[S_PIECE], 3, p->b);
    sqlite3_bind_int64(s->ins[S_PIECE], 4, blob_of(m, p->blob));
    rc = shard_step(s, S_PIECE);
  }
  return rc || !holds ? rc : write_tensors(m, s, f);
}

static int write_repo(mr_ctx *m, shard *s, size_t r)
{
  zllm_archive *a = m->st[m->rank];
  sqlite3_stmt *rr = NULL, *ff = NULL;
  uint32_t i = m->repos[r];
  int rc = ar_prepare(a, &rr, "SELECT name, revision, base, base_reason FROM repos WHERE id = ?");
  if (rc == 0) {
    sqlite3_bind_int64(rr, 1, m->repo_sid[r]);
    rc = sqlite3_step(rr) == SQLITE_ROW ? 0 : zllm_error_set(ZLLM_EFORMAT, "%s: repo %s vanished", a->dir, m->order[i]);
  }
  if (rc == 0) {
    sqlite3_bind_int64(s->ins[S_REPO], 1, m->rid[i]);
    for (int c = 0; c < 4; c++)
      bind_col(s->ins[S_REPO], c + 2, rr, c);
    rc = shard_step(s, S_REPO);
  }
  rc = rc ? rc : ar_prepare(a, &ff, "SELECT id, path, size, sha256, key, method, note FROM files"
                                    " WHERE repo = ? ORDER BY id");
  if (rc == 0)
    sqlite3_bind_int64(ff, 1, m->repo_sid[r]);
  for (size_t k = m->repo_f0[r]; rc == 0 && k < m->repo_f0[r + 1]; k++) {
    if (sqlite3_step(ff) != SQLITE_ROW || sqlite3_column_int64(ff, 0) != m->f[k].sid)
      rc = zllm_error_set(ZLLM_ERROR, "%s: repo %s changed during the merge", a->dir, m->order[i]);
    rc = rc ? rc : write_file(m, s, ff, &m->f[k], m->rid[i]);
  }
  ar_finalize(a, rr);
  ar_finalize(a, ff);
  return rc;
}

static int write_shard(mr_ctx *m, const char *path)
{
  shard s = {.path = path};
  unlink(path);
  int rc = sqlite3_open_v2(path, &s.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK
               ? 0
               : zllm_error_set(ZLLM_EIO, "%s: cannot create", path);
  rc = rc ? rc : sqlite3_exec(s.db, shard_schema, NULL, NULL, NULL) == SQLITE_OK ? 0 : shard_error(&s, "schema");
  rc = rc ? rc : sqlite3_exec(s.db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : shard_error(&s, "BEGIN");
  for (int k = 0; rc == 0 && k < 7; k++)
    if (sqlite3_prepare_v2(s.db, shard_insert[k], -1, &s.ins[k], NULL) != SQLITE_OK)
      rc = shard_error(&s, shard_insert[k]);
  if (rc == 0 && m->nrepos) {
    char name[32];
    snprintf(name, sizeof name, "pack-m%04lld.zpk", (long long)m->pack_id);
    sqlite3_bind_int64(s.ins[S_PACK], 1, m->pack_id);
    sqlite3_bind_text(s.ins[S_PACK], 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s.ins[S_PACK], 3, m->committed_len);
    rc = shard_step(&s, S_PACK);
  }
  rc = rc ? rc : write_blobs(m, &s);
  for (size_t r = 0; rc == 0 && r < m->nrepos; r++)
    rc = write_repo(m, &s, r);
  rc = rc ? rc : sqlite3_exec(s.db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : shard_error(&s, "COMMIT");
  for (int k = 0; k < 7; k++)
    sqlite3_finalize(s.ins[k]);
  sqlite3_close(s.db);
  return rc;
}

/* Packs in order of their first repo, after the ones `dst` has. */
static int number_packs(mr_ctx *m)
{
  int64_t first = m->nrepos ? (int64_t)m->repos[0] : INT64_MAX;
  int64_t *all = calloc((size_t)m->size, sizeof *all);
  int rc = all ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int mrc = MPI_Allgather(&first, 1, MPI_INT64_T, all ? all : &first, 1, MPI_INT64_T, m->comm);
  if (rc == 0 && mrc != MPI_SUCCESS)
    rc = zllm_error_set(ZLLM_EMPI, "merge: gathering the first repos failed");
  m->pack_id = m->first_pack;
  for (int k = 0; rc == 0 && k < m->size; k++)
    m->pack_id += all[k] < first;
  free(all);
  return rc;
}

/* ---- 6. rank 0: the shards copied in ----------------------------------------------- */

static int copy_shard(zllm_archive *d, const char *shard_path, const char *stage_dir)
{
  static const char *copy[] = {
      "INSERT INTO main.packs SELECT * FROM s.packs",   "INSERT INTO main.blobs SELECT * FROM s.blobs",
      "INSERT INTO main.repos SELECT * FROM s.repos",   "INSERT INTO main.files SELECT * FROM s.files",
      "INSERT INTO main.pieces SELECT * FROM s.pieces", "INSERT INTO main.tensors SELECT * FROM s.tensors",
      "INSERT INTO main.parts SELECT * FROM s.parts"};
  sqlite3_stmt *st = NULL;
  char *name = NULL, *from = NULL, *to = NULL, *dir = zllm_path_join(d->dir, "packs");
  int rc = dir ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && sqlite3_prepare_v2(d->db, "ATTACH ? AS s", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, shard_path, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
      rc = ar_sql_error(d, "attaching a shard");
  } else if (rc == 0)
    rc = ar_sql_error(d, "attaching a shard");
  sqlite3_finalize(st);
  st = NULL;
  int attached = rc == 0;
  /* the pack file first: the catalog never names a pack that is not there */
  if (rc == 0 && sqlite3_prepare_v2(d->db, "SELECT name FROM s.packs", -1, &st, NULL) != SQLITE_OK)
    rc = ar_sql_error(d, "reading a shard");
  if (rc == 0 && sqlite3_step(st) == SQLITE_ROW && !(name = strdup((const char *)sqlite3_column_text(st, 0))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  sqlite3_finalize(st);
  if (rc == 0 && name) {
    if (!(from = zllm_path_join(stage_dir, "packs/pack-0000.zpk")) || !(to = zllm_path_join(dir, name)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    else
      rc = ar_merge_move_pack(from, to, dir);
  }
  rc = rc ? rc : ar_begin(d);
  for (size_t k = 0; rc == 0 && k < sizeof copy / sizeof *copy; k++)
    rc = ar_exec(d, copy[k]);
  rc = rc ? rc : ar_commit(d);
  if (rc < 0 && attached)
    ar_rollback(d);
  if (attached)
    sqlite3_exec(d->db, "DETACH s", NULL, NULL, NULL);
  free(name);
  free(from);
  free(to);
  free(dir);
  return rc;
}

/* ---- the whole -------------------------------------------------------------------- */

static int alloc_repo_arrays(mr_ctx *m)
{
  size_t n = m->norder + 1;
  if (!(m->by_name = calloc(n, sizeof *m->by_name)) || !(m->packer = malloc(n * sizeof *m->packer)) ||
      !(m->local_repo = malloc(n * sizeof *m->local_repo)) || !(m->fbase = calloc(n, 8)) ||
      !(m->tbase = calloc(n, 8)) ||
      !(m->bbase = calloc(n, 8)) || !(m->rid = calloc(n, 8)) || !(m->st = calloc((size_t)m->size, sizeof *m->st)) ||
      !(m->ext = calloc((size_t)m->size, sizeof *m->ext)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < m->norder; i++) {
    m->by_name[i] = (struct named){m->order[i], i};
    m->packer[i] = m->size;
    m->local_repo[i] = -1;
  }
  qsort(m->by_name, m->norder, sizeof *m->by_name, cmp_name);
  return 0;
}

static void free_ctx(mr_ctx *m)
{
  for (int k = 0; m->st && k < m->size; k++)
    zllm_archive_close(m->st[k]);
  free(m->st);
  free(m->ext);
  free(m->by_name);
  free(m->packer);
  free(m->local_repo);
  free(m->fbase);
  free(m->tbase);
  free(m->bbase);
  free(m->rid);
  free(m->repos);
  free(m->repo_sid);
  free(m->repo_f0);
  free(m->f);
  free(m->t);
  free(m->pieces);
  free(m->parts);
  free(m->tmap);
  free(m->bfinal);
}

/* Steps 1 to 4: every rank's rows with their merged ids, decided. */
static int decide(mr_ctx *m)
{
  /* fault injection for tests: ZLLM_TEST_MERGE_FAIL=R fails rank R's part before anything is written */
  const char *fail = getenv("ZLLM_TEST_MERGE_FAIL");
  int rc = alloc_repo_arrays(m);
  rc = rc ? rc : list_share(m);
  if ((rc = agree(m, rc)) < 0)
    return rc;
  /* the packer of every repo; then each rank's repos, and every repo's files counted */
  if (MPI_Allreduce(MPI_IN_PLACE, m->packer, (int)m->norder, MPI_INT32_T, MPI_MIN, m->comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "merge: gathering the packers failed");
  rc = read_share(m);
  if (rc == 0 && fail && atoi(fail) == m->rank)
    rc = zllm_error_set(ZLLM_ERROR, "ZLLM_TEST_MERGE_FAIL: rank %d's part of the merge fails on purpose", m->rank);
  if ((rc = agree(m, rc)) < 0 || (rc = to_bases(m, m->fbase)) < 0)
    return rc;
  int64_t at = 0;
  for (size_t i = 0; i < m->norder; i++)
    m->rid[i] = m->packer[i] < m->size ? ++at : 0;
  if ((rc = agree(m, decide_files(m))) < 0 || (rc = agree(m, number_tensors(m))) < 0 ||
      (rc = agree(m, decide_tensors(m))) < 0)
    return rc;
  rc = resolve_names(m); /* agrees in every round */
  rc = rc ? rc : number_blobs(m);
  m->file_dups = zllm_mpi_sum_u64(m->file_dups, m->comm);
  m->tensor_dups = zllm_mpi_sum_u64(m->tensor_dups, m->comm);
  m->compares = zllm_mpi_sum_u64(m->compares, m->comm);
  if ((rc = agree(m, rc)) < 0)
    return rc;
  return agree(m, number_packs(m));
}

int zllm_archive_merge_ranks(zllm_archive *dst, char *const *stages, const char *shard_dir, char *const *order,
                             size_t norder, int *fallback, MPI_Comm comm)
{
  mr_ctx m = {.comm = comm, .stages = stages, .order = order, .norder = norder};
  char name[32], *path = NULL;
  int64_t v[2] = {0, 0}; /* rank 0: the destination's packs; whether it is empty */
  int rc = 0;
  double t_start = MPI_Wtime();
  *fallback = 1;
  MPI_Comm_rank(comm, &m.rank);
  MPI_Comm_size(comm, &m.size);
  if (m.rank == 0 && !dst)
    rc = zllm_error_set(ZLLM_EINVAL, "merge: rank 0 has no destination");
  else if (m.rank == 0) { /* ids are counted from 1: the destination must hold no repo yet */
    v[0] = ar_merge_max_id(dst, "packs", &rc);
    int64_t repos = ar_merge_max_id(dst, "repos", &rc), blobs = ar_merge_max_id(dst, "blobs", &rc);
    v[1] = rc == 0 && repos == 0 && blobs == 0;
  }
  if (MPI_Bcast(v, 2, MPI_INT64_T, 0, comm) != MPI_SUCCESS && rc == 0)
    rc = zllm_error_set(ZLLM_EMPI, "merge: broadcast failed");
  if (rc == 0 && !v[1])
    rc = zllm_error_set(ZLLM_EINVAL, "merge: the destination is not empty");
  m.first_pack = v[0] + 1;
  if (!zllm_mpi_alltrue(rc == 0, comm)) { /* every rank knows why: no rank says it again */
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "merge: rank 0 could not read the destination");
    goto done;
  }
  rc = decide(&m);
  snprintf(name, sizeof name, "rows-%d.sqlite", m.rank);
  if (rc == 0 && !(path = zllm_path_join(shard_dir, name)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : write_shard(&m, path);
  free(path);
  path = NULL;
  if (rc < 0 && !m.said)
    ZLLM_WARN("merge: rank %d: %s", m.rank, zllm_error_last());
  for (int k = 0; m.st && k < m.size; k++) { /* done reading: rank 0 moves their pack files next */
    zllm_archive_close(m.st[k]);
    m.st[k] = NULL;
  }
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "merge: another rank failed");
    goto done;
  }
  *fallback = 0; /* from here on, a failure is the archive's: it is half written */
  double t_copy = MPI_Wtime();
  if (m.rank == 0) /* built once, after every row is in */
    rc = ar_secondary_indexes(dst, 0);
  for (int k = 0; m.rank == 0 && rc == 0 && k < m.size; k++) {
    snprintf(name, sizeof name, "rows-%d.sqlite", k);
    if (!(path = zllm_path_join(shard_dir, name)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = rc ? rc : copy_shard(dst, path, stages[k]);
    if (path)
      unlink(path);
    free(path);
    path = NULL;
  }
  if (m.rank == 0 && rc == 0)
    rc = ar_secondary_indexes(dst, 1);
  if (rc == 0 && m.rank == 0)
    ZLLM_INFO("pack: merged on %d ranks: %llu files and %llu tensors found stored by an earlier repo of another"
              " rank's share (%llu tensor byte comparisons), names resolved in %llu rounds; rows decided and"
              " written in %.2f s, copied in by rank 0 in %.2f s", m.size, m.file_dups, m.tensor_dups, m.compares,
              m.rounds, t_copy - t_start, MPI_Wtime() - t_copy);
done:
  free_ctx(&m);
  return rc;
}
