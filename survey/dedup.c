/* Hash-level duplicates, counted by the owners of the hashes
 * (survey/dedup.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "survey/dedup.h"
#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/mpi.h"

typedef struct {
  uint8_t hash[32];
  uint64_t repo;
} holder;

struct sv_holders {
  holder *v; /* sorted by hash, then repo; unique */
  size_t n;
};

/* A question about a hash, and an answer about a repo. */
typedef struct {
  uint8_t hash[32];
  int32_t from;
  uint64_t repo, other;
} query;

typedef struct {
  int32_t to;
  uint64_t repo, other;
} answer;

/* Hashes are uniform: their first 8 bytes pick the owner. */
static int owner_of(const uint8_t *hash, int nranks)
{
  uint64_t h;
  memcpy(&h, hash, sizeof h);
  return (int)(h % (uint64_t)nranks);
}

int sv_outbox_init(sv_outbox *o, MPI_Comm comm)
{
  MPI_Comm_size(comm, &o->nranks);
  o->to = calloc((size_t)o->nranks, sizeof *o->to);
  return o->to ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
}

int sv_outbox_file(sv_outbox *o, const sv_file_hash *h)
{
  return zllm_buf_append(&o->to[owner_of(h->hash, o->nranks)], h, sizeof *h);
}

int sv_outbox_tensor(sv_outbox *o, const sv_tensor_hash *h)
{
  return zllm_buf_append(&o->to[owner_of(h->hash, o->nranks)], h, sizeof *h);
}

void sv_outbox_free(sv_outbox *o)
{
  for (int r = 0; o->to && r < o->nranks; r++)
    zllm_buf_free(&o->to[r]);
  free(o->to);
  o->to = NULL;
}

/* The outbox to the owners (emptied once sent); *out what came here.  A
 * rank that could not fill its outbox (ok 0) still takes part. */
static int send_outbox(sv_outbox *o, int ok, size_t size, void **out, size_t *nout, MPI_Comm comm)
{
  char **send = calloc((size_t)o->nranks + 1, sizeof *send), *got = NULL;
  size_t *len = calloc((size_t)o->nranks + 1, sizeof *len), glen = 0;
  int rc = !ok ? ZLLM_ERROR : send && len && o->to ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int r = 0; rc == 0 && r < o->nranks; r++) {
    send[r] = o->to[r].data;
    len[r] = o->to[r].len;
  }
  if (!zllm_mpi_alltrue(rc == 0, comm))
    rc = rc ? rc : zllm_error_set(ZLLM_ENOMEM, "dedup: out of memory on another rank");
  else
    rc = zllm_mpi_alltoall_bytes(send, len, &got, &glen, comm);
  sv_outbox_free(o);
  free(send);
  free(len);
  if (rc == 0 && glen % size)
    rc = zllm_error_set(ZLLM_EFORMAT, "dedup: %zu bytes received, not whole records", glen);
  if (rc < 0) {
    free(got);
    return rc;
  }
  *out = got;
  *nout = glen / size;
  return 0;
}

/* Each of n records of `size` bytes to rank dest[i]; *out gets what came
 * here from every rank (caller frees). */
static int exchange(const void *recs, size_t n, size_t size, const int *dest, void **out, size_t *nout,
                    MPI_Comm comm)
{
  sv_outbox o = {0};
  int rc = sv_outbox_init(&o, comm);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = zllm_buf_append(&o.to[dest[i]], (const char *)recs + i * size, size);
  return send_outbox(&o, rc == 0, size, out, nout, comm);
}

static int sum2(uint64_t *a, uint64_t *b, MPI_Comm comm)
{
  uint64_t v[2] = {*a, *b};
  if (MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_SUM, comm) != MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "dedup: MPI_Allreduce failed");
  *a = v[0];
  *b = v[1];
  return 0;
}

/* Unreadable files group together (their hash is zero), apart from any hash. */
static int same_file_hash(const sv_file_hash *x, const sv_file_hash *y)
{
  return x->readable == y->readable && memcmp(x->hash, y->hash, sizeof x->hash) == 0;
}

