/* zllm/basemap.h - each repo's BitX base, and why: the neutral map that
 * base selection fills (zllm/cluster.h, zllm_bases_choose: bitwise
 * similarity, a families file, the model cards) and pack reads
 * (zllm/archive.h), so pack does not choose bases itself.  Local calls. */
#ifndef ZLLM_BASEMAP_H
#define ZLLM_BASEMAP_H

#include <stddef.h>

typedef struct {
  char *repo;
  char *base;  /* NULL: none */
  char *why;   /* where the base came from (or why there is none), NULL: nothing to say */
  int judged;  /* bitwise similarity gave a verdict on this repo */
} zllm_base_entry;

typedef struct {
  zllm_base_entry *e; /* one per repo, in the order given to zllm_base_map_new */
  size_t n;
  int sorted;         /* the repos came in strcmp order: lookups bisect */
} zllm_base_map;

/* A map with an entry (no base) for each of `n` repos. */
int zllm_base_map_new(zllm_base_map **out, char *const *repos, size_t n);
/* Sets entry i's base and reason (copied; either may be NULL to clear). */
int zllm_base_map_set(zllm_base_map *m, size_t i, const char *base, const char *why);
/* The entry of `repo`, or NULL. */
const zllm_base_entry *zllm_base_map_find(const zllm_base_map *m, const char *repo);
long zllm_base_map_index(const zllm_base_map *m, const char *repo);
void zllm_base_map_free(zllm_base_map *m); /* accepts NULL */

#endif
