/* The survey's one pass: pack reads each file of this rank's share once
 * (zllm/archive.h, zllm_pack_tap), and the same bytes become the file's scan
 * record (SHA-256, XXH3-128, each tensor's XXH3-128) and its statistics rows
 * (the plain and delta tallies of zllm/tally.h against the chosen base).
 * What the pass could not see whole (a file pack refused or failed to read,
 * a repo pack skipped) is left to the scan and statistics code, which read
 * it themselves. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/phases.h"
#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/path.h"

struct sv_pass {
  sv_run *run;
  zllm_pack_tap tap;
  sv_records *rec; /* this rank's scan records */
  uint8_t *seen;   /* per file of the hub, a bit: its record is written */
  char *failed;    /* per repo: a file of it was not read whole */
  uint64_t bytes;  /* bytes read whole */
  zllm_mpi_progress *progress; /* the whole job's pass (phase_pass owns it) */
  uint64_t shown;  /* bytes of the current file already added to it */
  /* the file being read */
  long file;       /* its number (hub order), -1 when the listing lacks it */
  zllm_hub_file hf; /* its listing's entry (borrowed from the repo pack holds while it reads) */
  sv_repo_pass *repo; /* its repo's state (the one being read: the others are spilled) */
  long cur;           /* that repo's index, or -1 */
  const zllm_st_header *h;
  char header_error[1024];
  zllm_xxh128 *txxh;
  size_t row0;     /* its first row in repo->rows */
  zllm_tally_delta delta;
};

/* The number of repo's file `f`, and its listing's entry; -1 when the
 * listing lacks it.  Pack reads the entries of the listing it holds, so
 * `f` is one of them: found by its place, not by a search of the paths. */
static long file_index(const sv_run *run, size_t repo, const zllm_hub_file *f, zllm_hub_file *hf)
{
  const zllm_repo *r = NULL;
  long at = -1;
  if (zllm_hub_get(run->hub, repo, &r) < 0) /* pack holds it: a count, not a read */
    return -1;
  uintptr_t p = (uintptr_t)f, a = (uintptr_t)r->files, b = (uintptr_t)(r->files + r->nfiles);
  size_t i = p >= a && p < b ? (p - a) / sizeof *f : 0; /* else a search from the first */
  for (; at < 0 && i < r->nfiles; i++)
    if (strcmp(r->files[i].path, f->path) == 0) {
      at = (long)(run->list.first[repo] + i);
      *hf = r->files[i];
    }
  zllm_hub_put(run->hub, repo);
  return at;
}

static int seen(const sv_pass *s, size_t file)
{
  return s->seen[file >> 3] >> (file & 7) & 1;
}

static int grow_rows(sv_repo_pass *p, size_t more)
{
  if (p->nrows + more <= p->cap)
    return 0;
  /* a file's tensors exactly at first (one tensor: one row, not 64), then doubling */
  size_t cap = p->cap ? p->cap : p->nrows + more;
  while (cap < p->nrows + more)
    cap *= 2;
  sv_trow *r = realloc(p->rows, cap * sizeof *r);
  uint64_t *a = r ? realloc(p->sig_full, cap * 8) : NULL;
  uint64_t *b = a ? realloc(p->sig_shape, cap * 8) : NULL;
  if (r)
    p->rows = r;
  if (a)
    p->sig_full = a;
  if (!b)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  p->sig_shape = b;
  p->cap = cap;
  return 0;
}

/* ---- the spill: what the pass saw of each repo, once it moved on ---------- */

enum { PASS_SPILLED = 1, PASS_AGAIN = 2, PASS_COMPLETE = 4 };

typedef struct {
  uint64_t off, nrows, files_done;
  uint32_t state; /* PASS_* */
} pass_ref;

typedef struct { /* a repo's record in the spill; then `len` bytes: its tallies and rows, sparse */
  uint64_t files_done, nrows, len;
  sv_mrow model;
} pass_head;

struct sv_pass_spill {
  char *path;
  FILE *f;
  pass_ref *ref; /* per repo of the hub (32 bytes each) */
  size_t n;
};

void sv_repo_pass_free(sv_repo_pass *p)
{
  if (!p)
    return;
  free(p->rows);
  free(p->sig_full);
  free(p->sig_shape);
  free(p);
}

