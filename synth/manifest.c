#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synth/mkhub_internal.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"

static int copy_repo(mk_ctx *c, const mk_model *m)
{
  const char *from = c->models[m->parent].spec->repo;
  char *sdir = mk_repo_path(c, from, NULL), *ddir = mk_repo_path(c, m->repo, NULL);
  DIR *d = sdir ? opendir(sdir) : NULL;
  struct dirent *e;
  int rc = d && ddir ? zllm_mkdir_p(ddir, 0755) : zllm_error_set(ZLLM_EIO, "mkhub: cannot list %s", from);
  while (rc == 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    char *s = mk_repo_path(c, from, e->d_name), *t = mk_repo_path(c, m->repo, e->d_name);
    rc = s && t ? zllm_copy_file(s, t) : ZLLM_ENOMEM;
    free(s);
    free(t);
  }
  if (d)
    closedir(d);
  free(sdir);
  free(ddir);
  return rc;
}

static int write_shard(mk_ctx *c, const mk_model *m, const zllm_st_header *h, int sfd, size_t from, size_t to,
                       const char *file)
{
  const mk_arch *a = &c->arch[m->arch];
  const mk_tensor *ptrs[MK_MAX_TENSORS];
  zllm_buf hdr = ZLLM_BUF_INIT;
  char *path = mk_repo_path(c, m->repo, file);
  uint8_t *buf = malloc(ZLLM_IO_CHUNK);
  int fd = -1, rc = path && buf ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = from; i < to; i++)
    ptrs[i - from] = &a->t[i];
  if (rc == 0 && (rc = mk_header_json(&hdr, ptrs, to - from, h->tensors[0].dtype)) == 0 &&
      (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
    rc = zllm_error_set_errno("%s: cannot create", path);
  rc = rc ? rc : mk_write_header(fd, &hdr, path);
  uint64_t out = 8 + hdr.len;
  for (size_t i = from; rc == 0 && i < to; i++) {
    uint64_t len = h->tensors[i].end - h->tensors[i].begin;
    for (uint64_t off = 0; rc == 0 && off < len; off += ZLLM_IO_CHUNK) {
      size_t n = len - off < ZLLM_IO_CHUNK ? (size_t)(len - off) : ZLLM_IO_CHUNK;
      rc = zllm_st_read_tensor(h, sfd, i, off, buf, n);
      if (rc == 0 && pwrite(fd, buf, n, (off_t)out) != (ssize_t)n)
        rc = zllm_error_set_errno("%s: write failed", path);
      out += n;
    }
  }
  if (fd >= 0)
    close(fd);
  zllm_buf_free(&hdr);
  free(buf);
  free(path);
  return rc;
}

static int write_index(mk_ctx *c, const mk_model *m, const zllm_st_header *h, size_t split, const char **names)
{
  zllm_buf b = ZLLM_BUF_INIT;
  char *path = mk_repo_path(c, m->repo, "model.safetensors.index.json");
  int rc = zllm_buf_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
                           (unsigned long long)h->data_len);
  for (size_t i = 0; rc == 0 && i < h->ntensors; i++)
    rc = zllm_buf_printf(&b, "    \"%s\": \"%s\"%s\n", h->tensors[i].name, names[i >= split],
                         i + 1 < h->ntensors ? "," : "");
  rc = rc ? rc : zllm_buf_puts(&b, "  }\n}\n");
  rc = rc ? rc : path ? zllm_write_file_atomic(path, b.data, b.len) : ZLLM_ENOMEM;
  zllm_buf_free(&b);
  free(path);
  return rc;
}

/* Two shards plus an index, tensor bytes identical to the parent's. */
static int reshard_repo(mk_ctx *c, const mk_model *m)
{
  static const char *names[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  char *src = mk_repo_path(c, c->models[m->parent].spec->repo, "model.safetensors");
  zllm_st_header *h = NULL;
  int sfd = -1, rc = src ? zllm_st_open(&h, &sfd, src) : ZLLM_ENOMEM;
  if (rc == 0 && h->ntensors != c->arch[m->arch].n)
    rc = zllm_error_set(ZLLM_ERROR, "mkhub: %s does not match its architecture", src);
  size_t split = rc == 0 ? h->ntensors / 2 : 0;
  rc = rc ? rc : write_shard(c, m, h, sfd, 0, split, names[0]);
  rc = rc ? rc : write_shard(c, m, h, sfd, split, h->ntensors, names[1]);
  rc = rc ? rc : write_index(c, m, h, split, names);
  if (sfd >= 0)
    close(sfd);
  zllm_st_header_free(h);
  free(src);
  return rc;
}

int mk_write_derived(mk_ctx *c)
{
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < c->nmodels; i++) {
    const mk_model *m = c->models[i].spec;
    if (m->kind == MK_COPY)
      rc = copy_repo(c, m);
    else if (m->kind == MK_RESHARD)
      rc = reshard_repo(c, m);
  }
  return rc;
}

