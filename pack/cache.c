/* Decoded tensor parts kept for the fine-tunes that need them again
 * (pack/archive_internal.h, ar_cache_*).
 *
 * Restoring a family decodes its base once per fine-tune (a BitX part is
 * its planes XOR the base's same part), so a hub of one base and seven
 * fine-tunes decoded the base eight times.  Parts decoded on behalf of
 * another tensor (as its base, or through a dup) are kept here within a
 * byte budget; the least recently used go first, a quarter of the budget at
 * a time, so eviction is rare however small the parts.  Restore and
 * verify turn it on for their read-only handles (a writer's rollback can
 * give a row id to other bytes; the survey's ranks keep their memory).
 *
 * One cache may serve several handles on several threads (the read
 * pipeline's decoders share one, so a base part decoded for one fine-tune
 * is there for the next whichever thread decodes it): every call takes the
 * cache's lock, and a part handed out by ar_cache_get is pinned (never
 * evicted) until ar_cache_release. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pack/archive_internal.h"
#include "zllm/error.h"

typedef struct {
  int64_t id; /* 0: a free slot */
  uint64_t part, used;
  uint8_t *bytes;
  size_t len;
  int pins;   /* readers holding it: not evicted meanwhile */
} entry;

#define SPARES 8

struct ar_cache {
  entry *slots; /* open addressing, linear probing; at most half full */
  size_t cap, count;
  size_t bytes, budget;
  /* evicted buffers kept for the next puts: a part-sized malloc is a fresh
   * mapping whose every page faults and is zeroed again (3% of a restore);
   * they count in the budget with the entries */
  struct {
    uint8_t *bytes;
    size_t cap;
  } spare[SPARES];
  int nspare;
  size_t spare_bytes;
  pthread_mutex_t mu;
  uint64_t clock;
  uint64_t hits, misses;
};

static size_t slot_of(const ar_cache *c, int64_t id, uint64_t part)
{
  uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull ^ part * 0xc2b2ae3d27d4eb4full;
  return (size_t)(h ^ h >> 29) & (c->cap - 1);
}

int ar_cache_new(ar_cache **out, size_t budget)
{
  ar_cache *c = calloc(1, sizeof *c);
  if (c) {
    c->cap = 64;
    c->budget = budget;
    c->slots = calloc(c->cap, sizeof *c->slots);
  }
  if (!c || !c->slots) {
    free(c);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory for the part cache");
  }
  pthread_mutex_init(&c->mu, NULL);
  *out = c;
  return 0;
}

void ar_cache_free(ar_cache *c)
{
  if (!c)
    return;
  for (int i = 0; i < c->nspare; i++)
    free(c->spare[i].bytes);
  for (size_t i = 0; i < c->cap; i++)
    free(c->slots[i].bytes);
  free(c->slots);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static entry *find(ar_cache *c, int64_t id, uint64_t part)
{
  for (size_t i = slot_of(c, id, part);; i = (i + 1) & (c->cap - 1)) {
    entry *e = &c->slots[i];
    if (!e->id || (e->id == id && e->part == part))
      return e;
  }
}

const uint8_t *ar_cache_get(ar_cache *c, int64_t id, uint64_t part, size_t *len)
{
  const uint8_t *bytes = NULL;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, id, part);
  if (e->id) {
    c->hits++;
    e->used = ++c->clock;
    e->pins++;
    *len = e->len;
    bytes = e->bytes;
  } else {
    c->misses++;
  }
  pthread_mutex_unlock(&c->mu);
  return bytes;
}

void ar_cache_release(ar_cache *c, int64_t id, uint64_t part)
{
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, id, part);
  if (e->id && e->pins > 0)
    e->pins--;
  pthread_mutex_unlock(&c->mu);
}

/* Rebuilds the table at `cap` slots from the entries kept. */
static int rehash(ar_cache *c, size_t cap)
{
  entry *old = c->slots;
  size_t old_cap = c->cap;
  entry *slots = calloc(cap, sizeof *slots);
  if (!slots)
    return -1;
  c->slots = slots;
  c->cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].id)
      *find(c, old[i].id, old[i].part) = old[i];
  free(old);
  return 0;
}

/* Without memory to rehash: what no reader holds goes (a held part may
 * then be missed by a lookup, which only costs a decode). */
static void clear(ar_cache *c)
{
  for (size_t i = 0; i < c->cap; i++)
    if (c->slots[i].id && !c->slots[i].pins) {
      c->bytes -= c->slots[i].len;
      c->count--;
      free(c->slots[i].bytes);
      c->slots[i] = (entry){0};
    }
}

/* An evicted entry's buffer: kept as a spare while the budget has room. */
static void drop_bytes(ar_cache *c, uint8_t *bytes, size_t len)
{
  if (c->nspare < SPARES && c->bytes + c->spare_bytes + len <= c->budget) {
    c->spare[c->nspare].bytes = bytes;
    c->spare[c->nspare++].cap = len;
    c->spare_bytes += len;
    return;
  }
  free(bytes);
}

/* Frees spares until the entries, `room` more bytes and the spares fit
 * in the budget. */
