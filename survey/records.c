/* This rank's scan records, spilled and indexed (survey/records.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "survey/records.h"
#include "zllm/error.h"
#include "zllm/io.h"

typedef struct {
  size_t file;
  uint64_t off, len;
} rec_ref;

struct sv_records {
  char *path;
  FILE *spill;
  uint64_t size; /* bytes spilled */
  rec_ref *ref;
  size_t n, cap;
  zllm_buf make, back; /* a record being made; one read back */
  int sealed;
};

int sv_records_open(sv_records **out, const char *spill)
{
  sv_records *r = calloc(1, sizeof *r);
  int rc = r && (r->path = strdup(spill)) ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && !(r->spill = fopen(spill, "w+b")))
    rc = zllm_error_set_errno("%s: cannot create the scan records' spill", spill);
  if (rc < 0) {
    sv_records_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

zllm_buf *sv_records_begin(sv_records *r)
{
  r->make.len = 0;
  return &r->make;
}

int sv_records_end(sv_records *r, size_t file)
{
  int rc = zllm_grow((void **)&r->ref, &r->cap, r->n + 1, sizeof *r->ref);
  if (rc == 0 && r->make.len && fwrite(r->make.data, 1, r->make.len, r->spill) != r->make.len)
    rc = zllm_error_set_errno("%s: cannot write the scan records' spill", r->path);
  if (rc < 0)
    return rc;
  r->ref[r->n++] = (rec_ref){file, r->size, r->make.len};
  r->size += r->make.len;
  r->make.len = 0;
  return 0;
}

static int cmp_ref(const void *a, const void *b)
{
  size_t x = ((const rec_ref *)a)->file, y = ((const rec_ref *)b)->file;
  return x < y ? -1 : x > y;
}

int sv_records_seal(sv_records *r)
{
  if (fflush(r->spill) != 0)
    return zllm_error_set_errno("%s: cannot write the scan records' spill", r->path);
  if (r->n)
    qsort(r->ref, r->n, sizeof *r->ref, cmp_ref);
  for (size_t k = 1; k < r->n; k++)
    if (r->ref[k].file == r->ref[k - 1].file)
      return zllm_error_set(ZLLM_EFORMAT, "two scan records for file %zu", r->ref[k].file);
  r->sealed = 1;
  return 0;
}

size_t sv_records_count(const sv_records *r)
{
  return r->n;
}

size_t sv_records_file(const sv_records *r, size_t k)
{
  return k < r->n ? r->ref[k].file : SIZE_MAX;
}

int sv_records_get(sv_records *r, size_t k, size_t *file, char **text, size_t *len)
{
  if (!r->sealed || k >= r->n)
    return zllm_error_set(ZLLM_ERROR, "%s: record %zu of %zu read before the index is sealed", r->path, k, r->n);
  const rec_ref *x = &r->ref[k];
  r->back.len = 0;
  int rc = zllm_buf_reserve(&r->back, (size_t)x->len + 1);
  rc = rc ? rc : zllm_pread_full(fileno(r->spill), r->back.data, (size_t)x->len, x->off, r->path);
  if (rc < 0)
    return rc;
  r->back.data[x->len] = '\0';
  r->back.len = (size_t)x->len;
  *file = x->file;
  *text = r->back.data;
  *len = r->back.len;
  return 0;
}

void sv_records_free(sv_records *r)
{
  if (!r)
    return;
  if (r->spill) {
    fclose(r->spill);
    unlink(r->path);
  }
  free(r->path);
  free(r->ref);
  zllm_buf_free(&r->make);
  zllm_buf_free(&r->back);
  free(r);
}
