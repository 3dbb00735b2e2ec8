/* The report: files.tsv, tensors.tsv and problems.tsv written in place by
 * every rank from its own scan records, the duplicate counts from the
 * owners of the hashes (survey/dedup.h), then repos.tsv, families.tsv,
 * summary.json and the summary table on rank 0; all in hub order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mpi.h>

#include "survey/dedup.h"
#include "survey/phases.h"
#include "survey/table.h"
#include "zllm/dtype.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/io.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

enum { F_REPO = 1, F_PATH, F_KIND, F_BYTES, F_SHA, F_XXH, F_STATUS, F_NTENSORS, F_ERROR, F_NFIELDS };
enum { T_NAME = 1, T_DTYPE, T_SHAPE, T_BYTES, T_XXH, T_NFIELDS };

typedef struct {
  char *f[F_NFIELDS]; /* fields of the F line, split in place */
  char *tensors;      /* the T lines that follow (NUL-terminated), or "" */
} file_rec;

/* The whole hub's counts: every field a u64, summed over the ranks. */
typedef struct {
  uint64_t files, bytes, kind_files[ZLLM_FILE_OTHER + 1], kind_bytes[ZLLM_FILE_OTHER + 1];
  uint64_t st_malformed, tensors, tensor_bytes, dt_tensors[ZLLM_DT_COUNT], dt_bytes[ZLLM_DT_COUNT];
  uint64_t after_file, after_tensor, dup_files, dup_tensors, file_problems;
  uint64_t listing_problems; /* the walk's (each rank's block) */
} stats;

static int split_fields(char *line, char **f, int n)
{
  int k = 0;
  f[k++] = line;
  for (char *p = line; *p && k < n; p++)
    if (*p == '\t') {
      *p = '\0';
      f[k++] = p + 1;
    }
  return k == n ? 0 : zllm_error_set(ZLLM_EFORMAT, "scan record with %d fields, wanted %d", k, n);
}

/* A record: its F line split, its T lines after it. */
static int split_record(char *text, file_rec *r)
{
  char *nl = strchr(text, '\n');
  if (text[0] != 'F' || !nl)
    return zllm_error_set(ZLLM_EFORMAT, "scan record without a file line");
  *nl = '\0';
  r->tensors = nl + 1;
  return split_fields(text, r->f, F_NFIELDS);
}

/* Visits each T line of a record: fields split in a scratch copy. */
typedef int (*tensor_fn)(void *ctx, char **t, size_t order);

static int each_tensor(const file_rec *r, tensor_fn fn, void *ctx)
{
  const char *p = r->tensors;
  char line[4096], *t[T_NFIELDS];
  int rc = 0;
  for (size_t order = 0; rc == 0 && *p; order++) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (len >= sizeof line)
      return zllm_error_set(ZLLM_ELIMIT, "tensor record longer than %zu bytes", sizeof line);
    memcpy(line, p, len);
    line[len] = '\0';
    rc = split_fields(line, t, T_NFIELDS);
    rc = rc ? rc : fn(ctx, t, order);
    p += len + (nl ? 1 : 0);
  }
  return rc;
}

static int is_weight(const file_rec *r)
{
  return strcmp(r->f[F_KIND], "safetensors") == 0 || strcmp(r->f[F_KIND], "opaque-weight") == 0;
}

/* ---- this rank's records, repo by repo ------------------------------------------ */

typedef struct {
  sv_run *run;
  stats s;
  sv_table *files, *tensors, *problems, *repos;
  zllm_buf rows;
  sv_outbox fh;         /* this rank's files' hashes, by owner */
  uint64_t *dups;       /* this rank's files that are a duplicate of an earlier one */
  size_t ndups;
  sv_outbox th;         /* the tensors of its first copies, by owner */
  uint64_t unique_tensor_bytes;
  sv_repo_weights *weights; /* per repo of this rank */
  size_t nweights, weights_cap;
  size_t file;          /* the record being visited */
  file_rec *rec;        /* ... its fields */
  uint64_t decisions[ZLLM_DECIDE_NONE + 1]; /* the family rows' decisions, every part's summed */
} report;

