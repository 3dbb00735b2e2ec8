/* The tables of stats.h5 (docs/STATS.md), written collectively: every rank
 * joins every write with its own rows at their hub-order positions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "survey/stats_internal.h"
#include "zllm/analyze.h"
#include "zllm/archive.h"
#include "zllm/cluster.h"
#include "zllm/dtype.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/parallel.h"
#include "zllm/path.h"
#include "zllm/safetensors.h"
#include "zllm/tally.h"

/* ---- writing --------------------------------------------------------------- */

typedef struct {
  h5_out *o;
  hid_t s8, s16, s32, s64, s128, s256;
} writer;

static h5_range *own_ranges(const st_ctx *c, int per_repo_rows, size_t *n)
{
  h5_range *r = calloc(c->nmine + 1, sizeof *r);
  *n = 0;
  for (size_t k = 0; r && k < c->nmine; k++) {
    size_t repo = c->mine[k];
    h5_range x = per_repo_rows ? (h5_range){repo * (uint64_t)per_repo_rows, (repo + 1) * (uint64_t)per_repo_rows}
                               : (h5_range){c->first[repo], c->first[repo + 1]};
    if (x.hi > x.lo)
      r[(*n)++] = x;
  }
  return r;
}

/* Copies a field of every own row into a packed column. */
#define COLUMN(type, expr)                                                                                  \
  ({                                                                                                        \
    type *col_ = calloc(c->nrows + 1, sizeof(type));                                                        \
    for (size_t i_ = 0; col_ && i_ < c->nrows; i_++) {                                                      \
      const t_row *r = &c->rows[i_];                                                                        \
      col_[i_] = (expr);                                                                                    \
    }                                                                                                       \
    col_;                                                                                                   \
  })

static int write_strings(writer *w, const char *path, hid_t type, size_t width, uint64_t nrows, const h5_range *rg,
                         size_t nrg, const char *(*get)(const void *, size_t), const void *ctx, size_t n,
                         const char *desc)
{
  char *buf = calloc(n + 1, width);
  for (size_t i = 0; buf && i < n; i++)
    strncpy(buf + i * width, get(ctx, i), width); /* NUL-padded fixed width */
  int rc = buf ? h5_table(w->o, path, type, nrows, 0, rg, nrg, buf, desc, "text")
               : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  free(buf);
  return rc;
}

static const char *get_name(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].name; }
static const char *get_dtype(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].dtype; }
static const char *get_shape(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].shape; }
static const char *get_xxh(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].xxh; }
static const char *get_tensor_method(const void *c, size_t i) { return ((const st_ctx *)c)->rows[i].method; }

