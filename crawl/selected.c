/* The crawl of selected census rows (zllm crawl --select, zllm/crawl.h).
 *
 * Every rank streams OUT/census.tsv and numbers the rows the expression
 * selects (their ordinals); ordinal j belongs to rank j mod size.  A rank
 * asks the info, tree and files (or safetensors headers) of its own repos,
 * 256 at a time, so what it holds is one batch, never the hub's file list.
 * After each batch it appends one line per repo, "ORDINAL\tOK|ERR\tJSON", to
 * its part file (OUT/.zllm/metadata.RUN.RANK.part) and syncs it: a rerun
 * after a kill, on any number of ranks, skips every ordinal with an OK line
 * (repos that failed are asked again).  At the end rank 0 merges the parts
 * by ordinal (one line per part in memory) into metadata.jsonl: the same
 * file for any rank count. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crawl/census_internal.h"
#include "crawl/crawl_internal.h"
#include "zllm/error.h"
#include "zllm/io.h"
#include "zllm/log.h"
#include "zllm/mpi.h"
#include "zllm/path.h"

#define BATCH 256
#define STATE_NAME "select.state"

typedef struct {
  uint8_t *bits;
  size_t cap; /* bytes */
} ordinal_set;

static int set_add(ordinal_set *s, uint64_t j)
{
  if (j / 8 >= s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (j / 8 >= cap)
      cap *= 2;
    uint8_t *v = realloc(s->bits, cap);
    if (!v)
      return zllm_error_set(ZLLM_ENOMEM, "out of memory");
    memset(v + s->cap, 0, cap - s->cap);
    s->bits = v;
    s->cap = cap;
  }
  s->bits[j / 8] |= (uint8_t)(1u << (j % 8));
  return 0;
}

static int set_has(const ordinal_set *s, uint64_t j)
{
  return j / 8 < s->cap && (s->bits[j / 8] >> (j % 8)) & 1;
}

/* ---- what earlier runs did ------------------------------------------------------ */

static char *state_text(const zllm_crawl_options *o, const char *census)
{
  struct stat st;
  char *text = NULL;
  long long size = stat(census, &st) == 0 ? (long long)st.st_size : -1;
  size_t n = strlen(o->select) + 64;
  if ((text = malloc(n)))
    snprintf(text, n, "select\t%s\ncensus_bytes\t%lld\n", o->select, size);
  return text;
}

/* Rank 0: the parts of earlier runs are kept when they were made from the
 * same selection of the same census, else removed.  *complete: an earlier
 * run of this selection ended (metadata.jsonl is its result): nothing to ask. */
static int keep_or_drop_parts(crawl_ctx *c, const char *census, int *complete)
{
  char *path = zllm_path_join(c->state, STATE_NAME), *want = state_text(c->o, census), *have = NULL;
  char *pattern = zllm_path_join(c->state, "metadata.*.part");
  int rc = path && want && pattern ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  size_t len = 0, wlen = want ? strlen(want) : 0;
  int same = rc == 0 && zllm_read_small_file(&have, &len, path, 1 << 20) == 0 && strncmp(have, want, wlen) == 0;
  *complete = same && strcmp(have + wlen, "complete\n") == 0;
  glob_t g = {0};
  if (rc == 0 && !same && glob(pattern, 0, NULL, &g) == 0) {
    if (g.gl_pathc)
      ZLLM_INFO("crawl: another selection or census than the last run's: its %zu part(s) are dropped", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++)
      unlink(g.gl_pathv[i]);
    globfree(&g);
  }
  if (rc == 0 && !same)
    rc = zllm_write_file_atomic(path, want, strlen(want));
  free(path);
  free(want);
  free(have);
  free(pattern);
  return rc;
}

typedef struct {
  FILE *f;
  char *line;
  size_t cap;
  uint64_t ord;
  int ok, live;
} part_cursor;

