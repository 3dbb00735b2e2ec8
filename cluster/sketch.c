/* Sketches: a deterministic sample of each float tensor, taken file by file
 * and merged per model, plus the architecture signatures. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "cluster/cluster_internal.h"
#include "zllm/error.h"
#include "zllm/json.h"
#include "zllm/le.h"

#define TRAINER_STATE_MAX ((size_t)16 << 20)

void zllm_sketch_free(zllm_sketch *s)
{
  if (!s)
    return;
  free(s->repo);
  free(s->t);
  free(s->samples);
  free(s->declared_base);
  free(s->problem);
  free(s);
}

uint64_t cl_mix64(uint64_t x)
{
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

int cl_sampled_dtype(zllm_dtype d)
{
  return zllm_dtype_is_float3(d);
}

/* Position i of k in a tensor: all elements when it has at most k, else
 * positions drawn from the name's hash (the same in every model). */
static uint64_t sample_pos(uint64_t name_hash, uint64_t nelem, uint32_t k, uint32_t i)
{
  return nelem <= k ? i : cl_mix64(name_hash ^ cl_mix64(i)) % nelem;
}

static uint64_t shape_hash(const zllm_st_tensor *t)
{
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, t->name, strlen(t->name) + 1);
  XXH3_64bits_update(&st, &t->ndim, sizeof t->ndim);
  for (uint32_t d = 0; d < t->ndim; d++)
    XXH3_64bits_update(&st, &t->shape[d], sizeof t->shape[d]);
  return XXH3_64bits_digest(&st);
}

static int sample_tensor(const zllm_st_header *h, int fd, size_t i, zllm_sketch_tensor *st, uint32_t *dst)
{
  const zllm_st_tensor *t = &h->tensors[i];
  size_t es = zllm_dtype_get(t->dtype)->size;
  for (uint32_t j = 0; j < st->k; j++) {
    uint8_t b[4] = {0};
    uint64_t pos = sample_pos(st->name_hash, t->nelem, st->k, j);
    int rc = zllm_st_read_tensor(h, fd, i, pos * es, b, es);
    if (rc < 0)
      return rc;
    dst[j] = zllm_le32(b);
  }
  return 0;
}

int zllm_sketch_file(zllm_sketch **out, const zllm_st_header *h, int fd, uint32_t k)
{
  zllm_sketch *s = calloc(1, sizeof *s);
  size_t total = 0;
  int rc = s ? 0 : ZLLM_ENOMEM;
  if (rc == 0 && !(s->t = calloc(h->ntensors ? h->ntensors : 1, sizeof *s->t)))
    rc = ZLLM_ENOMEM;
  for (size_t i = 0; rc == 0 && i < h->ntensors; i++) {
    const zllm_st_tensor *t = &h->tensors[i];
    zllm_sketch_tensor *st = &s->t[i];
    st->name_hash = XXH3_64bits(t->name, strlen(t->name));
    st->shape_hash = shape_hash(t);
    st->nelem = t->nelem;
    st->dtype = t->dtype;
    st->k = cl_sampled_dtype(t->dtype) ? (uint32_t)(t->nelem < k ? t->nelem : k) : 0;
    total += st->k;
  }
  if (rc == 0 && !(s->samples = calloc(total ? total : 1, sizeof *s->samples)))
    rc = ZLLM_ENOMEM;
  for (size_t i = 0, at = 0; rc == 0 && i < h->ntensors; at += s->t[i].k, i++) {
    rc = sample_tensor(h, fd, i, &s->t[i], s->samples + at);
    s->bytes += h->tensors[i].end - h->tensors[i].begin;
  }
  if (rc == ZLLM_ENOMEM)
    zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc < 0) {
    zllm_sketch_free(s);
    return rc;
  }
  s->ntensors = h->ntensors;
  s->nsamples = total;
  s->step = -1;
  s->created = -1;
  *out = s;
  return 0;
}

/* Tensor order inside a sketch: by name hash, so shards merge in any order
 * and two models with the same names line up. */
typedef struct {
  zllm_sketch_tensor t;
  const uint32_t *samples;
} tensor_ref;

static int cmp_ref(const void *a, const void *b)
{
  const tensor_ref *x = a, *y = b;
  if (x->t.name_hash != y->t.name_hash)
    return x->t.name_hash < y->t.name_hash ? -1 : 1;
  return x->t.shape_hash < y->t.shape_hash ? -1 : x->t.shape_hash > y->t.shape_hash;
}

static void compute_signatures(zllm_sketch *s)
{
  XXH3_state_t a, b;
  XXH3_64bits_reset(&a);
  XXH3_64bits_reset(&b);
  for (size_t i = 0; i < s->ntensors; i++) {
    uint32_t dt = (uint32_t)s->t[i].dtype;
    XXH3_64bits_update(&a, &s->t[i].shape_hash, 8);
    XXH3_64bits_update(&a, &dt, 4);
    XXH3_64bits_update(&b, &s->t[i].shape_hash, 8);
  }
  s->sig = s->ntensors ? XXH3_64bits_digest(&a) : 0;
  s->sig_shape = s->ntensors ? XXH3_64bits_digest(&b) : 0;
}

