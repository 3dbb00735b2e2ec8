#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/io.h"

struct zllm_sha256_ctx { EVP_MD_CTX *md; };
struct zllm_xxh128_ctx { XXH3_state_t *st; };

int zllm_sha256_ctx_new(zllm_sha256_ctx **out)
{
  zllm_sha256_ctx *c = calloc(1, sizeof *c);
  if (!c || !(c->md = EVP_MD_CTX_new())) {
    free(c);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for a SHA-256 context");
  }
  if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
    zllm_sha256_ctx_free(c);
    return zllm_error_set(ZLLM_ERROR, "libcrypto: SHA-256 init failed");
  }
  *out = c;
  return 0;
}

int zllm_sha256_ctx_update(zllm_sha256_ctx *c, const void *data, size_t len)
{
  if (EVP_DigestUpdate(c->md, data, len) != 1)
    return zllm_error_set(ZLLM_ERROR, "libcrypto: SHA-256 update failed");
  return 0;
}

int zllm_sha256_ctx_final(zllm_sha256_ctx *c, zllm_sha256 *out)
{
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(c->md, out->b, &n) != 1 || n != ZLLM_SHA256_LEN ||
      EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)
    return zllm_error_set(ZLLM_ERROR, "libcrypto: SHA-256 final failed");
  return 0;
}

int zllm_sha256_ctx_reset(zllm_sha256_ctx *c)
{
  return EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) == 1 ? 0 : zllm_error_set(ZLLM_ERROR, "libcrypto: SHA-256 init failed");
}

int zllm_sha256_ctx_copy(zllm_sha256_ctx *dst, const zllm_sha256_ctx *src)
{
  return EVP_MD_CTX_copy_ex(dst->md, src->md) == 1 ? 0 : zllm_error_set(ZLLM_ERROR, "libcrypto: SHA-256 copy failed");
}

void zllm_sha256_ctx_free(zllm_sha256_ctx *c)
{
  if (!c)
    return;
  EVP_MD_CTX_free(c->md);
  free(c);
}

int zllm_sha256_buf(zllm_sha256 *out, const void *data, size_t len)
{
  if (EVP_Digest(data, len, out->b, NULL, EVP_sha256(), NULL) != 1)
    return zllm_error_set(ZLLM_ERROR, "libcrypto: SHA-256 failed");
  return 0;
}

int zllm_xxh128_ctx_new(zllm_xxh128_ctx **out)
{
  zllm_xxh128_ctx *c = calloc(1, sizeof *c);
  if (!c || !(c->st = XXH3_createState())) {
    free(c);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for an XXH3 state");
  }
  XXH3_128bits_reset(c->st);
  *out = c;
  return 0;
}

void zllm_xxh128_ctx_reset(zllm_xxh128_ctx *c) { XXH3_128bits_reset(c->st); }

void zllm_xxh128_ctx_update(zllm_xxh128_ctx *c, const void *data, size_t len)
{
  XXH3_128bits_update(c->st, data, len);
}

static void xxh128_canonical(zllm_xxh128 *out, XXH128_hash_t h)
{
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  memcpy(out->b, canon.digest, ZLLM_XXH128_LEN);
}

void zllm_xxh128_ctx_final(zllm_xxh128_ctx *c, zllm_xxh128 *out)
{
  xxh128_canonical(out, XXH3_128bits_digest(c->st));
}

void zllm_xxh128_ctx_copy(zllm_xxh128_ctx *dst, const zllm_xxh128_ctx *src)
{
  XXH3_copyState(dst->st, src->st);
}

void zllm_xxh128_ctx_free(zllm_xxh128_ctx *c)
{
  if (!c)
    return;
  XXH3_freeState(c->st);
  free(c);
}

void zllm_xxh128_buf(zllm_xxh128 *out, const void *data, size_t len)
{
  xxh128_canonical(out, XXH3_128bits(data, len));
}

void zllm_hex(char *hex, const uint8_t *bytes, size_t len)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    hex[2 * i] = digits[bytes[i] >> 4];
    hex[2 * i + 1] = digits[bytes[i] & 15];
  }
  hex[2 * len] = '\0';
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int zllm_unhex(uint8_t *bytes, size_t len, const char *hex)
{
  for (size_t i = 0; i < len; i++) {
    int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return zllm_error_set(ZLLM_EFORMAT, "not a %zu-byte hex string", len);
    bytes[i] = (uint8_t)(hi << 4 | lo);
  }
  if (hex[2 * len] != '\0')
    return zllm_error_set(ZLLM_EFORMAT, "hex string longer than %zu bytes", len);
  return 0;
}

int zllm_sha256_file(zllm_sha256 *out, const char *path)
{
  zllm_sha256_ctx *c = NULL;
  uint8_t *chunk = malloc(ZLLM_IO_CHUNK);
  int fd = -1, rc;
  if (!chunk) {
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = zllm_sha256_ctx_new(&c)) < 0)
    goto done;
  if ((rc = zllm_open_regular(AT_FDCWD, path, O_RDONLY, path, &fd)) < 0)
    goto done;
  for (;;) {
    ssize_t n = read(fd, chunk, ZLLM_IO_CHUNK);
    if (n < 0) {
      rc = zllm_error_set_errno("%s: read failed", path);
      goto done;
    }
    if (n == 0)
      break;
    if ((rc = zllm_sha256_ctx_update(c, chunk, (size_t)n)) < 0)
      goto done;
  }
  rc = zllm_sha256_ctx_final(c, out);
done:
  if (fd >= 0)
    close(fd);
  zllm_sha256_ctx_free(c);
  free(chunk);
  return rc;
}

int zllm_git_oid(uint8_t oid[20], const char *type, const void *data, size_t len)
{
  char head[48];
  int n = snprintf(head, sizeof head, "%s %zu", type, len);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned dl = 0;
  int ok = md && n > 0 && (size_t)n < sizeof head && EVP_DigestInit_ex(md, EVP_sha1(), NULL) &&
           EVP_DigestUpdate(md, head, (size_t)n + 1) && EVP_DigestUpdate(md, data, len) &&
           EVP_DigestFinal_ex(md, oid, &dl) && dl == 20;
  EVP_MD_CTX_free(md);
  return ok ? 0 : zllm_error_set(ZLLM_ERROR, "SHA-1 failed");
}
