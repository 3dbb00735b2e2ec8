#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/io.h"

typedef struct {
  const zllm_st_header *h;
  zllm_xxh128 *out;
  zllm_xxh128_ctx *ctx;
  size_t next; /* next tensor whose bytes are not all seen */
} tensor_cursor;

/* Feeds the window [pos, pos+n) of the file to the tensors it overlaps;
 * tensors are sorted and contiguous, so one cursor walks them in order. */
static void feed_tensors(tensor_cursor *c, const uint8_t *buf, uint64_t pos, size_t n)
{
  const zllm_st_header *h = c->h;
  while (c->next < h->ntensors) {
    const zllm_st_tensor *t = &h->tensors[c->next];
    uint64_t tb = h->data_start + t->begin, te = h->data_start + t->end;
    if (tb >= pos + n && te > tb)
      return; /* starts in a later window */
    uint64_t from = tb > pos ? tb : pos, to = te < pos + n ? te : pos + n;
    if (to > from)
      zllm_xxh128_ctx_update(c->ctx, buf + (from - pos), (size_t)(to - from));
    if (te > pos + n)
      return;
    zllm_xxh128_ctx_final(c->ctx, &c->out[c->next]);
    zllm_xxh128_ctx_reset(c->ctx);
    c->next++;
  }
}

int zllm_analyze_hash_fd(int fd, const char *name, const zllm_st_header *h, zllm_sha256 *sha,
                         zllm_xxh128 *file_xxh, zllm_xxh128 *tensor_xxh)
{
  zllm_sha256_ctx *sc = NULL;
  zllm_xxh128_ctx *fc = NULL, *tc = NULL;
  uint8_t *buf = malloc(ZLLM_IO_CHUNK);
  uint64_t pos = 0;
  int rc;
  if (!buf) {
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = zllm_sha256_ctx_new(&sc)) < 0 || (rc = zllm_xxh128_ctx_new(&fc)) < 0 ||
      (rc = zllm_xxh128_ctx_new(&tc)) < 0)
    goto done;
  tensor_cursor cur = {h, tensor_xxh, tc, 0};
  for (;;) {
    ssize_t n = pread(fd, buf, ZLLM_IO_CHUNK, (off_t)pos);
    if (n < 0) {
      rc = zllm_error_set_errno("%s: read failed", name);
      goto done;
    }
    if (n == 0)
      break;
    if (sha && (rc = zllm_sha256_ctx_update(sc, buf, (size_t)n)) < 0) /* skipped when not asked for */
      goto done;
    zllm_xxh128_ctx_update(fc, buf, (size_t)n);
    if (h && tensor_xxh)
      feed_tensors(&cur, buf, pos, (size_t)n);
    pos += (uint64_t)n;
  }
  if (h && tensor_xxh && pos != h->file_size) {
    rc = zllm_error_set(ZLLM_EIO, "%s: file changed while being read (%llu bytes, header said %llu)", name,
                        (unsigned long long)pos, (unsigned long long)h->file_size);
    goto done;
  }
  if (h && tensor_xxh)
    feed_tensors(&cur, buf, pos, 0); /* trailing zero-length tensors */
  if (sha && (rc = zllm_sha256_ctx_final(sc, sha)) < 0)
    goto done;
  if (file_xxh)
    zllm_xxh128_ctx_final(fc, file_xxh);
done:
  zllm_sha256_ctx_free(sc);
  zllm_xxh128_ctx_free(fc);
  zllm_xxh128_ctx_free(tc);
  free(buf);
  return rc;
}

static int is_safetensors(const char *path)
{
  size_t l = strlen(path);
  return l >= 12 && strcmp(path + l - 12, ".safetensors") == 0;
}

static void print_tensors(FILE *out, const zllm_st_header *h, const zllm_xxh128 *xxh)
{
  char hex[2 * ZLLM_XXH128_LEN + 1], shape[256], name[512];
  fprintf(out, "%-48s %-8s %-20s %12s  %s\n", "tensor", "dtype", "shape", "bytes", "xxh3-128");
  for (size_t i = 0; i < h->ntensors; i++) {
    const zllm_st_tensor *t = &h->tensors[i];
    zllm_hex(hex, xxh[i].b, ZLLM_XXH128_LEN);
    zllm_st_shape_str(shape, sizeof shape, t);
    zllm_escape_text(name, sizeof name, t->name);
    fprintf(out, "%-48s %-8s %-20s %12llu  %s\n", name, zllm_dtype_get(t->dtype)->name, shape,
            (unsigned long long)(t->end - t->begin), hex);
  }
}

int zllm_inspect_file(FILE *out, const char *path, const char *display)
{
  zllm_st_header *h = NULL;
  zllm_xxh128 *xxh = NULL;
  zllm_sha256 sha;
  char hex[2 * ZLLM_SHA256_LEN + 1];
  int fd = -1, rc;
  if (is_safetensors(path)) {
    if ((rc = zllm_st_open(&h, &fd, path)) < 0)
      goto done;
    if (!(xxh = calloc(h->ntensors ? h->ntensors : 1, sizeof *xxh))) {
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      goto done;
    }
  } else if ((rc = zllm_open_regular(AT_FDCWD, path, O_RDONLY, path, &fd)) < 0) {
    goto done;
  }
  if ((rc = zllm_analyze_hash_fd(fd, path, h, &sha, NULL, xxh)) < 0)
    goto done;
  zllm_hex(hex, sha.b, ZLLM_SHA256_LEN);
  fprintf(out, "file     %s\nsha256   %s\n", display, hex);
  if (h) {
    fprintf(out, "bytes    %llu (header %llu, data %llu)\ntensors  %zu\n", (unsigned long long)h->file_size,
            (unsigned long long)h->data_start, (unsigned long long)h->data_len, h->ntensors);
    for (size_t i = 0; i < h->nmeta; i++) {
      char k[256], v[512];
      zllm_escape_text(k, sizeof k, h->meta_keys[i]);
      zllm_escape_text(v, sizeof v, h->meta_vals[i]);
      fprintf(out, "metadata %s = %s\n", k, v);
    }
    print_tensors(out, h, xxh);
  }
  fputc('\n', out);
done:
  if (fd >= 0)
    close(fd);
  free(xxh);
  zllm_st_header_free(h);
  return rc;
}