static int cmp_file_hash(const void *a, const void *b)
{
  const sv_file_hash *x = a, *y = b;
  if (x->readable != y->readable)
    return x->readable < y->readable ? -1 : 1;
  int c = memcmp(x->hash, y->hash, sizeof x->hash);
  return c ? c : (x->file < y->file ? -1 : x->file > y->file);
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_holder(const void *a, const void *b)
{
  const holder *x = a, *y = b;
  int c = memcmp(x->hash, y->hash, sizeof x->hash);
  return c ? c : (x->repo < y->repo ? -1 : x->repo > y->repo);
}

/* The weight files' (hash, repo) among the owner's sorted records. */
static int keep_holders(const sv_file_hash *v, size_t n, sv_holders **out)
{
  sv_holders *h = calloc(1, sizeof *h);
  if (!h || !(h->v = calloc(n + 1, sizeof *h->v))) {
    free(h);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    if (v[i].weight && v[i].readable) {
      memcpy(h->v[h->n].hash, v[i].hash, sizeof v[i].hash);
      h->v[h->n++].repo = v[i].repo;
    }
  qsort(h->v, h->n, sizeof *h->v, cmp_holder);
  size_t k = 0;
  for (size_t i = 0; i < h->n; i++)
    if (k == 0 || cmp_holder(&h->v[k - 1], &h->v[i]) != 0)
      h->v[k++] = h->v[i];
  h->n = k;
  *out = h;
  return 0;
}

/* The owner's verdicts: each hash's first file (hub order) is kept; the
 * others are duplicates, told to the ranks that sent them ("-" files are
 * counted so but stay unique: an unreadable file is never merged). */
static int judge_files(sv_file_hash *v, size_t n, answer **tell, int **to, size_t *ntell, uint64_t *kept,
                       uint64_t *ndups)
{
  *tell = calloc(n + 1, sizeof **tell);
  *to = calloc(n + 1, sizeof **to);
  if (!*tell || !*to)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  qsort(v, n, sizeof *v, cmp_file_hash);
  for (size_t i = 0, j; i < n; i = j) {
    for (j = i + 1; j < n && same_file_hash(&v[j], &v[i]); j++)
      ;
    *kept += v[i].bytes;
    *ndups += j - i - 1;
    for (size_t k = i + 1; k < j && v[i].readable; k++) {
      (*to)[*ntell] = v[k].from;
      (*tell)[(*ntell)++] = (answer){v[k].from, v[k].file, 0};
    }
  }
  return 0;
}

int sv_dedup_files(sv_outbox *mine, uint64_t **dups, size_t *ndups, uint64_t *kept, uint64_t *ndup_files,
                   sv_holders **h, MPI_Comm comm)
{
  int *to = NULL;
  sv_file_hash *got = NULL;
  answer *tell = NULL, *back = NULL;
  size_t ngot = 0, ntell = 0, nback = 0;
  *kept = *ndup_files = 0;
  *dups = NULL;
  *ndups = 0;
  *h = NULL;
  int me;
  MPI_Comm_rank(comm, &me);
  int rc = send_outbox(mine, 1, sizeof *got, (void **)&got, &ngot, comm);
  rc = rc ? rc : zllm_test_fail("dedup", me);
  rc = rc ? rc : judge_files(got, ngot, &tell, &to, &ntell, kept, ndup_files);
  rc = rc ? rc : keep_holders(got, ngot, h);
  rc = zllm_mpi_alltrue(rc == 0, comm) ? exchange(tell, ntell, sizeof *tell, to, (void **)&back, &nback, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ERROR, "dedup: another rank failed"));
  if (rc == 0 && !(*dups = calloc(nback + 1, sizeof **dups)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < nback; i++)
    (*dups)[i] = back[i].repo;
  if (rc == 0) {
    *ndups = nback;
    qsort(*dups, nback, sizeof **dups, cmp_u64);
  }
  rc = zllm_mpi_alltrue(rc == 0, comm) ? sum2(kept, ndup_files, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ERROR, "dedup: another rank failed"));
  free(to);
  free(got);
  free(tell);
  free(back);
  if (rc < 0) {
    free(*dups);
    *dups = NULL;
    sv_holders_free(*h);
    *h = NULL;
  }
  return rc;
}

static int cmp_tensor_hash(const void *a, const void *b)
{
  const sv_tensor_hash *x = a, *y = b;
  int c = memcmp(x->hash, y->hash, sizeof x->hash);
  if (c)
    return c;
  if (x->file != y->file)
    return x->file < y->file ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

int sv_dedup_tensors(sv_outbox *mine, uint64_t *kept, uint64_t *ndups, MPI_Comm comm)
{
  sv_tensor_hash *got = NULL;
  size_t ngot = 0;
  *kept = *ndups = 0;
  int rc = send_outbox(mine, 1, sizeof *got, (void **)&got, &ngot, comm);
  if (rc == 0 && ngot)
    qsort(got, ngot, sizeof *got, cmp_tensor_hash);
  for (size_t i = 0, j; rc == 0 && i < ngot; i = j) {
    for (j = i + 1; j < ngot && memcmp(got[j].hash, got[i].hash, sizeof got[i].hash) == 0; j++)
      ;
    *kept += got[i].bytes;
    *ndups += j - i - 1;
  }
  rc = zllm_mpi_alltrue(rc == 0, comm) ? sum2(kept, ndups, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ERROR, "dedup: another rank failed"));
  free(got);
  return rc;
}

/* ---- re-uploads ------------------------------------------------------------ */

static const holder *first_holder(const sv_holders *h, const uint8_t *hash)
{
  size_t a = 0, b = h->n;
  while (a < b) {
    size_t m = (a + b) / 2;
    if (memcmp(h->v[m].hash, hash, sizeof h->v[m].hash) < 0)
      a = m + 1;
    else
      b = m;
  }
  return a < h->n && memcmp(h->v[a].hash, hash, sizeof h->v[a].hash) == 0 ? &h->v[a] : NULL;
}

static int holds(const sv_holders *h, const uint8_t *hash, uint64_t repo)
{
  holder key;
  memcpy(key.hash, hash, sizeof key.hash);
  key.repo = repo;
  return bsearch(&key, h->v, h->n, sizeof *h->v, cmp_holder) != NULL;
}

/* Sends questions to the owners of their hashes; `ask` answers each one
 * there, appending answers (to the asker) to `out`. */
typedef int (*answer_fn)(const sv_holders *h, const query *q, answer **out, size_t *n, size_t *cap);

static int ask_owners(const query *q, size_t n, const sv_holders *h, answer_fn ask, answer **back, size_t *nback,
                      MPI_Comm comm)
{
  int nranks;
  MPI_Comm_size(comm, &nranks);
  int *dest = calloc(n + 1, sizeof *dest), *to = NULL;
  query *got = NULL;
  answer *ans = NULL;
  size_t ngot = 0, nans = 0, cap = 0;
  int rc = dest ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++)
    dest[i] = owner_of(q[i].hash, nranks);
  rc = zllm_mpi_alltrue(rc == 0, comm) ? exchange(q, n, sizeof *q, dest, (void **)&got, &ngot, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ENOMEM, "dedup: out of memory"));
  for (size_t i = 0; rc == 0 && i < ngot; i++)
    rc = ask(h, &got[i], &ans, &nans, &cap);
  if (rc == 0 && !(to = calloc(nans + 1, sizeof *to)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < nans; i++)
    to[i] = ans[i].to;
  rc = zllm_mpi_alltrue(rc == 0, comm) ? exchange(ans, nans, sizeof *ans, to, (void **)back, nback, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ERROR, "dedup: another rank failed"));
  free(dest);
  free(to);
  free(got);
  free(ans);
  return rc;
}

