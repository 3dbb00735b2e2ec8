/* The repo -> (base, reason) map (zllm/basemap.h). */
#include <stdlib.h>
#include <string.h>

#include "zllm/basemap.h"
#include "zllm/error.h"

int zllm_base_map_new(zllm_base_map **out, char *const *repos, size_t n)
{
  zllm_base_map *m = calloc(1, sizeof *m);
  *out = NULL;
  if (!m || !(m->e = calloc(n + 1, sizeof *m->e))) {
    free(m);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  m->sorted = 1;
  for (; m->n < n; m->n++) {
    if (!(m->e[m->n].repo = strdup(repos[m->n]))) {
      zllm_base_map_free(m);
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    }
    m->sorted &= m->n == 0 || strcmp(repos[m->n - 1], repos[m->n]) < 0;
  }
  *out = m;
  return 0;
}

static int set_str(char **dst, const char *src)
{
  char *copy = src ? strdup(src) : NULL;
  if (src && !copy)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  free(*dst);
  *dst = copy;
  return 0;
}

int zllm_base_map_set(zllm_base_map *m, size_t i, const char *base, const char *why)
{
  if (i >= m->n)
    return zllm_error_set(ZLLM_EINVAL, "base map: no entry %zu", i);
  int rc = set_str(&m->e[i].base, base);
  return rc ? rc : set_str(&m->e[i].why, why);
}

/* A hub's map is in id order: a lookup per repo must not scan the map,
 * pack and base selection make one for every repo. */
static long index_sorted(const zllm_base_map *m, const char *repo)
{
  size_t l = 0, r = m->n;
  while (l < r) {
    size_t mid = l + (r - l) / 2;
    int c = strcmp(m->e[mid].repo, repo);
    if (c == 0)
      return (long)mid;
    if (c < 0)
      l = mid + 1;
    else
      r = mid;
  }
  return -1;
}

long zllm_base_map_index(const zllm_base_map *m, const char *repo)
{
  if (m && repo && m->sorted)
    return index_sorted(m, repo);
  for (size_t i = 0; m && repo && i < m->n; i++)
    if (strcmp(m->e[i].repo, repo) == 0)
      return (long)i;
  return -1;
}

const zllm_base_entry *zllm_base_map_find(const zllm_base_map *m, const char *repo)
{
  long i = zllm_base_map_index(m, repo);
  return i >= 0 ? &m->e[i] : NULL;
}

void zllm_base_map_free(zllm_base_map *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++) {
    free(m->e[i].repo);
    free(m->e[i].base);
    free(m->e[i].why);
  }
  free(m->e);
  free(m);
}