/* Visits every record of this rank in file order; a repo's records must
 * all be here (its rank made them all). */
typedef int (*record_fn)(report *rp, size_t file, file_rec *r);

static int each_record(report *rp, record_fn fn)
{
  sv_records *rec = rp->run->records;
  const sv_list *l = &rp->run->list;
  size_t n = sv_records_count(rec), lo = 0, hi = 0;
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < n; k++) {
    size_t file, len;
    char *text;
    file_rec r;
    rc = sv_records_get(rec, k, &file, &text, &len);
    if (rc == 0 && file >= l->nfiles)
      rc = zllm_error_set(ZLLM_EFORMAT, "a scan record for file %zu of %zu", file, l->nfiles);
    if (rc == 0 && file >= hi) { /* a repo starts: all its files follow, in order */
      size_t repo = sv_file_repo(l, file);
      sv_repo_files(l, repo, &lo, &hi);
      if (file != lo || k + (hi - lo) > n || sv_records_file(rec, k + (hi - lo) - 1) != hi - 1)
        rc = zllm_error_set(ZLLM_ERROR, "%s: its scan records are not all on rank %d", l->repo_ids[repo],
                            rp->run->rank);
    }
    rc = rc ? rc : split_record(text, &r);
    rp->file = file;
    rp->rec = &r;
    rc = rc ? rc : fn(rp, file, &r);
  }
  return rc;
}

/* A tensor of the first read: counted, and its tensors.tsv row made. */
static int tensor_row(void *ctx, char **t, size_t order)
{
  report *rp = ctx;
  uint64_t bytes = strtoull(t[T_BYTES], NULL, 10);
  zllm_dtype dt;
  (void)order;
  rp->s.tensors++;
  rp->s.tensor_bytes += bytes;
  if (zllm_dtype_from_name(&dt, t[T_DTYPE]) == 0) {
    rp->s.dt_tensors[dt]++;
    rp->s.dt_bytes[dt] += bytes;
  }
  /* the record's repo and path: as files.tsv's, TSV-escaped */
  return zllm_buf_printf(&rp->rows, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", rp->rec->f[F_REPO], rp->rec->f[F_PATH],
                         t[T_NAME], t[T_DTYPE], t[T_SHAPE], t[T_BYTES], t[T_XXH]);
}

static int add_weight(report *rp, size_t repo, const char *sha, const uint8_t *bin)
{
  sv_repo_weights *w = rp->nweights ? &rp->weights[rp->nweights - 1] : NULL;
  int rc = 0;
  if (!w || w->repo != repo) {
    rc = zllm_grow((void **)&rp->weights, &rp->weights_cap, rp->nweights + 1, sizeof *rp->weights);
    if (rc < 0)
      return rc;
    w = &rp->weights[rp->nweights++];
    *w = (sv_repo_weights){.repo = repo};
  }
  if (strcmp(sha, "-") == 0) { /* unreadable: no earlier repo is known to hold it */
    w->unreadable = 1;
    return 0;
  }
  uint8_t(*v)[32] = realloc(w->sha, (w->nsha + 1) * sizeof *v);
  if (!v)
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  w->sha = v;
  memcpy(w->sha[w->nsha++], bin, 32);
  return 0;
}

