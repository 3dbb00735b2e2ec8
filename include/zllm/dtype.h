/* zllm/dtype.h - tensor element types as safetensors names them.  Local. */
#ifndef ZLLM_DTYPE_H
#define ZLLM_DTYPE_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
  ZLLM_DT_BOOL, ZLLM_DT_U8, ZLLM_DT_I8, ZLLM_DT_F8_E5M2, ZLLM_DT_F8_E4M3, ZLLM_DT_F8_E8M0,
  ZLLM_DT_I16, ZLLM_DT_U16, ZLLM_DT_F16, ZLLM_DT_BF16, ZLLM_DT_I32, ZLLM_DT_U32, ZLLM_DT_F32,
  ZLLM_DT_I64, ZLLM_DT_U64, ZLLM_DT_F64, ZLLM_DT_C64,
  ZLLM_DT_COUNT
} zllm_dtype;

typedef struct {
  const char *name;  /* safetensors spelling, "BF16" */
  uint8_t size;      /* bytes per element */
  bool is_float;
  uint8_t exp_bits;  /* IEEE-style fields; 0 for integers */
  uint8_t man_bits;
} zllm_dtype_info;

/* Info for a dtype; NULL for an out-of-range value. */
const zllm_dtype_info *zllm_dtype_get(zllm_dtype dt);
/* Looks a safetensors dtype name up; 0 or ZLLM_ENOTFOUND (no message set). */
int zllm_dtype_from_name(zllm_dtype *out, const char *name);

#endif
