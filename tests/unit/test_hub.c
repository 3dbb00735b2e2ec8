/* crawl/: the local hub source in both layouts, and its hostile-input rules. */
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

#include "zllm/error.h"
#include "zllm/hub.h"
#include "zllm/io.h"
#include "zllm/json.h"
#include "tests/unit/unit_files.h"

static char root[256];

static void put(const char *rel, const char *content)
{
  unit_write_at(root, rel, content);
}

static void link_to(const char *target, const char *rel)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  assert_int_equal(symlink(target, path), 0);
}

static int setup(void **state)
{
  (void)state;
  snprintf(root, sizeof root, "/tmp/zllm-test-hub-XXXXXX");
  assert_non_null(mkdtemp(root));
  /* plain layout */
  put("orgA/m1/config.json", "{\"architectures\":[\"LlamaForCausalLM\"],\"torch_dtype\":\"bfloat16\"}");
  put("orgA/m1/README.md", "---\nbase_model: orgA/base\nlicense: mit\n---\nhi\n");
  put("orgA/m1/model.safetensors", "x");
  put("orgA/m1/sub/extra.txt", "e");
  put("orgA/m1/.gitattributes", "*.safetensors filter=lfs\n");
  put("orgA/m1/.git/HEAD", "ref: refs/heads/main\n");
  put("orgB/m2/pytorch_model.bin", "bin");
  put("orgB/m2/weights.gguf", "gguf");
  put("orgB/m2/README.md", "---\nbase_model: [a\n---\n");
  put("orgB/m2/model.safetensors.index.json", "{\"weight_map\": {\"w\": \"../../../etc/passwd\"}}");
  put("orgB/m3/config.json", "{}");
  link_to("/etc/hostname", "orgB/m3/escape.txt");
  link_to("../m2/weights.gguf", "orgB/m3/inside.gguf"); /* stays in the hub: allowed */
  char fifo[1024];
  snprintf(fifo, sizeof fifo, "%s/orgB/m3/pipe", root);
  assert_int_equal(mkfifo(fifo, 0644), 0);
  put("gpt2/config.json", "{}");
  put("datasets--x--y/snapshots/1/data.csv", "a,b");
  put("version.txt", "1");
  /* HF cache layout: refs/main names the snapshot; files link into blobs/ */
  put("models--org--cached/blobs/aaa", "{\"torch_dtype\":\"float16\"}");
  put("models--org--cached/blobs/bbb", "---\nbase_model: org/root\n---\n");
  put("models--org--cached/refs/main", "c0ffee\n");
  put("models--org--cached/snapshots/old/config.json", "{}");
  put("models--org--cached/snapshots/c0ffee/.keep", "");
  link_to("../../blobs/aaa", "models--org--cached/snapshots/c0ffee/config.json");
  link_to("../../blobs/bbb", "models--org--cached/snapshots/c0ffee/README.md");
  link_to("../../blobs/missing", "models--org--cached/snapshots/c0ffee/dangling.bin");
  link_to("../../../models--org--cached/blobs/aaa", "models--org--cached/snapshots/c0ffee/other.json");
  /* no refs/main: the newest snapshot is used, and that is reported */
  put("models--solo--norefs/snapshots/s1/config.json", "{}");
  return 0;
}

static int teardown(void **state)
{
  (void)state;
  return zllm_rm_rf(root);
}

static zllm_repo *load(zllm_source *src, const char *id)
{
  zllm_repo *r = NULL;
  if (zllm_repo_load(&r, src, id) < 0)
    fail_msg("%s: %s", id, zllm_error_last());
  return r;
}

static int has_problem(const zllm_repo *r, const char *needle)
{
  for (size_t i = 0; i < r->nproblems; i++)
    if (strstr(r->problems[i], needle))
      return 1;
  return 0;
}

