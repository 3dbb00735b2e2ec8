/* One census row from one /api/models entry (crawl/census_internal.h).
 * Each field is checked against its rule; a field that breaks it is left
 * empty and named, so a hostile entry costs its own fields, never the row's
 * shape or the rows after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crawl/census_internal.h"
#include "zllm/error.h"
#include "zllm/path.h"

#define TEXT_MAX 64          /* library, pipeline tag, relation */
#define DATE_MAX 40
#define COUNT_MAX 9007199254740992LL /* 2^53: exact in JSON's doubles, more parameters than any model has */

static void drop(char *dropped, size_t cap, const char *field)
{
  size_t n = strlen(dropped);
  snprintf(dropped + n, cap - n, "%s%s", n ? "," : "", field);
}

static int in_set(const char *s, const char *allowed, size_t max)
{
  size_t n = strlen(s);
  return n > 0 && n <= max && strspn(s, allowed) == n;
}

#define TOKEN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-"
#define DATE_CHARS "0123456789-T:.Z+"
#define HEX_CHARS "0123456789abcdef"
#define DTYPE_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"

/* A string field that must be a token: its value, "" when absent or null,
 * NULL when it breaks the rule. */
static const char *token(const json_t *m, const char *key, const char *chars, size_t max)
{
  const json_t *v = json_object_get(m, key);
  if (!v || json_is_null(v))
    return "";
  const char *s = json_string_value(v);
  return s && in_set(s, chars, max) ? s : NULL;
}

static int put_token(zllm_buf *b, const json_t *m, const char *key, const char *chars, size_t max, char *dropped,
                     size_t dcap)
{
  const char *s = token(m, key, chars, max);
  if (!s) {
    drop(dropped, dcap, key);
    s = "";
  }
  return zllm_buf_printf(b, "\t%s", s);
}

/* baseModels: {"relation": R, "models": [{"id": ID}, ...]} -> "R\tID,ID" */
static int put_bases(zllm_buf *b, const json_t *m, char *dropped, size_t dcap)
{
  const json_t *v = json_object_get(m, "baseModels");
  if (!v || json_is_null(v))
    return zllm_buf_puts(b, "\t\t");
  const json_t *models = json_object_get(v, "models");
  const char *rel = token(v, "relation", TOKEN_CHARS, TEXT_MAX);
  int ok = json_is_object(v) && rel && json_is_array(models) && json_array_size(models) <= ZLLM_CENSUS_MAX_BASES;
  for (size_t i = 0; ok && i < json_array_size(models); i++) {
    const char *id = json_string_value(json_object_get(json_array_get(models, i), "id"));
    ok = id && zllm_repo_id_check(id) == 0;
  }
  if (!ok) {
    drop(dropped, dcap, "baseModels");
    return zllm_buf_puts(b, "\t\t");
  }
  int rc = zllm_buf_printf(b, "\t%s\t", rel);
  for (size_t i = 0; rc == 0 && i < json_array_size(models); i++)
    rc = zllm_buf_printf(b, "%s%s", i ? "," : "", json_string_value(json_object_get(json_array_get(models, i), "id")));
  return rc;
}

static int count_ok(const json_t *v)
{
  return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= COUNT_MAX;
}

