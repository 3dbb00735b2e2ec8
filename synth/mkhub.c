/* zllm mkhub: a deterministic synthetic hub with ground truth.
 *
 * Every weight is a function of (seed, repo, tensor): a base's master weights
 * are drawn in F32, a fine-tune adds a perturbation to a chosen fraction of
 * its parent's master weights, and each model is then cast to its dtype with
 * round-to-nearest-even, as training code saving BF16/F16 would.  Tensors
 * are produced one name at a time for all models at once, so memory holds
 * one tensor per model, whatever the scale. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "synth/mkhub_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/path.h"

const char *const zllm_mkhub_scales[] = {"tiny", "small", "medium", "bench", "large", NULL};

/* hidden, intermediate, layers, vocab of architecture A; B is half as wide */
static const int scale_dims[][4] = {
  {32, 86, 2, 128}, {64, 172, 4, 512}, {256, 688, 4, 4096}, {1024, 2816, 8, 16000}, {2048, 5632, 16, 32000},
};

/* The hub: bases, fine-tunes (light, heavy, frozen tensors, chained), an
 * exact upcast, a byte-identical re-upload, a reshard, an unrelated family on
 * the same architecture, a second architecture and an opaque .bin repo. */
static const mk_model model_table[] = {
  {"alpha-labs/alpha-base", 0, ZLLM_DT_BF16, MK_BASE, -1, 0, 0, 0, NULL, "alpha", "base"},
  {"chatco/alpha-chat", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.5, 0.05, 0, "alpha-labs/alpha-base", "alpha",
   "finetune"},
  {"codeco/alpha-code", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.95, 0.2, 0, NULL, "alpha",
   "finetune (heavy; card omits base_model)"},
  {"frozenco/alpha-frozen", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.3, 0.05, 1, "beta-labs/beta-base", "alpha",
   "finetune (embeddings and layer 0 frozen; card names a wrong base_model)"},
  {"chatco/alpha-chat-v2", 0, ZLLM_DT_BF16, MK_FINETUNE, 1, 0.2, 0.02, 0, "chatco/alpha-chat", "alpha",
   "finetune of a finetune"},
  {"upcast/alpha-chat-f32", 0, ZLLM_DT_F32, MK_UPCAST, 1, 0, 0, 0, "chatco/alpha-chat", "alpha",
   "cast F32 (exact upcast) of true_base"},
  {"mirror/alpha-chat", 0, ZLLM_DT_BF16, MK_COPY, 1, 0, 0, 0, NULL, "alpha", "copy (whole repo byte-identical)"},
  {"shardco/alpha-chat-sharded", 0, ZLLM_DT_BF16, MK_RESHARD, 1, 0, 0, 0, "chatco/alpha-chat", "alpha",
   "reshard (tensor bytes identical)"},
  {"beta-labs/beta-base", 0, ZLLM_DT_F16, MK_BASE, -1, 0, 0, 0, NULL, "beta",
   "base (same architecture as alpha, unrelated weights)"},
  {"betafans/beta-instruct", 0, ZLLM_DT_F16, MK_FINETUNE, 8, 0.6, 0.05, 0, "beta-labs/beta-base", "beta",
   "finetune"},
  {"gamma-labs/gamma-base", 1, ZLLM_DT_F32, MK_BASE, -1, 0, 0, 0, NULL, "gamma", "base"},
  {"gammafans/gamma-tuned", 1, ZLLM_DT_F32, MK_FINETUNE, 10, 0.4, 0.001, 0, "gamma-labs/gamma-base", "gamma",
   "finetune"},
  {"legacy/opaque-model", 0, ZLLM_DT_BF16, MK_OPAQUE, -1, 0, 0, 0, NULL, "legacy", "opaque weights (.bin)"},
};

#define NMODELS (sizeof model_table / sizeof *model_table)

/* --layout family: where one family holds the bytes (a hub dominated by one
 * base and its fine-tunes), for the survey's I/O and scale-out benchmarks. */
static const mk_model family_table[] = {
  {"famlabs/fam-base", 0, ZLLM_DT_BF16, MK_BASE, -1, 0, 0, 0, NULL, "fam", "base"},
  {"tuner1/fam-chat", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.5, 0.05, 0, "famlabs/fam-base", "fam", "finetune"},
  {"tuner2/fam-code", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.95, 0.2, 0, "famlabs/fam-base", "fam", "finetune (heavy)"},
  {"tuner3/fam-math", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.3, 0.02, 0, "famlabs/fam-base", "fam", "finetune"},
  {"tuner4/fam-frozen", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.3, 0.05, 1, "famlabs/fam-base", "fam",
   "finetune (embeddings and layer 0 frozen)"},
  {"tuner5/fam-light", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.1, 0.01, 0, "famlabs/fam-base", "fam", "finetune (light)"},
  {"tuner6/fam-long", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.6, 0.05, 0, "famlabs/fam-base", "fam", "finetune"},
  {"tuner7/fam-rp", 0, ZLLM_DT_BF16, MK_FINETUNE, 0, 0.8, 0.1, 0, "famlabs/fam-base", "fam", "finetune"},
};

#define NFAMILY (sizeof family_table / sizeof *family_table)

