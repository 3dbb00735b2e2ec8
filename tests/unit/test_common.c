/* common/: errors, buffers, hashing, paths, binary records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "zllm/buf.h"
#include "zllm/error.h"
#include "zllm/hash.h"
#include "zllm/io.h"
#include "zllm/parallel.h"
#include "zllm/path.h"

static void test_common_error__set_returns_code_and_escapes(void **state)
{
  (void)state;
  assert_int_equal(zllm_error_set(ZLLM_EFORMAT, "%s: rule: bad", "x\ny\tz\x1b"), ZLLM_EFORMAT);
  assert_string_equal(zllm_error_last(), "x\\x0ay\\x09z\\x1b: rule: bad");
  assert_int_equal(zllm_error_last_code(), ZLLM_EFORMAT);
  assert_string_equal(zllm_error_name(ZLLM_EFORMAT), "EFORMAT");
  zllm_error_clear();
  assert_string_equal(zllm_error_last(), "");
}

static void test_common_error__prefix_keeps_code(void **state)
{
  (void)state;
  zllm_error_set(ZLLM_ELIMIT, "too big");
  assert_int_equal(zllm_error_prefix("file %d", 3), ZLLM_ELIMIT);
  assert_string_equal(zllm_error_last(), "file 3: too big");
}

static void test_common_buf__tsv_escaping(void **state)
{
  (void)state;
  zllm_buf b = ZLLM_BUF_INIT;
  assert_int_equal(zllm_buf_put_tsv(&b, "a\tb\nc\\d\x01"), 0);
  assert_string_equal(b.data, "a\\tb\\nc\\\\d\\x01");
  zllm_buf_free(&b);
}

static void test_common_buf__records_round_trip_and_truncation(void **state)
{
  (void)state;
  zllm_buf b = ZLLM_BUF_INIT;
  assert_int_equal(zllm_buf_put_u64(&b, 0x0102030405060708ULL), 0);
  assert_int_equal(zllm_buf_put_str(&b, "hello"), 0);
  zllm_reader r = {b.data, b.len};
  uint64_t v;
  char *s;
  assert_int_equal(zllm_reader_u64(&r, &v), 0);
  assert_true(v == 0x0102030405060708ULL);
  assert_int_equal(zllm_reader_str(&r, &s), 0);
  assert_string_equal(s, "hello");
  free(s);
  assert_int_equal(r.left, 0);
  /* a record cut short is an error, never an overread */
  zllm_reader cut = {b.data, b.len - 2};
  assert_int_equal(zllm_reader_u64(&cut, &v), 0);
  assert_int_equal(zllm_reader_str(&cut, &s), ZLLM_EFORMAT);
  zllm_buf_free(&b);
}

/* Reference values: sha256sum and xxhsum -H2 (xxhash 0.8.1). */
static void test_common_hash__known_vectors(void **state)
{
  (void)state;
  zllm_sha256 sha;
  zllm_xxh128 x;
  char hex[65];
  assert_int_equal(zllm_sha256_buf(&sha, "abc", 3), 0);
  zllm_hex(hex, sha.b, 32);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  zllm_xxh128_buf(&x, "", 0);
  zllm_hex(hex, x.b, 16);
  assert_string_equal(hex, "99aa06d3014798d86001c324468d497f");
  zllm_xxh128_buf(&x, "abc", 3);
  zllm_hex(hex, x.b, 16);
  assert_string_equal(hex, "06b05ab6733a618578af5f94892f3950");
}

