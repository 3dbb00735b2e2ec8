/* Fuzz target: README.md model cards (YAML front matter via libyaml). */
#include <stdint.h>
#include <stdlib.h>

#include "zllm/repofiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  zllm_card *c = NULL;
  if (zllm_card_parse(&c, "fuzz/README.md", (const char *)data, size) == 0) {
    for (size_t i = 0; i < c->nbase; i++)
      if (!c->base_models[i])
        abort();
    zllm_card_free(c);
  }
  return 0;
}