static void test_crawl_local__lists_both_layouts_sorted(void **state)
{
  (void)state;
  zllm_source *src = NULL;
  char **ids = NULL;
  size_t n = 0;
  assert_int_equal(zllm_source_open_local(&src, root), 0);
  assert_int_equal(zllm_source_list_repos(src, &ids, &n), 0);
  const char *want[] = {"gpt2", "org/cached", "orgA/m1", "orgB/m2", "orgB/m3", "solo/norefs"};
  assert_int_equal(n, sizeof want / sizeof *want);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(ids[i], want[i]);
  zllm_strv_free(ids, n);
  zllm_source_free(src);
}

static void test_crawl_local__plain_repo_files_card_config(void **state)
{
  (void)state;
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, root), 0);
  zllm_repo *r = load(src, "orgA/m1");
  const char *files[] = {".gitattributes", "README.md", "config.json", "model.safetensors", "sub/extra.txt"};
  assert_int_equal(r->nfiles, 5);
  for (size_t i = 0; i < r->nfiles; i++)
    assert_string_equal(r->files[i].path, files[i]);
  assert_int_equal(r->files[3].kind, ZLLM_FILE_SAFETENSORS);
  assert_int_equal(r->files[1].kind, ZLLM_FILE_CARD);
  assert_null(r->revision);
  assert_non_null(r->card);
  assert_string_equal(r->card->base_models[0], "orgA/base");
  assert_string_equal(r->config->torch_dtype, "bfloat16");
  assert_int_equal(r->nproblems, 0);
  zllm_repo_free(r);
  zllm_source_free(src);
}

static void test_crawl_local__opaque_and_bad_metadata_recorded(void **state)
{
  (void)state;
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, root), 0);
  zllm_repo *r = load(src, "orgB/m2");
  assert_int_equal(zllm_repo_find_file(r, "pytorch_model.bin")->kind, ZLLM_FILE_OPAQUE_WEIGHT);
  assert_int_equal(zllm_repo_find_file(r, "weights.gguf")->kind, ZLLM_FILE_OPAQUE_WEIGHT);
  assert_null(r->card);
  assert_null(r->index);
  assert_true(has_problem(r, "orgB/m2/README.md: yaml:"));
  assert_true(has_problem(r, "orgB/m2/model.safetensors.index.json: shard-path:"));
  zllm_repo_free(r);
  zllm_source_free(src);
}

static void test_crawl_local__symlink_escape_and_fifo_skipped(void **state)
{
  (void)state;
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, root), 0);
  zllm_repo *r = load(src, "orgB/m3");
  assert_null(zllm_repo_find_file(r, "escape.txt"));
  assert_null(zllm_repo_find_file(r, "pipe"));
  assert_non_null(zllm_repo_find_file(r, "inside.gguf"));
  assert_true(has_problem(r, "orgB/m3/escape.txt: symlink:"));
  assert_true(has_problem(r, "orgB/m3/pipe: file-type:"));
  zllm_repo_free(r);
  zllm_source_free(src);
}

static void test_crawl_local__hf_cache_snapshot_via_refs_main(void **state)
{
  (void)state;
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, root), 0);
  zllm_repo *r = load(src, "org/cached");
  assert_string_equal(r->revision, "c0ffee");
  assert_non_null(zllm_repo_find_file(r, "config.json"));
  assert_non_null(zllm_repo_find_file(r, "other.json")); /* resolves inside models--org--cached */
  assert_null(zllm_repo_find_file(r, "dangling.bin"));
  assert_true(has_problem(r, "dangling.bin: symlink:"));
  assert_string_equal(r->config->torch_dtype, "float16");
  assert_string_equal(r->card->base_models[0], "org/root");
  zllm_repo_free(r);
  r = load(src, "solo/norefs");
  assert_string_equal(r->revision, "s1");
  assert_int_equal(r->nfiles, 1);
  zllm_repo_free(r);
  zllm_source_free(src);
}

