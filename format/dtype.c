#include <string.h>

#include "zllm/dtype.h"
#include "zllm/error.h"

/* Sub-byte types (F4, F6_*) are not listed: their byte length is not
 * shape x size, and no tensor store we target emits them yet. */
static const zllm_dtype_info dtypes[ZLLM_DT_COUNT] = {
  [ZLLM_DT_BOOL] = {"BOOL", 1, false, 0, 0},
  [ZLLM_DT_U8] = {"U8", 1, false, 0, 0},
  [ZLLM_DT_I8] = {"I8", 1, false, 0, 0},
  [ZLLM_DT_F8_E5M2] = {"F8_E5M2", 1, true, 5, 2},
  [ZLLM_DT_F8_E4M3] = {"F8_E4M3", 1, true, 4, 3},
  [ZLLM_DT_F8_E8M0] = {"F8_E8M0", 1, true, 8, 0},
  [ZLLM_DT_I16] = {"I16", 2, false, 0, 0},
  [ZLLM_DT_U16] = {"U16", 2, false, 0, 0},
  [ZLLM_DT_F16] = {"F16", 2, true, 5, 10},
  [ZLLM_DT_BF16] = {"BF16", 2, true, 8, 7},
  [ZLLM_DT_I32] = {"I32", 4, false, 0, 0},
  [ZLLM_DT_U32] = {"U32", 4, false, 0, 0},
  [ZLLM_DT_F32] = {"F32", 4, true, 8, 23},
  [ZLLM_DT_I64] = {"I64", 8, false, 0, 0},
  [ZLLM_DT_U64] = {"U64", 8, false, 0, 0},
  [ZLLM_DT_F64] = {"F64", 8, true, 11, 52},
  [ZLLM_DT_C64] = {"C64", 8, true, 8, 23},
};

const zllm_dtype_info *zllm_dtype_get(zllm_dtype dt)
{
  return (unsigned)dt < ZLLM_DT_COUNT ? &dtypes[dt] : NULL;
}

int zllm_dtype_from_name(zllm_dtype *out, const char *name)
{
  for (int i = 0; i < ZLLM_DT_COUNT; i++) {
    if (strcmp(dtypes[i].name, name) == 0) {
      *out = (zllm_dtype)i;
      return 0;
    }
  }
  return ZLLM_ENOTFOUND;
}
