/* The census in stats.h5 (zllm-survey --census): /census, one row per repo
 * of OUT/hub/census.tsv, and the Hub-scale tables the report draws (models
 * and parameters per month, dtypes, the parameter-count distribution, the
 * declared fine-tune trees).  Rank 0 reads census.tsv twice, streaming: the
 * first pass counts rows and builds the small tables, the second writes the
 * columns in rounds of ROUND rows; the other ranks join every collective
 * call with no rows.  Memory: one round of columns, the categories, and one
 * counter per declared base model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zllm/census.h"
#include "survey/stats_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

#define ROUND 65536
#define CENSUS_ID_LEN 96          /* the Hub's longest repo id */
#define CAT_LEN 64
#define MAX_CATS 4096      /* distinct values kept per column; the rest are "(other)" */
#define HIST_BINS 56       /* log10(parameters) from 0 to 14 in quarters */
#define TOP_BASES 100
#define NRELATIONS 5

enum { CAT_LIBRARY, CAT_PIPELINE, CAT_RELATION, CAT_GATED, CAT_DTYPE, NCATS };
static const char *CAT_NAMES[NCATS] = {"library", "pipeline_tag", "base_relation", "gated", "dtype"};
static const char *RELATIONS[NRELATIONS] = {"finetune", "adapter", "quantized", "merge", "other"};

typedef struct {
  char (*v)[CAT_LEN];
  size_t n;
} categories;

typedef struct {
  char month[8];
  int64_t models, declared;
  double params;
} month_row;

typedef struct {
  char id[CENSUS_ID_LEN];
  int64_t count[NRELATIONS];
  int64_t children;
} base_row;

typedef struct {
  sv_run *run;
  char *path;
  uint64_t rows, bad;
  categories cat[NCATS];
  month_row *months;
  size_t nmonths;
  char dtypes[ZLLM_CENSUS_MAX_DTYPES * 4][CAT_LEN];
  int64_t dtype_models[ZLLM_CENSUS_MAX_DTYPES * 4];
  double dtype_params[ZLLM_CENSUS_MAX_DTYPES * 4];
  size_t ndtypes;
  int64_t hist[HIST_BINS];
  base_row *bases; /* open addressing by id */
  size_t bases_cap, nbases;
  char *copy;
} census_tables;

/* ---- small helpers ------------------------------------------------------------- */

static int64_t epoch_of(const char *iso)
{
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec) < 3)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t t = timegm(&tm);
  return t == (time_t)-1 ? -1 : (int64_t)t;
}

static int16_t cat_code(categories *c, const char *v, int add)
{
  if (!*v)
    return -1;
  for (size_t i = 0; i < c->n; i++)
    if (strncmp(c->v[i], v, CAT_LEN - 1) == 0)
      return (int16_t)i;
  if (!add || c->n == MAX_CATS)
    return (int16_t)(MAX_CATS); /* "(other)": past the categories kept */
  if (c->n % 64 == 0) {
    void *p = realloc(c->v, (c->n + 64) * sizeof *c->v);
    if (!p)
      return (int16_t)MAX_CATS;
    c->v = p;
  }
  memset(c->v[c->n], 0, CAT_LEN); /* NUL-padded in the file: no stray bytes after the value */
  snprintf(c->v[c->n], CAT_LEN, "%s", v);
  return (int16_t)c->n++;
}

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static base_row *base_slot(census_tables *t, const char *id)
{
  if (2 * (t->nbases + 1) > t->bases_cap) {
    size_t cap = t->bases_cap ? 2 * t->bases_cap : 1024;
    base_row *v = calloc(cap, sizeof *v);
    if (!v)
      return NULL;
    for (size_t i = 0; i < t->bases_cap; i++)
      if (t->bases[i].id[0])
        for (size_t j = hash_str(t->bases[i].id) % cap;; j = (j + 1) % cap)
          if (!v[j].id[0]) {
            v[j] = t->bases[i];
            break;
          }
    free(t->bases);
    t->bases = v;
    t->bases_cap = cap;
  }
  size_t j = hash_str(id) % t->bases_cap;
  for (; t->bases[j].id[0]; j = (j + 1) % t->bases_cap)
    if (strcmp(t->bases[j].id, id) == 0)
      return &t->bases[j];
  snprintf(t->bases[j].id, CENSUS_ID_LEN, "%s", id);
  t->nbases++;
  return &t->bases[j];
}

