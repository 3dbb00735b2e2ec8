/* The listed hub (zllm/hub.h): one listing of a source, loaded once and
 * handed to every stage; broadcast over MPI as the listing (repos, files,
 * identities, the listing's problems), the small files re-parsed where it
 * lands. */
#include <stdlib.h>
#include <string.h>

#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/json.h"
#include "zllm/mpi.h"
#include "crawl/source_internal.h"

static int hub_alloc(zllm_hub **out, size_t n)
{
  zllm_hub *h = calloc(1, sizeof *h);
  if (h && (!(h->ids = calloc(n + 1, sizeof *h->ids)) || !(h->repos = calloc(n + 1, sizeof *h->repos)) ||
            !(h->failed = calloc(n + 1, sizeof *h->failed)) || !(h->info = calloc(n + 1, sizeof *h->info)))) {
    zllm_hub_free(h);
    h = NULL;
  }
  *out = h;
  return h ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
}

void zllm_hub_free(zllm_hub *h)
{
  if (!h)
    return;
  for (size_t i = 0; i < h->n; i++) {
    free(h->ids ? h->ids[i] : NULL);
    zllm_repo_free(h->repos ? h->repos[i] : NULL);
    free(h->failed ? h->failed[i] : NULL);
    free(h->info ? h->info[i].card_base : NULL);
  }
  free(h->ids);
  free(h->repos);
  free(h->failed);
  free(h->info);
  zllm_hub_store_free(h->store);
  zllm_source_free(h->src);
  free(h);
}

int zllm_hub_load(zllm_hub **out, zllm_source *src)
{
  char **ids = NULL;
  size_t n = 0;
  zllm_hub *h = NULL;
  *out = NULL;
  int rc = zllm_source_list_repos(src, &ids, &n);
  rc = rc ? rc : hub_alloc(&h, n);
  if (rc < 0) {
    zllm_strv_free(ids, n);
    zllm_source_free(src);
    return rc;
  }
  h->src = src;
  for (size_t i = 0; i < n; i++) /* the ids move into the hub */
    h->ids[i] = ids[i];
  h->n = n;
  free(ids);
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (zllm_repo_load(&h->repos[i], src, h->ids[i]) < 0) {
      /* one unreadable repo is recorded; the hub goes on */
      if (zllm_error_last_code() == ZLLM_ENOMEM || !(h->failed[i] = strdup(zllm_error_last())))
        rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    } else {
      rc = zllm_hub_info_of(&h->info[i], h->repos[i]);
    }
  if (rc < 0)
    zllm_hub_free(h);
  else
    *out = h;
  return rc;
}

int zllm_hub_open_local(zllm_hub **out, const char *root)
{
  zllm_source *src = NULL;
  *out = NULL;
  int rc = zllm_source_open_local(&src, root);
  return rc ? rc : zllm_hub_load(out, src);
}

long zllm_hub_find(const zllm_hub *h, const char *id)
{
  return zllm_strv_find_sorted(h->ids, h->n, id);
}

int zllm_hub_info_of(zllm_hub_info *info, const zllm_repo *r)
{
  info->nfiles = r->nfiles;
  info->bytes = info->st_bytes = 0;
  for (size_t f = 0; f < r->nfiles; f++) {
    info->bytes += r->files[f].size;
    info->st_bytes += r->files[f].kind == ZLLM_FILE_SAFETENSORS ? r->files[f].size : 0;
  }
  info->listed = 1;
  free(info->card_base);
  info->card_base = NULL;
  if (r->card && r->card->nbase > 0 && !(info->card_base = strdup(r->card->base_models[0])))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  return 0;
}

int zllm_hub_get(const zllm_hub *h, size_t i, const zllm_repo **out)
{
  *out = NULL;
  if (i >= h->n)
    return zllm_error_set(ZLLM_EINVAL, "repo %zu of a hub of %zu", i, h->n);
  if (h->store)
    return zllm_hub_store_get(h, i, out);
  if (!h->repos[i])
    return zllm_error_set(ZLLM_ERROR, "%s", h->failed[i] ? h->failed[i] : "not listed");
  *out = h->repos[i];
  return 0;
}

