#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/safetensors.h"

#define ST_ERR(h, rule, ...) st_error((h)->file, rule, __VA_ARGS__)

static int st_error(const char *file, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int st_error(const char *file, const char *rule, const char *fmt, ...)
{
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  int code = strcmp(rule, "header-length") == 0 ? ZLLM_ELIMIT : ZLLM_EFORMAT;
  return zllm_error_set(code, "%s: safetensors: %s: %s", file, rule, detail);
}

void zllm_st_header_free(zllm_st_header *h)
{
  if (!h)
    return;
  for (size_t i = 0; i < h->ntensors; i++) {
    free(h->tensors[i].name);
    free(h->tensors[i].shape);
  }
  free(h->tensors);
  zllm_strv_free(h->meta_keys, h->nmeta);
  zllm_strv_free(h->meta_vals, h->nmeta);
  free(h->raw);
  free(h->by_name);
  free(h->file);
  free(h);
}

static int get_u64(uint64_t *out, const json_t *v)
{
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return -1;
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

static int parse_shape(zllm_st_header *h, zllm_st_tensor *t, const json_t *shape)
{
  if (!json_is_array(shape) || json_array_size(shape) > ZLLM_ST_MAX_DIMS)
    return ST_ERR(h, "shape", "tensor '%s': shape must be a list of at most %d integers", t->name,
                  ZLLM_ST_MAX_DIMS);
  t->ndim = (uint32_t)json_array_size(shape);
  t->nelem = 1;
  if (t->ndim && !(t->shape = calloc(t->ndim, sizeof *t->shape)))
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", h->file);
  /* shape products are checked even past a zero dimension: a hostile header
   * must not hide an overflowing shape behind a 0 */
  uint64_t nonzero_product = 1;
  for (uint32_t d = 0; d < t->ndim; d++) {
    if (get_u64(&t->shape[d], json_array_get(shape, d)) < 0)
      return ST_ERR(h, "shape", "tensor '%s': dimension %u is not a non-negative integer", t->name, d);
    uint64_t dim = t->shape[d] ? t->shape[d] : 1;
    if (__builtin_mul_overflow(nonzero_product, dim, &nonzero_product))
      return ST_ERR(h, "shape-size", "tensor '%s': shape product overflows 64 bits", t->name);
    t->nelem *= t->shape[d];
  }
  return 0;
}

static int parse_offsets(zllm_st_header *h, zllm_st_tensor *t, const json_t *offs)
{
  if (!json_is_array(offs) || json_array_size(offs) != 2 ||
      get_u64(&t->begin, json_array_get(offs, 0)) < 0 || get_u64(&t->end, json_array_get(offs, 1)) < 0)
    return ST_ERR(h, "data-offsets", "tensor '%s': data_offsets must be [begin, end] with non-negative integers",
                  t->name);
  if (t->begin > t->end)
    return ST_ERR(h, "data-offsets", "tensor '%s': begin %llu is after end %llu", t->name,
                  (unsigned long long)t->begin, (unsigned long long)t->end);
  return 0;
}

static int parse_tensor(zllm_st_header *h, zllm_st_tensor *t, const char *name, const json_t *v)
{
  int rc;
  if (!(t->name = strdup(name)))
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", h->file);
  if (name[0] == '\0')
    return ST_ERR(h, "tensor-name", "a tensor has an empty name");
  if (!json_is_object(v))
    return ST_ERR(h, "tensor-entry", "tensor '%s': entry is not an object", name);
  const json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
               *offs = json_object_get(v, "data_offsets");
  if (!dt || !shape || !offs || json_object_size(v) != 3)
    return ST_ERR(h, "tensor-entry", "tensor '%s': entry must have exactly dtype, shape, data_offsets",
                  name);
  if (!json_is_string(dt) || zllm_dtype_from_name(&t->dtype, json_string_value(dt)) < 0)
    return ST_ERR(h, "dtype", "tensor '%s': unknown dtype '%s'", name,
                  json_is_string(dt) ? json_string_value(dt) : "(not a string)");
  if ((rc = parse_shape(h, t, shape)) < 0 || (rc = parse_offsets(h, t, offs)) < 0)
    return rc;
  uint64_t bytes;
  if (__builtin_mul_overflow(t->nelem, (uint64_t)zllm_dtype_get(t->dtype)->size, &bytes))
    return ST_ERR(h, "shape-size", "tensor '%s': byte size overflows 64 bits", name);
  if (bytes != t->end - t->begin)
    return ST_ERR(h, "shape-size", "tensor '%s': shape x dtype is %llu bytes but data_offsets span %llu",
                  name, (unsigned long long)bytes, (unsigned long long)(t->end - t->begin));
  return 0;
}

static int parse_metadata(zllm_st_header *h, const json_t *meta)
{
  if (!json_is_object(meta))
    return ST_ERR(h, "metadata", "__metadata__ is not an object");
  size_t n = json_object_size(meta), i = 0;
  h->meta_keys = calloc(n ? n : 1, sizeof(char *));
  h->meta_vals = calloc(n ? n : 1, sizeof(char *));
  if (!h->meta_keys || !h->meta_vals)
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", h->file);
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)meta, key, val) {
    if (!json_is_string(val))
      return ST_ERR(h, "metadata", "__metadata__ value of '%s' is not a string", key);
    h->meta_keys[i] = strdup(key);
    h->meta_vals[i] = zllm_json_strdup(val);
    h->nmeta = ++i;
    if (!h->meta_keys[i - 1] || !h->meta_vals[i - 1])
      return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", h->file);
  }
  return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
  const zllm_st_tensor *x = a, *y = b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int check_layout(zllm_st_header *h)
{
  uint64_t expect = 0;
  qsort(h->tensors, h->ntensors, sizeof *h->tensors, cmp_by_offset);
  for (size_t i = 0; i < h->ntensors; i++) {
    const zllm_st_tensor *t = &h->tensors[i];
    if (t->end > h->data_len)
      return ST_ERR(h, "offsets-bounds", "tensor '%s': ends at %llu, past the %llu data bytes", t->name,
                    (unsigned long long)t->end, (unsigned long long)h->data_len);
    if (t->begin < expect)
      return ST_ERR(h, "offsets-overlap", "tensor '%s': starts at %llu, inside the previous tensor (ends %llu)",
                    t->name, (unsigned long long)t->begin, (unsigned long long)expect);
    if (t->begin > expect)
      return ST_ERR(h, "offsets-gap", "tensor '%s': starts at %llu, leaving a gap after %llu", t->name,
                    (unsigned long long)t->begin, (unsigned long long)expect);
    expect = t->end;
  }
  if (expect != h->data_len)
    return ST_ERR(h, "offsets-coverage", "tensors cover %llu of %llu data bytes",
                  (unsigned long long)expect, (unsigned long long)h->data_len);
  return 0;
}

typedef struct {
  const char *name;
  size_t idx;
} name_ref;

static int cmp_name_ref(const void *a, const void *b)
{
  return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

static int build_name_index(zllm_st_header *h)
{
  size_t n = h->ntensors ? h->ntensors : 1;
  name_ref *refs = calloc(n, sizeof *refs);
  h->by_name = calloc(n, sizeof *h->by_name);
  if (!refs || !h->by_name) {
    free(refs);
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", h->file);
  }
  for (size_t i = 0; i < h->ntensors; i++)
    refs[i] = (name_ref){h->tensors[i].name, i};
  qsort(refs, h->ntensors, sizeof *refs, cmp_name_ref);
  for (size_t i = 0; i < h->ntensors; i++)
    h->by_name[i] = refs[i].idx;
  free(refs);
  return 0;
}

static int parse_entries(zllm_st_header *h, json_t *root)
{
  int rc;
  const json_t *meta = json_object_get(root, "__metadata__");
  if (meta && (rc = parse_metadata(h, meta)) < 0)
    return rc;
  size_t n = json_object_size(root) - (meta ? 1 : 0);
  if (!(h->tensors = calloc(n ? n : 1, sizeof *h->tensors)))
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", h->file);
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "__metadata__") == 0)
      continue;
    h->ntensors++;
    if ((rc = parse_tensor(h, &h->tensors[h->ntensors - 1], key, val)) < 0)
      return rc;
  }
  return 0;
}