static month_row *month_of(census_tables *t, const char *created)
{
  char m[8];
  if (strlen(created) < 7)
    return NULL;
  memcpy(m, created, 7);
  m[7] = '\0';
  for (size_t i = t->nmonths; i-- > 0;) /* the listing ascends by createdAt: the last month first */
    if (strcmp(t->months[i].month, m) == 0)
      return &t->months[i];
  month_row *v = realloc(t->months, (t->nmonths + 1) * sizeof *v);
  if (!v)
    return NULL;
  t->months = v;
  memset(&v[t->nmonths], 0, sizeof *v);
  memcpy(v[t->nmonths].month, m, 8);
  return &v[t->nmonths++];
}

/* ---- pass 1: the small tables ------------------------------------------------------ */

static void count_dtypes(census_tables *t, char *list)
{
  char *save = NULL;
  for (char *e = strtok_r(list, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
    char *eq = strchr(e, '=');
    if (!eq)
      continue;
    *eq = '\0';
    size_t i = 0;
    while (i < t->ndtypes && strcmp(t->dtypes[i], e) != 0)
      i++;
    if (i == t->ndtypes) {
      if (t->ndtypes == sizeof t->dtypes / sizeof *t->dtypes)
        continue;
      snprintf(t->dtypes[t->ndtypes++], CAT_LEN, "%s", e);
    }
    t->dtype_models[i]++;
    t->dtype_params[i] += strtod(eq + 1, NULL);
  }
}

static void count_bases(census_tables *t, const char *relation, char *bases)
{
  int rel = NRELATIONS - 1;
  for (int r = 0; r < NRELATIONS - 1; r++)
    if (strcmp(relation, RELATIONS[r]) == 0)
      rel = r;
  char *save = NULL;
  for (char *id = strtok_r(bases, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
    base_row *b = base_slot(t, id);
    if (b) {
      b->count[rel]++;
      b->children++;
    }
  }
}

/* The main dtype of a row: the one with the most parameters ("" when none). */
static void main_dtype(const char *list, char out[CAT_LEN])
{
  double best = -1;
  out[0] = '\0';
  for (const char *p = list; *p;) {
    const char *eq = strchr(p, '='), *end = strchr(p, ';');
    if (!eq || (end && eq > end))
      break;
    double v = strtod(eq + 1, NULL);
    if (v > best && (size_t)(eq - p) < CAT_LEN) {
      best = v;
      memcpy(out, p, (size_t)(eq - p));
      out[eq - p] = '\0';
    }
    p = end ? end + 1 : p + strlen(p);
  }
}

static int take_row_tables(void *ctx, const char *line, size_t len, size_t lineno)
{
  census_tables *t = ctx;
  zllm_census_cols c;
  int got = zllm_census_take(line, len, lineno, t->path, t->copy, &c, &t->bad);
  if (got <= 0)
    return got;
  t->rows++;
  char dt[CAT_LEN];
  main_dtype(c.col[ZLLM_CC_DTYPES], dt);
  cat_code(&t->cat[CAT_LIBRARY], c.col[ZLLM_CC_LIBRARY], 1);
  cat_code(&t->cat[CAT_PIPELINE], c.col[ZLLM_CC_PIPELINE], 1);
  cat_code(&t->cat[CAT_RELATION], c.col[ZLLM_CC_RELATION], 1);
  cat_code(&t->cat[CAT_GATED], c.col[ZLLM_CC_GATED], 1);
  cat_code(&t->cat[CAT_DTYPE], dt, 1);
  double params = *c.col[ZLLM_CC_PARAMS] ? strtod(c.col[ZLLM_CC_PARAMS], NULL) : -1;
  month_row *m = month_of(t, c.col[ZLLM_CC_CREATED]);
  if (m) {
    m->models++;
    m->params += params > 0 ? params : 0;
    m->declared += *c.col[ZLLM_CC_BASES] != '\0';
  }
  if (params > 0) {
    int bin = (int)floor(log10(params) * 4);
    t->hist[bin < 0 ? 0 : bin >= HIST_BINS ? HIST_BINS - 1 : bin]++;
  }
  count_dtypes(t, c.col[ZLLM_CC_DTYPES]);
  count_bases(t, c.col[ZLLM_CC_RELATION], c.col[ZLLM_CC_BASES]);
  return 0;
}

/* ---- pass 2: the columns, a round at a time ------------------------------------------- */

typedef struct {
  census_tables *t;
  h5_out *o;
  hid_t d[16];
  hid_t id_type;
  char (*id)[CENSUS_ID_LEN], (*base)[CENSUS_ID_LEN];
  int64_t *created, *modified, *params, *downloads, *likes;
  int32_t *files;
  int16_t *code[NCATS], *nbases;
  size_t n;      /* rows of the round so far */
  uint64_t done; /* rows written */
  uint64_t rounds, limit; /* rounds written; rows the first pass counted (never more: the rounds are agreed) */
} census_writer;

enum { D_ID, D_CREATED, D_MODIFIED, D_LIBRARY, D_PIPELINE, D_RELATION, D_GATED, D_DTYPE, D_BASE, D_NBASES, D_PARAMS,
       D_FILES, D_DOWNLOADS, D_LIKES, ND };

static int64_t count_or(const char *s)
{
  return *s ? strtoll(s, NULL, 10) : -1;
}

/* The round's rows into the datasets (collective: every rank, rows or none). */
static int write_round(census_writer *w, uint64_t rows_here)
{
  h5_range r = {w->done, w->done + rows_here};
  size_t nr = rows_here ? 1 : 0;
  hid_t i64 = H5T_NATIVE_INT64, i16 = H5T_NATIVE_INT16;
  int rc = h5_table_rows(w->o, w->d[D_ID], "/census/id", w->id_type, 0, &r, nr, w->id);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_CREATED], "/census/created_at", i64, 0, &r, nr, w->created);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_MODIFIED], "/census/last_modified", i64, 0, &r, nr, w->modified);
  for (int k = 0; rc == 0 && k < NCATS; k++)
    rc = h5_table_rows(w->o, w->d[D_LIBRARY + k], CAT_NAMES[k], i16, 0, &r, nr, w->code[k]);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_BASE], "/census/base_model", w->id_type, 0, &r, nr, w->base);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_NBASES], "/census/base_models", i16, 0, &r, nr, w->nbases);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_PARAMS], "/census/params_total", i64, 0, &r, nr, w->params);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_FILES], "/census/files", H5T_NATIVE_INT32, 0, &r, nr, w->files);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_DOWNLOADS], "/census/downloads", i64, 0, &r, nr, w->downloads);
  rc = rc ? rc : h5_table_rows(w->o, w->d[D_LIKES], "/census/likes", i64, 0, &r, nr, w->likes);
  w->done += rows_here;
  w->n = 0;
  w->rounds++;
  return rc;
}

