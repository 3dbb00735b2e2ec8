/* Rank 0's report: files.tsv, tensors.tsv, repos.tsv, problems.tsv,
 * summary.json and the summary table, all in hub order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mpi.h>

#include "survey/phases.h"
#include "zllm/dtype.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/path.h"

enum { F_REPO = 1, F_PATH, F_KIND, F_BYTES, F_SHA, F_XXH, F_STATUS, F_NTENSORS, F_ERROR, F_NFIELDS };
enum { T_NAME = 1, T_DTYPE, T_SHAPE, T_BYTES, T_XXH, T_NFIELDS };

typedef struct {
  char *f[F_NFIELDS]; /* fields of the F line, split in place */
  char *tensors;      /* the T lines that follow (NUL-terminated), or "" */
  int unique;         /* first file with this content in hub order */
} file_rec;

typedef struct {
  const char *hash;
  uint64_t bytes;
  size_t order;
} hash_ref;

typedef struct {
  uint64_t files, bytes, kind_files[ZLLM_FILE_OTHER + 1], kind_bytes[ZLLM_FILE_OTHER + 1];
  uint64_t st_malformed, tensors, tensor_bytes, dt_tensors[ZLLM_DT_COUNT], dt_bytes[ZLLM_DT_COUNT];
  uint64_t after_file, after_tensor, dup_files, dup_tensors, file_problems;
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

/* Splits "@index\nF...\nT...\n" blocks into records indexed by file. */
static int parse_blocks(file_rec *recs, size_t n, char *all, size_t len)
{
  char *p = all, *end = all + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p)), *next;
    if (*p != '@' || !nl)
      return zllm_error_set(ZLLM_EFORMAT, "scan records out of step");
    size_t idx = strtoull(p + 1, NULL, 10);
    if (idx >= n || recs[idx].f[0])
      return zllm_error_set(ZLLM_EFORMAT, "scan record for file %zu is bad or repeated", idx);
    char *body = nl + 1;
    next = body;
    while (next < end && !(next[0] == '@' && next[-1] == '\n')) {
      char *eol = memchr(next, '\n', (size_t)(end - next));
      next = eol ? eol + 1 : end;
    }
    char *fl_end = memchr(body, '\n', (size_t)(next - body));
    if (!fl_end || body[0] != 'F')
      return zllm_error_set(ZLLM_EFORMAT, "scan record %zu has no file line", idx);
    *fl_end = '\0';
    recs[idx].tensors = fl_end + 1 < next ? fl_end + 1 : (char *)"";
    if (next < end)
      next[-1] = '\0'; /* ends the T lines; the '\n' before '@' is not needed */
    int rc = split_fields(body, recs[idx].f, F_NFIELDS);
    if (rc < 0)
      return rc;
    p = next;
  }
  for (size_t i = 0; i < n; i++)
    if (!recs[i].f[0])
      return zllm_error_set(ZLLM_ERROR, "no scan record for file %zu", i);
  return 0;
}

static int cmp_hash_ref(const void *a, const void *b)
{
  const hash_ref *x = a, *y = b;
  int c = strcmp(x->hash, y->hash);
  return c ? c : (x->order < y->order ? -1 : x->order > y->order);
}

/* Bytes left after keeping one copy per hash; marks firsts when `first`. */
static uint64_t dedup_bytes(hash_ref *refs, size_t n, uint64_t *dups, int *first)
{
  uint64_t kept = 0;
  qsort(refs, n, sizeof *refs, cmp_hash_ref);
  *dups = 0;
  for (size_t i = 0; i < n; i++) {
    int is_first = i == 0 || strcmp(refs[i - 1].hash, refs[i].hash) != 0;
    kept += is_first ? refs[i].bytes : 0;
    *dups += !is_first;
    if (first)
      first[refs[i].order] = is_first;
  }
  return kept;
}

