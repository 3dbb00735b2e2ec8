/* crawl/hub_split.c under mpiexec (3 ranks): the split listing is the whole
 * listing, repo by repo (files, identities, revision, problems, the parsed
 * small files, and why a repo could not be listed), every rank sees every
 * repo's summary, each repo is listed once, and nothing of the store is
 * left after the hub is freed. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <mpi.h>

#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "tests/unit/unit_files.h"

static char root[256], store[300];
static int rank, size;

static void put(const char *rel, const char *content)
{
  unit_write_at(root, rel, content);
}

/* Rank 0 makes a small hostile hub; every rank gets its path. */
static int setup(void **state)
{
  (void)state;
  if (rank == 0) {
    snprintf(root, sizeof root, "/tmp/zllm-test-split-XXXXXX");
    assert_non_null(mkdtemp(root));
    put("orgA/m1/config.json", "{\"architectures\":[\"LlamaForCausalLM\"],\"torch_dtype\":\"bfloat16\"}");
    put("orgA/m1/README.md", "---\nbase_model: orgA/base\nlicense: mit\n---\nhi\n");
    put("orgA/m1/model.safetensors", "x");
    put("orgA/m1/sub/extra.txt", "e");
    put("orgB/m2/README.md", "---\nbase_model: [a\n---\n"); /* a problem line */
    put("orgB/m2/model.safetensors.index.json", "{\"weight_map\": {\"w\": \"../../../etc/passwd\"}}");
    put("orgB/m3/config.json", "{}");
    put("models--org--cached/blobs/aaa", "{\"torch_dtype\":\"float16\"}");
    put("models--org--cached/refs/main", "c0ffee\n");
    put("models--org--cached/snapshots/c0ffee/config.json", "{}");
    put("models--org--empty/blobs/x", "x"); /* no snapshot at all: it cannot be listed */
    put(".zllm/metadata.jsonl", "{\"id\":\"orgB/m3\",\"sha\":\"0123456789abcdef0123456789abcdef01234567\","
                                "\"createdAt\":\"2024-01-02T03:04:05.000Z\"}\n");
    snprintf(store, sizeof store, "%s-store", root);
    assert_int_equal(zllm_mkdir_p(store, 0755), 0);
  }
  MPI_Bcast(root, sizeof root, MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(store, sizeof store, MPI_CHAR, 0, MPI_COMM_WORLD);
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    zllm_rm_rf(root);
    zllm_rm_rf(store);
  }
  return 0;
}

typedef struct {
  size_t calls, failed;
  char seen[64];
} each_count;

static int count_each(void *ctx, size_t i, const char *id, const zllm_repo *repo, const char *why)
{
  each_count *c = ctx;
  assert_true(i < sizeof c->seen);
  assert_non_null(id);
  assert_true(repo ? why == NULL && strcmp(repo->id, id) == 0 : why != NULL);
  c->seen[i]++;
  c->calls++;
  c->failed += repo == NULL;
  return 0;
}

static void same_str(const char *a, const char *b)
{
  assert_true((a == NULL) == (b == NULL));
  if (a)
    assert_string_equal(a, b);
}

static void same_repo(const zllm_repo *a, const zllm_repo *b)
{
  assert_string_equal(a->id, b->id);
  same_str(a->revision, b->revision);
  assert_int_equal(a->created, b->created);
  assert_int_equal(a->nfiles, b->nfiles);
  for (size_t f = 0; f < a->nfiles; f++) {
    assert_string_equal(a->files[f].path, b->files[f].path);
    assert_string_equal(a->files[f].local_path, b->files[f].local_path);
    assert_int_equal(a->files[f].size, b->files[f].size);
    assert_int_equal(a->files[f].kind, b->files[f].kind);
    assert_int_equal(a->files[f].ident.ino, b->files[f].ident.ino);
    assert_int_equal(a->files[f].ident.mtime_ns, b->files[f].ident.mtime_ns);
  }
  assert_int_equal(a->nproblems, b->nproblems);
  for (size_t p = 0; p < a->nproblems; p++)
    assert_string_equal(a->problems[p], b->problems[p]);
  assert_true((a->config == NULL) == (b->config == NULL));
  if (a->config)
    same_str(a->config->torch_dtype, b->config->torch_dtype);
  assert_true((a->card == NULL) == (b->card == NULL));
  assert_true((a->index == NULL) == (b->index == NULL));
}