static int add_answer(answer **out, size_t *n, size_t *cap, answer a)
{
  int rc = zllm_grow((void **)out, cap, *n + 1, sizeof **out);
  if (rc == 0)
    (*out)[(*n)++] = a;
  return rc;
}

/* The earlier repos holding the first weight file: the candidates. */
static int answer_candidates(const sv_holders *h, const query *q, answer **out, size_t *n, size_t *cap)
{
  int rc = 0;
  for (const holder *x = first_holder(h, q->hash); rc == 0 && x && x < h->v + h->n; x++) {
    if (memcmp(x->hash, q->hash, sizeof x->hash) != 0 || x->repo >= q->repo)
      break;
    rc = add_answer(out, n, cap, (answer){q->from, q->repo, x->repo});
  }
  return rc;
}

/* A candidate without one of the other weight files: struck out. */
static int answer_missing(const sv_holders *h, const query *q, answer **out, size_t *n, size_t *cap)
{
  return holds(h, q->hash, q->other) ? 0 : add_answer(out, n, cap, (answer){q->from, q->repo, q->other});
}

static int cmp_answer(const void *a, const void *b)
{
  const answer *x = a, *y = b;
  if (x->repo != y->repo)
    return x->repo < y->repo ? -1 : 1;
  return x->other < y->other ? -1 : x->other > y->other;
}