/* The next whole line of a part: a line a kill cut short (no '\n') is not one. */
static void part_next(part_cursor *p)
{
  ssize_t n;
  while ((n = getline(&p->line, &p->cap, p->f)) > 0) {
    int used = 0;
    char flag[4] = "";
    if (sscanf(p->line, "%" SCNu64 "\t%3[A-Z]\t%n", &p->ord, flag, &used) == 2 && used > 0 && p->line[n - 1] == '\n') {
      p->ok = strcmp(flag, "OK") == 0;
      memmove(p->line, p->line + used, (size_t)n - (size_t)used + 1);
      p->live = 1;
      return;
    }
  }
  p->live = 0;
}

/* The ordinals earlier runs finished well. */
static int load_done(crawl_ctx *c, ordinal_set *done)
{
  char *pattern = zllm_path_join(c->state, "metadata.*.part");
  glob_t g = {0};
  int rc = pattern ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && glob(pattern, 0, NULL, &g) == 0) {
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
      part_cursor p = {fopen(g.gl_pathv[i], "r"), NULL, 0, 0, 0, 0};
      if (!p.f) {
        rc = zllm_error_set_errno("%s", g.gl_pathv[i]);
        break;
      }
      for (part_next(&p); rc == 0 && p.live; part_next(&p))
        rc = p.ok ? set_add(done, p.ord) : 0;
      fclose(p.f);
      free(p.line);
    }
    globfree(&g);
  }
  free(pattern);
  return rc;
}

/* ---- a batch ---------------------------------------------------------------------- */

typedef struct {
  crawl_ctx *c;
  zllm_crawl_stats *total;
  int part_fd;
  char *part_path;
  char *ids[BATCH];
  uint64_t ord[BATCH];
  size_t n;
} batch;

static uint64_t ordinal_of(const batch *b, const char *id)
{
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->ids[i], id) == 0)
      return b->ord[i];
  return UINT64_MAX;
}

static int repo_ok(const cr_repo *r)
{
  if (r->error)
    return 0;
  for (size_t i = 0; i < r->nfiles; i++)
    if (r->files[i].error)
      return 0;
  return 1;
}

static int run_batch(batch *b)
{
  crawl_ctx *c = b->c;
  zllm_buf out = ZLLM_BUF_INIT;
  int rc = b->n ? cr_plan_repos(c, b->ids, b->n) : 0;
  rc = rc || !b->n ? rc : cr_fetch(c);
  for (size_t i = 0; rc == 0 && i < c->nrepos; i++) {
    char *line = cr_metadata_line(&c->repos[i]);
    uint64_t j = ordinal_of(b, c->repos[i].id);
    rc = line ? zllm_buf_printf(&out, "%" PRIu64 "\t%s\t%s\n", j, repo_ok(&c->repos[i]) ? "OK" : "ERR", line) : ZLLM_ENOMEM;
    b->total->repos++;
    b->total->repos_failed += c->repos[i].error != NULL;
    free(line);
  }
  rc = rc || !out.len ? rc : zllm_append_synced(b->part_fd, out.data, out.len, b->part_path);
  zllm_buf_free(&out);
  cr_clear_repos(c);
  for (size_t i = 0; i < b->n; i++)
    free(b->ids[i]);
  b->n = 0;
  return rc;
}

/* ---- the selection, streamed ------------------------------------------------------- */

typedef struct {
  batch *b;
  const zl_select *sel;
  const ordinal_set *done;
  int rank, size;
  uint64_t selected, skipped_done, bad_rows;
  const char *census;
  char *copy; /* ZLLM_CENSUS_MAX_LINE + 1 bytes */
  int rc;
} selector;