static void test_common_hash__streaming_equals_one_shot(void **state)
{
  (void)state;
  static uint8_t data[100000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 7 + (i >> 8));
  zllm_sha256_ctx *sc;
  zllm_xxh128_ctx *xc;
  zllm_sha256 s1, s2;
  zllm_xxh128 x1, x2;
  assert_int_equal(zllm_sha256_ctx_new(&sc), 0);
  assert_int_equal(zllm_xxh128_ctx_new(&xc), 0);
  for (size_t off = 0; off < sizeof data; off += 4099) {
    size_t n = sizeof data - off < 4099 ? sizeof data - off : 4099;
    zllm_sha256_ctx_update(sc, data + off, n);
    zllm_xxh128_ctx_update(xc, data + off, n);
  }
  assert_int_equal(zllm_sha256_ctx_final(sc, &s1), 0);
  zllm_xxh128_ctx_final(xc, &x1);
  zllm_sha256_buf(&s2, data, sizeof data);
  zllm_xxh128_buf(&x2, data, sizeof data);
  assert_memory_equal(s1.b, s2.b, 32);
  assert_memory_equal(x1.b, x2.b, 16);
  zllm_sha256_ctx_free(sc);
  zllm_xxh128_ctx_free(xc);
}

static void test_common_hash__unhex(void **state)
{
  (void)state;
  uint8_t b[2];
  assert_int_equal(zllm_unhex(b, 2, "0aFf"), 0);
  assert_int_equal(b[0], 0x0a);
  assert_int_equal(b[1], 0xff);
  assert_int_equal(zllm_unhex(b, 2, "0aF"), ZLLM_EFORMAT);
  assert_int_equal(zllm_unhex(b, 2, "0aFf0"), ZLLM_EFORMAT);
  assert_int_equal(zllm_unhex(b, 2, "zz00"), ZLLM_EFORMAT);
}

static void test_common_path__relative_rules(void **state)
{
  (void)state;
  assert_int_equal(zllm_path_check_relative("model.safetensors", "t"), 0);
  assert_int_equal(zllm_path_check_relative("onnx/model.onnx", "t"), 0);
  assert_int_equal(zllm_path_check_relative("..data", "t"), 0); /* a name, not a component */
  const char *bad[] = {"", "/etc/passwd", "../x", "a/../b", "a/./b", "a//b", "a\\b", "a\x01", "a/", ".."};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(zllm_path_check_relative(bad[i], "t"), ZLLM_EUNSAFE);
  /* a component longer than NAME_MAX cannot be created at restore */
  char longname[300];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(zllm_path_check_relative(longname, "t"), ZLLM_EUNSAFE);
  longname[255] = '\0';
  assert_int_equal(zllm_path_check_relative(longname, "t"), 0);
}

/* A planted symlink at a temporary name is never written through, and the
 * beneath-walk refuses a directory symlink unless told to follow. */
static void test_common_io__tmp_and_beneath_follow_no_link(void **state)
{
  (void)state;
  char dir[] = "/tmp/zllm-test-io-XXXXXX", p[512], q[512];
  assert_non_null(mkdtemp(dir));
  snprintf(q, sizeof q, "%s/victim", dir);
  assert_int_equal(zllm_write_file_atomic(q, "V", 1), 0);
  int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd = -1;
  char *names[8];
  for (int i = 0; i < 8; i++) { /* names differ each time, and none is a link's */
    assert_int_equal(zllm_tmp_create(dfd, "f", &names[i], &fd), 0);
    assert_int_equal(write(fd, "W", 1), 1);
    close(fd);
    for (int k = 0; k < i; k++)
      assert_string_not_equal(names[k], names[i]);
  }
  struct stat st;
  assert_int_equal(stat(q, &st), 0);
  assert_int_equal(st.st_size, 1);
  for (int i = 0; i < 8; i++) { /* a link planted at a used name is refused by O_EXCL */
    assert_int_equal(unlinkat(dfd, names[i], 0), 0);
    assert_int_equal(symlinkat(q, dfd, names[i]), 0);
    assert_int_equal(openat(dfd, names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644), -1);
    free(names[i]);
  }
  snprintf(p, sizeof p, "%s/out", dir);
  assert_int_equal(zllm_mkdir_p(p, 0755), 0);
  snprintf(p, sizeof p, "%s/out/org", dir);
  assert_int_equal(symlink("/tmp", p), 0);
  int out = -1;
  snprintf(p, sizeof p, "%s/out", dir);
  assert_int_equal(zllm_open_dir_beneath(p, "org/name", 1, 0, &out), ZLLM_EUNSAFE);
  assert_non_null(strstr(zllm_error_last(), "/out/org: is a symlink or not a directory; not followed"));
  assert_int_equal(zllm_open_dir_beneath(p, "other/name", 1, 0, &out), 0);
  close(out);
  assert_int_equal(zllm_open_dir_beneath(p, "org/../x", 1, 1, &out), ZLLM_EUNSAFE);
  close(dfd);
  zllm_rm_rf(dir);
}

