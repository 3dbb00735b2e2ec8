/* Fuzz target: a safetensors file prefix through the strict parser.  On
 * success the header must satisfy every invariant the rest of zllm relies
 * on; a violation aborts, which the fuzzer reports. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  zllm_st_header *h = NULL;
  if (zllm_st_parse(&h, "fuzz.safetensors", data, size, size) < 0)
    return 0;
  uint64_t expect = 0;
  for (size_t i = 0; i < h->ntensors; i++) {
    const zllm_st_tensor *t = &h->tensors[i];
    if (t->begin != expect || t->end < t->begin || t->end > h->data_len ||
        t->nelem * zllm_dtype_get(t->dtype)->size != t->end - t->begin || zllm_st_find(h, t->name) < 0)
      abort();
    expect = t->end;
  }
  if (expect != h->data_len || h->data_start + h->data_len != size || memcmp(h->raw, data, h->data_start) != 0)
    abort();
  zllm_st_header_free(h);
  return 0;
}
