/* The split listing (zllm/hub.h, zllm_hub_open_local_split): no rank holds
 * the hub's files.  Rank 0 reads the root only (the repo ids and where each
 * lies); each rank lists a contiguous block of repos, one at a time, into
 * its file of a store on the shared file system, and keeps each repo's
 * summary; a repo's listing is read back from its lister's file where it
 * is used.  Every rank holds ~120 bytes per repo of the hub (its id, the
 * summary, where its record lies) and the repos it has in use. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/mpi.h"
#include "zllm/path.h"
#include "crawl/source_internal.h"

/* A record longer than this is refused: a repo lists at most 100,000
 * files, each a few hundred bytes. */
#define STORE_RECORD_MAX ((uint64_t)1 << 31)

struct zllm_hub_store {
  char *dir;
  int rank, size;
  uint64_t *off;  /* per repo: its record in its lister's file */
  uint64_t *len;
  unsigned *refs; /* per repo: gets not yet put */
  int *fds;       /* per lister rank: its file, opened at the first read (-1 before) */
  MPI_Comm comm;  /* a copy of the listing's: freeing waits for every rank */
};

/* The first repo of rank r's block: blocks are contiguous, in rank order. */
static size_t block_lo(int r, size_t n, int size)
{
  return (size_t)((uint64_t)r * n / (uint64_t)size);
}

/* The rank whose block holds repo i: the largest r with block_lo(r) <= i. */
static int lister_of(size_t i, size_t n, int size)
{
  return (int)((((uint64_t)i + 1) * (uint64_t)size - 1) / n);
}

static char *store_file(const char *dir, int rank)
{
  char name[48];
  snprintf(name, sizeof name, "listing-%d.bin", rank);
  return zllm_path_join(dir, name);
}

/* Each rank removes the file it listed into once every rank is done
 * reading (a rank frees its copy when it is done with it). */
void zllm_hub_store_free(struct zllm_hub_store *st)
{
  if (!st)
    return;
  if (st->comm != MPI_COMM_NULL) {
    MPI_Barrier(st->comm);
    MPI_Comm_free(&st->comm);
  }
  char *mine = st->dir ? store_file(st->dir, st->rank) : NULL;
  if (mine)
    unlink(mine);
  free(mine);
  for (int r = 0; st->fds && r < st->size; r++)
    if (st->fds[r] >= 0)
      close(st->fds[r]);
  free(st->fds);
  free(st->off);
  free(st->len);
  free(st->refs);
  free(st->dir);
  free(st);
}