static int cmp_key(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* safetensors: {"parameters": {DT: N, ...}, "total": N} -> "TOTAL\tDT=N;DT=N"
 * (dtypes sorted: the row does not depend on the server's key order) */
static int put_params(zllm_buf *b, const json_t *m, char *dropped, size_t dcap)
{
  const json_t *v = json_object_get(m, "safetensors");
  if (!v || json_is_null(v))
    return zllm_buf_puts(b, "\t\t");
  const json_t *params = json_object_get(v, "parameters"), *total = json_object_get(v, "total");
  const char *keys[ZLLM_CENSUS_MAX_DTYPES];
  size_t n = 0;
  int ok = json_is_object(params) && json_object_size(params) <= ZLLM_CENSUS_MAX_DTYPES && (!total || count_ok(total));
  long long sum = 0;
  const char *k;
  json_t *val;
  json_object_foreach((json_t *)params, k, val)
  {
    if (!ok || !in_set(k, DTYPE_CHARS, 16) || !count_ok(val) || sum > COUNT_MAX - json_integer_value(val)) {
      ok = 0;
      break;
    }
    keys[n++] = k;
    sum += json_integer_value(val);
  }
  if (!ok) {
    drop(dropped, dcap, "safetensors");
    return zllm_buf_puts(b, "\t\t");
  }
  qsort(keys, n, sizeof *keys, cmp_key);
  int rc = zllm_buf_printf(b, "\t%lld\t", total ? (long long)json_integer_value(total) : sum);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = zllm_buf_printf(b, "%s%s=%lld", i ? ";" : "", keys[i], (long long)json_integer_value(json_object_get(params, keys[i])));
  return rc;
}

static int put_gated(zllm_buf *b, const json_t *m, char *dropped, size_t dcap)
{
  const json_t *v = json_object_get(m, "gated");
  if (!v || json_is_null(v))
    return zllm_buf_puts(b, "\t");
  if (json_is_boolean(v))
    return zllm_buf_puts(b, json_is_true(v) ? "\ttrue" : "\tfalse");
  return put_token(b, m, "gated", TOKEN_CHARS, TEXT_MAX, dropped, dcap);
}

static int put_count(zllm_buf *b, const json_t *m, const char *key, char *dropped, size_t dcap)
{
  const json_t *v = json_object_get(m, key);
  if (!v || json_is_null(v))
    return zllm_buf_puts(b, "\t");
  if (!count_ok(v)) {
    drop(dropped, dcap, key);
    return zllm_buf_puts(b, "\t");
  }
  return zllm_buf_printf(b, "\t%lld", (long long)json_integer_value(v));
}

static int put_files(zllm_buf *b, const json_t *m, char *dropped, size_t dcap)
{
  const json_t *v = json_object_get(m, "siblings");
  if (!v || json_is_null(v))
    return zllm_buf_puts(b, "\t");
  if (!json_is_array(v)) {
    drop(dropped, dcap, "siblings");
    return zllm_buf_puts(b, "\t");
  }
  return zllm_buf_printf(b, "\t%zu", json_array_size(v));
}

int zl_census_row(const json_t *m, zllm_buf *line, char *why, size_t why_cap, char *dropped, size_t dcap)
{
  dropped[0] = '\0';
  const char *id = json_string_value(json_object_get(m, "id"));
  if (!json_is_object(m) || !id) {
    snprintf(why, why_cap, "an entry without an \"id\" string");
    return 1;
  }
  if (zllm_repo_id_check(id) < 0) {
    snprintf(why, why_cap, "%s", zllm_error_last());
    return 1;
  }
  size_t start = line->len;
  const char *sha = token(m, "sha", HEX_CHARS, 40);
  if (sha && *sha && strlen(sha) != 40)
    sha = NULL;
  if (!sha)
    drop(dropped, dcap, "sha");
  int rc = zllm_buf_printf(line, "%s\t%s", id, sha ? sha : "");
  rc = rc ? rc : put_token(line, m, "createdAt", DATE_CHARS, DATE_MAX, dropped, dcap);
  rc = rc ? rc : put_token(line, m, "lastModified", DATE_CHARS, DATE_MAX, dropped, dcap);
  rc = rc ? rc : put_token(line, m, "library_name", TOKEN_CHARS, TEXT_MAX, dropped, dcap);
  rc = rc ? rc : put_token(line, m, "pipeline_tag", TOKEN_CHARS, TEXT_MAX, dropped, dcap);
  rc = rc ? rc : put_bases(line, m, dropped, dcap);
  rc = rc ? rc : put_params(line, m, dropped, dcap);
  rc = rc ? rc : put_gated(line, m, dropped, dcap);
  rc = rc ? rc : put_files(line, m, dropped, dcap);
  rc = rc ? rc : put_count(line, m, "downloads", dropped, dcap);
  rc = rc ? rc : put_count(line, m, "likes", dropped, dcap);
  rc = rc ? rc : zllm_buf_puts(line, "\n");
  if (rc < 0) {
    line->len = start;
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  return 0;
}

int zllm_census_take(const char *line, size_t len, size_t lineno, const char *path, char *copy,
                     zllm_census_cols *cols, uint64_t *bad)
{
  if (lineno == 1)
    return line && strcmp(line, ZLLM_CENSUS_COLUMNS) == 0
               ? 0
               : zllm_error_set(ZLLM_EINVAL, "%s: not a census (its first line is not the census's columns)", path);
  if (line && len <= ZLLM_CENSUS_MAX_LINE) {
    memcpy(copy, line, len + 1);
    if (zllm_census_split(copy, cols) == 0)
      return 1;
  }
  if (bad)
    (*bad)++;
  return 0;
}

int zllm_census_split(char *line, zllm_census_cols *out)
{
  char *p = line;
  for (int i = 0; i < ZLLM_CENSUS_NCOLUMNS; i++) {
    out->col[i] = p;
    char *tab = strchr(p, '\t');
    if (i == ZLLM_CENSUS_NCOLUMNS - 1)
      return tab ? -1 : 0;
    if (!tab)
      return -1;
    *tab = '\0';
    p = tab + 1;
  }
  return 0;
}
