/* Private to synth/: the generator's model table and state. */
#ifndef ZLLM_SYNTH_MKHUB_INTERNAL_H
#define ZLLM_SYNTH_MKHUB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/buf.h"
#include "zllm/dtype.h"
#include "zllm/synth.h"

#define MK_MAX_TENSORS 512
#define MK_NAME_MAX 96

typedef struct {
  char name[MK_NAME_MAX];
  int ndim;
  uint64_t shape[2];
  uint64_t nelem;
  int is_norm;
} mk_tensor;

typedef struct {
  int hidden, inter, layers, vocab, tied;
  mk_tensor t[MK_MAX_TENSORS]; /* sorted by name */
  size_t n;
} mk_arch;

typedef enum { MK_BASE, MK_FINETUNE, MK_UPCAST, MK_COPY, MK_RESHARD, MK_OPAQUE } mk_kind;

typedef struct {
  const char *repo;
  int arch;           /* index into mk_ctx.arch */
  zllm_dtype dtype;
  mk_kind kind;
  int parent;         /* index of the model it derives from, -1 for none */
  double changed;     /* fine-tunes: fraction of elements perturbed */
  double scale;       /* fine-tunes: perturbation std relative to the init std */
  int frozen;         /* fine-tunes: embeddings and layer 0 left untouched */
  const char *card_base; /* base_model written in the card, NULL for none */
  const char *family;
  const char *relation;
} mk_model;

typedef struct {
  const mk_model *spec;
  int fd;             /* model.safetensors while weights are written */
  uint64_t data_start;
  uint64_t cursor;    /* data offset of the next tensor to write */
  float *master;      /* this tensor's F32 master values */
  uint8_t *enc;       /* this tensor in the model's dtype */
  uint64_t identical; /* elements bitwise equal to the parent's (ground truth) */
  uint64_t elements;
} mk_state;

typedef struct {
  zllm_mkhub_options opts;
  char *hub;          /* <out>/hub */
  mk_arch arch[2];
  mk_state *models;
  size_t nmodels;
} mk_ctx;

/* The header as safetensors' reference writer lays it out: metadata first,
 * names sorted, data in the same order, padded with spaces to 8 bytes. */
int mk_header_json(zllm_buf *b, const mk_tensor *const *t, size_t n, zllm_dtype dt);
/* Writes the 8-byte length prefix and the header at the start of `fd`. */
int mk_write_header(int fd, const zllm_buf *hdr, const char *name);

/* Path of a file in a generated repo (malloc'd). */
char *mk_repo_path(const mk_ctx *c, const char *repo, const char *file);

int mk_write_weights(mk_ctx *c);      /* model.safetensors of bases, fine-tunes, upcasts */
int mk_write_small_files(mk_ctx *c);  /* config.json, tokenizer.json, README.md, opaque .bin */
int mk_write_derived(mk_ctx *c);      /* re-uploads and reshards, from the written files */
int mk_write_manifest(mk_ctx *c);     /* <out>/MANIFEST.tsv */

#endif
