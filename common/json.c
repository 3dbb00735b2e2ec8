#include <stdlib.h>
#include <string.h>

#include "zllm/error.h"
#include "zllm/json.h"

int zllm_json_load(json_t **out, const char *name, const char *rule, const char *text, size_t len,
                   size_t max)
{
  *out = NULL;
  if (len > max)
    return zllm_error_set(ZLLM_ELIMIT, "%s: %s: %zu bytes of JSON exceed the %zu-byte limit", name,
                          rule, len, max);
  json_error_t jerr;
  json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!v)
    return zllm_error_set(ZLLM_EFORMAT, "%s: %s: invalid JSON at line %d column %d: %s", name, rule,
                          jerr.line, jerr.column, jerr.text);
  *out = v;
  return 0;
}

char *zllm_json_strdup(const json_t *v)
{
  if (!json_is_string(v))
    return NULL;
  size_t len = json_string_length(v);
  char *s = malloc(len + 1);
  if (s) {
    memcpy(s, json_string_value(v), len);
    s[len] = '\0';
  }
  return s;
}

long zllm_strv_find_sorted(char *const *v, size_t n, const char *s)
{
  size_t a = 0, b = n;
  while (s && a < b) {
    size_t m = (a + b) / 2;
    int c = strcmp(v[m], s);
    if (c == 0)
      return (long)m;
    if (c < 0)
      a = m + 1;
    else
      b = m;
  }
  return -1;
}

void zllm_strv_free(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

int zllm_json_string_list(char ***out, size_t *n_out, const json_t *v, const char *name,
                          const char *field)
{
  size_t n = json_is_array(v) ? json_array_size(v) : json_is_string(v) ? 1 : 0;
  *out = NULL;
  *n_out = 0;
  if (!json_is_array(v) && !json_is_string(v))
    return zllm_error_set(ZLLM_EFORMAT, "%s: '%s' must be a string or a list of strings", name, field);
  char **list = calloc(n ? n : 1, sizeof *list);
  if (!list)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
    if (!(list[i] = zllm_json_strdup(item))) {
      zllm_strv_free(list, i);
      return zllm_error_set(json_is_string(item) ? ZLLM_ENOMEM : ZLLM_EFORMAT,
                            "%s: '%s' item %zu is not a string", name, field, i);
    }
  }
  *out = list;
  *n_out = n;
  return 0;
}
