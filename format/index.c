#include <stdlib.h>
#include <string.h>

#include "zllm/error.h"
#include "zllm/json.h"
#include "zllm/path.h"
#include "zllm/repofiles.h"

void zllm_index_free(zllm_shard_index *idx)
{
  if (!idx)
    return;
  for (size_t i = 0; i < idx->n; i++) {
    free(idx->entries[i].tensor);
    free(idx->entries[i].file);
  }
  free(idx->entries);
  free(idx->files); /* borrowed from entries */
  free(idx);
}

static int cmp_entry(const void *a, const void *b)
{
  return strcmp(((const zllm_index_entry *)a)->tensor, ((const zllm_index_entry *)b)->tensor);
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_total_size(zllm_shard_index *idx, const json_t *root, const char *name)
{
  const json_t *meta = json_object_get(root, "metadata");
  const json_t *ts = json_is_object(meta) ? json_object_get(meta, "total_size") : NULL;
  if (!ts || json_is_null(ts))
    return 0;
  double d = json_is_integer(ts) ? (double)json_integer_value(ts) : json_is_real(ts) ? json_real_value(ts) : -1;
  if (d < 0 || d > 1.8e19 || (json_is_real(ts) && d != (double)(uint64_t)d))
    return zllm_error_set(ZLLM_EFORMAT, "%s: total-size: metadata.total_size is not a byte count", name);
  idx->has_total_size = true;
  idx->total_size = json_is_integer(ts) ? (uint64_t)json_integer_value(ts) : (uint64_t)d;
  return 0;
}

/* Fills the distinct, sorted shard file list (pointers borrowed from entries). */
static int collect_files(zllm_shard_index *idx)
{
  if (!(idx->files = calloc(idx->n ? idx->n : 1, sizeof *idx->files)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < idx->n; i++)
    idx->files[i] = idx->entries[i].file;
  qsort(idx->files, idx->n, sizeof *idx->files, cmp_str);
  size_t k = 0;
  for (size_t i = 0; i < idx->n; i++)
    if (k == 0 || strcmp(idx->files[k - 1], idx->files[i]) != 0)
      idx->files[k++] = idx->files[i];
  idx->nfiles = k;
  return 0;
}

static int parse_weight_map(zllm_shard_index *idx, const json_t *wm, const char *name)
{
  if (!json_is_object(wm))
    return zllm_error_set(ZLLM_EFORMAT, "%s: weight-map: 'weight_map' is missing or not an object", name);
  size_t n = json_object_size(wm);
  if (!(idx->entries = calloc(n ? n : 1, sizeof *idx->entries)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)wm, key, val) {
    if (!json_is_string(val))
      return zllm_error_set(ZLLM_EFORMAT, "%s: weight-map: the file of '%s' is not a string", name, key);
    if (zllm_path_check_relative(json_string_value(val), key) < 0)
      return zllm_error_set(ZLLM_EUNSAFE, "%s: shard-path: %s", name, zllm_error_last());
    zllm_index_entry *e = &idx->entries[idx->n++];
    e->tensor = strdup(key);
    e->file = zllm_json_strdup(val);
    if (!e->tensor || !e->file)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  qsort(idx->entries, idx->n, sizeof *idx->entries, cmp_entry);
  return collect_files(idx);
}

int zllm_index_parse(zllm_shard_index **out, const char *name, const char *text, size_t len)
{
  json_t *root = NULL;
  zllm_shard_index *idx = calloc(1, sizeof *idx);
  int rc;
  *out = NULL;
  if (!idx)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if ((rc = zllm_json_load(&root, name, "index-json", text, len, ZLLM_JSON_FILE_MAX)) < 0)
    goto done;
  if (!json_is_object(root)) {
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: index-json: top level is not an object", name);
    goto done;
  }
  if ((rc = parse_total_size(idx, root, name)) < 0 ||
      (rc = parse_weight_map(idx, json_object_get(root, "weight_map"), name)) < 0)
    goto done;
  *out = idx;
  idx = NULL;
done:
  json_decref(root);
  zllm_index_free(idx);
  return rc;
}

const char *zllm_index_lookup(const zllm_shard_index *idx, const char *tensor)
{
  zllm_index_entry key = {(char *)tensor, NULL};
  const zllm_index_entry *e = bsearch(&key, idx->entries, idx->n, sizeof key, cmp_entry);
  return e ? e->file : NULL;
}
