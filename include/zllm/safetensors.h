/* zllm/safetensors.h - a strict safetensors reader.
 *
 * Only the header is read into memory; tensor data is reached by offset with
 * pread(2).  Every rule of the format is checked (see zllm_st_parse) and a
 * violation is one line: "<file>: safetensors: <rule>: <detail>".  Rules:
 *   file-size         the file holds at least the 8-byte length prefix
 *   header-length     N <= ZLLM_ST_HEADER_MAX and N <= file size - 8
 *   header-start      the header begins with '{'
 *   header-json       the header is valid JSON (one object, no trailing bytes)
 *   duplicate-name    no key appears twice (tensor names or entry fields)
 *   tensor-entry      each entry is {"dtype","shape","data_offsets"} only
 *   tensor-name       names are non-empty
 *   dtype             a known dtype name (zllm/dtype.h)
 *   shape             a list of at most ZLLM_ST_MAX_DIMS non-negative integers
 *   data-offsets      [begin, end] non-negative integers with begin <= end
 *   shape-size        product(shape) x dtype size == end - begin, no overflow
 *   offsets-bounds    end <= data length
 *   offsets-overlap   sorted by begin, no two tensors share bytes
 *   offsets-gap       the first tensor starts at 0 and each starts where the
 *                     previous ended
 *   offsets-coverage  the last tensor ends exactly at the end of the file
 *   metadata          "__metadata__" is an object of string values
 * All calls are local.
 */
#ifndef ZLLM_SAFETENSORS_H
#define ZLLM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/dtype.h"

#define ZLLM_ST_HEADER_MAX 100000000ULL /* as the reference implementation */
#define ZLLM_ST_MAX_DIMS 64

typedef struct {
  char *name;
  zllm_dtype dtype;
  uint32_t ndim;
  uint64_t *shape;   /* ndim entries (NULL for a scalar) */
  uint64_t nelem;    /* product of shape (1 for a scalar) */
  uint64_t begin;    /* byte offsets relative to data_start */
  uint64_t end;
} zllm_st_tensor;

typedef struct {
  char *file;           /* the name used in messages */
  uint64_t file_size;
  uint64_t header_len;  /* N, the JSON length */
  uint64_t data_start;  /* 8 + N */
  uint64_t data_len;
  size_t ntensors;
  zllm_st_tensor *tensors; /* in file order (sorted by begin) */
  size_t nmeta;
  char **meta_keys;        /* __metadata__, in header order */
  char **meta_vals;
  uint8_t *raw;            /* the 8 + N header bytes exactly as in the file */
  size_t *by_name;         /* tensor indices sorted by name, for lookup */
} zllm_st_header;

/* Parses a header from the first `prefix_len` bytes of a file whose total
 * size is `file_size`.  `prefix` must hold at least 8 + N bytes.  The caller
 * frees *out with zllm_st_header_free. */
int zllm_st_parse(zllm_st_header **out, const char *name, const uint8_t *prefix, size_t prefix_len,
                  uint64_t file_size);

/* Reads and parses the header of an open file (two preads, nothing else). */
int zllm_st_read_header(zllm_st_header **out, int fd, const char *name);

/* The same through a reader: `read` fills dst with exactly n bytes at off of
 * a file of `size` bytes (0, or an error it has set).  Two reads: the length
 * prefix, then the header it declares once the limits allow it.  A file
 * that is not on disk (one in an archive: zllm_file_reader_st_header) is
 * read this way. */
typedef int (*zllm_st_read_fn)(void *ctx, uint64_t off, void *dst, size_t n);
int zllm_st_read_header_with(zllm_st_header **out, const char *name, uint64_t size, zllm_st_read_fn read,
                             void *ctx);

/* Opens `path`, reads its header; *fd_out is the open descriptor for data
 * reads (caller closes).  */
int zllm_st_open(zllm_st_header **out, int *fd_out, const char *path);

/* Reads `len` bytes starting `off` bytes into tensor `i`. */
int zllm_st_read_tensor(const zllm_st_header *h, int fd, size_t i, uint64_t off, void *buf,
                        size_t len);

/* Index of the tensor called `name`, or -1. */
long zllm_st_find(const zllm_st_header *h, const char *name);

void zllm_st_header_free(zllm_st_header *h); /* accepts NULL */

/* "[64, 172]" into buf (truncated with "..." if cap is small). */
void zllm_st_shape_str(char *buf, size_t cap, const zllm_st_tensor *t);

#endif