void zllm_hub_put(const zllm_hub *h, size_t i)
{
  if (h && h->store && i < h->n)
    zllm_hub_store_put(h, i);
}

/* ---- the broadcast ---------------------------------------------------------- */

static int put_opt_str(zllm_buf *b, const char *s)
{
  int rc = zllm_buf_put_u64(b, s != NULL);
  return rc || !s ? rc : zllm_buf_put_str(b, s);
}

static int get_opt_str(zllm_reader *r, char **s)
{
  uint64_t has = 0;
  int rc = zllm_reader_u64(r, &has);
  *s = NULL;
  return rc || !has ? rc : zllm_reader_str(r, s);
}

int zllm_hub_encode_repo(zllm_buf *b, const zllm_repo *r)
{
  int rc = put_opt_str(b, r->revision);
  rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)r->created);
  rc = rc ? rc : zllm_buf_put_u64(b, r->nfiles);
  for (size_t i = 0; rc == 0 && i < r->nfiles; i++) {
    const zllm_hub_file *f = &r->files[i];
    rc = zllm_buf_put_str(b, f->path);
    rc = rc ? rc : zllm_buf_put_str(b, f->local_path);
    rc = rc ? rc : zllm_buf_put_u64(b, f->size);
    rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)f->kind);
    rc = rc ? rc : zllm_buf_put_u64(b, f->ident.dev);
    rc = rc ? rc : zllm_buf_put_u64(b, f->ident.ino);
    rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)f->ident.mtime_ns);
  }
  rc = rc ? rc : zllm_buf_put_u64(b, r->nlist_problems);
  for (size_t i = 0; rc == 0 && i < r->nlist_problems; i++)
    rc = zllm_buf_put_str(b, r->problems[i]);
  return rc;
}

static int encode_hub(zllm_buf *b, const zllm_hub *h)
{
  int rc = zllm_buf_put_u64(b, h->n);
  for (size_t i = 0; rc == 0 && i < h->n; i++) {
    rc = zllm_buf_put_str(b, h->ids[i]);
    rc = rc ? rc : put_opt_str(b, h->failed[i]);
    rc = rc ? rc : zllm_buf_put_u64(b, h->repos[i] != NULL);
    rc = rc || !h->repos[i] ? rc : zllm_hub_encode_repo(b, h->repos[i]);
  }
  return rc;
}

/* Counts come from another rank of this job; still, never trust a count
 * beyond the bytes that could hold it. */
static int get_count(zllm_reader *r, uint64_t *n, const char *what)
{
  int rc = zllm_reader_u64(r, n);
  return rc == 0 && *n > r->left ? zllm_error_set(ZLLM_EFORMAT, "hub listing: bad %s count", what) : rc;
}