static void test_crawl_local__repo_dir_on_its_own(void **state)
{
  (void)state;
  char dir[512];
  zllm_repo *r = NULL;
  snprintf(dir, sizeof dir, "%s/orgA/m1", root);
  assert_int_equal(zllm_repo_open_dir(&r, dir), 0);
  assert_string_equal(r->id, "orgA/m1");
  assert_int_equal(r->nfiles, 5);
  zllm_repo_free(r);
}

static void check_snapshot(const char *hub, size_t want_repos)
{
  zllm_source *src = NULL;
  char **ids = NULL;
  size_t n = 0;
  assert_int_equal(zllm_source_open_local(&src, hub), 0);
  assert_int_equal(zllm_source_list_repos(src, &ids, &n), 0);
  assert_int_equal(n, want_repos);
  for (size_t i = 0; i < n; i++) {
    zllm_repo *r = load(src, ids[i]);
    if (r->nproblems)
      fail_msg("%s: %s", ids[i], r->problems[0]);
    assert_non_null(r->card);
    zllm_repo_free(r);
  }
  zllm_strv_free(ids, n);
  zllm_source_free(src);
}

static void test_crawl_local__sample_hub_reads_cleanly(void **state)
{
  (void)state;
  check_snapshot(ZLLM_SAMPLE_DIR "/hub", 22);
}

/* A hub of its own in a new temporary directory (the shared fixture's repo
 * count stays as the other tests expect). */
static void own_hub(char *dir, size_t cap)
{
  snprintf(dir, cap, "/tmp/zllm-test-hub2-XXXXXX");
  assert_non_null(mkdtemp(dir));
}


static void test_crawl_local__symlink_loops_listed_once(void **state)
{
  (void)state;
  char dir[256], p[1024];
  own_hub(dir, sizeof dir);
  unit_write_at(dir, "org/loopy/config.json", "{}");
  unit_write_at(dir, "org/loopy/sub/a.txt", "a");
  snprintf(p, sizeof p, "%s/org/loopy/x", dir);
  assert_int_equal(symlink(".", p), 0);
  snprintf(p, sizeof p, "%s/org/loopy/y", dir);
  assert_int_equal(symlink(".", p), 0);
  snprintf(p, sizeof p, "%s/org/loopy/sub/up", dir);
  assert_int_equal(symlink("..", p), 0);
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, dir), 0);
  zllm_repo *r = load(src, "org/loopy");
  assert_int_equal(r->nfiles, 2); /* config.json, sub/a.txt: each once */
  int loops = 0;
  for (size_t i = 0; i < r->nproblems; i++)
    loops += strstr(r->problems[i], ": directory-loop: ") != NULL;
  assert_int_equal(loops, 3);
  zllm_repo_free(r);
  zllm_source_free(src);
  zllm_rm_rf(dir);
}