/* First read: the counts, the rows, the file's hash for its owner. */
static int first_read(report *rp, size_t file, file_rec *r)
{
  size_t repo = sv_file_repo(&rp->run->list, file);
  uint64_t bytes = strtoull(r->f[F_BYTES], NULL, 10);
  zllm_file_kind k = zllm_file_kind_of(r->f[F_PATH]);
  rp->s.files++;
  rp->s.bytes += bytes;
  rp->s.kind_files[k]++;
  rp->s.kind_bytes[k] += bytes;
  rp->s.file_problems += strcmp(r->f[F_STATUS], "ok") != 0;
  rp->s.st_malformed += k == ZLLM_FILE_SAFETENSORS && strcmp(r->f[F_STATUS], "ok") != 0;
  int rc = 0;
  rp->rows.len = 0;
  for (int i = F_REPO; rc == 0 && i < F_NFIELDS; i++)
    rc = zllm_buf_printf(&rp->rows, "%s%s", r->f[i], i + 1 < F_NFIELDS ? "\t" : "\n");
  rc = rc ? rc : sv_table_add(rp->files, repo, rp->rows.data, rp->rows.len);
  rp->rows.len = 0;
  if (rc == 0 && strcmp(r->f[F_STATUS], "ok") != 0)
    rc = zllm_buf_printf(&rp->rows, "%s\t%s\n", r->f[F_REPO], r->f[F_ERROR]);
  rc = rc ? rc : sv_table_add(rp->problems, (size_t)rp->run->size + repo, rp->rows.data, rp->rows.len);
  rp->rows.len = 0;
  rc = rc ? rc : each_tensor(r, tensor_row, rp);
  rc = rc ? rc : sv_table_add(rp->tensors, repo, rp->rows.data, rp->rows.len);
  sv_file_hash h = {.weight = (uint8_t)is_weight(r), .readable = strcmp(r->f[F_SHA], "-") != 0,
                    .from = rp->run->rank, .file = file, .repo = repo, .bytes = bytes};
  if (rc == 0 && h.readable && zllm_unhex(h.hash, sizeof h.hash, r->f[F_SHA]) < 0)
    rc = zllm_error_set(ZLLM_EFORMAT, "%s: a scan record with SHA-256 \"%s\"", r->f[F_PATH], r->f[F_SHA]);
  rc = rc ? rc : sv_outbox_file(&rp->fh, &h);
  return rc ? rc : is_weight(r) ? add_weight(rp, repo, r->f[F_SHA], h.hash) : 0;
}