static int take_row_columns(void *ctx, const char *line, size_t len, size_t lineno)
{
  census_writer *w = ctx;
  census_tables *t = w->t;
  zllm_census_cols c;
  /* the tables' pass has read this file and counted its bad rows */
  if (w->done + w->n >= w->limit || zllm_census_take(line, len, lineno, t->path, t->copy, &c, NULL) <= 0)
    return 0;
  size_t i = w->n++;
  strncpy(w->id[i], c.col[ZLLM_CC_ID], CENSUS_ID_LEN - 1); /* NUL-padded: no bytes of an earlier round's row */
  w->id[i][CENSUS_ID_LEN - 1] = '\0';
  w->created[i] = *c.col[ZLLM_CC_CREATED] ? epoch_of(c.col[ZLLM_CC_CREATED]) : -1;
  w->modified[i] = *c.col[ZLLM_CC_MODIFIED] ? epoch_of(c.col[ZLLM_CC_MODIFIED]) : -1;
  char dt[CAT_LEN];
  main_dtype(c.col[ZLLM_CC_DTYPES], dt);
  const char *cats[NCATS] = {c.col[ZLLM_CC_LIBRARY], c.col[ZLLM_CC_PIPELINE], c.col[ZLLM_CC_RELATION], c.col[ZLLM_CC_GATED], dt};
  for (int k = 0; k < NCATS; k++)
    w->code[k][i] = cat_code(&t->cat[k], cats[k], 0);
  size_t nb = *c.col[ZLLM_CC_BASES] ? 1 : 0;
  for (const char *p = c.col[ZLLM_CC_BASES]; *p; p++)
    nb += *p == ',';
  memset(w->base[i], 0, CENSUS_ID_LEN);
  snprintf(w->base[i], CENSUS_ID_LEN, "%.*s", (int)strcspn(c.col[ZLLM_CC_BASES], ","), c.col[ZLLM_CC_BASES]);
  w->nbases[i] = (int16_t)nb;
  w->params[i] = count_or(c.col[ZLLM_CC_PARAMS]);
  w->files[i] = (int32_t)count_or(c.col[ZLLM_CC_FILES]);
  w->downloads[i] = count_or(c.col[ZLLM_CC_DOWNLOADS]);
  w->likes[i] = count_or(c.col[ZLLM_CC_LIKES]);
  return w->n == ROUND ? write_round(w, ROUND) : 0;
}