static int entries(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)))
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
  closedir(d);
  return n;
}

static void check_against_whole(const char *dir)
{
  zllm_hub *whole = NULL, *split = NULL;
  each_count c = {0};
  assert_int_equal(zllm_hub_open_local(&whole, dir), 0);
  int rc = zllm_hub_open_local_split(&split, dir, store, count_each, &c, MPI_COMM_WORLD);
  assert_int_equal(rc, 0);
  assert_int_equal(split->n, whole->n);
  /* each repo listed once, by one rank */
  char seen[64];
  MPI_Allreduce(c.seen, seen, (int)sizeof seen, MPI_CHAR, MPI_SUM, MPI_COMM_WORLD);
  for (size_t i = 0; i < whole->n; i++)
    assert_int_equal(seen[i], 1);
  for (size_t i = 0; i < whole->n; i++) {
    const zllm_hub_info *a = &whole->info[i], *b = &split->info[i];
    const zllm_repo *r = NULL;
    assert_string_equal(split->ids[i], whole->ids[i]);
    assert_int_equal(b->listed, a->listed);
    assert_int_equal(b->nfiles, a->nfiles);
    assert_int_equal(b->bytes, a->bytes);
    assert_int_equal(b->st_bytes, a->st_bytes);
    same_str(b->card_base, a->card_base);
    assert_null(split->repos[i]); /* no rank holds a repo it does not use */
    if (!whole->repos[i]) { /* why, as the whole listing says */
      assert_int_not_equal(zllm_hub_get(split, i, &r), 0);
      assert_string_equal(zllm_error_last(), whole->failed[i]);
      continue;
    }
    assert_int_equal(zllm_hub_get(split, i, &r), 0);
    same_repo(r, whole->repos[i]);
    const zllm_repo *again = NULL;
    assert_int_equal(zllm_hub_get(split, i, &again), 0);
    assert_ptr_equal(again, r); /* a second get shares the first's */
    zllm_hub_put(split, i);
    assert_non_null(split->repos[i]);
    zllm_hub_put(split, i);
    assert_null(split->repos[i]); /* the last put lets it go */
  }
  zllm_hub_free(split);
  zllm_hub_free(whole);
  MPI_Barrier(MPI_COMM_WORLD);
  assert_int_equal(entries(store), 0); /* every rank removed its part of the store */
}

static void test_split__hostile_hub_matches_whole(void **state)
{
  (void)state;
  check_against_whole(root);
}

static void test_split__sample_hub_matches_whole(void **state)
{
  (void)state;
  check_against_whole(ZLLM_SAMPLE_DIR "/hub");
}

/* A root that cannot be read: the same error on every rank, no rank left
 * waiting in a collective. */
static void test_split__missing_root_fails_everywhere(void **state)
{
  (void)state;
  zllm_hub *h = (zllm_hub *)1;
  char missing[400];
  snprintf(missing, sizeof missing, "%s/no-such-hub", root);
  assert_int_not_equal(zllm_hub_open_local_split(&h, missing, store, NULL, NULL, MPI_COMM_WORLD), 0);
  assert_null(h);
  if (rank == 0)
    assert_non_null(strstr(zllm_error_last(), "no-such-hub"));
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_split__hostile_hub_matches_whole),
    cmocka_unit_test(test_split__sample_hub_matches_whole),
    cmocka_unit_test(test_split__missing_root_fails_everywhere),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed;
}