static int add_tensor_hash(void *ctx, char **t, size_t order)
{
  report *rp = ctx;
  uint64_t bytes = strtoull(t[T_BYTES], NULL, 10);
  sv_tensor_hash h = {.from = rp->run->rank, .file = rp->file, .order = order, .bytes = bytes};
  rp->unique_tensor_bytes += bytes;
  if (zllm_unhex(h.hash, sizeof h.hash, t[T_XXH]) < 0)
    return zllm_error_set(ZLLM_EFORMAT, "a scan record with XXH3-128 \"%s\"", t[T_XXH]);
  return sv_outbox_tensor(&rp->th, &h);
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Second read: the tensors of files that are their hash's first copy. */
static int second_read(report *rp, size_t file, file_rec *r)
{
  if (bsearch(&(uint64_t){file}, rp->dups, rp->ndups, sizeof *rp->dups, cmp_u64))
    return 0;
  return each_tensor(r, add_tensor_hash, rp);
}

static int write_out(const sv_run *run, const char *name, const zllm_buf *b)
{
  char *path = zllm_path_join(run->opts.out, name);
  int rc = path ? zllm_write_file_atomic(path, b->data ? b->data : "", b->len) : ZLLM_ENOMEM;
  free(path);
  return rc;
}

static size_t count_lines(const zllm_buf *b)
{
  size_t n = 0;
  for (size_t i = 0; i < b->len; i++)
    n += b->data[i] == '\n';
  return n;
}

static json_t *results_json(const sv_run *run, const stats *s)
{
  json_t *kinds = json_object(), *dts = json_object();
  for (int k = 0; k <= ZLLM_FILE_OTHER; k++)
    if (s->kind_files[k])
      json_object_set_new(kinds, zllm_file_kind_name((zllm_file_kind)k),
                          json_pack("{s:I,s:I}", "files", (json_int_t)s->kind_files[k], "bytes",
                                    (json_int_t)s->kind_bytes[k]));
  for (int d = 0; d < ZLLM_DT_COUNT; d++)
    if (s->dt_tensors[d])
      json_object_set_new(dts, zllm_dtype_get((zllm_dtype)d)->name,
                          json_pack("{s:I,s:I,s:I}", "tensors", (json_int_t)s->dt_tensors[d], "parameters",
                                    (json_int_t)(s->dt_bytes[d] / zllm_dtype_get((zllm_dtype)d)->size), "bytes",
                                    (json_int_t)s->dt_bytes[d]));
  return json_pack("{s:I,s:I,s:I,s:o,s:{s:I,s:I,s:I},s:o,s:{s:I,s:I,s:I,s:I,s:I,s:s},s:I}", "repos",
                   (json_int_t)run->list.nrepos, "files", (json_int_t)s->files, "bytes", (json_int_t)s->bytes,
                   "files_by_kind", kinds, "safetensors", "malformed", (json_int_t)s->st_malformed, "tensors",
                   (json_int_t)s->tensors, "tensor_bytes", (json_int_t)s->tensor_bytes, "dtypes", dts,
                   "reduction", "original_bytes", (json_int_t)s->bytes, "after_file_dedup",
                   (json_int_t)s->after_file, "after_tensor_dedup", (json_int_t)s->after_tensor,
                   "duplicate_files", (json_int_t)s->dup_files, "duplicate_tensors", (json_int_t)s->dup_tensors,
                   "note", "hash-level estimate (SHA-256 files, XXH3-128 tensors); the archive confirms bytes",
                   "problems", (json_int_t)(s->listing_problems + s->file_problems));
}

static json_t *families_json(const zllm_family_table *t, const uint64_t *decisions)
{
  json_t *by = json_object();
  for (int d = 0; d <= ZLLM_DECIDE_NONE; d++)
    json_object_set_new(by, zllm_decision_name((zllm_decision)d), json_integer((json_int_t)decisions[d]));
  return json_pack("{s:I,s:I,s:I,s:o,s:f}", "models", (json_int_t)t->total, "families", (json_int_t)t->nfamilies,
                   "pairs_compared", (json_int_t)t->ncompared, "decisions", by, "threshold_bits",
                   ZLLM_CLUSTER_THRESHOLD);
}

static int write_summary(const sv_run *run, const stats *s, const uint64_t *decisions, double report_s)
{
  double scan_rate = sv_read_seconds(run) > 0 ? (double)run->scanned_bytes / sv_read_seconds(run) : 0;
  json_t *results = results_json(run, s);
  if (results && run->families)
    json_object_set_new(results, "families", families_json(run->families, decisions));
  if (results && run->packed)
    json_object_set_new(results, "archive",
                        json_pack("{s:s,s:I,s:I,s:I,s:I}", "path", "archive", "original_bytes", (json_int_t)run->stages[0],
                                  "after_file_dedup", (json_int_t)run->stages[1], "after_tensor_dedup",
                                  (json_int_t)run->stages[2], "stored_bytes", (json_int_t)run->stages[3]));
  json_t *root = json_pack("{s:s,s:s,s:o,s:{s:i,s:{s:f,s:f,s:f,s:f,s:f,s:f},s:f,s:I}}", "tool",
                           "zllm-survey " ZLLM_VERSION, "hub", run->opts.hub, "results", results, "run", "ranks",
                           run->size, "seconds", "crawl", run->times[4], "walk", run->times[0], "scan", run->times[1],
                           "cluster", run->times[2], "pack", run->times[3], "report", report_s,
                           "scan_bytes_per_second", scan_rate, "bytes_read", (json_int_t)run->bytes_read);
  char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  zllm_buf b = {text, text ? strlen(text) : 0, 0};
  int rc = text ? write_out(run, "summary.json", &b) : zllm_error_set(ZLLM_ENOMEM, "summary.json: cannot build");
  free(text);
  json_decref(root);
  return rc;
}

static double pct(uint64_t part, uint64_t whole)
{
  return whole ? 100.0 * (double)part / (double)whole : 0;
}

static void print_table(const sv_run *run, const stats *s)
{
  printf("\nzllm-survey: %s\n  %d ranks, %zu repos, %llu files, %.2f MB, scanned at %.1f MB/s\n\n", run->opts.hub,
         run->size, run->list.nrepos, (unsigned long long)s->files, (double)s->bytes / 1e6,
         sv_read_seconds(run) > 0 ? (double)run->scanned_bytes / sv_read_seconds(run) / 1e6 : 0.0);
  printf("  %-30s %14s %10s\n", "stage", "bytes", "of orig.");
  printf("  %-30s %14llu %9.1f%%\n", "original", (unsigned long long)s->bytes, 100.0);
  printf("  %-30s %14llu %9.1f%%\n", "file dedup (SHA-256)", (unsigned long long)s->after_file,
         pct(s->after_file, s->bytes));
  printf("  %-30s %14llu %9.1f%%\n", "+ tensor dedup (XXH3-128)", (unsigned long long)s->after_tensor,
         pct(s->after_tensor, s->bytes));
  if (run->packed) {
    static const char *names[4] = {"archive: original", "archive: file dedup", "archive: + tensor dedup",
                                   "archive: + BitX/solo coding"};
    for (int i = 0; i < 4; i++)
      printf("  %-30s %14llu %9.1f%%\n", names[i], (unsigned long long)run->stages[i], pct(run->stages[i], s->bytes));
  }
  printf("\n  %-10s %10s %16s %14s\n", "dtype", "tensors", "parameters", "bytes");
  for (int d = 0; d < ZLLM_DT_COUNT; d++)
    if (s->dt_tensors[d])
      printf("  %-10s %10llu %16llu %14llu\n", zllm_dtype_get((zllm_dtype)d)->name,
             (unsigned long long)s->dt_tensors[d],
             (unsigned long long)(s->dt_bytes[d] / zllm_dtype_get((zllm_dtype)d)->size),
             (unsigned long long)s->dt_bytes[d]);
  printf("\n  %llu duplicate files, %llu duplicate tensors, %llu malformed safetensors, %zu problems\n",
         (unsigned long long)s->dup_files, (unsigned long long)s->dup_tensors, (unsigned long long)s->st_malformed,
         (size_t)(s->listing_problems + s->file_problems));
  if (run->families)
    printf("  %zu models in %zu families (bit distance <= %.2f, %zu pairs compared)\n", run->families->total,
           run->families->nfamilies, ZLLM_CLUSTER_THRESHOLD, run->families->ncompared);
  printf("  time: crawl %.2fs, walk %.2fs, scan %.2fs, cluster %.2fs, pack %.2fs (stats.h5 follows)\n\n"
         "outputs in %s/: summary.json repos.tsv files.tsv tensors.tsv problems.tsv families.tsv pairs.tsv "
         "stats.h5%s\n",
         run->times[4], run->times[0], run->times[1], run->times[2], run->times[3], run->opts.out,
         run->packed ? " archive/" : "");
  fflush(stdout);
}

static int agree(int rc, MPI_Comm comm)
{
  return zllm_mpi_alltrue(rc == 0, comm) ? 0 : (rc ? rc : zllm_error_set(ZLLM_ERROR, "report: another rank failed"));
}

/* families.tsv: each home's rows in place, the parts in rank order (hub
 * order); pairs.tsv was written in place by the families phase.  The
 * decisions counted over the parts for summary.json.  COLLECTIVE. */
static int write_families(report *rp)
{
  const sv_run *run = rp->run;
  const zllm_family_table *t = run->families;
  zllm_buf rows = ZLLM_BUF_INIT;
  sv_table *tsv = NULL;
  char *path = zllm_path_join(run->opts.out, "families.tsv");
  int rc = path ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < t->n; i++) {
    rc = zllm_family_row_put(&rows, &t->rows[i]);
    rp->decisions[t->rows[i].decision]++;
  }
  if (MPI_Allreduce(MPI_IN_PLACE, rp->decisions, ZLLM_DECIDE_NONE + 1, MPI_UINT64_T, MPI_SUM, run->comm) !=
      MPI_SUCCESS)
    rc = rc ? rc : zllm_error_set(ZLLM_EMPI, "report: MPI_Allreduce of the family decisions failed");
  rc = rc ? rc : sv_table_open(&tsv, NULL, (size_t)run->size);
  rc = rc ? rc : sv_table_size(tsv, (size_t)run->rank, rows.len);
  rc = agree(rc, run->comm);
  if (rc == 0 && (rc = sv_table_place(tsv, path, zllm_families_tsv_header, run->comm)) == 0)
    rc = sv_table_finish(tsv, path, sv_table_put(tsv, (size_t)run->rank, rows.data ? rows.data : "", rows.len) == 0,
                         run->comm);
  sv_table_free(tsv);
  zllm_buf_free(&rows);
  free(path);
  return rc;
}

/* ---- the report, over the ranks ------------------------------------------------ */


static int open_table(const sv_run *run, const char *name, size_t nkeys, sv_table **t)
{
  char file[64];
  snprintf(file, sizeof file, "%s-%d.tsv", name, run->rank);
  char *dir = zllm_path_join(run->opts.out, SV_SPILL_DIR), *path = dir ? zllm_path_join(dir, file) : NULL;
  int rc = path ? sv_table_open(t, path, nkeys) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  free(dir);
  free(path);
  return rc;
}

/* This rank's records: rows into the tables, counts, hashes; every file
 * of the hub has one record on one rank. */
static int read_records(report *rp)
{
  sv_run *run = rp->run;
  size_t n = run->list.nrepos;
  int rc = sv_records_seal(run->records);
  rc = rc ? rc : sv_outbox_init(&rp->fh, run->comm);
  rc = rc ? rc : sv_outbox_init(&rp->th, run->comm);
  rc = rc ? rc : open_table(run, "files", n, &rp->files);
  rc = rc ? rc : open_table(run, "tensors", n, &rp->tensors);
  rc = rc ? rc : open_table(run, "problems", (size_t)run->size + n, &rp->problems);
  rc = rc ? rc : open_table(run, "repos", (size_t)run->size, &rp->repos);
  rc = rc ? rc : each_record(rp, first_read);
  rc = rc ? rc : zllm_test_fail("report", run->rank);
  /* the listing's problems come first, each rank's block in rank order
   * (which is hub order), then the files' */
  rc = rc ? rc : sv_table_add(rp->problems, (size_t)run->rank, run->problems.data ? run->problems.data : "",
                              run->problems.len);
  rc = rc ? rc : sv_table_add(rp->repos, (size_t)run->rank, run->repos.data ? run->repos.data : "", run->repos.len);
  rp->s.listing_problems = count_lines(&run->problems);
  rc = agree(rc, run->comm);
  unsigned long long records = zllm_mpi_sum_u64(rc == 0 ? sv_records_count(run->records) : 0, run->comm);
  if (rc == 0 && records != run->list.nfiles)
    rc = zllm_error_set(ZLLM_ERROR, "report: %llu scan records for %zu files", records, run->list.nfiles);
  return rc;
}

