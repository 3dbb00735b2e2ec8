/* Fuzz target: config.json and the shard index (jansson).  Every input goes
 * through both parsers. */
#include <stdint.h>
#include <stdlib.h>

#include "zllm/path.h"
#include "zllm/repofiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  zllm_config *c = NULL;
  zllm_shard_index *x = NULL;
  if (zllm_config_parse(&c, "fuzz/config.json", (const char *)data, size) == 0)
    zllm_config_free(c);
  if (zllm_index_parse(&x, "fuzz/index.json", (const char *)data, size) == 0) {
    /* no accepted shard path may leave the repo */
    for (size_t i = 0; i < x->nfiles; i++)
      if (zllm_path_check_relative(x->files[i], "fuzz") < 0)
        abort();
    zllm_index_free(x);
  }
  return 0;
}