static int file_dedup(file_rec *recs, size_t n, stats *s)
{
  hash_ref *refs = calloc(n ? n : 1, sizeof *refs);
  int *first = calloc(n ? n : 1, sizeof *first);
  if (!refs || !first) {
    free(refs);
    free(first);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    refs[i] = (hash_ref){recs[i].f[F_SHA], strtoull(recs[i].f[F_BYTES], NULL, 10), i};
  s->after_file = dedup_bytes(refs, n, &s->dup_files, first);
  for (size_t i = 0; i < n; i++)
    /* an unreadable file ("-") is never merged with another */
    recs[i].unique = first[i] || strcmp(recs[i].f[F_SHA], "-") == 0;
  free(refs);
  free(first);
  return 0;
}

/* Visits each T line of a record: fields split in a scratch copy. */
typedef int (*tensor_fn)(void *ctx, char **t);

static int each_tensor(const file_rec *r, tensor_fn fn, void *ctx)
{
  const char *p = r->tensors;
  char line[4096], *t[T_NFIELDS];
  int rc = 0;
  while (rc == 0 && *p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (len >= sizeof line)
      return zllm_error_set(ZLLM_ELIMIT, "tensor record longer than %zu bytes", sizeof line);
    memcpy(line, p, len);
    line[len] = '\0';
    rc = split_fields(line, t, T_NFIELDS);
    rc = rc ? rc : fn(ctx, t);
    p += len + (nl ? 1 : 0);
  }
  return rc;
}

typedef struct {
  stats *s;
  hash_ref *refs;
  size_t n, cap;
  int unique;
  char *arena; /* hashes are copied here: the scratch line does not last */
} tensor_acc;

static int count_tensor(void *ctx, char **t)
{
  tensor_acc *a = ctx;
  uint64_t bytes = strtoull(t[T_BYTES], NULL, 10);
  zllm_dtype dt;
  a->s->tensors++;
  a->s->tensor_bytes += bytes;
  if (zllm_dtype_from_name(&dt, t[T_DTYPE]) == 0) {
    a->s->dt_tensors[dt]++;
    a->s->dt_bytes[dt] += bytes;
  }
  if (!a->unique)
    return 0;
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 256;
    hash_ref *r = realloc(a->refs, cap * sizeof *r);
    if (!r)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    a->refs = r;
    char *ar = realloc(a->arena, cap * 33);
    if (!ar)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    a->arena = ar;
    a->cap = cap;
    /* re-point the existing refs into the moved arena */
    for (size_t i = 0; i < a->n; i++)
      r[i].hash = ar + i * 33;
  }
  char *h = a->arena + a->n * 33;
  snprintf(h, 33, "%s", t[T_XXH]);
  a->refs[a->n] = (hash_ref){h, bytes, a->n};
  a->n++;
  return 0;
}

static int compute_stats(file_rec *recs, size_t n, stats *s)
{
  tensor_acc acc = {.s = s};
  int rc = file_dedup(recs, n, s);
  uint64_t unique_tensor_bytes_before = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint64_t bytes = strtoull(recs[i].f[F_BYTES], NULL, 10);
    zllm_file_kind k = zllm_file_kind_of(recs[i].f[F_PATH]);
    s->files++;
    s->bytes += bytes;
    s->kind_files[k]++;
    s->kind_bytes[k] += bytes;
    s->file_problems += strcmp(recs[i].f[F_STATUS], "ok") != 0;
    s->st_malformed += k == ZLLM_FILE_SAFETENSORS && strcmp(recs[i].f[F_STATUS], "ok") != 0;
    acc.unique = recs[i].unique;
    size_t before = acc.n;
    rc = each_tensor(&recs[i], count_tensor, &acc);
    for (size_t t = before; t < acc.n; t++)
      unique_tensor_bytes_before += acc.refs[t].bytes;
  }
  if (rc == 0) {
    uint64_t kept = dedup_bytes(acc.refs, acc.n, &s->dup_tensors, NULL);
    s->after_tensor = s->after_file - (unique_tensor_bytes_before - kept);
  }
  free(acc.refs);
  free(acc.arena);
  return rc;
}

static int write_out(const sv_run *run, const char *name, const zllm_buf *b)
{
  char *path = zllm_path_join(run->opts.out, name);
  int rc = path ? zllm_write_file_atomic(path, b->data ? b->data : "", b->len) : ZLLM_ENOMEM;
  free(path);
  return rc;
}

typedef struct {
  zllm_buf *b;
  const file_rec *r;
} tline_ctx;

static int put_tensor_row(void *ctx, char **t)
{
  tline_ctx *c = ctx;
  return zllm_buf_printf(c->b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c->r->f[F_REPO], c->r->f[F_PATH], t[T_NAME],
                         t[T_DTYPE], t[T_SHAPE], t[T_BYTES], t[T_XXH]);
}

