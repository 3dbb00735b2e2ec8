/* Fuzz target: the plane coder's rANS stage (pack/rans.c).  The first byte
 * picks the mode and the contexts:
 *   even: the rest is a plane; it is coded (with contexts, or without) and
 *         must decode to the same bytes;
 *   odd:  the rest is a block as read back from disk; decoding it must fail
 *         cleanly or fill exactly n bytes, never read or write outside.
 * Contexts come from the input too (a function of the position and the
 * first byte), as a base's exponents would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pack/rans.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void contexts(uint8_t *ctx, size_t n, uint8_t mode)
{
  for (size_t i = 0; i < n; i++) /* a few values, runs of them: some earn tables */
    ctx[i] = (uint8_t)(120 + ((i / (1 + (mode >> 4))) * 2654435761u >> 29) % (1 + (mode >> 1 & 7)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 3)
    return 0;
  uint8_t mode = data[0];
  int with_ctx = mode & 2;
  data++;
  size--;
  if (!(mode & 1)) {
    size_t cap = zr_bound(size), len = 0;
    uint8_t *ctx = malloc(size), *out = malloc(cap), *back = malloc(size);
    if (!ctx || !out || !back)
      abort();
    contexts(ctx, size, mode);
    if (zr_encode(NULL, data, with_ctx ? ctx : NULL, size, out, cap, &len) < 0 || len > cap ||
        zr_decode(NULL, out, len, with_ctx ? ctx : NULL, size, back, "fuzz") < 0 || memcmp(back, data, size) != 0)
      abort();
    free(ctx);
    free(out);
    free(back);
    return 0;
  }
  /* odd: n from the next two bytes, then the block */
  size_t n = (size_t)data[0] | (size_t)data[1] << 8;
  uint8_t *ctx = malloc(n + 1), *back = malloc(n + 1);
  if (!ctx || !back)
    abort();
  contexts(ctx, n, mode);
  (void)zr_decode(NULL, data + 2, size - 2, with_ctx ? ctx : NULL, n, back, "fuzz");
  free(ctx);
  free(back);
  return 0;
}