static int take_row(void *ctx, const char *line, size_t len, size_t lineno)
{
  selector *s = ctx;
  zllm_census_cols cols;
  int got = zllm_census_take(line, len, lineno, s->census, s->copy, &cols, &s->bad_rows);
  if (got <= 0)
    return got;
  if (!zl_select_match(s->sel, &cols))
    return 0;
  uint64_t j = s->selected++;
  if (j % (uint64_t)s->size != (uint64_t)s->rank)
    return 0;
  if (set_has(s->done, j)) {
    s->skipped_done++;
    return 0;
  }
  batch *b = s->b;
  if (!(b->ids[b->n] = strdup(cols.col[ZLLM_CC_ID])))
    return zllm_error_set(ZLLM_ENOMEM, "out of memory");
  b->ord[b->n++] = j;
  return b->n == BATCH ? run_batch(b) : 0;
}

static int merge_parts(crawl_ctx *c, const char *census);

static char *part_name(const crawl_ctx *c, int rank, long run)
{
  char name[96];
  snprintf(name, sizeof name, "metadata.%ld.%d.part", run, rank);
  return zllm_path_join(c->state, name);
}

int cr_crawl_selected(const zllm_crawl_options *o, zllm_crawl_stats *stats, int rank, int size, MPI_Comm comm)
{
  char ledger[64];
  snprintf(ledger, sizeof ledger, size == 1 ? CR_LEDGER : "verified.%d.tsv", rank);
  crawl_ctx c;
  zllm_crawl_stats total;
  memset(&total, 0, sizeof total);
  zl_select *sel = NULL;
  ordinal_set done = {NULL, 0};
  batch b = {&c, &total, -1, NULL, {0}, {0}, 0};
  char *census = zllm_path_join(o->out, "census.tsv");
  int rc = cr_begin(&c, o, stats, ledger);
  rc = rc ? rc : census ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zl_select_parse(o->select, &sel);
  c.http.pacer.shares = size; /* the ranks split every quota */
  int complete = 0;
  if (rank == 0 && rc == 0)
    rc = keep_or_drop_parts(&c, census, &complete);
  /* one run id for every rank's part: rank 0's clock and pid */
  long run[2] = {(long)time(NULL) % 100000000 * 100000 + getpid() % 100000, complete};
  if (size > 1) {
    MPI_Bcast(run, 2, MPI_LONG, 0, comm);
    rc = zllm_mpi_alltrue(rc == 0, comm) ? rc : rc ? rc : zllm_error_set(ZLLM_EMPI, "crawl: another rank failed");
  }
  if (rc == 0 && run[1]) {
    if (rank == 0)
      ZLLM_INFO("crawl: this selection of this census was crawled to its end: nothing to ask (%s/metadata.jsonl)",
                c.state);
    cr_end(&c);
    free(census);
    zl_select_free(sel);
    return 0;
  }
  rc = rc ? rc : load_done(&c, &done);
  if (rc == 0 && !(b.part_path = part_name(&c, rank, run[0])))
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  if (rc == 0 && (b.part_fd = open(b.part_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
    rc = zllm_error_set(ZLLM_EIO, "%s: %s", b.part_path, strerror(errno));
  selector s = {&b, sel, &done, rank, size, 0, 0, 0, census, malloc(ZLLM_CENSUS_MAX_LINE + 1), 0};
  if (rc == 0 && !s.copy)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  rc = rc ? rc : zllm_read_lines(census, ZLLM_CENSUS_MAX_LINE, take_row, &s);
  rc = rc ? rc : run_batch(&b);
  if (rc == 0 && rank == 0)
    ZLLM_INFO("crawl: %" PRIu64 " repos selected of the census; this rank skipped %" PRIu64
              " done by an earlier run%s", s.selected, s.skipped_done, s.bad_rows ? " (some census rows unreadable)" : "");
  if (b.part_fd >= 0)
    close(b.part_fd);
  int ok = size > 1 ? zllm_mpi_alltrue(rc == 0, comm) : rc == 0;
  if (ok && rank == 0) {
    rc = merge_parts(&c, census);
    rc = rc ? rc : cr_fold_ledgers(&c);
  }
  if (size > 1)
    ok = zllm_mpi_alltrue(rc == 0, comm);
  cr_end(&c);
  stats->repos = total.repos;
  stats->repos_failed = total.repos_failed;
  for (size_t i = 0; i < b.n; i++)
    free(b.ids[i]);
  free(b.part_path);
  free(s.copy);
  free(done.bits);
  free(census);
  zl_select_free(sel);
  if (rc == 0 && !ok)
    rc = zllm_error_set(ZLLM_EMPI, "crawl: another rank failed");
  return rc;
}

/* ---- the merge -------------------------------------------------------------------- */

/* Every part's lines by ordinal; of several lines for one ordinal (a repo
 * that failed, then was asked again) an OK one wins. */
static int merge_parts(crawl_ctx *c, const char *census)
{
  char *pattern = zllm_path_join(c->state, "metadata.*.part"), *out_path = zllm_path_join(c->state, "metadata.jsonl");
  glob_t g = {0};
  int rc = pattern && out_path ? 0 : zllm_error_set(ZLLM_ENOMEM, "out of memory");
  int grc = rc == 0 ? glob(pattern, 0, NULL, &g) : GLOB_NOMATCH;
  size_t n = grc == 0 ? g.gl_pathc : 0;
  part_cursor *p = calloc(n + 1, sizeof *p);
  char *tmp = NULL;
  int fd = -1;
  FILE *out = NULL;
  size_t failed = 0; /* repos whose line says they failed: a rerun asks them again */
  if (rc == 0 && !p)
    rc = zllm_error_set(ZLLM_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (!(p[i].f = fopen(g.gl_pathv[i], "r")))
      rc = zllm_error_set_errno("%s", g.gl_pathv[i]);
    else
      part_next(&p[i]);
  }
  rc = rc ? rc : zllm_tmp_create(AT_FDCWD, out_path, &tmp, &fd);
  if (rc == 0 && !(out = fdopen(fd, "w")))
    rc = zllm_error_set_errno("%s", tmp);
  if (out)
    fd = -1;
  while (rc == 0) {
    size_t best = n;
    for (size_t i = 0; i < n; i++)
      if (p[i].live && (best == n || p[i].ord < p[best].ord || (p[i].ord == p[best].ord && p[i].ok && !p[best].ok)))
        best = i;
    if (best == n)
      break;
    uint64_t ord = p[best].ord;
    failed += !p[best].ok;
    if (fputs(p[best].line, out) == EOF)
      rc = zllm_error_set_errno("%s", tmp);
    for (size_t i = 0; i < n; i++)
      while (p[i].live && p[i].ord == ord)
        part_next(&p[i]);
  }
  if (out && (fflush(out) != 0 || fsync(fileno(out)) != 0) && rc == 0)
    rc = zllm_error_set_errno("%s", tmp);
  if (out && fclose(out) != 0 && rc == 0)
    rc = zllm_error_set_errno("%s", tmp);
  if (fd >= 0)
    close(fd);
  if (rc == 0 && rename(tmp, out_path) < 0)
    rc = zllm_error_set_errno("%s", out_path);
  if (tmp && rc < 0)
    unlink(tmp);
  for (size_t i = 0; i < n; i++) {
    if (p[i].f)
      fclose(p[i].f);
    free(p[i].line);
    if (rc == 0 && failed == 0) /* with failures they stay: a rerun asks only the repos that failed */
      unlink(g.gl_pathv[i]);
  }
  if (rc == 0 && failed == 0) { /* the selection is done: a rerun asks nothing */
    char *state = zllm_path_join(c->state, STATE_NAME), *text = state_text(c->o, census);
    size_t cap = text ? strlen(text) + 16 : 0;
    char *done = cap ? malloc(cap) : NULL;
    if (done)
      snprintf(done, cap, "%scomplete\n", text);
    rc = state && done ? zllm_write_file_atomic(state, done, strlen(done)) : zllm_error_set(ZLLM_ENOMEM, "out of memory");
    free(state);
    free(text);
    free(done);
  }
  if (grc == 0)
    globfree(&g);
  free(p);
  free(tmp);
  free(pattern);
  free(out_path);
  return rc;
}