/* Every way a listed file can change before it is read is ECHANGED. */
static void test_crawl_local__open_refuses_a_changed_file(void **state)
{
  (void)state;
  char dir[256], p[1024], q[1024];
  own_hub(dir, sizeof dir);
  unit_write_at(dir, "org/m/a.bin", "aaaa");
  unit_write_at(dir, "org/m/b.bin", "bbbb");
  unit_write_at(dir, "org/m/c.bin", "cccc");
  unit_write_at(dir, "org/m/d.bin", "dddd");
  unit_write_at(dir, "org/m/e.bin", "eeee");
  unit_write_at(dir, "outside.txt", "SECRET");
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, dir), 0);
  zllm_repo *r = load(src, "org/m");
  assert_int_equal(r->nfiles, 5);
  int fd = -1;
  /* unchanged: opens; rewritten while read: the check after the read says so */
  assert_int_equal(zllm_source_open_file(src, r, &r->files[0], &fd), 0);
  assert_int_equal(zllm_hub_file_check_unchanged(&r->files[0], fd, "a"), 0);
  snprintf(p, sizeof p, "%s/org/m/a.bin", dir);
  FILE *f = fopen(p, "ab");
  assert_non_null(f);
  fputs("more", f);
  fclose(f);
  assert_int_equal(zllm_hub_file_check_unchanged(&r->files[0], fd, "org/m/a.bin"), ZLLM_ECHANGED);
  close(fd);
  /* swapped for a symlink to a file outside the hub */
  snprintf(p, sizeof p, "%s/org/m/b.bin", dir);
  snprintf(q, sizeof q, "%s/outside.txt", dir);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(symlink(q, p), 0);
  assert_int_equal(zllm_source_open_file(src, r, &r->files[1], &fd), ZLLM_ECHANGED);
  assert_int_equal(fd, -1);
  assert_non_null(strstr(zllm_error_last(), "org/m/b.bin: changed since the hub was listed"));
  /* another file of the same size renamed over it (another inode) */
  unit_write_at(dir, "org/m/c.bin", "CCCC");
  assert_int_equal(zllm_source_open_file(src, r, &r->files[2], &fd), ZLLM_ECHANGED);
  /* a FIFO in its place: refused without blocking */
  snprintf(p, sizeof p, "%s/org/m/d.bin", dir);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(mkfifo(p, 0644), 0);
  assert_int_equal(zllm_source_open_file(src, r, &r->files[3], &fd), ZLLM_ECHANGED);
  /* gone */
  snprintf(p, sizeof p, "%s/org/m/e.bin", dir);
  assert_int_equal(unlink(p), 0);
  assert_int_equal(zllm_source_open_file(src, r, &r->files[4], &fd), ZLLM_ECHANGED);
  /* a parent directory swapped for a link: no link is followed on the way */
  snprintf(p, sizeof p, "%s/org/m", dir);
  snprintf(q, sizeof q, "%s/org/m-moved", dir);
  assert_int_equal(rename(p, q), 0);
  assert_int_equal(symlink(q, p), 0);
  assert_int_equal(zllm_source_open_file(src, r, &r->files[0], &fd), ZLLM_ECHANGED);
  zllm_repo_free(r);
  zllm_source_free(src);
  zllm_rm_rf(dir);
}

#ifdef ZLLM_HAVE_CORPUS
/* Registered only when CMake found ../shared/corpus (CI has it; users may not). */
static void test_crawl_local__corpus_reads_cleanly(void **state)
{
  (void)state;
  check_snapshot(ZLLM_CORPUS_DIR "/hub", 16);
  zllm_source *src = NULL;
  assert_int_equal(zllm_source_open_local(&src, ZLLM_CORPUS_DIR "/hub"), 0);
  zllm_repo *r = load(src, "shardco/stories260K-manpages-lr1e-5-sharded");
  assert_non_null(r->index);
  assert_int_equal(r->index->nfiles, 2);
  zllm_repo_free(r);
  r = load(src, "peftlab/finegates-roberta-mrpc");
  assert_string_equal(r->card->base_models[0], "roberta-base");
  assert_string_equal(r->card->library_name, "peft");
  zllm_repo_free(r);
  zllm_source_free(src);
}
#endif

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_crawl_local__lists_both_layouts_sorted),
    cmocka_unit_test(test_crawl_local__plain_repo_files_card_config),
    cmocka_unit_test(test_crawl_local__opaque_and_bad_metadata_recorded),
    cmocka_unit_test(test_crawl_local__symlink_escape_and_fifo_skipped),
    cmocka_unit_test(test_crawl_local__hf_cache_snapshot_via_refs_main),
    cmocka_unit_test(test_crawl_local__repo_dir_on_its_own),
    cmocka_unit_test(test_crawl_local__sample_hub_reads_cleanly),
    cmocka_unit_test(test_crawl_local__symlink_loops_listed_once),
    cmocka_unit_test(test_crawl_local__open_refuses_a_changed_file),
#ifdef ZLLM_HAVE_CORPUS
    cmocka_unit_test(test_crawl_local__corpus_reads_cleanly),
#endif
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
