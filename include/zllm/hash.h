/* zllm/hash.h - SHA-256 (OpenSSL libcrypto) and XXH3-128 (libxxhash).
 *
 * SHA-256 is what the Hub reports as an LFS file's oid, so it is the proof of
 * a byte-exact file.  XXH3-128 is the fast content key for tensors and files;
 * a hit on it is a candidate, never a proof.  Local calls.
 */
#ifndef ZLLM_HASH_H
#define ZLLM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ZLLM_SHA256_LEN 32
#define ZLLM_XXH128_LEN 16

typedef struct { uint8_t b[ZLLM_SHA256_LEN]; } zllm_sha256;
typedef struct { uint8_t b[ZLLM_XXH128_LEN]; } zllm_xxh128; /* canonical (big-endian) bytes */

typedef struct zllm_sha256_ctx zllm_sha256_ctx;
typedef struct zllm_xxh128_ctx zllm_xxh128_ctx;

int zllm_sha256_ctx_new(zllm_sha256_ctx **out);
int zllm_sha256_ctx_update(zllm_sha256_ctx *c, const void *data, size_t len);
int zllm_sha256_ctx_final(zllm_sha256_ctx *c, zllm_sha256 *out); /* also resets c */
void zllm_sha256_ctx_free(zllm_sha256_ctx *c);                    /* accepts NULL */
int zllm_sha256_ctx_reset(zllm_sha256_ctx *c); /* back to the empty input */
/* dst takes src's state (both stay usable): a tentative feed that may be undone. */
int zllm_sha256_ctx_copy(zllm_sha256_ctx *dst, const zllm_sha256_ctx *src);
int zllm_sha256_buf(zllm_sha256 *out, const void *data, size_t len);

int zllm_xxh128_ctx_new(zllm_xxh128_ctx **out);
void zllm_xxh128_ctx_reset(zllm_xxh128_ctx *c);
void zllm_xxh128_ctx_update(zllm_xxh128_ctx *c, const void *data, size_t len);
void zllm_xxh128_ctx_final(zllm_xxh128_ctx *c, zllm_xxh128 *out);
void zllm_xxh128_ctx_free(zllm_xxh128_ctx *c); /* accepts NULL */
void zllm_xxh128_ctx_copy(zllm_xxh128_ctx *dst, const zllm_xxh128_ctx *src); /* dst takes src's state */
void zllm_xxh128_buf(zllm_xxh128 *out, const void *data, size_t len);

/* Lower-case hex; `hex` must hold 2*len+1 bytes. */
void zllm_hex(char *hex, const uint8_t *bytes, size_t len);
/* Parses exactly 2*len hex digits; 0 or ZLLM_EFORMAT. */
int zllm_unhex(uint8_t *bytes, size_t len, const char *hex);

/* git's object id of `len` bytes: SHA-1 of "<type> <len>\0" and the bytes
 * (type "blob" or "tree"); what the Hub lists as a file's or folder's oid. */
int zllm_git_oid(uint8_t oid[20], const char *type, const void *data, size_t len);

/* Streams a whole file once (bounded memory) into its SHA-256. */
int zllm_sha256_file(zllm_sha256 *out, const char *path);

#endif
