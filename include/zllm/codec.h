/* zllm/codec.h - BitX byte planes and the chunked stream container.
 *
 * BitX (after ZipLLM, made dtype-aware): a tensor is optionally XORed
 * element-wise with its base at the dtype's width, then split into
 * field-aligned byte planes, so that each plane holds one field of the
 * number and an element equal to its base becomes zeros in every plane:
 *   BF16  2 planes: exponent (bits 14..7); sign + mantissa (bit 15, bits 6..0)
 *   F16   3 planes: sign + exponent (bits 15..10); mantissa bits 9..8; bits 7..0
 *   F32   4 planes: exponent (bits 30..23); sign + mantissa bits 22..16;
 *         mantissa bits 15..8; bits 7..0     (C64: two F32 per element)
 *   other dtypes: one plane per byte of the little-endian element.
 * Without a base the same planes give ZipNN-style byte grouping.
 *
 * A stream (one plane, or any bytes) is stored as a self-describing
 * container of independent chunks, each coded alone (constant, zstd, rANS,
 * or raw when nothing is gained), with an offset table so a reader can decode any
 * chunk without the others (codecs below).  Layout (all integers little-endian):
 *   u32 magic "ZLS1" | u16 version (1) | u16 reserved (0) | u64 raw length |
 *   u32 chunk size | u32 chunk count | count x { u32 stored length, u8 codec,
 *   u8 reserved[3], u64 XXH3-64 of the decoded chunk } | chunk payloads, in order
 * Decoding checks every length against the buffer it was given and every
 * chunk against its checksum, so a corrupt or hostile container is an error
 * (ZLLM_EFORMAT), never an overread and never wrong bytes.
 * All calls are local; a zllm_codec context is used by one thread at a time.
 */
#ifndef ZLLM_CODEC_H
#define ZLLM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/buf.h"
#include "zllm/dtype.h"

#define ZLLM_BITX_MAX_PLANES 8

/* Number of planes for a dtype (1..8). */
int zllm_bitx_planes(zllm_dtype dt);

/* Bytes in each plane for `nelem` elements (2 x nelem for C64, else nelem). */
size_t zllm_bitx_plane_len(zllm_dtype dt, size_t nelem);

/* Splits `nelem` elements of `src` (XORed with `base` when it is not NULL)
 * into planes; plane p receives zllm_bitx_plane_len() bytes at planes[p]. */
void zllm_bitx_split(zllm_dtype dt, const uint8_t *src, const uint8_t *base, size_t nelem,
                     uint8_t *const *planes);

/* The inverse: rebuilds the elements into `dst` (XORing `base` back when it
 * is not NULL).  dst and base may be the same buffer. */
void zllm_bitx_merge(zllm_dtype dt, const uint8_t *const *planes, const uint8_t *base, size_t nelem,
                     uint8_t *dst);

#define ZLLM_STREAM_MAGIC 0x31534c5au /* "ZLS1" */
#define ZLLM_STREAM_VERSION 1
#define ZLLM_STREAM_CHUNK_DEFAULT ((uint32_t)256 << 10)
#define ZLLM_STREAM_CHUNK_MAX ((uint32_t)64 << 20)

/* Chunk codecs.  RANS0 and SPARSE are archive format 2's (docs/FORMAT.md):
 * RANS0 is htscodecs' static rANS 4x16, order 0, one self-describing frame
 * (rans_compress_to_4x16 with RANS_ORDER_SIMD_AUTO: 4- or 32-way
 * interleaved, SIMD where the CPU has it); SPARSE is a bitmap of the
 * non-zero bytes and those bytes, each a RANS0 frame, for planes that are
 * mostly zeros. */
typedef enum {
  ZLLM_CHUNK_RAW = 0,
  ZLLM_CHUNK_CONST = 1,
  ZLLM_CHUNK_ZSTD = 2,
  ZLLM_CHUNK_RANS0 = 3,
  ZLLM_CHUNK_SPARSE = 4,
  ZLLM_CHUNK_CODECS /* how many there are */
} zllm_chunk_codec;

