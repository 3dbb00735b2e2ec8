/* Private to pack/: a sparse byte plane as a bitmap of its non-zero bytes
 * and those bytes in order (pack/sparse.c).  A BitX plane of a fine-tune is
 * mostly zeros (an element equal to its base gives a zero in every plane):
 * entropy-coding the bitmap's bytes (eight positions per symbol) and the
 * non-zero bytes codes a fifth to a tenth as many symbols as coding the
 * plane byte by byte, for about the same size. */
#ifndef ZLLM_PACK_SPARSE_H
#define ZLLM_PACK_SPARSE_H

#include <stddef.h>
#include <stdint.h>

/* Bitmap bytes for n plane bytes. */
static inline size_t zs_bitmap_len(size_t n) { return (n + 7) / 8; }

/* Splits n bytes: bit k of bitmap[i] is set when src[8i + k] is not zero;
 * vals (n + 8 bytes of room: a group of eight is written whole) gets the
 * non-zero bytes in order.  Returns their count. */
size_t zs_split(const uint8_t *src, size_t n, uint8_t *bitmap, uint8_t *vals);

/* The inverse, refusing (-1) a bitmap that does not name exactly m bytes
 * within the n (no bit past the end).  Reads up to 8 bytes past vals[m - 1]
 * (vals must have m + 8 readable bytes). */
int zs_merge(const uint8_t *bitmap, const uint8_t *vals, size_t m, size_t n, uint8_t *dst);

#endif