static const mk_state *find_model(const mk_ctx *c, const char *repo)
{
  for (size_t i = 0; i < c->nmodels; i++)
    if (strcmp(c->models[i].spec->repo, repo) == 0)
      return &c->models[i];
  return NULL;
}

/* Distinct dtypes of a safetensors file, "," separated, in file order. */
static int file_dtypes(char *out, size_t cap, const zllm_hub_file *f)
{
  zllm_st_header *h = NULL;
  int fd = -1, rc;
  snprintf(out, cap, "-");
  if (f->kind != ZLLM_FILE_SAFETENSORS)
    return 0;
  if ((rc = zllm_st_open(&h, &fd, f->local_path)) < 0)
    return rc;
  out[0] = '\0';
  for (size_t i = 0; i < h->ntensors; i++) {
    const char *n = zllm_dtype_get(h->tensors[i].dtype)->name;
    if (!strstr(out, n) && strlen(out) + strlen(n) + 2 < cap)
      snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "", n);
  }
  close(fd);
  zllm_st_header_free(h);
  return 0;
}

static void truth_fields(char *out, size_t cap, const mk_ctx *c, const mk_state *s)
{
  const mk_model *m = s->spec;
  const char *parent = m->parent >= 0 ? c->models[m->parent].spec->repo : "-";
  char changed[32] = "-", scale[32] = "-", ident[32] = "-";
  if (m->kind == MK_FINETUNE) {
    snprintf(changed, sizeof changed, "%.3f", m->changed);
    snprintf(scale, sizeof scale, "%g", m->scale);
  }
  if (m->kind == MK_COPY || m->kind == MK_RESHARD)
    snprintf(ident, sizeof ident, "1.000000");
  else if (s->elements)
    snprintf(ident, sizeof ident, "%.6f", (double)s->identical / (double)s->elements);
  snprintf(out, cap, "zllm mkhub --seed %llu --scale %s\tCC0-1.0 (synthetic)\t%s\t%s\t%s\t%s\t%s\t%s\t%s",
           (unsigned long long)c->opts.seed, c->opts.scale, m->family, parent, m->relation, parent, changed,
           scale, ident);
}

static int manifest_repo(zllm_buf *b, const mk_ctx *c, zllm_source *src, const char *id)
{
  zllm_repo *repo = NULL;
  const mk_state *s = find_model(c, id);
  char truth[1024], dtypes[64], hex[2 * ZLLM_SHA256_LEN + 1];
  int rc = s ? zllm_repo_load(&repo, src, id) : zllm_error_set(ZLLM_ERROR, "mkhub: stray repo %s", id);
  if (rc == 0)
    truth_fields(truth, sizeof truth, c, s);
  for (size_t i = 0; rc == 0 && i < repo->nfiles; i++) {
    zllm_sha256 sha;
    const zllm_hub_file *f = &repo->files[i];
    if ((rc = zllm_sha256_file(&sha, f->local_path)) < 0 || (rc = file_dtypes(dtypes, sizeof dtypes, f)) < 0)
      break;
    zllm_hex(hex, sha.b, ZLLM_SHA256_LEN);
    rc = zllm_buf_printf(b, "%s\t%s\t%llu\t%s\t%s\t%s\n", id, f->path, (unsigned long long)f->size, hex, dtypes,
                         truth);
  }
  zllm_repo_free(repo);
  return rc;
}

int mk_write_manifest(mk_ctx *c)
{
  zllm_source *src = NULL;
  zllm_buf b = ZLLM_BUF_INIT;
  char **ids = NULL, *path = zllm_path_join(c->opts.out, "MANIFEST.tsv");
  size_t n = 0;
  int rc = path ? zllm_source_open_local(&src, c->hub) : ZLLM_ENOMEM;
  rc = rc ? rc : zllm_source_list_repos(src, &ids, &n);
  rc = rc ? rc
          : zllm_buf_puts(&b, "repo\tfile\tbytes\tsha256\tdtypes\torigin\tlicense\tfamily\ttrue_base\trelation\t"
                              "delta_base\tchanged_fraction\tperturbation\tidentical_fraction\n");
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = manifest_repo(&b, c, src, ids[i]);
  rc = rc ? rc : zllm_write_file_atomic(path, b.data, b.len);
  zllm_strv_free(ids, n);
  zllm_source_free(src);
  zllm_buf_free(&b);
  free(path);
  return rc;
}
