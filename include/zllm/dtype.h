/* zllm/dtype.h - tensor element types as safetensors names them.  Local. */
#ifndef ZLLM_DTYPE_H
#define ZLLM_DTYPE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "zllm/fpconv.h"

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

/* F32, BF16 and F16: the floats the load/store helpers below cover, and the
 * one rule for casts: a tensor of one of them is predicted from a base of
 * another through the cast training code does (round-to-nearest-even down,
 * exact up).  BitX, the clusterer's samples and the statistics use it. */
static inline bool zllm_dtype_is_float3(zllm_dtype d)
{
  return d == ZLLM_DT_F32 || d == ZLLM_DT_BF16 || d == ZLLM_DT_F16;
}

static inline bool zllm_dtype_castable(zllm_dtype from, zllm_dtype to)
{
  return from != to && zllm_dtype_is_float3(from) && zllm_dtype_is_float3(to);
}

/* A little-endian F32, BF16 or F16 element as a float (exactly). */
static inline float zllm_dtype_load_float(zllm_dtype d, const uint8_t *p)
{
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8;
  if (d == ZLLM_DT_BF16)
    return zllm_fp_bf16_to_f32((uint16_t)u);
  if (d == ZLLM_DT_F16)
    return zllm_fp_f16_to_f32((uint16_t)u);
  u |= (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Stores a float as a little-endian F32, BF16 or F16 element (RNE). */
static inline void zllm_dtype_store_float(zllm_dtype d, uint8_t *p, float f)
{
  uint32_t u;
  if (d == ZLLM_DT_F32) {
    memcpy(&u, &f, 4);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
  } else {
    u = d == ZLLM_DT_BF16 ? zllm_fp_f32_to_bf16(f) : zllm_fp_f32_to_f16(f);
  }
  p[0] = (uint8_t)u;
  p[1] = (uint8_t)(u >> 8);
}

#endif