static int store_new(struct zllm_hub_store **out, const char *dir, size_t n, MPI_Comm comm)
{
  struct zllm_hub_store *st = calloc(1, sizeof *st);
  *out = NULL;
  if (st) {
    MPI_Comm_rank(comm, &st->rank);
    MPI_Comm_size(comm, &st->size);
    st->comm = MPI_COMM_NULL;
  }
  if (!st || !(st->dir = strdup(dir)) || !(st->off = calloc(n + 1, sizeof *st->off)) ||
      !(st->len = calloc(n + 1, sizeof *st->len)) || !(st->refs = calloc(n + 1, sizeof *st->refs)) ||
      !(st->fds = malloc((size_t)st->size * sizeof *st->fds))) {
    zllm_hub_store_free(st);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (int r = 0; r < st->size; r++)
    st->fds[r] = -1;
  *out = st;
  return 0;
}

/* ---- reading a repo back ---------------------------------------------------- */

static int store_fd(struct zllm_hub_store *st, int lister, int *fd)
{
  if (st->fds[lister] < 0) {
    char *path = store_file(st->dir, lister);
    if (!path)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    st->fds[lister] = open(path, O_RDONLY | O_CLOEXEC);
    int rc = st->fds[lister] < 0 ? zllm_error_set_errno("%s: cannot open the hub's listing", path) : 0;
    free(path);
    if (rc < 0)
      return rc;
  }
  *fd = st->fds[lister];
  return 0;
}

/* A record: u64 1 and the repo's listing, or u64 0 and why it failed. */
static int decode_record(const zllm_hub *h, size_t i, const char *data, size_t len, zllm_repo **out)
{
  zllm_reader r = {data, len};
  uint64_t ok = 0;
  char *why = NULL;
  zllm_repo *repo = NULL;
  int rc = zllm_reader_u64(&r, &ok);
  if (rc == 0 && !ok) {
    rc = zllm_reader_str(&r, &why);
    rc = rc ? rc : zllm_error_set(ZLLM_ERROR, "%s", why);
    free(why);
    return rc;
  }
  if (rc == 0 && (!(repo = calloc(1, sizeof *repo)) || !(repo->id = strdup(h->ids[i]))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_hub_decode_repo(&r, repo);
  if (rc == 0 && r.left)
    rc = zllm_error_set(ZLLM_EFORMAT, "hub listing of %s: %zu bytes left over", h->ids[i], r.left);
  /* the small files parsed here, as the lister did */
  rc = rc ? rc : zllm_repo_load_meta(h->src, repo);
  if (rc < 0)
    zllm_repo_free(repo);
  else
    *out = repo;
  return rc;
}

int zllm_hub_store_get(const zllm_hub *h, size_t i, const zllm_repo **out)
{
  struct zllm_hub_store *st = h->store;
  if (h->repos[i]) {
    st->refs[i]++;
    *out = h->repos[i];
    return 0;
  }
  int lister = lister_of(i, h->n, st->size), fd = -1;
  char *data = NULL, name[64];
  zllm_repo *repo = NULL;
  snprintf(name, sizeof name, "the hub's listing of rank %d", lister);
  int rc = st->len[i] > STORE_RECORD_MAX ? zllm_error_set(ZLLM_EFORMAT, "%s: a record of %llu bytes", name,
                                                          (unsigned long long)st->len[i])
                                         : store_fd(st, lister, &fd);
  if (rc == 0 && !(data = malloc(st->len[i] + 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_pread_full(fd, data, st->len[i], st->off[i], name);
  rc = rc ? rc : decode_record(h, i, data, st->len[i], &repo);
  free(data);
  if (rc < 0)
    return rc;
  h->repos[i] = repo;
  st->refs[i] = 1;
  *out = repo;
  return 0;
}

void zllm_hub_store_put(const zllm_hub *h, size_t i)
{
  struct zllm_hub_store *st = h->store;
  if (st->refs[i] == 0 || --st->refs[i] > 0)
    return;
  zllm_repo_free(h->repos[i]);
  h->repos[i] = NULL;
}

/* ---- the listing ------------------------------------------------------------- */

static int put_ids(zllm_buf *b, char **ids, size_t n)
{
  int rc = zllm_buf_put_u64(b, n);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = zllm_buf_put_str(b, ids[i]);
  return rc;
}

static int get_ids(const char *data, size_t len, char ***ids, size_t *n)
{
  zllm_reader r = {data, len};
  uint64_t count = 0;
  int rc = zllm_reader_u64(&r, &count);
  if (rc == 0 && count > r.left)
    rc = zllm_error_set(ZLLM_EFORMAT, "hub ids: bad count");
  char **v = rc == 0 ? calloc(count + 1, sizeof *v) : NULL;
  if (rc == 0 && !v)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  size_t k = 0;
  for (; rc == 0 && k < count; k++)
    rc = zllm_reader_str(&r, &v[k]);
  if (rc < 0) {
    zllm_strv_free(v, k);
    return rc;
  }
  *ids = v;
  *n = count;
  return 0;
}

/* Rank 0 reads the root: every rank gets the ids, and each rank the
 * entries of its block (where each repo lies), into a source of its own. */
static int read_root(const char *root_dir, char ***ids, size_t *n, zllm_source **src, MPI_Comm comm)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  zllm_source *all = NULL;
  zllm_buf enc = ZLLM_BUF_INIT, *blocks = calloc((size_t)size, sizeof *blocks);
  char **send = calloc((size_t)size, sizeof *send), *got = NULL, *data = NULL;
  size_t *send_len = calloc((size_t)size, sizeof *send_len), got_len = 0, len = 0;
  int rc = blocks && send && send_len ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  *ids = NULL;
  *n = 0;
  if (rank == 0) {
    rc = rc ? rc : zllm_source_open_local(&all, root_dir);
    rc = rc ? rc : zllm_source_list_repos(all, ids, n);
    rc = rc ? rc : put_ids(&enc, *ids, *n);
    for (int r = 0; rc == 0 && r < size; r++) {
      rc = zllm_source_local_put_entries(all, block_lo(r, *n, size), block_lo(r + 1, *n, size), &blocks[r]);
      send[r] = blocks[r].data;
      send_len[r] = blocks[r].len;
    }
    zllm_source_free(all); /* rank 0 keeps its own block only, as every rank */
  }
  if (zllm_mpi_alltrue(rc == 0, comm)) {
    data = enc.data;
    len = enc.len;
    rc = zllm_mpi_bcast_bytes(&data, &len, 0, comm);
    if (rc == 0 && rank != 0)
      rc = get_ids(data, len, ids, n);
    rc = zllm_mpi_alltrue(rc == 0, comm) ? zllm_mpi_alltoall_bytes(send, send_len, &got, &got_len, comm)
                                         : (rc ? rc : zllm_error_set(ZLLM_EMPI, "another rank could not take the ids"));
  } else if (rc == 0) {
    rc = zllm_error_set(ZLLM_ERROR, "rank 0 could not read %s", root_dir);
  }
  rc = rc ? rc : zllm_source_attach_local(src, root_dir);
  rc = rc ? rc : zllm_source_local_take_entries(*src, got, got_len);
  if (rank != 0)
    free(data);
  free(got);
  for (int r = 0; blocks && r < size; r++)
    zllm_buf_free(&blocks[r]);
  free(blocks);
  free(send);
  free(send_len);
  zllm_buf_free(&enc);
  return rc;
}

/* Lists repo i into the record `rec`: its listing, or why it failed. */
static int list_one(zllm_hub *h, size_t i, zllm_buf *rec, zllm_hub_each_fn each, void *ctx)
{
  zllm_repo *repo = NULL;
  rec->len = 0;
  if (zllm_repo_load(&repo, h->src, h->ids[i]) < 0) {
    if (zllm_error_last_code() == ZLLM_ENOMEM)
      return ZLLM_ENOMEM;
    /* one unreadable repo is recorded; the hub goes on */
    char *why = strdup(zllm_error_last());
    int rc = why ? zllm_buf_put_u64(rec, 0) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = rc ? rc : zllm_buf_put_str(rec, why);
    rc = rc || !each ? rc : each(ctx, i, h->ids[i], NULL, why);
    free(why);
    return rc;
  }
  int rc = zllm_buf_put_u64(rec, 1);
  rc = rc ? rc : zllm_hub_encode_repo(rec, repo);
  rc = rc ? rc : zllm_hub_info_of(&h->info[i], repo);
  rc = rc || !each ? rc : each(ctx, i, h->ids[i], repo, NULL);
  zllm_repo_free(repo);
  return rc;
}

/* This rank's block, listed into its file; `sums` gets each repo's summary
 * and record place, for every rank. */
static int list_block(zllm_hub *h, zllm_buf *sums, zllm_hub_each_fn each, void *ctx)
{
  struct zllm_hub_store *st = h->store;
  size_t lo = block_lo(st->rank, h->n, st->size), hi = block_lo(st->rank + 1, h->n, st->size);
  char *path = store_file(st->dir, st->rank);
  FILE *f = path ? fopen(path, "wb") : NULL;
  zllm_buf rec = ZLLM_BUF_INIT;
  uint64_t at = 0;
  int rc = path ? (f ? 0 : zllm_error_set_errno("%s: cannot create the hub's listing", path))
                : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = lo; rc == 0 && i < hi; i++) {
    rc = list_one(h, i, &rec, each, ctx);
    if (rc == 0 && fwrite(rec.data, 1, rec.len, f) != rec.len)
      rc = zllm_error_set_errno("%s: cannot write the hub's listing", path);
    const zllm_hub_info *in = &h->info[i];
    rc = rc ? rc : zllm_buf_put_u64(sums, at);
    rc = rc ? rc : zllm_buf_put_u64(sums, rec.len);
    rc = rc ? rc : zllm_buf_put_u64(sums, in->nfiles);
    rc = rc ? rc : zllm_buf_put_u64(sums, in->bytes);
    rc = rc ? rc : zllm_buf_put_u64(sums, in->st_bytes);
    rc = rc ? rc : zllm_buf_put_u64(sums, (uint64_t)in->listed | (uint64_t)(in->card_base != NULL) << 1);
    rc = rc || !in->card_base ? rc : zllm_buf_put_str(sums, in->card_base);
    at += rec.len;
  }
  if (f && fclose(f) != 0 && rc == 0)
    rc = zllm_error_set_errno("%s: cannot write the hub's listing", path);
  zllm_buf_free(&rec);
  free(path);
  return rc;
}

/* Every repo's summary and record place, from every lister (rank order is
 * repo order). */
static int take_sums(zllm_hub *h, const char *data, size_t len)
{
  struct zllm_hub_store *st = h->store;
  zllm_reader r = {data, len};
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < h->n; i++) {
    zllm_hub_info *in = &h->info[i];
    uint64_t flags = 0;
    rc = zllm_reader_u64(&r, &st->off[i]);
    rc = rc ? rc : zllm_reader_u64(&r, &st->len[i]);
    rc = rc ? rc : zllm_reader_u64(&r, &in->nfiles);
    rc = rc ? rc : zllm_reader_u64(&r, &in->bytes);
    rc = rc ? rc : zllm_reader_u64(&r, &in->st_bytes);
    rc = rc ? rc : zllm_reader_u64(&r, &flags);
    in->listed = (int)(flags & 1);
    free(in->card_base);
    in->card_base = NULL;
    rc = rc || !(flags & 2) ? rc : zllm_reader_str(&r, &in->card_base);
  }
  if (rc == 0 && r.left)
    rc = zllm_error_set(ZLLM_EFORMAT, "hub summaries: %zu bytes left over", r.left);
  return rc;
}

int zllm_hub_open_local_split(zllm_hub **out, const char *root_dir, const char *store_dir, zllm_hub_each_fn each,
                              void *ctx, MPI_Comm comm)
{
  zllm_hub *h = calloc(1, sizeof *h);
  zllm_buf sums = ZLLM_BUF_INIT;
  char *all = NULL, **ids = NULL;
  size_t all_len = 0, n = 0;
  zllm_source *src = NULL;
  *out = NULL;
  int rc = read_root(root_dir, &ids, &n, &src, comm); /* every rank takes part, whatever befell it */
  if (!h) {
    zllm_strv_free(ids, n);
    zllm_source_free(src);
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  } else {
    h->ids = ids;
    h->n = n;
    h->src = src;
  }
  if (rc == 0 && (!(h->repos = calloc(h->n + 1, sizeof *h->repos)) || !(h->failed = calloc(h->n + 1, sizeof *h->failed)) ||
                  !(h->info = calloc(h->n + 1, sizeof *h->info))))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : store_new(&h->store, store_dir, h->n, comm);
  rc = rc ? rc : list_block(h, &sums, each, ctx);
  if (zllm_mpi_alltrue(rc == 0, comm)) {
    rc = zllm_mpi_allgather_bytes(sums.data, sums.len, &all, &all_len, comm);
    rc = rc ? rc : take_sums(h, all, all_len);
    if (!zllm_mpi_alltrue(rc == 0, comm))
      rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "another rank could not take the hub's summaries");
    else if (MPI_Comm_dup(comm, &h->store->comm) != MPI_SUCCESS) /* every rank, or the job aborts */
      rc = zllm_error_set(ZLLM_EMPI, "MPI_Comm_dup failed");
  } else if (rc == 0) {
    rc = zllm_error_set(ZLLM_EMPI, "another rank could not list its share of %s", root_dir);
  }
  free(all);
  zllm_buf_free(&sums);
  if (rc < 0)
    zllm_hub_free(h);
  else
    *out = h;
  return rc;
}
