/* zllm/repofiles.h - parsers for the small files of a model repo:
 * the model card's YAML front matter (README.md), config.json and the shard
 * index (model.safetensors.index.json).  All input is untrusted: sizes are
 * capped, and a failure is one line "<file>: <rule>: <detail>".  Local calls.
 */
#ifndef ZLLM_REPOFILES_H
#define ZLLM_REPOFILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZLLM_CARD_MAX ((size_t)16 << 20)        /* whole README.md */
#define ZLLM_FRONT_MATTER_MAX ((size_t)1 << 20) /* its YAML block */
#define ZLLM_JSON_FILE_MAX ((size_t)64 << 20)   /* config / index JSON */

typedef struct {
  bool has_front_matter;
  char **base_models; /* base_model: a string or a list; empty when absent */
  size_t nbase;
  char *base_model_relation; /* finetune | adapter | quantized | merge, or NULL */
  char *license;
  char *library_name;
  char *pipeline_tag;
  char **tags;
  size_t ntags;
} zllm_card;

/* Rules: front-matter (a '---' line opens it and a '---' or '...' line
 * closes it; at most ZLLM_FRONT_MATTER_MAX bytes), yaml (parses),
 * card-shape (top level is a mapping; known keys appear once and hold a
 * string or a list of strings).  A README without front matter is a valid,
 * empty card. */
int zllm_card_parse(zllm_card **out, const char *name, const char *text, size_t len);
void zllm_card_free(zllm_card *c);

typedef struct {
  char **architectures;
  size_t narch;
  char *model_type;
  char *torch_dtype; /* "torch_dtype", or "dtype" in newer transformers */
} zllm_config;

int zllm_config_parse(zllm_config **out, const char *name, const char *text, size_t len);
void zllm_config_free(zllm_config *c);

typedef struct {
  char *tensor;
  char *file;
} zllm_index_entry;

typedef struct {
  zllm_index_entry *entries; /* sorted by tensor name */
  size_t n;
  char **files;              /* distinct shard files, sorted */
  size_t nfiles;
  bool has_total_size;
  uint64_t total_size;
} zllm_shard_index;

/* Rules: index-json, weight-map (an object of tensor -> file strings),
 * shard-path (each file is a safe relative path), total-size. */
int zllm_index_parse(zllm_shard_index **out, const char *name, const char *text, size_t len);
/* The shard holding `tensor`, or NULL (borrowed). */
const char *zllm_index_lookup(const zllm_shard_index *idx, const char *tensor);
void zllm_index_free(zllm_shard_index *idx);

#endif
