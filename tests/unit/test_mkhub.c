/* synth/: mkhub's determinism and its ground truth, checked from the files. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/safetensors.h"
#include "zllm/synth.h"

static char dir_a[64], dir_b[64], dir_c[64];

static void gen(const char *dir, uint64_t seed)
{
  zllm_mkhub_options o = ZLLM_MKHUB_OPTIONS_INIT;
  o.seed = seed;
  o.scale = "tiny";
  o.out = dir;
  if (zllm_mkhub(&o) < 0)
    fail_msg("mkhub: %s", zllm_error_last());
}

static int setup(void **state)
{
  (void)state;
  snprintf(dir_a, sizeof dir_a, "/tmp/zllm-test-mk-XXXXXX");
  snprintf(dir_b, sizeof dir_b, "/tmp/zllm-test-mk-XXXXXX");
  snprintf(dir_c, sizeof dir_c, "/tmp/zllm-test-mk-XXXXXX");
  if (!mkdtemp(dir_a) || !mkdtemp(dir_b) || !mkdtemp(dir_c))
    return -1;
  gen(dir_a, 11);
  gen(dir_b, 11);
  gen(dir_c, 12);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  zllm_rm_rf(dir_a);
  zllm_rm_rf(dir_b);
  zllm_rm_rf(dir_c);
  return 0;
}

static char *slurp(const char *dir, const char *rel)
{
  char path[512], *data = NULL;
  size_t len;
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  if (zllm_read_small_file(&data, &len, path, (size_t)64 << 20) < 0)
    fail_msg("%s", zllm_error_last());
  return data;
}

/* The MANIFEST row of repo/file, as a malloc'd copy, or NULL. */
static char *manifest_row(const char *dir, const char *repo, const char *file)
{
  char *m = slurp(dir, "MANIFEST.tsv"), key[512], *row = NULL;
  snprintf(key, sizeof key, "\n%s\t%s\t", repo, file);
  char *p = strstr(m, key);
  if (p) {
    p++;
    row = strndup(p, strcspn(p, "\n"));
  }
  free(m);
  return row;
}

static const char *field(char *row, int k) /* 0-based; splits in place */
{
  char *p = row;
  for (int i = 0; i < k; i++)
    p = strchr(p, '\t') + 1;
  static char out[256];
  snprintf(out, sizeof out, "%.*s", (int)strcspn(p, "\t"), p);
  return out;
}

static void test_synth_mkhub__same_seed_same_bytes(void **state)
{
  (void)state;
  char *a = slurp(dir_a, "MANIFEST.tsv"), *b = slurp(dir_b, "MANIFEST.tsv"), *c = slurp(dir_c, "MANIFEST.tsv");
  assert_string_equal(a, b);
  assert_string_not_equal(a, c);
  /* every repo of the ground truth is on disk, and nothing else */
  zllm_source *src = NULL;
  char hub[128], **ids;
  size_t n;
  snprintf(hub, sizeof hub, "%s/hub", dir_a);
  assert_int_equal(zllm_source_open_local(&src, hub), 0);
  assert_int_equal(zllm_source_list_repos(src, &ids, &n), 0);
  assert_int_equal(n, 13);
  for (size_t i = 0; i < n; i++) {
    char key[256];
    snprintf(key, sizeof key, "\n%s\t", ids[i]);
    assert_non_null(strstr(a, key));
    free(ids[i]);
  }
  free(ids);
  zllm_source_free(src);
  free(a);
  free(b);
  free(c);
}

typedef struct {
  zllm_st_header *h;
  int fd;
} stfile;

static stfile open_st(const char *repo, const char *file)
{
  char path[512];
  stfile s = {NULL, -1};
  snprintf(path, sizeof path, "%s/hub/%s/%s", dir_a, repo, file);
  if (zllm_st_open(&s.h, &s.fd, path) < 0)
    fail_msg("%s", zllm_error_last());
  return s;
}

static void close_st(stfile *s)
{
  close(s->fd);
  zllm_st_header_free(s->h);
}

static uint8_t *tensor_bytes(const stfile *s, const char *name, uint64_t *len)
{
  long i = zllm_st_find(s->h, name);
  assert_true(i >= 0);
  *len = s->h->tensors[i].end - s->h->tensors[i].begin;
  uint8_t *b = malloc(*len ? *len : 1);
  assert_int_equal(zllm_st_read_tensor(s->h, s->fd, (size_t)i, 0, b, *len), 0);
  return b;
}