static int readable(const sv_repo_weights *w)
{
  return !w->unreadable && w->nsha > 0;
}

static const sv_repo_weights *find_repo(const sv_repo_weights *repos, size_t n, uint64_t repo)
{
  size_t a = 0, b = n;
  while (a < b) {
    size_t m = (a + b) / 2;
    if (repos[m].repo < repo)
      a = m + 1;
    else
      b = m;
  }
  return a < n && repos[a].repo == repo ? &repos[a] : NULL;
}

/* The other weight files of every candidate, asked of their owners. */
static int check_candidates(const sv_repo_weights *repos, size_t n, const answer *cand, size_t ncand,
                            const sv_holders *h, answer **missing, size_t *nmissing, MPI_Comm comm)
{
  query *q = NULL;
  size_t nq = 0, cap = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < ncand; i++) {
    const sv_repo_weights *w = find_repo(repos, n, cand[i].repo);
    for (size_t k = 1; rc == 0 && w && k < w->nsha; k++) {
      rc = zllm_grow((void **)&q, &cap, nq + 1, sizeof *q);
      if (rc == 0) {
        q[nq] = (query){.repo = cand[i].repo, .other = cand[i].other};
        memcpy(q[nq].hash, w->sha[k], sizeof q[nq].hash);
        MPI_Comm_rank(comm, &q[nq++].from);
      }
    }
  }
  rc = zllm_mpi_alltrue(rc == 0, comm) ? ask_owners(q, nq, h, answer_missing, missing, nmissing, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ENOMEM, "dedup: out of memory"));
  if (rc == 0 && *nmissing)
    qsort(*missing, *nmissing, sizeof **missing, cmp_answer);
  free(q);
  return rc;
}

int sv_dedup_repos(const sv_repo_weights *repos, size_t n, const sv_holders *h, uint64_t **holder_out, MPI_Comm comm)
{
  int me;
  MPI_Comm_rank(comm, &me);
  query *q = calloc(n + 1, sizeof *q);
  answer *cand = NULL, *missing = NULL;
  size_t nq = 0, ncand = 0, nmissing = 0;
  uint64_t *holder_of = calloc(n + 1, sizeof *holder_of);
  int rc = q && holder_of ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < n; k++) {
    holder_of[k] = UINT64_MAX;
    if (!readable(&repos[k]))
      continue; /* a weight file that could not be read: no holder of it is known */
    q[nq] = (query){.from = me, .repo = repos[k].repo};
    memcpy(q[nq++].hash, repos[k].sha[0], sizeof q->hash);
  }
  rc = zllm_mpi_alltrue(rc == 0, comm) ? ask_owners(q, nq, h, answer_candidates, &cand, &ncand, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ENOMEM, "dedup: out of memory"));
  if (rc == 0 && ncand)
    qsort(cand, ncand, sizeof *cand, cmp_answer);
  rc = zllm_mpi_alltrue(rc == 0, comm) ? check_candidates(repos, n, cand, ncand, h, &missing, &nmissing, comm)
                                       : (rc ? rc : zllm_error_set(ZLLM_ERROR, "dedup: another rank failed"));
  /* each repo's first candidate that nobody struck out */
  for (size_t i = 0; rc == 0 && i < ncand; i++) {
    const sv_repo_weights *w = find_repo(repos, n, cand[i].repo);
    size_t k = w ? (size_t)(w - repos) : n;
    if (k < n && holder_of[k] == UINT64_MAX &&
        !bsearch(&cand[i], missing, nmissing, sizeof *missing, cmp_answer))
      holder_of[k] = cand[i].other;
  }
  free(q);
  free(cand);
  free(missing);
  if (rc < 0) {
    free(holder_of);
    return rc;
  }
  *holder_out = holder_of;
  return 0;
}

void sv_holders_free(sv_holders *h)
{
  if (!h)
    return;
  free(h->v);
  free(h);
}