static int add_tensor(mk_arch *a, const char *name, int ndim, uint64_t d0, uint64_t d1)
{
  if (a->n == MK_MAX_TENSORS)
    return zllm_error_set(ZLLM_ELIMIT, "mkhub: too many tensors");
  mk_tensor *t = &a->t[a->n++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = ndim;
  t->shape[0] = d0;
  t->shape[1] = d1;
  t->nelem = ndim == 1 ? d0 : d0 * d1;
  t->is_norm = strstr(name, "norm") != NULL;
  return 0;
}

static int cmp_tensor(const void *a, const void *b)
{
  return strcmp(((const mk_tensor *)a)->name, ((const mk_tensor *)b)->name);
}

/* Llama-style tensor names, sorted as safetensors' writer sorts them. */
static int build_arch(mk_arch *a, int hidden, int inter, int layers, int vocab, int tied)
{
  static const char *attn[] = {"k_proj", "o_proj", "q_proj", "v_proj"};
  static const char *mlp[] = {"down_proj", "gate_proj", "up_proj"};
  char name[MK_NAME_MAX];
  int rc = 0;
  memset(a, 0, sizeof *a);
  a->hidden = hidden;
  a->inter = inter;
  a->layers = layers;
  a->vocab = vocab;
  a->tied = tied;
  if (!tied)
    rc = add_tensor(a, "lm_head.weight", 2, (uint64_t)vocab, (uint64_t)hidden);
  rc = rc ? rc : add_tensor(a, "model.embed_tokens.weight", 2, (uint64_t)vocab, (uint64_t)hidden);
  rc = rc ? rc : add_tensor(a, "model.norm.weight", 1, (uint64_t)hidden, 0);
  for (int l = 0; rc == 0 && l < layers; l++) {
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
    rc = add_tensor(a, name, 1, (uint64_t)hidden, 0);
    snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
    rc = rc ? rc : add_tensor(a, name, 1, (uint64_t)hidden, 0);
    for (int i = 0; rc == 0 && i < 4; i++) {
      snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", l, attn[i]);
      rc = add_tensor(a, name, 2, (uint64_t)hidden, (uint64_t)hidden);
    }
    for (int i = 0; rc == 0 && i < 3; i++) {
      snprintf(name, sizeof name, "model.layers.%d.mlp.%s.weight", l, mlp[i]);
      int down = i == 0;
      rc = add_tensor(a, name, 2, (uint64_t)(down ? hidden : inter), (uint64_t)(down ? inter : hidden));
    }
  }
  qsort(a->t, a->n, sizeof *a->t, cmp_tensor);
  return rc;
}

static int scale_index(const char *scale)
{
  for (int i = 0; zllm_mkhub_scales[i]; i++)
    if (strcmp(zllm_mkhub_scales[i], scale) == 0)
      return i;
  return -1;
}

static void free_ctx(mk_ctx *c)
{
  for (size_t m = 0; m < c->nmodels; m++) {
    if (c->models[m].fd >= 0)
      close(c->models[m].fd);
    free(c->models[m].master);
    free(c->models[m].enc);
  }
  free(c->models);
  free(c->hub);
}

static int init_ctx(mk_ctx *c, const zllm_mkhub_options *o)
{
  int si = scale_index(o->scale);
  const int *d = si >= 0 ? scale_dims[si] : NULL;
  memset(c, 0, sizeof *c);
  if (!d)
    return zllm_error_set(ZLLM_EINVAL, "mkhub: unknown scale '%s' (tiny, small, medium, bench, large)", o->scale);
  int family = o->layout && strcmp(o->layout, "family") == 0;
  if (o->layout && !family && strcmp(o->layout, "mixed") != 0)
    return zllm_error_set(ZLLM_EINVAL, "mkhub: unknown layout '%s' (mixed, family)", o->layout);
  const mk_model *table = family ? family_table : model_table;
  size_t ntable = family ? NFAMILY : NMODELS;
  c->opts = *o;
  int rc = build_arch(&c->arch[0], d[0], d[1], d[2], d[3], 0);
  rc = rc ? rc : build_arch(&c->arch[1], d[0] / 2, d[1] / 2, d[2], d[3] / 2, 1);
  if (rc < 0)
    return rc;
  if (!(c->hub = zllm_path_join(o->out, "hub")) || !(c->models = calloc(ntable, sizeof *c->models)))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  c->nmodels = ntable;
  for (size_t m = 0; m < ntable; m++) {
    c->models[m].spec = &table[m];
    c->models[m].fd = -1;
  }
  return 0;
}

int zllm_mkhub(const zllm_mkhub_options *opts)
{
  mk_ctx c;
  int rc;
  if (!opts || !opts->out)
    return zllm_error_set(ZLLM_EINVAL, "mkhub: no output directory");
  if ((rc = init_ctx(&c, opts)) < 0)
    goto done;
  if ((rc = zllm_mkdir_p(c.hub, 0755)) < 0)
    goto done;
  ZLLM_INFO("mkhub: %zu repos, scale %s, seed %llu -> %s", c.nmodels, opts->scale,
            (unsigned long long)opts->seed, opts->out);
  static const struct {
    const char *name;
    int (*run)(mk_ctx *);
  } phases[] = {{"weights", mk_write_weights}, {"small files", mk_write_small_files},
                {"copies and reshards", mk_write_derived}, {"manifest", mk_write_manifest}};
  for (size_t i = 0; rc == 0 && i < sizeof phases / sizeof *phases; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = phases[i].run(&c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ZLLM_DEBUG("mkhub: %s took %.2f s", phases[i].name,
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
  }
done:
  free_ctx(&c);
  return rc;
}
