/* pack/merge_ranks.c under mpiexec (1 and 3 ranks): a generated hub (every
 * relation a hub has: fine-tunes, re-uploads, shared files) packed in
 * shares, repo i by rank i mod N (so fine-tunes meet extern bases and
 * copies land in other shares), then merged by the ranks.  Every catalog
 * row, blobs' places included, must be the one the serial merge writes from
 * copies of the same shares; also with 2-bit hash keys (every key collides,
 * each hit confirmed by the bytes).  A rank that fails its part, or a
 * destination that is not empty, fails the call on every rank before
 * anything is written (fallback 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <mpi.h>
#include <sqlite3.h>

#include "zllm/archive.h"
#include "zllm/buf.h"
#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "zllm/path.h"
#include "zllm/synth.h"

static char root[256];
static int rank, size;

static int setup(void **state)
{
  (void)state;
  if (rank == 0) {
    snprintf(root, sizeof root, "/tmp/zllm-test-merge-XXXXXX");
    assert_non_null(mkdtemp(root));
    zllm_mkhub_options mo = ZLLM_MKHUB_OPTIONS_INIT;
    mo.seed = 5;
    mo.scale = "tiny";
    mo.out = root;
    assert_int_equal(zllm_mkhub(&mo), 0);
  }
  MPI_Bcast(root, sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    zllm_rm_rf(root);
  return 0;
}

static char *at(const char *tag, const char *name, int k)
{
  char rel[128];
  snprintf(rel, sizeof rel, k < 0 ? "%s/%s" : "%s/%s-%d", tag, name, k);
  char *p = zllm_path_join(root, rel);
  assert_non_null(p);
  return p;
}

static int claim_modulo(void *ctx, size_t repo, int *mine)
{
  (void)ctx;
  *mine = repo % (size_t)size == (size_t)rank;
  return 0;
}

typedef struct {
  zllm_hub *hub;
  zllm_base_map *bases;
  zllm_pack_options po;
  char **order, **stages, **copies;
  size_t norder;
} shares;

/* Every rank packs its repos into TAG/stage-<rank>; rank 0 copies every
 * share to TAG/copy-<k> for the serial merge (the merges move pack files). */
static void pack_shares(shares *s, const char *tag)
{
  zllm_bases_options bo = ZLLM_BASES_OPTIONS_INIT;
  zllm_pack_stats st;
  zllm_archive *a = NULL;
  char *hub = zllm_path_join(root, "hub");
  memset(s, 0, sizeof *s);
  assert_int_equal(zllm_hub_open_local(&s->hub, hub), 0);
  bo.hub = s->hub;
  assert_int_equal(zllm_bases_choose(&s->bases, &bo), 0);
  s->po = (zllm_pack_options)ZLLM_PACK_OPTIONS_INIT;
  s->po.hub = s->hub;
  s->po.bases = s->bases;
  assert_int_equal(zllm_pack_order(&s->po, &s->order, &s->norder), 0);
  s->po.claim = claim_modulo;
  s->stages = calloc((size_t)size, sizeof *s->stages);
  s->copies = calloc((size_t)size, sizeof *s->copies);
  for (int k = 0; k < size; k++) {
    s->stages[k] = at(tag, "stage", k);
    s->copies[k] = at(tag, "copy", k);
  }
  assert_int_equal(zllm_archive_open(&a, s->stages[rank], 1), 0);
  assert_int_equal(zllm_pack_hub(a, &s->po, &st), 0);
  zllm_archive_close(a);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int k = 0; rank == 0 && k < size; k++) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", s->stages[k], s->copies[k]);
    assert_int_equal(system(cmd), 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  free(hub);
}

static void free_shares(shares *s)
{
  zllm_strv_free(s->order, s->norder);
  zllm_strv_free(s->stages, (size_t)size);
  zllm_strv_free(s->copies, (size_t)size);
  zllm_base_map_free(s->bases);
  zllm_hub_free(s->hub);
}

/* Every row of every table, in id order, as text. */
static char *dump(const char *dir, size_t *rows)
{
  static const char *sql[] = {
      "SELECT * FROM packs ORDER BY id", "SELECT * FROM blobs ORDER BY id", "SELECT * FROM repos ORDER BY id",
      "SELECT * FROM files ORDER BY id", "SELECT * FROM pieces ORDER BY file, seq",
      "SELECT * FROM tensors ORDER BY id", "SELECT * FROM parts ORDER BY tensor, part"};
  char *path = zllm_path_join(dir, "catalog.sqlite");
  sqlite3 *db = NULL;
  zllm_buf b = ZLLM_BUF_INIT;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  *rows = 0;
  for (size_t q = 0; q < sizeof sql / sizeof *sql; q++) {
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql[q], -1, &st, NULL), SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); c++) {
        const unsigned char *v = sqlite3_column_type(st, c) == SQLITE_BLOB ? NULL : sqlite3_column_text(st, c);
        if (sqlite3_column_type(st, c) == SQLITE_BLOB) /* hashes: hex */
          for (int i = 0; i < sqlite3_column_bytes(st, c); i++)
            zllm_buf_printf(&b, "%02x", ((const unsigned char *)sqlite3_column_blob(st, c))[i]);
        else
          zllm_buf_puts(&b, v ? (const char *)v : "NULL");
        zllm_buf_puts(&b, "|");
      }
      zllm_buf_puts(&b, "\n");
      (*rows)++;
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  free(path);
  return b.data;
}