/* What codes a chunk that is neither constant nor noise. */
typedef enum { ZLLM_CODER_ZSTD = 0, ZLLM_CODER_RANS0 = 1 } zllm_stream_coder;

typedef struct {
  int zstd_level;      /* default 1 */
  uint32_t chunk_size; /* default ZLLM_STREAM_CHUNK_DEFAULT */
  double keep_ratio;   /* a coded chunk is kept only below keep_ratio x raw (default 0.97) */
  int skip_noise;      /* store a chunk raw without trying a coder when a sample of it has
                          order-0 entropy above 7.9 bits/byte (for byte planes) */
  zllm_stream_coder coder; /* default zstd */
} zllm_stream_options;

#define ZLLM_STREAM_OPTIONS_INIT {1, ZLLM_STREAM_CHUNK_DEFAULT, 0.97, 0, ZLLM_CODER_ZSTD}

typedef struct zllm_codec zllm_codec;

int zllm_codec_new(zllm_codec **out);
void zllm_codec_free(zllm_codec *c); /* accepts NULL */

/* Appends the container for `len` bytes of `src` to `out`. */
int zllm_stream_encode(zllm_codec *c, const zllm_stream_options *o, const uint8_t *src, size_t len,
                       zllm_buf *out);

/* The raw length and chunk count a container declares (after checking its
 * header and chunk table against `len`). */
int zllm_stream_info(const uint8_t *blob, size_t len, uint64_t *raw_len, uint32_t *chunk_size,
                     uint32_t *nchunks);

/* Adds the container's chunks to counts[codec] (after the same checks as
 * zllm_stream_info; a codec past the known ones is not counted). */
int zllm_stream_count_codecs(const uint8_t *blob, size_t len, uint64_t counts[ZLLM_CHUNK_CODECS]);

/* Decodes the whole container into dst (dst_len must equal its raw length). */
int zllm_stream_decode(zllm_codec *c, const uint8_t *blob, size_t len, uint8_t *dst, size_t dst_len);

/* Decodes chunk `k` alone into dst (which holds chunk_size bytes, or the
 * shorter last chunk); *out_len gets its length. */
int zllm_stream_decode_chunk(zllm_codec *c, const uint8_t *blob, size_t len, uint32_t k, uint8_t *dst,
                             size_t *out_len);

/* A container's chunk table, read on its own: a reader that holds only
 * some chunks (serve's slices, read from the pack by range) decodes them
 * without the rest of the container. */
typedef struct {
  uint64_t raw_len, total; /* its decoded length; its whole stored length */
  uint32_t chunk_size, nchunks;
  const uint8_t *table;    /* nchunks entries, in the caller's bytes */
} zllm_stream_table;

#define ZLLM_STREAM_HEAD_LEN 24
#define ZLLM_STREAM_ENTRY_LEN 16
/* The chunk count the 24-byte header declares (how much table to read). */
uint32_t zllm_stream_head_chunks(const uint8_t head[ZLLM_STREAM_HEAD_LEN]);
/* The header and table (ZLLM_STREAM_HEAD_LEN + 16 x nchunks bytes at head)
 * of a container of `total` bytes, with the checks zllm_stream_info makes. */
int zllm_stream_table_parse(zllm_stream_table *t, const uint8_t *head, size_t head_len, uint64_t total);
/* Where the payloads of chunks [k0, k1) are, from the container's start. */
void zllm_stream_table_span(const zllm_stream_table *t, uint32_t k0, uint32_t k1, uint64_t *off, uint64_t *len);
/* Decodes chunk k, whose payload is at src, into dst (its length: *n). */
int zllm_stream_table_decode(zllm_codec *c, const zllm_stream_table *t, uint32_t k, const uint8_t *src,
                             uint8_t *dst, size_t *n);

#endif