static void test_common_path__repo_ids(void **state)
{
  (void)state;
  const char *good[] = {"gpt2", "meta-llama/Llama-3.1-8B", "org_1/m.v2"};
  const char *bad[] = {"", "/x", "a/b/c", "a/", "a--b/c", "a/b..c", "-a/b", "a/b.", "a b/c", "a/\xc3\xa9"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_int_equal(zllm_repo_id_check(good[i]), 0);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(zllm_repo_id_check(bad[i]), ZLLM_EUNSAFE);
}

static void test_common_path__join(void **state)
{
  (void)state;
  char *p = zllm_path_join("a/", "b");
  assert_string_equal(p, "a/b");
  free(p);
  p = zllm_path_join("a", "b");
  assert_string_equal(p, "a/b");
  free(p);
}

typedef struct {
  uint8_t seen[10000];
  int fail_at;
} par_ctx;

static int mark_range(void *ctx, int worker, uint64_t lo, uint64_t hi)
{
  par_ctx *c = ctx;
  for (uint64_t i = lo; i < hi; i++) {
    c->seen[i]++;
    if ((int)i == c->fail_at)
      return zllm_error_set(ZLLM_EIO, "slice of worker %d failed", worker);
  }
  return 0;
}

/* Every index is visited exactly once whatever the thread count, and a
 * failing slice's code comes back. */
static void test_common_error__utf8_and_escapes(void **state)
{
  (void)state;
  static const struct {
    const char *s;
    size_t len;
  } cases[] = {
      {"a", 1}, {"\xc3\xa9", 2}, {"\xe2\x82\xac", 3}, {"\xf0\x9f\x98\x80", 4}, {"\xf4\x8f\xbf\xbf", 4},
      {"\xff", 0}, {"\x80", 0},           /* a stray byte */
      {"\xc0\xaf", 0}, {"\xe0\x80\xaf", 0}, /* overlong forms of '/' */
      {"\xed\xa0\x80", 0},                /* a surrogate, U+D800 */
      {"\xf4\x90\x80\x80", 0},            /* past U+10FFFF */
      {"\xc3", 0}, {"\xe2\x82", 0},       /* cut short */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    assert_int_equal(zllm_utf8_char_len((const unsigned char *)cases[i].s, strlen(cases[i].s)), cases[i].len);
  char out[64];
  zllm_escape_text(out, sizeof out, "caf\xc3\xa9 x\xffy\n");
  assert_string_equal(out, "caf\xc3\xa9 x\\xffy\\x0a");
  zllm_buf b = ZLLM_BUF_INIT;
  assert_int_equal(zllm_buf_put_tsv(&b, "\xc3\xa9\xed\xa0\x80"), 0);
  assert_string_equal(b.data, "\xc3\xa9\\xed\\xa0\\x80");
  zllm_buf_free(&b);
  assert_int_equal(zllm_path_check_relative("ok/caf\xc3\xa9.txt", "t"), 0);
  assert_int_equal(zllm_path_check_relative("x\xc0\xaf.txt", "t"), ZLLM_EUNSAFE);
  assert_non_null(strstr(zllm_error_last(), "path 'x\\xc0\\xaf.txt' is not UTF-8 (byte 0xc0 at offset 1)"));
}

typedef struct {
  size_t n, skipped, last_len;
} lines_seen;

static int count_line(void *ctx, const char *line, size_t len, size_t lineno)
{
  lines_seen *s = ctx;
  s->n = lineno;
  s->skipped += line == NULL;
  if (line)
    s->last_len = len;
  return 0;
}

static void test_common_io__regular_files_and_lines(void **state)
{
  (void)state;
  char dir[] = "/tmp/zllm-test-reg-XXXXXX", p[512], q[512];
  assert_non_null(mkdtemp(dir));
  snprintf(p, sizeof p, "%s/fifo", dir);
  assert_int_equal(mkfifo(p, 0644), 0);
  int fd = -1;
  /* a FIFO is refused by name at once, never opened for a read that would block */
  assert_int_equal(zllm_open_regular(AT_FDCWD, p, O_RDONLY, "the fifo", &fd), ZLLM_EFORMAT);
  assert_string_equal(zllm_error_last(), "the fifo: not a regular file (a FIFO); refused");
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(zllm_read_small_file(&text, &len, p, 100), ZLLM_EFORMAT);
  assert_int_equal(zllm_check_regular_if_present(AT_FDCWD, p, "f"), ZLLM_EFORMAT);
  snprintf(q, sizeof q, "%s/missing", dir);
  assert_int_equal(zllm_check_regular_if_present(AT_FDCWD, q, "m"), 0);
  assert_int_equal(zllm_open_regular(AT_FDCWD, q, O_RDONLY, "m", &fd), ZLLM_ENOTFOUND);
  /* lines: one longer than the cap is skipped, and memory holds one line */
  snprintf(q, sizeof q, "%s/lines", dir);
  FILE *f = fopen(q, "w");
  assert_non_null(f);
  fputs("one\n", f);
  for (int i = 0; i < 3 * (int)ZLLM_LINE_CHUNK; i++)
    fputc('x', f);
  fputs("\nlast-without-newline", f);
  fclose(f);
  lines_seen s = {0};
  assert_int_equal(zllm_read_lines(q, 64, count_line, &s), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.skipped, 1);
  assert_int_equal(s.last_len, strlen("last-without-newline"));
  snprintf(p, sizeof p, "%s/link", dir);
  assert_int_equal(symlink(q, p), 0);
  assert_int_equal(zllm_open_regular(AT_FDCWD, p, O_RDONLY | O_NOFOLLOW, "link", &fd), ZLLM_EUNSAFE);
  assert_int_equal(zllm_open_regular(AT_FDCWD, p, O_RDONLY, "link", &fd), 0); /* followed when asked */
  close(fd);
  zllm_rm_rf(dir);
}

static void test_common_parallel__covers_range_once(void **state)
{
  (void)state;
  static par_ctx c;
  for (int t = 1; t <= 5; t++) {
    memset(&c, 0, sizeof c);
    c.fail_at = -1;
    assert_int_equal(zllm_parallel_for_n(10000, 7, t, mark_range, &c), 0);
    for (int i = 0; i < 10000; i++)
      assert_int_equal(c.seen[i], 1);
  }
  memset(&c, 0, sizeof c);
  c.fail_at = 9999;
  assert_int_equal(zllm_parallel_for_n(10000, 1, 3, mark_range, &c), ZLLM_EIO);
  memset(&c, 0, sizeof c);
  c.fail_at = -1;
  assert_int_equal(zllm_parallel_for_n(0, 1, 4, mark_range, &c), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_common_error__set_returns_code_and_escapes),
    cmocka_unit_test(test_common_error__prefix_keeps_code),
    cmocka_unit_test(test_common_buf__tsv_escaping),
    cmocka_unit_test(test_common_buf__records_round_trip_and_truncation),
    cmocka_unit_test(test_common_hash__known_vectors),
    cmocka_unit_test(test_common_hash__streaming_equals_one_shot),
    cmocka_unit_test(test_common_hash__unhex),
    cmocka_unit_test(test_common_path__relative_rules),
    cmocka_unit_test(test_common_path__repo_ids),
    cmocka_unit_test(test_common_io__tmp_and_beneath_follow_no_link),
    cmocka_unit_test(test_common_path__join),
    cmocka_unit_test(test_common_parallel__covers_range_once),
    cmocka_unit_test(test_common_error__utf8_and_escapes),
    cmocka_unit_test(test_common_io__regular_files_and_lines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
