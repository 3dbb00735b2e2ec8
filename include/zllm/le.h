/* zllm/le.h - little-endian loads and stores of 16, 32 and 64 bits.  On a
 * little-endian host a load is one memcpy (a plain move the vectoriser
 * sees as such: the tallies' and planes' loops depend on it); elsewhere it
 * is assembled byte by byte.  Every on-disk number zllm reads or writes
 * byte-wise goes through these. */
#ifndef ZLLM_LE_H
#define ZLLM_LE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ZLLM_LE_HOST 1
#else
#define ZLLM_LE_HOST 0
#endif

static inline uint16_t zllm_le16(const uint8_t *p)
{
  uint16_t v;
  if (ZLLM_LE_HOST) {
    memcpy(&v, p, sizeof v);
    return v;
  }
  return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t zllm_le32(const uint8_t *p)
{
  uint32_t v;
  if (ZLLM_LE_HOST) {
    memcpy(&v, p, sizeof v);
    return v;
  }
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t zllm_le64(const uint8_t *p)
{
  return (uint64_t)zllm_le32(p) | (uint64_t)zllm_le32(p + 4) << 32;
}

static inline void zllm_put_le32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static inline void zllm_put_le64(uint8_t *p, uint64_t v)
{
  zllm_put_le32(p, (uint32_t)v);
  zllm_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif
