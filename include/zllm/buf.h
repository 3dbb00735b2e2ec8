/* zllm/buf.h - a growable byte buffer (local, not thread-safe). */
#ifndef ZLLM_BUF_H
#define ZLLM_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *data; /* always NUL-terminated when non-NULL */
  size_t len;
  size_t cap;
} zllm_buf;

#define ZLLM_BUF_INIT {NULL, 0, 0}

int zllm_buf_reserve(zllm_buf *b, size_t extra);
/* Room for `need` elements of `size` bytes in *arr (doubling *cap, at least
 * 64): 0, or ZLLM_ENOMEM with *arr unchanged. */
int zllm_grow(void **arr, size_t *cap, size_t need, size_t size);
int zllm_buf_append(zllm_buf *b, const void *data, size_t len);
int zllm_buf_puts(zllm_buf *b, const char *s);
int zllm_buf_printf(zllm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` with tabs, newlines, backslashes and control bytes escaped so
 * it fits in one TSV cell. */
int zllm_buf_put_tsv(zllm_buf *b, const char *s);
/* Little-endian binary records (for MPI messages). */
int zllm_buf_put_u64(zllm_buf *b, uint64_t v);
int zllm_buf_put_str(zllm_buf *b, const char *s); /* u64 length + bytes */

/* A read cursor over such records; every get checks the remaining length,
 * so a short or corrupt message is an error, never an overread. */
typedef struct {
  const char *p;
  size_t left;
} zllm_reader;

int zllm_reader_u64(zllm_reader *r, uint64_t *v);
/* A malloc'd, NUL-terminated copy of the next string (caller frees). */
int zllm_reader_str(zllm_reader *r, char **s);

/* The size of a bounded buffer (a round, a batch, a spill's block):
 * `normal`, or `tiny` when the environment sets ZLLM_TEST_TINY_BUFFERS=1,
 * so that tests run every round and spill path on small inputs. */
size_t zllm_bounded(size_t normal, size_t tiny);

/* Hands the contents to the caller (who frees them) and resets `b`. */
char *zllm_buf_detach(zllm_buf *b, size_t *len_out);
void zllm_buf_free(zllm_buf *b);

#endif