static int merge_into(zllm_sketch *s, zllm_sketch **parts, size_t nparts)
{
  size_t nt = 0, ns = 0;
  for (size_t p = 0; p < nparts; p++) {
    nt += parts[p]->ntensors;
    ns += parts[p]->nsamples;
    s->bytes += parts[p]->bytes;
  }
  tensor_ref *refs = calloc(nt ? nt : 1, sizeof *refs);
  s->t = calloc(nt ? nt : 1, sizeof *s->t);
  s->samples = calloc(ns ? ns : 1, sizeof *s->samples);
  if (!refs || !s->t || !s->samples) {
    free(refs);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  size_t r = 0;
  for (size_t p = 0; p < nparts; p++)
    for (size_t i = 0, at = 0; i < parts[p]->ntensors; at += parts[p]->t[i].k, i++)
      refs[r++] = (tensor_ref){parts[p]->t[i], parts[p]->samples + at};
  qsort(refs, nt, sizeof *refs, cmp_ref);
  for (size_t i = 0, at = 0; i < nt; at += refs[i].t.k, i++) {
    s->t[i] = refs[i].t;
    memcpy(s->samples + at, refs[i].samples, refs[i].t.k * sizeof *s->samples);
  }
  s->ntensors = nt;
  s->nsamples = ns;
  free(refs);
  compute_signatures(s);
  return 0;
}

int zllm_sketch_merge(zllm_sketch **out, const char *repo, zllm_sketch **parts, size_t nparts)
{
  zllm_sketch *s = calloc(1, sizeof *s);
  int rc = s && (s->repo = strdup(repo)) ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0) {
    s->step = s->created = -1;
    rc = merge_into(s, parts, nparts);
  }
  for (size_t p = 0; p < nparts; p++)
    zllm_sketch_free(parts[p]);
  if (rc < 0) {
    zllm_sketch_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* trainer_state.json's global_step orders checkpoints of one training run. */
static int64_t training_step(zllm_source *src, const zllm_repo *repo)
{
  const zllm_hub_file *f = zllm_repo_find_file(repo, "trainer_state.json");
  char *text = NULL;
  size_t len = 0;
  json_t *root = NULL;
  int64_t step = -1;
  if (f && f->size <= TRAINER_STATE_MAX && src &&
      zllm_source_read_file(src, repo, f, TRAINER_STATE_MAX, &text, &len) == 0 &&
      zllm_json_load(&root, f->path, "json", text, len, TRAINER_STATE_MAX) == 0) {
    json_t *v = json_object_get(root, "global_step");
    if (json_is_integer(v) && json_integer_value(v) >= 0)
      step = (int64_t)json_integer_value(v);
  }
  json_decref(root);
  free(text);
  return step;
}

static int sketch_weights(zllm_sketch ***parts, size_t *nparts, zllm_source *src, const zllm_repo *repo, uint32_t k)
{
  *parts = calloc(repo->nfiles ? repo->nfiles : 1, sizeof **parts);
  *nparts = 0;
  if (!*parts)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; i < repo->nfiles; i++) {
    const zllm_hub_file *f = &repo->files[i];
    zllm_st_header *h = NULL;
    int fd = -1;
    if (f->kind != ZLLM_FILE_SAFETENSORS)
      continue;
    int rc = zllm_source_open_st(src, repo, f, &h, &fd);
    rc = rc ? rc : zllm_sketch_file(&(*parts)[*nparts], h, fd, k);
    if (fd >= 0)
      close(fd);
    zllm_st_header_free(h);
    if (rc < 0)
      return rc;
    (*nparts)++;
  }
  return 0;
}

int zllm_sketch_repo(zllm_sketch **out, zllm_source *src, const zllm_repo *repo, uint32_t k)
{
  zllm_sketch **parts = NULL;
  size_t nparts = 0;
  int rc = sketch_weights(&parts, &nparts, src, repo, k);
  char *problem = NULL;
  if (rc < 0 && zllm_error_last_code() != ZLLM_ENOMEM) {
    problem = strdup(zllm_error_last()); /* a bad shard: the model is not compared */
    for (size_t p = 0; p < nparts; p++)
      zllm_sketch_free(parts[p]);
    nparts = 0;
    rc = 0;
  } else if (rc == 0 && nparts == 0) {
    problem = strdup("no safetensors weights to compare");
  }
  rc = rc ? rc : zllm_sketch_merge(out, repo->id, parts, nparts);
  free(parts);
  if (rc == 0) {
    (*out)->problem = problem;
    (*out)->step = training_step(src, repo);
    (*out)->created = repo->created;
    if (repo->card && repo->card->nbase > 0 && !((*out)->declared_base = strdup(repo->card->base_models[0])))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  } else {
    free(problem);
  }
  return rc;
}

/* ---- binary records ----------------------------------------------------- */

int zllm_sketch_encode(zllm_buf *b, const zllm_sketch *s)
{
  int rc = zllm_buf_put_str(b, s->repo);
  rc = rc ? rc : zllm_buf_put_str(b, s->declared_base ? s->declared_base : "");
  rc = rc ? rc : zllm_buf_put_str(b, s->problem ? s->problem : "");
  rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)s->step);
  rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)s->created);
  rc = rc ? rc : zllm_buf_put_u64(b, s->bytes);
  rc = rc ? rc : zllm_buf_put_u64(b, s->ntensors);
  for (size_t i = 0; rc == 0 && i < s->ntensors; i++) {
    const zllm_sketch_tensor *t = &s->t[i];
    rc = zllm_buf_put_u64(b, t->name_hash);
    rc = rc ? rc : zllm_buf_put_u64(b, t->shape_hash);
    rc = rc ? rc : zllm_buf_put_u64(b, t->nelem);
    rc = rc ? rc : zllm_buf_put_u64(b, (uint64_t)t->dtype << 32 | t->k);
  }
  return rc ? rc : zllm_buf_append(b, s->samples, s->nsamples * sizeof *s->samples);
}

