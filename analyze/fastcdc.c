/* FastCDC content-defined chunking (Xia et al., USENIX ATC'16) and chunk-level
 * dedup, as a baseline for the survey: a gear rolling hash, normalized
 * chunking (a stricter mask before the average size, a looser one after),
 * XXH3-128 per chunk, unique chunks counted in an open-addressing set. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "zllm/analyze.h"
#include "zllm/error.h"
#include "zllm/io.h"

#define CDC_MIN (16u << 10)
#define CDC_AVG (64u << 10)
#define CDC_MAX (256u << 10)
#define READ_WINDOW ((size_t)4 << 20)

static uint64_t gear[256];

static void init_gear(void)
{
  uint64_t x = 0x2545f4914f6cdd1dULL; /* fixed: chunk boundaries are reproducible */
  for (int i = 0; i < 256; i++) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    gear[i] = z ^ (z >> 31);
  }
}

/* The top `bits` bits of the gear fingerprint: they depend on the last 64 bytes. */
static uint64_t top_mask(int bits)
{
  return ~0ULL << (64 - bits);
}

size_t zllm_cdc_cut(const uint8_t *p, size_t n)
{
  static const int avg_bits = 16; /* log2(CDC_AVG) */
  uint64_t fp = 0, mask_s = top_mask(avg_bits + 2), mask_l = top_mask(avg_bits - 2);
  if (!gear[0] && !gear[1])
    init_gear();
  if (n <= CDC_MIN)
    return n;
  size_t end = n < CDC_MAX ? n : CDC_MAX, normal = n < CDC_AVG ? n : CDC_AVG, i = CDC_MIN;
  for (; i < normal; i++) {
    fp = (fp << 1) + gear[p[i]];
    if (!(fp & mask_s))
      return i + 1;
  }
  for (; i < end; i++) {
    fp = (fp << 1) + gear[p[i]];
    if (!(fp & mask_l))
      return i + 1;
  }
  return end;
}

/* ---- a set of 128-bit chunk hashes ------------------------------------------ */

typedef struct {
  XXH128_hash_t *slots;
  uint8_t *used;
  size_t cap, n;
} hash_set;

static int set_grow(hash_set *s)
{
  hash_set g = {calloc(s->cap ? s->cap * 2 : 4096, sizeof *g.slots), calloc(s->cap ? s->cap * 2 : 4096, 1),
                s->cap ? s->cap * 2 : 4096, 0};
  if (!g.slots || !g.used) {
    free(g.slots);
    free(g.used);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < s->cap; i++)
    if (s->used[i]) {
      size_t k = (size_t)s->slots[i].low64 & (g.cap - 1);
      while (g.used[k])
        k = (k + 1) & (g.cap - 1);
      g.slots[k] = s->slots[i];
      g.used[k] = 1;
      g.n++;
    }
  free(s->slots);
  free(s->used);
  *s = g;
  return 0;
}

/* 1 when h is new (and now in the set), 0 when seen, < 0 on error. */
static int set_add(hash_set *s, XXH128_hash_t h)
{
  if ((s->n + 1) * 2 > s->cap && set_grow(s) < 0)
    return ZLLM_ENOMEM;
  size_t k = (size_t)h.low64 & (s->cap - 1);
  while (s->used[k]) {
    if (XXH128_isEqual(s->slots[k], h))
      return 0;
    k = (k + 1) & (s->cap - 1);
  }
  s->slots[k] = h;
  s->used[k] = 1;
  s->n++;
  return 1;
}

/* Chunks one file (a window refilled as chunks are cut; a chunk never spans
 * more than CDC_MAX bytes, so the window always holds a whole one). */
static int chunk_file(hash_set *set, const char *path, zllm_cdc_stats *st)
{
  int fd = -1;
  uint8_t *buf = malloc(READ_WINDOW);
  size_t have = 0, off = 0;
  /* hub paths are resolved at listing: no link is followed, no FIFO blocks */
  int rc = buf ? zllm_open_nofollow(path, &fd) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (int eof = 0; rc == 0 && (!eof || off < have);) {
    if (!eof && have - off < CDC_MAX) { /* slide and refill */
      memmove(buf, buf + off, have - off);
      have -= off;
      off = 0;
      ssize_t r = read(fd, buf + have, READ_WINDOW - have);
      if (r < 0)
        rc = zllm_error_set_errno("%s: read failed", path);
      eof = r == 0;
      have += r > 0 ? (size_t)r : 0;
      continue;
    }
    size_t len = zllm_cdc_cut(buf + off, have - off);
    int fresh = set_add(set, XXH3_128bits(buf + off, len));
    if (fresh < 0)
      rc = fresh;
    st->chunks++;
    st->unique_chunks += fresh == 1;
    st->unique_bytes += fresh == 1 ? len : 0;
    st->bytes += len;
    off += len;
  }
  st->files++;
  free(buf);
  if (fd >= 0)
    close(fd);
  return rc;
}

int zllm_cdc_dedup_files(const char *const *paths, size_t n, zllm_cdc_stats *st)
{
  hash_set set = {0};
  int rc = 0;
  memset(st, 0, sizeof *st);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = chunk_file(&set, paths[i], st);
  free(set.slots);
  free(set.used);
  return rc;
}