static int spill_open(sv_run *run)
{
  char name[48];
  snprintf(name, sizeof name, "pass-%d.bin", run->rank);
  char *dir = zllm_path_join(run->opts.out, SV_SPILL_DIR);
  sv_pass_spill *sp = calloc(1, sizeof *sp);
  int rc = dir && sp && (sp->path = zllm_path_join(dir, name)) && (sp->ref = calloc(run->list.nrepos + 1, sizeof *sp->ref))
               ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !(sp->f = fopen(sp->path, "w+b")))
    rc = zllm_error_set_errno("%s: cannot create the pass's spill", sp->path);
  free(dir);
  sp = rc == 0 ? sp : (sv_pass_spill_free(sp), NULL);
  run->passed = sp;
  if (sp)
    sp->n = run->list.nrepos;
  return rc;
}

/* The current repo's state to the spill, its signatures settled (they
 * count only when the repo turns out complete). */
static int spill_current(sv_pass *s)
{
  sv_pass_spill *sp = s->run->passed;
  sv_repo_pass *p = s->repo;
  int rc = 0;
  if (!p)
    return 0;
  sv_finish_sig(&p->model, p->sig_full, p->sig_shape, p->nrows);
  pass_head h = {.files_done = p->files_done, .nrows = p->nrows, .model = p->model};
  pass_ref *ref = &sp->ref[s->cur];
  zllm_buf body = ZLLM_BUF_INIT;
  rc = sv_sparse_put(&body, p->exps, sizeof p->exps);
  rc = rc ? rc : sv_sparse_put(&body, p->rows ? (const void *)p->rows : "", p->nrows * sizeof *p->rows);
  h.len = body.len;
  off_t at = ftello(sp->f);
  if (rc == 0 && (at < 0 || fwrite(&h, sizeof h, 1, sp->f) != 1 || fwrite(body.data, 1, body.len, sp->f) != body.len))
    rc = zllm_error_set_errno("%s: cannot write the pass's spill", sp->path);
  zllm_buf_free(&body);
  ref->state |= ref->state & PASS_SPILLED ? PASS_AGAIN : PASS_SPILLED;
  ref->off = (uint64_t)at;
  ref->nrows = p->nrows;
  ref->files_done = p->files_done;
  sv_repo_pass_free(p);
  s->repo = NULL;
  s->cur = -1;
  return rc;
}

/* The state of `repo`, made when the pass reaches it; the previous repo's
 * goes to the spill, so a rank holds one repo's tallies (~60 KB), not its
 * share's.  A repo the pass comes back to is read again by the statistics. */
static sv_repo_pass *repo_pass(sv_pass *s, size_t repo)
{
  if (s->cur == (long)repo)
    return s->repo;
  if (spill_current(s) < 0)
    return NULL;
  s->repo = calloc(1, sizeof *s->repo);
  s->cur = s->repo ? (long)repo : -1;
  return s->repo;
}

int sv_pass_complete(const sv_run *run, size_t repo, size_t *nrows)
{
  const pass_ref *ref = run->passed && repo < run->passed->n ? &run->passed->ref[repo] : NULL;
  if (nrows)
    *nrows = ref ? (size_t)ref->nrows : 0;
  return ref && (ref->state & PASS_COMPLETE);
}

int sv_pass_load(sv_run *run, size_t repo, sv_repo_pass **out)
{
  sv_pass_spill *sp = run->passed;
  const pass_ref *ref = &sp->ref[repo];
  sv_repo_pass *p = calloc(1, sizeof *p);
  pass_head h;
  char *body = NULL;
  int rc = p ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !(ref->state & PASS_SPILLED)) { /* a repo without files: nothing to read */
    sv_finish_sig(&p->model, NULL, NULL, 0);
    p->complete = 1;
    *out = p;
    return 0;
  }
  if (rc == 0 && fflush(sp->f) != 0)
    rc = zllm_error_set_errno("%s: cannot write the pass's spill", sp->path);
  rc = rc ? rc : zllm_pread_full(fileno(sp->f), &h, sizeof h, ref->off, sp->path);
  if (rc == 0 && h.nrows != ref->nrows)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: a record out of step", sp->path);
  if (rc == 0 && (!(p->rows = calloc(h.nrows + 1, sizeof *p->rows)) || !(body = malloc(h.len + 1))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_pread_full(fileno(sp->f), body, h.len, ref->off + sizeof h, sp->path);
  zllm_reader r = {body, h.len};
  rc = rc ? rc : sv_sparse_get(&r, p->exps, sizeof p->exps);
  rc = rc ? rc : sv_sparse_get(&r, p->rows, h.nrows * sizeof *p->rows);
  free(body);
  if (rc < 0) {
    sv_repo_pass_free(p);
    return rc;
  }
  p->complete = 1;
  p->files_done = h.files_done;
  p->nrows = p->cap = h.nrows;
  p->model = h.model;
  *out = p;
  return 0;
}

void sv_pass_spill_free(sv_pass_spill *sp)
{
  if (!sp)
    return;
  if (sp->f) {
    fclose(sp->f);
    unlink(sp->path);
  }
  free(sp->path);
  free(sp->ref);
  free(sp);
}

static int on_file_begin(void *ctx, const char *repo, const zllm_hub_file *f, const zllm_st_header *h,
                         const char *header_error)
{
  sv_pass *s = ctx;
  const sv_list *l = &s->run->list;
  long r = sv_repo_index(l, repo);
  s->file = r >= 0 ? file_index(s->run, (size_t)r, f, &s->hf) : -1;
  s->repo = r >= 0 ? repo_pass(s, (size_t)r) : s->repo;
  s->h = h;
  s->shown = 0;
  snprintf(s->header_error, sizeof s->header_error, "%s", header_error ? header_error : "");
  free(s->txxh);
  s->txxh = NULL;
  if (r >= 0 && !s->repo)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (s->file < 0) /* the hub changed since the walk: the scan reads what is there */
    return 0;
  if (h && (!(s->txxh = calloc(h->ntensors + 1, sizeof *s->txxh)) || grow_rows(s->repo, h->ntensors) < 0))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  s->row0 = s->repo->nrows;
  for (size_t i = 0; h && i < h->ntensors; i++) {
    const zllm_st_tensor *t = &h->tensors[i];
    sv_trow *row = &s->repo->rows[s->repo->nrows];
    memset(row, 0, sizeof *row);
    sv_describe_tensor(row, t, r);
    row->file = (uint32_t)(s->file - (long)l->first[r]);
    row->idx = i;
    sv_tensor_sig(t, &s->repo->sig_full[s->repo->nrows], &s->repo->sig_shape[s->repo->nrows]);
    s->repo->nrows++;
    s->repo->model.tensors++;
    s->repo->model.params[t->dtype] += t->nelem;
  }
  memset(&s->delta, 0, sizeof s->delta);
  return 0;
}

static int on_tensor_part(void *ctx, size_t i, uint64_t off, const uint8_t *p, size_t n, const uint8_t *base)
{
  sv_pass *s = ctx;
  (void)off;
  if (s->file < 0 || !s->h)
    return 0;
  if (s->shown + n <= s->hf.size) { /* the bar moves inside big files too */
    zllm_mpi_progress_add(s->progress, n);
    s->shown += n;
  }
  const zllm_st_tensor *t = &s->h->tensors[i];
  int slot = sv_exp_slot(t->dtype);
  if (slot < 0)
    return 0;
  size_t es = zllm_dtype_get(t->dtype)->size;
  zllm_tally_plain_add(&s->repo->exps[slot].plain, p, n / es, t->dtype);
  if (base)
    zllm_tally_delta_add(&s->delta, p, base, n / es, t->dtype, t->dtype);
  return 0;
}

/* As the statistics phase settles a tensor read by itself (stats.c). */
static int on_tensor_end(void *ctx, size_t i, const zllm_xxh128 *hash, int has_base)
{
  sv_pass *s = ctx;
  if (s->file < 0 || !s->h)
    return 0;
  const zllm_st_tensor *t = &s->h->tensors[i];
  sv_trow *r = &s->repo->rows[s->row0 + i];
  int slot = sv_exp_slot(t->dtype);
  s->txxh[i] = *hash;
  memcpy(r->key, hash->b, 16);
  zllm_hex(r->xxh, hash->b, 16);
  r->has_base = (int8_t)(has_base && slot >= 0);
  if (r->has_base) {
    sv_settle_delta(r, &s->repo->exps[slot], &s->delta, zllm_dtype_get(t->dtype)->size);
    if (r->elements)
      r->identical /= (double)r->elements;
    s->repo->model.same += (uint64_t)llround(r->identical * (double)r->elements);
    s->repo->model.compared += r->elements;
  } else {
    r->identical = NAN;
  }
  memset(&s->delta, 0, sizeof s->delta);
  return 0;
}

static int on_file_end(void *ctx, const zllm_sha256 *sha, const zllm_xxh128 *xxh, const char *error)
{
  sv_pass *s = ctx;
  const sv_list *l = &s->run->list;
  if (s->file < 0)
    return 0;
  const zllm_hub_file *f = &s->hf;
  zllm_mpi_progress_add(s->progress, f->size > s->shown ? f->size - s->shown : 0);
  if (error || !sha) { /* the scan and the statistics read this repo themselves */
    s->failed[s->cur] = 1;
    return 0;
  }
  int rc = zllm_scan_record(sv_records_begin(s->rec), l->repo_ids[s->cur], f, sha, xxh, s->h, s->txxh,
                            s->header_error);
  rc = rc ? rc : sv_records_end(s->rec, (size_t)s->file);
  s->seen[s->file >> 3] |= (uint8_t)(1u << (s->file & 7));
  s->repo->files_done++;
  s->bytes += f->size;
  return rc;
}

int sv_pass_new(sv_pass **out, sv_run *run, zllm_mpi_progress *progress)
{
  sv_pass *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s || !(s->seen = calloc(run->list.nfiles / 8 + 1, 1)) || !(s->failed = calloc(run->list.nrepos + 1, 1))) {
    sv_pass_free(s);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  s->cur = -1;
  int rc = spill_open(run);
  if (rc < 0) {
    sv_pass_free(s);
    return rc;
  }
  s->run = run;
  s->rec = run->records;
  s->tap = (zllm_pack_tap){s, on_file_begin, on_tensor_part, on_tensor_end, on_file_end};
  s->progress = progress;
  *out = s;
  return 0;
}

const zllm_pack_tap *sv_pass_tap(sv_pass *s)
{
  return &s->tap;
}

/* After the pack: each repo of the share is complete or left to the
 * statistics phase, and each file without a record is scanned now. */
int sv_pass_finish(sv_pass *s, const size_t *mine, size_t nmine, uint64_t *bytes)
{
  sv_run *run = s->run;
  int rc = spill_current(s);
  for (size_t k = 0; rc == 0 && k < nmine; k++) {
    size_t repo = mine[k], lo, hi;
    pass_ref *ref = &run->passed->ref[repo];
    sv_repo_files(&run->list, repo, &lo, &hi);
    if (!s->failed[repo] && !(ref->state & PASS_AGAIN) && ref->files_done == hi - lo)
      ref->state |= PASS_COMPLETE;
    size_t unseen = 0;
    const zllm_repo *r = NULL;
    for (size_t i = lo; i < hi; i++)
      unseen += !seen(s, i);
    if (unseen == 0)
      continue;
    rc = zllm_hub_get(run->hub, repo, &r);
    for (size_t i = lo; rc == 0 && i < hi; i++) {
      if (seen(s, i))
        continue;
      const zllm_hub_file *f = &r->files[i - lo];
      rc = zllm_scan_file(sv_records_begin(s->rec), run->hub->src, r, f);
      rc = rc ? rc : sv_records_end(s->rec, i);
      s->bytes += f->size;
    }
    if (r)
      zllm_hub_put(run->hub, repo);
  }
  *bytes = s->bytes;
  return rc;
}

void sv_pass_free(sv_pass *s)
{
  if (!s)
    return;
  free(s->seen);
  free(s->failed);
  free(s->txxh);
  sv_repo_pass_free(s->repo);
  free(s);
}

void sv_pass_rows_free(sv_run *run)
{
  sv_pass_spill_free(run->passed);
  run->passed = NULL;
}