/* Identical-element fraction of two same-dtype models, from the files. */
static double identical_fraction(const char *a, const char *b)
{
  stfile x = open_st(a, "model.safetensors"), y = open_st(b, "model.safetensors");
  uint64_t same = 0, total = 0;
  assert_int_equal(x.h->ntensors, y.h->ntensors);
  for (size_t i = 0; i < x.h->ntensors; i++) {
    uint64_t la, lb;
    size_t es = zllm_dtype_get(x.h->tensors[i].dtype)->size;
    uint8_t *ta = tensor_bytes(&x, x.h->tensors[i].name, &la), *tb = tensor_bytes(&y, x.h->tensors[i].name, &lb);
    assert_true(la == lb);
    for (uint64_t e = 0; e < la; e += es)
      same += memcmp(ta + e, tb + e, es) == 0;
    total += la / es;
    free(ta);
    free(tb);
  }
  close_st(&x);
  close_st(&y);
  return (double)same / (double)total;
}

static void test_synth_mkhub__identical_fraction_matches_manifest(void **state)
{
  (void)state;
  const char *ft[][2] = {{"chatco/alpha-chat", "alpha-labs/alpha-base"},
                         {"codeco/alpha-code", "alpha-labs/alpha-base"},
                         {"chatco/alpha-chat-v2", "chatco/alpha-chat"},
                         {"betafans/beta-instruct", "beta-labs/beta-base"},
                         {"gammafans/gamma-tuned", "gamma-labs/gamma-base"}};
  for (size_t i = 0; i < sizeof ft / sizeof *ft; i++) {
    char *row = manifest_row(dir_a, ft[i][0], "model.safetensors");
    assert_non_null(row);
    assert_string_equal(field(row, 10), ft[i][1]); /* delta_base */
    double p = atof(field(row, 11)), truth = atof(field(row, 13));
    double measured = identical_fraction(ft[i][0], ft[i][1]);
    if (measured < truth - 1e-6 || measured > truth + 1e-6)
      fail_msg("%s: measured %f, manifest %f", ft[i][0], measured, truth);
    /* unperturbed elements stay identical; a perturbed one may round back */
    if (measured < 1 - p - 0.03 || measured > 1 - p / 2)
      fail_msg("%s: identical fraction %f outside what changed=%f allows", ft[i][0], measured, p);
    free(row);
  }
  /* unrelated models of one architecture share (almost) nothing */
  stfile a = open_st("alpha-labs/alpha-base", "model.safetensors"), b = open_st("beta-labs/beta-base", "model.safetensors");
  assert_int_equal(a.h->ntensors, b.h->ntensors);
  for (size_t i = 0; i < a.h->ntensors; i++) {
    assert_string_equal(a.h->tensors[i].name, b.h->tensors[i].name);
    assert_memory_equal(a.h->tensors[i].shape, b.h->tensors[i].shape, a.h->tensors[i].ndim * sizeof(uint64_t));
  }
  assert_int_equal(a.h->tensors[0].dtype, ZLLM_DT_BF16);
  assert_int_equal(b.h->tensors[0].dtype, ZLLM_DT_F16);
  close_st(&a);
  close_st(&b);
}

