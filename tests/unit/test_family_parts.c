/* cluster/parts.c under mpiexec (1 and 3 ranks): the family table split
 * over the ranks.  Each rank's part must be its home block of the table
 * one process makes (zllm_cluster_hub), row for row; rows asked of their
 * homes, the table gathered on one rank or on all, and every repo's family
 * root must be that table's too; a question no home can answer fails the
 * call on every rank. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mpi.h>

#include "zllm/cluster.h"
#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/path.h"
#include "zllm/synth.h"

static char root[256];
static int rank, size;
static zllm_hub *hub;
static zllm_family_table *whole, *part;

static int setup(void **state)
{
  (void)state;
  if (rank == 0) {
    snprintf(root, sizeof root, "/tmp/zllm-test-parts-XXXXXX");
    assert_non_null(mkdtemp(root));
    zllm_mkhub_options mo = ZLLM_MKHUB_OPTIONS_INIT;
    mo.seed = 7;
    mo.scale = "small";
    mo.out = root;
    assert_int_equal(zllm_mkhub(&mo), 0);
  }
  MPI_Bcast(root, sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
  char *dir = zllm_path_join(root, "hub");
  zllm_cluster_options co = ZLLM_CLUSTER_OPTIONS_INIT;
  assert_int_equal(zllm_hub_open_local(&hub, dir), 0);
  assert_int_equal(zllm_cluster_hub(&whole, hub, &co), 0);
  assert_int_equal(zllm_cluster_hub_owned(&part, hub, &co, NULL, NULL, MPI_COMM_WORLD), 0);
  free(dir);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  zllm_family_table_free(part);
  zllm_family_table_free(whole);
  zllm_hub_free(hub);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    zllm_rm_rf(root);
  return 0;
}

static void same_text(const char *a, const char *b)
{
  if (!a || !b)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

static void same_row(const zllm_family_row *a, const zllm_family_row *b)
{
  assert_string_equal(a->repo, b->repo);
  same_text(a->family, b->family);
  same_text(a->base, b->base);
  same_text(a->declared_base, b->declared_base);
  same_text(a->reason, b->reason);
  assert_memory_equal(&a->distance, &b->distance, sizeof a->distance);
  assert_memory_equal(&a->identical, &b->identical, sizeof a->identical);
  assert_memory_equal(&a->cost, &b->cost, sizeof a->cost);
  assert_int_equal(a->decision, b->decision);
  assert_int_equal(a->created, b->created);
}

static void test_homes_cover_the_hub(void **state)
{
  (void)state;
  size_t ns[] = {0, 1, 2, 5, 17, 1000};
  for (size_t k = 0; k < sizeof ns / sizeof *ns; k++)
    for (int s = 1; s <= 7; s++) {
      size_t next = 0, lo, hi;
      for (int r = 0; r < s; r++) {
        zllm_family_part_range(ns[k], s, r, &lo, &hi);
        assert_int_equal(lo, next); /* blocks follow one another in rank order */
        assert_true(hi >= lo && hi - lo <= ns[k] / (size_t)s + 1);
        for (size_t i = lo; i < hi; i++)
          assert_int_equal(zllm_family_part_home(i, ns[k], s), r);
        next = hi;
      }
      assert_int_equal(next, ns[k]);
    }
}

static void test_part_is_the_home_block(void **state)
{
  (void)state;
  size_t lo, hi;
  zllm_family_part_range(hub->n, size, rank, &lo, &hi);
  assert_true(hub->n >= 10);
  assert_int_equal(whole->n, hub->n);
  assert_int_equal(part->first, lo);
  assert_int_equal(part->n, hi - lo);
  assert_int_equal(part->total, hub->n);
  assert_int_equal(part->nfamilies, whole->nfamilies);
  assert_true(whole->nfamilies < whole->n); /* the hub has families: the test can see a wrong root */
  for (size_t i = 0; i < part->n; i++)
    same_row(&part->rows[i], &whole->rows[lo + i]);
}

static void test_rows_asked_of_their_homes(void **state)
{
  (void)state;
  size_t *want = calloc(hub->n + 2, sizeof *want), n = 0;
  assert_non_null(want);
  for (size_t i = 0; rank != 1 && i < hub->n; i++) /* rank 1 asks nothing: it still takes part */
    if ((i * 7 + (size_t)rank) % 3 == 0)
      want[n++] = hub->n - 1 - i; /* out of order */
  if (n)
    want[n++] = want[0]; /* a repeat */
  zllm_family_table *got = NULL;
  assert_int_equal(zllm_family_rows_ask(&got, part, want, n, MPI_COMM_WORLD), 0);
  assert_int_equal(got->n, n);
  assert_int_equal(got->total, hub->n);
  for (size_t k = 0; k < n; k++) {
    const zllm_family_row *r = zllm_family_table_find(got, hub->ids[want[k]]);
    assert_non_null(r);
    same_row(r, &whole->rows[want[k]]);
  }
  zllm_family_table_free(got);
  free(want);
}

static void test_a_question_no_home_answers_fails_everywhere(void **state)
{
  (void)state;
  size_t bad = hub->n + 3;
  zllm_family_table *got = NULL;
  int rc = zllm_family_rows_ask(&got, part, &bad, rank == size - 1 ? 1 : 0, MPI_COMM_WORLD);
  assert_true(rc < 0);
  assert_null(got);
  if (rank == size - 1)
    assert_non_null(strstr(zllm_error_last(), "asked for"));
}

static void test_whole_table_gathered(void **state)
{
  (void)state;
  for (int where = -1; where < size; where += size > 1 ? size : 1) { /* on every rank, then on rank `where` */
    zllm_family_table *t = NULL;
    assert_int_equal(zllm_family_table_share(&t, part, where, MPI_COMM_WORLD), 0);
    if (where >= 0 && rank != where) {
      assert_null(t);
      continue;
    }
    assert_non_null(t);
    assert_int_equal(t->n, whole->n);
    for (size_t i = 0; i < t->n; i++)
      same_row(&t->rows[i], &whole->rows[i]);
    zllm_family_table_free(t);
  }
}

static void test_family_roots_everywhere(void **state)
{
  (void)state;
  uint32_t *roots = NULL;
  assert_int_equal(zllm_family_roots(&roots, part, hub, MPI_COMM_WORLD), 0);
  size_t joined = 0;
  for (size_t i = 0; i < hub->n; i++) {
    const char *f = whole->rows[i].family;
    long want = f && strcmp(f, "-") != 0 ? zllm_hub_find(hub, f) : (long)i;
    assert_int_equal(roots[i], (uint32_t)want);
    joined += roots[i] != i;
  }
  assert_true(joined > 0);
  free(roots);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_homes_cover_the_hub),
      cmocka_unit_test(test_part_is_the_home_block),
      cmocka_unit_test(test_rows_asked_of_their_homes),
      cmocka_unit_test(test_a_question_no_home_answers_fails_everywhere),
      cmocka_unit_test(test_whole_table_gathered),
      cmocka_unit_test(test_family_roots_everywhere),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed;
}