static int parse_json(zllm_st_header *h, const uint8_t *json, size_t len)
{
  json_error_t jerr;
  json_t *root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
  int rc;
  if (!root) {
    if (strstr(jerr.text, "duplicate object key"))
      return ST_ERR(h, "duplicate-name", "%s", jerr.text);
    return ST_ERR(h, "header-json", "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
  }
  if (!json_is_object(root))
    rc = ST_ERR(h, "header-json", "the header is not a JSON object");
  else
    rc = parse_entries(h, root);
  json_decref(root);
  return rc;
}

static uint64_t read_le64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* Validates the 8-byte prefix; sets *n to the header length. */
static int check_prefix(const char *name, const uint8_t *prefix, size_t prefix_len, uint64_t file_size,
                        uint64_t *n)
{
  if (file_size < 8 || prefix_len < 8)
    return st_error(name, "file-size", "%llu bytes, shorter than the 8-byte header length",
                    (unsigned long long)file_size);
  *n = read_le64(prefix);
  if (*n > ZLLM_ST_HEADER_MAX)
    return st_error(name, "header-length", "declared header of %llu bytes exceeds the %llu-byte limit",
                    (unsigned long long)*n, ZLLM_ST_HEADER_MAX);
  if (*n > file_size - 8)
    return st_error(name, "header-length", "declared header of %llu bytes exceeds the file (%llu bytes)",
                    (unsigned long long)*n, (unsigned long long)file_size);
  return 0;
}

int zllm_st_parse(zllm_st_header **out, const char *name, const uint8_t *prefix, size_t prefix_len,
                  uint64_t file_size)
{
  zllm_st_header *h = NULL;
  uint64_t n = 0;
  int rc;
  *out = NULL;
  if ((rc = check_prefix(name, prefix, prefix_len, file_size, &n)) < 0)
    return rc;
  if (prefix_len < 8 + n)
    return st_error(name, "header-length", "only %zu of the %llu header bytes are available", prefix_len,
                    (unsigned long long)(8 + n));
  if (!(h = calloc(1, sizeof *h)) || !(h->file = strdup(name)) || !(h->raw = malloc(8 + n))) {
    rc = zllm_error_set(ZLLM_ENOMEM, "%s: out of memory", name);
    goto done;
  }
  memcpy(h->raw, prefix, 8 + n);
  h->file_size = file_size;
  h->header_len = n;
  h->data_start = 8 + n;
  h->data_len = file_size - 8 - n;
  if (n == 0 || prefix[8] != '{') {
    rc = ST_ERR(h, "header-start", "the header does not begin with '{'");
    goto done;
  }
  if ((rc = parse_json(h, prefix + 8, n)) < 0 || (rc = check_layout(h)) < 0 ||
      (rc = build_name_index(h)) < 0)
    goto done;
  *out = h;
  h = NULL;
done:
  zllm_st_header_free(h);
  return rc;
}

int zllm_st_read_header_with(zllm_st_header **out, const char *name, uint64_t size, zllm_st_read_fn read,
                             void *ctx)
{
  uint8_t len8[8], *buf = NULL;
  uint64_t n = 0;
  int rc;
  *out = NULL;
  size_t have = size < 8 ? (size_t)size : 8;
  if ((rc = read(ctx, 0, len8, have)) < 0 || (rc = check_prefix(name, len8, have, size, &n)) < 0)
    return rc;
  if (!(buf = malloc(8 + n)))
    return zllm_error_set(ZLLM_ENOMEM, "%s: out of memory for a %llu-byte header", name,
                          (unsigned long long)n);
  memcpy(buf, len8, 8);
  if ((rc = read(ctx, 8, buf + 8, n)) == 0)
    rc = zllm_st_parse(out, name, buf, 8 + n, size);
  free(buf);
  return rc;
}

typedef struct {
  int fd;
  const char *name;
} fd_source;

static int read_fd(void *ctx, uint64_t off, void *dst, size_t n)
{
  const fd_source *src = ctx;
  return zllm_pread_full(src->fd, dst, n, off, src->name);
}

int zllm_st_read_header(zllm_st_header **out, int fd, const char *name)
{
  struct stat st;
  *out = NULL;
  if (fstat(fd, &st) < 0)
    return zllm_error_set_errno("%s: cannot stat", name);
  if (!S_ISREG(st.st_mode))
    return st_error(name, "file-size", "not a regular file");
  fd_source src = {fd, name};
  return zllm_st_read_header_with(out, name, (uint64_t)st.st_size, read_fd, &src);
}

int zllm_st_open(zllm_st_header **out, int *fd_out, const char *path)
{
  int fd = -1, rc = zllm_open_regular(AT_FDCWD, path, O_RDONLY, path, &fd);
  if (rc < 0)
    return rc;
  rc = zllm_st_read_header(out, fd, path);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

int zllm_st_read_tensor(const zllm_st_header *h, int fd, size_t i, uint64_t off, void *buf, size_t len)
{
  if (i >= h->ntensors)
    return zllm_error_set(ZLLM_EINVAL, "%s: no tensor #%zu", h->file, i);
  const zllm_st_tensor *t = &h->tensors[i];
  if (off > t->end - t->begin || len > t->end - t->begin - off)
    return zllm_error_set(ZLLM_EINVAL, "%s: read past the end of tensor '%s'", h->file, t->name);
  return zllm_pread_full(fd, buf, len, h->data_start + t->begin + off, h->file);
}

long zllm_st_find(const zllm_st_header *h, const char *name)
{
  size_t lo = 0, hi = h->ntensors;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(h->tensors[h->by_name[mid]].name, name);
    if (c == 0)
      return (long)h->by_name[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

void zllm_st_shape_str(char *buf, size_t cap, const zllm_st_tensor *t)
{
  size_t o = 0;
  o += (size_t)snprintf(buf, cap, "[");
  for (uint32_t d = 0; d < t->ndim && o < cap; d++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
  if (o < cap)
    snprintf(buf + o, cap - o, "]");
  if (o >= cap && cap > 4)
    memcpy(buf + cap - 4, "...", 4);
}