static void test_synth_mkhub__copies_shards_upcast_frozen(void **state)
{
  (void)state;
  char *x = manifest_row(dir_a, "chatco/alpha-chat", "model.safetensors");
  char *y = manifest_row(dir_a, "mirror/alpha-chat", "model.safetensors");
  char sha[256];
  snprintf(sha, sizeof sha, "%s", field(x, 3));
  assert_string_equal(sha, field(y, 3)); /* same sha256 */
  free(x);
  free(y);
  /* reshard: each tensor's bytes equal the source's */
  stfile src = open_st("chatco/alpha-chat", "model.safetensors");
  stfile s1 = open_st("shardco/alpha-chat-sharded", "model-00001-of-00002.safetensors");
  stfile s2 = open_st("shardco/alpha-chat-sharded", "model-00002-of-00002.safetensors");
  assert_int_equal(s1.h->ntensors + s2.h->ntensors, src.h->ntensors);
  for (size_t i = 0; i < src.h->ntensors; i++) {
    const char *name = src.h->tensors[i].name;
    stfile *sh = zllm_st_find(s1.h, name) >= 0 ? &s1 : &s2;
    uint64_t la, lb;
    uint8_t *a = tensor_bytes(&src, name, &la), *b = tensor_bytes(sh, name, &lb);
    assert_true(la == lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
  }
  close_st(&s1);
  close_st(&s2);
  /* upcast: every F32 element is the BF16 element with 16 zero bits below */
  stfile up = open_st("upcast/alpha-chat-f32", "model.safetensors");
  for (size_t i = 0; i < src.h->ntensors; i++) {
    uint64_t la, lb;
    uint8_t *a = tensor_bytes(&src, src.h->tensors[i].name, &la), *b = tensor_bytes(&up, src.h->tensors[i].name, &lb);
    assert_true(lb == 2 * la);
    for (uint64_t e = 0; e < la / 2; e++) {
      assert_int_equal(b[4 * e] | b[4 * e + 1], 0);
      assert_int_equal(b[4 * e + 2], a[2 * e]);
      assert_int_equal(b[4 * e + 3], a[2 * e + 1]);
    }
    free(a);
    free(b);
  }
  close_st(&up);
  close_st(&src);
  /* frozen: embeddings and layer 0 equal the base; the card names a wrong base */
  stfile fr = open_st("frozenco/alpha-frozen", "model.safetensors"), base = open_st("alpha-labs/alpha-base", "model.safetensors");
  uint64_t la, lb;
  uint8_t *a = tensor_bytes(&fr, "model.embed_tokens.weight", &la), *b = tensor_bytes(&base, "model.embed_tokens.weight", &lb);
  assert_memory_equal(a, b, la);
  free(a);
  free(b);
  a = tensor_bytes(&fr, "model.layers.1.mlp.up_proj.weight", &la);
  b = tensor_bytes(&base, "model.layers.1.mlp.up_proj.weight", &lb);
  assert_memory_not_equal(a, b, la);
  free(a);
  free(b);
  close_st(&fr);
  close_st(&base);
}

static void test_synth_mkhub__cards_right_missing_wrong_and_opaque(void **state)
{
  (void)state;
  zllm_source *src = NULL;
  zllm_repo *r = NULL;
  char hub[128];
  snprintf(hub, sizeof hub, "%s/hub", dir_a);
  assert_int_equal(zllm_source_open_local(&src, hub), 0);
  assert_int_equal(zllm_repo_load(&r, src, "chatco/alpha-chat"), 0);
  assert_string_equal(r->card->base_models[0], "alpha-labs/alpha-base");
  zllm_repo_free(r);
  assert_int_equal(zllm_repo_load(&r, src, "codeco/alpha-code"), 0);
  assert_int_equal(r->card->nbase, 0);
  zllm_repo_free(r);
  assert_int_equal(zllm_repo_load(&r, src, "frozenco/alpha-frozen"), 0);
  assert_string_equal(r->card->base_models[0], "beta-labs/beta-base");
  zllm_repo_free(r);
  assert_int_equal(zllm_repo_load(&r, src, "legacy/opaque-model"), 0);
  assert_int_equal(zllm_repo_find_file(r, "pytorch_model.bin")->kind, ZLLM_FILE_OPAQUE_WEIGHT);
  zllm_repo_free(r);
  zllm_source_free(src);
}

static void test_synth_casts__round_to_nearest_even(void **state)
{
  (void)state;
  assert_int_equal(zllm_f32_to_bf16(1.0f), 0x3f80);
  assert_int_equal(zllm_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);        /* tie -> even */
  assert_int_equal(zllm_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);    /* tie -> even */
  assert_int_equal(zllm_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  assert_int_equal(zllm_f32_to_f16(1.0f), 0x3c00);
  assert_int_equal(zllm_f32_to_f16(65504.0f), 0x7bff);
  assert_int_equal(zllm_f32_to_f16(65520.0f), 0x7c00);
  assert_int_equal(zllm_f32_to_f16(0x1p-24f), 0x0001);
  assert_int_equal(zllm_f32_to_f16(0x1p-25f), 0x0000);
  assert_int_equal(zllm_f32_to_f16(3 * 0x1p-25f), 0x0002);
  assert_int_equal(zllm_f32_to_f16(-2.0f), 0xc000);
  assert_int_equal(zllm_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);        /* tie -> even */
  assert_true(zllm_f16_to_f32(0x0001) == 0x1p-24f);
  assert_true(zllm_f16_to_f32(0x7bff) == 65504.0f);
  for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half survives the round trip */
    assert_int_equal(zllm_f32_to_f16(zllm_f16_to_f32((uint16_t)h)), h);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_synth_mkhub__same_seed_same_bytes),
    cmocka_unit_test(test_synth_mkhub__identical_fraction_matches_manifest),
    cmocka_unit_test(test_synth_mkhub__copies_shards_upcast_frozen),
    cmocka_unit_test(test_synth_mkhub__cards_right_missing_wrong_and_opaque),
    cmocka_unit_test(test_synth_casts__round_to_nearest_even),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
