/* serve/route.c, serve/hubapi.c and serve/tree.c: what a client's request is taken to
 * mean, and the ids the API shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve/serve_internal.h"
#include "zllm/json.h"

/* A repo's tree from its paths alone (LFS-sized files: no archive needed):
 * a folder's children and everything below it, in path order, even where
 * another name sorts between a folder and its contents ("a!b"). */
static void test_tree_slices(void **state)
{
  (void)state;
  static const char *paths[] = {"a/c/d.bin", "a!b.bin", "a/b.bin", "z.bin"};
  zs_repo r;
  memset(&r, 0, sizeof r);
  snprintf(r.name, sizeof r.name, "org/t");
  r.files = calloc(4, sizeof *r.files);
  assert_non_null(r.files);
  for (size_t i = 0; i < 4; i++) {
    r.files[i].path = strdup(paths[i]);
    r.files[i].id = (int64_t)i + 1;
    r.files[i].size = (uint64_t)64 << 20;
  }
  r.nfiles = 4;
  zs_tree *t = NULL;
  assert_int_equal(zs_tree_build(NULL, NULL, &r, 1, &t), 0);
  assert_int_equal(r.nfiles, 0); /* the tree took the files */
  size_t n = 0, end = 0;
  const zs_node *root = zs_tree_find(t, ""), *a = zs_tree_find(t, "a");
  assert_non_null(root);
  assert_non_null(a);
  assert_true(a->is_dir);
  const zs_node *const *kids = zs_tree_children(t, root, &n);
  assert_int_equal(n, 3);
  assert_string_equal(kids[0]->path, "a");
  assert_string_equal(kids[1]->path, "a!b.bin");
  assert_string_equal(kids[2]->path, "z.bin");
  size_t first = zs_tree_below(t, a, &end);
  assert_int_equal(end - first, 3);
  assert_string_equal(zs_tree_node(t, first)->path, "a/b.bin");
  assert_string_equal(zs_tree_node(t, first + 1)->path, "a/c");
  assert_string_equal(zs_tree_node(t, first + 2)->path, "a/c/d.bin");
  assert_null(zs_tree_find(t, "a/c/x"));
  /* a folder's id is git's tree id of its entries; a changed file changes every folder above it */
  uint8_t before[20];
  memcpy(before, a->oid, 20);
  zs_tree_release(NULL, t);
  r.files = calloc(1, sizeof *r.files);
  r.files[0].path = strdup("a/b.bin");
  r.files[0].size = (uint64_t)65 << 20;
  r.nfiles = 1;
  assert_int_equal(zs_tree_build(NULL, NULL, &r, 1, &t), 0);
  assert_memory_not_equal(zs_tree_find(t, "a")->oid, before, 20);
  zs_tree_release(NULL, t);
}

static void test_routes(void **state)
{
  (void)state;
  zs_route r;
  assert_int_equal(zs_route_parse("/api/models", &r), 0);
  assert_int_equal(r.kind, ZS_LIST);
  assert_int_equal(zs_route_parse("/api/models/org/name", &r), 0);
  assert_int_equal(r.kind, ZS_INFO);
  assert_string_equal(r.repo, "org/name");
  assert_string_equal(r.rev, "");
  assert_int_equal(zs_route_parse("/api/models/org/name/revision/main", &r), 0);
  assert_true(r.kind == ZS_INFO && strcmp(r.rev, "main") == 0);
  assert_int_equal(zs_route_parse("/api/models/gpt2/revision/main", &r), 0); /* a repo without an org */
  assert_true(r.kind == ZS_INFO && strcmp(r.repo, "gpt2") == 0);
  assert_int_equal(zs_route_parse("/api/models/org/name/tree/main", &r), 0);
  assert_true(r.kind == ZS_TREE && strcmp(r.path, "") == 0);
  assert_int_equal(zs_route_parse("/api/models/org/name/tree/main/sub/dir", &r), 0);
  assert_true(r.kind == ZS_TREE && strcmp(r.path, "sub/dir") == 0);
  assert_int_equal(zs_route_parse("/api/models/org/name/paths-info/abc", &r), 0);
  assert_true(r.kind == ZS_PATHS_INFO && strcmp(r.rev, "abc") == 0);
  assert_int_equal(zs_route_parse("/org/name/resolve/main/a/b.safetensors", &r), 0);
  assert_true(r.kind == ZS_RESOLVE && strcmp(r.repo, "org/name") == 0 && strcmp(r.path, "a/b.safetensors") == 0);
  assert_int_equal(zs_route_parse("/gpt2/resolve/main/config.json", &r), 0);
  assert_true(r.kind == ZS_RESOLVE && strcmp(r.repo, "gpt2") == 0);

  /* what is refused, and how */
  assert_int_equal(zs_route_parse("/org/name/resolve/main/../x", &r), 400);
  assert_int_equal(zs_route_parse("/org/name/resolve/main/a//b", &r), 400);
  assert_int_equal(zs_route_parse("/org/name/resolve/main/a\\b", &r), 400);
  assert_int_equal(zs_route_parse("/org/name/resolve/main/a\nb", &r), 400);
  assert_int_equal(zs_route_parse("/org/name/resolve/main/", &r), 404);
  assert_int_equal(zs_route_parse("/org/name/resolve/main", &r), 404);
  assert_int_equal(zs_route_parse("/../name/resolve/main/x", &r), 400);
  assert_int_equal(zs_route_parse("/api/models/a--b/c", &r), 400);
  assert_int_equal(zs_route_parse("/api/models/org/name/tree/main/../../x", &r), 400);
  assert_int_equal(zs_route_parse("/api/models/org/name/blame/main", &r), 404);
  assert_int_equal(zs_route_parse("/favicon.ico", &r), 404);
  assert_int_equal(zs_route_parse("", &r), 404);
  assert_int_equal(zs_route_parse("api/models", &r), 404);
  char *long_url = malloc(ZS_URL_MAX + 10);
  assert_non_null(long_url);
  memset(long_url, 'a', ZS_URL_MAX + 9);
  long_url[0] = '/';
  long_url[ZS_URL_MAX + 9] = '\0';
  assert_int_equal(zs_route_parse(long_url, &r), 414);
  memset(long_url, '/', 1000); /* many empty components */
  long_url[1000] = '\0';
  assert_int_not_equal(zs_route_parse(long_url, &r), 0);
  free(long_url);
}

