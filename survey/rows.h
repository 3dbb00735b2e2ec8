/* Private to survey/: the statistics rows of stats.h5 (docs/STATS.md), as
 * the one pass (pass.c) fills them while pack reads the hub, and as the
 * statistics phase (stats.c) fills the rest and writes them. */
#ifndef ZLLM_SURVEY_ROWS_H
#define ZLLM_SURVEY_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "zllm/buf.h"
#include "zllm/dtype.h"
#include "zllm/safetensors.h"
#include "zllm/tally.h"

#define SV_NAME_LEN 256
#define SV_EXP_BINS ZLLM_TALLY_EXP_BINS /* exponent change -8..+8, clipped */
#define SV_REL_BINS ZLLM_TALLY_REL_BINS /* floor(log2(|ft - base| / |base|)) -32..+7, clipped */
#define SV_NDT 3                        /* BF16, F16, F32 rows per model in /exponents */

typedef struct { /* one tensor row (and its /deltas row) */
  int64_t model;
  char name[SV_NAME_LEN], dtype[8], shape[64], xxh[33], method[16];
  uint64_t stored;
  uint64_t bytes, elements;
  int8_t has_base;
  double identical;
  uint64_t flips[32], exp_change[SV_EXP_BINS], rel_change[SV_REL_BINS];
  uint8_t key[16];
  uint32_t file;    /* the file's index in its repo's listing */
  size_t idx;       /* the tensor's index in its file */
} sv_trow;

typedef struct { /* one model x dtype row of /exponents */
  zllm_tally_plain plain; /* the model's elements of this dtype */
  uint64_t hist_xor[256], planes_xor[4][256], n_xor; /* the XORs with the base's */
} sv_erow;

typedef struct {
  uint64_t bytes, weight_bytes, tensors, params[ZLLM_DT_COUNT], same, compared;
  uint64_t stored;   /* the repo's bytes in OUTDIR/archive (0 without one) */
  int64_t ingested;  /* its position in the archive's ingest order, -1 without one */
  char sig[17], shape_sig[17]; /* XXH3-64 hex of the sorted (name, shape[, dtype]) list */
} sv_mrow;

/* What the one pass saw of one repo.  `complete` when every file of the
 * repo was read whole (otherwise the statistics phase reads the repo). */
typedef struct {
  int complete;
  size_t files_done;
  sv_trow *rows; /* tensors in file order, files in hub order */
  size_t nrows, cap;
  sv_erow exps[SV_NDT];
  sv_mrow model; /* tensors, params, same, compared, signatures */
  uint64_t *sig_full, *sig_shape; /* per tensor, for the signatures */
} sv_repo_pass;

/* Mostly-zero records (tallies, rows) for the spills: a bitmap of the
 * nonzero 64-bit words of `bytes` (a multiple of 8), then those words.  A
 * tiny model's 61 KB of tallies take ~1 KB; a dense record 1.6% more. */
int sv_sparse_put(zllm_buf *b, const void *data, size_t bytes);
/* Reads one back into `data` (`bytes` long), checking its length. */
int sv_sparse_get(zllm_reader *r, void *data, size_t bytes);

/* The /exponents dtypes, in row order. */
extern const zllm_dtype sv_exp_dtypes[SV_NDT];

/* The /exponents row of a dtype (SV_NDT of them per model), or -1. */
int sv_exp_slot(zllm_dtype d);

/* A tensor row's description (name, dtype, shape, bytes). */
void sv_describe_tensor(sv_trow *r, const zllm_st_tensor *t, int64_t model);

/* A tensor's delta tallies into its row and its model's dtype row. */
void sv_settle_delta(sv_trow *r, sv_erow *e, const zllm_tally_delta *d, size_t es);

/* The two signature hashes of a tensor: (name, shape, dtype), (name, shape). */
void sv_tensor_sig(const zllm_st_tensor *t, uint64_t *full, uint64_t *shape);
/* A model's signatures from its tensors' (sorted here). */
void sv_finish_sig(sv_mrow *m, uint64_t *full, uint64_t *shape, size_t n);

#endif