static int write_tensor_tables(st_ctx *c, writer *w)
{
  size_t nrg = 0;
  h5_range *rg = own_ranges(c, 0, &nrg);
  int64_t *model = COLUMN(int64_t, r->model), *dup_of = c->dup_of + c->row0;
  uint64_t *bytes = COLUMN(uint64_t, r->bytes), *elems = COLUMN(uint64_t, r->elements),
           *stored = COLUMN(uint64_t, r->stored);
  int8_t *has = COLUMN(int8_t, r->has_base);
  double *ident = COLUMN(double, r->identical);
  uint64_t *flips = calloc(c->nrows * 32 + 1, 8), *expc = calloc(c->nrows * EXP_BINS + 1, 8),
           *rel = calloc(c->nrows * REL_BINS + 1, 8);
  int rc = rg && model && dup_of && bytes && elems && stored && has && ident && flips && expc && rel
               ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < c->nrows; i++) {
    memcpy(flips + i * 32, c->rows[i].flips, sizeof c->rows[i].flips);
    memcpy(expc + i * EXP_BINS, c->rows[i].exp_change, sizeof c->rows[i].exp_change);
    memcpy(rel + i * REL_BINS, c->rows[i].rel_change, sizeof c->rows[i].rel_change);
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  uint64_t n = c->ntensors;
  rc = rc ? rc : h5_group(w->o, "/tensors", "one row per tensor of every safetensors file, hub order");
  rc = rc ? rc : h5_table(w->o, "/tensors/model", H5T_NATIVE_INT64, n, 0, rg, nrg, model, "row of the tensor's model in /models", "index");
  rc = rc ? rc : write_strings(w, "/tensors/name", w->s256, NAME_LEN, n, rg, nrg, get_name, c, c->nrows, "tensor name (cut at 255 bytes)");
  rc = rc ? rc : write_strings(w, "/tensors/dtype", w->s8, 8, n, rg, nrg, get_dtype, c, c->nrows, "safetensors dtype");
  rc = rc ? rc : write_strings(w, "/tensors/shape", w->s64, 64, n, rg, nrg, get_shape, c, c->nrows, "shape as [d0, d1, ...]");
  rc = rc ? rc : h5_table(w->o, "/tensors/bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, bytes, "tensor size", "bytes");
  rc = rc ? rc : write_strings(w, "/tensors/xxh3_128", w->s32, 32, n, rg, nrg, get_xxh, c, c->nrows, "XXH3-128 of the tensor bytes, hex");
  rc = rc ? rc : h5_table(w->o, "/tensors/duplicate_of", H5T_NATIVE_INT64, n, 0, rg, nrg, dup_of, "first row (hub order) with the same XXH3-128, -1 if this is the first (hash level; the archive confirms bytes)", "index");
  rc = rc ? rc : write_strings(w, "/tensors/method", w->s16, 16, n, rg, nrg, get_tensor_method, c, c->nrows, "how OUTDIR/archive stores it: dup, bitx, solo, file-dup (the whole file is a dup), opaque; - without an archive");
  rc = rc ? rc : h5_table(w->o, "/tensors/stored_bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, stored, "its bytes in the archive's packs (0 for dups and without an archive)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/tensors/has_base", H5T_NATIVE_INT8, n, 0, rg, nrg, has, "1 when the chosen base has a float tensor of this name and shape (the delta rows are filled)", "flag");
  rc = rc ? rc : h5_group(w->o, "/deltas", "per tensor (rows as /tensors) against the chosen base's tensor cast to this dtype; empty when has_base is 0");
  rc = rc ? rc : h5_table(w->o, "/deltas/identical_fraction", H5T_NATIVE_DOUBLE, n, 0, rg, nrg, ident, "fraction of elements bitwise identical to the base (delta sparsity); NaN without a base", "fraction");
  rc = rc ? rc : h5_table(w->o, "/deltas/elements", H5T_NATIVE_UINT64, n, 0, rg, nrg, elems, "elements compared with the base", "elements");
  rc = rc ? rc : h5_table(w->o, "/deltas/bit_flips", H5T_NATIVE_UINT64, n, 32, rg, nrg, flips, "XOR flips per bit position (bit 0 = least significant; 16-bit dtypes use 0..15)", "elements");
  rc = rc ? rc : h5_table(w->o, "/deltas/exponent_change", H5T_NATIVE_UINT64, n, EXP_BINS, rg, nrg, expc, "changed elements by exponent change (fine-tune minus base), bins -8..+8, ends clipped", "elements");
  rc = rc ? rc : h5_table(w->o, "/deltas/log2_relative_change", H5T_NATIVE_UINT64, n, REL_BINS, rg, nrg, rel, "changed elements by floor(log2(|ft - base| / |base|)), bins -32..+7, ends clipped (base 0 or non-finite left out)", "elements");
  free(rg); free(model); free(bytes); free(elems); free(stored); free(has); free(ident); free(flips); free(expc); free(rel);
  return rc;
}

static double entropy(const uint64_t *h, uint64_t n)
{
  double e = 0;
  for (int i = 0; i < 256 && n; i++)
    if (h[i]) {
      double p = (double)h[i] / (double)n;
      e -= p * log2(p);
    }
  return e;
}

static const char *get_repo(const void *c, size_t i)
{
  const st_ctx *x = c;
  return x->run->list.repo_ids[x->mine[i]];
}

typedef struct {
  const st_ctx *c;
  int field;
} fam_get;

static const char *fam_field(const st_ctx *c, size_t i, int field)
{
  const zllm_family_row *f = c->fam ? zllm_family_table_find(c->fam, c->run->list.repo_ids[c->mine[i]]) : NULL;
  const char *v = !f ? NULL : field == 0 ? f->family : field == 1 ? f->base : field == 2 ? f->declared_base
                                                                      : zllm_decision_name(f->decision);
  return v ? v : "-";
}
static const char *get_family(const void *c, size_t i) { return fam_field(c, i, 0); }
static const char *get_base(const void *c, size_t i) { return fam_field(c, i, 1); }
static const char *get_declared(const void *c, size_t i) { return fam_field(c, i, 2); }
static const char *get_decision(const void *c, size_t i) { return fam_field(c, i, 3); }
static const char *get_sig(const void *c, size_t i) { return ((const st_ctx *)c)->models[i].sig; }
static const char *get_shape_sig(const void *c, size_t i) { return ((const st_ctx *)c)->models[i].shape_sig; }
static const char *get_file_dup(const void *c, size_t i)
{
  const st_ctx *x = c;
  const sv_run *run = x->run;
  return run->file_dup_of && run->file_dup_of[x->mine[i]] ? run->file_dup_of[x->mine[i]] : "-";
}

static int write_model_table(st_ctx *c, writer *w)
{
  size_t nrg = 0, n = c->run->list.nrepos, m = c->nmine;
  h5_range *rg = own_ranges(c, 1, &nrg);
  uint64_t *bytes = calloc(m + 1, 8), *wbytes = calloc(m + 1, 8), *tensors = calloc(m + 1, 8),
           *params = calloc(m * ZLLM_DT_COUNT + 1, 8), *stored = calloc(m + 1, 8);
  int64_t *ingested = calloc(m + 1, 8), *created = calloc(m + 1, 8);
  double *ident = calloc(m + 1, sizeof *ident), *dist = calloc(m + 1, sizeof *dist);
  int rc = rg && bytes && wbytes && tensors && params && stored && ingested && created && ident && dist
               ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < m; k++) {
    const m_row *x = &c->models[k];
    const zllm_family_row *f = c->fam ? zllm_family_table_find(c->fam, c->run->list.repo_ids[c->mine[k]]) : NULL;
    bytes[k] = x->bytes;
    wbytes[k] = x->weight_bytes;
    tensors[k] = x->tensors;
    memcpy(params + k * ZLLM_DT_COUNT, x->params, sizeof x->params);
    ident[k] = x->compared ? (double)x->same / (double)x->compared : NAN;
    dist[k] = f && f->distance >= 0 ? f->distance : NAN;
    stored[k] = x->stored;
    ingested[k] = x->ingested;
    created[k] = f ? f->created : -1;
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : h5_group(w->o, "/models", "one row per repo of the hub, sorted by repo id");
  rc = rc ? rc : write_strings(w, "/models/repo", w->s128, ID_LEN, n, rg, nrg, get_repo, c, m, "repo id");
  rc = rc ? rc : write_strings(w, "/models/family", w->s128, ID_LEN, n, rg, nrg, get_family, c, m, "family (named after its first model), \"-\" when not sketched");
  rc = rc ? rc : write_strings(w, "/models/base", w->s128, ID_LEN, n, rg, nrg, get_base, c, m, "base chosen by bitwise similarity, \"-\" for none");
  rc = rc ? rc : write_strings(w, "/models/declared_base", w->s128, ID_LEN, n, rg, nrg, get_declared, c, m, "the model card's base_model, \"-\" for none");
  rc = rc ? rc : write_strings(w, "/models/decision", w->s16, 16, n, rg, nrg, get_decision, c, m, "how the base was chosen (docs/CLUSTER.md)");
  rc = rc ? rc : h5_table(w->o, "/models/bit_distance", H5T_NATIVE_DOUBLE, n, 0, rg, nrg, dist, "bit distance to the chosen base (BF16 view); NaN without a base", "bits per element");
  rc = rc ? rc : h5_table(w->o, "/models/bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, bytes, "all files of the repo", "bytes");
  rc = rc ? rc : h5_table(w->o, "/models/weight_bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, wbytes, "safetensors files of the repo", "bytes");
  rc = rc ? rc : h5_table(w->o, "/models/tensors", H5T_NATIVE_UINT64, n, 0, rg, nrg, tensors, "tensors in its readable safetensors files", "tensors");
  rc = rc ? rc : h5_table(w->o, "/models/parameters", H5T_NATIVE_UINT64, n, ZLLM_DT_COUNT, rg, nrg, params, "parameters per dtype; column j is dtype j of the root attribute dtype_names", "parameters");
  for (size_t k = 0; rc == 0 && k < m; k++)
    for (int d = 0; d < ZLLM_DT_COUNT; d++)
      params[k * ZLLM_DT_COUNT + (size_t)d] *= zllm_dtype_get((zllm_dtype)d)->size;
  rc = rc ? rc : h5_table(w->o, "/models/bytes_by_dtype", H5T_NATIVE_UINT64, n, ZLLM_DT_COUNT, rg, nrg, params, "tensor bytes per dtype; columns as /models/parameters", "bytes");
  rc = rc ? rc : write_strings(w, "/models/signature", w->s16, 16, n, rg, nrg, get_sig, c, m, "architecture signature: XXH3-64 of the sorted (name, shape, dtype) list, hex");
  rc = rc ? rc : write_strings(w, "/models/shape_signature", w->s16, 16, n, rg, nrg, get_shape_sig, c, m, "the same without dtypes (an F32 upload matches its BF16 relatives), hex");
  rc = rc ? rc : write_strings(w, "/models/file_duplicate_of", w->s128, ID_LEN, n, rg, nrg, get_file_dup, c, m, "the first earlier repo holding every weight file of this one byte for byte (SHA-256), \"-\" for none");
  rc = rc ? rc : h5_table(w->o, "/models/identical_fraction", H5T_NATIVE_DOUBLE, n, 0, rg, nrg, ident, "fraction of elements bitwise identical to the chosen base over its compared tensors; NaN without a base", "fraction");
  rc = rc ? rc : h5_table(w->o, "/models/stored_bytes", H5T_NATIVE_UINT64, n, 0, rg, nrg, stored, "the repo's files as OUTDIR/archive stores them (0 without an archive)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/models/ingest_order", H5T_NATIVE_INT64, n, 0, rg, nrg, ingested, "position in the order the archive ingested the repos (bases first); -1 without an archive", "index");
  rc = rc ? rc : h5_table(w->o, "/models/created_at", H5T_NATIVE_INT64, n, 0, rg, nrg, created, "createdAt recorded by a crawl (.zllm/metadata.jsonl); -1 when unknown", "seconds since 1970-01-01 UTC");
  free(rg); free(bytes); free(wbytes); free(tensors); free(params); free(stored); free(ingested); free(created);
  free(ident); free(dist);
  return rc;
}

static const char *get_exp_dtype(const void *c, size_t i)
{
  (void)c;
  return zllm_dtype_get(sv_exp_dtypes[i % NDT])->name;
}

static int write_exponent_table(st_ctx *c, writer *w)
{
  size_t nrg = 0, n = c->run->list.nrepos * NDT, m = c->nmine * NDT;
  h5_range *rg = own_ranges(c, NDT, &nrg);
  int64_t *model = calloc(m + 1, 8);
  uint64_t *cnt = calloc(m + 1, 8), *cnt_x = calloc(m + 1, 8), *h = calloc(m * 256 + 1, 8), *hx = calloc(m * 256 + 1, 8);
  double *ent = calloc(m * 4 + 1, 8), *ent_x = calloc(m * 4 + 1, 8);
  int rc = rg && model && cnt && cnt_x && h && hx && ent && ent_x ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < m; i++) {
    const e_row *e = &c->exps[i];
    model[i] = (int64_t)c->mine[i / NDT];
    cnt[i] = e->plain.n;
    cnt_x[i] = e->n_xor;
    memcpy(h + i * 256, e->plain.hist, sizeof e->plain.hist);
    memcpy(hx + i * 256, e->hist_xor, sizeof e->hist_xor);
    for (int k = 0; k < 4; k++) {
      ent[i * 4 + k] = entropy(e->plain.planes[k], e->plain.n);
      ent_x[i * 4 + k] = entropy(e->planes_xor[k], e->n_xor);
    }
  }
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : h5_group(w->o, "/exponents", "per model and float dtype (rows model*3 + {BF16, F16, F32}): exponent fields and byte streams before and after the XOR with the base");
  rc = rc ? rc : h5_table(w->o, "/exponents/model", H5T_NATIVE_INT64, n, 0, rg, nrg, model, "row in /models", "index");
  rc = rc ? rc : write_strings(w, "/exponents/dtype", w->s8, 8, n, rg, nrg, get_exp_dtype, c, m, "dtype of this row");
  rc = rc ? rc : h5_table(w->o, "/exponents/elements", H5T_NATIVE_UINT64, n, 0, rg, nrg, cnt, "elements of this dtype in the model", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/elements_xor", H5T_NATIVE_UINT64, n, 0, rg, nrg, cnt_x, "elements XORed with a base tensor", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/histogram", H5T_NATIVE_UINT64, n, 256, rg, nrg, h, "exponent field of the model's elements (F16: 5 bits, bins 0..31)", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/histogram_xor", H5T_NATIVE_UINT64, n, 256, rg, nrg, hx, "exponent field of the XOR with the base (0 = unchanged exponent and sign-free)", "elements");
  rc = rc ? rc : h5_table(w->o, "/exponents/byte_entropy", H5T_NATIVE_DOUBLE, n, 4, rg, nrg, ent, "order-0 entropy of byte k of the elements (k = 0 least significant; unused bytes 0)", "bits per byte");
  rc = rc ? rc : h5_table(w->o, "/exponents/byte_entropy_xor", H5T_NATIVE_DOUBLE, n, 4, rg, nrg, ent_x, "order-0 entropy of byte k of the XOR with the base", "bits per byte");
  free(rg); free(model); free(cnt); free(cnt_x); free(h); free(hx); free(ent); free(ent_x);
  return rc;
}

/* Tables of the whole hub, known on rank 0 (the others write no rows). */
typedef struct {
  const char *const *names;
  size_t n;
} str_list;

static const char *get_list(const void *l, size_t i)
{
  return ((const str_list *)l)->names[i];
}

static int small_table(st_ctx *c, writer *w, const char *group, const char *gdesc, const char *label_path,
                       const char *const *labels, size_t n, const char *cols[], const uint64_t *vals, size_t ncols,
                       const char *descs[], const char *units[])
{
  int root = c->run->rank == 0;
  h5_range all = {0, n};
  str_list l = {labels, n};
  int rc = h5_group(w->o, group, gdesc);
  rc = rc ? rc : write_strings(w, label_path, w->s32, 32, n, &all, root, get_list, &l, root ? n : 0, "row label");
  uint64_t *col = calloc(n + 1, 8);
  for (size_t j = 0; rc == 0 && j < ncols; j++) {
    for (size_t i = 0; col && i < n; i++)
      col[i] = vals[i * ncols + j];
    rc = col ? h5_table(w->o, cols[j], H5T_NATIVE_UINT64, n, 0, &all, root, col, descs[j], units[j])
             : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  free(col);
  return rc;
}

static int write_hub_tables(st_ctx *c, writer *w, uint64_t dup[3][2])
{
  sv_run *run = c->run;
  static const char *const stages[] = {"original", "file dedup", "tensor dedup", "BitX/solo coding"};
  uint64_t red[4] = {run->reduction[0], run->reduction[1], run->reduction[2], 0};
  if (run->packed) /* the archive's confirmed numbers (zllm ls --stages) */
    memcpy(red, run->stages, sizeof red);
  const char *rcols[] = {"/reduction/bytes"},
             *rdesc[] = {run->packed ? "bytes left after each stage in OUTDIR/archive (hits confirmed byte for byte; as zllm ls --stages)"
                                     : "bytes left after each stage, hash level (SHA-256 files, XXH3-128 tensors; no archive: --no-pack)"},
             *runits[] = {"bytes"};
  int rc = small_table(c, w, "/reduction", "storage by stage", "/reduction/stage", stages, run->packed ? 4 : 3, rcols,
                       red, 1, rdesc, runits);
  uint64_t hashl[3] = {run->reduction[0], run->reduction[1], run->reduction[2]};
  h5_range all3 = {0, 3};
  rc = rc ? rc : h5_table(w->o, "/reduction/hash_level_bytes", H5T_NATIVE_UINT64, 3, 0, &all3, run->rank == 0, hashl,
                          "the first three stages estimated from hashes alone (SHA-256 files, XXH3-128 tensors), as summary.json", "bytes");
  static const char *const scopes[] = {"model", "family", "hub"};
  uint64_t dv[6] = {dup[0][0], dup[0][1], dup[1][0], dup[1][1], dup[2][0], dup[2][1]};
  const char *dcols[] = {"/duplication/tensors", "/duplication/bytes"},
             *ddesc[] = {"tensors whose XXH3-128 appeared earlier (hub order) within the same model / family / anywhere",
                         "bytes of those tensors"},
             *dunits[] = {"tensors", "bytes"};
  rc = rc ? rc : small_table(c, w, "/duplication", "tensor-hash duplication by scope", "/duplication/scope", scopes, 3, dcols, dv, 2, ddesc, dunits);
  uint64_t files = run->list.nfiles, bytes = run->reduction[0];
  static const char *const grains[] = {"chunk (FastCDC, 64 KiB average)", "tensor", "file"};
  uint64_t ov[9] = {(bytes + 65535) / 65536, 64, (bytes + 65535) / 65536 * 64, c->ntensors, 64, c->ntensors * 64, files, 64, files * 64};
  const char *ocols[] = {"/overhead/entries", "/overhead/bytes_per_entry", "/overhead/bytes"},
             *odesc[] = {"index entries a dedup at this granularity needs (chunks: bytes / 64 KiB, an estimate)",
                         "bytes per index entry (a hash and a location, as in the ZipLLM paper)",
                         "index size"},
             *ounits[] = {"entries", "bytes", "bytes"};
  rc = rc ? rc : small_table(c, w, "/overhead", "metadata overhead per dedup granularity", "/overhead/granularity", grains, 3, ocols, ov, 3, odesc, ounits);
  return rc;
}

static const char *get_method(const void *r, size_t i)
{
  return ((const sv_run *)r)->baselines[i].method;
}

static int write_baselines(st_ctx *c, writer *w)
{
  sv_run *run = c->run;
  size_t n = run->nbaselines, mine = run->rank == 0 ? n : 0;
  h5_range all = {0, n};
  uint64_t stored[8] = {0};
  double secs[8] = {0}, rate[8] = {0}, red[8] = {0};
  for (size_t i = 0; i < mine; i++) {
    stored[i] = run->baselines[i].stored;
    secs[i] = run->baselines[i].seconds;
    rate[i] = secs[i] > 0 ? (double)run->reduction[0] / secs[i] / 1e6 : 0;
    red[i] = run->reduction[0] ? 1.0 - (double)stored[i] / (double)run->reduction[0] : 0;
  }
  int rc = h5_group(w->o, "/baselines", "the same hub through each method, in this run (--baselines); empty without it");
  rc = rc ? rc : write_strings(w, "/baselines/method", w->s32, 32, n, &all, mine > 0, get_method, run, mine, "file dedup, tensor dedup, FastCDC, zstd, zipnn, zipllm, zllm");
  rc = rc ? rc : h5_table(w->o, "/baselines/stored_bytes", H5T_NATIVE_UINT64, n, 0, &all, mine > 0, stored, "bytes each method keeps (FastCDC: unique chunk bytes, uncompressed; dedups: hash level)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/baselines/reduction", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, red, "1 - stored / original", "fraction");
  rc = rc ? rc : h5_table(w->o, "/baselines/seconds", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, secs, "time of the method over the whole hub (dedups: the scan over all ranks; the others: rank 0 alone, page cache warm)", "seconds");
  rc = rc ? rc : h5_table(w->o, "/baselines/throughput", H5T_NATIVE_DOUBLE, n, 0, &all, mine > 0, rate, "original bytes / seconds", "MB/s");
  return rc;
}

#define PAIR_ROUND zllm_bounded((size_t)1 << 16, 3) /* /pairs rows written per round */

typedef struct {
  writer *w;
  sv_pairs *pairs;
  hid_t d[4]; /* a, b, bit_distance, identical_fraction */
} pairs_out;

typedef struct {
  uint64_t row;
  size_t k;
} row_ref;

static int cmp_row_ref(const void *a, const void *b)
{
  uint64_t x = ((const row_ref *)a)->row, y = ((const row_ref *)b)->row;
  return x < y ? -1 : x > y;
}

/* One round of this rank's pairs at their rows: HDF5 fills a union of row
 * ranges in increasing rows, so the round's pairs are put in that order. */
static int pairs_round(void *ctx, const zllm_pair *p, const uint64_t *row, size_t n)
{
  pairs_out *po = ctx;
  row_ref *ord = calloc(n + 1, sizeof *ord);
  h5_range *rg = calloc(n + 1, sizeof *rg);
  char *a = calloc(n + 1, ID_LEN), *b = calloc(n + 1, ID_LEN);
  double *d = calloc(n + 1, 8), *id = calloc(n + 1, 8);
  size_t nrg = 0;
  int rc = ord && rg && a && b && d && id ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t k = 0; rc == 0 && k < n; k++)
    ord[k] = (row_ref){row[k], k};
  if (rc == 0)
    qsort(ord, n, sizeof *ord, cmp_row_ref);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const zllm_pair *q = &p[ord[i].k];
    strncpy(a + i * ID_LEN, sv_pairs_name(po->pairs, q->a), ID_LEN); /* NUL-padded fixed width */
    strncpy(b + i * ID_LEN, sv_pairs_name(po->pairs, q->b), ID_LEN);
    d[i] = q->m.n ? q->m.distance : NAN;
    id[i] = q->m.n ? q->m.identical : NAN;
    if (nrg && rg[nrg - 1].hi == ord[i].row)
      rg[nrg - 1].hi++;
    else
      rg[nrg++] = (h5_range){ord[i].row, ord[i].row + 1};
  }
  if (!zllm_mpi_alltrue(rc == 0, po->w->o->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  rc = rc ? rc : h5_table_rows(po->w->o, po->d[0], "/pairs/a", po->w->s128, 0, rg, nrg, a);
  rc = rc ? rc : h5_table_rows(po->w->o, po->d[1], "/pairs/b", po->w->s128, 0, rg, nrg, b);
  rc = rc ? rc : h5_table_rows(po->w->o, po->d[2], "/pairs/bit_distance", H5T_NATIVE_DOUBLE, 0, rg, nrg, d);
  rc = rc ? rc : h5_table_rows(po->w->o, po->d[3], "/pairs/identical_fraction", H5T_NATIVE_DOUBLE, 0, rg, nrg, id);
  free(ord);
  free(rg);
  free(a);
  free(b);
  free(d);
  free(id);
  return rc;
}

/* /pairs: every rank writes the pairs it compared, from its spill. */
static int write_pairs(st_ctx *c, writer *w)
{
  pairs_out po = {.w = w, .pairs = c->run->pairs, .d = {H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID, H5I_INVALID_HID}};
  uint64_t n = po.pairs ? sv_pairs_total(po.pairs) : 0;
  int rc = h5_group(w->o, "/pairs", "model pairs compared by the clustering (families.tsv, pairs.tsv)");
  rc = rc ? rc : h5_table_create(w->o, "/pairs/a", w->s128, n, 0, "first repo", "text", &po.d[0]);
  rc = rc ? rc : h5_table_create(w->o, "/pairs/b", w->s128, n, 0, "second repo", "text", &po.d[1]);
  rc = rc ? rc : h5_table_create(w->o, "/pairs/bit_distance", H5T_NATIVE_DOUBLE, n, 0, "mean Hamming distance per element on the BF16 view; NaN: not comparable", "bits per element", &po.d[2]);
  rc = rc ? rc : h5_table_create(w->o, "/pairs/identical_fraction", H5T_NATIVE_DOUBLE, n, 0, "fraction of sampled elements equal at the common precision", "fraction", &po.d[3]);
  if (!zllm_mpi_alltrue(rc == 0, c->run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank could not create /pairs");
  else if (po.pairs)
    rc = sv_pairs_rounds(po.pairs, PAIR_ROUND, pairs_round, &po, c->run->comm);
  for (int k = 0; k < 4; k++)
    if (po.d[k] >= 0)
      H5Dclose(po.d[k]);
  return rc;
}

static int root_attributes(st_ctx *c, writer *w)
{
  char names[ZLLM_DT_COUNT * 8] = "";
  for (int d = 0; d < ZLLM_DT_COUNT; d++) {
    strcat(names, zllm_dtype_get((zllm_dtype)d)->name);
    strcat(names, d + 1 < ZLLM_DT_COUNT ? "," : "");
  }
  hid_t root = H5Gopen2(w->o->file, "/", H5P_DEFAULT);
  int rc = root >= 0 ? 0 : zllm_error_set(ZLLM_EIO, "stats.h5: cannot open /");
  rc = rc ? rc : h5_attr_str(w->o, root, "tool", "zllm-survey " ZLLM_VERSION);
  rc = rc ? rc : h5_attr_str(w->o, root, "hub", c->run->opts.hub);
  rc = rc ? rc : h5_attr_str(w->o, root, "schema", "docs/STATS.md");
  rc = rc ? rc : h5_attr_str(w->o, root, "dtype_names", names);
  if (root >= 0)
    H5Gclose(root);
  return rc;
}

static int open_writer(writer *w, h5_out *o)
{
  w->o = o;
  w->s8 = h5_str_type(8);
  w->s16 = h5_str_type(16);
  w->s32 = h5_str_type(32);
  w->s64 = h5_str_type(64);
  w->s128 = h5_str_type(ID_LEN);
  w->s256 = h5_str_type(NAME_LEN);
  return w->s8 >= 0 && w->s16 >= 0 && w->s32 >= 0 && w->s64 >= 0 && w->s128 >= 0 && w->s256 >= 0
             ? 0 : zllm_error_set(ZLLM_EIO, "stats.h5: string types");
}

static void close_writer(writer *w)
{
  hid_t t[] = {w->s8, w->s16, w->s32, w->s64, w->s128, w->s256};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++)
    if (t[i] >= 0)
      H5Tclose(t[i]);
}


static const char *get_phase(const void *ctx, size_t i)
{
  (void)ctx;
  return sv_phase_names[i];
}

/* Each rank's seconds and bytes read per phase: a row per rank, each rank
 * writing its own (how the work spread, and where a rank waited). */
static int write_ranks(st_ctx *c, writer *w)
{
  sv_run *run = c->run;
  h5_range all = {0, SV_NPHASES}, me = {(uint64_t)run->rank, (uint64_t)run->rank + 1};
  uint64_t nranks = (uint64_t)run->size;
  int rc = h5_group(w->o, "/ranks", "each rank's time and reads per phase of this run (a row per rank)");
  rc = rc ? rc : write_strings(w, "/ranks/phase", w->s32, 32, SV_NPHASES, &all, run->rank == 0, get_phase, NULL,
                               run->rank == 0 ? SV_NPHASES : 0,
                               "the phases, in order; pass-wait: waiting for the other ranks to end the pass; merge: the catalog merge over the ranks, then, on ranks other than 0, waiting for rank 0 to copy their rows in");
  rc = rc ? rc : h5_table(w->o, "/ranks/seconds", H5T_NATIVE_DOUBLE, nranks, SV_NPHASES, &me, 1, run->rank_seconds,
                          "wall time of each phase on this rank (row: rank, column: /ranks/phase), waits included; stats: before its tables are written",
                          "seconds");
  rc = rc ? rc : h5_table(w->o, "/ranks/bytes_read", H5T_NATIVE_UINT64, nranks, SV_NPHASES, &me, 1, run->rank_bytes,
                          "bytes this rank's read system calls returned in each phase (hub, archive, catalog)", "bytes");
  rc = rc ? rc : h5_table(w->o, "/ranks/peak_rss", H5T_NATIVE_UINT64, nranks, SV_NPHASES, &me, 1, run->rank_peak_rss,
                          "this rank's peak resident memory from its start to the end of each phase (getrusage "
                          "ru_maxrss: a running maximum, so a phase that raised it is where it rises; 0: the phase did not run)",
                          "bytes");
  return rc;
}

#define ROUND_REPOS zllm_bounded(1024, 2) /* repos of a rank per round of the per-repo tables */
#define ROUND_ROWS zllm_bounded(16384, 3) /* ... and tensor rows, at most (a bigger repo makes a round alone) */

/* The end of the round of own repos that starts at k0. */
static size_t round_end(const st_ctx *c, size_t k0)
{
  size_t k = k0, rows = 0;
  while (k < c->nmine && k - k0 < ROUND_REPOS) {
    size_t n = (size_t)(c->first[c->mine[k] + 1] - c->first[c->mine[k]]);
    if (k > k0 && rows + n > ROUND_ROWS)
      break;
    rows += n;
    k++;
  }
  return k;
}

/* The per-repo tables (/models, /tensors, /deltas, /exponents) in rounds:
 * each round, every rank reads back a round of its repos' rows and writes
 * them; the first round creates the tables, every rank runs the same
 * number of rounds (with nothing left, it writes no rows). */
static int write_repo_tables(st_ctx *c, writer *w)
{
  unsigned long long mine = 0, rounds = 0;
  for (size_t k = 0; k < c->nmine; k = round_end(c, k))
    mine++;
  MPI_Allreduce(&mine, &rounds, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, c->run->comm);
  st_ctx v = *c;
  v.rows = NULL;
  v.exps = NULL;
  int rc = 0;
  size_t k0 = 0, row0 = 0;
  for (unsigned long long r = 0; r < (rounds ? rounds : 1); r++) {
    size_t k1 = round_end(c, k0);
    int lrc = st_round_load(c, k0, k1, &v.rows, &v.nrows, &v.exps);
    v.mine = c->mine + k0;
    v.nmine = k1 - k0;
    v.models = c->models + k0;
    v.row0 = row0;
    w->o->append = r > 0;
    if (!zllm_mpi_alltrue(rc == 0 && lrc == 0, c->run->comm)) {
      rc = rc ? rc : lrc ? lrc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
      break;
    }
    rc = write_model_table(&v, w);
    rc = rc ? rc : write_tensor_tables(&v, w);
    rc = rc ? rc : write_exponent_table(&v, w);
    row0 += v.nrows;
    k0 = k1;
  }
  w->o->append = 0;
  free(v.rows);
  free(v.exps);
  return rc;
}

int st_write_tables(st_ctx *c, h5_out *o)
{
  writer w = {0};
  uint64_t dup[3][2] = {{0}};
  int rc = open_writer(&w, o);
  if (rc == 0 && !(c->dup_of = calloc(c->nkeys + 1, sizeof *c->dup_of)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (zllm_mpi_alltrue(rc == 0, c->run->comm)) {
    rc = root_attributes(c, &w);
    rc = rc ? rc : st_duplicates(c, c->dup_of, dup);
    rc = rc ? rc : write_repo_tables(c, &w);
    rc = rc ? rc : write_hub_tables(c, &w, dup);
    rc = rc ? rc : write_pairs(c, &w);
    rc = rc ? rc : write_baselines(c, &w);
    rc = rc ? rc : write_ranks(c, &w);
  } else {
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank could not open the file");
  }
  close_writer(&w);
  return rc;
}
