/* The binding helpers (zllm/bind.h). */
#include "zllm/bind.h"

#include <string.h>

#include "zllm/archive.h"
#include "zllm/dtype.h"
#include "zllm/safetensors.h"

const char *zllm_bind_version(void)
{
  return ZLLM_VERSION;
}

#define SIZE_OF(T) {#T, sizeof(T)}

size_t zllm_bind_sizeof(const char *type)
{
  static const struct {
    const char *name;
    size_t size;
  } sizes[] = {SIZE_OF(zllm_archive_repo), SIZE_OF(zllm_archive_file), SIZE_OF(zllm_st_header),
               SIZE_OF(zllm_st_tensor), SIZE_OF(zllm_slice_store_stats)};
  for (size_t i = 0; type && i < sizeof sizes / sizeof sizes[0]; i++)
    if (strcmp(type, sizes[i].name) == 0)
      return sizes[i].size;
  return 0;
}

const char *zllm_bind_dtype_name(int dtype)
{
  const zllm_dtype_info *d = dtype >= 0 ? zllm_dtype_get((zllm_dtype)dtype) : NULL;
  return d ? d->name : NULL;
}

int zllm_bind_dtype_size(int dtype)
{
  const zllm_dtype_info *d = dtype >= 0 ? zllm_dtype_get((zllm_dtype)dtype) : NULL;
  return d ? d->size : 0;
}
