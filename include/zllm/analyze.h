/* zllm/analyze.h - per-file analysis: one sequential pass that hashes a file
 * (SHA-256 and XXH3-128) and each of its tensors (XXH3-128), and the scan
 * record built from it.  Local calls; the survey distributes them. */
#ifndef ZLLM_ANALYZE_H
#define ZLLM_ANALYZE_H

#include <stdint.h>
#include <stdio.h>

#include "zllm/buf.h"
#include "zllm/hash.h"
#include "zllm/hub.h"
#include "zllm/safetensors.h"

/* Reads the open file `fd` once from the start, in ZLLM_IO_CHUNK windows.
 * `h` may be NULL (no tensors).  `tensor_xxh` must hold h->ntensors entries
 * (file order) when `h` is given.  Any of the outputs may be NULL. */
int zllm_analyze_hash_fd(int fd, const char *name, const zllm_st_header *h, zllm_sha256 *sha,
                         zllm_xxh128 *file_xxh, zllm_xxh128 *tensor_xxh);

/* `zllm inspect`: prints a safetensors file's tensors (name, dtype, shape,
 * bytes, xxh3-128) and the SHA-256 of any file.  A malformed safetensors file
 * returns its error (nothing printed about it on `out`). */
int zllm_inspect_file(FILE *out, const char *path, const char *display);

/* Appends one scan block for a hub file to `b` (text, see scan.c):
 *   F\trepo\tpath\tkind\tbytes\tsha256\txxh3_128\tstatus\tntensors\terror
 *   T\ttensor\tdtype\tshape\tbytes\txxh3_128        (one per tensor)
 * status is "ok" or "error"; an unreadable or malformed file still yields
 * its F line (with the reason), so the job records it and goes on.  Only a
 * failure to allocate is returned as an error. */
int zllm_scan_file(zllm_buf *b, zllm_source *src, const zllm_repo *repo, const zllm_hub_file *f);

/* The same block from hashes already computed (by a read that did more
 * than hash: the survey's one pass).  h is NULL for a file without
 * tensors; header_error non-empty marks a malformed header. */
int zllm_scan_record(zllm_buf *b, const char *repo_id, const zllm_hub_file *f, const zllm_sha256 *sha,
                     const zllm_xxh128 *xxh, const zllm_st_header *h, const zllm_xxh128 *tensor_xxh,
                     const char *header_error);

/* FastCDC (gear hash, normalized chunking; 16 KiB min, 64 KiB average,
 * 256 KiB max): the length of the chunk that starts at p (n bytes left). */
size_t zllm_cdc_cut(const uint8_t *p, size_t n);

typedef struct {
  uint64_t files, bytes, chunks, unique_chunks, unique_bytes;
} zllm_cdc_stats;

/* Chunk-level dedup over whole files (a chunk hash hit is not byte-checked:
 * this is a measurement of what a chunk store would keep, not storage). */
int zllm_cdc_dedup_files(const char *const *paths, size_t n, zllm_cdc_stats *st);

#endif