/* The re-uploads found by the owners, on every rank (few: a list of pairs). */
static int share_file_dups(sv_run *run, const report *rp, const uint64_t *holder)
{
  zllm_buf mine = ZLLM_BUF_INIT;
  char *all = NULL;
  size_t len = 0;
  int rc = 0;
  for (size_t k = 0; rc == 0 && k < rp->nweights; k++)
    if (holder[k] != UINT64_MAX) {
      rc = zllm_buf_put_u64(&mine, rp->weights[k].repo);
      rc = rc ? rc : zllm_buf_put_u64(&mine, holder[k]);
    }
  rc = agree(rc, run->comm);
  rc = rc ? rc : zllm_mpi_allgather_bytes(mine.data, mine.len, &all, &len, run->comm);
  if (rc == 0 && !(run->file_dup_of = calloc(run->list.nrepos + 1, sizeof *run->file_dup_of)))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  zllm_reader r = {all, len};
  while (rc == 0 && r.left) {
    uint64_t repo = 0, q = 0;
    rc = zllm_reader_u64(&r, &repo);
    rc = rc ? rc : zllm_reader_u64(&r, &q);
    if (rc == 0 && (repo >= run->list.nrepos || q >= run->list.nrepos))
      rc = zllm_error_set(ZLLM_EFORMAT, "report: a re-upload of repo %llu", (unsigned long long)repo);
    if (rc == 0 && !(run->file_dup_of[repo] = strdup(run->list.repo_ids[q])))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  free(all);
  zllm_buf_free(&mine);
  return agree(rc, run->comm);
}

/* The duplicate counts, each hash's copies judged by its owner. */
static int count_duplicates(report *rp)
{
  sv_run *run = rp->run;
  sv_holders *holders = NULL;
  uint64_t *holder = NULL, kept_tensors = 0;
  int rc = sv_dedup_files(&rp->fh, &rp->dups, &rp->ndups, &rp->s.after_file, &rp->s.dup_files, &holders, run->comm);
  rc = rc ? rc : agree(each_record(rp, second_read), run->comm);
  rc = rc ? rc : sv_dedup_tensors(&rp->th, &kept_tensors, &rp->s.dup_tensors, run->comm);
  rc = rc ? rc : sv_dedup_repos(rp->weights, rp->nweights, holders, &holder, run->comm);
  rc = rc ? rc : share_file_dups(run, rp, holder);
  uint64_t before = zllm_mpi_sum_u64(rp->unique_tensor_bytes, run->comm);
  rp->s.after_tensor = rp->s.after_file - (before - kept_tensors);
  sv_holders_free(holders);
  free(holder);
  return rc;
}

/* The counts of every rank, summed (the owners' dedup sums already are). */
static int sum_counts(report *rp)
{
  stats *s = &rp->s, owned = *s;
  s->after_file = s->after_tensor = s->dup_files = s->dup_tensors = 0;
  if (MPI_Allreduce(MPI_IN_PLACE, s, (int)(sizeof *s / sizeof(uint64_t)), MPI_UINT64_T, MPI_SUM, rp->run->comm) !=
      MPI_SUCCESS)
    return zllm_error_set(ZLLM_EMPI, "report: MPI_Allreduce of the counts failed");
  s->after_file = owned.after_file;
  s->after_tensor = owned.after_tensor;
  s->dup_files = owned.dup_files;
  s->dup_tensors = owned.dup_tensors;
  return 0;
}

static int write_table(const report *rp, sv_table *t, const char *name, const char *header)
{
  char *path = zllm_path_join(rp->run->opts.out, name);
  int rc = agree(path ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory"), rp->run->comm);
  rc = rc ? rc : sv_table_write(t, path, header, rp->run->comm);
  free(path);
  return rc;
}

static int write_tables(report *rp)
{
  int rc = write_table(rp, rp->files, "files.tsv", "repo\tpath\tkind\tbytes\tsha256\txxh3_128\tstatus\ttensors\terror\n");
  rc = rc ? rc : write_table(rp, rp->tensors, "tensors.tsv", "repo\tfile\ttensor\tdtype\tshape\tbytes\txxh3_128\n");
  rc = rc ? rc : write_table(rp, rp->problems, "problems.tsv", "repo\tproblem\n");
  rc = rc ? rc : write_table(rp, rp->repos, "repos.tsv", "repo\trevision\tfiles\tbytes\tarchitectures\ttorch_dtype\t"
                                                         "base_model\tlicense\tlibrary_name\tproblems\n");
  return rc;
}

/* Rank 0: what the listing and the families give, and the summary. */
static int write_rank0(sv_run *run, const stats *s, const uint64_t *decisions, double t0)
{
  int rc = write_summary(run, s, decisions, MPI_Wtime() - t0);
  if (rc == 0 && !run->opts.quiet)
    print_table(run, s);
  return rc;
}

int sv_report(sv_run *run)
{
  report rp = {.run = run, .rows = ZLLM_BUF_INIT};
  double t0 = MPI_Wtime();
  int rc = read_records(&rp);
  rc = rc ? rc : count_duplicates(&rp);
  rc = rc ? rc : sum_counts(&rp);
  run->reduction[0] = rp.s.bytes;
  run->reduction[1] = rp.s.after_file;
  run->reduction[2] = rp.s.after_tensor;
  rc = rc ? rc : write_tables(&rp);
  rc = rc || !run->families ? rc : write_families(&rp);
  rc = rc ? rc : agree(run->rank == 0 ? write_rank0(run, &rp.s, rp.decisions, t0) : 0, run->comm);
  sv_table_free(rp.files);
  sv_table_free(rp.tensors);
  sv_table_free(rp.problems);
  sv_table_free(rp.repos);
  zllm_buf_free(&rp.rows);
  sv_outbox_free(&rp.fh);
  sv_outbox_free(&rp.th);
  free(rp.dups);
  for (size_t k = 0; k < rp.nweights; k++)
    free(rp.weights[k].sha);
  free(rp.weights);
  return rc;
}