int zllm_hub_decode_repo(zllm_reader *r, zllm_repo *repo)
{
  uint64_t n = 0, v = 0;
  int rc = get_opt_str(r, &repo->revision);
  rc = rc ? rc : zllm_reader_u64(r, &v);
  repo->created = (int64_t)v;
  rc = rc ? rc : get_count(r, &n, "file");
  if (rc == 0 && !(repo->files = calloc(n + 1, sizeof *repo->files)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (uint64_t i = 0; rc == 0 && i < n; i++, repo->nfiles++) {
    zllm_hub_file *f = &repo->files[i];
    uint64_t mt = 0;
    rc = zllm_reader_str(r, &f->path);
    rc = rc ? rc : zllm_reader_str(r, &f->local_path);
    rc = rc ? rc : zllm_reader_u64(r, &f->size);
    rc = rc ? rc : zllm_reader_u64(r, &v);
    f->kind = (zllm_file_kind)v;
    rc = rc ? rc : zllm_reader_u64(r, &f->ident.dev);
    rc = rc ? rc : zllm_reader_u64(r, &f->ident.ino);
    rc = rc ? rc : zllm_reader_u64(r, &mt);
    f->ident.mtime_ns = (int64_t)mt;
    if (rc == 0 && v > ZLLM_FILE_OTHER)
      rc = zllm_error_set(ZLLM_EFORMAT, "hub listing: bad file kind");
  }
  rc = rc ? rc : get_count(r, &n, "problem");
  for (uint64_t i = 0; rc == 0 && i < n; i++) {
    char *msg = NULL;
    rc = zllm_reader_str(r, &msg);
    rc = rc ? rc : zllm_repo_add_problem(repo, msg);
    free(msg);
  }
  repo->nlist_problems = repo->nproblems;
  return rc;
}

static int decode_hub(zllm_hub **out, zllm_source *src, const char *data, size_t len)
{
  zllm_reader r = {data, len};
  zllm_hub *h = NULL;
  uint64_t n = 0, has = 0;
  int rc = get_count(&r, &n, "repo");
  rc = rc ? rc : hub_alloc(&h, n);
  if (rc < 0) {
    zllm_source_free(src);
    return rc;
  }
  h->src = src;
  for (uint64_t i = 0; rc == 0 && i < n; i++, h->n++) {
    rc = zllm_reader_str(&r, &h->ids[i]);
    rc = rc ? rc : get_opt_str(&r, &h->failed[i]);
    rc = rc ? rc : zllm_reader_u64(&r, &has);
    if (rc == 0 && has && !(h->repos[i] = calloc(1, sizeof *h->repos[i])))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    if (rc == 0 && has && !(h->repos[i]->id = strdup(h->ids[i])))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = rc || !has ? rc : zllm_hub_decode_repo(&r, h->repos[i]);
    /* the small files parsed here, as the listing rank did */
    rc = rc || !has ? rc : zllm_repo_load_meta(src, h->repos[i]);
    rc = rc || !has ? rc : zllm_hub_info_of(&h->info[i], h->repos[i]);
  }
  if (rc == 0 && r.left)
    rc = zllm_error_set(ZLLM_EFORMAT, "hub listing: %zu bytes left over", r.left);
  if (rc < 0)
    zllm_hub_free(h);
  else
    *out = h;
  return rc;
}

int zllm_hub_bcast(zllm_hub **hub, const char *root_dir, int root, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  zllm_buf enc = ZLLM_BUF_INIT;
  int rc = rank == root ? (*hub ? encode_hub(&enc, *hub) : zllm_error_set(ZLLM_EINVAL, "no hub to broadcast")) : 0;
  if (rank != root)
    *hub = NULL;
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    zllm_buf_free(&enc);
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "rank %d could not encode the hub listing", root);
  }
  char *data = enc.data;
  size_t len = enc.len;
  rc = zllm_mpi_bcast_bytes(&data, &len, root, comm);
  if (rc == 0 && rank != root) {
    zllm_source *src = NULL;
    rc = zllm_source_attach_local(&src, root_dir);
    rc = rc ? rc : decode_hub(hub, src, data, len);
    free(data);
  }
  zllm_buf_free(&enc);
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    if (rank != root) {
      zllm_hub_free(*hub);
      *hub = NULL;
    }
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "another rank could not take the hub listing");
  }
  return 0;
}

int zllm_hub_open_local_all(zllm_hub **out, const char *root_dir, MPI_Comm comm)
{
  int rank;
  MPI_Comm_rank(comm, &rank);
  *out = NULL;
  int rc = rank == 0 ? zllm_hub_open_local(out, root_dir) : 0;
  if (!zllm_mpi_alltrue(rc == 0, comm)) {
    zllm_hub_free(*out);
    *out = NULL;
    return rc ? rc : zllm_error_set(ZLLM_ERROR, "rank 0 could not read %s", root_dir);
  }
  return zllm_hub_bcast(out, root_dir, 0, comm);
}