static void test_ranges(void **state)
{
  (void)state;
  uint64_t lo = 0, hi = 0;
  assert_int_equal(zs_range_parse(NULL, 100, &lo, &hi), 0);
  assert_int_equal(zs_range_parse("bytes=0-0", 100, &lo, &hi), 1);
  assert_true(lo == 0 && hi == 0);
  assert_int_equal(zs_range_parse("bytes=10-", 100, &lo, &hi), 1);
  assert_true(lo == 10 && hi == 99);
  assert_int_equal(zs_range_parse("bytes=10-1000", 100, &lo, &hi), 1); /* cut to the end */
  assert_true(lo == 10 && hi == 99);
  assert_int_equal(zs_range_parse("bytes=-5", 100, &lo, &hi), 1);
  assert_true(lo == 95 && hi == 99);
  assert_int_equal(zs_range_parse("bytes=-500", 100, &lo, &hi), 1);
  assert_true(lo == 0 && hi == 99);
  assert_int_equal(zs_range_parse("bytes=100-", 100, &lo, &hi), -1);
  assert_int_equal(zs_range_parse("bytes=-0", 100, &lo, &hi), -1);
  assert_int_equal(zs_range_parse("bytes=0-", 0, &lo, &hi), -1);
  /* ignored: the whole file */
  assert_int_equal(zs_range_parse("bytes=5-4", 100, &lo, &hi), 0);
  assert_int_equal(zs_range_parse("bytes=0-1,3-4", 100, &lo, &hi), 0);
  assert_int_equal(zs_range_parse("items=0-1", 100, &lo, &hi), 0);
  assert_int_equal(zs_range_parse("bytes=a-b", 100, &lo, &hi), 0);
  assert_int_equal(zs_range_parse("bytes=99999999999999999999999-", 100, &lo, &hi), 0);
  assert_int_equal(zs_range_parse("bytes=", 100, &lo, &hi), 0);
}

static void test_paths_info_bodies(void **state)
{
  (void)state;
  char **p = NULL;
  size_t n = 0;
  const char *json = "{\"paths\": [\"config.json\", \"a/b.bin\"], \"expand\": true}";
  assert_int_equal(zs_paths_parse(json, strlen(json), 0, &p, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(p[1], "a/b.bin");
  zllm_strv_free(p, n);
  const char *form = "paths=config.json&expand=True&paths=a%2Fb+c.bin";
  assert_int_equal(zs_paths_parse(form, strlen(form), 1, &p, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(p[1], "a/b c.bin");
  zllm_strv_free(p, n);
  assert_int_equal(zs_paths_parse("{\"paths\": 3}", 12, 0, &p, &n), 400);
  assert_int_equal(zs_paths_parse("[", 1, 0, &p, &n), 400);
  assert_int_equal(zs_paths_parse("paths=%zz", 9, 1, &p, &n), 400);
  assert_int_equal(zs_paths_parse("paths=%00", 9, 1, &p, &n), 400);
  assert_null(p);
}

static void test_lfs_and_pointers(void **state)
{
  (void)state;
  assert_true(zs_is_lfs("model.safetensors", 10));
  assert_true(zs_is_lfs("sub/pytorch_model.bin", 10));
  assert_true(zs_is_lfs("tokenizer.json", 20 << 20)); /* large: LFS whatever the name */
  assert_false(zs_is_lfs("config.json", 1000));
  assert_false(zs_is_lfs("README.md", 1000));
  zllm_archive_file f = {0};
  f.size = 1234;
  memset(f.sha256, 0xab, 32);
  char ptr[200];
  size_t n = zs_lfs_pointer(&f, ptr, sizeof ptr);
  assert_int_equal(n, strlen(ptr));
  assert_string_equal(ptr, "version https://git-lfs.github.com/spec/v1\n"
                           "oid sha256:abababababababababababababababababababababababababababababababab\n"
                           "size 1234\n");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routes),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_paths_info_bodies),
      cmocka_unit_test(test_lfs_and_pointers),
      cmocka_unit_test(test_tree_slices),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
