/* Fuzz target: archive stream containers (pack/stream.c) as read back from
 * disk.  Whatever the bytes, decoding either fails cleanly or yields data
 * whose every chunk matches its checksum; decoding chunk by chunk must give
 * the same bytes as decoding the whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static zllm_codec *c;
  uint64_t raw;
  uint32_t cs, n;
  if (!c && zllm_codec_new(&c) < 0)
    abort();
  if (zllm_stream_info(data, size, &raw, &cs, &n) < 0 || raw > ((uint64_t)16 << 20))
    return 0;
  uint8_t *all = malloc(raw ? raw : 1), *one = malloc(cs);
  if (!all || !one)
    abort();
  if (zllm_stream_decode(c, data, size, all, raw) == 0) {
    for (uint32_t k = 0; k < n; k++) {
      size_t got = 0;
      if (zllm_stream_decode_chunk(c, data, size, k, one, &got) < 0 || memcmp(one, all + (size_t)k * cs, got))
        abort();
    }
  }
  free(all);
  free(one);
  return 0;
}
