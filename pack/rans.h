/* Private to pack/: the plane coder's entropy stage (pack/rans.c), not yet
 * used by the archive (the plane-coder issue wires it in with a format
 * version; bench/bench_planes.c measures it beside zstd and htscodecs).
 *
 * Static rANS over bytes with frequency tables chosen by a context the
 * decoder already has (for a BitX plane, the base's exponent; for a solo
 * mantissa plane, the element's exponent), in one stream: eight interleaved
 * 32-bit states, byte renormalisation, 12-bit probabilities.  A context with
 * enough bytes in the block gets its own table; the rest share one.  With
 * ctx NULL every byte uses one table (order 0).
 *
 * Block layout: u8 tag (1) | u8 ntables (1..17) | (ntables - 1) context
 * values, ascending | ntables tables, each a 32-byte bitmap of the symbols
 * present and, per present symbol, its frequency (1..4096) as 1 byte (< 128)
 * or 2 (high bit set: 15 bits, big end first); frequencies sum to 4096 |
 * 8 x u32 final states | the renormalisation bytes.
 * Decoding checks every length, the tables, that no state leaves its range,
 * that every byte is used and that every state ends where the encoder
 * started: a corrupt or hostile block is ZLLM_EFORMAT naming `name`. */
#ifndef ZLLM_PACK_RANS_H
#define ZLLM_PACK_RANS_H

#include <stddef.h>
#include <stdint.h>

/* Tables kept between blocks (one per thread); NULL in the calls below
 * allocates them for that call. */
typedef struct zr_work zr_work;
int zr_work_new(zr_work **out);
void zr_work_free(zr_work *w); /* accepts NULL */

/* The most a block of n bytes can take. */
size_t zr_bound(size_t n);

/* Codes n bytes of `in` (contexts `ctx`, or NULL) into out (cap bytes,
 * at least zr_bound(n)); *len gets the block's length.  n < 2^31. */
int zr_encode(zr_work *w, const uint8_t *in, const uint8_t *ctx, size_t n, uint8_t *out, size_t cap, size_t *len);

/* Decodes a block of `len` bytes back into dst (n bytes, the same contexts). */
int zr_decode(zr_work *w, const uint8_t *in, size_t len, const uint8_t *ctx, size_t n, uint8_t *dst, const char *name);

#endif