static int write_tables(const sv_run *run, const file_rec *recs, size_t n)
{
  zllm_buf files = ZLLM_BUF_INIT, tensors = ZLLM_BUF_INIT, repos = ZLLM_BUF_INIT, probs = ZLLM_BUF_INIT;
  int rc = zllm_buf_puts(&files, "repo\tpath\tkind\tbytes\tsha256\txxh3_128\tstatus\ttensors\terror\n");
  rc = rc ? rc : zllm_buf_puts(&tensors, "repo\tfile\ttensor\tdtype\tshape\tbytes\txxh3_128\n");
  rc = rc ? rc : zllm_buf_puts(&repos, "repo\trevision\tfiles\tbytes\tarchitectures\ttorch_dtype\tbase_model\tlicense\tlibrary_name\tproblems\n");
  rc = rc ? rc : zllm_buf_puts(&probs, "repo\tproblem\n");
  rc = rc ? rc : zllm_buf_append(&repos, run->repos.data, run->repos.len);
  rc = rc ? rc : zllm_buf_append(&probs, run->problems.data, run->problems.len);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const file_rec *r = &recs[i];
    for (int k = F_REPO; rc == 0 && k < F_NFIELDS; k++)
      rc = zllm_buf_printf(&files, "%s%s", r->f[k], k + 1 < F_NFIELDS ? "\t" : "\n");
    if (rc == 0 && strcmp(r->f[F_STATUS], "ok") != 0)
      rc = zllm_buf_printf(&probs, "%s\t%s\n", r->f[F_REPO], r->f[F_ERROR]);
    tline_ctx c = {&tensors, r};
    rc = rc ? rc : each_tensor(r, put_tensor_row, &c);
  }
  rc = rc ? rc : write_out(run, "files.tsv", &files);
  rc = rc ? rc : write_out(run, "tensors.tsv", &tensors);
  rc = rc ? rc : write_out(run, "repos.tsv", &repos);
  rc = rc ? rc : write_out(run, "problems.tsv", &probs);
  zllm_buf_free(&files);
  zllm_buf_free(&tensors);
  zllm_buf_free(&repos);
  zllm_buf_free(&probs);
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
                   "problems", (json_int_t)(count_lines(&run->problems) + s->file_problems));
}

static json_t *families_json(const zllm_family_table *t)
{
  json_t *by = json_object();
  size_t n[ZLLM_DECIDE_NONE + 1] = {0};
  for (size_t i = 0; i < t->n; i++)
    n[t->rows[i].decision]++;
  for (int d = 0; d <= ZLLM_DECIDE_NONE; d++)
    json_object_set_new(by, zllm_decision_name((zllm_decision)d), json_integer((json_int_t)n[d]));
  return json_pack("{s:I,s:I,s:I,s:o,s:f}", "models", (json_int_t)t->n, "families", (json_int_t)t->nfamilies,
                   "pairs_compared", (json_int_t)t->ncompared, "decisions", by, "threshold_bits",
                   ZLLM_CLUSTER_THRESHOLD);
}

static int write_summary(const sv_run *run, const stats *s, double report_s)
{
  double scan_rate = sv_read_seconds(run) > 0 ? (double)run->scanned_bytes / sv_read_seconds(run) : 0;
  json_t *results = results_json(run, s);
  if (results && run->families)
    json_object_set_new(results, "families", families_json(run->families));
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
         count_lines(&run->problems) + (size_t)s->file_problems);
  if (run->families)
    printf("  %zu models in %zu families (bit distance <= %.2f, %zu pairs compared)\n", run->families->n,
           run->families->nfamilies, ZLLM_CLUSTER_THRESHOLD, run->families->ncompared);
  printf("  time: crawl %.2fs, walk %.2fs, scan %.2fs, cluster %.2fs, pack %.2fs (stats.h5 follows)\n\n"
         "outputs in %s/: summary.json repos.tsv files.tsv tensors.tsv problems.tsv families.tsv pairs.tsv "
         "stats.h5%s\n",
         run->times[4], run->times[0], run->times[1], run->times[2], run->times[3], run->opts.out,
         run->packed ? " archive/" : "");
  fflush(stdout);
}