/* The ranks' merge into TAG/ranks and rank 0's serial merge of the copies
 * into TAG/serial hold the same rows. */
static void merge_both_ways(const char *tag)
{
  shares s;
  pack_shares(&s, tag);
  char *ranks = at(tag, "ranks", -1), *serial = at(tag, "serial", -1), *shard = zllm_path_join(root, tag);
  zllm_archive *dst = NULL;
  int fallback = -1;
  if (rank == 0)
    assert_int_equal(zllm_archive_open(&dst, ranks, 1), 0);
  assert_int_equal(zllm_archive_merge_ranks(dst, s.stages, shard, s.order, s.norder, &fallback, MPI_COMM_WORLD), 0);
  assert_int_equal(fallback, 0);
  if (rank == 0) {
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(zllm_archive_verify(dst, devnull), 0);
    fclose(devnull);
    zllm_archive_close(dst);
    zllm_archive **src = calloc((size_t)size, sizeof *src);
    assert_int_equal(zllm_archive_open(&dst, serial, 1), 0);
    for (int k = 0; k < size; k++)
      assert_int_equal(zllm_archive_open(&src[k], s.copies[k], 0), 0);
    assert_int_equal(zllm_archive_merge(dst, src, (size_t)size, s.order, s.norder), 0);
    for (int k = 0; k < size; k++)
      zllm_archive_close(src[k]);
    zllm_archive_close(dst);
    free(src);
    size_t na = 0, nb = 0;
    char *a = dump(ranks, &na), *b = dump(serial, &nb);
    assert_true(na > 100);
    assert_int_equal(na, nb);
    assert_string_equal(a, b);
    free(a);
    free(b);
  }
  free(ranks);
  free(serial);
  free(shard);
  free_shares(&s);
}

static void test_merge_ranks__same_rows_as_serial(void **state)
{
  (void)state;
  merge_both_ways("plain");
}

static void test_merge_ranks__every_key_collides(void **state)
{
  (void)state;
  setenv("ZLLM_TEST_HASH_BITS", "2", 1);
  merge_both_ways("collide");
  unsetenv("ZLLM_TEST_HASH_BITS");
}

/* A failed part or a destination with repos: every rank is told, nothing is written. */
static void test_merge_ranks__fails_before_writing(void **state)
{
  (void)state;
  shares s;
  pack_shares(&s, "fail");
  char *dir = at("fail", "ranks", -1), *shard = zllm_path_join(root, "fail"), who[16];
  zllm_archive *dst = NULL;
  int fallback = 0;
  if (rank == 0)
    assert_int_equal(zllm_archive_open(&dst, dir, 1), 0);
  snprintf(who, sizeof who, "%d", size - 1);
  setenv("ZLLM_TEST_MERGE_FAIL", who, 1);
  assert_int_not_equal(zllm_archive_merge_ranks(dst, s.stages, shard, s.order, s.norder, &fallback, MPI_COMM_WORLD), 0);
  unsetenv("ZLLM_TEST_MERGE_FAIL");
  assert_int_equal(fallback, 1);
  if (rank == 0)
    assert_int_equal(zllm_archive_has_repo(dst, s.order[0]), 0);
  /* the shares are untouched: the merge now succeeds, and again into the same archive it is refused */
  assert_int_equal(zllm_archive_merge_ranks(dst, s.stages, shard, s.order, s.norder, &fallback, MPI_COMM_WORLD), 0);
  if (rank == 0)
    assert_int_equal(zllm_archive_has_repo(dst, s.order[0]), 1);
  assert_int_not_equal(zllm_archive_merge_ranks(dst, s.stages, shard, s.order, s.norder, &fallback, MPI_COMM_WORLD), 0);
  assert_int_equal(fallback, 1);
  if (rank == 0)
    assert_non_null(strstr(zllm_error_last(), "not empty"));
  zllm_archive_close(dst);
  free(dir);
  free(shard);
  free_shares(&s);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_merge_ranks__same_rows_as_serial),
      cmocka_unit_test(test_merge_ranks__every_key_collides),
      cmocka_unit_test(test_merge_ranks__fails_before_writing),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed;
}
