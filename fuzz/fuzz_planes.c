/* Fuzz target: the tensor-plane chunks of archive format 2 (chunk codec
 * ZLLM_CHUNK_RANS0, htscodecs' rANS 4x16 behind pack/stream.c).  The first
 * byte picks the mode:
 *   even: the rest is a plane; it is coded as the archive codes planes
 *         (rANS, noise kept raw, chunk size from the mode byte) and must
 *         decode to the same bytes;
 *   odd:  the next two bytes are the chunk's length n, the rest is a chunk
 *         as read back from disk — a rANS frame (mode bit 1 clear) or a
 *         sparse chunk (set: bitmap and non-zero bytes, two frames) —
 *         wrapped in a one-chunk container; decoding must fail cleanly or
 *         fill exactly n bytes.
 * The decoder is Debian's libhtscodecs, built without the sanitizers, so
 * ASan does not see its own reads and writes: the frame ends at a page
 * with no access behind it (an overread faults) and the output ends at one
 * too (an overrun faults), with a canary before the output's start. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zllm/buf.h"
#include "zllm/codec.h"
#include "zllm/le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static zllm_codec *codec;

/* n bytes that end where an inaccessible page begins; *map and *maplen are
 * what to unmap. */
static uint8_t *fenced(size_t n, uint8_t **map, size_t *maplen)
{
  size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (n + 64 + page - 1) / page * page;
  *maplen = body + page;
  *map = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (*map == MAP_FAILED || mprotect(*map + body, page, PROT_NONE) != 0)
    abort();
  return *map + body - n;
}

static void round_trip(uint8_t mode, const uint8_t *data, size_t size)
{
  zllm_stream_options o = ZLLM_STREAM_OPTIONS_INIT;
  zllm_buf b = ZLLM_BUF_INIT;
  o.coder = ZLLM_CODER_RANS0;
  o.skip_noise = mode & 2;
  o.chunk_size = (uint32_t)64 << (mode >> 2 & 15); /* 64 B .. 2 MiB */
  uint8_t *back = malloc(size + 1);
  if (!back || zllm_stream_encode(codec, &o, data, size, &b) < 0 ||
      zllm_stream_decode(codec, (const uint8_t *)b.data, b.len, back, size) < 0 || memcmp(back, data, size) != 0)
    abort();
  zllm_buf_free(&b);
  free(back);
}

static void hostile_frame(uint8_t mode, const uint8_t *data, size_t size)
{
  size_t n = (size_t)data[0] | (size_t)data[1] << 8, frame = size - 2;
  uint8_t *map_in, *map_out;
  size_t len_in, len_out;
  uint8_t *blob = fenced(24 + 16 + frame, &map_in, &len_in), *out = fenced(n, &map_out, &len_out);
  memset(blob, 0, 40);
  zllm_put_le32(blob, ZLLM_STREAM_MAGIC);
  blob[4] = ZLLM_STREAM_VERSION;
  zllm_put_le64(blob + 8, n);
  zllm_put_le32(blob + 16, n ? (uint32_t)n : 1);
  zllm_put_le32(blob + 20, n ? 1 : 0);
  zllm_put_le32(blob + 24, (uint32_t)frame);
  blob[28] = mode & 2 ? ZLLM_CHUNK_SPARSE : ZLLM_CHUNK_RANS0;
  memcpy(blob + 40, data + 2, frame);
  memset(out - 64, 0xa5, 64);
  (void)zllm_stream_decode(codec, blob, 24 + (n ? 16 : 0) + (n ? frame : 0), out, n);
  for (int i = 1; i <= 64; i++)
    if (out[-i] != 0xa5)
      abort(); /* written before the output's start */
  munmap(map_in, len_in);
  munmap(map_out, len_out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!codec && zllm_codec_new(&codec) < 0)
    abort();
  if (size < 3)
    return 0;
  if (data[0] & 1)
    hostile_frame(data[0], data + 1, size - 1);
  else
    round_trip(data[0], data + 1, size - 1);
  return 0;
}