static char *empty_to_null(char *s)
{
  if (s && !*s) {
    free(s);
    return NULL;
  }
  return s;
}

static int decode_tensors(zllm_reader *r, zllm_sketch *s)
{
  uint64_t n, v;
  int rc = zllm_reader_u64(r, &n);
  if (rc == 0 && n > r->left / 32)
    return zllm_error_set(ZLLM_EFORMAT, "sketch %s: bad tensor count", s->repo);
  if (rc == 0 && !(s->t = calloc(n ? n : 1, sizeof *s->t)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (uint64_t i = 0; rc == 0 && i < n; i++) {
    zllm_sketch_tensor *t = &s->t[i];
    rc = zllm_reader_u64(r, &t->name_hash);
    rc = rc ? rc : zllm_reader_u64(r, &t->shape_hash);
    rc = rc ? rc : zllm_reader_u64(r, &t->nelem);
    rc = rc ? rc : zllm_reader_u64(r, &v);
    t->dtype = (zllm_dtype)(v >> 32);
    t->k = (uint32_t)v;
    if (rc == 0 && (v >> 32 >= ZLLM_DT_COUNT || t->k > t->nelem || (t->k && !cl_sampled_dtype(t->dtype))))
      rc = zllm_error_set(ZLLM_EFORMAT, "sketch %s: bad tensor record", s->repo);
    s->nsamples += t->k;
    s->ntensors++;
  }
  return rc;
}

int zllm_sketch_decode(zllm_reader *r, zllm_sketch **out)
{
  zllm_sketch *s = calloc(1, sizeof *s);
  uint64_t step = 0, created = 0;
  int rc = s ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_reader_str(r, &s->repo);
  rc = rc ? rc : zllm_reader_str(r, &s->declared_base);
  rc = rc ? rc : zllm_reader_str(r, &s->problem);
  rc = rc ? rc : zllm_reader_u64(r, &step);
  rc = rc ? rc : zllm_reader_u64(r, &created);
  rc = rc ? rc : zllm_reader_u64(r, &s->bytes);
  rc = rc ? rc : decode_tensors(r, s);
  if (rc == 0 && s->nsamples > r->left / sizeof *s->samples)
    rc = zllm_error_set(ZLLM_EFORMAT, "sketch %s: samples cut short", s->repo);
  if (rc == 0 && !(s->samples = malloc(s->nsamples ? s->nsamples * sizeof *s->samples : 1)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0) {
    memcpy(s->samples, r->p, s->nsamples * sizeof *s->samples);
    r->p += s->nsamples * sizeof *s->samples;
    r->left -= s->nsamples * sizeof *s->samples;
    s->step = (int64_t)step;
    s->created = (int64_t)created;
    s->declared_base = empty_to_null(s->declared_base);
    s->problem = empty_to_null(s->problem);
    compute_signatures(s);
    *out = s;
    return 0;
  }
  zllm_sketch_free(s);
  return rc;
}

int cl_sketch_hub_repo(zllm_buf *b, const zllm_hub *hub, size_t i, uint64_t *sig_shape)
{
  zllm_sketch *s = NULL;
  const zllm_repo *r = NULL;
  int rc = zllm_hub_get(hub, i, &r);
  rc = rc ? rc : zllm_sketch_repo(&s, hub->src, r, ZLLM_SKETCH_K);
  if (r) /* a get that failed holds nothing */
    zllm_hub_put(hub, i);
  *sig_shape = 0;
  if (rc < 0 && zllm_error_last_code() != ZLLM_ENOMEM) {
    zllm_sketch none = {.repo = hub->ids[i], .problem = (char *)zllm_error_last(), .step = -1, .created = -1};
    rc = zllm_sketch_encode(b, &none);
  } else if (rc == 0) {
    *sig_shape = s->sig_shape;
    rc = zllm_sketch_encode(b, s);
  }
  zllm_sketch_free(s);
  return rc;
}