static int write_families(const sv_run *run)
{
  char path[4096];
  int rc = 0;
  if (!run->families)
    return 0;
  snprintf(path, sizeof path, "%s/families.tsv", run->opts.out);
  rc = zllm_family_table_write(run->families, path); /* pairs.tsv: written in place by the families phase */
  return rc;
}

typedef struct {
  const char *sha;
  size_t repo;
} sha_repo;

static int cmp_sha_repo(const void *a, const void *b)
{
  const sha_repo *x = a, *y = b;
  int c = strcmp(x->sha, y->sha);
  return c ? c : (x->repo < y->repo ? -1 : x->repo > y->repo);
}

static int is_weight(const file_rec *r)
{
  return strcmp(r->f[F_KIND], "safetensors") == 0 || strcmp(r->f[F_KIND], "opaque-weight") == 0;
}

static int holds(const sha_repo *v, size_t n, const char *sha, size_t repo)
{
  sha_repo key = {sha, repo};
  return bsearch(&key, v, n, sizeof *v, cmp_sha_repo) != NULL;
}

/* Per repo, the first earlier repo (hub order) that holds every one of its
 * weight files byte for byte (SHA-256): a re-upload.  Candidates are the
 * repos holding its first weight file, found in the sorted (sha, repo) list. */
static const char *dup_holder(const sv_run *run, const file_rec *recs, const sha_repo *v, size_t m, size_t r)
{
  size_t lo, hi, first = SIZE_MAX;
  sv_repo_files(&run->list, r, &lo, &hi);
  for (size_t i = lo; i < hi && first == SIZE_MAX; i++)
    if (is_weight(&recs[i]))
      first = i;
  if (first == SIZE_MAX)
    return NULL;
  sha_repo key = {recs[first].f[F_SHA], 0};
  size_t a = 0, b = m;
  while (a < b) { /* the first entry with this sha */
    size_t mid = (a + b) / 2;
    if (cmp_sha_repo(&v[mid], &key) < 0)
      a = mid + 1;
    else
      b = mid;
  }
  for (; a < m && strcmp(v[a].sha, key.sha) == 0 && v[a].repo < r; a++) {
    int all = 1;
    for (size_t i = lo; all && i < hi; i++)
      if (is_weight(&recs[i]))
        all = holds(v, m, recs[i].f[F_SHA], v[a].repo);
    if (all)
      return run->list.repo_ids[v[a].repo];
  }
  return NULL;
}

static int model_file_dups(sv_run *run, const file_rec *recs, size_t n)
{
  sha_repo *v = calloc(n + 1, sizeof *v);
  size_t m = 0;
  if (!v || !(run->file_dup_of = calloc(run->list.nrepos + 1, sizeof *run->file_dup_of))) {
    free(v);
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    if (is_weight(&recs[i]) && strcmp(recs[i].f[F_SHA], "-") != 0)
      v[m++] = (sha_repo){recs[i].f[F_SHA], run->list.files[i].repo};
  qsort(v, m, sizeof *v, cmp_sha_repo);
  int rc = 0;
  for (size_t r = 0; rc == 0 && r < run->list.nrepos; r++) {
    const char *q = dup_holder(run, recs, v, m, r);
    if (q && !(run->file_dup_of[r] = strdup(q)))
      rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  }
  free(v);
  return rc;
}

int sv_report(sv_run *run, char *blocks, size_t len)
{
  size_t n = run->list.nfiles;
  file_rec *recs = calloc(n ? n : 1, sizeof *recs);
  stats s = {0};
  double t0 = MPI_Wtime();
  int rc = recs ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : parse_blocks(recs, n, blocks, len);
  rc = rc ? rc : compute_stats(recs, n, &s);
  rc = rc ? rc : write_tables(run, recs, n);
  rc = rc ? rc : model_file_dups(run, recs, n);
  run->reduction[0] = s.bytes;
  run->reduction[1] = s.after_file;
  run->reduction[2] = s.after_tensor;
  rc = rc ? rc : write_families(run);
  rc = rc ? rc : write_summary(run, &s, MPI_Wtime() - t0);
  if (rc == 0 && !run->opts.quiet)
    print_table(run, &s);
  free(recs);
  return rc;
}