/* ---- the datasets ------------------------------------------------------------------------- */

typedef struct {
  uint64_t rows, bad;
  uint64_t ncat[NCATS];
  uint64_t nmonths, ndtypes, nbases, ntop;
} census_sizes;

static int cmp_base(const void *a, const void *b)
{
  const base_row *x = a, *y = b;
  if (x->children != y->children)
    return x->children > y->children ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* The declared bases with the most children, first (rank 0). */
static size_t top_bases(census_tables *t)
{
  size_t n = 0;
  for (size_t i = 0; i < t->bases_cap; i++)
    if (t->bases[i].id[0])
      t->bases[n++] = t->bases[i];
  qsort(t->bases, n, sizeof *t->bases, cmp_base);
  return n < TOP_BASES ? n : TOP_BASES;
}

/* A small table written by rank 0 (the others join with no rows). */
static int small(h5_out *o, int rank, const char *path, hid_t type, uint64_t n, const void *data, const char *desc,
                 const char *units)
{
  h5_range r = {0, n};
  return h5_table(o, path, type, n, 0, &r, rank == 0 && n ? 1 : 0, rank == 0 ? data : NULL, desc, units);
}

static int write_small_tables(census_tables *t, h5_out *o, int rank, const census_sizes *z, hid_t id_type)
{
  hid_t cat_type = h5_str_type(CAT_LEN), month_type = h5_str_type(8);
  int rc = cat_type >= 0 && month_type >= 0 ? 0 : zllm_error_set(ZLLM_ENOMEM, "stats.h5: a string type");
  char path[96];
  for (int k = 0; rc == 0 && k < NCATS; k++) {
    snprintf(path, sizeof path, "/census/categories/%s", CAT_NAMES[k]);
    rc = small(o, rank, path, cat_type, z->ncat[k], t->cat[k].v,
               "the values of a coded /census column: code i is row i (-1: none, 4096: one of the rarer values)", "text");
  }
  uint64_t nm = z->nmonths, nd = z->ndtypes, nt = z->ntop;
  char (*mname)[8] = calloc(nm + 1, 8), (*dname)[CAT_LEN] = calloc(nd + 1, CAT_LEN), (*bname)[CENSUS_ID_LEN] = calloc(nt + 1, CENSUS_ID_LEN);
  int64_t *mmodels = calloc(nm + 1, 8), *mdecl = calloc(nm + 1, 8), *bcount[NRELATIONS + 1];
  double *mparams = calloc(nm + 1, 8), edges[HIST_BINS];
  for (int r = 0; r <= NRELATIONS; r++)
    bcount[r] = calloc(nt + 1, 8);
  for (int r = 0; r <= NRELATIONS; r++)
    if (!bcount[r])
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (!mname || !dname || !bname || !mmodels || !mdecl || !mparams)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (uint64_t i = 0; rc == 0 && rank == 0 && i < nm; i++) {
    memcpy(mname[i], t->months[i].month, 8);
    mmodels[i] = t->months[i].models;
    mdecl[i] = t->months[i].declared;
    mparams[i] = t->months[i].params;
  }
  for (uint64_t i = 0; rc == 0 && rank == 0 && i < nd; i++)
    memcpy(dname[i], t->dtypes[i], CAT_LEN);
  for (uint64_t i = 0; rc == 0 && rank == 0 && i < nt; i++) {
    memcpy(bname[i], t->bases[i].id, CENSUS_ID_LEN);
    bcount[0][i] = t->bases[i].children;
    for (int r = 0; r < NRELATIONS; r++)
      bcount[r + 1][i] = t->bases[i].count[r];
  }
  for (int i = 0; i < HIST_BINS; i++)
    edges[i] = i / 4.0;
  rc = rc ? rc : small(o, rank, "/census/by_month/month", month_type, nm, mname, "calendar month (createdAt, UTC)", "YYYY-MM");
  rc = rc ? rc : small(o, rank, "/census/by_month/models", H5T_NATIVE_INT64, nm, mmodels, "models created in the month", "models");
  rc = rc ? rc : small(o, rank, "/census/by_month/parameters", H5T_NATIVE_DOUBLE, nm, mparams,
                       "parameters of the models created in the month (safetensors totals the Hub lists)", "parameters");
  rc = rc ? rc : small(o, rank, "/census/by_month/declared_base", H5T_NATIVE_INT64, nm, mdecl,
                       "models created in the month that declare a base model (baseModels)", "models");
  rc = rc ? rc : small(o, rank, "/census/by_dtype/dtype", cat_type, nd, dname, "safetensors dtype", "text");
  rc = rc ? rc : small(o, rank, "/census/by_dtype/models", H5T_NATIVE_INT64, nd, t->dtype_models, "models with weights of the dtype", "models");
  rc = rc ? rc : small(o, rank, "/census/by_dtype/parameters", H5T_NATIVE_DOUBLE, nd, t->dtype_params, "parameters stored in the dtype, all models", "parameters");
  rc = rc ? rc : small(o, rank, "/census/params_hist/log10_low", H5T_NATIVE_DOUBLE, HIST_BINS, edges,
                       "lower edge of the bin: log10 of the parameter count (bins of 0.25)", "log10(parameters)");
  rc = rc ? rc : small(o, rank, "/census/params_hist/models", H5T_NATIVE_INT64, HIST_BINS, t->hist, "models whose parameter count falls in the bin", "models");
  rc = rc ? rc : small(o, rank, "/census/declared_bases/id", id_type, nt, bname,
                       "the base models most declared (baseModels), most children first", "text");
  rc = rc ? rc : small(o, rank, "/census/declared_bases/children", H5T_NATIVE_INT64, nt, bcount[0], "models declaring it", "models");
  for (int r = 0; rc == 0 && r < NRELATIONS; r++) {
    snprintf(path, sizeof path, "/census/declared_bases/%s", RELATIONS[r]);
    rc = small(o, rank, path, H5T_NATIVE_INT64, nt, bcount[r + 1], "models declaring it with this relation", "models");
  }
  free(mname);
  free(dname);
  free(bname);
  free(mmodels);
  free(mdecl);
  free(mparams);
  for (int r = 0; r <= NRELATIONS; r++)
    free(bcount[r]);
  if (cat_type >= 0)
    H5Tclose(cat_type);
  if (month_type >= 0)
    H5Tclose(month_type);
  return rc;
}

static int create_columns(census_writer *w, uint64_t rows)
{
  static const struct {
    const char *path, *desc, *units;
    int type; /* 0 id string, 1 int64, 2 int16, 3 int32 */
  } cols[ND] = {
      {"/census/id", "repo id (org/name), in listing order (createdAt)", "text", 0},
      {"/census/created_at", "createdAt (-1: not given)", "seconds since 1970-01-01 UTC", 1},
      {"/census/last_modified", "lastModified (-1: not given)", "seconds since 1970-01-01 UTC", 1},
      {"/census/library", "library_name, coded (/census/categories/library; -1: none)", "code", 2},
      {"/census/pipeline_tag", "pipeline_tag, coded (/census/categories/pipeline_tag; -1: none)", "code", 2},
      {"/census/base_relation", "baseModels relation, coded (/census/categories/base_relation; -1: none)", "code", 2},
      {"/census/gated", "gated, coded (/census/categories/gated; -1: not given)", "code", 2},
      {"/census/dtype", "the dtype holding most parameters, coded (/census/categories/dtype; -1: no safetensors)", "code", 2},
      {"/census/base_model", "the first declared base model (baseModels), \"\" when none", "text", 0},
      {"/census/base_models", "base models declared", "models", 2},
      {"/census/params_total", "parameters (safetensors total the Hub lists; -1: none listed)", "parameters", 1},
      {"/census/files", "files in the repo (siblings; -1: not given)", "files", 3},
      {"/census/downloads", "downloads (the Hub's last 30 days; -1: not given)", "downloads", 1},
      {"/census/likes", "likes (-1: not given)", "likes", 1},
  };
  hid_t types[4] = {w->id_type, H5T_NATIVE_INT64, H5T_NATIVE_INT16, H5T_NATIVE_INT32};
  int rc = 0;
  for (int k = 0; k < ND; k++)
    w->d[k] = H5I_INVALID_HID;
  for (int k = 0; rc == 0 && k < ND; k++)
    rc = h5_table_create(w->o, cols[k].path, types[cols[k].type], rows, 0, cols[k].desc, cols[k].units, &w->d[k]);
  return rc;
}

static int alloc_round(census_writer *w)
{
  w->id = calloc(ROUND, CENSUS_ID_LEN);
  w->base = calloc(ROUND, CENSUS_ID_LEN);
  w->created = calloc(ROUND, 8);
  w->modified = calloc(ROUND, 8);
  w->params = calloc(ROUND, 8);
  w->downloads = calloc(ROUND, 8);
  w->likes = calloc(ROUND, 8);
  w->files = calloc(ROUND, 4);
  w->nbases = calloc(ROUND, 2);
  int ok = w->id && w->base && w->created && w->modified && w->params && w->downloads && w->likes && w->files && w->nbases;
  for (int k = 0; k < NCATS; k++)
    ok = (w->code[k] = calloc(ROUND, 2)) != NULL && ok;
  return ok ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
}

static void free_round(census_writer *w)
{
  free(w->id);
  free(w->base);
  free(w->created);
  free(w->modified);
  free(w->params);
  free(w->downloads);
  free(w->likes);
  free(w->files);
  free(w->nbases);
  for (int k = 0; k < NCATS; k++)
    free(w->code[k]);
  for (int k = 0; k < ND; k++)
    if (w->d[k] >= 0)
      H5Dclose(w->d[k]);
}

/* Every rank: the columns in rounds (rank 0 streams the rows; the others join each round). */
static int write_columns(census_tables *t, h5_out *o, int rank, uint64_t rows, hid_t id_type)
{
  census_writer w = {.t = t, .o = o, .id_type = id_type, .limit = rows};
  int rc = alloc_round(&w);
  rc = rc ? rc : create_columns(&w, rows);
  if (!zllm_mpi_alltrue(rc == 0, o->comm)) {
    free_round(&w);
    return rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: another rank failed");
  }
  uint64_t rounds = (rows + ROUND - 1) / ROUND;
  if (rank == 0)
    rc = zllm_read_lines(t->path, ZLLM_CENSUS_MAX_LINE, take_row_columns, &w);
  /* Collective calls pair up by their order: rank 0 wrote its full rounds
   * from inside the read while the others stood in this loop; each makes
   * `rounds` calls in all (rank 0 its last with what it still holds, or
   * none after a failure: the writes agree on it and the file says so). */
  for (uint64_t r = rank == 0 ? w.rounds : 0; r < rounds; r++) {
    int wr = write_round(&w, rank == 0 && rc == 0 ? w.n : 0);
    rc = rc ? rc : wr;
  }
  free_round(&w);
  return rc;
}

int sv_census_write(sv_run *run, h5_out *o)
{
  census_tables t = {.run = run};
  census_sizes z;
  memset(&z, 0, sizeof z);
  int rc = 0;
  hid_t id_type = h5_str_type(CENSUS_ID_LEN);
  if (run->rank == 0) {
    t.path = zllm_path_join(run->crawled_hub ? run->crawled_hub : run->opts.hub, "census.tsv");
    t.copy = malloc(ZLLM_CENSUS_MAX_LINE + 1);
    rc = t.path && t.copy ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    rc = rc ? rc : zllm_read_lines(t.path, ZLLM_CENSUS_MAX_LINE, take_row_tables, &t);
    z.rows = t.rows;
    z.bad = t.bad;
    for (int k = 0; k < NCATS; k++)
      z.ncat[k] = t.cat[k].n;
    z.nmonths = t.nmonths;
    z.ndtypes = t.ndtypes;
    z.nbases = t.nbases;
    z.ntop = rc == 0 ? top_bases(&t) : 0;
  }
  if (!zllm_mpi_alltrue(rc == 0, run->comm))
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "stats: the census could not be read on rank 0");
  MPI_Bcast(&z, sizeof z / sizeof(uint64_t), MPI_UINT64_T, 0, run->comm);
  rc = rc ? rc : h5_group(o, "/census", "the hub's census from its listing (zllm crawl --census): one row per repo, "
                                        "and the Hub-scale tables of the characterization");
  rc = rc ? rc : h5_group(o, "/census/categories", "the values of the coded columns");
  rc = rc ? rc : h5_group(o, "/census/by_month", "models and parameters per month of createdAt");
  rc = rc ? rc : h5_group(o, "/census/by_dtype", "models and parameters per safetensors dtype");
  rc = rc ? rc : h5_group(o, "/census/params_hist", "the distribution of parameter counts");
  rc = rc ? rc : h5_group(o, "/census/declared_bases", "declared fine-tune trees: the most declared base models");
  rc = rc ? rc : write_columns(&t, o, run->rank, z.rows, id_type);
  rc = rc ? rc : write_small_tables(&t, o, run->rank, &z, id_type);
  if (rc == 0 && run->rank == 0)
    ZLLM_INFO("stats: /census: %llu repos, %llu months, %llu dtypes, %llu declared base models%s",
              (unsigned long long)z.rows, (unsigned long long)z.nmonths, (unsigned long long)z.ndtypes,
              (unsigned long long)z.nbases, z.bad ? " (some census rows unreadable, left out)" : "");
  if (id_type >= 0)
    H5Tclose(id_type);
  for (int k = 0; k < NCATS; k++)
    free(t.cat[k].v);
  free(t.months);
  free(t.bases);
  free(t.copy);
  free(t.path);
  return rc;
}
