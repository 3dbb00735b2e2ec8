#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/buf.h"
#include "zllm/error.h"

int zllm_buf_reserve(zllm_buf *b, size_t extra)
{
  if (b->len + extra + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) {
    if (cap > SIZE_MAX / 2)
      return zllm_error_set(ZLLM_ENOMEM, "buffer too large");
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (!p)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
  b->data = p;
  b->cap = cap;
  return 0;
}

int zllm_buf_append(zllm_buf *b, const void *data, size_t len)
{
  int rc = zllm_buf_reserve(b, len);
  if (rc < 0)
    return rc;
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int zllm_buf_puts(zllm_buf *b, const char *s) { return zllm_buf_append(b, s, strlen(s)); }

int zllm_buf_printf(zllm_buf *b, const char *fmt, ...)
{
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  int rc = n < 0 ? zllm_error_set(ZLLM_ERROR, "bad format") : zllm_buf_reserve(b, (size_t)n);
  if (rc == 0) {
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
  }
  va_end(ap2);
  return rc;
}

int zllm_buf_put_tsv(zllm_buf *b, const char *s)
{
  int rc = 0;
  size_t left = strlen(s), n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p += n, left -= n) {
    n = zllm_utf8_char_len(p, left);
    if (*p == '\t')
      rc = zllm_buf_puts(b, "\\t");
    else if (*p == '\n')
      rc = zllm_buf_puts(b, "\\n");
    else if (*p == '\\')
      rc = zllm_buf_puts(b, "\\\\");
    else if (n == 0 || *p < 0x20 || *p == 0x7f) /* a control byte, or a byte that is not UTF-8 */
      rc = zllm_buf_printf(b, "\\x%02x", *p);
    else
      rc = zllm_buf_append(b, p, n);
    n = n ? n : 1;
  }
  return rc;
}

char *zllm_buf_detach(zllm_buf *b, size_t *len_out)
{
  char *d = b->data;
  if (len_out)
    *len_out = b->len;
  if (!d)
    d = calloc(1, 1);
  b->data = NULL;
  b->len = b->cap = 0;
  return d;
}

void zllm_buf_free(zllm_buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int zllm_buf_put_u64(zllm_buf *b, uint64_t v)
{
  uint8_t le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (uint8_t)(v >> (8 * i));
  return zllm_buf_append(b, le, 8);
}

int zllm_buf_put_str(zllm_buf *b, const char *s)
{
  size_t len = strlen(s);
  int rc = zllm_buf_put_u64(b, len);
  return rc ? rc : zllm_buf_append(b, s, len);
}

int zllm_reader_u64(zllm_reader *r, uint64_t *v)
{
  if (r->left < 8)
    return zllm_error_set(ZLLM_EFORMAT, "record truncated");
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--)
    x = x << 8 | (uint8_t)r->p[i];
  r->p += 8;
  r->left -= 8;
  *v = x;
  return 0;
}

int zllm_reader_str(zllm_reader *r, char **s)
{
  uint64_t len = 0;
  int rc = zllm_reader_u64(r, &len);
  if (rc < 0)
    return rc;
  if (len > r->left)
    return zllm_error_set(ZLLM_EFORMAT, "record string truncated");
  if (!(*s = malloc((size_t)len + 1)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  memcpy(*s, r->p, (size_t)len);
  (*s)[len] = '\0';
  r->p += len;
  r->left -= (size_t)len;
  return 0;
}

size_t zllm_bounded(size_t normal, size_t tiny)
{
  const char *env = getenv("ZLLM_TEST_TINY_BUFFERS");
  return env && strcmp(env, "1") == 0 ? tiny : normal;
}

int zllm_grow(void **arr, size_t *cap, size_t need, size_t size)
{
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap : 64;
  while (n < need)
    n *= 2;
  void *p = n <= SIZE_MAX / size ? realloc(*arr, n * size) : NULL;
  if (!p)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  *arr = p;
  *cap = n;
  return 0;
}
