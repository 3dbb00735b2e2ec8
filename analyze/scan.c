#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zllm/analyze.h"
#include "zllm/error.h"

static int put_f_line(zllm_buf *b, const char *repo_id, const zllm_hub_file *f, const char *sha,
                      const char *xxh, const char *status, size_t ntensors, const char *err)
{
  int rc = zllm_buf_puts(b, "F\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, repo_id);
  rc = rc ? rc : zllm_buf_puts(b, "\t");
  rc = rc ? rc : zllm_buf_put_tsv(b, f->path);
  rc = rc ? rc : zllm_buf_printf(b, "\t%s\t%llu\t%s\t%s\t%s\t%zu\t", zllm_file_kind_name(f->kind),
                                 (unsigned long long)f->size, sha, xxh, status, ntensors);
  rc = rc ? rc : zllm_buf_put_tsv(b, err);
  return rc ? rc : zllm_buf_puts(b, "\n");
}

static int put_t_lines(zllm_buf *b, const zllm_st_header *h, const zllm_xxh128 *xxh)
{
  char hex[2 * ZLLM_XXH128_LEN + 1], shape[1024];
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < h->ntensors; i++) {
    const zllm_st_tensor *t = &h->tensors[i];
    zllm_hex(hex, xxh[i].b, ZLLM_XXH128_LEN);
    zllm_st_shape_str(shape, sizeof shape, t);
    rc = zllm_buf_puts(b, "T\t");
    rc = rc ? rc : zllm_buf_put_tsv(b, t->name);
    rc = rc ? rc : zllm_buf_printf(b, "\t%s\t%s\t%llu\t%s\n", zllm_dtype_get(t->dtype)->name, shape,
                                   (unsigned long long)(t->end - t->begin), hex);
  }
  return rc;
}

int zllm_scan_record(zllm_buf *b, const char *repo_id, const zllm_hub_file *f, const zllm_sha256 *sha,
                     const zllm_xxh128 *xxh, const zllm_st_header *h, const zllm_xxh128 *tensor_xxh,
                     const char *header_error)
{
  char sha_hex[2 * ZLLM_SHA256_LEN + 1], xxh_hex[2 * ZLLM_XXH128_LEN + 1];
  int bad = header_error && header_error[0];
  zllm_hex(sha_hex, sha->b, ZLLM_SHA256_LEN);
  zllm_hex(xxh_hex, xxh->b, ZLLM_XXH128_LEN);
  int rc = put_f_line(b, repo_id, f, sha_hex, xxh_hex, bad ? "error" : "ok", h ? h->ntensors : 0,
                      bad ? header_error : "");
  return rc == 0 && h ? put_t_lines(b, h, tensor_xxh) : rc;
}

int zllm_scan_file(zllm_buf *b, zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f)
{
  const char *repo_id = repo->id;
  zllm_st_header *h = NULL;
  zllm_xxh128 *txxh = NULL, fx;
  zllm_sha256 sha;
  char sha_hex[2 * ZLLM_SHA256_LEN + 1] = "-", xxh_hex[2 * ZLLM_XXH128_LEN + 1] = "-";
  char name[1024], header_err[1024] = "";
  int fd = -1, rc = 0;
  snprintf(name, sizeof name, "%s/%s", repo_id, f->path);
  if (zllm_source_open_file(src, repo, f, &fd) < 0)
    goto failed;
  /* a malformed header is recorded, but the file is still hashed: it can
   * still be stored and restored as plain bytes */
  if (f->kind == ZLLM_FILE_SAFETENSORS && zllm_st_read_header(&h, fd, name) < 0) {
    if (zllm_error_last_code() == ZLLM_ENOMEM)
      goto failed;
    snprintf(header_err, sizeof header_err, "%s", zllm_error_last());
  }
  if (h && !(txxh = calloc(h->ntensors ? h->ntensors : 1, sizeof *txxh))) {
    zllm_error_set(ZLLM_ENOMEM, "out of memory");
    goto failed;
  }
  if (zllm_analyze_hash_fd(fd, name, h, &sha, &fx, txxh) < 0 || zllm_hub_file_check_unchanged(f, fd, name) < 0)
    goto failed;
  rc = zllm_scan_record(b, repo_id, f, &sha, &fx, h, txxh, header_err);
  goto done;
failed:
  rc = zllm_error_last_code() == ZLLM_ENOMEM
           ? ZLLM_ENOMEM
           : put_f_line(b, repo_id, f, sha_hex, xxh_hex, "error", 0, zllm_error_last());
done:
  if (fd >= 0)
    close(fd);
  free(txxh);
  zllm_st_header_free(h);
  return rc;
}
