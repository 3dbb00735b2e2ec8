/* Hub-level statistics from a crawl's metadata.jsonl, without any weights:
 * models and bytes per quarter, the dtype mix, the declared base_model graph. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zllm/crawl.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"

#define MAX_QUARTERS 512
#define MAX_DTYPES 32

typedef struct {
  char name[8]; /* "2024Q3" */
  uint64_t models, bytes;
} quarter;

typedef struct {
  char name[16];
  uint64_t params;
} dtype_sum;

typedef struct {
  quarter q[MAX_QUARTERS];
  size_t nq;
  dtype_sum d[MAX_DTYPES];
  size_t nd;
  uint64_t models, bytes, with_base, base_in_hub;
  char **ids;
  size_t nids;
} summary;

static void add_quarter(summary *s, const char *created, uint64_t bytes)
{
  char name[8] = "unknown";
  int month = created && strlen(created) >= 7 && created[4] == '-' ? atoi(created + 5) : 0;
  if (month >= 1 && month <= 12)
    snprintf(name, sizeof name, "%.4sQ%c", created, (char)('1' + (month - 1) / 3));
  size_t i = 0;
  while (i < s->nq && strcmp(s->q[i].name, name) != 0)
    i++;
  if (i == s->nq && s->nq < MAX_QUARTERS)
    snprintf(s->q[s->nq++].name, sizeof s->q[0].name, "%s", name);
  if (i < s->nq) {
    s->q[i].models++;
    s->q[i].bytes += bytes;
  }
}

static void add_params(summary *s, json_t *params)
{
  const char *k;
  json_t *v;
  json_object_foreach(params, k, v)
  {
    size_t i = 0;
    while (i < s->nd && strcmp(s->d[i].name, k) != 0)
      i++;
    if (i == s->nd && s->nd < MAX_DTYPES)
      snprintf(s->d[s->nd++].name, sizeof s->d[0].name, "%s", k);
    if (i < s->nd && json_is_integer(v) && json_integer_value(v) > 0)
      s->d[i].params += (uint64_t)json_integer_value(v);
  }
}

static void add_model(summary *s, json_t *m)
{
  json_t *files = json_object_get(m, "files"), *f, *bm = json_object_get(m, "base_model");
  size_t i;
  uint64_t bytes = 0;
  int header_params = 0;
  json_array_foreach(files, i, f)
  {
    json_t *p = json_object_get(f, "parameters");
    bytes += json_is_integer(json_object_get(f, "size")) ? (uint64_t)json_integer_value(json_object_get(f, "size")) : 0;
    if (json_is_object(p)) {
      add_params(s, p);
      header_params = 1;
    }
  }
  if (!header_params) /* no headers read: the API's own count */
    add_params(s, json_object_get(json_object_get(m, "safetensors"), "parameters"));
  add_quarter(s, json_string_value(json_object_get(m, "createdAt")), bytes);
  s->models++;
  s->bytes += bytes;
  s->with_base += json_array_size(bm) > 0;
}

static int cmp_q(const void *a, const void *b)
{
  return strcmp(((const quarter *)a)->name, ((const quarter *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The declared bases that are models of this crawl. */
static void count_bases_in_hub(summary *s, json_t **models, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    json_t *bm = json_object_get(models[i], "base_model"), *b;
    size_t k;
    json_array_foreach(bm, k, b)
    {
      const char *id = json_string_value(b);
      if (id && s->nids && bsearch(&id, s->ids, s->nids, sizeof *s->ids, cmp_str)) {
        s->base_in_hub++;
        break;
      }
    }
  }
}

static void print_summary(summary *s, FILE *out)
{
  qsort(s->q, s->nq, sizeof *s->q, cmp_q);
  fprintf(out, "%llu models, %.1f MB of files; %llu declare a base_model, %llu of them a model of this crawl\n",
          (unsigned long long)s->models, (double)s->bytes / 1e6, (unsigned long long)s->with_base,
          (unsigned long long)s->base_in_hub);
  fprintf(out, "%-8s %8s %14s\n", "quarter", "models", "bytes");
  for (size_t i = 0; i < s->nq; i++)
    fprintf(out, "%-8s %8llu %14llu\n", s->q[i].name, (unsigned long long)s->q[i].models,
            (unsigned long long)s->q[i].bytes);
  fprintf(out, "%-8s %16s\n", "dtype", "parameters");
  for (size_t i = 0; i < s->nd; i++)
    fprintf(out, "%-8s %16llu\n", s->d[i].name, (unsigned long long)s->d[i].params);
}

int zllm_crawl_summary(const char *jsonl, FILE *out)
{
  char *text = NULL;
  size_t len = 0, n = 0;
  summary *s = calloc(1, sizeof *s);
  json_t **models = NULL;
  int rc = s ? zllm_read_small_file(&text, &len, jsonl, (size_t)1 << 31) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (char *line = text, *next; rc == 0 && line && *line; line = next) {
    next = strchr(line, '\n');
    if (next)
      *next++ = '\0';
    json_t *m = NULL, **v = realloc(models, (n + 1) * sizeof *v);
    if (!v) {
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
      break;
    }
    models = v;
    if ((rc = zllm_json_load(&m, jsonl, "metadata-json", line, strlen(line), (size_t)64 << 20)) == 0)
      models[n++] = m;
  }
  if (rc == 0 && !(s->ids = calloc(n ? n : 1, sizeof *s->ids)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *id = json_string_value(json_object_get(models[i], "id"));
    if (id)
      s->ids[s->nids++] = (char *)id;
    add_model(s, models[i]);
  }
  if (rc == 0 && s->nids)
    qsort(s->ids, s->nids, sizeof *s->ids, cmp_str);
  if (rc == 0) {
    count_bases_in_hub(s, models, n);
    print_summary(s, out);
  }
  for (size_t i = 0; i < n; i++)
    json_decref(models[i]);
  free(models);
  if (s)
    free(s->ids);
  free(s);
  free(text);
  return rc;
}