static void trim_spares(ar_cache *c, size_t room)
{
  while (c->nspare && c->bytes + room + c->spare_bytes > c->budget) {
    c->nspare--;
    c->spare_bytes -= c->spare[c->nspare].cap;
    free(c->spare[c->nspare].bytes);
  }
}

/* A buffer of at least len bytes: a spare, else a new one (or NULL). */
static uint8_t *take_bytes(ar_cache *c, size_t len)
{
  for (int i = 0; i < c->nspare; i++)
    if (c->spare[i].cap >= len) {
      uint8_t *b = c->spare[i].bytes;
      c->spare_bytes -= c->spare[i].cap;
      c->spare[i] = c->spare[--c->nspare];
      return b;
    }
  return malloc(len ? len : 1);
}

static int by_use(const void *a, const void *b)
{
  uint64_t x = (*(entry *const *)a)->used, y = (*(entry *const *)b)->used;
  return x < y ? -1 : x > y;
}

/* Drops the least recently used entries until `need` more bytes fit in
 * three quarters of the budget. */
static void evict(ar_cache *c, size_t need)
{
  entry **order = malloc((c->count ? c->count : 1) * sizeof *order);
  size_t n = 0;
  if (!order) {
    clear(c);
    return;
  }
  for (size_t i = 0; i < c->cap; i++)
    if (c->slots[i].id > 0 && !c->slots[i].pins) /* a pinned part is being read */
      order[n++] = &c->slots[i];
  qsort(order, n, sizeof *order, by_use);
  for (size_t i = 0; i < n && c->bytes + need > c->budget / 4 * 3; i++) {
    c->bytes -= order[i]->len;
    drop_bytes(c, order[i]->bytes, order[i]->len);
    order[i]->bytes = NULL;
    order[i]->id = -1; /* marked; the rehash below drops it */
    c->count--;
  }
  free(order);
  for (size_t i = 0; i < c->cap; i++)
    if (c->slots[i].id == -1)
      c->slots[i].id = 0;
  if (rehash(c, c->cap) < 0) /* probing needs the holes closed: without memory for that, start empty */
    clear(c);
}

static void put_locked(ar_cache *c, int64_t id, uint64_t part, const uint8_t *bytes, size_t len);

void ar_cache_put(ar_cache *c, int64_t id, uint64_t part, const uint8_t *bytes, size_t len)
{
  pthread_mutex_lock(&c->mu);
  put_locked(c, id, part, bytes, len);
  pthread_mutex_unlock(&c->mu);
}

static void put_locked(ar_cache *c, int64_t id, uint64_t part, const uint8_t *bytes, size_t len)
{
  if (id <= 0 || len > c->budget / 4 || find(c, id, part)->id)
    return; /* too big to be worth a quarter of the budget, or already here */
  if (c->bytes + len > c->budget)
    evict(c, len);
  if (2 * (c->count + 1) > c->cap && rehash(c, 2 * c->cap) < 0)
    return;
  uint8_t *copy = take_bytes(c, len);
  if (!copy)
    return; /* a cache that cannot grow is only slower */
  trim_spares(c, len);
  memcpy(copy, bytes, len);
  entry *e = find(c, id, part);
  *e = (entry){id, part, ++c->clock, copy, len, 0};
  c->count++;
  c->bytes += len;
}

int ar_cache_from_env(ar_cache **out)
{
  const char *env = getenv("ZLLM_PART_CACHE_MIB");
  char *end = NULL;
  long mib = env && *env ? strtol(env, &end, 10) : AR_CACHE_DEFAULT_MIB;
  *out = NULL;
  if (env && *env && (*end || mib < 0 || mib > (1L << 20)))
    return zllm_error_set(ZLLM_EINVAL, "ZLLM_PART_CACHE_MIB=%s: not a size in MiB", env);
  return mib ? ar_cache_new(out, (size_t)mib << 20) : 0;
}

int ar_cache_enable(zllm_archive *a, int ways)
{
  if (a->cache || a->writer)
    return 0;
  int rc = ar_cache_from_env(&a->cache);
  if (rc == 0 && a->cache)
    ar_cache_share(a->cache, ways);
  return rc;
}

void ar_cache_share(ar_cache *c, int ways)
{
  pthread_mutex_lock(&c->mu);
  c->budget /= (size_t)(ways > 1 ? ways : 1);
  trim_spares(c, c->budget + 1); /* all of them */
  if (c->bytes > c->budget)
    evict(c, 0);
  pthread_mutex_unlock(&c->mu);
}

void ar_cache_stats(ar_cache *c, uint64_t *hits, uint64_t *misses)
{
  pthread_mutex_lock(&c->mu);
  *hits = c->hits;
  *misses = c->misses;
  pthread_mutex_unlock(&c->mu);
}

void ar_cache_attach(zllm_archive *a, ar_cache *shared)
{
  if (!a->cache_borrowed)
    ar_cache_free(a->cache);
  a->cache = shared;
  a->cache_borrowed = shared != NULL;
}

int zllm_archive_open_readonly(zllm_archive **out, const char *dir, int ways)
{
  int rc = zllm_archive_open(out, dir, 0);
  rc = rc ? rc : ar_cache_enable(*out, ways);
  if (rc < 0) {
    zllm_archive_close(*out);
    *out = NULL;
  }
  return rc;
}
